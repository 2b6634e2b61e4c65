//! What we send the SIP media application. Strict: every value that has a documented limit is
//! a validated type, so an action that the service would reject cannot be built.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ActionError;

/// Whether `value` holds a control character (CR, LF, TAB, NUL, DEL, C1 …): never allowed in a
/// SIP header or an announcement.
pub fn has_control(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// An E.164 number: `+` then 2–15 digits, the first not zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct E164(String);

impl E164 {
    pub fn parse(value: &str) -> Result<Self, ActionError> {
        let digits = value.strip_prefix('+').unwrap_or("");
        let valid = (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(ActionError::NotE164(value.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Request-URI user part for a `BridgeEndpointType: AWS` endpoint: 1–30 characters of
/// `a-zA-Z0-9&=+$/%-_!~*().`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AwsEndpointUri(String);

impl AwsEndpointUri {
    pub const MAX_LEN: usize = 30;

    pub fn parse(value: &str) -> Result<Self, ActionError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "&=+$/%-_!~*().".contains(c);
        if value.is_empty() || value.chars().count() > Self::MAX_LEN || !value.chars().all(allowed)
        {
            return Err(ActionError::InvalidEndpointUri(value.to_owned()));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// ARN of a Voice Connector or Voice Connector group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct VoiceConnectorArn(String);

impl VoiceConnectorArn {
    pub fn parse(value: &str) -> Result<Self, ActionError> {
        let parts: Vec<&str> = value.splitn(6, ':').collect();
        let valid = parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == "chime"
            && (parts[5].starts_with("vc/") || parts[5].starts_with("vcg/"))
            && parts[5].len() > 4;
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(ActionError::InvalidVoiceConnectorArn(value.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `CallTimeoutSeconds`: 1–120.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CallTimeout(u8);

impl CallTimeout {
    pub fn seconds(value: u32) -> Result<Self, ActionError> {
        match u8::try_from(value) {
            Ok(v @ 1..=120) => Ok(Self(v)),
            _ => Err(ActionError::CallTimeoutOutOfRange(value)),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for CallTimeout {
    fn default() -> Self {
        Self(30)
    }
}

/// Custom SIP headers for `CallAndBridge`: only `X-` headers (never the reserved `X-AMZN`
/// prefix), `User-to-User` and `Diversion`; values up to 2,048 characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SipHeaders(BTreeMap<String, String>);

impl SipHeaders {
    pub const MAX_VALUE_LEN: usize = 2048;

    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, name: &str, value: &str) -> Result<Self, ActionError> {
        let lower = name.to_ascii_lowercase();
        let custom = lower.starts_with("x-") && name.len() > 2 && !lower.starts_with("x-amzn");
        let standard = lower == "user-to-user" || lower == "diversion";
        let token = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!%*+`'~".contains(&b));
        if !(custom || standard) || !token {
            return Err(ActionError::SipHeaderNotAllowed(name.to_owned()));
        }
        if value.chars().count() > Self::MAX_VALUE_LEN {
            return Err(ActionError::SipHeaderTooLong(name.to_owned()));
        }
        // CR/LF would end the header and start another one of the caller's choosing.
        if has_control(value) {
            return Err(ActionError::ControlCharacter(name.to_owned()));
        }
        self.0.insert(name.to_owned(), value.to_owned());
        Ok(self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "BridgeEndpointType")]
pub enum BridgeEndpoint {
    #[serde(rename = "PSTN")]
    Pstn {
        #[serde(rename = "Uri")]
        uri: E164,
    },
    #[serde(rename = "AWS")]
    Aws {
        #[serde(rename = "Uri")]
        uri: AwsEndpointUri,
        #[serde(rename = "Arn")]
        arn: VoiceConnectorArn,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallAndBridge {
    call_timeout_seconds: CallTimeout,
    caller_id_number: E164,
    endpoints: [BridgeEndpoint; 1],
    #[serde(skip_serializing_if = "SipHeaders::is_empty")]
    sip_headers: SipHeaders,
}

impl CallAndBridge {
    /// Bridge to a PSTN number (e.g. an Amazon Connect number).
    pub fn pstn(caller_id: E164, number: E164, timeout: CallTimeout) -> Self {
        Self {
            call_timeout_seconds: timeout,
            caller_id_number: caller_id,
            endpoints: [BridgeEndpoint::Pstn { uri: number }],
            sip_headers: SipHeaders::new(),
        }
    }

    /// Bridge over a Voice Connector to a SIP target.
    pub fn voice_connector(
        caller_id: E164,
        uri: AwsEndpointUri,
        arn: VoiceConnectorArn,
        timeout: CallTimeout,
        headers: SipHeaders,
    ) -> Self {
        Self {
            call_timeout_seconds: timeout,
            caller_id_number: caller_id,
            endpoints: [BridgeEndpoint::Aws { uri, arn }],
            sip_headers: headers,
        }
    }

    pub fn endpoint(&self) -> &BridgeEndpoint {
        &self.endpoints[0]
    }

    pub fn caller_id(&self) -> &E164 {
        &self.caller_id_number
    }

    pub fn sip_headers(&self) -> &SipHeaders {
        &self.sip_headers
    }

    pub fn timeout(&self) -> CallTimeout {
        self.call_timeout_seconds
    }
}

/// Which leg an action addresses: a known `CallId`, or the tag when the id is unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum LegRef {
    #[serde(rename = "CallId")]
    CallId(String),
    #[serde(rename = "ParticipantTag")]
    Tag(&'static str),
}

/// SIP response code of a `Hangup`, sent as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupCode {
    Normal,
    NotFound,
    TemporarilyUnavailable,
    BusyHere,
}

impl HangupCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "0",
            Self::NotFound => "404",
            Self::TemporarilyUnavailable => "480",
            Self::BusyHere => "486",
        }
    }
}

impl Serialize for HangupCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Hangup {
    #[serde(flatten)]
    pub leg: LegRef,
    pub sip_response_code: HangupCode,
}

/// `Speak` text: 1–1,000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SpeakText(String);

impl SpeakText {
    pub const MAX_LEN: usize = 1000;

    pub fn parse(value: &str) -> Result<Self, ActionError> {
        let len = value.chars().count();
        if value.trim().is_empty() || len > Self::MAX_LEN {
            return Err(ActionError::SpeakTextLength(len));
        }
        if has_control(value) {
            return Err(ActionError::ControlCharacter("Speak text".to_owned()));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Built-in text, for when a configured message is unusable.
    pub fn goodbye() -> Self {
        Self("Goodbye.".to_owned())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpeechEngine {
    Standard,
    Neural,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TextType {
    Text,
    Ssml,
}

/// How announcements are spoken; configured once per deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    pub engine: SpeechEngine,
    pub language_code: String,
    pub voice_id: String,
}

impl Default for Voice {
    fn default() -> Self {
        Self {
            engine: SpeechEngine::Neural,
            language_code: "en-US".to_owned(),
            voice_id: "Joanna".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Speak {
    text: SpeakText,
    /// `Speak` requires a `CallId`; there is no tag form.
    call_id: String,
    engine: SpeechEngine,
    language_code: String,
    text_type: TextType,
    voice_id: String,
}

impl Speak {
    pub fn new(call_id: &str, text: SpeakText, voice: &Voice) -> Self {
        Self {
            text,
            call_id: call_id.to_owned(),
            engine: voice.engine,
            language_code: voice.language_code.clone(),
            text_type: TextType::Text,
            voice_id: voice.voice_id.clone(),
        }
    }

    pub fn text(&self) -> &str {
        self.text.as_str()
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct S3AudioSource {
    #[serde(rename = "Type")]
    source_type: &'static str,
    #[serde(rename = "BucketName")]
    pub bucket_name: String,
    #[serde(rename = "Key")]
    pub key: String,
}

impl S3AudioSource {
    pub fn new(bucket_name: &str, key: &str) -> Self {
        Self {
            source_type: "S3",
            bucket_name: bucket_name.to_owned(),
            key: key.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlayAudio {
    #[serde(flatten)]
    pub leg: LegRef,
    pub audio_source: S3AudioSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Pause {
    #[serde(flatten)]
    pub leg: LegRef,
    pub duration_in_milliseconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendDigits {
    call_id: String,
    digits: String,
    tone_duration_in_milliseconds: u32,
}

impl SendDigits {
    pub fn new(call_id: &str, digits: &str, tone_ms: u32) -> Result<Self, ActionError> {
        let valid_digits = !digits.is_empty()
            && digits.chars().count() <= 50
            && digits.chars().all(|c| "0123456789*#ABCD,".contains(c));
        if !valid_digits {
            return Err(ActionError::InvalidDigits(digits.to_owned()));
        }
        if !(50..=24_000).contains(&tone_ms) {
            return Err(ActionError::ToneDurationOutOfRange(tone_ms));
        }
        Ok(Self {
            call_id: call_id.to_owned(),
            digits: digits.to_owned(),
            tone_duration_in_milliseconds: tone_ms,
        })
    }
}

/// One action of a response: `{"Type": ..., "Parameters": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "Type", content = "Parameters")]
pub enum Action {
    CallAndBridge(CallAndBridge),
    Hangup(Hangup),
    Speak(Speak),
    PlayAudio(PlayAudio),
    Pause(Pause),
    SendDigits(SendDigits),
}

impl Action {
    pub fn hangup(leg: LegRef, code: HangupCode) -> Self {
        Self::Hangup(Hangup {
            leg,
            sip_response_code: code,
        })
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Self::CallAndBridge(_) => "CallAndBridge",
            Self::Hangup(_) => "Hangup",
            Self::Speak(_) => "Speak",
            Self::PlayAudio(_) => "PlayAudio",
            Self::Pause(_) => "Pause",
            Self::SendDigits(_) => "SendDigits",
        }
    }
}
