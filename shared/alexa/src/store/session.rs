//! Call-session storage: the port ([`SessionStore`]), an in-memory implementation for unit
//! tests and the emulator, and [`record`], the loop that applies a message with optimistic
//! concurrency (read, decide with the pure [`session::decide`], write conditionally, and on a
//! lost race read again). The DynamoDB implementation is in `takeback-dynamo`.
//!
//! Every write is a whole-session put conditional on the version read (or, for a new session,
//! on no live session), so two concurrent invocations can never both apply a transition.
//! Expiry can lag in a store, so readers treat `expires_at <= now` as absent.

use crate::session::{
    self, CallSession, IgnoreReason, Incoming, Rejection, SessionDecision, SessionState, Side,
};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use takeback_common::StoreError;

/// Attempts of the read-decide-write loop before giving up under contention.
pub const MAX_WRITE_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Written,
    /// The condition failed: someone else wrote first.
    Conflict,
}

pub trait SessionStore: Send + Sync {
    /// The live session (`expires_at > now`), strongly consistent.
    fn get(
        &self,
        session_id: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<CallSession>, StoreError>> + Send;

    /// Writes the whole session: with `expected_version = None` only if there is no live session
    /// with this id, else only if the stored version equals it.
    fn put(
        &self,
        session: &CallSession,
        expected_version: Option<u64>,
        now: i64,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;
}

/// What [`record`] did.
// One value per invocation, moved once: boxing the sessions would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    Applied {
        previous: Option<CallSession>,
        session: CallSession,
    },
    Duplicate {
        session: CallSession,
        delivered: bool,
    },
    Ignored {
        state: SessionState,
        reason: IgnoreReason,
    },
    Rejected(Rejection),
}

#[derive(Debug, thiserror::Error)]
#[error("session {0} kept changing under concurrent writers")]
struct Contention(String);

/// Applies `incoming` to its session.
pub async fn record<S: SessionStore>(
    store: &S,
    incoming: &Incoming<'_>,
) -> Result<Recorded, StoreError> {
    record_with(store, incoming, session::decide).await
}

/// Records the skill's refusal of a message Alexa sent: `incoming` is the `CallEnded` that ends
/// the call (see [`session::decide_refusal`]).
pub async fn record_refusal<S: SessionStore>(
    store: &S,
    incoming: &Incoming<'_>,
) -> Result<Recorded, StoreError> {
    record_with(store, incoming, session::decide_refusal).await
}

async fn record_with<S: SessionStore>(
    store: &S,
    incoming: &Incoming<'_>,
    decide: fn(Option<&CallSession>, &Incoming<'_>) -> SessionDecision,
) -> Result<Recorded, StoreError> {
    let session_id = &incoming.message.session_id;
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let current = store.get(session_id, incoming.now).await?;
        match decide(current.as_ref(), incoming) {
            SessionDecision::Apply(next) => {
                let expected = current.as_ref().map(|c| c.version);
                match store.put(&next, expected, incoming.now).await? {
                    PutOutcome::Written => {
                        return Ok(Recorded::Applied {
                            previous: current,
                            session: next,
                        });
                    }
                    PutOutcome::Conflict => continue,
                }
            }
            SessionDecision::Duplicate { session, delivered } => {
                return Ok(Recorded::Duplicate { session, delivered });
            }
            SessionDecision::Ignore { state, reason } => {
                return Ok(Recorded::Ignored { state, reason });
            }
            SessionDecision::Reject(r) => return Ok(Recorded::Rejected(r)),
        }
    }
    Err(StoreError::Unavailable(Box::new(Contention(
        session_id.clone(),
    ))))
}

/// Notes that `message_id` was delivered (webhook or Alexa), so a re-delivered request is not
/// forwarded again. Best effort: gives up quietly if the session is gone.
pub async fn mark_delivered<S: SessionStore>(
    store: &S,
    session_id: &str,
    message_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let Some(current) = store.get(session_id, now).await? else {
            return Ok(());
        };
        if current.was_delivered(message_id) || !current.has_applied(message_id) {
            return Ok(());
        }
        let next = current.with_delivered(message_id, now);
        if store.put(&next, Some(current.version), now).await? == PutOutcome::Written {
            return Ok(());
        }
    }
    Err(StoreError::Unavailable(Box::new(Contention(
        session_id.to_owned(),
    ))))
}

/// Undoes `applied` (written for `message_id`) after its delivery failed: restores `previous`,
/// or, for a session that the message created, ends it and lets it expire at once, so that
/// readers treat it as absent and a retry with the same idempotency key (the signaling API
/// derives `InitiateInboundCall`'s session id from it) starts the call afresh. Conditional on
/// nothing newer having been written; returns whether the undo was written.
pub async fn roll_back<S: SessionStore>(
    store: &S,
    applied: &CallSession,
    previous: Option<&CallSession>,
    message_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let next = match previous {
        Some(p) => applied.rolled_back_to(p, message_id, now),
        None => {
            let mut ended = applied.clone();
            ended.version = applied.version + 1;
            ended.state = SessionState::Ended;
            ended.end_code = Some("NOT_DELIVERED".into());
            ended.ended_by = Some(Side::Provider);
            ended.updated_at = now;
            ended.expires_at = now;
            ended.applied.retain(|m| m != message_id);
            ended
        }
    };
    Ok(store.put(&next, Some(applied.version), now).await? == PutOutcome::Written)
}

