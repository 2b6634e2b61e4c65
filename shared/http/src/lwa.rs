//! Login with Amazon: exchanging the account-linking code, refreshing, and a cached access-token
//! provider for the signaling endpoint.
//!
//! `POST {LWA_TOKEN_URL}` form-encoded (`grant_type=authorization_code&code=…` or
//! `grant_type=refresh_token&refresh_token=…`, plus `client_id` and `client_secret`); the answer
//! is `{"access_token","token_type","expires_in","refresh_token"}` or an OAuth2 error
//! `{"error":"invalid_grant","error_description":…}`. Codes are single-use, so a code exchange is
//! never retried; a refresh is retried once on a transport error or 5xx.

use crate::client::{HttpClient, HttpError};
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use takeback_alexa::budget::{Deadline, TOKEN_LEASE_WAIT, TOKEN_POLL_INTERVAL};
use takeback_alexa::config::LwaSettings;
use takeback_alexa::now_epoch_seconds;
use takeback_alexa::store::PutOutcome;
use takeback_alexa::store::token::{TokenPlan, plan};
use takeback_alexa::store::{StoredTokens, TokenStore};
use takeback_alexa::{Secret, SecretSource};
use takeback_common::StoreError;
use tracing::{debug, info, warn};

/// Pause before the one retry of a refresh.
const REFRESH_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Used when LWA omits `expires_in` (its documented lifetime is one hour).
pub const DEFAULT_EXPIRES_IN_SECS: i64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum LwaError {
    #[error("LWA refused the request: {error} (HTTP {status}){}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OAuth {
        status: u16,
        error: String,
        description: Option<String>,
    },
    #[error("LWA answered HTTP {status}")]
    Status { status: u16 },
    #[error("could not reach LWA")]
    Http(#[source] HttpError),
    #[error("LWA's answer could not be read: {0}")]
    Decode(String),
}

impl LwaError {
    /// The code or refresh token is invalid, expired, used or revoked.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, LwaError::OAuth { error, .. } if error == "invalid_grant")
    }

    /// LWA did not accept the client id and secret (`invalid_client`, or a bare 401).
    pub fn is_invalid_client(&self) -> bool {
        match self {
            LwaError::OAuth { error, status, .. } => error == "invalid_client" || *status == 401,
            LwaError::Status { status } => *status == 401,
            _ => false,
        }
    }

    fn is_transient(&self) -> bool {
        match self {
            LwaError::Http(_) => true,
            LwaError::Status { status } | LwaError::OAuth { status, .. } => *status >= 500,
            LwaError::Decode(_) => false,
        }
    }
}

/// A successful token answer.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_in: i64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Secret,
    #[serde(default)]
    refresh_token: Option<Secret>,
    #[serde(default)]
    expires_in: Option<i64>,
}

#[derive(Deserialize)]
struct OAuthErrorAnswer {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LwaClient {
    http: HttpClient,
    settings: LwaSettings,
    /// The client secret sent: `settings.client_secret` unless [`Self::with_client_secret`].
    client_secret: Arc<dyn SecretSource>,
}

impl LwaClient {
    pub fn new(http: HttpClient, settings: LwaSettings) -> Self {
        let client_secret = Arc::new(settings.client_secret.clone());
        Self {
            http,
            settings,
            client_secret,
        }
    }

    /// Takes the client secret from `source` (rotation at run time): when LWA answers
    /// `invalid_client`, the source is told and the request is sent once more if it offers a
    /// different secret.
    pub fn with_client_secret(mut self, source: Arc<dyn SecretSource>) -> Self {
        self.client_secret = source;
        self
    }

    pub fn settings(&self) -> &LwaSettings {
        &self.settings
    }

    /// Exchanges an account-linking authorization code (single use: not retried).
    pub async fn exchange_code(
        &self,
        code: &Secret,
        deadline: Deadline,
    ) -> Result<TokenGrant, LwaError> {
        self.token_request(
            &[
                ("grant_type", "authorization_code"),
                ("code", code.expose()),
            ],
            deadline,
        )
        .await
    }

    /// Gets a new access token; retried once on a transport error or 5xx if the deadline
    /// leaves time for it.
    pub async fn refresh(
        &self,
        refresh_token: &Secret,
        deadline: Deadline,
    ) -> Result<TokenGrant, LwaError> {
        let pairs = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ];
        match self.token_request(&pairs, deadline).await {
            Err(e) if e.is_transient() && deadline.allows(REFRESH_RETRY_PAUSE) => {
                warn!(error = %e, "LWA refresh failed, retrying once");
                tokio::time::sleep(REFRESH_RETRY_PAUSE).await;
                self.token_request(&pairs, deadline).await
            }
            other => other,
        }
    }

