use serde_json::json;

use super::*;
use crate::ActionError;

fn vc_arn() -> VoiceConnectorArn {
    VoiceConnectorArn::parse("arn:aws:chime:us-east-1:123456789012:vc/abcdefghijklmnop").unwrap()
}

#[test]
fn e164_accepts_plus_and_digits_only() {
    assert!(E164::parse("+18005551234").is_ok());
    for bad in [
        "18005551234",
        "+",
        "+0123",
        "+1800555123456789",
        "+1-800-555",
        "anonymous",
        "",
    ] {
        assert!(
            matches!(E164::parse(bad), Err(ActionError::NotE164(_))),
            "{bad}"
        );
    }
}

#[test]
fn endpoint_uri_enforces_length_and_alphabet() {
    assert!(AwsEndpointUri::parse("2001").is_ok());
    assert!(AwsEndpointUri::parse("+18005550100").is_ok());
    assert!(AwsEndpointUri::parse(&"9".repeat(30)).is_ok());
    assert!(AwsEndpointUri::parse(&"9".repeat(31)).is_err());
    assert!(AwsEndpointUri::parse("").is_err());
    assert!(AwsEndpointUri::parse("room 12").is_err());
    assert!(AwsEndpointUri::parse("a@b").is_err());
    assert!(AwsEndpointUri::parse("a;b").is_err());
}

#[test]
fn voice_connector_arn_must_be_a_chime_vc_or_group() {
    assert!(VoiceConnectorArn::parse("arn:aws:chime:us-east-1:123456789012:vcg/abc").is_ok());
    assert!(VoiceConnectorArn::parse("arn:aws:lambda:us-east-1:123456789012:function:x").is_err());
    assert!(VoiceConnectorArn::parse("vc/abc").is_err());
}

#[test]
fn call_timeout_is_1_to_120_seconds() {
    assert!(CallTimeout::seconds(0).is_err());
    assert_eq!(CallTimeout::seconds(1).unwrap().get(), 1);
    assert_eq!(CallTimeout::seconds(120).unwrap().get(), 120);
    assert!(CallTimeout::seconds(121).is_err());
    assert!(CallTimeout::seconds(100_000).is_err());
}

#[test]
fn sip_headers_allow_only_custom_x_headers_and_never_x_amzn() {
    assert!(
        SipHeaders::new()
            .with("X-Original-Calling-Number", "+1")
            .is_ok()
    );
    assert!(SipHeaders::new().with("x-room", "12").is_ok());
    assert!(SipHeaders::new().with("User-to-User", "abc").is_ok());
    assert!(SipHeaders::new().with("Diversion", "<sip:1@x>").is_ok());
    for bad in ["X-AMZN-Foo", "x-amzn-id", "From", "Contact", "X-"] {
        assert!(
            matches!(
                SipHeaders::new().with(bad, "v"),
                Err(ActionError::SipHeaderNotAllowed(_))
            ),
            "{bad}"
        );
    }
    let long = "a".repeat(2049);
    assert!(matches!(
        SipHeaders::new().with("X-Long", &long),
        Err(ActionError::SipHeaderTooLong(_))
    ));
}

#[test]
fn speak_text_is_1_to_1000_characters() {
    assert!(SpeakText::parse("Hello").is_ok());
    assert!(SpeakText::parse(&"é".repeat(1000)).is_ok());
    assert!(SpeakText::parse(&"a".repeat(1001)).is_err());
    assert!(SpeakText::parse("   ").is_err());
}

#[test]
fn send_digits_validates_alphabet_and_tone() {
    assert!(action::SendDigits::new("c1", "12#*,A", 100).is_ok());
    assert!(action::SendDigits::new("c1", "12x", 100).is_err());
    assert!(action::SendDigits::new("c1", "1", 10).is_err());
    assert!(action::SendDigits::new("c1", &"1".repeat(51), 100).is_err());
}

#[test]
fn call_and_bridge_to_voice_connector_serializes_as_documented() {
    let headers = SipHeaders::new()
        .with("X-Original-Calling-Number", "+15551230000")
        .unwrap();
    let action = Action::CallAndBridge(CallAndBridge::voice_connector(
        E164::parse("+18005557777").unwrap(),
        AwsEndpointUri::parse("2001").unwrap(),
        vc_arn(),
        CallTimeout::seconds(25).unwrap(),
        headers,
    ));
    assert_eq!(
        serde_json::to_value(&action).unwrap(),
        json!({"Type": "CallAndBridge", "Parameters": {
            "CallTimeoutSeconds": 25,
            "CallerIdNumber": "+18005557777",
            "Endpoints": [{"BridgeEndpointType": "AWS", "Uri": "2001",
                           "Arn": "arn:aws:chime:us-east-1:123456789012:vc/abcdefghijklmnop"}],
            "SipHeaders": {"X-Original-Calling-Number": "+15551230000"}
        }})
    );
}

