//! What a caller got from one `NEW_INBOUND_CALL`.
//!
//! Both functions run with marker texts for their busy and unavailable announcements
//! (`MESSAGE_BUSY`, `MESSAGE_UNAVAILABLE`), so the `Speak` action tells the two apart without
//! knowing either function's wording. A caller is *refused* when the invocation failed (an
//! `/error` post, the runtime's init error), answered after the function's timeout (the SIP
//! media application has given up by then) or never, or answered "unavailable" (the store
//! failed); "busy" (no pair free) is reported apart, and anything unrecognisable counts as
//! refused too.

use std::time::Duration;

use serde_json::Value;

use crate::events::Bridge;
use crate::runtime_api::{Outcome, Waited};

/// The announcement texts the benchmark gives both functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markers {
    pub busy: String,
    pub unavailable: String,
}

impl Default for Markers {
    fn default() -> Self {
        Self {
            busy: "call-bench marker: busy, no pair free.".into(),
            unavailable: "call-bench marker: unavailable, the store failed.".into(),
        }
    }
}

/// An answer's meaning for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Bridged toward Connect (a `CallAndBridge` to a PSTN number).
    Claimed(Bridge),
    /// Told that every line is busy.
    Busy,
    Refused(Refusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refusal {
    /// `/error` post or `/runtime/init/error`.
    InvocationError,
    /// Answered after the function's timeout, or not at all.
    Timeout,
    /// The "unavailable" announcement.
    Unavailable,
    /// A response that is neither a bridge nor one of the announcements.
    Unrecognised,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Self::InvocationError => "errors",
            Self::Timeout => "timeouts",
            Self::Unavailable => "unavailable",
            Self::Unrecognised => "unrecognised",
        }
    }
}

