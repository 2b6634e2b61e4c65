//! One test per row of the state table in docs/architecture.md ("What each SMA situation owes the caller"),
//! plus the races and duplicates around it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::target::{TargetRejection, TransferPolicy};
use crate::{AwsEndpointUri, BridgeEndpoint, VoiceConnectorArn};
use takeback_pairs::Claim;

const TXN: &str = "txn-1";
const CALLER: &str = "+15550001111";
const DIALLED: &str = "+18005550000";
const SMA: &str = "+18005557777";
const CONNECT: &str = "+18005551111";
const VC: &str = "arn:aws:chime:us-east-1:123456789012:vc/pbx";
const OTHER_VC: &str = "arn:aws:chime:us-east-1:123456789012:vc/other";
const FALLBACK_VC: &str = "arn:aws:chime:us-east-1:123456789012:vc/frontdesk";

fn target(uri: &str, arn: &str) -> TransferTarget {
    TransferTarget {
        uri: AwsEndpointUri::parse(uri).unwrap(),
        arn: VoiceConnectorArn::parse(arn).unwrap(),
    }
}

fn config() -> CallMachineConfig {
    CallMachineConfig {
        targets: TransferPolicy::with_rules(Some(target("2000", VC)), [VC], None).unwrap(),
        ..CallMachineConfig::default()
    }
}

fn config_with_fallback() -> CallMachineConfig {
    CallMachineConfig {
        fallback: Some(target("0", FALLBACK_VC)),
        ..config()
    }
}

fn leg_a() -> Value {
    json!({"CallId": "call-a", "ParticipantTag": "LEG-A", "From": CALLER, "To": DIALLED,
           "Direction": "Inbound", "Status": "Connected"})
}

fn leg_b(call_id: &str) -> Value {
    json!({"CallId": call_id, "ParticipantTag": "LEG-B", "From": SMA, "To": CONNECT,
           "Direction": "Outbound", "Status": "Connected"})
}

fn event(
    kind: &str,
    attrs: &CallAttributes,
    participants: Vec<Value>,
    action_data: Value,
) -> SmaEvent {
    let attrs: BTreeMap<String, String> = if attrs.state == CallState::New {
        BTreeMap::new()
    } else {
        attrs.to_map()
    };
    let mut value = json!({
        "SchemaVersion": "1.0", "Sequence": 2, "InvocationEventType": kind,
        "CallDetails": {"TransactionId": TXN, "TransactionAttributes": attrs, "AwsAccountId": "123456789012",
                        "AwsRegion": "us-east-1", "SipMediaApplicationId": "sma-1", "Participants": participants}
    });
    if !action_data.is_null() {
        value["ActionData"] = action_data;
    }
    SmaEvent::from_value(value).unwrap()
}

fn pair() -> PairKey {
    PairKey {
        sma_number: SMA.into(),
        connect_number: CONNECT.into(),
    }
}

fn claimed() -> StoreResults {
    StoreResults {
        claim: Some(Ok(ClaimOutcome::Claimed(Claim {
            pair: pair(),
            transaction_id: TXN.into(),
            lease_expires_at: 1,
        }))),
        ..StoreResults::default()
    }
}

fn released() -> StoreResults {
    StoreResults {
        release: Some(Ok(ReleaseOutcome::Released)),
        ..StoreResults::default()
    }
}

fn attrs(state: CallState) -> CallAttributes {
    CallAttributes {
        state,
        caller: Some(CALLER.into()),
        called: Some(DIALLED.into()),
        sma_number: Some(SMA.into()),
        connect_number: Some(CONNECT.into()),
        pair_held: matches!(state, CallState::Connecting | CallState::InConnect),
        connect_leg: (state != CallState::Connecting).then(|| "call-connect".to_owned()),
        target_uri: matches!(
            state,
            CallState::TransferPending | CallState::Transferring | CallState::Transferred
        )
        .then(|| "2001".to_owned()),
        target_arn: matches!(
            state,
            CallState::TransferPending | CallState::Transferring | CallState::Transferred
        )
        .then(|| VC.to_owned()),
    }
}

fn types(decision: &Decision) -> Vec<&'static str> {
    decision.actions.iter().map(Action::type_name).collect()
}

fn json_of(action: &Action) -> Value {
    serde_json::to_value(action).unwrap()
}

fn hangup_event(state: CallState, tag: &str, call_id: &str, participants: Vec<Value>) -> SmaEvent {
    event(
        "HANGUP",
        &attrs(state),
        participants,
        json!({"Type": "Hangup", "Parameters": {"SipResponseCode": 0, "CallId": call_id, "ParticipantTag": tag}}),
    )
}

fn update_event(state: CallState, args: Value) -> SmaEvent {
    event(
        "CALL_UPDATE_REQUESTED",
        &attrs(state),
        vec![leg_a(), leg_b("call-connect")],
        json!({"Type": "CallUpdateRequest", "Parameters": {"Arguments": args}}),
    )
}

fn is_transfer_bridge(action: &Action, uri: &str, arn: &str) -> bool {
    match action {
        Action::CallAndBridge(b) => {
            matches!(b.endpoint(), BridgeEndpoint::Aws { uri: u, arn: a } if u.as_str() == uri && a.as_str() == arn)
        }
        _ => false,
    }
}

// --- new inbound call -------------------------------------------------------------------

#[test]
fn new_call_with_a_claimed_pair_bridges_to_connect_with_the_sma_number_as_caller_id() {
    let ev = event(
        "NEW_INBOUND_CALL",
        &CallAttributes::default(),
        vec![leg_a()],
        json!(null),
    );
    let work = store_work(&ev, &CallAttributes::default(), &config());
    assert_eq!(
        work,
        StoreWork::Claim(ClaimRequest {
            transaction_id: TXN.into(),
            original_calling_number: CALLER.into(),
            original_called_number: DIALLED.into()
        })
    );
    let d = decide(&ev, &CallAttributes::default(), &config(), &claimed());
    assert_eq!(d.actions.len(), 1);
    assert_eq!(json_of(&d.actions[0])["Parameters"]["CallerIdNumber"], SMA);
    assert_eq!(
        json_of(&d.actions[0])["Parameters"]["Endpoints"][0],
        json!({"BridgeEndpointType": "PSTN", "Uri": CONNECT})
    );
    let a = d.attributes.unwrap();
    assert_eq!(a.state, CallState::Connecting);
    assert!(a.pair_held);
    assert_eq!(a.caller.as_deref(), Some(CALLER));
}

