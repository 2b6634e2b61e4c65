//! What the SIP media application sends the Lambda. Tolerant by design: every field is optional
//! or defaulted, enums have an `Unknown` fallback, and numbers may arrive as strings. Only two
//! things can fail a parse: an `InvocationEventType` that is not a string, and a missing (or
//! non-object) `CallDetails` — without them there is no call to answer. Every other field reads
//! leniently: a number or boolean where a string is usual becomes its text, `null` or a value
//! of the wrong shape (an object where a list is expected) is treated as absent, and one
//! unreadable participant is skipped rather than failing the event.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// Invocation event types of the PSTN audio service. Unknown values parse into `Unknown`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InvocationEventType {
    NewInboundCall,
    NewOutboundCall,
    Ringing,
    CallAnswered,
    ActionSuccessful,
    ActionFailed,
    ActionInterrupted,
    Hangup,
    CallUpdateRequested,
    InvalidLambdaResponse,
    DigitsReceived,
    Unknown(String),
}

impl InvocationEventType {
    pub fn as_str(&self) -> &str {
        match self {
            Self::NewInboundCall => "NEW_INBOUND_CALL",
            Self::NewOutboundCall => "NEW_OUTBOUND_CALL",
            Self::Ringing => "RINGING",
            Self::CallAnswered => "CALL_ANSWERED",
            Self::ActionSuccessful => "ACTION_SUCCESSFUL",
            Self::ActionFailed => "ACTION_FAILED",
            Self::ActionInterrupted => "ACTION_INTERRUPTED",
            Self::Hangup => "HANGUP",
            Self::CallUpdateRequested => "CALL_UPDATE_REQUESTED",
            Self::InvalidLambdaResponse => "INVALID_LAMBDA_RESPONSE",
            Self::DigitsReceived => "DIGITS_RECEIVED",
            Self::Unknown(other) => other,
        }
    }

    fn parse(value: &str) -> Self {
        match value {
            "NEW_INBOUND_CALL" => Self::NewInboundCall,
            "NEW_OUTBOUND_CALL" => Self::NewOutboundCall,
            "RINGING" => Self::Ringing,
            "CALL_ANSWERED" => Self::CallAnswered,
            "ACTION_SUCCESSFUL" => Self::ActionSuccessful,
            "ACTION_FAILED" => Self::ActionFailed,
            "ACTION_INTERRUPTED" => Self::ActionInterrupted,
            "HANGUP" => Self::Hangup,
            "CALL_UPDATE_REQUESTED" => Self::CallUpdateRequested,
            "INVALID_LAMBDA_RESPONSE" => Self::InvalidLambdaResponse,
            "DIGITS_RECEIVED" => Self::DigitsReceived,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

impl<'de> Deserialize<'de> for InvocationEventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Ok(Self::parse(&raw))
    }
}

impl serde::Serialize for InvocationEventType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for InvocationEventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SMA invocation. `InvocationEventType` and `CallDetails` are the only parts every event
/// has; their absence makes the payload "not an SMA event" (see [`SmaEvent::from_value`]).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct SmaEvent {
    #[serde(default, deserialize_with = "lenient_string")]
    pub schema_version: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub sequence: Option<u64>,
    pub invocation_event_type: InvocationEventType,
    #[serde(default, deserialize_with = "lenient_action_data")]
    pub action_data: Option<ActionData>,
    pub call_details: CallDetails,
    /// `INVALID_LAMBDA_RESPONSE` may carry the error at the top level.
    #[serde(default, deserialize_with = "lenient_string")]
    pub error_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub error_message: Option<String>,
}

/// Why a payload could not be read as an SMA event.
#[derive(Debug, thiserror::Error)]
#[error("not a SIP media application event: {0}")]
pub struct NotAnSmaEvent(#[source] pub serde_json::Error);

impl SmaEvent {
    /// Parses any JSON value; the error names the missing or mistyped field.
    pub fn from_value(value: serde_json::Value) -> Result<Self, NotAnSmaEvent> {
        serde_json::from_value(value).map_err(NotAnSmaEvent)
    }

    /// The first participant with this tag (`LEG-A` and `Leg-A` both match).
    pub fn participant(&self, tag: LegTag) -> Option<&Participant> {
        self.call_details
            .participants
            .iter()
            .find(|p| p.participant_tag.as_deref().and_then(LegTag::parse) == Some(tag))
    }

    pub fn participant_by_call_id(&self, call_id: &str) -> Option<&Participant> {
        self.call_details
            .participants
            .iter()
            .find(|p| p.call_id.as_deref() == Some(call_id))
    }

    /// Error type from `ActionData` or, for `INVALID_LAMBDA_RESPONSE`, from the top level.
    pub fn error_type(&self) -> Option<&str> {
        self.action_data
            .as_ref()
            .and_then(|a| a.error_type.as_deref())
            .or(self.error_type.as_deref())
    }

    pub fn action_type(&self) -> Option<&ActionType> {
        self.action_data
            .as_ref()
            .and_then(|a| a.action_type.as_ref())
    }
}

/// Participant tags. The docs show both `LEG-A` and `Leg-A`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegTag {
    A,
    B,
}

