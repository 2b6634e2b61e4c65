//! The SMA emulation itself, driven by scripted fake handlers: which events the service sends in
//! which order, how it treats `TransactionAttributes`, and what it does with an invalid response.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use emulator::backend::PairProbe;
use emulator::contact_flow_interpreter::ParsedFlow;
use emulator::invoke::{Handler, Invoker};
use emulator::model::Function;
use emulator::run::Run;
use emulator::scenario::{CallOutcome, Scenario};
use emulator::simulate::{RunResult, simulate};
use emulator::world::World;
use futures::FutureExt;
use serde_json::{Value, json};

const CONNECT: &str = "+18005551111";
const SMA: &str = "+18005557777";

/// A flow that keeps the contact on hold for a minute, then disconnects.
fn hold_flow() -> ParsedFlow {
    ParsedFlow::from_value(json!({
        "Version": "2019-10-30", "StartAction": "hold",
        "Actions": [
            {"Identifier": "hold", "Type": "MessageParticipant",
             "Parameters": {"SSML": "<speak><break time=\"60s\"/></speak>"}, "Transitions": {"NextAction": "bye"}},
            {"Identifier": "bye", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}}
        ]
    }))
    .expect("the hold flow parses")
}

fn scenario(sma: Value) -> Scenario {
    serde_json::from_value(json!({
        "name": "t",
        "pairs": {"sma_numbers": [SMA], "connect_numbers": [CONNECT]},
        "sma": sma,
        "calls": [{"caller": "+12065550123", "dialled": "+18005550100"}]
    }))
    .expect("the test scenario parses")
}

type Script = dyn Fn(&Value, &mut Vec<Value>) -> Value + Send + Sync;

/// Runs one call with `script` as the SMA handler; returns the events it received.
async fn play(scenario: &Scenario, script: Arc<Script>) -> (Vec<Value>, RunResult) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = seen.clone();
    let handler: Handler = Arc::new(move |event: Value| {
        let mut log = log.lock().expect("the event log lock");
        log.push(event.clone());
        let response = script(&event, &mut log);
        async move { Ok(response) }.boxed()
    });
    let run = Arc::new(Run {
        world: World::new("sma-test".into(), vec![], true),
        invoker: Invoker::InProcess(Arc::new(HashMap::from([(Function::Sma, handler)]))),
        plans: scenario.plans(),
        connect_numbers: HashSet::from([CONNECT.to_owned()]),
        targets: BTreeMap::new(),
        fallback: None,
        flow: hold_flow(),
        epoch_ms: 0,
        sample_pairs: false,
    });
    let result = simulate(&run, &PairProbe::None("no store".into())).await;
    let events = seen.lock().expect("the event log lock").clone();
    (events, result)
}

fn kind(e: &Value) -> String {
    let t = e["InvocationEventType"].as_str().unwrap_or_default();
    match t {
        "HANGUP" => format!(
            "HANGUP {}",
            e["ActionData"]["Parameters"]["ParticipantTag"]
                .as_str()
                .unwrap_or("?")
        ),
        "ACTION_SUCCESSFUL" | "ACTION_FAILED" => {
            format!("{t} {}", e["ActionData"]["Type"].as_str().unwrap_or("?"))
        }
        other => other.to_owned(),
    }
}

fn leg(e: &Value, tag: &str) -> String {
    e["CallDetails"]["Participants"]
        .as_array()
        .expect("Participants is a list")
        .iter()
        .find(|p| p["ParticipantTag"] == tag)
        .map(|p| p["CallId"].as_str().expect("CallId is a string").to_owned())
        .expect("the leg is a participant")
}

fn ok(actions: Vec<Value>) -> Value {
    json!({"SchemaVersion": "1.0", "Actions": actions})
}

fn pause(e: &Value) -> Value {
    json!({"Type": "Pause", "Parameters": {"CallId": leg(e, "LEG-A"), "DurationInMilliseconds": 500}})
}

fn hangup(e: &Value, tag: &str) -> Value {
    json!({"Type": "Hangup", "Parameters": {"CallId": leg(e, tag), "SipResponseCode": "0"}})
}

/// Bridges to Connect, hangs up the Connect leg once bridged, pauses once the hangup is
/// reported (by whichever event comes first), then hangs up the caller.
fn take_back_script() -> Arc<Script> {
    Arc::new(|e: &Value, _log: &mut Vec<Value>| {
        let k = kind(e);
        match k.as_str() {
            "NEW_INBOUND_CALL" => ok(vec![json!({"Type": "CallAndBridge", "Parameters": {
                "CallTimeoutSeconds": 30, "CallerIdNumber": SMA,
                "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": CONNECT}]}})]),
            "ACTION_SUCCESSFUL CallAndBridge" => {
                json!({"SchemaVersion": "1.0", "Actions": [hangup(e, "LEG-B")], "TransactionAttributes": {"phase": "hanging_up"}})
            }
            "HANGUP LEG-B" | "ACTION_SUCCESSFUL Hangup" => {
                if e["CallDetails"]["TransactionAttributes"]["phase"] == "hanging_up" {
                    json!({"SchemaVersion": "1.0", "Actions": [pause(e)], "TransactionAttributes": {"phase": "paused"}})
                } else {
                    ok(vec![])
                }
            }
            "ACTION_SUCCESSFUL Pause" => ok(vec![hangup(e, "LEG-A")]),
            _ => ok(vec![]),
        }
    })
}

