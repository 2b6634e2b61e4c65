//! The SIP media application handler: parse the event, do the store work the state machine
//! asks for, decide, answer. `main.rs` only wires; tests and the emulator call [`handle`].

pub mod config;
pub mod metrics;

use std::time::Duration;

use lambda_runtime::Diagnostic;
use serde_json::Value;
use takeback_common::error::chain;
use takeback_common::mask::mask_number;
use takeback_pairs::strategy::{self, Delivery};
use takeback_pairs::{CallStore, PairStore, StoreError};
use takeback_sma::call_machine::{
    self, CallAttributes, CallMachineConfig, Decision, StoreFailed, StoreResults, StoreWork,
};
use takeback_sma::{
    Action, Actions, HangupCode, LegRef, LegTag, NotAnSmaEvent, SmaEvent, SmaResponse,
    TransactionAttributes,
};
use tracing::{Instrument, error, info, warn};

/// The SMA re-invokes after 5 s; the store work of one invocation must be done well before.
pub const STORE_BUDGET: Duration = Duration::from_millis(3500);

pub struct SmaDeps<S> {
    pub store: S,
    pub call_machine: CallMachineConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum SmaHandlerError {
    /// Not an SMA event at all: there is no call to answer, so this is an invocation error
    /// that names what is missing.
    #[error(transparent)]
    NotAnSmaEvent(#[from] NotAnSmaEvent),
}

impl SmaHandlerError {
    /// The invocation error's `errorType`: a stable name an alarm can match, never a Rust type
    /// path.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::NotAnSmaEvent(_) => "NotAnSmaEvent",
        }
    }
}

/// What the Lambda runtime reports for a failed invocation (`errorType`, `errorMessage`).
impl From<SmaHandlerError> for Diagnostic {
    fn from(error: SmaHandlerError) -> Self {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// Handles one SMA invocation. Any recognisable event gets a valid response, never an error.
pub async fn handle<S: PairStore + CallStore>(
    deps: &SmaDeps<S>,
    payload: Value,
) -> Result<SmaResponse, SmaHandlerError> {
    let event = SmaEvent::from_value(payload)?;
    let span = tracing::info_span!(
        "sma_invocation",
        transaction_id = event.call_details.transaction_id.as_deref().unwrap_or("-"),
        event_type = %event.invocation_event_type,
        sequence = event.sequence.unwrap_or_default(),
    );
    Ok(decide_and_answer(deps, &event).instrument(span).await)
}

async fn decide_and_answer<S: PairStore + CallStore>(
    deps: &SmaDeps<S>,
    event: &SmaEvent,
) -> SmaResponse {
    let attrs = CallAttributes::from_map(&event.call_details.transaction_attributes);
    if let Some(error_type) = event.error_type() {
        warn!(
            error_type,
            error_message = event
                .action_data
                .as_ref()
                .and_then(|a| a.error_message.as_deref())
                .or(event.error_message.as_deref()),
            action = event.action_type().map(|a| a.as_str()),
            "SMA reported a failure"
        );
    }
    let work = call_machine::store_work_needed(event, &attrs, &deps.call_machine);
    let delivery = strategy::delivery_of(call_machine::call_started_ms(event), now_ms());
    let results = run_store_work_as(&deps.store, work, delivery).await;
    let decision = call_machine::decide(event, &attrs, &deps.call_machine, &results);
    info!(
        outcome = decision.outcome,
        state_before = attrs.state.as_str(),
        state_after = decision.attributes.as_ref().map(|a| a.state.as_str()),
        caller = attrs.caller.as_deref().or_else(|| event.participant(LegTag::A).and_then(|p| p.from.as_deref())).map(mask_number),
        actions = ?decision.actions.iter().map(Action::type_name).collect::<Vec<_>>(),
        "decided"
    );
    metrics::outcome(decision.outcome, &results).emit();
    into_response(event, decision)
}

/// Performs the store operations. Each operation has its own [`STORE_BUDGET`], and independent
/// operations run side by side, so one slow operation never costs another's result (a slow
/// release never cancels a transfer the intent already decided). Failures and timeouts are
/// logged — with the cause chain, without phone numbers — and reported to the state machine as
/// [`StoreFailed`]; an unknown outcome leaves nothing the next event cannot release, because
/// every ending event releases whatever this transaction may own.
pub async fn run_store_work<S: PairStore + CallStore>(store: &S, work: StoreWork) -> StoreResults {
    run_store_work_as(store, work, Delivery::First).await
}

/// [`run_store_work`] with what the handler knows of the event's delivery: a claim for an event
/// that may have been delivered before looks for the transaction's pair first
/// ([`PairStore::claim_new_call`]).
pub async fn run_store_work_as<S: PairStore + CallStore>(
    store: &S,
    work: StoreWork,
    delivery: Delivery,
) -> StoreResults {
    match &work {
        StoreWork::Nothing => StoreResults::default(),
        StoreWork::Claim(request) => StoreResults {
            claim: Some(bounded("claim", store.claim_new_call(request, delivery)).await),
            ..StoreResults::default()
        },
        StoreWork::ReleaseOwned {
            transaction_id,
            known,
        } => StoreResults {
            release: Some(
                bounded(
                    "release_owned",
                    store.release_owned(transaction_id, known.as_ref()),
                )
                .await,
            ),
            ..StoreResults::default()
        },
        StoreWork::ConnectLegEnded {
            known,
            transaction_id,
        } => {
            // The intent decides where the caller goes; the release only frees capacity (and
            // is repeated by the caller's hangup if it fails here). Neither waits for the other.
            let (transfer_intent, release) = tokio::join!(
                bounded("transfer_intent", store.transfer_intent(transaction_id)),
                bounded(
                    "release_owned",
                    store.release_owned(transaction_id, known.as_ref())
                ),
            );
            StoreResults {
                claim: None,
                release: Some(release),
                transfer_intent: Some(transfer_intent),
            }
        }
    }
}

/// Epoch milliseconds of the handler's clock.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// One store operation within its own [`STORE_BUDGET`].
async fn bounded<T>(
    operation: &'static str,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreFailed> {
    match tokio::time::timeout(STORE_BUDGET, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            error!(operation, error = %chain(&e), "store operation failed");
            Err(StoreFailed)
        }
        Err(_) => {
            // The operation's outcome is unknown (it may still land): the next ending event
            // releases whatever this transaction may own.
            error!(
                operation,
                budget_ms = STORE_BUDGET.as_millis() as u64,
                "store operation timed out"
            );
            Err(StoreFailed)
        }
    }
}

/// Turns a decision into the wire response. A decision that breaks a limit is a bug; the
/// caller still gets a proper hangup rather than an invalid response.
fn into_response(event: &SmaEvent, decision: Decision) -> SmaResponse {
    let attributes = decision
        .attributes
        .map(|a| TransactionAttributes::new(a.to_map()))
        .transpose();
    match (Actions::new(decision.actions), attributes) {
        (Ok(actions), Ok(attributes)) => SmaResponse::new(actions, attributes),
        (actions, attributes) => {
            error!(
                actions_ok = actions.is_ok(),
                attributes_ok = attributes.is_ok(),
                "decision broke a response limit; hanging up"
            );
            let leg = event
                .participant(LegTag::A)
                .and_then(|p| p.call_id.clone())
                .map(LegRef::CallId)
                .unwrap_or(LegRef::Tag(LegTag::A.as_str()));
            let hangup = Action::hangup(leg, HangupCode::TemporarilyUnavailable);
            SmaResponse::new(Actions::new(vec![hangup]).unwrap_or_default(), None)
        }
    }
}