/// Found by the fuzzer: a 65 KB `To` was copied into the transaction attributes, past the SMA's
/// 20 KB limit, so the service would have refused the answer and the caller heard nothing.
#[test]
fn absurd_values_from_the_event_never_reach_the_attributes_or_the_store() {
    let huge = format!("+1{}", "5".repeat(65_000));
    let mut leg = leg_a();
    leg["To"] = json!(huge);
    leg["From"] = json!("+1555\r\n0001111");
    let ev = event(
        "NEW_INBOUND_CALL",
        &CallAttributes::default(),
        vec![leg],
        json!(null),
    );
    let StoreWork::Claim(request) = store_work(&ev, &CallAttributes::default(), &config()) else {
        panic!("a caller leg with a CallId is claimed for");
    };
    assert_eq!(request.original_called_number, "");
    let d = decide(&ev, &CallAttributes::default(), &config(), &claimed());
    assert_eq!(types(&d), ["CallAndBridge"]);
    let map = d.attributes.unwrap().to_map();
    assert!(
        map.values().all(|v| v.len() <= MAX_EVENT_VALUE_CHARS),
        "{map:?}"
    );
    assert!(!map.contains_key(keys::CALLED));
    let bytes: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(bytes < 20 * 1024);
}

#[test]
fn a_mis_seeded_pair_with_absurd_numbers_keeps_the_attributes_bounded() {
    let ev = event(
        "NEW_INBOUND_CALL",
        &CallAttributes::default(),
        vec![leg_a()],
        json!(null),
    );
    let results = StoreResults {
        claim: Some(Ok(ClaimOutcome::Claimed(Claim {
            pair: PairKey {
                sma_number: "9".repeat(50_000),
                connect_number: CONNECT.into(),
            },
            transaction_id: TXN.into(),
            lease_expires_at: 1,
        }))),
        ..StoreResults::default()
    };
    let d = decide(&ev, &CallAttributes::default(), &config(), &results);
    assert_eq!(types(&d), ["Speak", "Hangup"], "the caller still hears why");
    let map = d.attributes.unwrap().to_map();
    assert!(
        map.values().all(|v| v.len() <= MAX_EVENT_VALUE_CHARS),
        "{map:?}"
    );
}

#[test]
fn absurd_values_in_the_incoming_attributes_are_not_echoed_back() {
    let mut map = attrs(CallState::InConnect).to_map();
    map.insert(keys::SMA_NUMBER.into(), "é".repeat(100_000));
    let parsed = CallAttributes::from_map(&map);
    assert_eq!(parsed.sma_number, None);
    assert_eq!(parsed.state, CallState::InConnect);
    assert!(
        parsed
            .to_map()
            .values()
            .all(|v| v.chars().count() <= MAX_EVENT_VALUE_CHARS)
    );
}

#[test]
fn new_call_with_no_free_pair_hears_busy_then_486() {
    let ev = event(
        "NEW_INBOUND_CALL",
        &CallAttributes::default(),
        vec![leg_a()],
        json!(null),
    );
    let busy = StoreResults {
        claim: Some(Ok(ClaimOutcome::Busy)),
        ..StoreResults::default()
    };
    let d = decide(&ev, &CallAttributes::default(), &config(), &busy);
    assert_eq!(types(&d), ["Speak", "Hangup"]);
    assert_eq!(
        json_of(&d.actions[0])["Parameters"]["Text"],
        config().messages.busy.as_str()
    );
    assert_eq!(
        json_of(&d.actions[1])["Parameters"],
        json!({"CallId": "call-a", "SipResponseCode": "486"})
    );
    assert_eq!(d.attributes.unwrap().state, CallState::Ending);
}

#[test]
fn new_call_when_the_store_is_down_hears_a_message_then_480() {
    let ev = event(
        "NEW_INBOUND_CALL",
        &CallAttributes::default(),
        vec![leg_a()],
        json!(null),
    );
    let down = StoreResults {
        claim: Some(Err(StoreFailed)),
        ..StoreResults::default()
    };
    let d = decide(&ev, &CallAttributes::default(), &config(), &down);
    assert_eq!(types(&d), ["Speak", "Hangup"]);
    assert_eq!(
        json_of(&d.actions[1])["Parameters"]["SipResponseCode"],
        "480"
    );
}

#[test]
fn new_call_with_no_free_pair_goes_to_the_configured_fallback() {
    let ev = event(
        "NEW_INBOUND_CALL",
        &CallAttributes::default(),
        vec![leg_a()],
        json!(null),
    );
    let busy = StoreResults {
        claim: Some(Ok(ClaimOutcome::Busy)),
        ..StoreResults::default()
    };
    let d = decide(
        &ev,
        &CallAttributes::default(),
        &config_with_fallback(),
        &busy,
    );
    assert_eq!(types(&d), ["CallAndBridge"]);
    assert!(is_transfer_bridge(&d.actions[0], "0", FALLBACK_VC));
    // Without a pair, the caller id is the number the caller dialled (the SMA's own number).
    assert_eq!(
        json_of(&d.actions[0])["Parameters"]["CallerIdNumber"],
        DIALLED
    );
    assert_eq!(d.attributes.unwrap().state, CallState::Transferring);
}

#[test]
fn new_call_without_participants_is_hung_up_by_tag_without_a_claim() {
    let ev = event(
        "NEW_INBOUND_CALL",
        &CallAttributes::default(),
        vec![],
        json!(null),
    );
    assert_eq!(
        store_work(&ev, &CallAttributes::default(), &config()),
        StoreWork::Nothing
    );
    let d = decide(
        &ev,
        &CallAttributes::default(),
        &config(),
        &StoreResults::default(),
    );
    assert_eq!(types(&d), ["Hangup"]);
    assert_eq!(
        json_of(&d.actions[0])["Parameters"],
        json!({"ParticipantTag": "LEG-A", "SipResponseCode": "480"})
    );
}

#[test]
fn new_call_with_leg_a_spelled_leg_dash_a_is_handled() {
    let mut a = leg_a();
    a["ParticipantTag"] = json!("Leg-A");
    let ev = event(
        "NEW_INBOUND_CALL",
        &CallAttributes::default(),
        vec![a],
        json!(null),
    );
    assert!(matches!(
        store_work(&ev, &CallAttributes::default(), &config()),
        StoreWork::Claim(_)
    ));
}

#[test]
fn redelivered_new_inbound_call_after_state_was_stored_claims_nothing_and_does_nothing() {
    let state = attrs(CallState::Connecting);
    let ev = event("NEW_INBOUND_CALL", &state, vec![leg_a()], json!(null));
    assert_eq!(store_work(&ev, &state, &config()), StoreWork::Nothing);
    let d = decide(&ev, &state, &config(), &StoreResults::default());
    assert!(d.actions.is_empty());
    assert!(d.attributes.is_none());
}

