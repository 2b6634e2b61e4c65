//! Unit tests of the wire model.

use super::*;
use serde_json::{Value, json};
fn signal(v: Value) -> InboundSignal {
    serde_json::from_value(v).unwrap()
}

#[test]
fn kinds_round_trip_by_name_and_full_type() {
    for k in MessageKind::ALL {
        assert_eq!(MessageKind::parse(k.name()), Some(k));
        assert_eq!(MessageKind::parse(&k.full_type()), Some(k));
    }
    assert_eq!(MessageKind::parse("CallTransferred"), None);
}

#[test]
fn open_enums_keep_unknown_values() {
    let c: CallResultCode = serde_json::from_str("\"UNAUTHORISED\"").unwrap();
    assert_eq!(c, CallResultCode::Unauthorized);
    assert_eq!(serde_json::to_string(&c).unwrap(), "\"UNAUTHORIZED\"");
    let c: CallResultCode = serde_json::from_str("\"NETWORK_ERROR\"").unwrap();
    assert_eq!(c, CallResultCode::Other("NETWORK_ERROR".into()));
    assert_eq!(serde_json::to_string(&c).unwrap(), "\"NETWORK_ERROR\"");
    let r: RenegotiationType = serde_json::from_str("\"CALL_HOLD\"").unwrap();
    assert_eq!(r, RenegotiationType::CallHold);
    let t: ParticipantIdType = serde_json::from_str("\"SIP_URI\"").unwrap();
    assert_eq!(t, ParticipantIdType::Other("SIP_URI".into()));
}

#[test]
fn offer_is_required_and_typed() {
    let err = signal(json!({"sessionId": "s1"}))
        .validate(MessageKind::InitiateOutboundCall, false)
        .unwrap_err();
    assert_eq!(
        err,
        InvalidMessage::MissingSdp {
            kind: MessageKind::InitiateOutboundCall,
            expected: "OFFER"
        }
    );
    let err = signal(json!({"sessionId": "s1", "sdpDetails": {"type": "ANSWER", "value": "v=0"}}))
        .validate(MessageKind::CallUpdate, false)
        .unwrap_err();
    assert!(matches!(err, InvalidMessage::WrongSdpType { .. }));
    // A missing type is taken to be the one the message needs.
    let m = signal(json!({"sessionId": "s1", "sdpDetails": {"value": "v=0"}}))
        .validate(MessageKind::CallAccepted, false)
        .unwrap();
    assert_eq!(m.sdp.unwrap().sdp_type, SdpType::Answer);
}

#[test]
fn session_id_is_checked() {
    assert_eq!(
        signal(json!({}))
            .validate(MessageKind::CallRinging, false)
            .unwrap_err(),
        InvalidMessage::MissingSessionId
    );
    assert!(matches!(
        signal(json!({"sessionId": "a\u{0}b"})).validate(MessageKind::CallRinging, false),
        Err(InvalidMessage::BadSessionId(_))
    ));
}

#[test]
fn participants_are_checked_and_required_when_asked() {
    let err = signal(json!({"sessionId": "s", "sdpDetails": {"type": "OFFER", "value": "v=0"}}))
        .validate(MessageKind::InitiateInboundCall, true)
        .unwrap_err();
    assert!(matches!(err, InvalidMessage::MissingParticipants { .. }));
    let err = signal(json!({"sessionId": "s", "participants": [{"id": {"type": "RAW_ADDRESS"}}]}))
        .validate(MessageKind::CallRinging, false)
        .unwrap_err();
    assert_eq!(
        err,
        InvalidMessage::BadParticipant {
            index: 0,
            reason: "id.value is missing"
        }
    );
}

