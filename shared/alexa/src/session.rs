//! The call-session state machine, pure.
//!
//! ```text
//!            Initiate*            CallRinging        CallInProgress       CallAccepted
//!  (none) ─────────────► OFFERED ───────────► RINGING ───────────► IN_PROGRESS ─────────► ACCEPTED
//!                           │ └──────────────────┴──── CallAccepted ──────────────────────▲  │ ▲
//!                           │                                                 CallUpdate │  │ │ CallUpdateResponse
//!                           │                                                            ▼  │ │ (then CallUpdateAck
//!                           │                                                         UPDATING  by the updater)
//!  any state ── CallEnded ──► ENDED
//! ```
//!
//! Who may send what (the *caller* is Alexa for `InitiateOutboundCall`, the property for
//! `InitiateInboundCall`; the *callee* is the other side):
//! - `CallRinging`, `CallInProgress`, `CallAccepted`: the callee. Their acks: the caller, once
//!   the acknowledged step happened. Sources: the Alexa docs' workflows, where the side that
//!   receives `CallRinging`/`CallInProgress`/`CallAccepted` answers with the matching ack
//!   (<https://developer.amazon.com/docs/alexa/alexa-smart-properties/alexa-callsignaling-spi-for-asp.html>
//!   steps 3–11 for an Alexa caller,
//!   <https://developer.amazon.com/en-US/docs/alexa/alexa-smart-properties/alexa-callsignaling-requests-for-asp.html>
//!   steps 2–10 for a property caller), and Amazon's sample
//!   (`alexa-smart-properties/skill-sample-for-webrtc-asp`, `server/src/routes.js`: `/ring` sends
//!   `CallRingingAck` or `CallInProgressAck`, `/answer` sends `CallAcceptedAck`).
//! - `CallUpdate` (re-offer: hold, resume, update): either side once accepted;
//!   `CallUpdateResponse` (the answer): the other side; `CallUpdateAck`: the side that sent the
//!   `CallUpdate`, after it got the `CallUpdateResponse`, as `CallAcceptedAck` follows
//!   `CallAccepted`. Source: the same sample, `server/src/routes.js` `/reanswer`: when Alexa's
//!   `CallUpdateResponse` answers the property's re-offer, the property sends `CallUpdateAck`;
//!   `skill/lambda/index.js` `callUpdateAckInboundHandler`: Alexa sends the skill
//!   `CallUpdateAck` for its own re-offers, while `/reoffer` (Alexa's `CallUpdate`) is answered
//!   with `CallUpdateResponse` only (`server/src/webapp.js` `handleRemoteReanswer`). No source
//!   shows an ack before the answer or from the answering side, so both are rejected.
//! - `CallEnded`: either side, in any state.
//!
//! Outcomes ([`SessionDecision`]): a valid message is applied (new state, version + 1, message id
//! remembered); the same message id again is a `Duplicate` (answered, not re-applied; forwarded
//! again only if the first delivery never succeeded); a repeat or a message overtaken by a later
//! one (`CallRinging` after `CallAccepted`) is `Ignore`d; anything impossible is `Reject`ed and
//! the stored state stays as it was.

use super::config::SessionTtl;
use super::model::{CallParticipant, MessageKind, SignalingMessage};
use serde::{Serialize, Serializer};
use std::fmt;

/// How many message ids a session remembers for de-duplication (a call has a few dozen
/// messages at most; the oldest are dropped first).
pub const MAX_REMEMBERED_MESSAGES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Alexa,
    Provider,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Alexa => "ALEXA",
            Side::Provider => "PROVIDER",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ALEXA" => Some(Side::Alexa),
            "PROVIDER" => Some(Side::Provider),
            _ => None,
        }
    }

    pub fn other(self) -> Self {
        match self {
            Side::Alexa => Side::Provider,
            Side::Provider => Side::Alexa,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallDirection {
    /// An Alexa device calls a property device (`InitiateOutboundCall`).
    AlexaToProvider,
    /// A property device calls an Alexa device (`InitiateInboundCall`).
    ProviderToAlexa,
}

impl CallDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            CallDirection::AlexaToProvider => "ALEXA_TO_PROVIDER",
            CallDirection::ProviderToAlexa => "PROVIDER_TO_ALEXA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ALEXA_TO_PROVIDER" => Some(CallDirection::AlexaToProvider),
            "PROVIDER_TO_ALEXA" => Some(CallDirection::ProviderToAlexa),
            _ => None,
        }
    }

    pub fn caller(self) -> Side {
        match self {
            CallDirection::AlexaToProvider => Side::Alexa,
            CallDirection::ProviderToAlexa => Side::Provider,
        }
    }

    pub fn callee(self) -> Side {
        self.caller().other()
    }
}