    async fn token_request(
        &self,
        pairs: &[(&str, &str)],
        deadline: Deadline,
    ) -> Result<TokenGrant, LwaError> {
        let secret = self.client_secret.current();
        match self.token_request_with(pairs, &secret, deadline).await {
            // LWA checks the client before the grant, so a refused client consumed no code.
            Err(e) if e.is_invalid_client() => {
                let fresher = tokio::time::timeout_at(
                    tokio::time::Instant::from_std(deadline.instant()),
                    self.client_secret.refused(&secret),
                )
                .await
                .ok()
                .flatten();
                match fresher {
                    Some(fresher) => {
                        warn!("LWA refused the client secret; retrying with the rotated one");
                        self.token_request_with(pairs, &fresher, deadline).await
                    }
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    async fn token_request_with(
        &self,
        pairs: &[(&str, &str)],
        client_secret: &Secret,
        deadline: Deadline,
    ) -> Result<TokenGrant, LwaError> {
        // In its own block: the serializer is not `Send` and must not live across an await.
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                form.append_pair(k, v);
            }
            form.append_pair("client_id", &self.settings.client_id);
            form.append_pair("client_secret", client_secret.expose());
            Bytes::from(form.finish())
        };
        let headers: [(HeaderName, HeaderValue); 2] = [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded;charset=UTF-8"),
            ),
            (ACCEPT, HeaderValue::from_static("application/json")),
        ];
        let response = self
            .http
            .post(
                &self.settings.token_url,
                &headers,
                body,
                deadline.cap(self.settings.timeout),
            )
            .await
            .map_err(LwaError::Http)?;
        let status = response.status.as_u16();
        if response.status.is_success() {
            // Never include the body in an error: it holds the tokens.
            let answer: TokenAnswer = serde_json::from_slice(&response.body).map_err(|e| {
                LwaError::Decode(format!("line {} column {}", e.line(), e.column()))
            })?;
            if answer.access_token.is_empty() {
                return Err(LwaError::Decode("empty access_token".into()));
            }
            return Ok(TokenGrant {
                access_token: answer.access_token,
                refresh_token: answer.refresh_token.filter(|r| !r.is_empty()),
                expires_in: answer
                    .expires_in
                    .filter(|e| *e > 0)
                    .unwrap_or(DEFAULT_EXPIRES_IN_SECS),
            });
        }
        match serde_json::from_slice::<OAuthErrorAnswer>(&response.body) {
            Ok(OAuthErrorAnswer {
                error: Some(error),
                error_description,
            }) => Err(LwaError::OAuth {
                status,
                error,
                description: error_description,
            }),
            _ => Err(LwaError::Status { status }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no LWA tokens stored under {0:?}: link the account (enable the skill) first")]
    NotLinked(String),
    #[error("LWA refused the stored refresh token, re-link the account: {0}")]
    Revoked(#[source] LwaError),
    #[error("the stored tokens hold no refresh token")]
    NoRefreshToken,
    #[error("LWA refresh failed: {0}")]
    Lwa(#[source] LwaError),
    #[error(
        "another execution environment is refreshing the LWA token and the new one did not arrive in time"
    )]
    RefreshInProgress,
    #[error("token store failed")]
    Store(#[source] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the grant holds no authorization code")]
    MissingCode,
    #[error("unsupported grant type {0:?}")]
    UnsupportedGrant(String),
    #[error("LWA code exchange failed: {0}")]
    Lwa(#[source] LwaError),
    #[error("storing the tokens failed")]
    Store(#[source] StoreError),
}

struct CachedToken {
    token: Secret,
    expires_at: i64,
}

#[derive(Default)]
struct Cache {
    current: Option<CachedToken>,
    /// A token Alexa answered 401 to: never handed out again, even if the store still has it.
    rejected: Option<Secret>,
}

/// The access token for Alexa's APIs: cached in memory, read from the token store, refreshed
/// `refresh_margin` before it expires. Inside one process concurrent callers wait on one lock;
/// across execution environments the token record's lease decides who refreshes
/// (`takeback_alexa::store::token`): the others use the current token while it is valid or wait
/// briefly for the new one.
pub struct AccessTokenProvider<T> {
    store: Arc<T>,
    lwa: LwaClient,
    cache: tokio::sync::Mutex<Cache>,
    /// Names this environment in the leases it takes.
    owner: String,
}

impl<T> std::fmt::Debug for AccessTokenProvider<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenProvider")
            .field("token_id", &self.lwa.settings.token_id)
            .finish_non_exhaustive()
    }
}

/// A random id per provider (one per execution environment), without a random-number crate.
fn environment_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("env-{:016x}", h.finish())
}

/// Hex SHA-256 of an authorization code: what the token record keeps to recognise a
/// re-delivered grant (the code itself is never stored).
pub fn grant_digest(code: &Secret) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(code.expose().as_bytes()))
}

impl<T: TokenStore> AccessTokenProvider<T> {
    pub fn new(store: Arc<T>, lwa: LwaClient) -> Self {
        Self {
            store,
            lwa,
            cache: tokio::sync::Mutex::new(Cache::default()),
            owner: environment_id(),
        }
    }

    pub fn lwa(&self) -> &LwaClient {
        &self.lwa
    }

    pub fn store(&self) -> &Arc<T> {
        &self.store
    }

    fn token_id(&self) -> &str {
        &self.lwa.settings.token_id
    }

    fn margin(&self) -> i64 {
        self.lwa.settings.refresh_margin.as_secs() as i64
    }

    /// How long a lease lasts: a refresh with its one retry, plus a second.
    fn lease_secs(&self) -> i64 {
        let worst = self.lwa.settings.timeout * 2 + REFRESH_RETRY_PAUSE + Duration::from_secs(1);
        worst.as_secs_f64().ceil() as i64
    }

    /// A valid access token, for callers without an invocation deadline: allows
    /// [`TOKEN_LEASE_WAIT`] plus two LWA timeouts.
    pub async fn access_token(&self) -> Result<Secret, TokenError> {
        self.access_token_by(Deadline::after(
            TOKEN_LEASE_WAIT + self.lwa.settings.timeout * 2,
        ))
        .await
    }

    /// A valid access token by `deadline`, refreshing it if it expires within the margin (or
    /// waiting for the environment that refreshes it).
    pub async fn access_token_by(&self, deadline: Deadline) -> Result<Secret, TokenError> {
        let mut cache = self.cache.lock().await;
        let now = now_epoch_seconds();
        if let Some(c) = &cache.current
            && c.expires_at.saturating_sub(self.margin()) > now
            && cache.rejected.as_ref() != Some(&c.token)
        {
            return Ok(c.token.clone());
        }
        let wait_until = Deadline::at(
            deadline
                .instant()
                .min(std::time::Instant::now() + TOKEN_LEASE_WAIT),
        );
        loop {
            let now = now_epoch_seconds();
            let stored = self
                .store
                .get(self.token_id())
                .await
                .map_err(TokenError::Store)?
                .ok_or_else(|| TokenError::NotLinked(self.token_id().to_owned()))?;
            match plan(&stored, now, self.margin(), cache.rejected.as_ref()) {
                TokenPlan::Use => {
                    debug!("using the stored LWA access token");
                    return Ok(remember(&mut cache, &stored));
                }
                TokenPlan::UseWhileRefreshing => {
                    info!(
                        "another execution environment is refreshing the LWA token; using the current one meanwhile"
                    );
                    return Ok(stored.access_token);
                }
                TokenPlan::Wait => {
                    if wait_until.is_past() {
                        warn!("gave up waiting for another environment's LWA token refresh");
                        return Err(TokenError::RefreshInProgress);
                    }
                    debug!("waiting for another environment's LWA token refresh");
                    tokio::time::sleep(wait_until.cap(TOKEN_POLL_INTERVAL)).await;
                }
                TokenPlan::TakeLease => {
                    let leased = stored.leased(self.owner.clone(), now + self.lease_secs());
                    match self
                        .store
                        .put(self.token_id(), &leased, Some(stored.version))
                        .await
                        .map_err(TokenError::Store)?
                    {
                        PutOutcome::Written => {
                            return self.refresh_holding(&mut cache, leased, deadline).await;
                        }
                        // Another environment wrote first (a lease, a refresh, a re-link): read
                        // again and decide again.
                        PutOutcome::Conflict => continue,
                    }
                }
            }
        }
    }

    /// Refreshes while holding the lease written as `leased`.
    async fn refresh_holding(
        &self,
        cache: &mut Cache,
        leased: StoredTokens,
        deadline: Deadline,
    ) -> Result<Secret, TokenError> {
        let refresh_token = match leased.refresh_token.clone() {
            Some(r) => r,
            None => {
                self.release(&leased).await;
                return Err(TokenError::NoRefreshToken);
            }
        };
        let grant = match self.lwa.refresh(&refresh_token, deadline).await {
            Ok(g) => g,
            Err(e) => {
                self.release(&leased).await;
                return Err(if e.is_invalid_grant() {
                    TokenError::Revoked(e)
                } else {
                    TokenError::Lwa(e)
                });
            }
        };
        let now = now_epoch_seconds();
        let next = StoredTokens {
            access_token: grant.access_token,
            // LWA may omit the refresh token on refresh: keep the one we have.
            refresh_token: grant.refresh_token.or(Some(refresh_token)),
            expires_at: now.saturating_add(grant.expires_in),
            version: leased.version + 1,
            updated_at: now,
            grant_digest: leased.grant_digest.clone(),
            lease: None,
        };
        let chosen = match self
            .store
            .put(self.token_id(), &next, Some(leased.version))
            .await
            .map_err(TokenError::Store)?
        {
            PutOutcome::Written => {
                info!(
                    expires_in = grant.expires_in,
                    "refreshed the LWA access token"
                );
                next
            }
            PutOutcome::Conflict => {
                // The account was re-linked (or our lease expired and another environment
                // refreshed) meanwhile: adopt the stored tokens if usable, else keep the valid
                // token in hand.
                match self
                    .store
                    .get(self.token_id())
                    .await
                    .map_err(TokenError::Store)?
                {
                    Some(t) if plan(&t, now, self.margin(), None) == TokenPlan::Use => {
                        info!(
                            "the LWA token record changed during the refresh; using the stored token"
                        );
                        t
                    }
                    _ => next,
                }
            }
        };
        cache.rejected = None;
        Ok(remember(cache, &chosen))
    }

    /// Gives the lease up after a failed refresh, so the next environment need not wait for it
    /// to expire. Best effort.
    async fn release(&self, leased: &StoredTokens) {
        let released = StoredTokens {
            version: leased.version + 1,
            lease: None,
            ..leased.clone()
        };
        if let Err(e) = self
            .store
            .put(self.token_id(), &released, Some(leased.version))
            .await
        {
            warn!(error = %e, "could not release the token refresh lease; it expires on its own");
        }
    }

    /// Alexa answered 401 to `token`: the next [`access_token`](Self::access_token) refreshes.
    pub async fn invalidate(&self, token: &Secret) {
        let mut cache = self.cache.lock().await;
        if cache.current.as_ref().is_some_and(|c| &c.token == token) {
            cache.current = None;
        }
        cache.rejected = Some(token.clone());
    }

    /// Forgets the cached token (after account linking stored new ones).
    pub async fn reset(&self) {
        *self.cache.lock().await = Cache::default();
    }

    /// Account linking: exchanges `code` and stores the tokens, replacing earlier ones.
    ///
    /// Idempotent per code: Alexa re-delivers a `Grant`/`AcceptGrant` it got no answer to, and
    /// an authorization code is single-use (RFC 6749 §4.1.2: the client must not use it more
    /// than once; LWA answers a second exchange with `invalid_grant`), so a grant whose code
    /// already linked the stored tokens is answered as done without asking LWA again.
    pub async fn link(
        &self,
        grant_type: Option<&str>,
        code: Option<&Secret>,
        deadline: Deadline,
    ) -> Result<(), LinkError> {
        if let Some(t) = grant_type
            && t != "OAuth2.AuthorizationCode"
        {
            return Err(LinkError::UnsupportedGrant(t.to_owned()));
        }
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or(LinkError::MissingCode)?;
        let digest = grant_digest(code);
        let existing = self
            .store
            .get(self.token_id())
            .await
            .map_err(LinkError::Store)?;
        if existing
            .as_ref()
            .is_some_and(|t| t.grant_digest.as_deref() == Some(digest.as_str()))
        {
            info!("re-delivered grant: this code already linked the account");
            return Ok(());
        }
        let grant = self
            .lwa
            .exchange_code(code, deadline)
            .await
            .map_err(LinkError::Lwa)?;
        let now = now_epoch_seconds();
        let version = existing.map_or(1, |t| t.version + 1);
        if grant.refresh_token.is_none() {
            warn!("LWA answered the code exchange without a refresh token");
        }
        let tokens = StoredTokens {
            access_token: grant.access_token,
            refresh_token: grant.refresh_token,
            expires_at: now.saturating_add(grant.expires_in),
            version,
            updated_at: now,
            grant_digest: Some(digest),
            lease: None,
        };
        self.store
            .put(self.token_id(), &tokens, None)
            .await
            .map_err(LinkError::Store)?;
        self.reset().await;
        info!(
            expires_in = grant.expires_in,
            "account linked: LWA tokens stored"
        );
        Ok(())
    }
}

fn remember(cache: &mut Cache, tokens: &StoredTokens) -> Secret {
    cache.current = Some(CachedToken {
        token: tokens.access_token.clone(),
        expires_at: tokens.expires_at,
    });
    tokens.access_token.clone()
}