#[test]
fn call_and_bridge_to_pstn_has_no_sip_headers_key() {
    let action = Action::CallAndBridge(CallAndBridge::pstn(
        E164::parse("+18005557777").unwrap(),
        E164::parse("+18005551111").unwrap(),
        CallTimeout::default(),
    ));
    assert_eq!(
        serde_json::to_value(&action).unwrap(),
        json!({"Type": "CallAndBridge", "Parameters": {
            "CallTimeoutSeconds": 30, "CallerIdNumber": "+18005557777",
            "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+18005551111"}]
        }})
    );
}

#[test]
fn hangup_sends_code_as_string_and_leg_by_id_or_tag() {
    let by_id = Action::hangup(LegRef::CallId("abc".into()), HangupCode::BusyHere);
    assert_eq!(
        serde_json::to_value(&by_id).unwrap(),
        json!({"Type": "Hangup", "Parameters": {"CallId": "abc", "SipResponseCode": "486"}})
    );
    let by_tag = Action::hangup(LegRef::Tag("LEG-B"), HangupCode::Normal);
    assert_eq!(
        serde_json::to_value(&by_tag).unwrap(),
        json!({"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-B", "SipResponseCode": "0"}})
    );
}

#[test]
fn speak_carries_call_id_and_voice() {
    let speak = Action::Speak(Speak::new(
        "leg-a",
        SpeakText::parse("Hi").unwrap(),
        &Voice::default(),
    ));
    assert_eq!(
        serde_json::to_value(&speak).unwrap(),
        json!({"Type": "Speak", "Parameters": {"Text": "Hi", "CallId": "leg-a", "Engine": "neural",
               "LanguageCode": "en-US", "TextType": "text", "VoiceId": "Joanna"}})
    );
}

#[test]
fn response_rejects_more_than_ten_actions() {
    let pause = || {
        Action::Pause(action::Pause {
            leg: LegRef::Tag("LEG-A"),
            duration_in_milliseconds: 100,
        })
    };
    assert!(Actions::new((0..10).map(|_| pause()).collect()).is_ok());
    assert_eq!(
        Actions::new((0..11).map(|_| pause()).collect()),
        Err(ActionError::TooManyActions(11))
    );
}

#[test]
fn transaction_attributes_are_never_empty_and_at_most_ten_keys() {
    use std::collections::BTreeMap;
    assert_eq!(
        TransactionAttributes::new(BTreeMap::new()),
        Err(ActionError::EmptyAttributes)
    );
    let map = |n: usize| {
        (0..n)
            .map(|i| (format!("k{i}"), "v".to_owned()))
            .collect::<BTreeMap<_, _>>()
    };
    assert!(TransactionAttributes::new(map(10)).is_ok());
    assert_eq!(
        TransactionAttributes::new(map(11)),
        Err(ActionError::TooManyAttributes(11))
    );
}

#[test]
fn response_without_state_change_omits_transaction_attributes() {
    let response = SmaResponse::new(Actions::none(), None);
    let value = serde_json::to_value(&response).unwrap();
    assert_eq!(value, json!({"SchemaVersion": "1.0", "Actions": []}));
    assert!(value.get("TransactionAttributes").is_none());
}

#[test]
fn event_parses_unknown_type_and_lenient_fields() {
    let event = SmaEvent::from_value(json!({
        "SchemaVersion": "1.0", "Sequence": "7", "InvocationEventType": "SOMETHING_NEW",
        "CallDetails": {"TransactionId": "t", "SipApplicationId": "sma-1", "TransactionAttributes": null,
            "Participants": [{"CallId": "b", "ParticipantTag": "LEG-B", "From": "SMA",
                              "StartTimeInMilliseconds": "1641998241509", "Status": "Connected"},
                             {"CallId": "a", "ParticipantTag": "Leg-A", "From": "+15550001111"}]},
        "Extra": {"anything": true}
    }))
    .unwrap();
    assert_eq!(
        event.invocation_event_type,
        InvocationEventType::Unknown("SOMETHING_NEW".into())
    );
    assert_eq!(event.sequence, Some(7));
    assert_eq!(
        event.call_details.sip_media_application_id.as_deref(),
        Some("sma-1")
    );
    assert_eq!(
        event.participant(LegTag::A).unwrap().call_id.as_deref(),
        Some("a")
    );
    assert_eq!(
        event
            .participant(LegTag::B)
            .unwrap()
            .start_time_in_milliseconds,
        Some(1_641_998_241_509)
    );
}

#[test]
fn payload_that_is_not_an_sma_event_names_the_missing_field() {
    let err = SmaEvent::from_value(json!({"Name": "ContactFlowEvent", "Details": {}})).unwrap_err();
    assert!(err.to_string().contains("InvocationEventType"), "{err}");
    let err = SmaEvent::from_value(json!({"InvocationEventType": "HANGUP"})).unwrap_err();
    assert!(err.to_string().contains("CallDetails"), "{err}");
    assert!(SmaEvent::from_value(json!([1, 2])).is_err());
}

