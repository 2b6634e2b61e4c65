//! Wire models of `Alexa.Comms.CallSignaling` (CONTRACTS.md §3) and of account linking.
//!
//! Incoming shapes are tolerant (everything optional, unknown fields kept in `other`, open enums
//! with an `Other(String)` fallback); [`InboundSignal::validate`] turns one into a strict
//! [`SignalingMessage`] or a clear [`InvalidMessage`]. Outgoing shapes are strict.
//!
//! The exact envelope is an assumption built from the Alexa docs and Amazon's public WebRTC
//! skill sample; re-check it against a real request log.

use super::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::fmt;

pub const SIGNALING_PREFIX: &str = "Alexa.Comms.CallSignaling.";
pub const AUTHORIZATION_GRANT_REQUEST: &str = "Alexa.Authorization.Grant";
pub const AUTHORIZATION_NAMESPACE: &str = "Alexa.Authorization";
/// One complete SDP per message (ICE is not trickled); real ones are a few KB.
pub const MAX_SDP_BYTES: usize = 64 * 1024;
pub const MAX_SESSION_ID_LEN: usize = 256;
pub const MAX_PARTICIPANTS: usize = 16;

// ---------------------------------------------------------------------------------------------
// Message kinds

/// Every CallSignaling message name, in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Alexa → skill: an Alexa device calls out (SDP offer).
    InitiateOutboundCall,
    /// Cloud → Alexa: a property device calls an Alexa device (SDP offer).
    InitiateInboundCall,
    CallRinging,
    CallInProgress,
    /// The callee answered (SDP answer).
    CallAccepted,
    /// Re-negotiation offer (hold, resume, update).
    CallUpdate,
    /// Re-negotiation answer.
    CallUpdateResponse,
    CallEnded,
    CallRingingAck,
    CallInProgressAck,
    CallAcceptedAck,
    CallUpdateAck,
}

