//! Throttling and unavailability of DynamoDB surface from the pair store as typed errors
//! (`StoreError::Throttled` / `Unavailable`, `is_transient()`), never as a wrong answer such as
//! `Busy` or `NotHeld`. Faults are injected with `aws-smithy-mocks` (no server) and, for a
//! connection failure, with a client pointed at a closed loopback port.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::{
    ConditionalCheckFailedException, TransactionCanceledException,
};
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use takeback_dynamo::pairs::{ClaimConfig, DynamoStore};
use takeback_pairs::strategy::ClaimRules;
use takeback_pairs::{
    ClaimOutcome, ClaimRequest, LookupMode, PairKey, PairStore, ReleaseOutcome, StoreError,
};

fn mock_store(rules: &[&Rule], use_ticket: bool) -> DynamoStore {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        // The store must classify what reaches it; SDK retries would only hide the mock.
        .retry_config(RetryConfig::disabled())
        .build();
    DynamoStore::new(Client::from_conf(conf), "pairs", "calls").with_config(ClaimConfig {
        rules: ClaimRules {
            use_ticket,
            // These tests are about the contention-aware path's transaction.
            fast_path: false,
            ..ClaimRules::default()
        },
        // One try: the store's own deadline-bound retries would hide the mock as well.
        retry_budget: std::time::Duration::ZERO,
        ..ClaimConfig::default()
    })
}

fn request() -> ClaimRequest {
    ClaimRequest {
        transaction_id: "tx-1".into(),
        original_calling_number: "+14155550100".into(),
        original_called_number: "+18005550199".into(),
    }
}

fn pair(i: u32) -> PairKey {
    PairKey {
        sma_number: format!("+1800555{i:04}"),
        connect_number: "+18884440000".into(),
    }
}

fn item_of(p: &PairKey) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("sma_number".into(), AttributeValue::S(p.sma_number.clone())),
        (
            "connect_number".into(),
            AttributeValue::S(p.connect_number.clone()),
        ),
    ])
}

fn free_pairs(n: u32) -> Rule {
    let items: Vec<_> = (0..n).map(|i| item_of(&pair(i))).collect();
    mock!(Client::query).then_output(move || {
        QueryOutput::builder()
            .set_items(Some(items.clone()))
            .count(items.len() as i32)
            .build()
    })
}

/// An error response as DynamoDB sends it (JSON 1.0 protocol): the SDK parses it exactly as it
/// would a real one, error code included.
fn aws_error(status: u16, kind: &str) -> Response {
    Response::new(
        StatusCode::try_from(status).expect("test set-up"),
        SdkBody::from(format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"injected"}}"#
        )),
    )
}

fn cancelled(codes: &[&str]) -> TransactWriteItemsError {
    let mut e = TransactionCanceledException::builder().message("cancelled");
    for code in codes {
        e = e.cancellation_reasons(CancellationReason::builder().code(*code).build());
    }
    TransactWriteItemsError::TransactionCanceledException(e.build())
}