#[tokio::test]
async fn hangup_of_the_connect_leg_produces_the_events_the_knob_says_in_that_order() {
    let cases = [
        (
            "hangup",
            vec!["HANGUP LEG-B", "ACTION_SUCCESSFUL Pause", "HANGUP LEG-A"],
        ),
        (
            "hangup_then_success",
            vec![
                "HANGUP LEG-B",
                "ACTION_SUCCESSFUL Hangup",
                "ACTION_SUCCESSFUL Pause",
                "HANGUP LEG-A",
            ],
        ),
        (
            "success_then_hangup",
            vec![
                "ACTION_SUCCESSFUL Hangup",
                "HANGUP LEG-B",
                "ACTION_SUCCESSFUL Pause",
                "HANGUP LEG-A",
            ],
        ),
        (
            "success",
            vec![
                "ACTION_SUCCESSFUL Hangup",
                "ACTION_SUCCESSFUL Pause",
                "HANGUP LEG-A",
            ],
        ),
    ];
    for (knob, after_hangup) in cases {
        let s = scenario(json!({"hangup_events": knob}));
        let (events, result) = play(&s, take_back_script()).await;
        let kinds: Vec<String> = events.iter().map(kind).collect();
        let mut want = vec!["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL CallAndBridge"];
        want.extend(after_hangup);
        assert_eq!(kinds, want, "knob {knob}");
        // The SMA's hangup of LEG-B ended the Connect contact.
        assert_eq!(result.contacts.len(), 1);
        assert_eq!(result.contacts[0].ended_by, "sma", "knob {knob}");
        assert!(result.findings.is_empty(), "{:?}", result.findings);
        assert_eq!(result.calls[0].outcome, Some(CallOutcome::Ended));
        // LEG-B is reported disconnected once it is down.
        let hangup_b = events.iter().find(|e| kind(e) == "HANGUP LEG-B");
        if let Some(h) = hangup_b {
            let b = h["CallDetails"]["Participants"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["ParticipantTag"] == "LEG-B")
                .unwrap();
            assert_eq!(b["Status"], "Disconnected");
        }
    }
}

