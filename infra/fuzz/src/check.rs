//! What every answer must satisfy, whatever the input.
//!
//! SMA: the emulator's rules of what the PSTN audio service accepts
//! ([`emulator::rules::check_response`]: ≤ 10 actions, string-valued `TransactionAttributes` with
//! ≤ 10 keys, each action's parameters, Speak text 1–1,000 characters, ...), plus what the
//! project promises on top: `TransactionAttributes` is never `{}` (that would erase the call's
//! state), SIP headers are `X-` headers only and carry no CR, LF or other control characters.
//! Whether an action names a leg of *this* call is not checked: a mutated event can name legs
//! that do not exist, and the handler can only echo what it was given.
//!
//! Connect: a JSON object of strings only (Connect's flat map), with a `result`.

use emulator::rules::{self, LegView};
use serde_json::Value;

/// One broken promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub rule: String,
    pub detail: String,
}

fn broken(rule: impl Into<String>, detail: impl Into<String>) -> Broken {
    Broken {
        rule: rule.into(),
        detail: detail.into(),
    }
}

/// Leg references of the event: every participant's `CallId` and tag.
pub fn legs_of(event: &Value) -> Vec<LegView> {
    let mut legs = Vec::new();
    let participants = event
        .get("CallDetails")
        .and_then(|d| d.get("Participants"))
        .and_then(Value::as_array);
    for p in participants.into_iter().flatten() {
        let tag = match p.get("ParticipantTag").and_then(Value::as_str) {
            Some(t) if t.eq_ignore_ascii_case("LEG-B") => "LEG-B",
            _ => "LEG-A",
        };
        if let Some(id) = p.get("CallId").and_then(Value::as_str) {
            legs.push(LegView {
                tag,
                call_id: id.to_owned(),
            });
        }
    }
    legs
}

/// Violations that only say "this leg is not one of the event's legs".
fn is_leg_membership(v: &rules::Violation) -> bool {
    v.detail.contains("is not a leg of this call") || v.detail.contains("names no leg of this call")
}

/// Every promise an SMA answer breaks.
pub fn sma_response(response: &Value, event: &Value) -> Vec<Broken> {
    let mut out: Vec<Broken> = rules::check_response(response, &legs_of(event))
        .into_iter()
        .filter(|v| !is_leg_membership(v))
        .map(|v| broken(v.rule, v.detail))
        .collect();
    if let Some(Value::Object(attrs)) = response.get("TransactionAttributes")
        && attrs.is_empty()
    {
        out.push(broken(
            "attributes.empty",
            "TransactionAttributes is {}: it would erase the call's state",
        ));
    }
    let actions = response.get("Actions").and_then(Value::as_array);
    for action in actions.into_iter().flatten() {
        let headers = action
            .get("Parameters")
            .and_then(|p| p.get("SipHeaders"))
            .and_then(Value::as_object);
        for (name, value) in headers.into_iter().flatten() {
            if !(name.starts_with("X-") || name.starts_with("x-")) {
                out.push(broken(
                    "sip_header.name",
                    format!("SIP header {name:?} is not an X- header"),
                ));
            }
            if name.chars().any(char::is_control) {
                out.push(broken(
                    "sip_header.name",
                    format!("SIP header name {name:?} has control characters"),
                ));
            }
            if let Some(v) = value.as_str()
                && v.chars().any(char::is_control)
            {
                out.push(broken(
                    "sip_header.value",
                    format!("SIP header {name} value {v:?} has control characters"),
                ));
            }
        }
    }
    out
}

