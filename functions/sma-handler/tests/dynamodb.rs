//! The handler's releases against DynamoDB Local (`infra/dynamodb-local.sh`): a claim whose
//! outcome the handler never learned is freed by the next event that ends the call. Without
//! `AWS_ENDPOINT_URL_DYNAMODB` every test prints a SKIP line and returns.

mod common;

use common::*;
use serde_json::Value;
use sma_handler::{SmaDeps, handle};
use takeback_dynamo::pairs::DynamoStore;
use takeback_dynamo::testing;
use takeback_pairs::{ClaimRequest, LookupMode, PairStore};

async fn dynamo_deps(test: &str) -> Option<SmaDeps<DynamoStore>> {
    let client = testing::local_client(test).await?;
    let store = testing::seeded_pair_store(&client, test, &[pair()]).await;
    Some(SmaDeps {
        store,
        call_machine: call_machine_config(),
    })
}

fn request(transaction_id: &str) -> ClaimRequest {
    ClaimRequest {
        transaction_id: transaction_id.to_owned(),
        original_calling_number: "+12065550123".to_owned(),
        original_called_number: "+18005550100".to_owned(),
    }
}

/// Whether the only pair is free: no live claim on it answers a lookup (a freed pair may rest
/// before another transaction can claim it, so a probe claim would not tell).
async fn pair_is_free(store: &DynamoStore) -> bool {
    store
        .lookup(&pair(), "probe-contact", LookupMode::KeepClaim)
        .await
        .expect("DynamoDB Local answers the lookup")
        .is_none()
}

async fn answer(deps: &SmaDeps<DynamoStore>, event: Value) -> Value {
    serde_json::to_value(handle(deps, event).await.expect("an SMA event")).expect("serializable")
}

#[tokio::test]
async fn invalid_lambda_response_frees_a_claim_the_attributes_never_recorded() {
    let Some(deps) = dynamo_deps("ilr-unrecorded-claim").await else {
        return;
    };
    let first = answer(&deps, fixture("sma-new-inbound-call-basic")).await;
    assert_eq!(first["Actions"][0]["Type"], "CallAndBridge");
    assert!(!pair_is_free(&deps.store).await, "the call holds the pair");
    // The SMA rejected that response, so the attributes that named the pair never arrived.
    let answer = answer(&deps, fixture("sma-invalid-lambda-response-no-attributes")).await;
    assert_eq!(answer["Actions"][0]["Type"], "Hangup");
    assert!(
        pair_is_free(&deps.store).await,
        "the pair stays held until its lease ends"
    );
}

#[tokio::test]
async fn the_callers_hangup_frees_a_claim_whose_outcome_was_unknown() {
    let Some(deps) = dynamo_deps("hangup-unknown-claim").await else {
        return;
    };
    // The claim's write landed, but the handler saw a timeout: it told the caller "sorry" and
    // recorded no pair in the attributes.
    testing::claim_for(&deps.store, &request(TXN)).await;
    let mut hangup = fixture("sma-hangup-leg-a-caller");
    hangup["CallDetails"]["TransactionAttributes"] = serde_json::json!({
        "state": "ending",
        "caller": "+12065550123",
        "called": "+18005550100",
        "pair_held": "false"
    });
    hangup["CallDetails"]["Participants"]
        .as_array_mut()
        .expect("test set-up")
        .truncate(1);
    let _ = answer(&deps, hangup).await;
    assert!(
        pair_is_free(&deps.store).await,
        "the pair stays held until its lease ends"
    );
}

#[tokio::test]
async fn release_owned_never_frees_the_next_callers_claim() {
    let Some(deps) = dynamo_deps("release-owned-owner").await else {
        return;
    };
    testing::claim_for(&deps.store, &request(TXN)).await;
    // Connect looked the first call up, so its pair is reusable at once.
    deps.store
        .lookup(&pair(), "contact-1", LookupMode::KeepClaim)
        .await
        .expect("DynamoDB Local answers the lookup");
    deps.store
        .release(&pair(), TXN)
        .await
        .expect("DynamoDB Local answers the release");
    testing::claim_for(&deps.store, &request("next-caller")).await;
    // A late ending event of the first call: its record still names the pair.
    let outcome = deps
        .store
        .release_owned(TXN, Some(&pair()))
        .await
        .expect("DynamoDB Local answers");
    assert_eq!(outcome, takeback_pairs::ReleaseOutcome::NotHeld);
    assert!(
        !pair_is_free(&deps.store).await,
        "the next caller keeps the pair"
    );
}