#[test]
fn mis_seeded_pair_numbers_end_the_call_safely_and_keep_the_pair_for_release() {
    let ev = event(
        "NEW_INBOUND_CALL",
        &CallAttributes::default(),
        vec![leg_a()],
        json!(null),
    );
    let bad = StoreResults {
        claim: Some(Ok(ClaimOutcome::Claimed(Claim {
            pair: PairKey {
                sma_number: "8005557777".into(),
                connect_number: CONNECT.into(),
            },
            transaction_id: TXN.into(),
            lease_expires_at: 1,
        }))),
        ..StoreResults::default()
    };
    let d = decide(&ev, &CallAttributes::default(), &config(), &bad);
    assert_eq!(types(&d), ["Speak", "Hangup"]);
    let a = d.attributes.unwrap();
    assert!(
        a.pair_held,
        "the next event (caller hangup) must still release it"
    );
    assert_eq!(a.state, CallState::Ending);
}

// --- bridge to Connect ------------------------------------------------------------------

#[test]
fn successful_bridge_to_connect_records_the_connect_leg() {
    let state = attrs(CallState::Connecting);
    let ev = event(
        "ACTION_SUCCESSFUL",
        &state,
        vec![leg_a(), leg_b("call-connect")],
        json!({"Type": "CallAndBridge"}),
    );
    let d = decide(&ev, &state, &config(), &StoreResults::default());
    assert!(d.actions.is_empty());
    let a = d.attributes.unwrap();
    assert_eq!(a.state, CallState::InConnect);
    assert_eq!(a.connect_leg.as_deref(), Some("call-connect"));
}

#[test]
fn failed_bridge_to_connect_releases_the_pair_and_tells_the_caller() {
    let state = attrs(CallState::Connecting);
    let ev = event(
        "ACTION_FAILED",
        &state,
        vec![leg_a()],
        json!({"Type": "CallAndBridge", "ErrorType": "CallNotAnswered", "ErrorMessage": "no answer"}),
    );
    assert_eq!(
        store_work(&ev, &state, &config()),
        StoreWork::ReleaseOwned {
            transaction_id: TXN.into(),
            known: Some(pair()),
        }
    );
    let d = decide(&ev, &state, &config(), &released());
    assert_eq!(types(&d), ["Speak", "Hangup"]);
    assert_eq!(
        json_of(&d.actions[0])["Parameters"]["Text"],
        config().messages.connect_failed.as_str()
    );
    let a = d.attributes.unwrap();
    assert!(!a.pair_held);
    assert_eq!(a.state, CallState::Ending);
}

#[test]
fn failed_bridge_to_connect_goes_to_fallback_when_configured() {
    let state = attrs(CallState::Connecting);
    let ev = event(
        "ACTION_FAILED",
        &state,
        vec![leg_a()],
        json!({"Type": "CallAndBridge", "ErrorType": "CallNotAnswered"}),
    );
    let d = decide(&ev, &state, &config_with_fallback(), &released());
    assert_eq!(types(&d), ["CallAndBridge"]);
    assert!(is_transfer_bridge(&d.actions[0], "0", FALLBACK_VC));
}

#[test]
fn failed_release_keeps_the_pair_marked_held_for_a_later_retry() {
    let state = attrs(CallState::Connecting);
    let ev = event(
        "ACTION_FAILED",
        &state,
        vec![leg_a()],
        json!({"Type": "CallAndBridge"}),
    );
    let failed = StoreResults {
        release: Some(Err(StoreFailed)),
        ..StoreResults::default()
    };
    let d = decide(&ev, &state, &config(), &failed);
    assert!(d.attributes.as_ref().unwrap().pair_held);
    assert_eq!(
        types(&d),
        ["Speak", "Hangup"],
        "the caller is never held hostage by the store"
    );
}

// --- transfer requested -----------------------------------------------------------------

#[test]
fn transfer_request_releases_the_pair_and_hangs_up_the_connect_leg() {
    let state = attrs(CallState::InConnect);
    let ev = update_event(
        CallState::InConnect,
        json!({"Transfer": "true", "TransferTarget": "2001", "TransferTargetArn": VC}),
    );
    assert_eq!(
        store_work(&ev, &state, &config()),
        StoreWork::ReleaseOwned {
            transaction_id: TXN.into(),
            known: Some(pair()),
        }
    );
    let d = decide(&ev, &state, &config(), &released());
    assert_eq!(types(&d), ["Hangup"]);
    assert_eq!(
        json_of(&d.actions[0])["Parameters"],
        json!({"CallId": "call-connect", "SipResponseCode": "0"})
    );
    let a = d.attributes.unwrap();
    assert_eq!(a.state, CallState::TransferPending);
    assert_eq!(
        (a.target_uri.as_deref(), a.target_arn.as_deref()),
        (Some("2001"), Some(VC))
    );
    assert!(!a.pair_held);
}

#[test]
fn transfer_request_without_a_target_uses_the_default_target() {
    let state = attrs(CallState::InConnect);
    let ev = update_event(CallState::InConnect, json!({"Transfer": "true"}));
    let d = decide(&ev, &state, &config(), &released());
    assert_eq!(d.attributes.unwrap().target_uri.as_deref(), Some("2000"));
}

#[test]
fn transfer_request_to_an_unapproved_voice_connector_leaves_the_caller_in_connect() {
    let state = attrs(CallState::InConnect);
    let ev = update_event(
        CallState::InConnect,
        json!({"Transfer": "true", "TransferTarget": "2001", "TransferTargetArn": OTHER_VC}),
    );
    let d = decide(&ev, &state, &config(), &StoreResults::default());
    assert!(d.actions.is_empty());
    assert_eq!(d.attributes.map(|a| a.state), Some(CallState::InConnect));
}

#[test]
fn transfer_request_with_an_invalid_uri_is_refused() {
    let state = attrs(CallState::InConnect);
    let ev = update_event(
        CallState::InConnect,
        json!({"Transfer": "true", "TransferTarget": "room 12; drop", "TransferTargetArn": VC}),
    );
    let d = decide(&ev, &state, &config(), &StoreResults::default());
    assert!(d.actions.is_empty());
}

#[test]
fn update_without_transfer_true_changes_nothing() {
    let state = attrs(CallState::InConnect);
    let ev = update_event(CallState::InConnect, json!({"Note": "hello"}));
    assert_eq!(store_work(&ev, &state, &config()), StoreWork::Nothing);
    let d = decide(&ev, &state, &config(), &StoreResults::default());
    assert!(d.actions.is_empty() && d.attributes.is_none());
}

