//! What the SIP media application accepts in a Lambda response, checked on the raw JSON the
//! handler returned (independently of the project's own wire types, so a mistake there shows
//! up here).
//!
//! Limits and parameter rules from the PSTN audio service documentation:
//! at most 10 actions; `TransactionAttributes` a string map (10 keys at most: the documented limit
//! is contradictory, 10 is the safe reading); each action's required parameters and ranges.
//! A response with any violation is one the real service would reject with
//! `INVALID_LAMBDA_RESPONSE`; the emulator flags it as a scenario failure.

use serde_json::{Map, Value};

pub const MAX_ACTIONS: usize = 10;
pub const MAX_ATTRIBUTES: usize = 10;
/// The documented size limit of the transaction attributes.
pub const MAX_ATTRIBUTES_BYTES: usize = 20 * 1024;
pub const MAX_SPEAK_TEXT: usize = 1000;
pub const MAX_SIP_HEADER_VALUE: usize = 2048;

/// One call leg as the checker needs it: references in actions must name a leg of this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegView {
    pub tag: &'static str,
    pub call_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// Stable identifier, e.g. `response.too_many_actions`, `speak.text`.
    pub rule: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.rule, self.detail)
    }
}

/// Action types the service knows. Only some are executed by the emulator (see `sma`); the
/// rest are accepted and complete at once.
pub const KNOWN_ACTIONS: &[&str] = &[
    "CallAndBridge",
    "Hangup",
    "JoinChimeMeeting",
    "ModifyChimeMeetingAttendees",
    "Pause",
    "PauseCallRecording",
    "PlayAudio",
    "PlayAudioAndGetDigits",
    "ReceiveDigits",
    "RecordAudio",
    "ResumeCallRecording",
    "SendDigits",
    "Speak",
    "SpeakAndGetDigits",
    "StartBotConversation",
    "StartCallRecording",
    "StopCallRecording",
    "VoiceFocus",
];

struct Checker<'a> {
    legs: &'a [LegView],
    out: Vec<Violation>,
}

impl Checker<'_> {
    fn flag(&mut self, rule: &'static str, detail: impl Into<String>) {
        self.out.push(Violation {
            rule,
            detail: detail.into(),
        });
    }
}

/// Every rule `response` breaks; empty when the service would accept it.
pub fn check_response(response: &Value, legs: &[LegView]) -> Vec<Violation> {
    let mut c = Checker {
        legs,
        out: Vec::new(),
    };
    let Some(obj) = response.as_object() else {
        c.flag(
            "response.not_object",
            format!("the response is {}", kind(response)),
        );
        return c.out;
    };
    match obj.get("SchemaVersion") {
        Some(Value::String(v)) if v == "1.0" => {}
        Some(other) => c.flag(
            "response.schema_version",
            format!("SchemaVersion is {other}, expected \"1.0\""),
        ),
        None => c.flag("response.schema_version", "SchemaVersion is missing"),
    }
    match obj.get("Actions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(actions)) => {
            if actions.len() > MAX_ACTIONS {
                c.flag(
                    "response.too_many_actions",
                    format!("{} actions, at most {MAX_ACTIONS} allowed", actions.len()),
                );
            }
            for (i, action) in actions.iter().enumerate() {
                check_action(&mut c, i, action);
            }
        }
        Some(other) => c.flag(
            "response.actions_type",
            format!("Actions is {}", kind(other)),
        ),
    }
    match obj.get("TransactionAttributes") {
        None => {}
        Some(Value::Object(map)) => check_attributes(&mut c, map),
        Some(other) => c.flag(
            "response.attributes_type",
            format!("TransactionAttributes is {}", kind(other)),
        ),
    }
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "SchemaVersion" | "Actions" | "TransactionAttributes"
        ) {
            c.flag(
                "response.unknown_field",
                format!("unexpected top-level field {key:?}"),
            );
        }
    }
    c.out
}

