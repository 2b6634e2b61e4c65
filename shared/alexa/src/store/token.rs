//! Storage of the Login with Amazon tokens from account linking: the port ([`TokenStore`]) and
//! an in-memory implementation; the DynamoDB one is in `takeback-dynamo`.
//!
//! Account linking replaces the tokens unconditionally (the newest grant wins); a refresh writes
//! conditionally on the version it read, so when two instances refresh at once one write wins
//! and the other instance adopts the stored result instead of overwriting it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use takeback_common::StoreError;

use super::PutOutcome;
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// Epoch seconds at which the access token expires.
    pub expires_at: i64,
    pub version: u64,
    pub updated_at: i64,
}

pub trait TokenStore: Send + Sync {
    fn get(
        &self,
        token_id: &str,
    ) -> impl Future<Output = Result<Option<StoredTokens>, StoreError>> + Send;

    /// `expected_version = None` writes unconditionally (account linking); `Some(v)` only if the
    /// stored version is `v` (refresh).
    fn put(
        &self,
        token_id: &str,
        tokens: &StoredTokens,
        expected_version: Option<u64>,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;
}

#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    items: Mutex<HashMap<String, StoredTokens>>,
}

#[derive(Debug, thiserror::Error)]
#[error("in-memory token store lock poisoned")]
struct Poisoned;

impl MemoryTokenStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl TokenStore for MemoryTokenStore {
    async fn get(&self, token_id: &str) -> Result<Option<StoredTokens>, StoreError> {
        let items = self
            .items
            .lock()
            .map_err(|_| StoreError::Other(Box::new(Poisoned)))?;
        Ok(items.get(token_id).cloned())
    }

    async fn put(
        &self,
        token_id: &str,
        tokens: &StoredTokens,
        expected_version: Option<u64>,
    ) -> Result<PutOutcome, StoreError> {
        let mut items = self
            .items
            .lock()
            .map_err(|_| StoreError::Other(Box::new(Poisoned)))?;
        if let Some(v) = expected_version
            && items.get(token_id).map(|t| t.version) != Some(v)
        {
            return Ok(PutOutcome::Conflict);
        }
        items.insert(token_id.to_owned(), tokens.clone());
        Ok(PutOutcome::Written)
    }
}
