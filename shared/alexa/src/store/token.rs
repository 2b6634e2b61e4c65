//! Storage of the Login with Amazon tokens from account linking: the port ([`TokenStore`]), an
//! in-memory implementation, and the pure decision of what an execution environment does with
//! the record it read ([`plan`]); the DynamoDB store is in `takeback-dynamo`.
//!
//! Account linking replaces the tokens unconditionally (the newest grant wins). A refresh is
//! coalesced across execution environments, not only inside one process (Lambda runs one request
//! per environment, so concurrent requests are concurrent environments): the environment that
//! finds the access token due for refresh first takes a *lease* on the record — a write of the
//! same tokens with a [`RefreshLease`] at the next version, conditional on the version it read,
//! so exactly one environment wins. The winner refreshes and writes the new tokens (lease
//! cleared) conditional on its lease's version. The others see the live lease and keep using the
//! current access token while it is still valid ([`TokenPlan::UseWhileRefreshing`]), or, when it
//! has expired or Alexa refused it, re-read the record for a short while until the new token is
//! there ([`TokenPlan::Wait`]). A lease that outlives its holder (a timed-out invocation) expires
//! and the next environment takes it over.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use takeback_common::StoreError;

use super::PutOutcome;
use crate::secret::Secret;

/// An access token with less than this left is not handed out while another environment
/// refreshes: it must outlast the request it is used for.
pub const MIN_REMAINING_VALIDITY_SECS: i64 = 30;

/// "An environment is refreshing these tokens until `until`."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshLease {
    /// Who holds it (for logs and tests; the version condition does the exclusion).
    pub owner: String,
    /// Epoch seconds after which the lease may be taken over.
    pub until: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// Epoch seconds at which the access token expires.
    pub expires_at: i64,
    pub version: u64,
    pub updated_at: i64,
    /// Hex SHA-256 of the authorization code these tokens were linked with, so that a
    /// re-delivered grant (the code is single-use at LWA) is recognised as done.
    pub grant_digest: Option<String>,
    /// A refresh in progress in some execution environment.
    pub lease: Option<RefreshLease>,
}

impl StoredTokens {
    /// The same tokens with `lease`, at the next version (write it conditional on this one).
    pub fn leased(&self, owner: impl Into<String>, until: i64) -> Self {
        Self {
            version: self.version + 1,
            lease: Some(RefreshLease {
                owner: owner.into(),
                until,
            }),
            ..self.clone()
        }
    }

    /// Whether someone holds a lease that has not expired at `now`.
    pub fn is_leased(&self, now: i64) -> bool {
        self.lease.as_ref().is_some_and(|l| l.until > now)
    }
}

/// What an environment does with the token record it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPlan {
    /// The access token is fresh (beyond the refresh margin): use it.
    Use,
    /// Due for refresh and nobody refreshes: take the lease, then refresh.
    TakeLease,
    /// Another environment refreshes; the current token is still valid: use it meanwhile.
    UseWhileRefreshing,
    /// Another environment refreshes and the current token cannot be used (expired, or Alexa
    /// refused it): re-read the record shortly.
    Wait,
}

/// Decides what to do with `stored` at `now`; `rejected` is a token Alexa answered 401 to.
pub fn plan(
    stored: &StoredTokens,
    now: i64,
    refresh_margin_secs: i64,
    rejected: Option<&Secret>,
) -> TokenPlan {
    let usable = rejected != Some(&stored.access_token);
    if usable && stored.expires_at.saturating_sub(refresh_margin_secs) > now {
        return TokenPlan::Use;
    }
    if !stored.is_leased(now) {
        return TokenPlan::TakeLease;
    }
    if usable && stored.expires_at > now.saturating_add(MIN_REMAINING_VALIDITY_SECS) {
        TokenPlan::UseWhileRefreshing
    } else {
        TokenPlan::Wait
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(expires_at: i64, lease_until: Option<i64>) -> StoredTokens {
        StoredTokens {
            access_token: Secret::new("Atza|a"),
            refresh_token: Some(Secret::new("Atzr|r")),
            expires_at,
            version: 3,
            updated_at: 0,
            grant_digest: None,
            lease: lease_until.map(|until| RefreshLease {
                owner: "other".into(),
                until,
            }),
        }
    }

    #[test]
    fn one_environment_refreshes_the_others_use_or_wait() {
        let now = 10_000;
        // fresh
        assert_eq!(
            plan(&tokens(now + 3600, None), now, 300, None),
            TokenPlan::Use
        );
        // due, nobody refreshing
        assert_eq!(
            plan(&tokens(now + 200, None), now, 300, None),
            TokenPlan::TakeLease
        );
        // due, someone refreshing, still valid: keep using it
        assert_eq!(
            plan(&tokens(now + 200, Some(now + 5)), now, 300, None),
            TokenPlan::UseWhileRefreshing
        );
        // expired (or nearly), someone refreshing: wait
        assert_eq!(
            plan(&tokens(now + 10, Some(now + 5)), now, 300, None),
            TokenPlan::Wait
        );
        // refused by Alexa, someone refreshing: wait even though it has not expired
        let t = tokens(now + 3600, Some(now + 5));
        assert_eq!(plan(&t, now, 300, Some(&t.access_token)), TokenPlan::Wait);
        // refused, nobody refreshing: refresh
        let t = tokens(now + 3600, None);
        assert_eq!(
            plan(&t, now, 300, Some(&t.access_token)),
            TokenPlan::TakeLease
        );
        // an expired lease is taken over
        assert_eq!(
            plan(&tokens(now - 1, Some(now)), now, 300, None),
            TokenPlan::TakeLease
        );
    }

    #[test]
    fn a_lease_is_a_new_version_of_the_same_tokens() {
        let t = tokens(100, None);
        let l = t.leased("me", 50);
        assert_eq!(l.version, t.version + 1);
        assert_eq!(l.access_token, t.access_token);
        assert!(l.is_leased(49) && !l.is_leased(50));
    }
}