fn actions(response: &Value) -> &[Value] {
    response
        .get("Actions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn speaks(response: &Value, marker: &str) -> bool {
    actions(response).iter().any(|a| {
        a["Type"] == "Speak"
            && a.pointer("/Parameters/Text")
                .and_then(Value::as_str)
                .is_some_and(|t| t.contains(marker))
    })
}

/// The bridge toward Connect in an SMA response, if it asks for one.
pub fn bridge_of(response: &Value) -> Option<Bridge> {
    let bridge = actions(response).iter().find(|a| {
        a["Type"] == "CallAndBridge"
            && a.pointer("/Parameters/Endpoints/0/BridgeEndpointType") == Some(&"PSTN".into())
    })?;
    Some(Bridge {
        sma_number: bridge
            .pointer("/Parameters/CallerIdNumber")?
            .as_str()?
            .to_owned(),
        connect_number: bridge
            .pointer("/Parameters/Endpoints/0/Uri")?
            .as_str()?
            .to_owned(),
    })
}

/// Classifies an SMA response body.
pub fn classify_response(body: &[u8], markers: &Markers) -> Verdict {
    let Ok(response) = serde_json::from_slice::<Value>(body) else {
        return Verdict::Refused(Refusal::Unrecognised);
    };
    if let Some(bridge) = bridge_of(&response) {
        Verdict::Claimed(bridge)
    } else if speaks(&response, &markers.busy) {
        Verdict::Busy
    } else if speaks(&response, &markers.unavailable) {
        Verdict::Refused(Refusal::Unavailable)
    } else {
        Verdict::Refused(Refusal::Unrecognised)
    }
}

/// Classifies a waited invocation of a function whose timeout is `timeout`.
pub fn classify(waited: &Waited, timeout: Duration, markers: &Markers) -> Verdict {
    match waited {
        Waited::TimedOut => Verdict::Refused(Refusal::Timeout),
        Waited::InitFailed(_) => Verdict::Refused(Refusal::InvocationError),
        Waited::Answered(a) if a.in_function() > timeout => Verdict::Refused(Refusal::Timeout),
        Waited::Answered(a) => match &a.outcome {
            Outcome::Error(_) => Verdict::Refused(Refusal::InvocationError),
            Outcome::Response(body) => classify_response(body, markers),
        },
    }
}

/// The `TransactionAttributes` an SMA response sets, which the SMA sends back with the call's
/// next event.
pub fn transaction_attributes(body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("TransactionAttributes")
        .filter(|a| a.is_object())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime_api::Answered;
    use std::time::Instant;

    fn markers() -> Markers {
        Markers::default()
    }

    fn speak(text: &str) -> Vec<u8> {
        serde_json::json!({"SchemaVersion": "1.0", "Actions": [
            {"Type": "Speak", "Parameters": {"Text": text, "CallId": "a", "Engine": "neural"}},
            {"Type": "Hangup", "Parameters": {"SipResponseCode": "480", "CallId": "a"}}
        ]})
        .to_string()
        .into_bytes()
    }

    const BRIDGE: &str = r#"{"SchemaVersion":"1.0","Actions":[{"Type":"CallAndBridge",
        "Parameters":{"CallTimeoutSeconds":30,"CallerIdNumber":"+18005550001",
        "Endpoints":[{"BridgeEndpointType":"PSTN","Uri":"+18884440002"}]}}],
        "TransactionAttributes":{"state":"in_connect"}}"#;

    fn answered(outcome: Outcome, took: Duration) -> Waited {
        let delivered_at = Instant::now();
        Waited::Answered(Answered {
            outcome,
            queued_at: delivered_at,
            delivered_at,
            answered_at: delivered_at + took,
        })
    }

    #[test]
    fn a_bridge_to_connect_is_a_claim_with_its_pair() {
        assert_eq!(
            classify_response(BRIDGE.as_bytes(), &markers()),
            Verdict::Claimed(Bridge {
                sma_number: "+18005550001".into(),
                connect_number: "+18884440002".into(),
            })
        );
        assert_eq!(
            transaction_attributes(BRIDGE.as_bytes()),
            Some(serde_json::json!({"state": "in_connect"}))
        );
    }

    #[test]
    fn announcements_are_told_apart_by_their_markers() {
        let m = markers();
        assert_eq!(classify_response(&speak(&m.busy), &m), Verdict::Busy);
        assert_eq!(
            classify_response(&speak(&m.unavailable), &m),
            Verdict::Refused(Refusal::Unavailable)
        );
        assert_eq!(
            classify_response(&speak("Goodbye."), &m),
            Verdict::Refused(Refusal::Unrecognised)
        );
        // A bridge over a Voice Connector is a transfer, not a claim.
        let sip = br#"{"Actions":[{"Type":"CallAndBridge","Parameters":{"CallerIdNumber":"+1",
            "Endpoints":[{"BridgeEndpointType":"AWS","Uri":"2000","Arn":"arn"}]}}]}"#;
        assert_eq!(
            classify_response(sip, &m),
            Verdict::Refused(Refusal::Unrecognised)
        );
        assert_eq!(
            classify_response(b"not json", &m),
            Verdict::Refused(Refusal::Unrecognised)
        );
        assert_eq!(transaction_attributes(b"{\"Actions\":[]}"), None);
    }

    #[test]
    fn errors_late_answers_and_silence_are_refusals() {
        let m = markers();
        let limit = Duration::from_secs(5);
        let error = br#"{"errorType":"ThrottlingException","errorMessage":"Rate exceeded"}"#;
        assert_eq!(
            classify(
                &answered(Outcome::Error(error.to_vec()), Duration::ZERO),
                limit,
                &m
            ),
            Verdict::Refused(Refusal::InvocationError)
        );
        assert_eq!(
            classify(
                &answered(
                    Outcome::Response(BRIDGE.as_bytes().to_vec()),
                    Duration::from_secs(6)
                ),
                limit,
                &m
            ),
            Verdict::Refused(Refusal::Timeout)
        );
        assert!(matches!(
            classify(
                &answered(
                    Outcome::Response(BRIDGE.as_bytes().to_vec()),
                    Duration::from_millis(4)
                ),
                limit,
                &m
            ),
            Verdict::Claimed(_)
        ));
        assert_eq!(
            classify(&Waited::TimedOut, limit, &m),
            Verdict::Refused(Refusal::Timeout)
        );
        assert_eq!(
            classify(&Waited::InitFailed("{}".into()), limit, &m),
            Verdict::Refused(Refusal::InvocationError)
        );
    }
}