#[test]
fn action_data_reads_sip_response_code_as_number_or_string_and_nested_errors() {
    let event = SmaEvent::from_value(json!({
        "InvocationEventType": "HANGUP", "CallDetails": {},
        "ActionData": {"Type": "Hangup", "Parameters": {"SipResponseCode": "486"}}
    }))
    .unwrap();
    assert_eq!(event.action_data.unwrap().sip_response_code(), Some(486));
    let event = SmaEvent::from_value(json!({
        "InvocationEventType": "INVALID_LAMBDA_RESPONSE", "CallDetails": {},
        "ErrorType": "InvalidActionParameter", "ErrorMessage": "bad"
    }))
    .unwrap();
    assert_eq!(event.error_type(), Some("InvalidActionParameter"));
}

// --- tolerant parsing ------------------------------------------------------------------------

#[test]
fn fields_of_other_types_than_usual_never_fail_the_parse() {
    let event = SmaEvent::from_value(json!({
        "SchemaVersion": 1.0,
        "Sequence": "3",
        "InvocationEventType": "HANGUP",
        "ActionData": {"Type": 7, "Parameters": null, "ErrorType": null, "ErrorMessage": 42,
                       "ReceivedDigits": 12},
        "ErrorType": {"unexpected": "object"},
        "CallDetails": {
            "TransactionId": "txn-1",
            "TransactionAttributes": {"state": "in_connect", "pair_held": true, "count": 3,
                                      "nested": {"a": 1}, "gone": null},
            "AwsAccountId": 123456789012_u64,
            "AwsRegion": null,
            "SipRuleId": ["a"],
            "SipMediaApplicationId": 5,
            "Participants": [
                {"CallId": "call-a", "ParticipantTag": "LEG-A", "From": 15550001111_u64,
                 "To": "+18005550000", "Status": "Connected", "SipHeaders": null,
                 "StartTimeInMilliseconds": "1641998241509", "Direction": 1},
                "not an object",
                {"CallId": "call-b", "ParticipantTag": "LEG-B", "SipHeaders": ["x"]}
            ]
        }
    }))
    .unwrap();
    assert_eq!(event.schema_version.as_deref(), Some("1.0"));
    assert_eq!(event.sequence, Some(3));
    assert_eq!(
        event.call_details.aws_account_id.as_deref(),
        Some("123456789012")
    );
    assert_eq!(
        event
            .call_details
            .transaction_attributes
            .get("pair_held")
            .map(String::as_str),
        Some("true")
    );
    assert!(
        !event
            .call_details
            .transaction_attributes
            .contains_key("nested")
    );
    assert_eq!(event.call_details.participants.len(), 2);
    let leg_a = event.participant(LegTag::A).unwrap();
    assert_eq!(leg_a.from.as_deref(), Some("15550001111"));
    assert_eq!(leg_a.start_time_in_milliseconds, Some(1_641_998_241_509));
    assert!(event.action_type().is_none());
    assert_eq!(event.error_type(), None);
}

#[test]
fn an_object_where_a_list_is_expected_and_null_objects_are_absent() {
    let event = SmaEvent::from_value(json!({
        "InvocationEventType": "RINGING",
        "ActionData": "not an object",
        "CallDetails": {"TransactionId": "t", "TransactionAttributes": "x",
                        "Participants": {"CallId": "call-a", "ParticipantTag": "LEG-A"}}
    }))
    .unwrap();
    assert!(event.call_details.participants.is_empty());
    assert!(event.action_data.is_none());
    assert!(event.call_details.transaction_attributes.is_empty());
}

#[test]
fn update_arguments_accept_numbers_and_booleans_as_text() {
    let data: ActionData = serde_json::from_value(json!({
        "Type": "CallUpdateRequest",
        "Parameters": {"Arguments": {"Transfer": true, "TransferTarget": 2001, "Note": null}}
    }))
    .unwrap();
    let args = data.update_arguments();
    assert_eq!(args.get("Transfer").map(String::as_str), Some("true"));
    assert_eq!(args.get("TransferTarget").map(String::as_str), Some("2001"));
    assert!(!args.contains_key("Note"));
}

#[test]
fn an_event_with_no_call_is_not_an_sma_event() {
    for bad in [
        json!({"InvocationEventType": "HANGUP"}),
        json!({"InvocationEventType": "HANGUP", "CallDetails": null}),
        json!({"CallDetails": {}}),
        json!("text"),
    ] {
        assert!(SmaEvent::from_value(bad.clone()).is_err(), "{bad}");
    }
}

// --- no control characters in headers or announcements --------------------------------------

#[test]
fn sip_header_values_and_speak_text_refuse_control_characters() {
    for bad in [
        "+15550001111\r\nX-Evil: 1",
        "a\nb",
        "a\rb",
        "tab\there",
        "nul\u{0}",
    ] {
        assert!(
            matches!(
                SipHeaders::new().with("X-Original-Calling-Number", bad),
                Err(ActionError::ControlCharacter(_))
            ),
            "{bad:?}"
        );
        assert!(
            matches!(SpeakText::parse(bad), Err(ActionError::ControlCharacter(_))),
            "{bad:?}"
        );
    }
    assert!(SipHeaders::new().with("X-Bad\r\nName", "1").is_err());
    assert!(SpeakText::parse("Please hold, we connect you.").is_ok());
}
