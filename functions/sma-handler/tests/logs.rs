//! Phone numbers never appear in full in the handler's logs, at any level down to info.

mod common;

use common::*;
use sma_handler::{SmaDeps, handle};
use takeback_common::telemetry::capture::capture_logs;
use takeback_pairs::memory::InjectedFault;

#[tokio::test]
async fn info_logs_mask_the_callers_number() {
    let (_guard, captured) = capture_logs(tracing::Level::INFO);

    let deps = SmaDeps {
        store: store(),
        call_machine: call_machine_config(),
    };
    handle(&deps, fixture("sma-new-inbound-call-basic"))
        .await
        .unwrap();
    deps.store.inject_fault(InjectedFault::Unavailable);
    let mut second = fixture("sma-new-inbound-call-basic");
    second["CallDetails"]["TransactionId"] = "another".into();
    handle(&deps, second).await.unwrap();
    handle(&deps, fixture("sma-hangup-leg-a-caller"))
        .await
        .unwrap();

    let logs = captured.text();
    assert!(
        logs.contains("decided"),
        "the handler logged nothing: {logs}"
    );
    assert!(
        logs.contains("+1********23"),
        "masked caller missing: {logs}"
    );
    for number in ["+12065550123", "2065550123"] {
        assert!(!logs.contains(number), "{number} in logs: {logs}");
    }
}
