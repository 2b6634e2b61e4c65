//! Alexa Smart Properties WebRTC calling (`Alexa.Comms.CallSignaling`) and account linking,
//! pure: the wire model ([`model`]), the call session machine ([`session`]), settings
//! ([`config`]), retry policy ([`retry`]) and the store ports with in-memory implementations
//! ([`store`]). No AWS SDK, HTTP stack or async runtime: the HTTP clients (Login with Amazon,
//! the Alexa signaling API, the webhook) are in `takeback-http`, the DynamoDB stores in
//! `takeback-dynamo`.
//!
//! Two Lambda functions use it:
//! - `functions/call-signaling`, the Alexa skill endpoint: answers every CallSignaling request
//!   with the deferred response, records the call session, forwards the message to the property
//!   backend by a signed webhook, and handles account linking (`Alexa.Authorization.Grant` /
//!   `AcceptGrant`);
//! - `functions/signaling-api`, the property backend's way in: validates the backend's message
//!   against the session's state and sends it to `{apiEndpoint}/v1/communications/signaling`
//!   with a cached LWA access token.
//!
//! The session machine is pure; the stores come as traits with an in-memory and a DynamoDB
//! implementation. The exact
//! environment variables each function reads are listed in the crate docs of
//! `functions/call-signaling/src/lib.rs` and `functions/signaling-api/src/lib.rs`; the shared
//! ones are parsed here, in [`config`].
//!
//! # Design notes
//!
//! - Idempotency: every applied message id (Alexa `requestId`, backend `messageId`) is kept in
//!   the session item; a re-delivery is answered without being applied again, and forwarded
//!   again only when its first delivery was never confirmed and nothing newer happened since.
//!   Delivery is therefore at-least-once: receivers deduplicate on `X-Message-Id`.
//! - Timing: Lambda freezes after it answers, so the skill forwards *before* returning the
//!   deferred response, bounded by `WEBHOOK_BUDGET_MS` and by one overall deadline per
//!   invocation ([`budget`]: Alexa waits 8 s for a skill).
//! - The bearer token only goes to an official Alexa endpoint or the configured
//!   `ALEXA_API_ENDPOINT`, whatever a request's `apiEndpoint` says.
//! - One LWA token pair (delegated account linking) under `LWA_TOKEN_ID`, shared by both
//!   functions through the tokens table; each instance caches it. A refresh is coalesced across
//!   execution environments by a lease in the token record ([`store::token`]): one environment
//!   refreshes, the others keep using the current token while it is valid or wait briefly for
//!   the new one; a 401 from Alexa forces one refresh.
//! - Size limits: [`limits`], shared by the skill and the signaling API.
//!
//! The webhook's signature recipe is documented in `takeback-http` (`webhook`).

pub mod budget;
pub mod config;
pub mod limits;
pub mod model;
pub mod retry;
pub mod secret;
pub mod session;
pub mod store;

pub use secret::{Secret, SecretSource};

/// Seconds since the Unix epoch.
pub fn now_epoch_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
