//! Property tests over random event sequences played against the real handler, with the
//! SMA's attribute semantics (a response's attributes replace the stored ones; absent keeps).

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use sma_handler::{SmaDeps, handle};

#[derive(Debug, Clone, Copy)]
enum Step {
    NewInbound,
    BridgeSucceeded { to_target: bool },
    HangupSucceeded,
    BridgeFailed,
    HangupFailed,
    SpeakFailed,
    CallerHangsUp,
    ConnectLegHangsUp,
    TargetLegHangsUp,
    TransferUpdate,
    UpdateWithBadTarget,
    Ringing,
    InvalidResponse,
    Unknown,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::NewInbound),
        any::<bool>().prop_map(|to_target| Step::BridgeSucceeded { to_target }),
        Just(Step::HangupSucceeded),
        Just(Step::BridgeFailed),
        Just(Step::HangupFailed),
        Just(Step::SpeakFailed),
        Just(Step::CallerHangsUp),
        Just(Step::ConnectLegHangsUp),
        Just(Step::TargetLegHangsUp),
        Just(Step::TransferUpdate),
        Just(Step::UpdateWithBadTarget),
        Just(Step::Ringing),
        Just(Step::InvalidResponse),
        Just(Step::Unknown),
    ]
}

fn participants(b_call_id: &str) -> Value {
    json!([
        {"CallId": "leg-a", "ParticipantTag": "LEG-A", "From": "+12065550123", "To": "+18005550100", "Status": "Connected"},
        {"CallId": b_call_id, "ParticipantTag": "LEG-B", "From": SMA, "To": CONNECT, "Status": "Connected"}
    ])
}

fn event(step: Step, attrs: &BTreeMap<String, String>) -> Value {
    let (kind, action, b) = match step {
        Step::NewInbound => ("NEW_INBOUND_CALL", Value::Null, "none"),
        Step::BridgeSucceeded { to_target } => (
            "ACTION_SUCCESSFUL",
            json!({"Type": "CallAndBridge"}),
            if to_target { "target" } else { "connect" },
        ),
        Step::HangupSucceeded => ("ACTION_SUCCESSFUL", json!({"Type": "Hangup"}), "connect"),
        Step::BridgeFailed => (
            "ACTION_FAILED",
            json!({"Type": "CallAndBridge", "ErrorType": "CallNotAnswered"}),
            "none",
        ),
        Step::HangupFailed => (
            "ACTION_FAILED",
            json!({"Type": "Hangup", "ErrorType": "InvalidActionParameter"}),
            "connect",
        ),
        Step::SpeakFailed => (
            "ACTION_FAILED",
            json!({"Type": "Speak", "ErrorType": "SystemException"}),
            "none",
        ),
        Step::CallerHangsUp => (
            "HANGUP",
            json!({"Type": "Hangup", "Parameters": {"CallId": "leg-a", "ParticipantTag": "LEG-A", "SipResponseCode": 0}}),
            "connect",
        ),
        Step::ConnectLegHangsUp => (
            "HANGUP",
            json!({"Type": "Hangup", "Parameters": {"CallId": "connect", "ParticipantTag": "LEG-B", "SipResponseCode": 0}}),
            "connect",
        ),
        Step::TargetLegHangsUp => (
            "HANGUP",
            json!({"Type": "Hangup", "Parameters": {"CallId": "target", "ParticipantTag": "LEG-B", "SipResponseCode": 0}}),
            "target",
        ),
        Step::TransferUpdate => (
            "CALL_UPDATE_REQUESTED",
            json!({"Type": "CallUpdateRequest", "Parameters": {"Arguments": {"Transfer": "true", "TransferTarget": "2001", "TransferTargetArn": VC}}}),
            "connect",
        ),
        Step::UpdateWithBadTarget => (
            "CALL_UPDATE_REQUESTED",
            json!({"Type": "CallUpdateRequest", "Parameters": {"Arguments": {"Transfer": "true", "TransferTarget": "no spaces allowed", "TransferTargetArn": VC}}}),
            "connect",
        ),
        Step::Ringing => ("RINGING", Value::Null, "connect"),
        Step::InvalidResponse => ("INVALID_LAMBDA_RESPONSE", Value::Null, "connect"),
        Step::Unknown => ("SOMETHING_NEW", Value::Null, "connect"),
    };
    let mut e = json!({
        "SchemaVersion": "1.0", "InvocationEventType": kind,
        "CallDetails": {"TransactionId": TXN, "TransactionAttributes": attrs, "Participants": participants(b)}
    });
    if !action.is_null() {
        e["ActionData"] = action;
    }
    e
}

fn is_transfer_bridge(action: &Value) -> bool {
    action["Type"] == "CallAndBridge"
        && action["Parameters"]["Endpoints"][0]["BridgeEndpointType"] == "AWS"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_event_sequences_keep_the_invariants(
        steps in proptest::collection::vec((step(), any::<bool>()), 1..40)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("test set-up");
        runtime.block_on(async {
            let deps = SmaDeps { store: store(), call_machine: call_machine_config() };
            // The call always starts with NEW_INBOUND_CALL; the rest is random.
            let steps = std::iter::once((Step::NewInbound, false)).chain(steps);
            let mut stored: BTreeMap<String, String> = BTreeMap::new();
            let mut transfers = 0;
            let mut pairs_seen = std::collections::BTreeSet::new();
            for (step, redelivered) in steps {
                let payload = event(step, &stored);
                if redelivered {
                    // The SMA timed out on the first delivery: its response was never applied.
                    handle(&deps, payload.clone()).await.expect("test set-up");
                }
                let response = serde_json::to_value(handle(&deps, payload).await.expect("test set-up")).expect("test set-up");
                let actions = response["Actions"].as_array().expect("test set-up");
                prop_assert!(actions.len() <= 10);
                // A failed hold message cancels the bridge queued behind it; only then is the
                // bridge issued again, so it is not a second transfer.
                if !matches!(step, Step::SpeakFailed) {
                    transfers += actions.iter().filter(|a| is_transfer_bridge(a)).count();
                }
                match response.get("TransactionAttributes") {
                    None => {}
                    Some(Value::Object(map)) => {
                        prop_assert!(!map.is_empty(), "an empty map would erase the call's state");
                        prop_assert!(map.len() <= 10);
                        stored = map.iter().map(|(k, v)| (k.clone(), v.as_str().expect("test set-up").to_owned())).collect();
                    }
                    Some(other) => prop_assert!(false, "attributes not a map: {other}"),
                }
                for (pair, _) in deps.store.held_pairs() {
                    pairs_seen.insert(pair);
                }
                if matches!(step, Step::CallerHangsUp) {
                    prop_assert!(deps.store.held_pairs().is_empty(), "caller gone, pair still held");
                }
            }
            prop_assert!(transfers <= 1, "{transfers} transfers in one call");
            prop_assert!(pairs_seen.len() <= 1, "one call claimed {} pairs", pairs_seen.len());
            Ok(())
        })?;
    }
}