/// Every promise a Connect answer breaks.
pub fn connect_response(response: &Value) -> Vec<Broken> {
    let Some(map) = response.as_object() else {
        return vec![broken(
            "connect.not_object",
            format!("the answer is {response}"),
        )];
    };
    let mut out = Vec::new();
    for (k, v) in map {
        if !v.is_string() {
            out.push(broken(
                "connect.not_flat",
                format!("{k} is {v}, not a string"),
            ));
        }
    }
    match map.get("result").and_then(Value::as_str) {
        Some(r) if !r.is_empty() => {}
        _ => out.push(broken("connect.no_result", "the answer has no result")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({"CallDetails": {"Participants": [
            {"CallId": "a", "ParticipantTag": "LEG-A"},
            {"CallId": "b", "ParticipantTag": "LEG-B"}
        ]}})
    }

    #[test]
    fn a_good_sma_answer_passes() {
        let r = json!({"SchemaVersion": "1.0", "Actions": [
            {"Type": "Speak", "Parameters": {"CallId": "a", "Text": "Please hold", "Engine": "neural"}},
            {"Type": "CallAndBridge", "Parameters": {"CallTimeoutSeconds": 30, "CallerIdNumber": "+18005557777",
              "Endpoints": [{"BridgeEndpointType": "AWS", "Uri": "100", "Arn": "arn:aws:chime:us-east-1:123456789012:vc/pbx"}],
              "SipHeaders": {"X-Original-Calling-Number": "+12065550123"}}}
        ], "TransactionAttributes": {"state": "transferring"}});
        assert_eq!(sma_response(&r, &event()), Vec::new());
    }

    #[test]
    fn broken_sma_answers_are_caught() {
        let rules_of = |r: Value| -> Vec<String> {
            sma_response(&r, &event())
                .into_iter()
                .map(|b| b.rule)
                .collect()
        };
        assert_eq!(
            rules_of(json!({"SchemaVersion": "1.0", "Actions": [], "TransactionAttributes": {}})),
            ["attributes.empty"]
        );
        let bridge = |headers: Value| {
            json!({"SchemaVersion": "1.0", "Actions": [
            {"Type": "CallAndBridge", "Parameters": {"CallerIdNumber": "+18005557777",
              "Endpoints": [{"BridgeEndpointType": "AWS", "Uri": "100", "Arn": "arn:aws:chime:us-east-1:123456789012:vc/pbx"}],
              "SipHeaders": headers}}]})
        };
        assert_eq!(
            rules_of(bridge(
                json!({"X-Original-Calling-Number": "+1206\r\nX-Evil: 1"})
            )),
            ["sip_header.value"]
        );
        assert_eq!(
            rules_of(bridge(json!({"Diversion": "x"}))),
            ["sip_header.name"]
        );
        let eleven = vec![json!({"Type": "Hangup", "Parameters": {"CallId": "a"}}); 11];
        assert_eq!(
            rules_of(json!({"SchemaVersion": "1.0", "Actions": eleven})),
            ["response.too_many_actions"]
        );
        let long = "x".repeat(1001);
        assert_eq!(
            rules_of(
                json!({"SchemaVersion": "1.0", "Actions": [{"Type": "Speak", "Parameters": {"CallId": "a", "Text": long}}]})
            ),
            ["speak.text"]
        );
        // A leg the event does not list is not held against the handler.
        assert!(rules_of(json!({"SchemaVersion": "1.0", "Actions": [{"Type": "Hangup", "Parameters": {"CallId": "zzz"}}]})).is_empty());
    }

    #[test]
    fn connect_answers_must_be_flat_with_a_result() {
        assert!(connect_response(&json!({"result": "found", "transaction_id": "t"})).is_empty());
        let rules_of = |r: Value| -> Vec<String> {
            connect_response(&r).into_iter().map(|b| b.rule).collect()
        };
        assert_eq!(
            rules_of(json!({"result": "found", "n": 1})),
            ["connect.not_flat"]
        );
        assert_eq!(rules_of(json!({"reason": "x"})), ["connect.no_result"]);
        assert_eq!(rules_of(json!(["result"])), ["connect.not_object"]);
        assert_eq!(
            rules_of(json!({"result": {"nested": "x"}})),
            ["connect.not_flat", "connect.no_result"]
        );
    }
}
