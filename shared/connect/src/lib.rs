//! Amazon Connect contact-flow Lambda contract: a tolerant event model, the flat string-map
//! answers, and the pure decisions of the `connect-lookup` and `connect-transfer` functions
//! (parameter extraction, transfer-target validation and fallback, outcome → `result`).
//!
//! The functions themselves only do I/O around these: see `functions/connect-lookup` and
//! `functions/connect-transfer`, and `docs/contact-flow-authors.md` for the flow author's view.

use std::collections::BTreeMap;
use std::future::Future;

pub mod config;
pub mod event;
pub mod request;
pub mod response;

pub use event::ConnectEvent;
pub use request::{CallRef, LookupRequest, RequestError, TransferRequest};
pub use response::{
    LookupResponse, LookupResult, TransferResponse, TransferResult, UpdateCallError, UpdateFailure,
};

/// Sends the transfer request to the SIP media application.
pub trait CallUpdater: Send + Sync {
    fn update_call(
        &self,
        sip_media_application_id: &str,
        transaction_id: &str,
        arguments: BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), UpdateCallError>> + Send;
}
