//! The CallSignaling message: tolerant as received ([`InboundSignal`], from Alexa's request or
//! from the property backend), strict once validated ([`SignalingMessage`]).

use super::kind::MessageKind;
use super::parts::{
    CallParticipant, CallResult, CallResultCode, ParticipantId, ParticipantIdType,
    RenegotiationType, SdpDetails, SdpType,
};
use super::{MAX_PARTICIPANT_ID_LEN, MAX_PARTICIPANTS, MAX_SDP_BYTES, MAX_SESSION_ID_LEN};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawSdpDetails {
    #[serde(rename = "type", default)]
    pub sdp_type: Option<SdpType>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawParticipantId {
    #[serde(rename = "type", default)]
    pub id_type: Option<ParticipantIdType>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawParticipant {
    #[serde(default)]
    pub id: Option<RawParticipantId>,
    #[serde(default)]
    pub is_originator: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawCallResult {
    #[serde(default)]
    pub code: Option<CallResultCode>,
    #[serde(default)]
    pub message: Option<String>,
}

/// The fields of a CallSignaling message as received, all optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundSignal {
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub participants: Option<Vec<RawParticipant>>,
    #[serde(default)]
    pub sdp_details: Option<RawSdpDetails>,
    #[serde(default)]
    pub renegotiation_type: Option<RenegotiationType>,
    #[serde(default)]
    pub call_result: Option<RawCallResult>,
    /// Everything else (request header fields are dropped in `validate`).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Keys that belong to an envelope, not to the message itself.
const NON_MESSAGE_KEYS: &[&str] = &[
    "type",
    "requestId",
    "timestamp",
    "locale",
    "messageId",
    "apiEndpoint",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    #[error("sessionId is missing")]
    MissingSessionId,
    #[error("sessionId is invalid: {0}")]
    BadSessionId(&'static str),
    #[error("{kind} needs sdpDetails with an {expected} SDP")]
    MissingSdp {
        kind: MessageKind,
        expected: &'static str,
    },
    #[error("{kind} needs an {expected} SDP, got {got}")]
    WrongSdpType {
        kind: MessageKind,
        expected: &'static str,
        got: String,
    },
    #[error("sdpDetails.type is missing")]
    MissingSdpType,
    #[error("sdpDetails.value is larger than {MAX_SDP_BYTES} bytes ({size} bytes)")]
    SdpTooLarge { size: usize },
    #[error("sdpDetails.value holds control characters other than CR, LF and TAB")]
    SdpNotText,
    #[error("{kind} needs at least one participant")]
    MissingParticipants { kind: MessageKind },
    #[error("more than {MAX_PARTICIPANTS} participants")]
    TooManyParticipants,
    #[error("participants[{index}]: {reason}")]
    BadParticipant { index: usize, reason: &'static str },
}

impl InboundSignal {
    /// Checks the fields `kind` needs and builds the strict message. `participants_required`
    /// is set for messages the property sends (`InitiateInboundCall` must say whom to call);
    /// Alexa's own `InitiateOutboundCall` is taken as it comes.
    pub fn validate(
        self,
        kind: MessageKind,
        participants_required: bool,
    ) -> Result<SignalingMessage, InvalidMessage> {
        let session_id = check_session_id(self.session_id.as_deref())?;

        let required = kind.required_sdp();
        let missing = |expected: &SdpType| InvalidMessage::MissingSdp {
            kind,
            expected: static_sdp_name(expected),
        };
        let sdp = match self.sdp_details {
            None => match &required {
                Some(expected) => return Err(missing(expected)),
                None => None,
            },
            Some(raw) => {
                let value = raw.value.unwrap_or_default();
                if value.trim().is_empty() {
                    // An empty sdpDetails on a message that needs none (CallInProgress) is
                    // taken as no SDP.
                    match &required {
                        Some(expected) => return Err(missing(expected)),
                        None => None,
                    }
                } else {
                    if value.len() > MAX_SDP_BYTES {
                        return Err(InvalidMessage::SdpTooLarge { size: value.len() });
                    }
                    // RFC 4566 §5: SDP is text with CRLF line ends.
                    if value
                        .chars()
                        .any(|c| c.is_control() && !matches!(c, '\r' | '\n' | '\t'))
                    {
                        return Err(InvalidMessage::SdpNotText);
                    }
                    let sdp_type = match (required, raw.sdp_type) {
                        (Some(expected), None) => expected,
                        (Some(expected), Some(got)) if got != expected => {
                            return Err(InvalidMessage::WrongSdpType {
                                kind,
                                expected: static_sdp_name(&expected),
                                got: got.as_str().to_owned(),
                            });
                        }
                        (_, Some(got)) => got,
                        (None, None) => return Err(InvalidMessage::MissingSdpType),
                    };
                    Some(SdpDetails { sdp_type, value })
                }
            }
        };

        let raw_participants = self.participants.unwrap_or_default();
        if raw_participants.len() > MAX_PARTICIPANTS {
            return Err(InvalidMessage::TooManyParticipants);
        }
        let mut participants = Vec::with_capacity(raw_participants.len());
        for (index, p) in raw_participants.into_iter().enumerate() {
            let id = p.id.ok_or(InvalidMessage::BadParticipant {
                index,
                reason: "id is missing",
            })?;
            let id_type = id.id_type.ok_or(InvalidMessage::BadParticipant {
                index,
                reason: "id.type is missing",
            })?;
            let value = id.value.filter(|v| !v.trim().is_empty()).ok_or(
                InvalidMessage::BadParticipant {
                    index,
                    reason: "id.value is missing",
                },
            )?;
            if value.len() > MAX_PARTICIPANT_ID_LEN {
                return Err(InvalidMessage::BadParticipant {
                    index,
                    reason: "id.value is too long",
                });
            }
            if value.chars().any(char::is_control) {
                return Err(InvalidMessage::BadParticipant {
                    index,
                    reason: "id.value contains control characters",
                });
            }
            participants.push(CallParticipant {
                id: ParticipantId { id_type, value },
                is_originator: p.is_originator,
            });
        }
        if participants_required && participants.is_empty() {
            return Err(InvalidMessage::MissingParticipants { kind });
        }

        // A callResult without a code cannot be sent on; keep its absence honest.
        let call_result = self.call_result.and_then(|r| {
            r.code.map(|code| CallResult {
                code,
                message: r.message,
            })
        });

        let mut extra = self.other;
        for key in NON_MESSAGE_KEYS {
            extra.remove(*key);
        }

        Ok(SignalingMessage {
            kind,
            session_id,
            participants,
            sdp,
            renegotiation_type: self.renegotiation_type,
            call_result,
            extra,
        })
    }
}

fn static_sdp_name(t: &SdpType) -> &'static str {
    match t {
        SdpType::Offer => "OFFER",
        SdpType::Answer => "ANSWER",
        SdpType::Other(_) => "other",
    }
}

/// A session id must be a short printable string: it becomes a DynamoDB key and a log field.
pub fn check_session_id(value: Option<&str>) -> Result<String, InvalidMessage> {
    let id = value.map(str::trim).unwrap_or_default();
    if id.is_empty() {
        return Err(InvalidMessage::MissingSessionId);
    }
    if id.len() > MAX_SESSION_ID_LEN {
        return Err(InvalidMessage::BadSessionId("longer than 256 characters"));
    }
    if id.chars().any(|c| c.is_control()) {
        return Err(InvalidMessage::BadSessionId("contains control characters"));
    }
    Ok(id.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Strict message

/// A validated CallSignaling message. Serializes to the flat body Alexa's signaling endpoint
/// takes: `{"type":"Alexa.Comms.CallSignaling.<Name>","sessionId":...,...}`, known fields only
/// (the body for `POST {apiEndpoint}/v1/communications/signaling`); [`Self::forwarded`] is the
/// same body with the unknown fields, as forwarded to the property backend.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalingMessage {
    pub kind: MessageKind,
    pub session_id: String,
    pub participants: Vec<CallParticipant>,
    pub sdp: Option<SdpDetails>,
    pub renegotiation_type: Option<RenegotiationType>,
    pub call_result: Option<CallResult>,
    /// Fields this model does not know. Forwarded to the property backend (so a field Alexa adds
    /// later is not lost), never sent to Alexa.
    pub extra: Map<String, Value>,
}

/// The message as forwarded to the property backend: the flat body of [`SignalingMessage`]
/// plus the fields this model does not know (`{"type","sessionId",...,"newField":...}`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForwardedMessage<'a>(pub &'a SignalingMessage);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FlatMessage<'a> {
    #[serde(rename = "type", serialize_with = "full_type")]
    message_type: MessageKind,
    session_id: &'a str,
    #[serde(skip_serializing_if = "<[CallParticipant]>::is_empty")]
    participants: &'a [CallParticipant],
    #[serde(skip_serializing_if = "Option::is_none")]
    sdp_details: Option<&'a SdpDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    renegotiation_type: Option<&'a RenegotiationType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    call_result: Option<&'a CallResult>,
    #[serde(flatten)]
    extra: Option<&'a Map<String, Value>>,
}

fn full_type<S: Serializer>(kind: &MessageKind, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&kind.full_type())
}

impl SignalingMessage {
    /// A message with only a type and session id (ringing, acks).
    pub fn bare(kind: MessageKind, session_id: impl Into<String>) -> Self {
        Self {
            kind,
            session_id: session_id.into(),
            participants: Vec::new(),
            sdp: None,
            renegotiation_type: None,
            call_result: None,
            extra: Map::new(),
        }
    }

    /// `CallEnded` with a result.
    pub fn call_ended(session_id: impl Into<String>, result: CallResult) -> Self {
        let mut m = Self::bare(MessageKind::CallEnded, session_id);
        m.call_result = Some(result);
        m
    }

    /// The message as forwarded to the property backend, unknown fields included.
    pub fn forwarded(&self) -> ForwardedMessage<'_> {
        ForwardedMessage(self)
    }

    fn flat<'a>(&'a self, extra: Option<&'a Map<String, Value>>) -> FlatMessage<'a> {
        FlatMessage {
            message_type: self.kind,
            session_id: &self.session_id,
            participants: &self.participants,
            sdp_details: self.sdp.as_ref(),
            renegotiation_type: self.renegotiation_type.as_ref(),
            call_result: self.call_result.as_ref(),
            extra,
        }
    }

    /// Length of the SDP for logs (the SDP itself holds addresses and is never logged).
    pub fn sdp_len(&self) -> usize {
        self.sdp.as_ref().map_or(0, |s| s.value.len())
    }
}

impl Serialize for SignalingMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.flat(None).serialize(serializer)
    }
}

impl Serialize for ForwardedMessage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.flat(Some(&self.0.extra)).serialize(serializer)
    }
}