impl LegTag {
    pub fn parse(tag: &str) -> Option<Self> {
        if tag.eq_ignore_ascii_case("LEG-A") {
            Some(Self::A)
        } else if tag.eq_ignore_ascii_case("LEG-B") {
            Some(Self::B)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "LEG-A",
            Self::B => "LEG-B",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct CallDetails {
    #[serde(default, deserialize_with = "lenient_string")]
    pub transaction_id: Option<String>,
    /// `null` and absent both mean "no attributes yet"; non-string values are read as text.
    #[serde(default, deserialize_with = "lenient_string_map")]
    pub transaction_attributes: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub aws_account_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub aws_region: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub sip_rule_id: Option<String>,
    /// One documented example spells it `SipApplicationId`.
    #[serde(
        default,
        alias = "SipApplicationId",
        deserialize_with = "lenient_string"
    )]
    pub sip_media_application_id: Option<String>,
    /// Anything but a list (`null`, an object) means "no participants"; entries that are not
    /// objects are skipped.
    #[serde(default, deserialize_with = "lenient_participants")]
    pub participants: Vec<Participant>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Participant {
    #[serde(default, deserialize_with = "lenient_string")]
    pub call_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub participant_tag: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub to: Option<String>,
    /// `"SMA"` on outbound legs, an E.164 number otherwise.
    #[serde(default, deserialize_with = "lenient_string")]
    pub from: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub direction: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub start_time_in_milliseconds: Option<u64>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient_string_map")]
    pub sip_headers: BTreeMap<String, String>,
}

impl Participant {
    pub fn is_connected(&self) -> bool {
        self.status.as_deref() == Some("Connected")
    }

    pub fn tag(&self) -> Option<LegTag> {
        self.participant_tag.as_deref().and_then(LegTag::parse)
    }
}

/// Action types we act on; anything else keeps its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionType {
    CallAndBridge,
    Hangup,
    Speak,
    PlayAudio,
    Pause,
    SendDigits,
    CallUpdateRequest,
    ReceiveDigits,
    Other(String),
}

impl ActionType {
    fn parse(value: &str) -> Self {
        match value {
            "CallAndBridge" => Self::CallAndBridge,
            "Hangup" => Self::Hangup,
            "Speak" => Self::Speak,
            "PlayAudio" => Self::PlayAudio,
            "Pause" => Self::Pause,
            "SendDigits" => Self::SendDigits,
            "CallUpdateRequest" => Self::CallUpdateRequest,
            "ReceiveDigits" => Self::ReceiveDigits,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::CallAndBridge => "CallAndBridge",
            Self::Hangup => "Hangup",
            Self::Speak => "Speak",
            Self::PlayAudio => "PlayAudio",
            Self::Pause => "Pause",
            Self::SendDigits => "SendDigits",
            Self::CallUpdateRequest => "CallUpdateRequest",
            Self::ReceiveDigits => "ReceiveDigits",
            Self::Other(other) => other,
        }
    }
}

impl<'de> Deserialize<'de> for ActionType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(deserializer)?))
    }
}

impl serde::Serialize for ActionType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The action that completed or failed, or the update request. `Parameters` stays a raw JSON
/// object because its shape depends on the action; typed accessors read what we need.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ActionData {
    #[serde(default, rename = "Type", deserialize_with = "lenient_action_type")]
    pub action_type: Option<ActionType>,
    #[serde(default)]
    pub parameters: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub error_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub error_message: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub received_digits: Option<String>,
}

impl ActionData {
    fn parameter(&self, name: &str) -> Option<&serde_json::Value> {
        self.parameters.as_ref().and_then(|p| p.get(name))
    }

    /// A string parameter; `null`, numbers and other shapes count as absent (a `CallId` or a
    /// tag is never a number).
    pub fn parameter_str(&self, name: &str) -> Option<&str> {
        self.parameter(name).and_then(|v| v.as_str())
    }

    /// `SipResponseCode` is a number in events and a string in actions; accept both.
    pub fn sip_response_code(&self) -> Option<u16> {
        match self.parameter("SipResponseCode")? {
            serde_json::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// Arguments of a `CallUpdateRequest` as strings (numbers and booleans as their text);
    /// `null` and other shapes are ignored.
    pub fn update_arguments(&self) -> BTreeMap<String, String> {
        self.parameter("Arguments")
            .and_then(|a| a.as_object())
            .map(|args| {
                args.iter()
                    .filter_map(|(k, v)| scalar_text(v).map(|s| (k.clone(), s)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Strings as they are; numbers and booleans as their text; `null` and other shapes are absent.
fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(scalar_text(&serde_json::Value::deserialize(deserializer)?))
}

/// An object read as a flat string map (entries that are not scalars are dropped); anything
/// else is an empty map.
fn lenient_string_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Object(map) => map
            .iter()
            .filter_map(|(k, v)| scalar_text(v).map(|text| (k.clone(), text)))
            .collect(),
        _ => BTreeMap::new(),
    })
}

fn lenient_participants<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Participant>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter(serde_json::Value::is_object)
            .filter_map(|item| serde_json::from_value(item).ok())
            .collect(),
        _ => Vec::new(),
    })
}

fn lenient_action_data<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ActionData>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        value @ serde_json::Value::Object(_) => serde_json::from_value(value).ok(),
        _ => None,
    })
}

fn lenient_action_type<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ActionType>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(s) => Some(ActionType::parse(&s)),
        _ => None,
    })
}

/// Numbers that may arrive as JSON numbers or numeric strings; anything else becomes `None`
/// rather than failing the whole event.
fn lenient_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Ok(
        match Option::<serde_json::Value>::deserialize(deserializer)? {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        },
    )
}