fn check_attributes(c: &mut Checker<'_>, map: &Map<String, Value>) {
    if map.len() > MAX_ATTRIBUTES {
        c.flag(
            "response.too_many_attributes",
            format!(
                "{} transaction attributes, at most {MAX_ATTRIBUTES}",
                map.len()
            ),
        );
    }
    let mut bytes = 0;
    for (k, v) in map {
        bytes += k.len();
        match v {
            Value::String(s) => bytes += s.len(),
            other => c.flag(
                "response.attribute_value",
                format!(
                    "attribute {k:?} is {}, only strings are allowed",
                    kind(other)
                ),
            ),
        }
        if k.is_empty() {
            c.flag("response.attribute_key", "an attribute has an empty key");
        }
    }
    if bytes > MAX_ATTRIBUTES_BYTES {
        c.flag(
            "response.attributes_size",
            format!("{bytes} bytes of attributes, at most {MAX_ATTRIBUTES_BYTES}"),
        );
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_action(c: &mut Checker<'_>, index: usize, action: &Value) {
    let Some(obj) = action.as_object() else {
        c.flag(
            "action.not_object",
            format!("action #{index} is {}", kind(action)),
        );
        return;
    };
    let Some(ty) = obj.get("Type").and_then(Value::as_str) else {
        c.flag("action.type", format!("action #{index} has no Type"));
        return;
    };
    if !KNOWN_ACTIONS.contains(&ty) {
        c.flag(
            "action.unknown_type",
            format!("action #{index} has unknown Type {ty:?}"),
        );
        return;
    }
    let empty = Map::new();
    let params = match obj.get("Parameters") {
        Some(Value::Object(p)) => p,
        None => &empty,
        Some(other) => {
            c.flag(
                "action.parameters",
                format!("{ty} Parameters is {}", kind(other)),
            );
            return;
        }
    };
    match ty {
        "CallAndBridge" => check_call_and_bridge(c, params),
        "Hangup" => check_hangup(c, params),
        "Speak" => check_speak(c, params),
        "PlayAudio" => check_play_audio(c, params),
        "Pause" => check_pause(c, params),
        "SendDigits" => check_send_digits(c, params),
        _ => {}
    }
}

/// `+` then 2–15 digits, the first not 0.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// The request-URI user part of an `AWS` bridge endpoint: 1–30 of `a-zA-Z0-9&=+$/%-_!~*().`.
pub fn is_aws_endpoint_uri(s: &str) -> bool {
    (1..=30).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"&=+$/%-_!~*().".contains(&b))
}

/// `arn:aws[-partition]:chime:<region>:<account>:vc/<id>` or `vcg/<id>`.
pub fn is_voice_connector_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "chime"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && (parts[5]
            .strip_prefix("vc/")
            .or_else(|| parts[5].strip_prefix("vcg/")))
        .is_some_and(|id| !id.is_empty())
}

fn check_leg_ref(
    c: &mut Checker<'_>,
    action: &str,
    params: &Map<String, Value>,
    call_id_required: bool,
) {
    let rule = leg_rule(action);
    match params.get("CallId") {
        Some(Value::String(id)) => {
            if !c.legs.iter().any(|l| &l.call_id == id) {
                c.flag(
                    rule,
                    format!("{action} CallId {id:?} is not a leg of this call"),
                );
            }
            return;
        }
        Some(other) => {
            c.flag(rule, format!("{action} CallId is {}", kind(other)));
            return;
        }
        None => {}
    }
    if call_id_required {
        c.flag(rule, format!("{action} needs a CallId"));
        return;
    }
    match params.get("ParticipantTag") {
        Some(Value::String(tag)) if tag == "LEG-A" || tag == "LEG-B" => {
            let known = c.legs.iter().any(|l| l.tag == tag);
            if !known {
                c.flag(
                    rule,
                    format!("{action} ParticipantTag {tag} names no leg of this call"),
                );
            }
        }
        Some(other) => c.flag(
            rule,
            format!("{action} ParticipantTag {other} is not LEG-A or LEG-B"),
        ),
        // Without either the service uses the leg that caused the invocation.
        None => {}
    }
}

fn leg_rule(action: &str) -> &'static str {
    match action {
        "Hangup" => "hangup.leg",
        "Speak" => "speak.call_id",
        "PlayAudio" => "playaudio.leg",
        "Pause" => "pause.leg",
        "SendDigits" => "senddigits.call_id",
        _ => "action.leg",
    }
}