#[test]
fn alexa_body_is_flat_and_strict_forward_body_keeps_unknown_fields() {
    let m = signal(json!({
        "type": "Alexa.Comms.CallSignaling.CallEnded",
        "requestId": "r1",
        "sessionId": "s1",
        "callResult": {"code": "SUCCESS", "message": "bye"},
        "newField": 7
    }))
    .validate(MessageKind::CallEnded, false)
    .unwrap();
    assert_eq!(
        serde_json::to_value(&m).unwrap(),
        json!({"type": "Alexa.Comms.CallSignaling.CallEnded", "sessionId": "s1",
               "callResult": {"code": "SUCCESS", "message": "bye"}})
    );
    let fwd = serde_json::to_value(m.forwarded()).unwrap();
    assert_eq!(fwd["newField"], 7);
    assert!(fwd.get("requestId").is_none());
}

#[test]
fn accept_grant_events_have_the_documented_shape() {
    let ok = serde_json::to_value(AlexaEvent::accept_grant_response()).unwrap();
    assert_eq!(ok["event"]["header"]["namespace"], "Alexa.Authorization");
    assert_eq!(ok["event"]["header"]["name"], "AcceptGrant.Response");
    assert_eq!(ok["event"]["header"]["payloadVersion"], "3");
    assert_eq!(ok["event"]["payload"], json!({}));
    let err = serde_json::to_value(SkillResponse::event(AlexaEvent::accept_grant_failed(
        "nope",
    )))
    .unwrap();
    assert_eq!(err["version"], "1.0");
    assert_eq!(err["response"]["event"]["header"]["name"], "ErrorResponse");
    assert_eq!(
        err["response"]["event"]["payload"]["type"],
        "ACCEPT_GRANT_FAILED"
    );
}

#[test]
fn skill_requests_are_sorted_by_type() {
    let env = skill(json!({
        "version": "1.0",
        "context": {"System": {"application": {"applicationId": "amzn1.ask.skill.x"},
                    "apiEndpoint": "https://api.amazonalexa.com", "apiAccessToken": "secret"}},
        "request": {"type": "Alexa.Comms.CallSignaling.CallTransfer", "requestId": "r"}
    }));
    assert_eq!(env.application_id(), Some("amzn1.ask.skill.x"));
    assert!(!format!("{env:?}").contains("\"secret\""));
    assert!(matches!(
        env.request.unwrap(),
        SkillRequest::UnknownCallSignaling { name } if name == "CallTransfer"
    ));
    let env = skill(json!({"request": {"requestId": "r"}}));
    assert_eq!(env.request.unwrap_err(), MalformedRequest::NoType);
    let env = skill(json!({
        "request": {"type": "Alexa.Comms.CallSignaling.CallUpdate", "participants": "nope"}
    }));
    assert!(matches!(
        env.request,
        Err(MalformedRequest::BadFields { .. })
    ));
}

fn skill(v: Value) -> SkillRequestEnvelope {
    match AlexaRequestEnvelope::from_value(v) {
        AlexaRequestEnvelope::Skill(env) => *env,
        other => panic!("{other:?}"),
    }
}

#[test]
fn reading_an_event_never_fails_and_keeps_the_reason() {
    for (event, reason) in [
        (json!("not an object"), "not an Alexa request envelope: "),
        (json!({"version": 1}), "not an Alexa request envelope: "),
        (json!({"directive": null}), "not a directive: "),
        (
            json!({"directive": {"header": {"name": 7}}}),
            "not a directive: ",
        ),
    ] {
        let parsed: AlexaRequestEnvelope = serde_json::from_value(event.clone()).unwrap();
        match parsed {
            AlexaRequestEnvelope::Malformed { reason: r } => assert!(r.starts_with(reason), "{r}"),
            other => panic!("{event}: {other:?}"),
        }
    }
    // The public type is named in the error, as when the envelope was read directly.
    let AlexaRequestEnvelope::Malformed { reason } =
        AlexaRequestEnvelope::from_value(json!("not an object"))
    else {
        panic!()
    };
    assert!(
        reason.ends_with("expected struct SkillRequestEnvelope"),
        "{reason}"
    );
    // No `request` object, or a mistyped header field: still a skill request.
    assert_eq!(
        skill(json!({"request": "x"})).request.unwrap_err(),
        MalformedRequest::NoRequest
    );
    let env =
        skill(json!({"request": {"type": "LaunchRequest", "requestId": 5, "sessionId": "s"}}));
    assert_eq!(env.header.request_type, None);
    assert_eq!(env.header.session_id.as_deref(), Some("s"));
    assert!(matches!(env.request, Ok(SkillRequest::Launch)));
}