// ---------------------------------------------------------------------------------------------
// In memory

/// For unit tests and the emulator's fast mode. Same conditions as the DynamoDB store.
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    items: Mutex<HashMap<String, CallSession>>,
}

impl MemorySessionStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored item regardless of expiry (tests).
    pub fn raw(&self, session_id: &str) -> Option<CallSession> {
        self.items
            .lock()
            .ok()
            .and_then(|m| m.get(session_id).cloned())
    }

    pub fn len(&self) -> usize {
        self.items.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, thiserror::Error)]
#[error("in-memory store lock poisoned")]
struct Poisoned;

impl SessionStore for MemorySessionStore {
    async fn get(&self, session_id: &str, now: i64) -> Result<Option<CallSession>, StoreError> {
        let items = self
            .items
            .lock()
            .map_err(|_| StoreError::Other(Box::new(Poisoned)))?;
        Ok(items
            .get(session_id)
            .filter(|s| !s.is_expired(now))
            .cloned())
    }

    async fn put(
        &self,
        session: &CallSession,
        expected_version: Option<u64>,
        now: i64,
    ) -> Result<PutOutcome, StoreError> {
        let mut items = self
            .items
            .lock()
            .map_err(|_| StoreError::Other(Box::new(Poisoned)))?;
        let existing = items.get(&session.session_id);
        let ok = match expected_version {
            None => existing.is_none_or(|s| s.is_expired(now)),
            Some(v) => existing.is_some_and(|s| s.version == v),
        };
        if !ok {
            return Ok(PutOutcome::Conflict);
        }
        items.insert(session.session_id.clone(), session.clone());
        Ok(PutOutcome::Written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SessionTtl;
    use crate::model::{
        CallParticipant, MessageKind, ParticipantId, ParticipantIdType, SdpDetails, SdpType,
        SignalingMessage,
    };

    fn offer() -> SignalingMessage {
        let mut m = SignalingMessage::bare(MessageKind::InitiateOutboundCall, "s-1");
        m.sdp = Some(SdpDetails {
            sdp_type: SdpType::Offer,
            value: "v=0".into(),
        });
        m.participants = vec![CallParticipant {
            id: ParticipantId {
                id_type: ParticipantIdType::PhoneNumber,
                value: "+15555550100".into(),
            },
            is_originator: Some(true),
        }];
        m
    }

    fn incoming<'a>(m: &'a SignalingMessage, from: Side, id: &'a str, now: i64) -> Incoming<'a> {
        Incoming {
            message: m,
            from,
            message_id: id,
            api_endpoint: Some("https://api.amazonalexa.com"),
            now,
            ttl: SessionTtl::default(),
        }
    }

    #[tokio::test]
    async fn record_applies_dedupes_and_rejects() {
        let store = MemorySessionStore::new();
        let m = offer();
        let r = record(&store, &incoming(&m, Side::Alexa, "r1", 100))
            .await
            .unwrap();
        assert!(matches!(r, Recorded::Applied { previous: None, .. }));
        let r = record(&store, &incoming(&m, Side::Alexa, "r1", 101))
            .await
            .unwrap();
        assert!(matches!(
            r,
            Recorded::Duplicate {
                delivered: false,
                ..
            }
        ));
        mark_delivered(&store, "s-1", "r1", 102).await.unwrap();
        let r = record(&store, &incoming(&m, Side::Alexa, "r1", 103))
            .await
            .unwrap();
        assert!(matches!(
            r,
            Recorded::Duplicate {
                delivered: true,
                ..
            }
        ));
        let upd = SignalingMessage::bare(MessageKind::CallUpdateAck, "s-1");
        let r = record(&store, &incoming(&upd, Side::Provider, "p1", 104))
            .await
            .unwrap();
        assert!(matches!(r, Recorded::Rejected(_)));
        assert_eq!(store.raw("s-1").unwrap().version, 2);
    }

    #[tokio::test]
    async fn expired_sessions_are_absent_and_can_be_recreated() {
        let store = MemorySessionStore::new();
        let m = offer();
        record(&store, &incoming(&m, Side::Alexa, "r1", 100))
            .await
            .unwrap();
        let later = 100 + SessionTtl::default().active.as_secs() as i64;
        assert!(store.get("s-1", later).await.unwrap().is_none());
        let ring = SignalingMessage::bare(MessageKind::CallRinging, "s-1");
        let r = record(&store, &incoming(&ring, Side::Provider, "p1", later))
            .await
            .unwrap();
        assert_eq!(r, Recorded::Rejected(Rejection::UnknownSession));
        let r = record(&store, &incoming(&m, Side::Alexa, "r2", later))
            .await
            .unwrap();
        assert!(matches!(r, Recorded::Applied { .. }));
    }
}
