//! Every `events/sma-*.json` fixture through the real handler with an in-memory store.

mod common;

use common::*;
use serde_json::Value;
use sma_handler::{SmaDeps, handle};
use takeback_pairs::memory::{InjectedFault, MemoryStore};
use takeback_pairs::{CallStore, ClaimRequest, PairStore, TransferIntent};

/// (fixture, action types, state after — `None` when the response leaves attributes out,
/// whether the fixture's transaction still holds the pair afterwards).
const EXPECTED: &[(&str, &[&str], Option<&str>, bool)] = &[
    (
        "sma-new-inbound-call-basic",
        &["CallAndBridge"],
        Some("connecting"),
        true,
    ),
    (
        "sma-new-inbound-call-leg-a-mixed-case",
        &["CallAndBridge"],
        Some("connecting"),
        true,
    ),
    (
        "sma-new-inbound-call-missing-participants",
        &["Hangup"],
        Some("ending"),
        false,
    ),
    ("sma-new-outbound-call-basic", &[], None, false),
    ("sma-ringing-basic", &[], None, true),
    ("sma-call-answered-basic", &[], None, true),
    (
        "sma-action-successful-call-and-bridge-connect",
        &[],
        Some("in_connect"),
        true,
    ),
    (
        "sma-action-successful-hangup-transfer-pending",
        &["Speak", "CallAndBridge"],
        Some("transferring"),
        false,
    ),
    (
        "sma-action-successful-call-and-bridge-target",
        &[],
        Some("transferred"),
        false,
    ),
    (
        "sma-action-failed-call-and-bridge-connect-not-answered",
        &["Speak", "Hangup"],
        Some("ending"),
        false,
    ),
    (
        "sma-action-failed-call-and-bridge-target-busy",
        &["Speak", "Hangup"],
        Some("ending"),
        false,
    ),
    ("sma-action-interrupted-basic", &[], None, true),
    ("sma-hangup-leg-a-caller", &["Hangup"], Some("ended"), false),
    // No intent recorded: the caller waits (Pause) for a late CALL_UPDATE_REQUESTED.
    (
        "sma-hangup-leg-b-connect-before-update",
        &["Pause"],
        Some("awaiting_update"),
        false,
    ),
    (
        "sma-hangup-leg-b-far-end-after-transfer",
        &["Hangup"],
        Some("ending"),
        false,
    ),
    (
        "sma-hangup-receive-digits-type",
        &["Hangup"],
        Some("ended"),
        false,
    ),
    (
        "sma-call-update-requested-transfer",
        &["Hangup"],
        Some("transfer_pending"),
        false,
    ),
    ("sma-call-update-requested-duplicate", &[], None, false),
    (
        "sma-invalid-lambda-response-top-level-error",
        &["Hangup", "Hangup"],
        Some("ending"),
        false,
    ),
    (
        "sma-invalid-lambda-response-no-attributes",
        &["Hangup"],
        Some("ending"),
        false,
    ),
    (
        "sma-new-inbound-call-odd-types",
        &["CallAndBridge"],
        Some("connecting"),
        true,
    ),
    ("sma-digits-received-basic", &[], None, true),
    ("sma-unknown-event-type", &[], None, true),
];

/// A store in which the fixture's transaction holds the pair when its attributes say so.
async fn store_for(event: &Value) -> MemoryStore {
    let store = store();
    let held = event["CallDetails"]["TransactionAttributes"]["pair_held"] == "true";
    if held {
        store
            .claim(&ClaimRequest {
                transaction_id: TXN.into(),
                original_calling_number: "+12065550123".into(),
                original_called_number: "+18005550100".into(),
            })
            .await
            .expect("test set-up");
    }
    store
}

fn action_types(response: &Value) -> Vec<String> {
    response["Actions"]
        .as_array()
        .expect("test set-up")
        .iter()
        .map(|a| a["Type"].as_str().expect("test set-up").to_owned())
        .collect()
}

#[tokio::test]
async fn every_sma_fixture_is_covered_by_an_expectation() {
    let mut names: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sma-") && n.ends_with(".json"))
        .map(|n| n.trim_end_matches(".json").to_owned())
        .collect();
    names.sort();
    for name in &names {
        let covered =
            EXPECTED.iter().any(|(n, ..)| n == name) || name == "sma-malformed-not-an-sma-event";
        assert!(covered, "fixture {name} has no expectation in this test");
    }
    assert!(names.len() >= EXPECTED.len());
}

#[tokio::test]
async fn every_sma_fixture_gets_the_expected_answer() {
    for (name, types, state_after, still_held) in EXPECTED {
        let event = fixture(name);
        let deps = SmaDeps {
            store: store_for(&event).await,
            call_machine: call_machine_config(),
        };
        let response = serde_json::to_value(handle(&deps, event).await.unwrap()).unwrap();
        assert_eq!(action_types(&response), *types, "{name}: actions");
        let attrs = response.get("TransactionAttributes");
        assert_eq!(
            attrs.map(|a| a["state"].as_str().unwrap()),
            *state_after,
            "{name}: state"
        );
        if let Some(a) = attrs {
            let keys = a.as_object().unwrap().len();
            assert!((1..=10).contains(&keys), "{name}: {keys} attribute keys");
        }
        let held = !deps.store.held_pairs().is_empty();
        assert_eq!(held, *still_held, "{name}: pair held afterwards");
    }
}