#[test]
fn directives_are_sorted_by_namespace_and_name() {
    let directive = |v: Value| match AlexaRequestEnvelope::from_value(json!({ "directive": v })) {
        AlexaRequestEnvelope::Directive(d) => d,
        other => panic!("{other:?}"),
    };
    let d = directive(json!({
        "header": {"namespace": "Alexa.Authorization", "name": "AcceptGrant", "payloadVersion": "3"},
        "payload": {"grant": {"type": "OAuth2.AuthorizationCode", "code": "c0de"}}
    }));
    let Directive::AcceptGrant(g) = d.directive else {
        panic!("{d:?}")
    };
    assert_eq!(g.grant.unwrap().code.unwrap().expose(), "c0de");
    let d = directive(json!({
        "header": {"namespace": "Alexa.Authorization", "name": "AcceptGrant"},
        "payload": "nope"
    }));
    assert!(matches!(
        d.directive,
        Directive::MalformedAcceptGrant { .. }
    ));
    let d =
        directive(json!({"header": {"namespace": "Alexa", "name": "ReportState"}, "payload": 1}));
    assert!(matches!(d.directive, Directive::Unknown));
    assert_eq!(d.header.name.as_deref(), Some("ReportState"));
}

#[test]
fn skill_responses_have_the_documented_shape() {
    assert_eq!(
        serde_json::to_value(AlexaResponse::from(SkillResponse::deferred())).unwrap(),
        json!({"version": "1.0", "response": {}})
    );
    assert_eq!(
        serde_json::to_value(SkillResponse::speech("hi")).unwrap(),
        json!({"version": "1.0", "response": {
            "outputSpeech": {"type": "PlainText", "text": "hi"}, "shouldEndSession": true}})
    );
    let invalid =
        serde_json::to_value(AlexaResponse::from(AlexaEvent::invalid_directive("x"))).unwrap();
    assert_eq!(invalid["event"]["header"]["namespace"], "Alexa");
    assert_eq!(invalid["event"]["header"]["name"], "ErrorResponse");
    assert_eq!(
        invalid["event"]["payload"],
        json!({"type": "INVALID_DIRECTIVE", "message": "x"})
    );
}

#[test]
fn backend_requests_are_sorted_by_type() {
    let read = |v: Value| BackendRequest::from_slice(v.to_string().as_bytes());
    let r = read(
        json!({"type": "Alexa.Comms.CallSignaling.CallRinging", "sessionId": "s",
                        "messageId": "m", "apiEndpoint": "https://x"}),
    )
    .unwrap();
    assert!(matches!(
        r.message,
        BackendMessage::Signal {
            kind: MessageKind::CallRinging,
            ..
        }
    ));
    assert_eq!(r.message_id.as_deref(), Some("m"));
    let r = read(json!({"type": "InitiateInboundCall", "sessionId": null})).unwrap();
    assert_eq!(r.message.kind(), MessageKind::InitiateInboundCall);
    for (body, error) in [
        (json!([1]), InvalidBackendRequest::NotAnObject),
        (json!({}), InvalidBackendRequest::MissingType),
        (
            json!({"type": "CallTeleport"}),
            InvalidBackendRequest::UnknownType("CallTeleport".into()),
        ),
        (
            json!({"type": "InitiateOutboundCall"}),
            InvalidBackendRequest::SentByAlexa,
        ),
        (
            json!({"type": "InitiateInboundCall", "sessionId": "mine"}),
            InvalidBackendRequest::SessionIdGiven,
        ),
        (
            json!({"type": 5}),
            InvalidBackendRequest::BadField("invalid type: integer `5`, expected a string".into()),
        ),
    ] {
        assert_eq!(read(body.clone()).unwrap_err(), error, "{body}");
    }
    assert!(matches!(
        BackendRequest::from_slice(b"{not json"),
        Err(InvalidBackendRequest::NotJson(_))
    ));
}