#[tokio::test]
async fn throttled_index_query_is_a_throttled_error_not_busy() {
    let query = mock!(Client::query).then_http_response(|| aws_error(400, "ThrottlingException"));
    let store = mock_store(&[&query], false);
    let err = store.claim(&request()).await.unwrap_err();
    assert!(matches!(err, StoreError::Throttled(_)), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn provisioned_throughput_on_the_claim_write_is_throttled() {
    let query = free_pairs(3);
    let write = mock!(Client::transact_write_items)
        .then_http_response(|| aws_error(400, "ProvisionedThroughputExceededException"));
    let store = mock_store(&[&query, &write], false);
    let err = store.claim(&request()).await.unwrap_err();
    assert!(matches!(err, StoreError::Throttled(_)), "{err:?}");
    // Exactly one write was attempted: a throttle is not retried as if the pair were taken.
    assert_eq!(write.num_calls(), 1);
}

#[tokio::test]
async fn throttling_inside_a_cancelled_transaction_is_throttled() {
    let query = free_pairs(3);
    let write =
        mock!(Client::transact_write_items).then_error(|| cancelled(&["ThrottlingError", "None"]));
    let store = mock_store(&[&query, &write], false);
    let err = store.claim(&request()).await.unwrap_err();
    assert!(matches!(err, StoreError::Throttled(_)), "{err:?}");
}

#[tokio::test]
async fn a_pair_inside_a_conflicting_transaction_is_read_again_and_still_claimable() {
    // The only free pair is inside another transaction that then fails: it is still free, and
    // the caller must get it rather than hear busy.
    let query = free_pairs(1);
    let write = mock!(Client::transact_write_items)
        .sequence()
        .error(|| cancelled(&["TransactionConflict", "None"]))
        .output(|| TransactWriteItemsOutput::builder().build())
        .build();
    let store = mock_store(&[&query, &write], false);
    let ClaimOutcome::Claimed(claim) = store.claim(&request()).await.unwrap() else {
        panic!("expected a claim");
    };
    assert_eq!(write.num_calls(), 2);
    // Read again after the conflict, which still shows the pair.
    assert_eq!(query.num_calls(), 2);
    assert_eq!(claim.pair, pair(0));
    assert_eq!(claim.transaction_id, "tx-1");
    assert_eq!(store.metrics().claim_write_attempts, 2);
}

#[tokio::test]
async fn a_failing_ticket_counter_does_not_fail_the_claim() {
    let ticket =
        mock!(Client::update_item).then_http_response(|| aws_error(400, "ThrottlingException"));
    let query = free_pairs(3);
    let write = mock!(Client::transact_write_items)
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let store = mock_store(&[&ticket, &query, &write], true);
    assert!(matches!(
        store.claim(&request()).await.unwrap(),
        ClaimOutcome::Claimed(_)
    ));
    assert_eq!(ticket.num_calls(), 1);
}

#[tokio::test]
async fn release_errors_surface_so_a_retry_can_redo_it() {
    let unavailable =
        mock!(Client::update_item).then_http_response(|| aws_error(503, "ServiceUnavailable"));
    let store = mock_store(&[&unavailable], false);
    let err = store.release(&pair(0), "tx-1").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");

    let throttled =
        mock!(Client::update_item).then_http_response(|| aws_error(400, "RequestLimitExceeded"));
    let store = mock_store(&[&throttled], false);
    let err = store.release(&pair(0), "tx-1").await.unwrap_err();
    assert!(matches!(err, StoreError::Throttled(_)), "{err:?}");

    // Only a failed ownership condition means "not held".
    let not_held = mock!(Client::update_item).then_error(|| {
        UpdateItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder().build(),
        )
    });
    let store = mock_store(&[&not_held], false);
    assert_eq!(
        store.release(&pair(0), "tx-1").await.unwrap(),
        ReleaseOutcome::NotHeld
    );
}

#[tokio::test]
async fn throttled_lookup_is_an_error_not_a_miss() {
    let throttled = mock!(Client::update_item)
        .then_http_response(|| aws_error(400, "ProvisionedThroughputExceededException"));
    let store = mock_store(&[&throttled], false);
    let err = store
        .lookup(&pair(0), "contact-1", LookupMode::KeepClaim)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Throttled(_)), "{err:?}");

    let ok = mock!(Client::update_item).then_output(|| UpdateItemOutput::builder().build());
    let store = mock_store(&[&ok], false);
    // A successful update that returns no attributes is malformed, not a live claim.
    let err = store
        .lookup(&pair(0), "contact-1", LookupMode::KeepClaim)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}

#[tokio::test]
async fn unreachable_dynamodb_is_unavailable() {
    // A loopback port with nothing listening: connection refused, a dispatch failure.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "test"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .retry_config(RetryConfig::disabled())
        .build();
    let store = DynamoStore::new(Client::from_conf(conf), "pairs", "calls");
    let err = store.claim(&request()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.is_transient());
}

fn store_with_budget(rules: &[&Rule], budget: std::time::Duration) -> DynamoStore {
    let store = mock_store(rules, false);
    let config = ClaimConfig {
        retry_budget: budget,
        ..store.config().clone()
    };
    store.with_config(config)
}