#[tokio::test]
async fn the_bridge_success_lists_both_legs_and_connect_sees_the_presented_caller_id() {
    let s = scenario(json!({}));
    let (events, result) = play(&s, take_back_script()).await;
    let bridged = events
        .iter()
        .find(|e| kind(e) == "ACTION_SUCCESSFUL CallAndBridge")
        .unwrap();
    let parts = bridged["CallDetails"]["Participants"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().all(|p| p["Status"] == "Connected"));
    let b = parts
        .iter()
        .find(|p| p["ParticipantTag"] == "LEG-B")
        .unwrap();
    assert_eq!(
        (b["From"].as_str(), b["To"].as_str()),
        (Some(SMA), Some(CONNECT))
    );
    assert_eq!(
        result.calls[0].connect_bridges,
        vec![(SMA.to_owned(), CONNECT.to_owned())]
    );
    // Sequence numbers increase by one per invocation.
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["Sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

#[tokio::test]
async fn transaction_attributes_absent_keeps_them_and_empty_erases_them() {
    let script: Arc<Script> = Arc::new(|e: &Value, log: &mut Vec<Value>| {
        match log.len() {
            1 => {
                json!({"SchemaVersion": "1.0", "Actions": [pause(e)], "TransactionAttributes": {"k": "v"}})
            }
            // Absent: kept.
            2 => ok(vec![pause(e)]),
            // `{}`: erased.
            3 => {
                json!({"SchemaVersion": "1.0", "Actions": [pause(e)], "TransactionAttributes": {}})
            }
            4 => ok(vec![hangup(e, "LEG-A")]),
            _ => ok(vec![]),
        }
    });
    let (events, result) = play(&scenario(json!({})), script).await;
    let attrs: Vec<Value> = events
        .iter()
        .map(|e| e["CallDetails"]["TransactionAttributes"].clone())
        .collect();
    assert_eq!(
        attrs[0],
        Value::Null,
        "the first event carries no attributes"
    );
    assert_eq!(attrs[1], json!({"k": "v"}));
    assert_eq!(
        attrs[2],
        json!({"k": "v"}),
        "an answer without TransactionAttributes keeps them"
    );
    assert_eq!(attrs[3], Value::Null, "an answer with {{}} erases them");
    assert_eq!(kind(&events[4]), "HANGUP LEG-A");
    assert_eq!(result.calls[0].hangup_code, Some(0));
}

#[tokio::test]
async fn an_invalid_response_is_flagged_and_answered_with_invalid_lambda_response() {
    let script: Arc<Script> = Arc::new(|e: &Value, _log: &mut Vec<Value>| match kind(e).as_str() {
        "NEW_INBOUND_CALL" => ok(vec![pause(e); 11]),
        "INVALID_LAMBDA_RESPONSE" => ok(vec![hangup(e, "LEG-A")]),
        _ => ok(vec![]),
    });
    let (events, result) = play(&scenario(json!({})), script).await;
    let kinds: Vec<String> = events.iter().map(kind).collect();
    assert_eq!(
        kinds,
        [
            "NEW_INBOUND_CALL",
            "INVALID_LAMBDA_RESPONSE",
            "HANGUP LEG-A"
        ]
    );
    assert_eq!(events[1]["ErrorType"], "InvalidActionParameter");
    assert!(
        events[1]["ErrorMessage"]
            .as_str()
            .unwrap()
            .contains("11 actions")
    );
    let rules: Vec<&str> = result.findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, ["response.too_many_actions"]);
}

#[tokio::test]
async fn a_second_invalid_response_ends_the_call() {
    let script: Arc<Script> = Arc::new(|_e: &Value, _log: &mut Vec<Value>| json!({"Actions": []}));
    let (events, result) = play(&scenario(json!({})), script).await;
    assert_eq!(
        events.iter().map(kind).collect::<Vec<_>>(),
        ["NEW_INBOUND_CALL", "INVALID_LAMBDA_RESPONSE"]
    );
    assert_eq!(result.findings.len(), 2, "{:?}", result.findings);
    assert!(!result.calls[0].still_connected);
}

#[tokio::test]
async fn the_caller_left_in_silence_is_reported_stuck() {
    // Answers nothing at all: the caller is connected and nothing will ever happen.
    let script: Arc<Script> = Arc::new(|_e: &Value, _log: &mut Vec<Value>| ok(vec![]));
    let (_, result) = play(&scenario(json!({})), script).await;
    assert_eq!(result.calls[0].outcome, Some(CallOutcome::Stuck));
}

#[tokio::test]
async fn a_call_not_answered_fails_after_call_timeout_seconds_without_leg_b() {
    let script: Arc<Script> = Arc::new(|e: &Value, _log: &mut Vec<Value>| match kind(e).as_str() {
        "NEW_INBOUND_CALL" => ok(vec![json!({"Type": "CallAndBridge", "Parameters": {
            "CallTimeoutSeconds": 7, "CallerIdNumber": SMA,
            "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": CONNECT}]}})]),
        "ACTION_FAILED CallAndBridge" => ok(vec![hangup(e, "LEG-A")]),
        _ => ok(vec![]),
    });
    let s: Scenario = serde_json::from_value(json!({
        "name": "t", "pairs": {"sma_numbers": [SMA], "connect_numbers": [CONNECT]},
        "connect": {"answer": "no_answer"},
        "calls": [{"caller": "+12065550123", "dialled": "+18005550100"}]
    }))
    .unwrap();
    let (events, result) = play(&s, script).await;
    let failed = events
        .iter()
        .find(|e| kind(e) == "ACTION_FAILED CallAndBridge")
        .unwrap();
    assert_eq!(failed["ActionData"]["ErrorType"], "CallNotAnswered");
    assert_eq!(
        failed["CallDetails"]["Participants"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "the failed leg is not listed"
    );
    let at = result
        .timeline
        .iter()
        .find(|t| t.event.as_deref() == Some("ACTION_FAILED"))
        .unwrap()
        .t_ms;
    assert_eq!(at, 7000, "CallTimeoutSeconds on the virtual clock");
    assert!(result.wall.as_secs() < 5, "virtual time costs no wall time");
}

#[tokio::test]
async fn the_pair_a_call_holds_runs_from_the_bridge_to_the_first_event_that_may_release_it() {
    // HANGUP (LEG-B) is the first such event...
    let (_, first) = play(
        &scenario(json!({"hangup_events": "hangup"})),
        take_back_script(),
    )
    .await;
    assert_eq!(first.holds.len(), 1, "{:?}", first.holds);
    let h = &first.holds[0];
    assert_eq!(
        (h.call, h.sma_number.as_str(), h.connect_number.as_str()),
        (0, SMA, CONNECT)
    );
    let until_hangup = h.until_ms.expect("closed");
    assert!(until_hangup > h.from_ms, "{h:?}");
    // ...without it, the caller's HANGUP (after the pause) is.
    let (_, later) = play(
        &scenario(json!({"hangup_events": "success"})),
        take_back_script(),
    )
    .await;
    let until_caller = later.holds[0].until_ms.expect("closed");
    assert!(until_caller > until_hangup, "{:?}", later.holds);
}