#[test]
fn update_while_the_connect_bridge_still_rings_is_not_ours_and_changes_nothing() {
    // Found by the emulator: a late lookup by number pair matched the next caller's claim and
    // updated this call while its bridge to Connect was still ringing (no LEG-B yet). Following
    // it released the pair mid-bridge and answered `Hangup ParticipantTag LEG-B` for a leg that
    // does not exist, which the SMA rejects.
    let state = attrs(CallState::Connecting);
    let ev = event(
        "CALL_UPDATE_REQUESTED",
        &state,
        vec![leg_a()],
        json!({"Type": "CallUpdateRequest", "Parameters": {"Arguments": {"Transfer": "true"}}}),
    );
    assert_eq!(
        store_work(&ev, &state, &config()),
        StoreWork::Nothing,
        "the pair stays held while the bridge rings"
    );
    let d = decide(&ev, &state, &config(), &released());
    assert!(d.actions.is_empty() && d.attributes.is_none(), "{d:?}");
}

#[test]
fn update_that_overtakes_the_bridge_success_is_followed_by_the_listed_leg_b() {
    let mut state = attrs(CallState::Connecting);
    state.connect_leg = None;
    let ev = event(
        "CALL_UPDATE_REQUESTED",
        &state,
        vec![leg_a(), leg_b("call-connect")],
        json!({"Type": "CallUpdateRequest", "Parameters": {"Arguments": {"Transfer": "true"}}}),
    );
    assert!(matches!(
        store_work(&ev, &state, &config()),
        StoreWork::ReleaseOwned { .. }
    ));
    let d = decide(&ev, &state, &config(), &released());
    assert_eq!(types(&d), ["Hangup"]);
    assert_eq!(
        json_of(&d.actions[0])["Parameters"]["CallId"],
        "call-connect"
    );
    assert_eq!(d.attributes.unwrap().state, CallState::TransferPending);
}

#[test]
fn second_transfer_request_is_ignored_one_shot_guard() {
    for state in [
        CallState::TransferPending,
        CallState::Transferring,
        CallState::Transferred,
        CallState::Ending,
        CallState::Ended,
    ] {
        let ev = update_event(
            state,
            json!({"Transfer": "true", "TransferTarget": "2002", "TransferTargetArn": VC}),
        );
        assert_eq!(
            store_work(&ev, &attrs(state), &config()),
            StoreWork::Nothing,
            "{state:?}"
        );
        let d = decide(&ev, &attrs(state), &config(), &StoreResults::default());
        assert!(d.actions.is_empty() && d.attributes.is_none(), "{state:?}");
    }
}

#[test]
fn after_the_connect_leg_hangup_succeeds_the_caller_is_bridged_to_the_target() {
    let state = attrs(CallState::TransferPending);
    let ev = event(
        "ACTION_SUCCESSFUL",
        &state,
        vec![leg_a()],
        json!({"Type": "Hangup", "Parameters": {"CallId": "call-connect"}}),
    );
    let d = decide(&ev, &state, &config(), &StoreResults::default());
    assert_eq!(types(&d), ["Speak", "CallAndBridge"]);
    assert_eq!(json_of(&d.actions[0])["Parameters"]["CallId"], "call-a");
    let bridge = json_of(&d.actions[1]);
    assert!(is_transfer_bridge(&d.actions[1], "2001", VC));
    assert_eq!(bridge["Parameters"]["CallerIdNumber"], SMA);
    assert_eq!(
        bridge["Parameters"]["SipHeaders"]["X-Original-Calling-Number"],
        CALLER
    );
    assert_eq!(d.attributes.unwrap().state, CallState::Transferring);
}

#[test]
fn connect_leg_hangup_event_and_hangup_action_success_together_transfer_exactly_once() {
    // Order of the two is undocumented: try both orders, count bridges to the target.
    for hangup_first in [true, false] {
        let mut state = attrs(CallState::TransferPending);
        let hangup = hangup_event(state.state, "LEG-B", "call-connect", vec![leg_a()]);
        let success = event(
            "ACTION_SUCCESSFUL",
            &state,
            vec![leg_a()],
            json!({"Type": "Hangup"}),
        );
        let order = if hangup_first {
            [hangup, success]
        } else {
            [success, hangup]
        };
        let mut bridges = 0;
        for ev in order {
            let d = decide(&ev, &state, &config(), &StoreResults::default());
            bridges += d
                .actions
                .iter()
                .filter(|a| is_transfer_bridge(a, "2001", VC))
                .count();
            if let Some(a) = d.attributes {
                state = a;
            }
        }
        assert_eq!(bridges, 1, "hangup_first={hangup_first}");
    }
}

#[test]
fn failed_hangup_of_an_already_gone_connect_leg_still_transfers() {
    let state = attrs(CallState::TransferPending);
    let ev = event(
        "ACTION_FAILED",
        &state,
        vec![leg_a()],
        json!({"Type": "Hangup", "ErrorType": "InvalidActionParameter"}),
    );
    let d = decide(&ev, &state, &config(), &StoreResults::default());
    assert_eq!(types(&d), ["Speak", "CallAndBridge"]);
}

#[test]
fn successful_bridge_to_the_target_marks_the_call_transferred() {
    let state = attrs(CallState::Transferring);
    let ev = event(
        "ACTION_SUCCESSFUL",
        &state,
        vec![leg_a(), leg_b("call-target")],
        json!({"Type": "CallAndBridge"}),
    );
    let d = decide(&ev, &state, &config(), &StoreResults::default());
    assert!(d.actions.is_empty());
    assert_eq!(d.attributes.unwrap().state, CallState::Transferred);
}

// --- Connect hangs up before the update arrives -------------------------------------------

#[test]
fn connect_hangs_up_first_with_a_recorded_intent_and_the_transfer_still_happens() {
    let state = attrs(CallState::InConnect);
    let ev = hangup_event(CallState::InConnect, "LEG-B", "call-connect", vec![leg_a()]);
    assert_eq!(
        store_work(&ev, &state, &config()),
        StoreWork::ConnectLegEnded {
            known: Some(pair()),
            transaction_id: TXN.into()
        }
    );
    let results = StoreResults {
        release: Some(Ok(ReleaseOutcome::Released)),
        transfer_intent: Some(Ok(Some(TransferIntent {
            target_uri: "2042".into(),
            target_arn: VC.into(),
            contact_id: Some("c-1".into()),
        }))),
        ..StoreResults::default()
    };
    let d = decide(&ev, &state, &config(), &results);
    assert_eq!(types(&d), ["Speak", "CallAndBridge"]);
    assert!(is_transfer_bridge(&d.actions[1], "2042", VC));
    let a = d.attributes.unwrap();
    assert_eq!(a.state, CallState::Transferring);
    assert!(!a.pair_held);
}

#[test]
fn then_the_late_update_is_ignored() {
    let ev = update_event(
        CallState::Transferring,
        json!({"Transfer": "true", "TransferTarget": "2042", "TransferTargetArn": VC}),
    );
    let d = decide(
        &ev,
        &attrs(CallState::Transferring),
        &config(),
        &StoreResults::default(),
    );
    assert!(d.actions.is_empty());
}

