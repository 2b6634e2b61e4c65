//! The transfer handler over the `events/connect-transfer-*.json` fixtures, with the in-memory
//! store and a recording fake of `UpdateSipMediaApplicationCall`.

mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use connect_transfer::{CallUpdater, TransferDeps, handle};
use serde_json::Value;
use support::*;
use takeback_connect::{UpdateCallError, UpdateFailure};
use takeback_pairs::memory::InjectedFault;
use takeback_pairs::{CallStore, TransferIntent};

#[derive(Debug, Clone)]
struct Call {
    sma_id: String,
    transaction_id: String,
    arguments: BTreeMap<String, String>,
    /// What the store held for this transaction when the update was sent.
    intent_at_call_time: Option<TransferIntent>,
}

/// Records calls; answers with `outcome` (`None` = accepted), or never answers when `stuck`.
struct FakeUpdater {
    store: SharedStore,
    outcome: Option<UpdateFailure>,
    stuck: bool,
    calls: Mutex<Vec<Call>>,
}

impl FakeUpdater {
    fn new(store: &SharedStore, outcome: Option<UpdateFailure>) -> Self {
        Self {
            store: store.clone(),
            outcome,
            stuck: false,
            calls: Mutex::new(Vec::new()),
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("test set-up").clone()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("scripted failure")]
struct Scripted;

impl CallUpdater for FakeUpdater {
    async fn update_call(
        &self,
        sma_id: &str,
        transaction_id: &str,
        arguments: BTreeMap<String, String>,
    ) -> Result<(), UpdateCallError> {
        let intent_at_call_time = self
            .store
            .transfer_intent(transaction_id)
            .await
            .ok()
            .flatten();
        self.calls.lock().expect("test set-up").push(Call {
            sma_id: sma_id.into(),
            transaction_id: transaction_id.into(),
            arguments,
            intent_at_call_time,
        });
        if self.stuck {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        match self.outcome {
            None => Ok(()),
            Some(kind) => Err(UpdateCallError::new(kind, Scripted)),
        }
    }
}

fn deps(
    store: SharedStore,
    outcome: Option<UpdateFailure>,
) -> TransferDeps<SharedStore, FakeUpdater> {
    let updater = FakeUpdater::new(&store, outcome);
    TransferDeps::new(store, updater, SMA_ID.into(), policy())
}

fn args(target: &str, arn: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("Transfer".to_owned(), "true".to_owned()),
        ("TransferTarget".to_owned(), target.to_owned()),
        ("TransferTargetArn".to_owned(), arn.to_owned()),
        ("ContactId".to_owned(), CONTACT.to_owned()),
    ])
}

#[tokio::test]
async fn transaction_id_without_target_transfers_to_the_default() {
    let d = deps(shared_store(), None);
    let v = flat(&handle(&d, fixture("connect-transfer-transaction-id.json")).await);
    assert_eq!(v["result"], "transferring");
    assert_eq!(v["transaction_id"], TXN);
    assert_eq!(v["transfer_target"], DEFAULT_TARGET);
    assert_eq!(v["transfer_target_arn"], VC);
    assert_eq!(v["target_source"], "default");
    assert_eq!(v["intent_recorded"], "true");

    let calls = d.updater.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].sma_id, SMA_ID);
    assert_eq!(calls[0].transaction_id, TXN);
    assert_eq!(calls[0].arguments, args(DEFAULT_TARGET, VC));
}

#[tokio::test]
async fn the_intent_is_recorded_before_the_update_is_sent() {
    let d = deps(shared_store(), None);
    handle(&d, fixture("connect-transfer-room-extension.json")).await;
    let calls = d.updater.calls();
    let intent = calls[0]
        .intent_at_call_time
        .clone()
        .expect("the intent must exist when UpdateSipMediaApplicationCall is sent");
    assert_eq!(
        intent,
        TransferIntent {
            target_uri: "1234".into(),
            target_arn: VC.into(),
            contact_id: Some(CONTACT.into()),
        }
    );
}

#[tokio::test]
async fn a_keyed_in_extension_is_the_target() {
    let d = deps(shared_store(), None);
    let v = flat(&handle(&d, fixture("connect-transfer-room-extension.json")).await);
    assert_eq!(v["result"], "transferring");
    assert_eq!(v["transfer_target"], "1234");
    assert_eq!(v["target_source"], "contact_flow");
    assert_eq!(d.updater.calls()[0].arguments, args("1234", VC));
}

#[tokio::test]
async fn the_pair_finds_the_transaction_like_the_seed() {
    let store = store_with_live_claim().await;
    let d = deps(store, None);
    let v = flat(&handle(&d, fixture("connect-transfer-by-pair.json")).await);
    assert_eq!(v["result"], "transferring");
    assert_eq!(v["transaction_id"], TXN);
    assert_eq!(d.updater.calls()[0].transaction_id, TXN);
    assert_eq!(
        d.store.held_pairs().len(),
        1,
        "the transfer does not release the pair"
    );
}

#[tokio::test]
async fn a_pair_without_a_live_claim_is_not_found_and_nothing_is_sent() {
    let d = deps(shared_store(), None);
    let v = flat(&handle(&d, fixture("connect-transfer-by-pair.json")).await);
    assert_eq!(v["result"], "not_found");
    assert_eq!(v["reason"], "no_live_claim");
    assert!(d.updater.calls().is_empty());
}