#[tokio::test]
async fn a_claim_the_attributes_never_learned_of_is_released_by_invalid_lambda_response() {
    // The claim landed, the SMA rejected the response that would have recorded it: the
    // INVALID_LAMBDA_RESPONSE carries no attributes. (Memory store: the same test against
    // DynamoDB Local is in dynamodb.rs.)
    let deps = SmaDeps {
        store: store(),
        call_machine: call_machine_config(),
    };
    handle(&deps, fixture("sma-new-inbound-call-basic"))
        .await
        .unwrap();
    assert_eq!(deps.store.held_pairs(), vec![(pair(), TXN.to_owned())]);
    handle(&deps, fixture("sma-invalid-lambda-response-no-attributes"))
        .await
        .unwrap();
    assert!(deps.store.held_pairs().is_empty(), "the pair is still held");
}

#[tokio::test]
async fn a_payload_that_is_not_an_sma_event_has_a_stable_error_type() {
    let deps = SmaDeps {
        store: store(),
        call_machine: call_machine_config(),
    };
    let err = handle(&deps, fixture("sma-malformed-not-an-sma-event"))
        .await
        .unwrap_err();
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "NotAnSmaEvent");
    assert!(
        diagnostic.error_message.contains("InvocationEventType"),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test]
async fn a_payload_that_is_not_an_sma_event_is_an_error_naming_the_field() {
    let deps = SmaDeps {
        store: store(),
        call_machine: call_machine_config(),
    };
    let err = handle(&deps, fixture("sma-malformed-not-an-sma-event"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("InvocationEventType"), "{err}");
}

#[tokio::test]
async fn new_call_gets_the_fixture_pair_and_a_redelivery_gets_the_same_pair() {
    let deps = SmaDeps {
        store: store(),
        call_machine: call_machine_config(),
    };
    let first = serde_json::to_value(
        handle(&deps, fixture("sma-new-inbound-call-basic"))
            .await
            .unwrap(),
    )
    .unwrap();
    let again = serde_json::to_value(
        handle(&deps, fixture("sma-new-inbound-call-basic"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        first, again,
        "the SMA retry after 5 s must get the same answer"
    );
    assert_eq!(first["Actions"][0]["Parameters"]["CallerIdNumber"], SMA);
    assert_eq!(deps.store.held_pairs(), vec![(pair(), TXN.to_owned())]);
}

#[tokio::test]
async fn second_caller_with_every_pair_taken_hears_busy() {
    let deps = SmaDeps {
        store: store(),
        call_machine: call_machine_config(),
    };
    handle(&deps, fixture("sma-new-inbound-call-basic"))
        .await
        .unwrap();
    let mut other = fixture("sma-new-inbound-call-basic");
    other["CallDetails"]["TransactionId"] = "another-transaction".into();
    let response = serde_json::to_value(handle(&deps, other).await.unwrap()).unwrap();
    assert_eq!(action_types(&response), ["Speak", "Hangup"]);
    assert_eq!(
        response["Actions"][1]["Parameters"]["SipResponseCode"],
        "486"
    );
}

#[tokio::test]
async fn throttled_store_on_a_new_call_gives_safe_actions() {
    for fault in [InjectedFault::Throttle, InjectedFault::Unavailable] {
        let deps = SmaDeps {
            store: store(),
            call_machine: call_machine_config(),
        };
        deps.store.inject_fault(fault);
        let response = serde_json::to_value(
            handle(&deps, fixture("sma-new-inbound-call-basic"))
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(action_types(&response), ["Speak", "Hangup"], "{fault:?}");
        assert_eq!(
            response["Actions"][1]["Parameters"]["SipResponseCode"],
            "480"
        );
        assert!(deps.store.held_pairs().is_empty());
    }
}

#[tokio::test]
async fn connect_hangup_before_the_update_completes_a_recorded_transfer() {
    let event = fixture("sma-hangup-leg-b-connect-before-update");
    let deps = SmaDeps {
        store: store_for(&event).await,
        call_machine: call_machine_config(),
    };
    deps.store
        .record_transfer_intent(
            TXN,
            &TransferIntent {
                target_uri: "2042".into(),
                target_arn: VC.into(),
                contact_id: None,
            },
        )
        .await
        .unwrap();
    let response = serde_json::to_value(handle(&deps, event).await.unwrap()).unwrap();
    assert_eq!(action_types(&response), ["Speak", "CallAndBridge"]);
    assert_eq!(
        response["Actions"][1]["Parameters"]["Endpoints"][0]["Uri"],
        "2042"
    );
    assert_eq!(
        response["Actions"][1]["Parameters"]["SipHeaders"]["X-Original-Calling-Number"],
        "+12065550123"
    );
    assert!(deps.store.held_pairs().is_empty(), "the pair is released");
}

#[tokio::test]
async fn responses_never_carry_an_empty_attribute_map() {
    for (name, ..) in EXPECTED {
        let event = fixture(name);
        let deps = SmaDeps {
            store: store_for(&event).await,
            call_machine: call_machine_config(),
        };
        let text = serde_json::to_string(&handle(&deps, event).await.unwrap()).unwrap();
        assert!(!text.contains("\"TransactionAttributes\":{}"), "{name}");
    }
}
