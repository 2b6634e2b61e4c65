//! The lookup handler over the `events/connect-lookup-*.json` fixtures, with the in-memory store.

use std::time::{Duration, Instant};

use connect_lookup::{LookupDeps, handle};
use serde_json::Value;
use takeback_connect::LookupResponse;
use takeback_pairs::memory::{InjectedFault, MemoryStore};
use takeback_pairs::{
    ClaimOutcome, ClaimRequest, LiveClaim, LookupMode, PairKey, PairStore, ReleaseOutcome,
    StoreError,
};

const TXN: &str = "5d5c8c2e-4f3a-4a55-9f0e-2b9d3c1a7e01";
const CALLER: &str = "+13125550142";
const DIALLED: &str = "+18005550000";

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("test set-up")
}

fn pair(sma: &str, connect: &str) -> PairKey {
    PairKey {
        sma_number: sma.into(),
        connect_number: connect.into(),
    }
}

/// The fixture's pair (+18005557777 → +18005551111) claimed by TXN, plus a free second pair
/// (the one `connect-lookup-not-found.json` asks about).
async fn store_with_live_claim() -> MemoryStore {
    let store = MemoryStore::new(
        [
            pair("+18005557777", "+18005551111"),
            pair("+18005559999", "+18005553333"),
        ],
        300,
    );
    let outcome = store
        .claim(&ClaimRequest {
            transaction_id: TXN.into(),
            original_calling_number: CALLER.into(),
            original_called_number: DIALLED.into(),
        })
        .await
        .expect("test set-up");
    match outcome {
        ClaimOutcome::Claimed(c) => assert_eq!(c.pair, pair("+18005557777", "+18005551111")),
        other => panic!("claim failed: {other:?}"),
    }
    store
}

fn as_json(response: &LookupResponse) -> Value {
    let v = serde_json::to_value(response).expect("test set-up");
    for (k, val) in v.as_object().expect("test set-up") {
        assert!(
            val.is_string(),
            "{k} must be a string for STRING_MAP validation: {val}"
        );
    }
    v
}

