//! What one skill invocation counts (see `takeback_common::metrics`).

use call_signaling::CallSignalingError;
use takeback_alexa::model::{AlexaRequestEnvelope, MessageKind, SkillRequest};
use takeback_common::metrics::{Outcome, names};

/// The `Function` dimension of this handler's metrics.
pub const FUNCTION: &str = "call-signaling";

/// An Alexa device starting a call: a new session when the skill answers it.
pub fn starts_session(event: &AlexaRequestEnvelope) -> bool {
    matches!(event, AlexaRequestEnvelope::Skill(envelope) if matches!(
        envelope.request,
        Ok(SkillRequest::CallSignaling { kind: MessageKind::InitiateOutboundCall, .. })
    ))
}

pub fn outcome(starts_session: bool, result: Result<(), &CallSignalingError>) -> Outcome {
    let label = match result {
        Ok(()) => "answered",
        Err(CallSignalingError::WrongSkill { .. }) => "wrong_skill",
        Err(CallSignalingError::Malformed(_)) => "malformed",
        Err(CallSignalingError::Store(_)) => "store_failed",
        Err(CallSignalingError::Deadline) => "deadline",
    };
    Outcome::new(FUNCTION)
        .label(label)
        .count_if(starts_session && result.is_ok(), names::ALEXA_SESSIONS)
        .count_if(
            matches!(result, Err(CallSignalingError::Store(_))),
            names::STORE_ERRORS,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answered_outbound_call_is_a_session_and_a_store_failure_is_counted() {
        assert_eq!(outcome(true, Ok(())).counts(), [names::ALEXA_SESSIONS]);
        assert!(outcome(false, Ok(())).counts().is_empty());
        let failed = CallSignalingError::Store(takeback_common::StoreError::Corrupt("x".into()));
        assert_eq!(outcome(true, Err(&failed)).counts(), [names::STORE_ERRORS]);
    }

    #[test]
    fn only_initiate_outbound_call_starts_a_session() {
        let event = |name: &str| {
            let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).expect("fixture");
            AlexaRequestEnvelope::from_value(serde_json::from_str(&text).expect("JSON"))
        };
        assert!(starts_session(&event("alexa-initiateoutboundcall-basic")));
        assert!(!starts_session(&event("alexa-callringing-basic")));
        assert!(!starts_session(&event("alexa-authorizationgrant-basic")));
    }
}
