//! Call-session storage: a small trait, an in-memory implementation for unit tests, the
//! DynamoDB implementation, and [`record`], the loop that applies a message with optimistic
//! concurrency (read, decide with the pure [`session::decide`], write conditionally, and on a
//! lost race read again).
//!
//! # DynamoDB item (table `SIGNALING_SESSIONS_TABLE`, key `session_id`, TTL `expires_at`)
//!
//! `session_id` S, `direction` S (`ALEXA_TO_PROVIDER`|`PROVIDER_TO_ALEXA`), `state` S
//! (`OFFERED`|`RINGING`|`IN_PROGRESS`|`ACCEPTED`|`UPDATING`|`ENDED`), `version` N,
//! `api_endpoint` S?, `participants` S (JSON), `last_update_by` S?, `renegotiation_type` S?,
//! `end_code` S?, `ended_by` S?, `last_message` S, `created_at` N, `updated_at` N,
//! `expires_at` N (epoch s), `applied` L (of S), `delivered` L (of S).
//!
//! Every write is a whole-item `PutItem` conditional on the version read (or, for a new session,
//! on no live item), so two concurrent invocations can never both apply a transition. TTL
//! deletion is lazy (it can lag by days), so readers treat `expires_at <= now` as absent.

use super::session::{self, Decision, IgnoreReason, Incoming, Rejection, Session};
use super::session::{CallDirection, CallState, Side};
use crate::store::StoreError;
use crate::store::dynamo::map_sdk_error;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

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
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Writes the whole session: with `expected_version = None` only if there is no live session
    /// with this id, else only if the stored version equals it.
    fn put(
        &self,
        session: &Session,
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
        previous: Option<Session>,
        session: Session,
    },
    Duplicate {
        session: Session,
        delivered: bool,
    },
    Ignored {
        state: CallState,
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
    let session_id = &incoming.message.session_id;
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let current = store.get(session_id, incoming.now).await?;
        match session::decide(current.as_ref(), incoming) {
            Decision::Apply(next) => {
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
            Decision::Duplicate { session, delivered } => {
                return Ok(Recorded::Duplicate { session, delivered });
            }
            Decision::Ignore { state, reason } => return Ok(Recorded::Ignored { state, reason }),
            Decision::Reject(r) => return Ok(Recorded::Rejected(r)),
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
/// or ends a session that the message created. Conditional on nothing newer having been
/// written; returns whether the undo was written.
pub async fn roll_back<S: SessionStore>(
    store: &S,
    applied: &Session,
    previous: Option<&Session>,
    message_id: &str,
    now: i64,
    ended_ttl_secs: i64,
) -> Result<bool, StoreError> {
    let next = match previous {
        Some(p) => applied.rolled_back_to(p, message_id, now),
        None => {
            let mut ended = applied.clone();
            ended.version = applied.version + 1;
            ended.state = CallState::Ended;
            ended.end_code = Some("NOT_DELIVERED".into());
            ended.ended_by = Some(Side::Provider);
            ended.updated_at = now;
            ended.expires_at = now.saturating_add(ended_ttl_secs);
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
    items: Mutex<HashMap<String, Session>>,
}

impl MemorySessionStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored item regardless of expiry (tests).
    pub fn raw(&self, session_id: &str) -> Option<Session> {
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
    async fn get(&self, session_id: &str, now: i64) -> Result<Option<Session>, StoreError> {
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
        session: &Session,
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

// ---------------------------------------------------------------------------------------------
// DynamoDB

pub mod attr {
    pub const SESSION_ID: &str = "session_id";
    pub const DIRECTION: &str = "direction";
    pub const STATE: &str = "state";
    pub const VERSION: &str = "version";
    pub const API_ENDPOINT: &str = "api_endpoint";
    pub const PARTICIPANTS: &str = "participants";
    pub const LAST_UPDATE_BY: &str = "last_update_by";
    pub const RENEGOTIATION_TYPE: &str = "renegotiation_type";
    pub const END_CODE: &str = "end_code";
    pub const ENDED_BY: &str = "ended_by";
    pub const LAST_MESSAGE: &str = "last_message";
    pub const CREATED_AT: &str = "created_at";
    pub const UPDATED_AT: &str = "updated_at";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const APPLIED: &str = "applied";
    pub const DELIVERED: &str = "delivered";
}

#[derive(Debug, Clone)]
pub struct DynamoSessionStore {
    client: Client,
    table: String,
}

impl DynamoSessionStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn list(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().map(|v| s(v.as_str())).collect())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn req_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    get_s(item, name)
        .ok_or_else(|| StoreError::Corrupt(format!("session attribute {name} missing")))
}

fn req_n(item: &Item, name: &str) -> Result<i64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| {
            StoreError::Corrupt(format!("session attribute {name} is not an integer"))
        }),
        _ => Err(StoreError::Corrupt(format!(
            "session attribute {name} missing"
        ))),
    }
}

fn get_list(item: &Item, name: &str) -> Vec<String> {
    match item.get(name) {
        Some(AttributeValue::L(values)) => values
            .iter()
            .filter_map(|v| match v {
                AttributeValue::S(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub fn session_to_item(session: &Session) -> Item {
    let mut item = Item::new();
    item.insert(attr::SESSION_ID.into(), s(&session.session_id));
    item.insert(attr::DIRECTION.into(), s(session.direction.as_str()));
    item.insert(attr::STATE.into(), s(session.state.as_str()));
    item.insert(attr::VERSION.into(), n(session.version));
    if let Some(e) = &session.api_endpoint {
        item.insert(attr::API_ENDPOINT.into(), s(e));
    }
    item.insert(
        attr::PARTICIPANTS.into(),
        s(serde_json::to_string(&session.participants).unwrap_or_else(|_| "[]".into())),
    );
    if let Some(by) = session.last_update_by {
        item.insert(attr::LAST_UPDATE_BY.into(), s(by.as_str()));
    }
    if let Some(r) = &session.renegotiation_type {
        item.insert(attr::RENEGOTIATION_TYPE.into(), s(r));
    }
    if let Some(c) = &session.end_code {
        item.insert(attr::END_CODE.into(), s(c));
    }
    if let Some(by) = session.ended_by {
        item.insert(attr::ENDED_BY.into(), s(by.as_str()));
    }
    item.insert(attr::LAST_MESSAGE.into(), s(&session.last_message));
    item.insert(attr::CREATED_AT.into(), n(session.created_at));
    item.insert(attr::UPDATED_AT.into(), n(session.updated_at));
    item.insert(attr::EXPIRES_AT.into(), n(session.expires_at));
    item.insert(attr::APPLIED.into(), list(&session.applied));
    item.insert(attr::DELIVERED.into(), list(&session.delivered));
    item
}

pub fn session_from_item(item: &Item) -> Result<Session, StoreError> {
    let corrupt =
        |what: &str| StoreError::Corrupt(format!("session attribute {what} has an unknown value"));
    let participants = match get_s(item, attr::PARTICIPANTS) {
        Some(json) => serde_json::from_str(json).map_err(|_| corrupt(attr::PARTICIPANTS))?,
        None => Vec::new(),
    };
    let side = |name: &str| -> Result<Option<Side>, StoreError> {
        get_s(item, name)
            .map(|v| Side::parse(v).ok_or_else(|| corrupt(name)))
            .transpose()
    };
    Ok(Session {
        session_id: req_s(item, attr::SESSION_ID)?.to_owned(),
        direction: CallDirection::parse(req_s(item, attr::DIRECTION)?)
            .ok_or_else(|| corrupt(attr::DIRECTION))?,
        state: CallState::parse(req_s(item, attr::STATE)?).ok_or_else(|| corrupt(attr::STATE))?,
        version: u64::try_from(req_n(item, attr::VERSION)?).map_err(|_| corrupt(attr::VERSION))?,
        api_endpoint: get_s(item, attr::API_ENDPOINT).map(str::to_owned),
        participants,
        last_update_by: side(attr::LAST_UPDATE_BY)?,
        renegotiation_type: get_s(item, attr::RENEGOTIATION_TYPE).map(str::to_owned),
        end_code: get_s(item, attr::END_CODE).map(str::to_owned),
        ended_by: side(attr::ENDED_BY)?,
        last_message: get_s(item, attr::LAST_MESSAGE)
            .unwrap_or_default()
            .to_owned(),
        created_at: req_n(item, attr::CREATED_AT)?,
        updated_at: req_n(item, attr::UPDATED_AT)?,
        expires_at: req_n(item, attr::EXPIRES_AT)?,
        applied: get_list(item, attr::APPLIED),
        delivered: get_list(item, attr::DELIVERED),
    })
}

impl SessionStore for DynamoSessionStore {
    async fn get(&self, session_id: &str, now: i64) -> Result<Option<Session>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::SESSION_ID, s(session_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(map_sdk_error)?;
        match out.item() {
            None => Ok(None),
            Some(item) => {
                let session = session_from_item(item)?;
                Ok((!session.is_expired(now)).then_some(session))
            }
        }
    }

    async fn put(
        &self,
        session: &Session,
        expected_version: Option<u64>,
        now: i64,
    ) -> Result<PutOutcome, StoreError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(session_to_item(session)));
        req = match expected_version {
            None => req
                .condition_expression("attribute_not_exists(#id) OR #exp <= :now")
                .expression_attribute_names("#id", attr::SESSION_ID)
                .expression_attribute_names("#exp", attr::EXPIRES_AT)
                .expression_attribute_values(":now", n(now)),
            Some(v) => req
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", attr::VERSION)
                .expression_attribute_values(":v", n(v)),
        };
        match req.send().await {
            Ok(_) => Ok(PutOutcome::Written),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(PutOutcome::Conflict)
            }
            Err(e) => Err(map_sdk_error(e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::alexa::config::SessionTtl;
    use crate::alexa::model::{
        MessageKind, Participant, ParticipantId, ParticipantIdType, SdpDetails, SdpType,
        SignalingMessage,
    };

    fn offer() -> SignalingMessage {
        let mut m = SignalingMessage::bare(MessageKind::InitiateOutboundCall, "s-1");
        m.sdp = Some(SdpDetails {
            sdp_type: SdpType::Offer,
            value: "v=0".into(),
        });
        m.participants = vec![Participant {
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

    #[test]
    fn item_round_trip() {
        let m = offer();
        let Decision::Apply(session) = session::decide(None, &incoming(&m, Side::Alexa, "r1", 5))
        else {
            panic!("not applied")
        };
        let item = session_to_item(&session);
        assert_eq!(session_from_item(&item).unwrap(), session);
        let mut bad = item.clone();
        bad.insert(attr::STATE.into(), s("FLYING"));
        assert!(matches!(
            session_from_item(&bad),
            Err(StoreError::Corrupt(_))
        ));
    }
}