#[tokio::test]
async fn the_transaction_attribute_is_enough() {
    let d = deps(shared_store(), None);
    let v = flat(&handle(&d, fixture("connect-transfer-attribute-only.json")).await);
    assert_eq!(v["result"], "transferring");
    assert_eq!(v["transaction_id"], TXN);
}

#[tokio::test]
async fn null_endpoints_do_not_matter_with_a_transaction_id() {
    let d = deps(shared_store(), None);
    let v = flat(&handle(&d, fixture("connect-transfer-null-endpoints.json")).await);
    assert_eq!(v["result"], "transferring");
}

#[tokio::test]
async fn invalid_targets_change_nothing() {
    for (name, reason) in [
        (
            "connect-transfer-invalid-target.json",
            "target_pattern_mismatch",
        ),
        (
            "connect-transfer-arn-not-allowed.json",
            "target_arn_not_allowed",
        ),
    ] {
        let d = deps(shared_store(), None);
        let before = d.store.request_count();
        let v = flat(&handle(&d, fixture(name)).await);
        assert_eq!(v["result"], "invalid_target", "{name}");
        assert_eq!(v["reason"], reason, "{name}");
        assert!(d.updater.calls().is_empty(), "{name}: nothing sent");
        assert_eq!(d.store.request_count(), before, "{name}: nothing stored");
    }
}

#[tokio::test]
async fn missing_parameters_and_null_endpoints_are_an_error() {
    let d = deps(shared_store(), None);
    let v = flat(&handle(&d, fixture("connect-transfer-missing-parameters.json")).await);
    assert_eq!(v["result"], "error");
    assert_eq!(v["reason"], "missing_transaction");
    assert!(d.updater.calls().is_empty());
}

#[tokio::test]
async fn a_call_that_has_ended_is_not_found() {
    let d = deps(shared_store(), Some(UpdateFailure::CallNotFound));
    let v = flat(&handle(&d, fixture("connect-transfer-transaction-id.json")).await);
    assert_eq!(v["result"], "not_found");
    assert_eq!(v["reason"], "call_ended");
    assert_eq!(v["transaction_id"], TXN);
}

#[tokio::test]
async fn api_failures_are_errors_with_reasons() {
    for (failure, reason) in [
        (UpdateFailure::Throttled, "chime_throttled"),
        (UpdateFailure::Unavailable, "chime_unavailable"),
        (UpdateFailure::BadRequest, "chime_bad_request"),
        (UpdateFailure::AccessDenied, "chime_access_denied"),
        (UpdateFailure::TimedOut, "chime_timeout"),
    ] {
        let d = deps(shared_store(), Some(failure));
        let v = flat(&handle(&d, fixture("connect-transfer-transaction-id.json")).await);
        assert_eq!(v["result"], "error");
        assert_eq!(v["reason"], reason);
        // The intent was stored first: the flow ends the contact and the SMA still transfers.
        assert_eq!(v["intent_recorded"], "true", "{reason}");
    }
}

#[tokio::test]
async fn a_failed_update_without_a_stored_intent_says_so() {
    let store = shared_store();
    store.inject_fault(InjectedFault::Unavailable);
    let d = deps(store, Some(UpdateFailure::Throttled));
    let v = flat(&handle(&d, fixture("connect-transfer-transaction-id.json")).await);
    assert_eq!(v["result"], "error");
    assert_eq!(v["intent_recorded"], "false");
}

#[tokio::test]
async fn a_store_failure_on_the_intent_still_requests_the_transfer() {
    let store = shared_store();
    store.inject_fault(InjectedFault::Unavailable);
    let d = deps(store, None);
    let v = flat(&handle(&d, fixture("connect-transfer-transaction-id.json")).await);
    assert_eq!(v["result"], "transferring");
    assert_eq!(v["intent_recorded"], "false");
    assert_eq!(d.updater.calls().len(), 1);
}

#[tokio::test]
async fn a_store_failure_on_the_pair_lookup_is_an_error() {
    let store = store_with_live_claim().await;
    store.inject_fault(InjectedFault::Throttle);
    let d = deps(store, None);
    let v = flat(&handle(&d, fixture("connect-transfer-by-pair.json")).await);
    assert_eq!(v["result"], "error");
    assert_eq!(v["reason"], "store_throttled");
    assert!(d.updater.calls().is_empty());
}

#[tokio::test]
async fn the_handler_budget_bounds_a_stuck_api() {
    let mut d = deps(shared_store(), None);
    d.updater.stuck = true;
    d.budget = Duration::from_millis(200);
    let started = Instant::now();
    let v = flat(&handle(&d, fixture("connect-transfer-transaction-id.json")).await);
    assert_eq!(v["result"], "error");
    assert_eq!(v["reason"], "timeout");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn every_transfer_fixture_gets_a_flat_answer() {
    let names = fixture_names("connect-transfer-");
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        let d = deps(store_with_live_claim().await, None);
        let v = flat(&handle(&d, fixture(&name)).await);
        let result = v["result"].as_str().unwrap();
        assert!(
            ["transferring", "not_found", "invalid_target", "error"].contains(&result),
            "{name}: {v}"
        );
    }
}

#[tokio::test]
async fn garbage_is_answered_not_rejected() {
    let d = deps(shared_store(), None);
    for garbage in [
        Value::Null,
        Value::from(7),
        serde_json::json!({"Details": "x"}),
    ] {
        let v = flat(&handle(&d, garbage).await);
        assert_eq!(v["result"], "error");
        assert_eq!(v["reason"], "missing_transaction");
    }
}
