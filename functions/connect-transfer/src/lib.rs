//! `connect-transfer`: the contact flow hands the call back to the SIP media application, which
//! hangs up the Connect leg and bridges the caller to the transfer target.
//!
//! Input (block parameters): the call — `TransactionId` (usually `$.Attributes.transaction_id`
//! from the lookup), else the `transaction_id` contact attribute, else the `CallingNumber` /
//! `CalledNumber` pair as in the seed (endpoint addresses when those are not passed either) —
//! and optionally `TransferTarget` (e.g. the room extension the caller keyed in) and
//! `TransferTargetArn`.
//!
//! Steps: validate the target against the configured rules (or take the default); find the
//! transaction; record the transfer intent for it (so the SMA handler can still complete the
//! transfer if Connect's hangup reaches it before `CALL_UPDATE_REQUESTED`); then call
//! `UpdateSipMediaApplicationCall` with `Transfer=true`, `TransferTarget`, `TransferTargetArn`
//! and `ContactId`.
//!
//! Output (flat string map): `result` = `transferring` (with `transaction_id`,
//! `transfer_target`, `transfer_target_arn`, `target_source`, `intent_recorded`) |
//! `not_found` (`reason=call_ended`: 404, the call is gone; `reason=no_live_claim`: nothing on
//! the pair) | `invalid_target` (`reason=target_uri_invalid|target_pattern_mismatch|
//! target_arn_invalid|target_arn_not_allowed`, `requested_target`) | `error` (`reason`, see
//! `docs/contact-flow-authors.md`). The handler never returns a Lambda error.

use std::time::Duration;

use serde_json::Value;
use takeback_common::mask::mask_number;
use takeback_connect::request::{self, CallRef, TransferRequest};
use takeback_connect::{ConnectEvent, TransferResponse, UpdateFailure};
use takeback_pairs::{CallStore, LookupMode, PairStore, TransferIntent};
use takeback_sdk as sdk;
use takeback_sma::target::TransferPolicy;
use takeback_sma::update_arguments;
use tracing::{Instrument, debug, info, info_span, warn};

pub use takeback_connect::CallUpdater;

/// What the handler needs; built once at cold start (or by a test).
#[derive(Debug)]
pub struct TransferDeps<S, U> {
    pub store: S,
    pub updater: U,
    pub sip_media_application_id: String,
    pub policy: TransferPolicy,
    /// End-to-end budget; past it the handler answers `result=error, reason=timeout`.
    pub budget: Duration,
}

impl<S, U> TransferDeps<S, U> {
    pub fn new(
        store: S,
        updater: U,
        sip_media_application_id: String,
        policy: TransferPolicy,
    ) -> Self {
        Self {
            store,
            updater,
            sip_media_application_id,
            policy,
            budget: sdk::CONNECT_HANDLER_BUDGET,
        }
    }
}

/// The Lambda handler: never fails, every outcome is a `result` the flow can branch on.
pub async fn handle<S, U>(deps: &TransferDeps<S, U>, event: Value) -> TransferResponse
where
    S: PairStore + CallStore,
    U: CallUpdater,
{
    let event = ConnectEvent::from_value(event);
    let span = info_span!(
        "connect_transfer",
        contact_id = event.contact_id().unwrap_or("-"),
        transaction_id = tracing::field::Empty,
    );
    async {
        match tokio::time::timeout(deps.budget, transfer(deps, &event)).await {
            Ok(response) => response,
            Err(_) => {
                warn!(
                    budget_ms = deps.budget.as_millis() as u64,
                    "transfer ran out of time"
                );
                TransferResponse::timed_out()
            }
        }
    }
    .instrument(span)
    .await
}

async fn transfer<S, U>(deps: &TransferDeps<S, U>, event: &ConnectEvent) -> TransferResponse
where
    S: PairStore + CallStore,
    U: CallUpdater,
{
    let TransferRequest {
        call,
        contact_id,
        target,
        target_arn,
    } = match request::transfer_request(event) {
        Ok(r) => r,
        Err(e) => {
            warn!(reason = e.reason(), error = %e, "transfer request incomplete");
            return TransferResponse::bad_request(e);
        }
    };

    // Validate before any side effect: an invalid target changes nothing.
    let resolved = match deps
        .policy
        .resolve(target.as_deref(), target_arn.as_deref())
    {
        Ok(t) => t,
        Err(rejection) => {
            info!(
                reason = rejection.reason(),
                requested_target = %target.as_deref().map(mask_number).unwrap_or_default(),
                "transfer target refused"
            );
            debug!(requested_target = ?target, requested_arn = ?target_arn, "refused target");
            return TransferResponse::invalid_target(rejection, target.as_deref());
        }
    };

    let transaction_id = match call {
        CallRef::Transaction(t) => t,
        CallRef::Pair { pair, contact_id } => {
            match deps
                .store
                .lookup(&pair.pair, &contact_id, LookupMode::KeepClaim)
                .await
            {
                Ok(Some(claim)) => claim.transaction_id,
                Ok(None) => {
                    info!(
                        sma_number = %mask_number(&pair.pair.sma_number),
                        connect_number = %mask_number(&pair.pair.connect_number),
                        "no live claim on this pair"
                    );
                    return TransferResponse::no_live_claim();
                }
                Err(e) => {
                    warn!(error = %takeback_common::error::chain(&e), "store lookup failed");
                    return TransferResponse::store_failed(&e);
                }
            }
        }
    };
    tracing::Span::current().record("transaction_id", transaction_id.as_str());

    let intent = TransferIntent {
        target_uri: resolved.target.uri.as_str().to_owned(),
        target_arn: resolved.target.arn.as_str().to_owned(),
        contact_id: contact_id.clone(),
    };
    // The intent is the safety net for the race "Connect hangs up before CALL_UPDATE_REQUESTED".
    // If it cannot be stored, the transfer is still requested: the update alone completes it in
    // the normal order of events, and giving up would strand the caller in the flow.
    let intent_recorded = match deps
        .store
        .record_transfer_intent(&transaction_id, &intent)
        .await
    {
        Ok(()) => true,
        Err(e) => {
            warn!(error = %takeback_common::error::chain(&e), "transfer intent not recorded; requesting the transfer anyway");
            false
        }
    };

    let arguments = update_arguments(&resolved.target, contact_id.as_deref());
    match deps
        .updater
        .update_call(&deps.sip_media_application_id, &transaction_id, arguments)
        .await
    {
        Ok(()) => {
            info!(
                target = %mask_number(resolved.target.uri.as_str()),
                target_arn = resolved.target.arn.as_str(),
                target_source = resolved.source.as_str(),
                intent_recorded,
                "transfer requested"
            );
            TransferResponse::transferring(&transaction_id, &resolved, intent_recorded)
        }
        Err(e) if e.kind == UpdateFailure::CallNotFound => {
            info!("the SMA call has already ended");
            TransferResponse::update_failed(&transaction_id, e.kind)
        }
        Err(e) => {
            warn!(reason = e.kind.reason(), error = %takeback_common::error::chain(&e), intent_recorded, "UpdateSipMediaApplicationCall failed");
            TransferResponse::update_failed(&transaction_id, e.kind)
                .with_intent_recorded(intent_recorded)
        }
    }
}
