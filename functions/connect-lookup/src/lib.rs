//! `connect-lookup`: Amazon Connect's contact flow asks "which SMA call is this?".
//!
//! Input: the contact-flow event with block parameters `CallingNumber`
//! (`$.CustomerEndpoint.Address`, the SMA number that called Connect) and `CalledNumber`
//! (`$.SystemEndpoint.Address`, the Connect number). When a parameter is not passed, the same
//! endpoint address from the event is used.
//!
//! Output (flat string map, `$.External.<key>` in the flow):
//! - `result=found`: `transaction_id`, `original_calling_number`, `original_called_number`,
//!   `sma_number`, `connect_number`, `call_timestamp` (epoch ms), `pair_released`;
//! - `result=not_found` (`reason=no_live_claim`): no live claim on that pair;
//! - `result=error` with `reason` (`missing_calling_number`, `missing_called_number`,
//!   `missing_contact_id`, `store_throttled`, `store_unavailable`, `store_corrupt`,
//!   `store_error`, `timeout`).
//!
//! The lookup is the store's strongly consistent, live-claims-only lookup; it binds the contact
//! id to the claim and, in release-on-lookup mode, frees the pair at once.

use std::time::Duration;

use serde_json::Value;
use takeback_common::mask::mask_number;
use takeback_connect::request::{self, LookupRequest, NumberSource};
use takeback_connect::{ConnectEvent, LookupResponse};
use takeback_pairs::{LookupMode, PairStore};
use takeback_sdk as sdk;
use tracing::{Instrument, info, info_span, warn};

/// What the handler needs; built once at cold start (or by a test).
#[derive(Debug)]
pub struct LookupDeps<S> {
    pub store: S,
    pub mode: LookupMode,
    /// End-to-end budget; past it the handler answers `result=error, reason=timeout`.
    pub budget: Duration,
}

impl<S> LookupDeps<S> {
    pub fn new(store: S, mode: LookupMode) -> Self {
        Self {
            store,
            mode,
            budget: sdk::CONNECT_HANDLER_BUDGET,
        }
    }
}

/// The Lambda handler: never fails, every outcome is a `result` the flow can branch on.
pub async fn handle<S: PairStore>(deps: &LookupDeps<S>, event: Value) -> LookupResponse {
    let event = ConnectEvent::from_value(event);
    let span = info_span!(
        "connect_lookup",
        contact_id = event.contact_id().unwrap_or("-"),
        transaction_id = tracing::field::Empty,
    );
    async {
        match tokio::time::timeout(deps.budget, lookup(deps, &event)).await {
            Ok(response) => response,
            Err(_) => {
                warn!(
                    budget_ms = deps.budget.as_millis() as u64,
                    "lookup ran out of time"
                );
                LookupResponse::timed_out()
            }
        }
    }
    .instrument(span)
    .await
}

async fn lookup<S: PairStore>(deps: &LookupDeps<S>, event: &ConnectEvent) -> LookupResponse {
    let LookupRequest { pair, contact_id } = match request::lookup_request(event) {
        Ok(r) => r,
        Err(e) => {
            warn!(reason = e.reason(), error = %e, "lookup request incomplete");
            return LookupResponse::bad_request(e);
        }
    };
    if pair.calling_source == NumberSource::Endpoint || pair.called_source == NumberSource::Endpoint
    {
        info!(
            calling = ?pair.calling_source,
            called = ?pair.called_source,
            "block parameters missing; using the event's endpoint addresses"
        );
    }
    let sma = mask_number(&pair.pair.sma_number);
    let connect = mask_number(&pair.pair.connect_number);
    match deps.store.lookup(&pair.pair, &contact_id, deps.mode).await {
        Ok(Some(claim)) => {
            tracing::Span::current().record("transaction_id", claim.transaction_id.as_str());
            info!(
                sma_number = %sma,
                connect_number = %connect,
                original_calling_number = %mask_number(&claim.original_calling_number),
                pair_released = claim.released,
                "live claim found"
            );
            LookupResponse::found(&claim)
        }
        Ok(None) => {
            info!(sma_number = %sma, connect_number = %connect, "no live claim on this pair");
            LookupResponse::not_found()
        }
        Err(e) => {
            warn!(
                sma_number = %sma,
                connect_number = %connect,
                error = %takeback_common::error::chain(&e),
                "store lookup failed"
            );
            LookupResponse::store_failed(&e)
        }
    }
}
