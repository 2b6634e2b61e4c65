//! The transfer handler with the real DynamoDB store (Amazon DynamoDB Local) and the real
//! Chime SDK Voice client against the loopback fake. Without `AWS_ENDPOINT_URL_DYNAMODB` the
//! DynamoDB tests print a loud SKIP line and return; each creates its own tables. The last test
//! needs no DynamoDB: it points the store at a black hole.

mod support;

use std::time::{Duration, Instant};

use aws_sdk_chimesdkvoice::config::{Credentials, Region};
use aws_sdk_dynamodb::Client;
use connect_transfer::{TransferDeps, handle};
use support::fake_chime::{FakeChime, Reply};
use support::*;
use takeback_dynamo::pairs::DynamoStore;
use takeback_dynamo::testing;
use takeback_pairs::{
    CallStore, ClaimOutcome, ClaimRequest, LookupMode, PairStore, TransferIntent,
};

async fn local_client(test: &str) -> Option<Client> {
    if !takeback_dynamo::tables::dynamodb_local_configured(test) {
        return None;
    }
    Some(Client::new(&takeback_sdk::load().await))
}

/// Fresh tables with the fixtures' pair claimed by TXN (what the SMA handler does first).
async fn store_with_live_claim(test: &str) -> Option<DynamoStore> {
    let client = local_client(test).await?;
    let store = testing::seeded_pair_store(&client, test, &[fixture_pair()]).await;
    testing::claim_for(
        &store,
        &ClaimRequest {
            transaction_id: TXN.into(),
            original_calling_number: "+13125550142".into(),
            original_called_number: "+18005550000".into(),
        },
    )
    .await;
    Some(store)
}

#[tokio::test]
async fn by_pair_in_keep_mode_records_the_intent_and_requests_the_transfer() {
    let Some(store) = store_with_live_claim("xfer-pair").await else {
        return;
    };
    let fake = FakeChime::start(Reply::status(202)).await;
    let d = TransferDeps::new(
        store.clone(),
        chime_client(&fake).await,
        SMA_ID.into(),
        policy(),
    );
    let started = Instant::now();
    let v = flat(&handle(&d, fixture("connect-transfer-by-pair.json")).await);
    eprintln!(
        "transfer (lookup + intent + update) answered in {:?}",
        started.elapsed()
    );
    assert_eq!(v["result"], "transferring");
    assert_eq!(v["transaction_id"], TXN);
    assert_eq!(v["intent_recorded"], "true");
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(
        store.transfer_intent(TXN).await.unwrap(),
        Some(TransferIntent {
            target_uri: DEFAULT_TARGET.into(),
            target_arn: VC.into(),
            contact_id: Some(CONTACT.into()),
        }),
        "the SMA handler can read what was requested"
    );
}

/// Release-on-lookup: the lookup frees the pair at once, and the next caller may claim it while
/// the first contact is still in the flow. The first contact's transfer must then go by the
/// transaction id it stored as a contact attribute; by pair it must not reach the new call.
#[tokio::test]
async fn release_mode_transfers_by_the_transaction_attribute() {
    let Some(store) = store_with_live_claim("xfer-release").await else {
        return;
    };
    let looked_up = store
        .lookup(&fixture_pair(), CONTACT, LookupMode::ReleaseOnLookup)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(looked_up.transaction_id, TXN);
    let next_caller = store
        .claim(&ClaimRequest {
            transaction_id: "next-caller-txn".into(),
            original_calling_number: "+13125550199".into(),
            original_called_number: "+18005550000".into(),
        })
        .await
        .unwrap();
    assert!(matches!(next_caller, ClaimOutcome::Claimed(c) if c.pair == fixture_pair()));

    let fake = FakeChime::start(Reply::status(202)).await;
    let d = TransferDeps::new(
        store.clone(),
        chime_client(&fake).await,
        SMA_ID.into(),
        policy(),
    );

    let by_pair = flat(&handle(&d, fixture("connect-transfer-by-pair.json")).await);
    assert_eq!(
        by_pair["result"], "not_found",
        "never the next caller's call: {by_pair}"
    );
    assert!(fake.requests().is_empty());

    let v = flat(&handle(&d, fixture("connect-transfer-attribute-only.json")).await);
    assert_eq!(v["result"], "transferring");
    assert_eq!(v["transaction_id"], TXN);
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].path.ends_with(&format!("/calls/{TXN}")));
    assert!(store.transfer_intent(TXN).await.unwrap().is_some());
    assert!(
        store
            .transfer_intent("next-caller-txn")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_call_that_ended_is_not_found_but_the_intent_was_written_first() {
    let Some(store) = store_with_live_claim("xfer-gone").await else {
        return;
    };
    let fake = FakeChime::start(Reply::status(404)).await;
    let d = TransferDeps::new(
        store.clone(),
        chime_client(&fake).await,
        SMA_ID.into(),
        policy(),
    );
    let v = flat(&handle(&d, fixture("connect-transfer-room-extension.json")).await);
    assert_eq!(v["result"], "not_found");
    assert_eq!(v["reason"], "call_ended");
    let intent = store.transfer_intent(TXN).await.unwrap().unwrap();
    assert_eq!(intent.target_uri, "1234");
}

/// DynamoDB that never answers: recording the intent gives up after the SDK's operation
/// timeout and the transfer is still requested, all well inside Connect's 8 s.
#[tokio::test]
async fn a_stuck_dynamodb_does_not_stop_the_transfer() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let ddb_config = takeback_sdk::loader()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "test"))
        .endpoint_url(&url)
        .load()
        .await;
    let store = DynamoStore::new(Client::new(&ddb_config), "pairs", "calls");
    let fake = FakeChime::start(Reply::status(202)).await;
    let d = TransferDeps::new(store, chime_client(&fake).await, SMA_ID.into(), policy());
    let started = Instant::now();
    let v = flat(&handle(&d, fixture("connect-transfer-transaction-id.json")).await);
    let elapsed = started.elapsed();
    hold.abort();
    eprintln!("stuck DynamoDB: transfer answered {v} after {elapsed:?}");
    assert_eq!(v["result"], "transferring");
    assert_eq!(v["intent_recorded"], "false");
    assert_eq!(fake.requests().len(), 1);
    assert!(
        elapsed < takeback_sdk::OPERATION_TIMEOUT + Duration::from_millis(700),
        "{elapsed:?}"
    );
}