fn no_grace() -> CallMachineConfig {
    CallMachineConfig {
        update_grace: UpdateGrace::millis(0).unwrap(),
        ..config()
    }
}

#[test]
fn connect_hangs_up_without_any_transfer_and_the_caller_is_hung_up_and_pair_released() {
    // With no grace configured: the caller is hung up at once.
    let state = attrs(CallState::InConnect);
    let ev = hangup_event(CallState::InConnect, "LEG-B", "call-connect", vec![leg_a()]);
    let results = StoreResults {
        release: Some(Ok(ReleaseOutcome::Released)),
        transfer_intent: Some(Ok(None)),
        ..StoreResults::default()
    };
    let d = decide(&ev, &state, &no_grace(), &results);
    assert_eq!(types(&d), ["Hangup"]);
    assert_eq!(
        json_of(&d.actions[0])["Parameters"],
        json!({"CallId": "call-a", "SipResponseCode": "0"})
    );
    let a = d.attributes.unwrap();
    assert!(!a.pair_held);
    assert_eq!(a.state, CallState::Ending);
}

#[test]
fn connect_hangs_up_first_and_the_intent_cannot_be_read_ends_the_call_with_a_message() {
    let state = attrs(CallState::InConnect);
    let ev = hangup_event(CallState::InConnect, "LEG-B", "call-connect", vec![leg_a()]);
    let results = StoreResults {
        transfer_intent: Some(Err(StoreFailed)),
        ..StoreResults::default()
    };
    let d = decide(&ev, &state, &config(), &results);
    assert_eq!(types(&d), ["Speak", "Hangup"]);
}

#[test]
fn a_recorded_intent_to_an_unapproved_target_is_not_followed() {
    let state = attrs(CallState::InConnect);
    let ev = hangup_event(CallState::InConnect, "LEG-B", "call-connect", vec![leg_a()]);
    let results = StoreResults {
        transfer_intent: Some(Ok(Some(TransferIntent {
            target_uri: "2042".into(),
            target_arn: OTHER_VC.into(),
            contact_id: None,
        }))),
        ..StoreResults::default()
    };
    let d = decide(&ev, &state, &config(), &results);
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::CallAndBridge(_)))
    );
}

// --- SIP target fails / far end hangs up ----------------------------------------------------

#[test]
fn failed_bridge_to_the_sip_target_tells_the_caller_then_hangs_up() {
    let state = attrs(CallState::Transferring);
    let ev = event(
        "ACTION_FAILED",
        &state,
        vec![leg_a()],
        json!({"Type": "CallAndBridge", "ErrorType": "CallNotAnswered"}),
    );
    let d = decide(&ev, &state, &config(), &StoreResults::default());
    assert_eq!(types(&d), ["Speak", "Hangup"]);
    assert_eq!(
        json_of(&d.actions[0])["Parameters"]["Text"],
        config().messages.transfer_failed.as_str()
    );
    assert_eq!(d.attributes.unwrap().state, CallState::Ending);
}

#[test]
fn failed_bridge_to_the_sip_target_goes_to_fallback_once_then_ends() {
    let cfg = config_with_fallback();
    let state = attrs(CallState::Transferring);
    let ev = event(
        "ACTION_FAILED",
        &state,
        vec![leg_a()],
        json!({"Type": "CallAndBridge", "ErrorType": "CallNotAnswered"}),
    );
    let d = decide(&ev, &state, &cfg, &StoreResults::default());
    assert!(is_transfer_bridge(&d.actions[0], "0", FALLBACK_VC));
    let on_fallback = d.attributes.unwrap();
    let ev = event(
        "ACTION_FAILED",
        &on_fallback,
        vec![leg_a()],
        json!({"Type": "CallAndBridge", "ErrorType": "CallNotAnswered"}),
    );
    let d = decide(&ev, &on_fallback, &cfg, &StoreResults::default());
    assert_eq!(types(&d), ["Speak", "Hangup"]);
}

#[test]
fn far_end_hangs_up_after_transfer_and_the_caller_is_hung_up() {
    let state = attrs(CallState::Transferred);
    let ev = hangup_event(
        CallState::Transferred,
        "LEG-B",
        "call-target",
        vec![leg_a()],
    );
    let d = decide(&ev, &state, &config(), &StoreResults::default());
    assert_eq!(types(&d), ["Hangup"]);
    assert_eq!(
        json_of(&d.actions[0])["Parameters"],
        json!({"CallId": "call-a", "SipResponseCode": "0"})
    );
}

#[test]
fn late_hangup_of_the_old_connect_leg_after_transfer_does_not_drop_the_caller() {
    let state = attrs(CallState::Transferred);
    let ev = hangup_event(
        CallState::Transferred,
        "LEG-B",
        "call-connect",
        vec![leg_a(), leg_b("call-target")],
    );
    let d = decide(&ev, &state, &config(), &StoreResults::default());
    assert!(d.actions.is_empty());
    assert!(d.attributes.is_none());
}

// --- caller hangs up -------------------------------------------------------------------------

#[test]
fn caller_hangs_up_in_connect_and_the_connect_leg_is_hung_up_and_the_pair_released() {
    let state = attrs(CallState::InConnect);
    let ev = hangup_event(
        CallState::InConnect,
        "LEG-A",
        "call-a",
        vec![leg_a(), leg_b("call-connect")],
    );
    assert_eq!(
        store_work(&ev, &state, &config()),
        StoreWork::ReleaseOwned {
            transaction_id: TXN.into(),
            known: Some(pair()),
        }
    );
    let d = decide(&ev, &state, &config(), &released());
    assert_eq!(types(&d), ["Hangup"]);
    assert_eq!(
        json_of(&d.actions[0])["Parameters"]["CallId"],
        "call-connect"
    );
    let a = d.attributes.unwrap();
    assert_eq!(a.state, CallState::Ended);
    assert!(!a.pair_held);
}

#[test]
fn caller_hangs_up_during_every_state_and_nothing_is_left_behind() {
    for s in [
        CallState::Connecting,
        CallState::InConnect,
        CallState::TransferPending,
        CallState::Transferring,
        CallState::Transferred,
        CallState::Ending,
    ] {
        let state = attrs(s);
        let ev = hangup_event(s, "LEG-A", "call-a", vec![leg_a(), leg_b("call-x")]);
        // Whatever the attributes say about the pair: a claim whose outcome was unknown
        // may hold one they never learned of.
        let work = store_work(&ev, &state, &config());
        assert!(matches!(work, StoreWork::ReleaseOwned { .. }), "{s:?}");
        let d = decide(&ev, &state, &config(), &released());
        assert_eq!(
            types(&d),
            ["Hangup"],
            "{s:?}: the open LEG-B must be hung up"
        );
        assert_eq!(d.attributes.unwrap().state, CallState::Ended);
    }
}

