//! The DynamoDB implementation of `takeback_alexa::store::SessionStore`.
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

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use takeback_alexa::session::{CallDirection, CallSession, SessionState, Side};
use takeback_alexa::store::{PutOutcome, SessionStore};
use takeback_common::StoreError;

use crate::error::map_sdk_error;
use crate::item::{n, s};

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

pub fn session_to_item(session: &CallSession) -> Item {
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

pub fn session_from_item(item: &Item) -> Result<CallSession, StoreError> {
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
    Ok(CallSession {
        session_id: req_s(item, attr::SESSION_ID)?.to_owned(),
        direction: CallDirection::parse(req_s(item, attr::DIRECTION)?)
            .ok_or_else(|| corrupt(attr::DIRECTION))?,
        state: SessionState::parse(req_s(item, attr::STATE)?)
            .ok_or_else(|| corrupt(attr::STATE))?,
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
    async fn get(&self, session_id: &str, now: i64) -> Result<Option<CallSession>, StoreError> {
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
        session: &CallSession,
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
mod tests {
    use super::*;
    use takeback_alexa::config::SessionTtl;
    use takeback_alexa::model::{MessageKind, SdpDetails, SdpType, SignalingMessage};
    use takeback_alexa::session::{self, Incoming, SessionDecision};

    #[test]
    fn item_round_trip() {
        let mut m = SignalingMessage::bare(MessageKind::InitiateOutboundCall, "s-1");
        m.sdp = Some(SdpDetails {
            sdp_type: SdpType::Offer,
            value: "v=0".into(),
        });
        let incoming = Incoming {
            message: &m,
            from: Side::Alexa,
            message_id: "r1",
            api_endpoint: Some("https://api.amazonalexa.com"),
            now: 5,
            ttl: SessionTtl::default(),
        };
        let SessionDecision::Apply(session) = session::decide(None, &incoming) else {
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
