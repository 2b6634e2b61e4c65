//! Drives the Alexa side with mutated events: the skill's request envelope
//! (`AlexaRequestEnvelope::from_value`), the backend's request body (`BackendRequest::from_slice`,
//! after the function URL's base64), message validation, and the session machine
//! (`session::decide`) over a sequence of messages on one session; the answers and forwarded
//! bodies are serialized as the functions would. Only the public entry points of
//! `takeback-alexa` are used, so the model can change underneath.

use base64::Engine;
use emulator::chaos::ChaosRng;
use serde_json::Value;
use takeback_alexa::config::SessionTtl;
use takeback_alexa::model::{
    AlexaRequestEnvelope, AlexaResponse, BackendMessage, BackendRequest, SignalingMessage,
    SkillRequest, SkillResponse,
};
use takeback_alexa::session::{self, CallSession, Incoming, SessionDecision, Side};

use crate::check::Broken;
use crate::corpus::Corpus;
use crate::drive::CaseResult;
use crate::mutate;

const NOW: i64 = 1_736_935_200;

/// Applies `message` to the session as the functions would, keeping the new state.
fn apply(
    current: &mut Option<CallSession>,
    message: &SignalingMessage,
    from: Side,
    message_id: &str,
    api_endpoint: Option<&str>,
    step: i64,
) {
    let incoming = Incoming {
        message,
        from,
        message_id,
        api_endpoint,
        now: NOW + step,
        ttl: SessionTtl::default(),
    };
    match session::decide(current.as_ref(), &incoming) {
        SessionDecision::Apply(next) => *current = Some(next),
        SessionDecision::Duplicate { session, .. } => *current = Some(session),
        SessionDecision::Ignore { .. } | SessionDecision::Reject(_) => {}
    }
}

fn serialize_or_flag<T: serde::Serialize>(
    what: &'static str,
    value: &T,
    input: &Value,
    out: &mut CaseResult,
) {
    if let Err(e) = serde_json::to_string(value) {
        out.violations.push(crate::drive::Violation {
            target: what,
            broken: Broken {
                rule: "serialize".into(),
                detail: e.to_string(),
            },
            input: input.clone(),
        });
    }
}

/// One skill event through the model and, for a CallSignaling message, the session machine.
fn skill_event(
    event: &Value,
    current: &mut Option<CallSession>,
    step: i64,
    rng: &mut ChaosRng,
    out: &mut CaseResult,
) {
    out.calls += 1;
    crate::note_input("alexa.skill", event);
    match AlexaRequestEnvelope::from_value(event.clone()) {
        AlexaRequestEnvelope::Skill(envelope) => {
            let envelope = *envelope;
            let api_endpoint = envelope.api_endpoint().map(str::to_owned);
            let _ = envelope.application_id();
            let request_id = envelope
                .header
                .request_id
                .clone()
                .unwrap_or_else(|| format!("generated-{step}"));
            if let Ok(SkillRequest::CallSignaling { kind, signal }) = envelope.request {
                if let Ok(message) = signal.validate(kind, rng.chance(0.3)) {
                    serialize_or_flag("alexa.forward", &message.forwarded(), event, out);
                    serialize_or_flag("alexa.signal", &message, event, out);
                    apply(
                        current,
                        &message,
                        Side::Alexa,
                        &request_id,
                        api_endpoint.as_deref(),
                        step,
                    );
                }
                let answer: AlexaResponse = SkillResponse::deferred().into();
                serialize_or_flag("alexa.answer", &answer, event, out);
            }
        }
        AlexaRequestEnvelope::Directive(_) | AlexaRequestEnvelope::Malformed { .. } => {}
    }
}

/// The body of a function-URL event, as the signaling API reads it.
fn body_bytes(event: &Value) -> Option<Vec<u8>> {
    let body = event.get("body")?.as_str()?;
    if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD.decode(body).ok()
    } else {
        Some(body.as_bytes().to_vec())
    }
}