#[test]
fn caller_hangup_with_leg_b_already_disconnected_sends_no_action() {
    let state = attrs(CallState::Transferred);
    let mut b = leg_b("call-target");
    b["Status"] = json!("Disconnected");
    let ev = hangup_event(CallState::Transferred, "LEG-A", "call-a", vec![leg_a(), b]);
    let d = decide(&ev, &state, &config(), &StoreResults::default());
    assert!(d.actions.is_empty());
}

#[test]
fn hangup_with_receive_digits_action_type_is_dispatched_by_leg() {
    let state = attrs(CallState::InConnect);
    let ev = event(
        "HANGUP",
        &state,
        vec![leg_a(), leg_b("call-connect")],
        json!({"Type": "ReceiveDigits", "Parameters": {"SipResponseCode": "0", "CallId": "call-a", "ParticipantTag": "LEG-A"}}),
    );
    assert!(matches!(
        store_work(&ev, &state, &config()),
        StoreWork::ReleaseOwned { .. }
    ));
    let d = decide(&ev, &state, &config(), &released());
    assert_eq!(d.attributes.unwrap().state, CallState::Ended);
}

#[test]
fn hangup_identified_only_by_call_id_finds_the_leg_in_participants() {
    let state = attrs(CallState::InConnect);
    let ev = event(
        "HANGUP",
        &state,
        vec![leg_b("call-connect"), leg_a()],
        json!({"Type": "Hangup", "Parameters": {"SipResponseCode": 0, "CallId": "call-a"}}),
    );
    assert_eq!(
        hangup_leg(&ev),
        Some((LegTag::A, Some("call-a".to_owned())))
    );
}

#[test]
fn duplicate_caller_hangup_is_a_no_op() {
    let mut state = attrs(CallState::Ended);
    state.pair_held = false;
    let ev = hangup_event(CallState::Ended, "LEG-A", "call-a", vec![leg_a()]);
    // Releasing again is owner-conditional and changes nothing: NotHeld.
    assert!(matches!(
        store_work(&ev, &state, &config()),
        StoreWork::ReleaseOwned { .. }
    ));
    let not_held = StoreResults {
        release: Some(Ok(ReleaseOutcome::NotHeld)),
        ..StoreResults::default()
    };
    let d = decide(&ev, &state, &config(), &not_held);
    assert!(d.actions.is_empty() && d.attributes.is_none());
}

// --- informational, unknown, invalid --------------------------------------------------------

#[test]
fn informational_and_unknown_events_change_nothing() {
    for kind in [
        "RINGING",
        "CALL_ANSWERED",
        "ACTION_INTERRUPTED",
        "DIGITS_RECEIVED",
        "NEW_OUTBOUND_CALL",
        "BRAND_NEW_EVENT",
    ] {
        let state = attrs(CallState::InConnect);
        let ev = event(kind, &state, vec![leg_a()], json!({"Type": "Speak"}));
        assert_eq!(
            store_work(&ev, &state, &config()),
            StoreWork::Nothing,
            "{kind}"
        );
        let d = decide(&ev, &state, &config(), &StoreResults::default());
        assert!(d.actions.is_empty() && d.attributes.is_none(), "{kind}");
    }
}

#[test]
fn invalid_lambda_response_ends_the_call_safely_and_releases_the_pair() {
    let state = attrs(CallState::InConnect);
    let ev = event(
        "INVALID_LAMBDA_RESPONSE",
        &state,
        vec![leg_a(), leg_b("call-connect")],
        json!(null),
    );
    assert!(matches!(
        store_work(&ev, &state, &config()),
        StoreWork::ReleaseOwned { .. }
    ));
    let d = decide(&ev, &state, &config(), &released());
    assert_eq!(types(&d), ["Hangup", "Hangup"]);
    assert_eq!(
        json_of(&d.actions[1])["Parameters"],
        json!({"CallId": "call-a", "SipResponseCode": "480"})
    );
}

#[test]
fn a_failed_goodbye_message_still_hangs_up_the_caller() {
    let state = attrs(CallState::Ending);
    let ev = event(
        "ACTION_FAILED",
        &state,
        vec![leg_a()],
        json!({"Type": "Speak", "ErrorType": "SystemException"}),
    );
    let d = decide(&ev, &state, &config(), &StoreResults::default());
    assert_eq!(types(&d), ["Hangup"]);
}

#[test]
fn a_failed_hold_message_still_bridges_to_the_target() {
    let state = attrs(CallState::Transferring);
    let ev = event(
        "ACTION_FAILED",
        &state,
        vec![leg_a()],
        json!({"Type": "Speak", "ErrorType": "SystemException"}),
    );
    let d = decide(&ev, &state, &config(), &StoreResults::default());
    assert_eq!(types(&d), ["CallAndBridge"]);
}

#[test]
fn unreadable_state_attribute_never_starts_a_bridge() {
    let mut map = attrs(CallState::InConnect).to_map();
    map.insert(keys::STATE.into(), "garbage".into());
    let parsed = CallAttributes::from_map(&map);
    assert_eq!(parsed.state, CallState::Ending);
    let ev = update_event(CallState::InConnect, json!({"Transfer": "true"}));
    assert!(
        decide(&ev, &parsed, &config(), &StoreResults::default())
            .actions
            .is_empty()
    );
}

#[test]
fn attributes_round_trip_and_stay_within_ten_keys() {
    let a = attrs(CallState::Transferred);
    let map = a.to_map();
    assert!(map.len() <= 10 && !map.is_empty());
    assert_eq!(CallAttributes::from_map(&map), a);
}

// --- target rules -----------------------------------------------------------------------------

#[test]
fn target_rules_resolve_defaults_and_refuse_unknown_arns() {
    let rules = config().targets;
    assert_eq!(
        rules.resolve_target(None, None).unwrap().uri.as_str(),
        "2000"
    );
    assert_eq!(
        rules
            .resolve_target(Some("2001"), None)
            .unwrap()
            .arn
            .as_str(),
        VC
    );
    assert_eq!(
        rules.resolve_target(Some("2001"), Some(OTHER_VC)),
        Err(TargetRejection::ArnNotAllowed)
    );
    assert_eq!(
        rules.resolve_target(Some(&"1".repeat(31)), Some(VC)),
        Err(TargetRejection::UriInvalid)
    );
    assert_eq!(
        TransferPolicy::default().resolve_target(None, None),
        Err(TargetRejection::NoTarget)
    );
}

// --- unknown claim outcomes: every ending event releases what the transaction may own ------