fn int_param(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn check_call_and_bridge(c: &mut Checker<'_>, p: &Map<String, Value>) {
    if let Some(t) = p.get("CallTimeoutSeconds") {
        match int_param(t) {
            Some(s) if (1..=120).contains(&s) => {}
            _ => c.flag(
                "callandbridge.timeout",
                format!("CallTimeoutSeconds {t} is not 1-120"),
            ),
        }
    }
    match p.get("CallerIdNumber").and_then(Value::as_str) {
        Some(n) if is_e164(n) => {}
        Some(n) => c.flag(
            "callandbridge.caller_id",
            format!("CallerIdNumber {n:?} is not E.164"),
        ),
        None => c.flag("callandbridge.caller_id", "CallerIdNumber is required"),
    }
    let endpoints = match p.get("Endpoints") {
        Some(Value::Array(e)) if e.len() == 1 => e,
        Some(Value::Array(e)) => {
            c.flag(
                "callandbridge.endpoints",
                format!("{} endpoints, exactly 1 expected", e.len()),
            );
            return;
        }
        _ => {
            c.flag("callandbridge.endpoints", "Endpoints is required");
            return;
        }
    };
    let ep = &endpoints[0];
    let uri = ep.get("Uri").and_then(Value::as_str);
    match ep.get("BridgeEndpointType").and_then(Value::as_str) {
        Some("PSTN") => {
            if !uri.is_some_and(is_e164) {
                c.flag(
                    "callandbridge.pstn_uri",
                    format!("PSTN Uri {uri:?} is not E.164"),
                );
            }
        }
        Some("AWS") => {
            match ep.get("Arn").and_then(Value::as_str) {
                Some(arn) if is_voice_connector_arn(arn) => {}
                other => c.flag(
                    "callandbridge.aws_arn",
                    format!("AWS endpoint Arn {other:?} is not a Voice Connector (group) ARN"),
                ),
            }
            if !uri.is_some_and(is_aws_endpoint_uri) {
                c.flag(
                    "callandbridge.aws_uri",
                    format!("AWS endpoint Uri {uri:?} is not 1-30 allowed characters"),
                );
            }
        }
        Some("SIPMediaApplication") => {
            if ep.get("Arn").and_then(Value::as_str).is_none() {
                c.flag(
                    "callandbridge.sma_arn",
                    "SIPMediaApplication endpoint needs an Arn",
                );
            }
        }
        other => c.flag(
            "callandbridge.endpoint_type",
            format!("BridgeEndpointType {other:?} is not PSTN, AWS or SIPMediaApplication"),
        ),
    }
    if let Some(headers) = p.get("SipHeaders") {
        match headers.as_object() {
            None => c.flag(
                "callandbridge.sip_headers",
                format!("SipHeaders is {}", kind(headers)),
            ),
            Some(h) => {
                for (name, value) in h {
                    let custom = (name.starts_with("X-") || name.starts_with("x-"))
                        && !name.to_ascii_uppercase().starts_with("X-AMZN");
                    if !(custom || name == "User-to-User" || name == "Diversion") {
                        c.flag(
                            "callandbridge.sip_headers",
                            format!("SIP header {name:?} is not allowed"),
                        );
                    }
                    match value.as_str() {
                        Some(v) if v.len() <= MAX_SIP_HEADER_VALUE => {}
                        Some(v) => c.flag(
                            "callandbridge.sip_headers",
                            format!("SIP header {name} is {} characters long", v.len()),
                        ),
                        None => c.flag(
                            "callandbridge.sip_headers",
                            format!("SIP header {name} is {}", kind(value)),
                        ),
                    }
                }
            }
        }
    }
    if let Some(tone) = p.get("RingbackTone") {
        let ok = tone.get("Type").and_then(Value::as_str) == Some("S3")
            && tone.get("BucketName").and_then(Value::as_str).is_some()
            && tone.get("Key").and_then(Value::as_str).is_some();
        if !ok {
            c.flag(
                "callandbridge.ringback",
                "RingbackTone needs Type S3, BucketName and Key",
            );
        }
    }
}

fn check_hangup(c: &mut Checker<'_>, p: &Map<String, Value>) {
    check_leg_ref(c, "Hangup", p, false);
    if let Some(code) = p.get("SipResponseCode") {
        let text = match code {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => other.to_string(),
        };
        if !matches!(text.as_str(), "0" | "480" | "486") {
            c.flag(
                "hangup.code",
                format!("SipResponseCode {code} is not 0, 480 or 486"),
            );
        }
    }
}

fn check_speak(c: &mut Checker<'_>, p: &Map<String, Value>) {
    check_leg_ref(c, "Speak", p, true);
    match p.get("Text").and_then(Value::as_str) {
        Some(t) if !t.is_empty() && t.chars().count() <= MAX_SPEAK_TEXT => {}
        Some(t) => c.flag(
            "speak.text",
            format!(
                "Text is {} characters, 1-{MAX_SPEAK_TEXT} allowed",
                t.chars().count()
            ),
        ),
        None => c.flag("speak.text", "Text is required"),
    }
    if let Some(e) = p.get("Engine")
        && !matches!(e.as_str(), Some("standard" | "neural"))
    {
        c.flag(
            "speak.engine",
            format!("Engine {e} is not standard or neural"),
        );
    }
    if let Some(t) = p.get("TextType")
        && !matches!(t.as_str(), Some("text" | "ssml"))
    {
        c.flag(
            "speak.text_type",
            format!("TextType {t} is not text or ssml"),
        );
    }
}

fn check_play_audio(c: &mut Checker<'_>, p: &Map<String, Value>) {
    check_leg_ref(c, "PlayAudio", p, false);
    let source = p.get("AudioSource");
    let ok = source.and_then(|s| s.get("Type")).and_then(Value::as_str) == Some("S3")
        && source
            .and_then(|s| s.get("BucketName"))
            .and_then(Value::as_str)
            .is_some()
        && source
            .and_then(|s| s.get("Key"))
            .and_then(Value::as_str)
            .is_some();
    if !ok {
        c.flag(
            "playaudio.source",
            "AudioSource needs Type S3, BucketName and Key",
        );
    }
}

fn check_pause(c: &mut Checker<'_>, p: &Map<String, Value>) {
    check_leg_ref(c, "Pause", p, false);
    match p.get("DurationInMilliseconds").and_then(int_param) {
        Some(ms) if ms >= 1 => {}
        _ => c.flag(
            "pause.duration",
            "DurationInMilliseconds must be a positive number",
        ),
    }
}

fn check_send_digits(c: &mut Checker<'_>, p: &Map<String, Value>) {
    check_leg_ref(c, "SendDigits", p, true);
    match p.get("Digits").and_then(Value::as_str) {
        Some(d)
            if !d.is_empty()
                && d.len() <= 50
                && d.bytes().all(|b| b"0123456789*#ABCD,".contains(&b)) => {}
        other => c.flag(
            "senddigits.digits",
            format!("Digits {other:?} is not 1-50 of 0-9*#ABCD,"),
        ),
    }
    if let Some(t) = p.get("ToneDurationInMilliseconds")
        && !int_param(t).is_some_and(|ms| (50..=24000).contains(&ms))
    {
        c.flag(
            "senddigits.tone_duration",
            format!("ToneDurationInMilliseconds {t} is not 50-24000"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn legs() -> Vec<LegView> {
        vec![
            LegView {
                tag: "LEG-A",
                call_id: "a".into(),
            },
            LegView {
                tag: "LEG-B",
                call_id: "b".into(),
            },
        ]
    }

    fn rules(v: &Value) -> Vec<&'static str> {
        check_response(v, &legs())
            .into_iter()
            .map(|v| v.rule)
            .collect()
    }

    fn bridge(ep: Value) -> Value {
        json!({"Type": "CallAndBridge", "Parameters": {"CallTimeoutSeconds": 30, "CallerIdNumber": "+18005557777", "Endpoints": [ep]}})
    }

    #[test]
    fn a_valid_response_passes() {
        let r = json!({"SchemaVersion": "1.0", "Actions": [
            {"Type": "Speak", "Parameters": {"CallId": "a", "Text": "Please hold", "Engine": "neural", "TextType": "text"}},
            bridge(json!({"BridgeEndpointType": "AWS", "Uri": "2001", "Arn": "arn:aws:chime:us-east-1:123456789012:vc/pbx"})),
            {"Type": "Hangup", "Parameters": {"CallId": "b", "SipResponseCode": "0"}}
        ], "TransactionAttributes": {"state": "transferring"}});
        assert!(
            check_response(&r, &legs()).is_empty(),
            "{:?}",
            check_response(&r, &legs())
        );
    }

    #[test]
    fn eleven_actions_are_rejected() {
        let speak =
            json!({"Type": "Pause", "Parameters": {"CallId": "a", "DurationInMilliseconds": 10}});
        let r = json!({"SchemaVersion": "1.0", "Actions": vec![speak; 11]});
        assert_eq!(rules(&r), ["response.too_many_actions"]);
        let ten = json!({"SchemaVersion": "1.0", "Actions": vec![json!({"Type": "Pause", "Parameters": {"CallId": "a", "DurationInMilliseconds": 10}}); 10]});
        assert!(rules(&ten).is_empty());
    }

    #[test]
    fn attributes_must_be_at_most_ten_strings() {
        let mut map = serde_json::Map::new();
        for i in 0..11 {
            map.insert(format!("k{i}"), json!("v"));
        }
        assert_eq!(
            rules(&json!({"SchemaVersion": "1.0", "TransactionAttributes": map})),
            ["response.too_many_attributes"]
        );
        assert_eq!(
            rules(&json!({"SchemaVersion": "1.0", "TransactionAttributes": {"n": 1}})),
            ["response.attribute_value"]
        );
        assert_eq!(
            rules(&json!({"SchemaVersion": "1.0", "TransactionAttributes": "x"})),
            ["response.attributes_type"]
        );
        // `{}` is valid: it erases the attributes.
        assert!(rules(&json!({"SchemaVersion": "1.0", "TransactionAttributes": {}})).is_empty());
    }

    #[test]
    fn missing_schema_version_and_non_object_are_rejected() {
        assert_eq!(rules(&json!({"Actions": []})), ["response.schema_version"]);
        assert_eq!(rules(&json!([])), ["response.not_object"]);
    }

    #[test]
    fn call_and_bridge_parameter_rules() {
        let aws = |uri: &str, arn: &str| {
            bridge(json!({"BridgeEndpointType": "AWS", "Uri": uri, "Arn": arn}))
        };
        let vc = "arn:aws:chime:us-east-1:123456789012:vc/pbx";
        let check = |a: Value| rules(&json!({"SchemaVersion": "1.0", "Actions": [a]}));
        assert_eq!(check(aws("room 12", vc)), ["callandbridge.aws_uri"]);
        assert_eq!(check(aws(&"1".repeat(31), vc)), ["callandbridge.aws_uri"]);
        assert_eq!(
            check(aws(
                "2001",
                "arn:aws:lambda:us-east-1:123456789012:function:x"
            )),
            ["callandbridge.aws_arn"]
        );
        assert_eq!(
            check(bridge(
                json!({"BridgeEndpointType": "PSTN", "Uri": "8005551111"})
            )),
            ["callandbridge.pstn_uri"]
        );
        let mut no_caller_id = bridge(json!({"BridgeEndpointType": "PSTN", "Uri": "+18005551111"}));
        no_caller_id["Parameters"]
            .as_object_mut()
            .unwrap()
            .remove("CallerIdNumber");
        assert_eq!(check(no_caller_id), ["callandbridge.caller_id"]);
        let mut timeout = bridge(json!({"BridgeEndpointType": "PSTN", "Uri": "+18005551111"}));
        timeout["Parameters"]["CallTimeoutSeconds"] = json!(121);
        assert_eq!(check(timeout), ["callandbridge.timeout"]);
        let mut headers = aws("2001", vc);
        headers["Parameters"]["SipHeaders"] =
            json!({"X-Amzn-Foo": "x", "Contact": "y", "X-Ok": "z"});
        assert_eq!(
            check(headers),
            ["callandbridge.sip_headers", "callandbridge.sip_headers"]
        );
    }

    #[test]
    fn leg_references_must_name_a_leg_of_the_call() {
        let check = |a: Value| rules(&json!({"SchemaVersion": "1.0", "Actions": [a]}));
        assert_eq!(
            check(json!({"Type": "Hangup", "Parameters": {"CallId": "zzz"}})),
            ["hangup.leg"]
        );
        assert_eq!(
            check(json!({"Type": "Hangup", "Parameters": {"ParticipantTag": "Leg-B"}})),
            ["hangup.leg"]
        );
        assert_eq!(
            check(
                json!({"Type": "Hangup", "Parameters": {"CallId": "a", "SipResponseCode": "503"}})
            ),
            ["hangup.code"]
        );
        assert_eq!(
            check(
                json!({"Type": "Speak", "Parameters": {"ParticipantTag": "LEG-A", "Text": "hi"}})
            ),
            ["speak.call_id"]
        );
        let only_a = [LegView {
            tag: "LEG-A",
            call_id: "a".into(),
        }];
        let r = json!({"SchemaVersion": "1.0", "Actions": [{"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-B"}}]});
        assert_eq!(check_response(&r, &only_a).len(), 1);
    }

    #[test]
    fn speak_text_limits() {
        let check = |t: &str| {
            rules(
                &json!({"SchemaVersion": "1.0", "Actions": [{"Type": "Speak", "Parameters": {"CallId": "a", "Text": t}}]}),
            )
        };
        assert!(check(&"x".repeat(1000)).is_empty());
        assert_eq!(check(&"x".repeat(1001)), ["speak.text"]);
        assert_eq!(check(""), ["speak.text"]);
    }

    #[test]
    fn unknown_action_types_are_rejected() {
        assert_eq!(
            rules(&json!({"SchemaVersion": "1.0", "Actions": [{"Type": "Teleport"}]})),
            ["action.unknown_type"]
        );
    }

    #[test]
    fn number_shapes() {
        assert!(is_e164("+18005551111"));
        assert!(!is_e164("+08005551111"));
        assert!(!is_e164("18005551111"));
        assert!(is_voice_connector_arn(
            "arn:aws:chime:us-east-1:123456789012:vcg/abc"
        ));
        assert!(!is_voice_connector_arn(
            "arn:aws:chime:us-east-1:1234:vc/abc"
        ));
    }
}