/// One backend request body through the model and the session machine.
fn backend_body(
    body: &[u8],
    input: &Value,
    current: &mut Option<CallSession>,
    step: i64,
    out: &mut CaseResult,
) {
    out.calls += 1;
    crate::note_input("alexa.backend", input);
    let Ok(request) = BackendRequest::from_slice(body) else {
        return;
    };
    let message_id = request
        .message_id
        .clone()
        .unwrap_or_else(|| format!("generated-{step}"));
    let validated = match request.message {
        BackendMessage::InitiateInboundCall(signal) => signal.validate(
            takeback_alexa::model::MessageKind::InitiateInboundCall,
            true,
        ),
        BackendMessage::Signal { kind, signal } => signal.validate(kind, true),
    };
    if let Ok(message) = validated {
        serialize_or_flag("backend.signal", &message, input, out);
        apply(
            current,
            &message,
            Side::Provider,
            &message_id,
            request.api_endpoint.as_deref(),
            step,
        );
    }
}

/// A mutated body: the JSON mutated as a document, or its bytes cut and spliced.
fn mutated_body(body: &[u8], corpus: &Corpus, rng: &mut ChaosRng) -> Vec<u8> {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut doc) if rng.chance(0.8) => {
            let donors: Vec<&Value> = (0..2).filter_map(|_| corpus.any(rng)).collect();
            mutate::mutate(&mut doc, &donors, 5, rng);
            serde_json::to_vec(&doc).unwrap_or_default()
        }
        _ => {
            let mut bytes = body.to_vec();
            match rng.below(3) {
                0 => bytes.truncate(rng.below(bytes.len() as u64 + 1) as usize),
                1 => {
                    let at = rng.below(bytes.len() as u64 + 1) as usize;
                    let junk: Vec<u8> = (0..rng.range(1, 16))
                        .map(|_| rng.below(256) as u8)
                        .collect();
                    bytes.splice(at..at, junk);
                }
                _ => bytes.reverse(),
            }
            bytes
        }
    }
}

/// A sequence of skill events on one session (fixtures in a random order, some mutated,
/// duplicated and re-ordered).
pub fn alexa_sequence(corpus: &Corpus, rng: &mut ChaosRng, out: &mut CaseResult) {
    let n = rng.range(1, 6) as usize;
    let mut events: Vec<Value> = (0..n)
        .filter_map(|_| rng.pick(&corpus.alexa).map(|(_, v)| v.clone()))
        .collect();
    for e in events.iter_mut() {
        if rng.chance(0.7) {
            let donors: Vec<&Value> = (0..2).filter_map(|_| corpus.any(rng)).collect();
            mutate::mutate(e, &donors, 6, rng);
        }
    }
    mutate::shuffle_sequence(&mut events, rng);
    let mut current = None;
    for (step, e) in events.iter().enumerate() {
        skill_event(e, &mut current, step as i64, rng, out);
    }
}

/// A sequence of backend requests on one session (bodies mutated as JSON or as bytes), mixed
/// with skill events of the same session.
pub fn backend_sequence(corpus: &Corpus, rng: &mut ChaosRng, out: &mut CaseResult) {
    let n = rng.range(1, 5) as usize;
    let mut current = None;
    for step in 0..n {
        if rng.chance(0.25) {
            if let Some((_, e)) = rng.pick(&corpus.alexa) {
                let e = e.clone();
                skill_event(&e, &mut current, step as i64, rng, out);
            }
            continue;
        }
        let Some((_, event)) = rng.pick(&corpus.backend) else {
            return;
        };
        let Some(body) = body_bytes(event) else {
            continue;
        };
        let body = if rng.chance(0.8) {
            mutated_body(&body, corpus, rng)
        } else {
            body
        };
        let input = Value::String(String::from_utf8_lossy(&body).into_owned());
        backend_body(&body, &input, &mut current, step as i64, out);
    }
}
