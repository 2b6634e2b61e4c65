//! The lookup handler with the real DynamoDB store against Amazon DynamoDB Local
//! (`infra/dynamodb-local.sh start && eval "$(infra/dynamodb-local.sh env)"`). Without
//! `AWS_ENDPOINT_URL_DYNAMODB` these tests print a loud SKIP line and return. Each test creates
//! its own tables. The last test needs no DynamoDB: it points the client at a black hole.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use connect_lookup::{LookupDeps, handle};
use serde_json::Value;
use takeback_connect::LookupResponse;
use takeback_dynamo::pairs::{DynamoStore, attr};
use takeback_dynamo::seed::seed_pairs;
use takeback_dynamo::testing;
use takeback_pairs::{ClaimRequest, LookupMode, PairKey};

const TXN: &str = "5d5c8c2e-4f3a-4a55-9f0e-2b9d3c1a7e01";
const CONTACT: &str = "7c0e5f3a-91d2-4b8e-a6f4-3d2c1b0a9e8f";
const CALLER: &str = "+13125550142";

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("test set-up"))
        .expect("test set-up")
}

fn flat(r: &LookupResponse) -> Value {
    let v = serde_json::to_value(r).expect("test set-up");
    assert!(
        v.as_object()
            .expect("test set-up")
            .values()
            .all(Value::is_string),
        "{v}"
    );
    v
}

fn pair(sma: &str, connect: &str) -> PairKey {
    PairKey {
        sma_number: sma.into(),
        connect_number: connect.into(),
    }
}

async fn local_client(test: &str) -> Option<Client> {
    if !takeback_dynamo::tables::dynamodb_local_configured(test) {
        return None;
    }
    // The production loader: the bounded timeouts/retries, endpoint from the environment.
    Some(Client::new(&takeback_sdk::load().await))
}

struct Tables {
    client: Client,
    store: DynamoStore,
    pairs_table: String,
    clock: Arc<AtomicI64>,
}

/// Fresh tables; the fixtures' pair (+18005557777 → +18005551111) claimed by TXN for CALLER,
/// and the pair `connect-lookup-not-found.json` asks about seeded free.
async fn tables_with_live_claim(test: &str) -> Option<Tables> {
    let client = local_client(test).await?;
    let (clock, cell) = testing::settable_clock();
    let store = testing::seeded_pair_store(&client, test, &[pair("+18005557777", "+18005551111")])
        .await
        .with_clock(clock);
    testing::claim_for(
        &store,
        &ClaimRequest {
            transaction_id: TXN.into(),
            original_calling_number: CALLER.into(),
            original_called_number: "+18005550000".into(),
        },
    )
    .await;
    let pairs_table = store.pairs_table().to_owned();
    seed_pairs(
        &client,
        &pairs_table,
        &[pair("+18005559999", "+18005553333")],
    )
    .await
    .expect("test set-up");
    Some(Tables {
        client,
        store,
        pairs_table,
        clock: cell,
    })
}

async fn pair_item(t: &Tables) -> HashMap<String, AttributeValue> {
    t.client
        .get_item()
        .table_name(&t.pairs_table)
        .key(attr::SMA_NUMBER, AttributeValue::S("+18005557777".into()))
        .key(
            attr::CONNECT_NUMBER,
            AttributeValue::S("+18005551111".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("test set-up")
        .item
        .expect("test set-up")
}

fn s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

#[tokio::test]
async fn keep_mode_finds_the_call_and_binds_the_contact() {
    let Some(t) = tables_with_live_claim("lookup-keep").await else {
        return;
    };
    let deps = LookupDeps::new(t.store.clone(), LookupMode::KeepClaim);
    let started = Instant::now();
    let v = flat(&handle(&deps, fixture("connect-lookup-found.json")).await);
    eprintln!(
        "lookup against DynamoDB Local answered in {:?}",
        started.elapsed()
    );
    assert_eq!(v["result"], "found");
    assert_eq!(v["transaction_id"], TXN);
    assert_eq!(v["original_calling_number"], CALLER);
    assert_eq!(v["pair_released"], "false");

    let item = pair_item(&t).await;
    assert_eq!(s(&item, attr::IN_USE), Some("true"));
    assert_eq!(
        s(&item, attr::CONTACT_ID),
        Some(CONTACT),
        "the contact is bound"
    );
}

#[tokio::test]
async fn release_mode_frees_the_pair_and_survives_connect_retries() {
    let Some(t) = tables_with_live_claim("lookup-release").await else {
        return;
    };
    let deps = LookupDeps::new(t.store.clone(), LookupMode::ReleaseOnLookup);
    let v = flat(&handle(&deps, fixture("connect-lookup-found.json")).await);
    assert_eq!(v["result"], "found");
    assert_eq!(v["pair_released"], "true");
    assert_eq!(s(&pair_item(&t).await, attr::IN_USE), Some("false"));

    // Connect retries an invocation (throttle/5xx): the same contact gets the same answer.
    let again = flat(&handle(&deps, fixture("connect-lookup-found.json")).await);
    assert_eq!(again["result"], "found");
    assert_eq!(again["transaction_id"], TXN);

    // Another contact on the now free pair finds nothing.
    let mut other = fixture("connect-lookup-found.json");
    other["Details"]["ContactData"]["ContactId"] = Value::from("another-contact");
    let v = flat(&handle(&deps, other).await);
    assert_eq!(v["result"], "not_found");
}

#[tokio::test]
async fn free_and_expired_pairs_are_not_found() {
    let Some(t) = tables_with_live_claim("lookup-expired").await else {
        return;
    };
    let deps = LookupDeps::new(t.store.clone(), LookupMode::KeepClaim);
    let v = flat(&handle(&deps, fixture("connect-lookup-not-found.json")).await);
    assert_eq!(v["result"], "not_found");

    let lease_ms = t.store.config().rules.lease_seconds * 1000;
    t.clock.fetch_add(lease_ms + 1_000, Ordering::SeqCst);
    let v = flat(&handle(&deps, fixture("connect-lookup-found.json")).await);
    assert_eq!(
        v["result"], "not_found",
        "an expired lease is not a live claim"
    );
}

/// DynamoDB that accepts connections and never answers: the SDK limits from `sdk` end the
/// lookup well inside Connect's 8 s.
#[tokio::test]
async fn a_stuck_dynamodb_is_cut_off_inside_connects_limit() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket); // keep it open, never answer
        }
    });
    let sdk_config = takeback_sdk::loader()
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "test",
        ))
        .endpoint_url(&url)
        .load()
        .await;
    let store = DynamoStore::new(Client::new(&sdk_config), "pairs", "calls");
    let deps = LookupDeps::new(store, LookupMode::KeepClaim);
    let started = Instant::now();
    let v = flat(&handle(&deps, fixture("connect-lookup-found.json")).await);
    let elapsed = started.elapsed();
    hold.abort();
    eprintln!("stuck DynamoDB: answered {v} after {elapsed:?}");
    assert_eq!(v["result"], "error");
    assert!(
        v["reason"].as_str().unwrap().starts_with("store_"),
        "a store failure, not the handler budget: {v}"
    );
    assert!(
        elapsed < takeback_sdk::OPERATION_TIMEOUT + Duration::from_millis(500),
        "{elapsed:?}"
    );
}