#[tokio::test]
async fn transient_errors_are_retried_while_the_budget_lasts() {
    // Throttled, 5xx, throttled, 5xx, then answered: far more than the SDK's two attempts.
    let flaky = mock!(Client::update_item)
        .sequence()
        .http_response(|| aws_error(400, "ThrottlingException"))
        .http_response(|| aws_error(500, "InternalServerError"))
        .http_response(|| aws_error(400, "ProvisionedThroughputExceededException"))
        .http_response(|| aws_error(503, "ServiceUnavailable"))
        .output(|| UpdateItemOutput::builder().build())
        .build();
    let store = store_with_budget(&[&flaky], std::time::Duration::from_secs(5));
    assert_eq!(
        store.release(&pair(0), "tx-1").await.unwrap(),
        ReleaseOutcome::Released
    );
    assert_eq!(flaky.num_calls(), 5);
    assert_eq!(store.metrics().retries, 4);
}

#[tokio::test]
async fn retries_stop_when_the_budget_is_spent() {
    let throttled = mock!(Client::update_item)
        .match_requests(|_| true)
        .then_http_response(|| aws_error(400, "ThrottlingException"));
    let budget = std::time::Duration::from_millis(300);
    let store = store_with_budget(&[&throttled], budget);
    let started = std::time::Instant::now();
    let err = store.release(&pair(0), "tx-1").await.unwrap_err();
    assert!(matches!(err, StoreError::Throttled(_)), "{err:?}");
    // Retried (more than once), and given up within the budget: a backoff that would end past
    // it is not slept.
    assert!(throttled.num_calls() > 2, "{} calls", throttled.num_calls());
    assert!(started.elapsed() < budget + std::time::Duration::from_millis(200));
}

#[tokio::test]
async fn a_conditional_failure_is_an_answer_and_never_retried() {
    let not_held = mock!(Client::update_item).then_error(|| {
        UpdateItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder().build(),
        )
    });
    let store = store_with_budget(&[&not_held], std::time::Duration::from_secs(5));
    assert_eq!(
        store.release(&pair(0), "tx-1").await.unwrap(),
        ReleaseOutcome::NotHeld
    );
    assert_eq!(not_held.num_calls(), 1);
}

#[tokio::test]
async fn a_write_on_a_pair_inside_another_transaction_waits_for_it_instead_of_failing() {
    // A release that meets another request's transaction on the pair, then goes through.
    let conflicted = mock!(Client::update_item)
        .sequence()
        .http_response(|| aws_error(400, "TransactionConflictException"))
        .output(|| UpdateItemOutput::builder().build())
        .build();
    let store = store_with_budget(&[&conflicted], std::time::Duration::from_secs(5));
    assert_eq!(
        store.release(&pair(0), "tx-1").await.unwrap(),
        ReleaseOutcome::Released
    );
    assert_eq!(conflicted.num_calls(), 2);

    // The fast path's single write meets a fallback's transaction on its pair: the caller
    // gets the pair once that transaction is over, not an "unavailable".
    let query = free_pairs(1);
    let write = mock!(Client::update_item)
        .sequence()
        .http_response(|| aws_error(400, "TransactionConflictException"))
        .output(|| UpdateItemOutput::builder().build())
        .build();
    let store = store_with_budget(&[&query, &write], std::time::Duration::from_secs(5));
    let config = ClaimConfig {
        rules: ClaimRules {
            fast_path: true,
            ..store.config().rules.clone()
        },
        ..store.config().clone()
    };
    let store = store.with_config(config);
    let ClaimOutcome::Claimed(claim) = store.claim(&request()).await.unwrap() else {
        panic!("expected a claim");
    };
    assert_eq!(claim.pair, pair(0));
    assert_eq!(write.num_calls(), 2, "the conflicted write and its repeat");
    assert_eq!(query.num_calls(), 1, "the view's one read");
    assert_eq!(
        store.metrics().claim_write_attempts,
        1,
        "one attempt, repeated"
    );
}