#[test]
fn invalid_lambda_response_releases_even_when_the_attributes_never_learned_of_the_claim() {
    // The claim landed, but the SMA rejected the response that carried the attributes: the
    // event arrives with none.
    let state = CallAttributes::default();
    let ev = event(
        "INVALID_LAMBDA_RESPONSE",
        &state,
        vec![leg_a()],
        json!({"Type": "CallAndBridge", "ErrorType": "InvalidActionParameter"}),
    );
    assert_eq!(
        store_work(&ev, &state, &config()),
        StoreWork::ReleaseOwned {
            transaction_id: TXN.into(),
            known: None,
        }
    );
}

#[test]
fn failed_connect_bridge_releases_even_when_the_attributes_say_no_pair_is_held() {
    let mut state = attrs(CallState::Connecting);
    state.pair_held = false;
    let ev = event(
        "ACTION_FAILED",
        &state,
        vec![leg_a()],
        json!({"Type": "CallAndBridge", "ErrorType": "CallNotAnswered"}),
    );
    assert_eq!(
        store_work(&ev, &state, &config()),
        StoreWork::ReleaseOwned {
            transaction_id: TXN.into(),
            known: Some(pair()),
        }
    );
}

#[test]
fn an_event_with_no_live_caller_releases_what_the_transaction_may_own() {
    // The claim timed out (outcome unknown), the caller heard "unavailable" and our Hangup
    // completed: the SMA reports it with the caller's leg disconnected.
    let state = CallAttributes {
        state: CallState::Ending,
        caller: Some(CALLER.into()),
        called: Some(DIALLED.into()),
        ..CallAttributes::default()
    };
    let mut gone = leg_a();
    gone["Status"] = "Disconnected".into();
    let ev = event(
        "ACTION_SUCCESSFUL",
        &state,
        vec![gone],
        json!({"Type": "Hangup", "Parameters": {"CallId": "call-a", "SipResponseCode": "480"}}),
    );
    assert_eq!(
        store_work(&ev, &state, &config()),
        StoreWork::ReleaseOwned {
            transaction_id: TXN.into(),
            known: None,
        }
    );
    // A listed, connected caller is not "gone": nothing is released mid-call.
    let state = attrs(CallState::InConnect);
    let ev = event("RINGING", &state, vec![leg_a()], json!(null));
    assert_eq!(store_work(&ev, &state, &config()), StoreWork::Nothing);
}

// --- a late update after Connect's leg ended -------------------------------------------------

fn no_intent() -> StoreResults {
    StoreResults {
        release: Some(Ok(ReleaseOutcome::Released)),
        transfer_intent: Some(Ok(None)),
        ..StoreResults::default()
    }
}

#[test]
fn connect_hangs_up_without_an_intent_and_a_late_update_still_transfers_the_caller() {
    let state = attrs(CallState::InConnect);
    let ev = hangup_event(CallState::InConnect, "LEG-B", "call-connect", vec![leg_a()]);
    let d = decide(&ev, &state, &config(), &no_intent());
    assert_eq!(types(&d), ["Pause"], "the caller waits, not hung up: {d:?}");
    assert_eq!(
        json_of(&d.actions[0])["Parameters"],
        json!({"CallId": "call-a", "DurationInMilliseconds": UpdateGrace::DEFAULT_MS})
    );
    let waiting = d.attributes.unwrap();
    assert_eq!(waiting.state, CallState::AwaitingUpdate);
    assert!(!waiting.pair_held);

    // The asynchronous update arrives during the grace.
    let update = event(
        "CALL_UPDATE_REQUESTED",
        &waiting,
        vec![leg_a()],
        json!({"Type": "CallUpdateRequest", "Parameters": {"Arguments":
            {"Transfer": "true", "TransferTarget": "2001", "TransferTargetArn": VC}}}),
    );
    assert!(matches!(
        store_work(&update, &waiting, &config()),
        StoreWork::ReleaseOwned { .. }
    ));
    let d = decide(&update, &waiting, &config(), &StoreResults::default());
    assert_eq!(types(&d), ["Speak", "CallAndBridge"]);
    assert!(is_transfer_bridge(&d.actions[1], "2001", VC));
    let transferring = d.attributes.unwrap();
    assert_eq!(transferring.state, CallState::Transferring);

    // The replaced Pause reporting back later changes nothing: no hangup.
    let pause_done = event(
        "ACTION_SUCCESSFUL",
        &transferring,
        vec![leg_a()],
        json!({"Type": "Pause", "Parameters": {"CallId": "call-a"}}),
    );
    let d = decide(
        &pause_done,
        &transferring,
        &config(),
        &StoreResults::default(),
    );
    assert!(d.actions.is_empty(), "{d:?}");
}

#[test]
fn the_grace_ends_in_one_hangup_and_a_later_update_never_hangs_up_again() {
    let mut state = attrs(CallState::AwaitingUpdate);
    state.pair_held = false;
    let pause_done = event(
        "ACTION_SUCCESSFUL",
        &state,
        vec![leg_a()],
        json!({"Type": "Pause", "Parameters": {"CallId": "call-a"}}),
    );
    let d = decide(&pause_done, &state, &config(), &StoreResults::default());
    assert_eq!(types(&d), ["Hangup"]);
    let ending = d.attributes.unwrap();
    assert_eq!(ending.state, CallState::Ending);
    // A re-delivery of the same event and a late update: no second hangup.
    let again = event(
        "ACTION_SUCCESSFUL",
        &ending,
        vec![leg_a()],
        json!({"Type": "Pause", "Parameters": {"CallId": "call-a"}}),
    );
    assert!(
        decide(&again, &ending, &config(), &StoreResults::default())
            .actions
            .is_empty()
    );
    let late = event(
        "CALL_UPDATE_REQUESTED",
        &ending,
        vec![leg_a()],
        json!({"Type": "CallUpdateRequest", "Parameters": {"Arguments": {"Transfer": "true"}}}),
    );
    assert!(
        decide(&late, &ending, &config(), &StoreResults::default())
            .actions
            .is_empty()
    );
}

#[test]
fn a_late_update_to_a_refused_target_ends_the_call_with_a_message() {
    let mut state = attrs(CallState::AwaitingUpdate);
    state.pair_held = false;
    let update = event(
        "CALL_UPDATE_REQUESTED",
        &state,
        vec![leg_a()],
        json!({"Type": "CallUpdateRequest", "Parameters": {"Arguments":
            {"Transfer": "true", "TransferTarget": "2001", "TransferTargetArn": OTHER_VC}}}),
    );
    let d = decide(&update, &state, &config(), &StoreResults::default());
    assert_eq!(types(&d), ["Speak", "Hangup"]);
    assert_eq!(d.attributes.unwrap().state, CallState::Ending);
}

// --- the Connect leg is remembered whenever it is learned -----------------------------------

