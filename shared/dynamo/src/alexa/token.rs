//! The DynamoDB implementation of `takeback_alexa::store::TokenStore`.
//!
//! # DynamoDB item (table `TOKENS_TABLE`, key `token_id`)
//!
//! `token_id` S (default `alexa-calling`, see `LWA_TOKEN_ID`), `access_token` S,
//! `refresh_token` S, `expires_at` N (epoch s of the access token), `version` N, `updated_at` N,
//! `grant_digest` S? (hex SHA-256 of the authorization code that linked the account, to answer a
//! re-delivered grant), `lease_owner` S? and `lease_until` N? (an execution environment is
//! refreshing; see `takeback_alexa::store::token`). Every write is a whole-item `PutItem`, a
//! refresh and a lease conditional on `version`, so exactly one environment takes a lease.
//! Tokens rest encrypted by DynamoDB's default encryption (use a customer-managed KMS key in the
//! template for more control); they are never logged.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use takeback_alexa::Secret;
use takeback_alexa::store::{PutOutcome, RefreshLease, StoredTokens, TokenStore};
use takeback_common::StoreError;

use crate::error::map_sdk_error;

pub mod attr {
    pub const TOKEN_ID: &str = "token_id";
    pub const ACCESS_TOKEN: &str = "access_token";
    pub const REFRESH_TOKEN: &str = "refresh_token";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const VERSION: &str = "version";
    pub const UPDATED_AT: &str = "updated_at";
    pub const GRANT_DIGEST: &str = "grant_digest";
    pub const LEASE_OWNER: &str = "lease_owner";
    pub const LEASE_UNTIL: &str = "lease_until";
}

#[derive(Debug, Clone)]
pub struct DynamoTokenStore {
    client: Client,
    table: String,
}

impl DynamoTokenStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn num(item: &HashMap<String, AttributeValue>, name: &str) -> Result<i64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("token attribute {name} is not an integer"))),
        _ => Err(StoreError::Corrupt(format!(
            "token attribute {name} missing"
        ))),
    }
}

fn string(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) if !v.is_empty() => Some(v.clone()),
        _ => None,
    }
}

impl TokenStore for DynamoTokenStore {
    async fn get(&self, token_id: &str) -> Result<Option<StoredTokens>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::TOKEN_ID, AttributeValue::S(token_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(map_sdk_error)?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        Ok(Some(StoredTokens {
            access_token: Secret::new(string(item, attr::ACCESS_TOKEN).ok_or_else(|| {
                StoreError::Corrupt("token attribute access_token missing".into())
            })?),
            refresh_token: string(item, attr::REFRESH_TOKEN).map(Secret::new),
            expires_at: num(item, attr::EXPIRES_AT)?,
            version: u64::try_from(num(item, attr::VERSION)?)
                .map_err(|_| StoreError::Corrupt("token version is negative".into()))?,
            updated_at: num(item, attr::UPDATED_AT).unwrap_or(0),
            grant_digest: string(item, attr::GRANT_DIGEST),
            lease: match (
                string(item, attr::LEASE_OWNER),
                item.contains_key(attr::LEASE_UNTIL),
            ) {
                (Some(owner), true) => Some(RefreshLease {
                    owner,
                    until: num(item, attr::LEASE_UNTIL)?,
                }),
                _ => None,
            },
        }))
    }

    async fn put(
        &self,
        token_id: &str,
        tokens: &StoredTokens,
        expected_version: Option<u64>,
    ) -> Result<PutOutcome, StoreError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(attr::TOKEN_ID, AttributeValue::S(token_id.to_owned()))
            .item(
                attr::ACCESS_TOKEN,
                AttributeValue::S(tokens.access_token.expose().to_owned()),
            )
            .item(
                attr::EXPIRES_AT,
                AttributeValue::N(tokens.expires_at.to_string()),
            )
            .item(attr::VERSION, AttributeValue::N(tokens.version.to_string()))
            .item(
                attr::UPDATED_AT,
                AttributeValue::N(tokens.updated_at.to_string()),
            );
        if let Some(r) = &tokens.refresh_token {
            req = req.item(
                attr::REFRESH_TOKEN,
                AttributeValue::S(r.expose().to_owned()),
            );
        }
        if let Some(d) = &tokens.grant_digest {
            req = req.item(attr::GRANT_DIGEST, AttributeValue::S(d.clone()));
        }
        if let Some(l) = &tokens.lease {
            req = req
                .item(attr::LEASE_OWNER, AttributeValue::S(l.owner.clone()))
                .item(attr::LEASE_UNTIL, AttributeValue::N(l.until.to_string()));
        }
        if let Some(v) = expected_version {
            req = req
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", attr::VERSION)
                .expression_attribute_values(":v", AttributeValue::N(v.to_string()));
        }
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