#[tokio::test]
async fn found_returns_the_call_data_and_keeps_the_pair() {
    let deps = LookupDeps::new(store_with_live_claim().await, LookupMode::KeepClaim);
    let v = as_json(&handle(&deps, fixture("connect-lookup-found.json")).await);
    assert_eq!(v["result"], "found");
    assert_eq!(v["transaction_id"], TXN);
    assert_eq!(v["original_calling_number"], CALLER);
    assert_eq!(v["original_called_number"], DIALLED);
    assert_eq!(v["sma_number"], "+18005557777");
    assert_eq!(v["connect_number"], "+18005551111");
    assert_eq!(v["pair_released"], "false");
    assert!(
        v["call_timestamp"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    assert_eq!(
        deps.store.held_pairs().len(),
        1,
        "keep mode leaves the pair held"
    );
}

#[tokio::test]
async fn release_mode_frees_the_pair_at_lookup() {
    let deps = LookupDeps::new(store_with_live_claim().await, LookupMode::ReleaseOnLookup);
    let v = as_json(&handle(&deps, fixture("connect-lookup-found.json")).await);
    assert_eq!(v["result"], "found");
    assert_eq!(v["transaction_id"], TXN);
    assert_eq!(v["pair_released"], "true");
    assert!(
        deps.store.held_pairs().is_empty(),
        "the pair is free for the next caller"
    );
}

#[tokio::test]
async fn a_free_pair_is_not_found() {
    let store = store_with_live_claim().await;
    let deps = LookupDeps::new(store, LookupMode::KeepClaim);
    let v = as_json(&handle(&deps, fixture("connect-lookup-not-found.json")).await);
    assert_eq!(v["result"], "not_found");
    assert_eq!(v["reason"], "no_live_claim");
    assert!(v.get("transaction_id").is_none());
}

#[tokio::test]
async fn an_expired_claim_is_not_found() {
    let store = store_with_live_claim().await;
    store.advance_clock(301);
    let deps = LookupDeps::new(store, LookupMode::KeepClaim);
    let v = as_json(&handle(&deps, fixture("connect-lookup-found.json")).await);
    assert_eq!(v["result"], "not_found", "only live claims match");
}

#[tokio::test]
async fn null_endpoints_are_fine_when_parameters_are_passed() {
    let deps = LookupDeps::new(store_with_live_claim().await, LookupMode::KeepClaim);
    let v = as_json(&handle(&deps, fixture("connect-lookup-null-endpoints.json")).await);
    assert_eq!(v["result"], "found");
    assert_eq!(v["transaction_id"], TXN);
}

#[tokio::test]
async fn without_parameters_the_endpoint_addresses_are_used() {
    let deps = LookupDeps::new(store_with_live_claim().await, LookupMode::KeepClaim);
    let v = as_json(&handle(&deps, fixture("connect-lookup-no-parameters.json")).await);
    assert_eq!(v["result"], "found");
    assert_eq!(v["transaction_id"], TXN);
}

#[tokio::test]
async fn missing_parameters_and_null_endpoints_are_an_error_without_store_calls() {
    let deps = LookupDeps::new(store_with_live_claim().await, LookupMode::KeepClaim);
    let before = deps.store.request_count();
    let v = as_json(&handle(&deps, fixture("connect-lookup-missing-parameters.json")).await);
    assert_eq!(v["result"], "error");
    assert_eq!(v["reason"], "missing_calling_number");
    assert_eq!(deps.store.request_count(), before);
}

#[tokio::test]
async fn a_missing_contact_id_is_an_error() {
    let deps = LookupDeps::new(store_with_live_claim().await, LookupMode::KeepClaim);
    let v = as_json(&handle(&deps, fixture("connect-lookup-missing-contact-id.json")).await);
    assert_eq!(v["result"], "error");
    assert_eq!(v["reason"], "missing_contact_id");
}

#[tokio::test]
async fn garbage_is_answered_not_rejected() {
    let deps = LookupDeps::new(store_with_live_claim().await, LookupMode::KeepClaim);
    for garbage in [
        Value::Null,
        Value::from("hello"),
        serde_json::json!({"Details": []}),
    ] {
        let v = as_json(&handle(&deps, garbage).await);
        assert_eq!(v["result"], "error");
        assert_eq!(v["reason"], "missing_calling_number");
    }
}

#[tokio::test]
async fn store_failures_map_to_error_reasons() {
    for (fault, reason) in [
        (InjectedFault::Throttle, "store_throttled"),
        (InjectedFault::Unavailable, "store_unavailable"),
    ] {
        let store = store_with_live_claim().await;
        store.inject_fault(fault);
        let deps = LookupDeps::new(store, LookupMode::KeepClaim);
        let v = as_json(&handle(&deps, fixture("connect-lookup-found.json")).await);
        assert_eq!(v["result"], "error");
        assert_eq!(v["reason"], reason);
    }
}

/// A store that never answers in time.
struct StuckStore;

impl PairStore for StuckStore {
    async fn claim(&self, _: &ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        Err(StoreError::Corrupt("not used".into()))
    }
    async fn release(&self, _: &PairKey, _: &str) -> Result<ReleaseOutcome, StoreError> {
        Err(StoreError::Corrupt("not used".into()))
    }
    async fn lookup(
        &self,
        _: &PairKey,
        _: &str,
        _: LookupMode,
    ) -> Result<Option<LiveClaim>, StoreError> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(None)
    }
}

#[tokio::test]
async fn the_handler_budget_bounds_a_stuck_store() {
    let mut deps = LookupDeps::new(StuckStore, LookupMode::KeepClaim);
    deps.budget = Duration::from_millis(200);
    let started = Instant::now();
    let v = as_json(&handle(&deps, fixture("connect-lookup-found.json")).await);
    assert_eq!(v["result"], "error");
    assert_eq!(v["reason"], "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_default_budget_is_below_connects_limit() {
    let deps = LookupDeps::new(StuckStore, LookupMode::KeepClaim);
    assert!(deps.budget < takeback_sdk::CONNECT_INVOCATION_LIMIT);
}

/// Why `takeback_connect::ConnectEvent` exists: the ready-made type refuses a `null`
/// endpoint, which would send the contact down the flow's Error branch with no `result`.
#[test]
fn aws_lambda_events_rejects_what_we_accept() {
    let event = fixture("connect-lookup-null-endpoints.json");
    assert!(
        serde_json::from_value::<aws_lambda_events::connect::ConnectEvent>(event.clone()).is_err()
    );
    let ours = takeback_connect::ConnectEvent::from_value(event);
    assert_eq!(ours.parameter("CallingNumber"), Some("+18005557777"));
}

#[tokio::test]
async fn every_lookup_fixture_gets_a_flat_answer() {
    let dir = format!("{}/../../events", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.starts_with("connect-lookup-") {
            continue;
        }
        seen += 1;
        let deps = LookupDeps::new(store_with_live_claim().await, LookupMode::KeepClaim);
        let v = as_json(&handle(&deps, fixture(&name)).await);
        assert!(
            ["found", "not_found", "error"].contains(&v["result"].as_str().unwrap()),
            "{name}: {v}"
        );
    }
    assert!(seen >= 6, "expected the lookup fixtures, saw {seen}");
}