/// Where a call session stands (see the diagram above).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    Offered,
    Ringing,
    InProgress,
    Accepted,
    Updating,
    Ended,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Offered => "OFFERED",
            SessionState::Ringing => "RINGING",
            SessionState::InProgress => "IN_PROGRESS",
            SessionState::Accepted => "ACCEPTED",
            SessionState::Updating => "UPDATING",
            SessionState::Ended => "ENDED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            SessionState::Offered,
            SessionState::Ringing,
            SessionState::InProgress,
            SessionState::Accepted,
            SessionState::Updating,
            SessionState::Ended,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Progress of call set-up; `Updating` is an accepted call re-negotiating.
    fn rank(self) -> u8 {
        match self {
            SessionState::Offered => 0,
            SessionState::Ringing => 1,
            SessionState::InProgress => 2,
            SessionState::Accepted | SessionState::Updating => 3,
            SessionState::Ended => 4,
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One call session as stored (DynamoDB item keyed by `session_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct CallSession {
    pub session_id: String,
    pub direction: CallDirection,
    pub state: SessionState,
    /// Optimistic-concurrency counter: every write is conditional on the version read.
    pub version: u64,
    /// Alexa's `apiEndpoint` for this call (from the request context), if known.
    pub api_endpoint: Option<String>,
    pub participants: Vec<CallParticipant>,
    /// Who sent the last `CallUpdate` (the pending one while `Updating`).
    pub last_update_by: Option<Side>,
    pub renegotiation_type: Option<String>,
    pub end_code: Option<String>,
    pub ended_by: Option<Side>,
    /// Name of the last applied message.
    pub last_message: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Epoch seconds; DynamoDB TTL deletes by it, and readers treat a past value as absent.
    pub expires_at: i64,
    /// Ids of applied messages (Alexa `requestId`s, backend `messageId`s), oldest first.
    pub applied: Vec<String>,
    /// Ids of applied messages whose delivery (webhook / Alexa) succeeded.
    pub delivered: Vec<String>,
}

impl CallSession {
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at <= now
    }

    pub fn has_applied(&self, message_id: &str) -> bool {
        self.applied.iter().any(|m| m == message_id)
    }

    pub fn was_delivered(&self, message_id: &str) -> bool {
        self.delivered.iter().any(|m| m == message_id)
    }

    /// The next version of this session with `message_id` marked delivered.
    pub fn with_delivered(&self, message_id: &str, now: i64) -> CallSession {
        let mut next = self.clone();
        if !next.was_delivered(message_id) {
            push_bounded(&mut next.delivered, message_id);
        }
        next.version = self.version + 1;
        next.updated_at = now;
        next
    }

    /// Undoes an applied message whose delivery failed: `previous`'s content at the next
    /// version, with the message forgotten so that a retry is applied again.
    pub fn rolled_back_to(
        &self,
        previous: &CallSession,
        message_id: &str,
        now: i64,
    ) -> CallSession {
        let mut next = previous.clone();
        next.version = self.version + 1;
        next.updated_at = now;
        next.applied.retain(|m| m != message_id);
        next.delivered.retain(|m| m != message_id);
        next
    }
}

fn push_bounded(list: &mut Vec<String>, id: &str) {
    list.push(id.to_owned());
    if list.len() > MAX_REMEMBERED_MESSAGES {
        let excess = list.len() - MAX_REMEMBERED_MESSAGES;
        list.drain(..excess);
    }
}

/// Serialized as their wire names (`as_str`), as the webhook and the signaling API show them.
macro_rules! serialize_as_str {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    )*};
}

serialize_as_str!(SessionState, CallDirection, IgnoreReason);

/// One message to apply.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub message: &'a SignalingMessage,
    pub from: Side,
    /// Alexa's `requestId`, or the backend's `messageId` (generated when it gives none).
    pub message_id: &'a str,
    /// Recorded on a new session.
    pub api_endpoint: Option<&'a str>,
    pub now: i64,
    pub ttl: SessionTtl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// The message that led to the current state, again (with a new message id).
    Repeat,
    /// A later message already moved the call on (out-of-order delivery).
    Superseded,
    AlreadyEnded,
    /// `Initiate*` for a session that exists in the same direction.
    AlreadyExists,
}

impl IgnoreReason {
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::Repeat => "repeat",
            IgnoreReason::Superseded => "superseded",
            IgnoreReason::AlreadyEnded => "already_ended",
            IgnoreReason::AlreadyExists => "already_exists",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no live session with this id")]
    UnknownSession,
    #[error("{kind} cannot come from {}", from.as_str())]
    NotFromThisSide { kind: MessageKind, from: Side },
    #[error("{kind} in state {state} must come from {}", expected.as_str())]
    WrongSide {
        kind: MessageKind,
        state: SessionState,
        expected: Side,
    },
    #[error("{kind} is not possible in state {state}")]
    InvalidTransition {
        kind: MessageKind,
        state: SessionState,
    },
    #[error("the session exists for a call in the other direction")]
    DirectionMismatch,
    #[error("{kind} after the call ended")]
    CallEnded { kind: MessageKind },
}

#[derive(Debug, Clone, PartialEq)]
pub enum SessionDecision {
    /// Write this (conditional on the version read, or on absence for a new session).
    Apply(CallSession),
    /// The same message id was applied before.
    Duplicate {
        session: CallSession,
        delivered: bool,
    },
    Ignore {
        state: SessionState,
        reason: IgnoreReason,
    },
    Reject(Rejection),
}

/// Decides what `incoming` does to `current` (a live, unexpired session or none).
pub fn decide(current: Option<&CallSession>, incoming: &Incoming<'_>) -> SessionDecision {
    let kind = incoming.message.kind;
    let from = incoming.from;

    let allowed_from = match kind {
        MessageKind::InitiateOutboundCall => from == Side::Alexa,
        MessageKind::InitiateInboundCall => from == Side::Provider,
        _ => true,
    };
    if !allowed_from {
        return SessionDecision::Reject(Rejection::NotFromThisSide { kind, from });
    }

    let Some(session) = current else {
        return match kind {
            MessageKind::InitiateOutboundCall => {
                SessionDecision::Apply(new_session(incoming, CallDirection::AlexaToProvider))
            }
            MessageKind::InitiateInboundCall => {
                SessionDecision::Apply(new_session(incoming, CallDirection::ProviderToAlexa))
            }
            _ => SessionDecision::Reject(Rejection::UnknownSession),
        };
    };

    if session.has_applied(incoming.message_id) {
        return SessionDecision::Duplicate {
            session: session.clone(),
            delivered: session.was_delivered(incoming.message_id),
        };
    }

    let state = session.state;
    let caller = session.direction.caller();
    let callee = session.direction.callee();
    let ignore = |reason| SessionDecision::Ignore { state, reason };
    let wrong_side = |expected| {
        SessionDecision::Reject(Rejection::WrongSide {
            kind,
            state,
            expected,
        })
    };
    let invalid = SessionDecision::Reject(Rejection::InvalidTransition { kind, state });

    if state == SessionState::Ended {
        return match kind {
            MessageKind::CallEnded
            | MessageKind::CallRingingAck
            | MessageKind::CallInProgressAck
            | MessageKind::CallAcceptedAck
            | MessageKind::CallUpdateAck => ignore(IgnoreReason::AlreadyEnded),
            MessageKind::InitiateOutboundCall | MessageKind::InitiateInboundCall
                if same_direction(kind, session.direction) =>
            {
                ignore(IgnoreReason::AlreadyExists)
            }
            _ => SessionDecision::Reject(Rejection::CallEnded { kind }),
        };
    }

    let apply = |to: SessionState| SessionDecision::Apply(next_session(session, incoming, to));

    match kind {
        MessageKind::InitiateOutboundCall | MessageKind::InitiateInboundCall => {
            if same_direction(kind, session.direction) {
                ignore(IgnoreReason::AlreadyExists)
            } else {
                SessionDecision::Reject(Rejection::DirectionMismatch)
            }
        }
        MessageKind::CallRinging => progress(state, from, callee, 1, SessionState::Ringing)
            .map_or_else(|| wrong_side(callee), |p| p.decide(apply, ignore)),
        MessageKind::CallInProgress => progress(state, from, callee, 2, SessionState::InProgress)
            .map_or_else(|| wrong_side(callee), |p| p.decide(apply, ignore)),
        MessageKind::CallAccepted => progress(state, from, callee, 3, SessionState::Accepted)
            .map_or_else(|| wrong_side(callee), |p| p.decide(apply, ignore)),
        MessageKind::CallRingingAck => ack(state, from, caller, 1, apply, wrong_side, invalid),
        MessageKind::CallInProgressAck => ack(state, from, caller, 2, apply, wrong_side, invalid),
        MessageKind::CallAcceptedAck => ack(state, from, caller, 3, apply, wrong_side, invalid),
        MessageKind::CallUpdate => match state {
            SessionState::Accepted => apply(SessionState::Updating),
            SessionState::Updating if session.last_update_by == Some(from) => {
                ignore(IgnoreReason::Repeat)
            }
            // Both sides re-offering at once (glare): the first one wins.
            _ => invalid,
        },
        MessageKind::CallUpdateResponse => match (state, session.last_update_by) {
            (SessionState::Updating, Some(by)) if by != from => apply(SessionState::Accepted),
            (SessionState::Updating, Some(by)) => wrong_side(by.other()),
            (SessionState::Accepted, Some(_)) => ignore(IgnoreReason::Repeat),
            _ => invalid,
        },
        // The updater acknowledges the answer to its re-offer (see the module docs).
        MessageKind::CallUpdateAck => match (state, session.last_update_by) {
            (SessionState::Accepted, Some(by)) if by == from => apply(state),
            (SessionState::Accepted | SessionState::Updating, Some(by)) if by != from => {
                wrong_side(by)
            }
            // The updater acknowledging an answer that has not come yet.
            _ => invalid,
        },
        MessageKind::CallEnded => apply(SessionState::Ended),
    }
}

/// The skill refuses a message Alexa sent (an offer or answer it cannot take: malformed,
/// oversized) and ends the call with `incoming.message`, a `CallEnded` sent for the provider's
/// side. With no live session (a refused `InitiateOutboundCall`), the session is created already
/// ended, so that Alexa's re-delivery of the same request finds it and nothing is sent twice;
/// otherwise this is [`decide`] for the `CallEnded`.
pub fn decide_refusal(current: Option<&CallSession>, incoming: &Incoming<'_>) -> SessionDecision {
    match current {
        Some(_) => decide(current, incoming),
        None => {
            let mut ended = new_session(incoming, CallDirection::AlexaToProvider);
            ended.state = SessionState::Ended;
            ended.ended_by = Some(incoming.from);
            ended.end_code = incoming
                .message
                .call_result
                .as_ref()
                .map(|r| r.code.as_str().to_owned());
            ended.expires_at = expiry(incoming, SessionState::Ended);
            SessionDecision::Apply(ended)
        }
    }
}

/// The session id of an `InitiateInboundCall` the property backend sends with idempotency key
/// `message_id` (its `messageId`): the same key gives the same id, so a retry after a timeout
/// finds the session the first attempt created instead of starting a second call. A UUID (the
/// form Alexa's own session ids and the sample's take), version 8, from the first 16 bytes of
/// SHA-256 over a fixed prefix and the key.
pub fn inbound_session_id(message_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(b"takeback:InitiateInboundCall:")
        .chain_update(message_id.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn same_direction(kind: MessageKind, direction: CallDirection) -> bool {
    matches!(
        (kind, direction),
        (
            MessageKind::InitiateOutboundCall,
            CallDirection::AlexaToProvider
        ) | (
            MessageKind::InitiateInboundCall,
            CallDirection::ProviderToAlexa
        )
    )
}

/// A set-up step (ringing, in progress, accepted) by the callee.
enum Progress {
    Advance(SessionState),
    Repeat,
    Superseded,
}

impl Progress {
    fn decide(
        self,
        apply: impl Fn(SessionState) -> SessionDecision,
        ignore: impl Fn(IgnoreReason) -> SessionDecision,
    ) -> SessionDecision {
        match self {
            Progress::Advance(to) => apply(to),
            Progress::Repeat => ignore(IgnoreReason::Repeat),
            Progress::Superseded => ignore(IgnoreReason::Superseded),
        }
    }
}

fn progress(
    state: SessionState,
    from: Side,
    callee: Side,
    rank: u8,
    to: SessionState,
) -> Option<Progress> {
    if from != callee {
        return None;
    }
    Some(match state.rank().cmp(&rank) {
        std::cmp::Ordering::Less => Progress::Advance(to),
        std::cmp::Ordering::Equal => Progress::Repeat,
        std::cmp::Ordering::Greater => Progress::Superseded,
    })
}

/// An ack by the caller of a step the callee made (`rank` reached); no state change.
fn ack(
    state: SessionState,
    from: Side,
    caller: Side,
    rank: u8,
    apply: impl Fn(SessionState) -> SessionDecision,
    wrong_side: impl Fn(Side) -> SessionDecision,
    invalid: SessionDecision,
) -> SessionDecision {
    if from != caller {
        return wrong_side(caller);
    }
    if state.rank() >= rank {
        apply(state)
    } else {
        invalid
    }
}

fn expiry(incoming: &Incoming<'_>, state: SessionState) -> i64 {
    let ttl = if state == SessionState::Ended {
        incoming.ttl.ended
    } else {
        incoming.ttl.active
    };
    incoming.now.saturating_add(ttl.as_secs() as i64)
}

fn new_session(incoming: &Incoming<'_>, direction: CallDirection) -> CallSession {
    let m = incoming.message;
    CallSession {
        session_id: m.session_id.clone(),
        direction,
        state: SessionState::Offered,
        version: 1,
        api_endpoint: incoming.api_endpoint.map(str::to_owned),
        participants: m.participants.clone(),
        last_update_by: None,
        renegotiation_type: None,
        end_code: None,
        ended_by: None,
        last_message: m.kind.name().to_owned(),
        created_at: incoming.now,
        updated_at: incoming.now,
        expires_at: expiry(incoming, SessionState::Offered),
        applied: vec![incoming.message_id.to_owned()],
        delivered: Vec::new(),
    }
}

fn next_session(current: &CallSession, incoming: &Incoming<'_>, to: SessionState) -> CallSession {
    let m = incoming.message;
    let mut next = current.clone();
    next.state = to;
    next.version = current.version + 1;
    next.updated_at = incoming.now;
    next.expires_at = expiry(incoming, to);
    next.last_message = m.kind.name().to_owned();
    push_bounded(&mut next.applied, incoming.message_id);
    match m.kind {
        MessageKind::CallUpdate => {
            next.last_update_by = Some(incoming.from);
            next.renegotiation_type = m.renegotiation_type.as_ref().map(|r| r.as_str().to_owned());
        }
        MessageKind::CallEnded => {
            next.ended_by = Some(incoming.from);
            next.end_code = m.call_result.as_ref().map(|r| r.code.as_str().to_owned());
        }
        _ => {}
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CallResult, CallResultCode, SdpDetails, SdpType};

    fn msg(kind: MessageKind) -> SignalingMessage {
        let mut m = SignalingMessage::bare(kind, "sess-1");
        if let Some(t) = kind.required_sdp() {
            m.sdp = Some(SdpDetails {
                sdp_type: t,
                value: "v=0".into(),
            });
        }
        if kind == MessageKind::CallEnded {
            m.call_result = Some(CallResult::new(CallResultCode::Success, "bye"));
        }
        m
    }

    struct Run {
        session: Option<CallSession>,
        n: u32,
    }

    impl Run {
        fn new() -> Self {
            Self {
                session: None,
                n: 0,
            }
        }

        fn send(&mut self, kind: MessageKind, from: Side) -> SessionDecision {
            self.n += 1;
            let id = format!("m{}", self.n);
            self.send_id(kind, from, &id)
        }

        fn send_id(&mut self, kind: MessageKind, from: Side, id: &str) -> SessionDecision {
            let m = msg(kind);
            let inc = Incoming {
                message: &m,
                from,
                message_id: id,
                api_endpoint: Some("https://api.amazonalexa.com"),
                now: 1_000,
                ttl: SessionTtl::default(),
            };
            let d = decide(self.session.as_ref(), &inc);
            if let SessionDecision::Apply(s) = &d {
                self.session = Some(s.clone());
            }
            d
        }

        fn state(&self) -> SessionState {
            self.session.as_ref().map(|s| s.state).unwrap()
        }
    }

    fn applied(d: &SessionDecision) -> bool {
        matches!(d, SessionDecision::Apply(_))
    }

    use MessageKind::*;
    use Side::{Alexa, Provider};

    #[test]
    fn alexa_calls_provider_full_flow() {
        let mut r = Run::new();
        assert!(applied(&r.send(InitiateOutboundCall, Alexa)));
        assert_eq!(r.state(), SessionState::Offered);
        assert!(applied(&r.send(CallRinging, Provider)));
        assert!(applied(&r.send(CallRingingAck, Alexa)));
        assert_eq!(r.state(), SessionState::Ringing);
        assert!(applied(&r.send(CallInProgress, Provider)));
        assert!(applied(&r.send(CallInProgressAck, Alexa)));
        assert!(applied(&r.send(CallAccepted, Provider)));
        assert!(applied(&r.send(CallAcceptedAck, Alexa)));
        assert_eq!(r.state(), SessionState::Accepted);
        // hold from Alexa, answered by the provider, acknowledged by Alexa
        assert!(applied(&r.send(CallUpdate, Alexa)));
        assert_eq!(r.state(), SessionState::Updating);
        assert!(applied(&r.send(CallUpdateResponse, Provider)));
        assert!(applied(&r.send(CallUpdateAck, Alexa)));
        assert_eq!(r.state(), SessionState::Accepted);
        assert!(applied(&r.send(CallEnded, Provider)));
        let s = r.session.clone().unwrap();
        assert_eq!(s.state, SessionState::Ended);
        assert_eq!(s.ended_by, Some(Provider));
        assert_eq!(s.end_code.as_deref(), Some("SUCCESS"));
        assert_eq!(s.version, 11);
        assert_eq!(s.expires_at, 1_000 + 3_600);
    }

    #[test]
    fn provider_calls_alexa_full_flow() {
        let mut r = Run::new();
        assert!(applied(&r.send(InitiateInboundCall, Provider)));
        assert_eq!(
            r.session.as_ref().unwrap().direction,
            CallDirection::ProviderToAlexa
        );
        assert!(applied(&r.send(CallRinging, Alexa)));
        assert!(applied(&r.send(CallRingingAck, Provider)));
        assert!(applied(&r.send(CallAccepted, Alexa)));
        assert!(applied(&r.send(CallAcceptedAck, Provider)));
        assert!(applied(&r.send(CallUpdate, Provider)));
        assert!(applied(&r.send(CallUpdateResponse, Alexa)));
        assert!(applied(&r.send(CallEnded, Alexa)));
        assert_eq!(r.state(), SessionState::Ended);
    }

    #[test]
    fn same_message_id_is_a_duplicate_not_reapplied() {
        let mut r = Run::new();
        r.send_id(InitiateOutboundCall, Alexa, "req-1");
        let before = r.session.clone().unwrap();
        match r.send_id(InitiateOutboundCall, Alexa, "req-1") {
            SessionDecision::Duplicate { session, delivered } => {
                assert_eq!(session, before);
                assert!(!delivered);
            }
            d => panic!("{d:?}"),
        }
        r.session = Some(before.with_delivered("req-1", 1_001));
        assert!(matches!(
            r.send_id(InitiateOutboundCall, Alexa, "req-1"),
            SessionDecision::Duplicate {
                delivered: true,
                ..
            }
        ));
    }

    #[test]
    fn repeats_and_late_messages_are_ignored() {
        let mut r = Run::new();
        r.send(InitiateOutboundCall, Alexa);
        r.send(CallRinging, Provider);
        assert_eq!(
            r.send(CallRinging, Provider),
            SessionDecision::Ignore {
                state: SessionState::Ringing,
                reason: IgnoreReason::Repeat
            }
        );
        r.send(CallAccepted, Provider);
        assert_eq!(
            r.send(CallInProgress, Provider),
            SessionDecision::Ignore {
                state: SessionState::Accepted,
                reason: IgnoreReason::Superseded
            }
        );
        assert_eq!(
            r.send(InitiateOutboundCall, Alexa),
            SessionDecision::Ignore {
                state: SessionState::Accepted,
                reason: IgnoreReason::AlreadyExists
            }
        );
        r.send(CallEnded, Alexa);
        assert!(matches!(
            r.send(CallEnded, Provider),
            SessionDecision::Ignore {
                reason: IgnoreReason::AlreadyEnded,
                ..
            }
        ));
    }

    #[test]
    fn impossible_transitions_are_rejected() {
        let mut r = Run::new();
        assert_eq!(
            r.send(CallRinging, Provider),
            SessionDecision::Reject(Rejection::UnknownSession)
        );
        assert!(matches!(
            r.send(InitiateOutboundCall, Provider),
            SessionDecision::Reject(Rejection::NotFromThisSide { .. })
        ));
        r.send(InitiateOutboundCall, Alexa);
        // The caller cannot ring or accept its own call.
        assert!(matches!(
            r.send(CallAccepted, Alexa),
            SessionDecision::Reject(Rejection::WrongSide {
                expected: Provider,
                ..
            })
        ));
        // Nothing to acknowledge yet; no re-negotiation before the call is accepted.
        assert!(matches!(
            r.send(CallAcceptedAck, Alexa),
            SessionDecision::Reject(Rejection::InvalidTransition { .. })
        ));
        assert!(matches!(
            r.send(CallUpdate, Provider),
            SessionDecision::Reject(Rejection::InvalidTransition { .. })
        ));
        assert!(matches!(
            r.send(InitiateInboundCall, Provider),
            SessionDecision::Reject(Rejection::DirectionMismatch)
        ));
        r.send(CallAccepted, Provider);
        r.send(CallUpdate, Provider);
        // Glare: Alexa re-offers while the provider's update is pending.
        assert!(matches!(
            r.send(CallUpdate, Alexa),
            SessionDecision::Reject(_)
        ));
        // The updater cannot answer its own offer.
        assert!(matches!(
            r.send(CallUpdateResponse, Provider),
            SessionDecision::Reject(Rejection::WrongSide {
                expected: Alexa,
                ..
            })
        ));
        assert_eq!(r.state(), SessionState::Updating);
        r.send(CallEnded, Alexa);
        assert_eq!(
            r.send(CallAccepted, Provider),
            SessionDecision::Reject(Rejection::CallEnded { kind: CallAccepted })
        );
        assert_eq!(r.state(), SessionState::Ended);
    }

    /// Hold and resume re-offers from either side complete, each acknowledged by the side that
    /// re-offered once it has the answer (Amazon's sample, `server/src/routes.js` `/reanswer`).
    #[test]
    fn hold_and_resume_from_either_side_complete_with_the_updaters_ack() {
        for direction in [InitiateOutboundCall, InitiateInboundCall] {
            let mut r = Run::new();
            let caller = if direction == InitiateOutboundCall {
                Alexa
            } else {
                Provider
            };
            assert!(applied(&r.send(direction, caller)));
            assert!(applied(&r.send(CallAccepted, caller.other())));
            assert!(applied(&r.send(CallAcceptedAck, caller)));
            for updater in [Alexa, Provider] {
                for _hold_then_resume in 0..2 {
                    assert!(applied(&r.send(CallUpdate, updater)));
                    assert_eq!(r.state(), SessionState::Updating);
                    // No ack before the answer, and never from the answering side.
                    assert!(matches!(
                        r.send(CallUpdateAck, updater),
                        SessionDecision::Reject(Rejection::InvalidTransition { .. })
                    ));
                    assert!(applied(&r.send(CallUpdateResponse, updater.other())));
                    assert_eq!(r.state(), SessionState::Accepted);
                    assert!(matches!(
                        r.send(CallUpdateAck, updater.other()),
                        SessionDecision::Reject(Rejection::WrongSide { expected, .. }) if expected == updater
                    ));
                    assert!(applied(&r.send(CallUpdateAck, updater)), "{updater:?}");
                    assert_eq!(r.state(), SessionState::Accepted);
                }
            }
            assert!(applied(&r.send(CallEnded, Alexa)));
        }
    }

    #[test]
    fn a_refused_offer_creates_an_ended_session_once() {
        let m = SignalingMessage::call_ended(
            "sess-1",
            CallResult::new(CallResultCode::InternalError, "refused"),
        );
        let inc = Incoming {
            message: &m,
            from: Provider,
            message_id: "req-1#refused",
            api_endpoint: None,
            now: 1_000,
            ttl: SessionTtl::default(),
        };
        let SessionDecision::Apply(s) = decide_refusal(None, &inc) else {
            panic!("a new session")
        };
        assert_eq!(s.state, SessionState::Ended);
        assert_eq!(s.end_code.as_deref(), Some("INTERNAL_ERROR"));
        assert_eq!(s.expires_at, 1_000 + 3_600);
        assert!(matches!(
            decide_refusal(Some(&s), &inc),
            SessionDecision::Duplicate { .. }
        ));
    }

    #[test]
    fn inbound_session_ids_follow_the_idempotency_key() {
        let a = inbound_session_id("backend-key-1");
        assert_eq!(a, inbound_session_id("backend-key-1"));
        assert_ne!(a, inbound_session_id("backend-key-2"));
        assert_eq!(a.len(), 36);
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 8);
    }

    #[test]
    fn accepted_may_skip_ringing() {
        let mut r = Run::new();
        r.send(InitiateInboundCall, Provider);
        assert!(applied(&r.send(CallAccepted, Alexa)));
        assert_eq!(r.state(), SessionState::Accepted);
    }

    #[test]
    fn remembered_ids_are_bounded_and_rollback_forgets_the_message() {
        let mut r = Run::new();
        r.send(InitiateOutboundCall, Alexa);
        r.send(CallRinging, Provider);
        r.send(CallAccepted, Provider);
        for _ in 0..100 {
            r.send(CallUpdate, Alexa);
            r.send(CallUpdateResponse, Provider);
        }
        let s = r.session.clone().unwrap();
        assert_eq!(s.applied.len(), MAX_REMEMBERED_MESSAGES);
        assert_eq!(s.applied.last().map(String::as_str), Some("m203"));

        let mut r = Run::new();
        r.send(InitiateInboundCall, Provider);
        let before = r.session.clone().unwrap();
        r.send_id(CallRingingAck, Provider, "x");
        let _ = r.send(CallRinging, Alexa);
        let after = r.session.clone().unwrap();
        let undone = after.rolled_back_to(&before, "m2", 2_000);
        assert_eq!(undone.state, SessionState::Offered);
        assert_eq!(undone.version, after.version + 1);
        assert!(!undone.has_applied("m2"));
        assert_eq!(
            SdpType::Offer,
            MessageKind::InitiateInboundCall.required_sdp().unwrap()
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn any_kind() -> impl Strategy<Value = MessageKind> {
            (0..MessageKind::ALL.len()).prop_map(|i| MessageKind::ALL[i])
        }

        fn any_side() -> impl Strategy<Value = Side> {
            prop_oneof![Just(Side::Alexa), Just(Side::Provider)]
        }

        proptest! {
            /// Any message sequence: no panic, versions only grow, an ended call stays ended,
            /// the direction never changes, and re-sending an applied id changes nothing.
            #[test]
            fn invariants_hold(steps in proptest::collection::vec((any_kind(), any_side(), 0u8..4), 1..60)) {
                let mut r = Run::new();
                let mut direction = None;
                for (i, (kind, side, reuse)) in steps.into_iter().enumerate() {
                    let before = r.session.clone();
                    let id = if reuse == 0 && i > 0 { format!("m{}", i - 1) } else { format!("m{i}") };
                    let d = r.send_id(kind, side, &id);
                    match (&before, &d) {
                        (Some(b), SessionDecision::Apply(s)) => {
                            prop_assert_eq!(s.version, b.version + 1);
                            prop_assert!(b.state != SessionState::Ended);
                            prop_assert_eq!(Some(s.direction), direction);
                        }
                        (None, SessionDecision::Apply(s)) => {
                            prop_assert_eq!(s.version, 1);
                            direction = Some(s.direction);
                        }
                        (Some(b), SessionDecision::Duplicate { session, .. }) => prop_assert_eq!(b, session),
                        _ => prop_assert_eq!(&before, &r.session),
                    }
                }
            }
        }
    }
}