impl MessageKind {
    pub const ALL: [MessageKind; 12] = [
        MessageKind::InitiateOutboundCall,
        MessageKind::InitiateInboundCall,
        MessageKind::CallRinging,
        MessageKind::CallInProgress,
        MessageKind::CallAccepted,
        MessageKind::CallUpdate,
        MessageKind::CallUpdateResponse,
        MessageKind::CallEnded,
        MessageKind::CallRingingAck,
        MessageKind::CallInProgressAck,
        MessageKind::CallAcceptedAck,
        MessageKind::CallUpdateAck,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MessageKind::InitiateOutboundCall => "InitiateOutboundCall",
            MessageKind::InitiateInboundCall => "InitiateInboundCall",
            MessageKind::CallRinging => "CallRinging",
            MessageKind::CallInProgress => "CallInProgress",
            MessageKind::CallAccepted => "CallAccepted",
            MessageKind::CallUpdate => "CallUpdate",
            MessageKind::CallUpdateResponse => "CallUpdateResponse",
            MessageKind::CallEnded => "CallEnded",
            MessageKind::CallRingingAck => "CallRingingAck",
            MessageKind::CallInProgressAck => "CallInProgressAck",
            MessageKind::CallAcceptedAck => "CallAcceptedAck",
            MessageKind::CallUpdateAck => "CallUpdateAck",
        }
    }

    /// `Alexa.Comms.CallSignaling.<Name>`.
    pub fn full_type(self) -> String {
        format!("{SIGNALING_PREFIX}{}", self.name())
    }

    /// Accepts the full type or the bare name.
    pub fn parse(value: &str) -> Option<Self> {
        let name = value.strip_prefix(SIGNALING_PREFIX).unwrap_or(value);
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn is_ack(self) -> bool {
        matches!(
            self,
            MessageKind::CallRingingAck
                | MessageKind::CallInProgressAck
                | MessageKind::CallAcceptedAck
                | MessageKind::CallUpdateAck
        )
    }

    /// The SDP this message must carry, if any.
    pub fn required_sdp(self) -> Option<SdpType> {
        match self {
            MessageKind::InitiateOutboundCall
            | MessageKind::InitiateInboundCall
            | MessageKind::CallUpdate => Some(SdpType::Offer),
            MessageKind::CallAccepted | MessageKind::CallUpdateResponse => Some(SdpType::Answer),
            _ => None,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------------
// Open enums

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SdpType {
    #[serde(rename = "OFFER")]
    Offer,
    #[serde(rename = "ANSWER")]
    Answer,
    #[serde(untagged)]
    Other(String),
}

impl SdpType {
    pub fn as_str(&self) -> &str {
        match self {
            SdpType::Offer => "OFFER",
            SdpType::Answer => "ANSWER",
            SdpType::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RenegotiationType {
    #[serde(rename = "CALL_HOLD")]
    CallHold,
    #[serde(rename = "CALL_RESUME")]
    CallResume,
    #[serde(rename = "CALL_UPDATE")]
    CallUpdate,
    #[serde(untagged)]
    Other(String),
}

impl RenegotiationType {
    pub fn as_str(&self) -> &str {
        match self {
            RenegotiationType::CallHold => "CALL_HOLD",
            RenegotiationType::CallResume => "CALL_RESUME",
            RenegotiationType::CallUpdate => "CALL_UPDATE",
            RenegotiationType::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallResultCode {
    #[serde(rename = "SUCCESS")]
    Success,
    #[serde(rename = "INTERNAL_ERROR")]
    InternalError,
    /// Also seen spelled `UNAUTHORISED`; always sent as `UNAUTHORIZED`.
    #[serde(rename = "UNAUTHORIZED", alias = "UNAUTHORISED")]
    Unauthorized,
    #[serde(rename = "DEVICE_BUSY")]
    DeviceBusy,
    #[serde(rename = "SESSION_TIMEOUT")]
    SessionTimeout,
    #[serde(untagged)]
    Other(String),
}

impl CallResultCode {
    pub fn as_str(&self) -> &str {
        match self {
            CallResultCode::Success => "SUCCESS",
            CallResultCode::InternalError => "INTERNAL_ERROR",
            CallResultCode::Unauthorized => "UNAUTHORIZED",
            CallResultCode::DeviceBusy => "DEVICE_BUSY",
            CallResultCode::SessionTimeout => "SESSION_TIMEOUT",
            CallResultCode::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParticipantIdType {
    #[serde(rename = "COMMUNICATION_PROFILE_ID")]
    CommunicationProfileId,
    #[serde(rename = "PHONE_NUMBER")]
    PhoneNumber,
    #[serde(rename = "RAW_ADDRESS")]
    RawAddress,
    #[serde(untagged)]
    Other(String),
}

// ---------------------------------------------------------------------------------------------
// Strict parts

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdpDetails {
    #[serde(rename = "type")]
    pub sdp_type: SdpType,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantId {
    #[serde(rename = "type")]
    pub id_type: ParticipantIdType,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub id: ParticipantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_originator: Option<bool>,
}

impl Participant {
    /// For logs: phone numbers masked, other ids as they are (opaque profile ids / addresses).
    pub fn log_label(&self) -> String {
        match self.id.id_type {
            ParticipantIdType::PhoneNumber => {
                format!(
                    "PHONE_NUMBER:{}",
                    takeback_common::mask::mask_number(&self.id.value)
                )
            }
            ParticipantIdType::CommunicationProfileId => "COMMUNICATION_PROFILE_ID".to_owned(),
            ParticipantIdType::RawAddress => "RAW_ADDRESS".to_owned(),
            ParticipantIdType::Other(ref t) => t.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallResult {
    pub code: CallResultCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl CallResult {
    pub fn new(code: CallResultCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: Some(message.into()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tolerant incoming signal (from Alexa's request or from the property backend)

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
    #[error("sdpDetails.value is larger than {MAX_SDP_BYTES} bytes")]
    SdpTooLarge,
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
                        return Err(InvalidMessage::SdpTooLarge);
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
            participants.push(Participant {
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
/// takes: `{"type":"Alexa.Comms.CallSignaling.<Name>","sessionId":...,...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalingMessage {
    pub kind: MessageKind,
    pub session_id: String,
    pub participants: Vec<Participant>,
    pub sdp: Option<SdpDetails>,
    pub renegotiation_type: Option<RenegotiationType>,
    pub call_result: Option<CallResult>,
    /// Fields this model does not know. Forwarded to the property backend (so a field Alexa adds
    /// later is not lost), never sent to Alexa.
    pub extra: Map<String, Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FlatMessage<'a> {
    #[serde(rename = "type")]
    message_type: String,
    session_id: &'a str,
    #[serde(skip_serializing_if = "<[Participant]>::is_empty")]
    participants: &'a [Participant],
    #[serde(skip_serializing_if = "Option::is_none")]
    sdp_details: Option<&'a SdpDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    renegotiation_type: Option<&'a RenegotiationType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    call_result: Option<&'a CallResult>,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
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

    fn flat<'a>(&'a self, extra: &'a Map<String, Value>) -> FlatMessage<'a> {
        FlatMessage {
            message_type: self.kind.full_type(),
            session_id: &self.session_id,
            participants: &self.participants,
            sdp_details: self.sdp.as_ref(),
            renegotiation_type: self.renegotiation_type.as_ref(),
            call_result: self.call_result.as_ref(),
            extra,
        }
    }

    /// The body for `POST {apiEndpoint}/v1/communications/signaling`: known fields only.
    pub fn to_alexa_json(&self) -> Value {
        let empty = Map::new();
        serde_json::to_value(self.flat(&empty)).unwrap_or(Value::Null)
    }

    /// The message as forwarded to the property backend, unknown fields included.
    pub fn to_forward_json(&self) -> Value {
        serde_json::to_value(self.flat(&self.extra)).unwrap_or(Value::Null)
    }

    /// Length of the SDP for logs (the SDP itself holds addresses and is never logged).
    pub fn sdp_len(&self) -> usize {
        self.sdp.as_ref().map_or(0, |s| s.value.len())
    }
}

// ---------------------------------------------------------------------------------------------
// Custom-skill envelope

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    #[serde(default)]
    pub application_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub access_token: Option<Secret>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unit {
    #[serde(default)]
    pub unit_id: Option<String>,
    #[serde(default)]
    pub persistent_unit_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemContext {
    #[serde(default)]
    pub application: Option<Application>,
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub unit: Option<Unit>,
    #[serde(default)]
    pub api_endpoint: Option<String>,
    #[serde(default)]
    pub api_access_token: Option<Secret>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SkillContext {
    #[serde(rename = "System", default)]
    pub system: Option<SystemContext>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkillSession {
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub application: Option<Application>,
}

/// Fields every custom-skill request carries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestHeader {
    #[serde(rename = "type", default)]
    pub request_type: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
}

/// `{"version":"1.0","session":...,"context":{"System":...},"request":{...}}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SkillRequestEnvelope {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub session: Option<SkillSession>,
    #[serde(default)]
    pub context: Option<SkillContext>,
    /// Kept raw: its shape depends on its `type` (see [`SkillRequestEnvelope::classify`]).
    #[serde(default)]
    pub request: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Grant {
    #[serde(rename = "type", default)]
    pub grant_type: Option<String>,
    #[serde(default)]
    pub code: Option<Secret>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Grantee {
    #[serde(rename = "type", default)]
    pub grantee_type: Option<String>,
    #[serde(default)]
    pub token: Option<Secret>,
}

/// The grant in both forms: `request.body` (custom skill) and `directive.payload` (smart home).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GrantPayload {
    #[serde(default)]
    pub grant: Option<Grant>,
    #[serde(default)]
    pub grantee: Option<Grantee>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct GrantRequestFields {
    #[serde(default)]
    body: Option<GrantPayload>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct IntentFields {
    #[serde(default)]
    intent: Option<IntentName>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct IntentName {
    #[serde(default)]
    name: Option<String>,
}

/// What a custom-skill request asks for.
#[derive(Debug, Clone)]
pub enum SkillRequest {
    CallSignaling {
        kind: MessageKind,
        signal: InboundSignal,
    },
    /// An `Alexa.Comms.CallSignaling.*` name this model does not know.
    UnknownCallSignaling {
        name: String,
    },
    AuthorizationGrant(GrantPayload),
    Launch,
    Intent {
        name: Option<String>,
    },
    SessionEnded,
    /// Any other request type (answered with an empty response).
    Other {
        request_type: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedRequest {
    #[error("the event has no `request` object")]
    NoRequest,
    #[error("request.type is missing")]
    NoType,
    #[error("the {request_type} request is malformed: {reason}")]
    BadFields {
        request_type: String,
        reason: String,
    },
}

impl SkillRequestEnvelope {
    /// The skill id Alexa addressed: `context.System.application.applicationId`, else
    /// `session.application.applicationId`.
    pub fn application_id(&self) -> Option<&str> {
        self.context
            .as_ref()
            .and_then(|c| c.system.as_ref())
            .and_then(|s| s.application.as_ref())
            .and_then(|a| a.application_id.as_deref())
            .or_else(|| {
                self.session
                    .as_ref()
                    .and_then(|s| s.application.as_ref())
                    .and_then(|a| a.application_id.as_deref())
            })
    }

    pub fn api_endpoint(&self) -> Option<&str> {
        self.system().and_then(|s| s.api_endpoint.as_deref())
    }

    pub fn system(&self) -> Option<&SystemContext> {
        self.context.as_ref().and_then(|c| c.system.as_ref())
    }

    pub fn header(&self) -> RequestHeader {
        self.request
            .as_ref()
            .and_then(|r| RequestHeader::deserialize(r).ok())
            .unwrap_or_default()
    }

    /// Sorts the request by its `type` and parses the type's fields.
    pub fn classify(&self) -> Result<SkillRequest, MalformedRequest> {
        let request = match &self.request {
            Some(Value::Object(_)) => self.request.as_ref().ok_or(MalformedRequest::NoRequest)?,
            _ => return Err(MalformedRequest::NoRequest),
        };
        let request_type = request
            .get("type")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or(MalformedRequest::NoType)?
            .to_owned();
        let bad = |e: serde_json::Error| MalformedRequest::BadFields {
            request_type: request_type.clone(),
            reason: e.to_string(),
        };
        if let Some(name) = request_type.strip_prefix(SIGNALING_PREFIX) {
            return Ok(match MessageKind::parse(name) {
                Some(kind) => SkillRequest::CallSignaling {
                    kind,
                    signal: InboundSignal::deserialize(request).map_err(bad)?,
                },
                None => SkillRequest::UnknownCallSignaling {
                    name: name.to_owned(),
                },
            });
        }
        Ok(match request_type.as_str() {
            AUTHORIZATION_GRANT_REQUEST => {
                let fields = GrantRequestFields::deserialize(request).map_err(bad)?;
                SkillRequest::AuthorizationGrant(fields.body.unwrap_or_default())
            }
            "LaunchRequest" => SkillRequest::Launch,
            "IntentRequest" => SkillRequest::Intent {
                name: IntentFields::deserialize(request)
                    .ok()
                    .and_then(|i| i.intent)
                    .and_then(|i| i.name),
            },
            "SessionEndedRequest" => SkillRequest::SessionEnded,
            _ => SkillRequest::Other { request_type },
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Smart-home directive (AcceptGrant)

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectiveHeader {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub payload_version: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Directive {
    #[serde(default)]
    pub header: DirectiveHeader,
    #[serde(default)]
    pub payload: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DirectiveEnvelope {
    #[serde(default)]
    pub directive: Directive,
}

impl DirectiveEnvelope {
    pub fn is_accept_grant(&self) -> bool {
        self.directive.header.namespace.as_deref() == Some(AUTHORIZATION_NAMESPACE)
            && self.directive.header.name.as_deref() == Some("AcceptGrant")
    }

    pub fn grant_payload(&self) -> Result<GrantPayload, serde_json::Error> {
        match &self.directive.payload {
            Some(p) => GrantPayload::deserialize(p),
            None => Ok(GrantPayload::default()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventHeader {
    pub namespace: String,
    pub name: String,
    pub message_id: String,
    pub payload_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorPayload {
    #[serde(rename = "type")]
    pub error_type: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EventPayload {
    Empty {},
    Error(ErrorPayload),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventBody {
    pub header: EventHeader,
    pub payload: EventPayload,
}

/// `{"event":{"header":...,"payload":...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlexaEvent {
    pub event: EventBody,
}

impl AlexaEvent {
    pub fn accept_grant_response() -> Self {
        Self::authorization("AcceptGrant.Response", EventPayload::Empty {})
    }

    /// `ErrorResponse` with `ACCEPT_GRANT_FAILED`; `message` must hold no secret.
    pub fn accept_grant_failed(message: impl Into<String>) -> Self {
        Self::authorization(
            "ErrorResponse",
            EventPayload::Error(ErrorPayload {
                error_type: "ACCEPT_GRANT_FAILED".into(),
                message: message.into(),
            }),
        )
    }

    fn authorization(name: &str, payload: EventPayload) -> Self {
        Self {
            event: EventBody {
                header: EventHeader {
                    namespace: AUTHORIZATION_NAMESPACE.into(),
                    name: name.into(),
                    message_id: uuid::Uuid::new_v4().to_string(),
                    payload_version: "3".into(),
                },
                payload,
            },
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The custom-skill form: `{"version":"1.0","response":{"event":...}}`.
    pub fn to_custom_skill_json(&self) -> Value {
        json!({ "version": "1.0", "response": self.to_json() })
    }
}

/// The deferred response Alexa expects to every CallSignaling request.
pub fn deferred_response() -> Value {
    json!({ "version": "1.0", "response": {} })
}

/// A plain-text answer that ends the skill session (launch and intents: the calling itself has
/// no voice interface, but a custom skill must answer them).
pub fn speech_response(text: &str) -> Value {
    json!({
        "version": "1.0",
        "response": {
            "outputSpeech": { "type": "PlainText", "text": text },
            "shouldEndSession": true
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
        let err =
            signal(json!({"sessionId": "s1", "sdpDetails": {"type": "ANSWER", "value": "v=0"}}))
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
        let err =
            signal(json!({"sessionId": "s", "sdpDetails": {"type": "OFFER", "value": "v=0"}}))
                .validate(MessageKind::InitiateInboundCall, true)
                .unwrap_err();
        assert!(matches!(err, InvalidMessage::MissingParticipants { .. }));
        let err =
            signal(json!({"sessionId": "s", "participants": [{"id": {"type": "RAW_ADDRESS"}}]}))
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
            m.to_alexa_json(),
            json!({"type": "Alexa.Comms.CallSignaling.CallEnded", "sessionId": "s1",
                   "callResult": {"code": "SUCCESS", "message": "bye"}})
        );
        let fwd = m.to_forward_json();
        assert_eq!(fwd["newField"], 7);
        assert!(fwd.get("requestId").is_none());
    }

    #[test]
    fn accept_grant_events_have_the_documented_shape() {
        let ok = AlexaEvent::accept_grant_response().to_json();
        assert_eq!(ok["event"]["header"]["namespace"], "Alexa.Authorization");
        assert_eq!(ok["event"]["header"]["name"], "AcceptGrant.Response");
        assert_eq!(ok["event"]["header"]["payloadVersion"], "3");
        assert_eq!(ok["event"]["payload"], json!({}));
        let err = AlexaEvent::accept_grant_failed("nope").to_custom_skill_json();
        assert_eq!(err["version"], "1.0");
        assert_eq!(err["response"]["event"]["header"]["name"], "ErrorResponse");
        assert_eq!(
            err["response"]["event"]["payload"]["type"],
            "ACCEPT_GRANT_FAILED"
        );
    }

    #[test]
    fn classify_sorts_request_types() {
        let env: SkillRequestEnvelope = serde_json::from_value(json!({
            "version": "1.0",
            "context": {"System": {"application": {"applicationId": "amzn1.ask.skill.x"},
                        "apiEndpoint": "https://api.amazonalexa.com", "apiAccessToken": "secret"}},
            "request": {"type": "Alexa.Comms.CallSignaling.CallTransfer", "requestId": "r"}
        }))
        .unwrap();
        assert_eq!(env.application_id(), Some("amzn1.ask.skill.x"));
        assert!(!format!("{env:?}").contains("\"secret\""));
        assert!(matches!(
            env.classify().unwrap(),
            SkillRequest::UnknownCallSignaling { name } if name == "CallTransfer"
        ));
        let env: SkillRequestEnvelope =
            serde_json::from_value(json!({"request": {"requestId": "r"}})).unwrap();
        assert_eq!(env.classify().unwrap_err(), MalformedRequest::NoType);
        let env: SkillRequestEnvelope = serde_json::from_value(json!({
            "request": {"type": "Alexa.Comms.CallSignaling.CallUpdate", "participants": "nope"}
        }))
        .unwrap();
        assert!(matches!(
            env.classify(),
            Err(MalformedRequest::BadFields { .. })
        ));
    }
}
