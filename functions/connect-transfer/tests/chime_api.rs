//! The real `aws-sdk-chimesdkvoice` client (with the project's timeouts, retries and 429
//! classifier) against a loopback fake of `UpdateSipMediaApplicationCall`: what is sent, and how
//! 202 / 400 / 404 / 429 / 500 / a stuck server come back to the flow.

mod support;

use std::time::{Duration, Instant};

use aws_sdk_chimesdkvoice::config::{Credentials, Region};
use connect_transfer::{TransferDeps, handle};
use serde_json::json;
use support::fake_chime::{FakeChime, Reply};
use support::*;
use takeback_chime as chime;

async fn deps_for(fake: &FakeChime) -> TransferDeps<SharedStore, chime::SdkCallUpdater> {
    TransferDeps::new(
        shared_store(),
        chime_client(fake).await,
        SMA_ID.into(),
        policy(),
    )
}

#[tokio::test]
async fn accepted_update_sends_the_agreed_arguments() {
    let fake = FakeChime::start(Reply::status(202)).await;
    let d = deps_for(&fake).await;
    let v = flat(&handle(&d, fixture("connect-transfer-room-extension.json")).await);
    assert_eq!(v["result"], "transferring");
    assert_eq!(v["transfer_target"], "1234");

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.path,
        format!("/sip-media-applications/{SMA_ID}/calls/{TXN}")
    );
    assert!(r.signed, "the SDK signs the request");
    assert_eq!(
        r.body,
        json!({"Arguments": {
            "Transfer": "true",
            "TransferTarget": "1234",
            "TransferTargetArn": VC,
            "ContactId": CONTACT,
        }})
    );
}

#[tokio::test]
async fn not_found_means_the_call_is_gone_and_is_not_retried() {
    let fake = FakeChime::start(Reply::status(404)).await;
    let d = deps_for(&fake).await;
    let v = flat(&handle(&d, fixture("connect-transfer-transaction-id.json")).await);
    assert_eq!(v["result"], "not_found");
    assert_eq!(v["reason"], "call_ended");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn bad_request_is_an_error_and_is_not_retried() {
    let fake = FakeChime::start(Reply::status(400)).await;
    let d = deps_for(&fake).await;
    let v = flat(&handle(&d, fixture("connect-transfer-transaction-id.json")).await);
    assert_eq!(v["result"], "error");
    assert_eq!(v["reason"], "chime_bad_request");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn throttling_is_retried_once_then_reported() {
    let fake = FakeChime::start(Reply::status(429)).await;
    let d = deps_for(&fake).await;
    let v = flat(&handle(&d, fixture("connect-transfer-transaction-id.json")).await);
    assert_eq!(v["result"], "error");
    assert_eq!(v["reason"], "chime_throttled");
    assert_eq!(
        fake.requests().len(),
        takeback_sdk::MAX_ATTEMPTS as usize,
        "ThrottledClientException gets the bounded retry"
    );
}

/// Why `chime::ThrottledClientIsThrottling` exists: without it the SDK does not retry a 429.
#[tokio::test]
async fn without_our_classifier_the_sdk_would_not_retry_a_throttle() {
    let fake = FakeChime::start(Reply::status(429)).await;
    let sdk_config = takeback_sdk::loader()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "test"))
        .load()
        .await;
    let plain = aws_sdk_chimesdkvoice::Client::from_conf(
        aws_sdk_chimesdkvoice::config::Builder::from(&sdk_config)
            .endpoint_url(&fake.url)
            .build(),
    );
    let result = plain
        .update_sip_media_application_call()
        .sip_media_application_id(SMA_ID)
        .transaction_id(TXN)
        .arguments("Transfer", "true")
        .send()
        .await;
    assert!(result.is_err());
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn one_throttle_then_success_transfers() {
    let fake = FakeChime::start(Reply::status(202)).await;
    fake.script([Reply::status(429)]);
    let d = deps_for(&fake).await;
    let v = flat(&handle(&d, fixture("connect-transfer-transaction-id.json")).await);
    assert_eq!(v["result"], "transferring");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn server_failures_are_retried_within_the_bound() {
    for status in [500, 503] {
        let fake = FakeChime::start(Reply::status(status)).await;
        let d = deps_for(&fake).await;
        let v = flat(&handle(&d, fixture("connect-transfer-transaction-id.json")).await);
        assert_eq!(v["result"], "error", "{status}");
        assert_eq!(v["reason"], "chime_unavailable", "{status}");
        assert_eq!(fake.requests().len(), 2, "{status}: exactly one retry");
    }
}

#[tokio::test]
async fn a_stuck_api_is_cut_off_by_the_sdk_timeouts() {
    let fake = FakeChime::start(Reply::slow(202, Duration::from_secs(10))).await;
    let d = deps_for(&fake).await;
    let started = Instant::now();
    let v = flat(&handle(&d, fixture("connect-transfer-transaction-id.json")).await);
    let elapsed = started.elapsed();
    assert_eq!(v["result"], "error");
    assert_eq!(v["reason"], "chime_timeout");
    assert!(
        elapsed < takeback_sdk::OPERATION_TIMEOUT + Duration::from_millis(500),
        "answered after {elapsed:?}"
    );
    assert!(fake.requests().len() <= 2);
    eprintln!(
        "stuck API answered after {elapsed:?} with {} attempts",
        fake.requests().len()
    );
}

/// The production path (`sdk::loader` → `chime::client`) finds the endpoint through the
/// standard `AWS_ENDPOINT_URL_CHIME_SDK_VOICE` variable, as the emulator and local stack use it.
/// The environment is injected into the loader, not set on the test process.
#[tokio::test]
async fn the_standard_endpoint_variable_reaches_the_fake() {
    let fake = FakeChime::start(Reply::status(202)).await;
    let env = aws_types::os_shim_internal::Env::from_slice(&[
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_ENDPOINT_URL_CHIME_SDK_VOICE", fake.url.as_str()),
    ]);
    let sdk_config = takeback_sdk::loader()
        .env(env)
        .fs(aws_types::os_shim_internal::Fs::from_slice(&[]))
        .load()
        .await;
    let d = TransferDeps::new(
        shared_store(),
        chime::client(&sdk_config),
        SMA_ID.into(),
        policy(),
    );
    let v = flat(&handle(&d, fixture("connect-transfer-transaction-id.json")).await);
    assert_eq!(v["result"], "transferring");
    assert_eq!(fake.requests().len(), 1);
}