#[test]
fn a_late_hangup_of_the_connect_leg_learned_from_an_overtaking_update_is_not_the_far_end() {
    let mut state = attrs(CallState::Connecting);
    state.connect_leg = None;
    let update = event(
        "CALL_UPDATE_REQUESTED",
        &state,
        vec![leg_a(), leg_b("call-connect")],
        json!({"Type": "CallUpdateRequest", "Parameters": {"Arguments": {"Transfer": "true"}}}),
    );
    let d = decide(&update, &state, &config(), &released());
    let pending = d.attributes.unwrap();
    assert_eq!(pending.state, CallState::TransferPending);
    assert_eq!(pending.connect_leg.as_deref(), Some("call-connect"));

    // Connect's leg goes; the caller is bridged to the target.
    let connect_gone = hangup_event(
        CallState::TransferPending,
        "LEG-B",
        "call-connect",
        vec![leg_a()],
    );
    let d = decide(&connect_gone, &pending, &config(), &StoreResults::default());
    let transferring = d.attributes.unwrap();
    assert_eq!(transferring.state, CallState::Transferring);
    let bridged = event(
        "ACTION_SUCCESSFUL",
        &transferring,
        vec![leg_a(), leg_b("call-target")],
        json!({"Type": "CallAndBridge"}),
    );
    let d = decide(&bridged, &transferring, &config(), &StoreResults::default());
    let transferred = d.attributes.unwrap();
    assert_eq!(transferred.state, CallState::Transferred);

    // A late (re-delivered) hangup of the old Connect leg must not end the transferred call.
    let late = event(
        "HANGUP",
        &transferred,
        vec![leg_a(), leg_b("call-target")],
        json!({"Type": "Hangup", "Parameters": {"SipResponseCode": 0, "CallId": "call-connect", "ParticipantTag": "LEG-B"}}),
    );
    let d = decide(&late, &transferred, &config(), &StoreResults::default());
    assert!(d.actions.is_empty(), "the caller was hung up: {d:?}");
}

// --- what goes into a SIP header ---------------------------------------------------------------

#[test]
fn the_original_calling_number_header_carries_an_e164_number_or_is_left_out() {
    for (caller, expected) in [
        (CALLER, Some(CALLER)),
        ("anonymous", None),
        ("+15550001111\r\nX-Injected: 1", None),
        ("sip:+15550001111@example.com", None),
    ] {
        let mut state = attrs(CallState::TransferPending);
        state.caller = Some(caller.into());
        let ev = event(
            "ACTION_SUCCESSFUL",
            &state,
            vec![leg_a()],
            json!({"Type": "Hangup", "Parameters": {"CallId": "call-connect"}}),
        );
        let d = decide(&ev, &state, &config(), &StoreResults::default());
        assert_eq!(types(&d), ["Speak", "CallAndBridge"], "{caller:?}");
        let Action::CallAndBridge(bridge) = &d.actions[1] else {
            panic!("not a bridge")
        };
        assert_eq!(
            bridge.sip_headers().get(ORIGINAL_CALLING_NUMBER_HEADER),
            expected,
            "{caller:?}"
        );
    }
}

// --- one transfer policy, and a refused update never strands the caller ---------------------

fn config_with_pattern() -> CallMachineConfig {
    CallMachineConfig {
        targets: TransferPolicy::with_rules(Some(target("2000", VC)), [VC], Some("[0-9]{1,6}"))
            .unwrap(),
        ..CallMachineConfig::default()
    }
}

#[test]
fn an_update_the_policy_refuses_keeps_the_caller_in_connect_with_the_pair_held() {
    let state = attrs(CallState::InConnect);
    let ev = update_event(
        CallState::InConnect,
        json!({"Transfer": "true", "TransferTarget": "+18005551234", "TransferTargetArn": VC}),
    );
    assert_eq!(
        store_work(&ev, &state, &config_with_pattern()),
        StoreWork::Nothing,
        "a refused target must not release the pair"
    );
    let d = decide(
        &ev,
        &state,
        &config_with_pattern(),
        &StoreResults::default(),
    );
    assert!(d.actions.is_empty());
    let a = d.attributes.unwrap();
    assert_eq!(a.state, CallState::InConnect);
    assert!(a.pair_held);
    // The default, named explicitly as connect-transfer sends it, is accepted.
    let ev = update_event(
        CallState::InConnect,
        json!({"Transfer": "true", "TransferTarget": "2000", "TransferTargetArn": VC}),
    );
    assert!(matches!(
        store_work(&ev, &state, &config_with_pattern()),
        StoreWork::ReleaseOwned { .. }
    ));
}

// --- store work the attributes prove done ------------------------------------------------------

#[test]
fn a_confirmed_release_after_connect_spares_the_ending_events_a_request() {
    for s in [
        CallState::TransferPending,
        CallState::Transferring,
        CallState::Transferred,
        CallState::Ending,
        CallState::Ended,
    ] {
        let state = attrs(s);
        assert!(!state.pair_held);
        let ev = hangup_event(s, "LEG-A", "call-a", vec![leg_a()]);
        assert!(matches!(
            store_work(&ev, &state, &config()),
            StoreWork::ReleaseOwned { .. }
        ));
        assert_eq!(
            store_work_needed(&ev, &state, &config()),
            StoreWork::Nothing,
            "{s:?}"
        );
    }
    // Still held, or before Connect, or no pair ever learned: the release is made.
    for (s, held) in [
        (CallState::InConnect, true),
        (CallState::Connecting, false),
        (CallState::Transferred, true),
    ] {
        let mut state = attrs(s);
        state.pair_held = held;
        let ev = hangup_event(s, "LEG-A", "call-a", vec![leg_a()]);
        assert!(
            matches!(
                store_work_needed(&ev, &state, &config()),
                StoreWork::ReleaseOwned { .. }
            ),
            "{s:?}"
        );
    }
    let state = CallAttributes {
        state: CallState::Ending,
        ..CallAttributes::default()
    };
    let ev = hangup_event(CallState::Ending, "LEG-A", "call-a", vec![leg_a()]);
    assert_eq!(
        store_work_needed(&ev, &state, &config()),
        StoreWork::ReleaseOwned {
            transaction_id: TXN.into(),
            known: None,
        }
    );
}

#[test]
fn the_call_start_comes_from_the_callers_leg() {
    let state = attrs(CallState::New);
    let mut a = leg_a();
    a["StartTimeInMilliseconds"] = "1763904000000".into();
    let ev = event("NEW_INBOUND_CALL", &state, vec![a], json!(null));
    assert_eq!(call_started_ms(&ev), Some(1_763_904_000_000));
    let ev = event("NEW_INBOUND_CALL", &state, vec![leg_a()], json!(null));
    assert_eq!(call_started_ms(&ev), None);
}
