//! Wire models of `Alexa.Comms.CallSignaling` (the shapes are documented on each type below) and of account linking.
//!
//! Incoming shapes are tolerant (everything optional, unknown fields kept in `other`, open enums
//! with an `Other(String)` fallback, request types this model does not know parsed into an
//! `Unknown` variant); [`InboundSignal::validate`] turns a signal into a strict
//! [`SignalingMessage`] or a clear [`InvalidMessage`]. Outgoing shapes are strict: typed values
//! that serialize to exactly the documented body.
//!
//! - [`request`]: what Alexa sends the skill ([`AlexaRequestEnvelope`]: a custom-skill
//!   [`SkillRequest`] tagged by `request.type`, or a smart-home [`Directive`] tagged by its
//!   header's namespace and name);
//! - [`backend`]: what the property backend sends the signaling API ([`BackendRequest`]);
//! - [`signal`]: the CallSignaling message itself, both as received ([`InboundSignal`]) and
//!   validated ([`SignalingMessage`], the body sent to Alexa; [`ForwardedMessage`], the body
//!   forwarded to the property backend);
//! - [`response`]: the skill's answers to Alexa ([`AlexaResponse`]).
//!
//! The exact envelope is an assumption built from the Alexa docs and Amazon's public WebRTC
//! skill sample; re-check it against a real request log.

pub mod backend;
mod kind;
mod parts;
pub mod request;
pub mod response;
pub mod signal;

pub use backend::{BackendMessage, BackendRequest, InvalidBackendRequest};
pub use kind::MessageKind;
pub use parts::{
    CallParticipant, CallResult, CallResultCode, ParticipantId, ParticipantIdType,
    RenegotiationType, SdpDetails, SdpType,
};
pub use request::{
    AlexaRequestEnvelope, Application, Directive, DirectiveEnvelope, DirectiveHeader, Grant,
    GrantPayload, Grantee, MalformedRequest, RequestHeader, SkillContext, SkillRequest,
    SkillRequestEnvelope, SkillSession, SystemContext, Unit, User,
};
pub use response::{
    AlexaEvent, AlexaResponse, ErrorPayload, ErrorType, EventBody, EventHeader, EventName,
    EventNamespace, EventPayload, OutputSpeech, SkillResponse, SkillResponseBody, SpeechResponse,
};
pub use signal::{
    ForwardedMessage, InboundSignal, InvalidMessage, RawCallResult, RawParticipant,
    RawParticipantId, RawSdpDetails, SignalingMessage, check_session_id,
};

pub const SIGNALING_PREFIX: &str = "Alexa.Comms.CallSignaling.";
pub const AUTHORIZATION_GRANT_REQUEST: &str = "Alexa.Authorization.Grant";
pub const AUTHORIZATION_NAMESPACE: &str = "Alexa.Authorization";
/// The size limits, documented in [`crate::limits`].
pub use crate::limits::{
    MAX_PARTICIPANT_ID_LEN, MAX_PARTICIPANTS, MAX_SDP_BYTES, MAX_SESSION_ID_LEN,
};

#[cfg(test)]
mod tests;
