//! DynamoDB Local for tests (feature `test-support`): a client when the environment points at a
//! local server — otherwise `None`, and the test prints a SKIP line and passes — and fresh,
//! uniquely named tables created from the shared definitions, so tests never share state.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use aws_sdk_dynamodb::Client;
use takeback_pairs::{ClaimOutcome, ClaimRequest, PairKey, PairStore};

use crate::pairs::{Clock, DynamoStore};
use crate::seed::seed_pairs;
use crate::tables::{self, CreateOutcome, TableDef, create_table, dynamodb_local_configured};

/// A client for the DynamoDB Local that `AWS_ENDPOINT_URL_DYNAMODB` names, with the SDK's
/// default time limits (a loaded test machine can be slower than the production limits allow).
pub async fn local_client(test: &str) -> Option<Client> {
    if !dynamodb_local_configured(test) {
        return None;
    }
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    Some(Client::new(&config))
}

/// Creates `def` under a name no other test uses (`<prefix>-<test>-<uuid>`) and returns it.
pub async fn fresh_table(client: &Client, def: &TableDef, prefix: &str, test: &str) -> String {
    let name = format!("{prefix}-{test}-{}", uuid::Uuid::new_v4().simple());
    let outcome = create_table(client, def, &name)
        .await
        .expect("DynamoDB Local creates the table");
    // The name is unique, so a table that already exists is this very create: on a loaded
    // machine the SDK can retry a CreateTable whose first attempt landed but answered late.
    assert!(
        matches!(
            outcome,
            CreateOutcome::Created | CreateOutcome::AlreadyExisted
        ),
        "{name}: {outcome:?}"
    );
    name
}

/// Fresh PAIRS and CALLS tables with `pairs` seeded free, and a store over them.
pub async fn seeded_pair_store(client: &Client, test: &str, pairs: &[PairKey]) -> DynamoStore {
    let pairs_table = fresh_table(client, &tables::PAIRS, "pairs", test).await;
    let calls_table = fresh_table(client, &tables::CALLS, "calls", test).await;
    let report = seed_pairs(client, &pairs_table, pairs)
        .await
        .expect("DynamoDB Local takes the seed");
    assert_eq!(report.added, pairs.len());
    DynamoStore::new(client.clone(), pairs_table, calls_table)
}

/// Claims a pair for `request` and insists that it worked (what the SMA handler does first).
pub async fn claim_for(store: &impl PairStore, request: &ClaimRequest) {
    let outcome = store
        .claim(request)
        .await
        .expect("DynamoDB Local answers the claim");
    assert!(matches!(outcome, ClaimOutcome::Claimed(_)), "{outcome:?}");
}

/// A clock (epoch ms) that starts at the wall clock and that the test moves by hand, so lease
/// expiry is tested without sleeping.
pub fn settable_clock() -> (Clock, Arc<AtomicI64>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let cell = Arc::new(AtomicI64::new(now));
    let reader = Arc::clone(&cell);
    (Arc::new(move || reader.load(Ordering::SeqCst)), cell)
}
