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
use takeback_alexa::Secret;
use takeback_alexa::config::LwaSettings;
use takeback_alexa::now_epoch_seconds;
use takeback_alexa::store::PutOutcome;
use takeback_alexa::store::{StoredTokens, TokenStore};
use takeback_common::StoreError;
use tracing::{debug, info, warn};

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
}

impl LwaClient {
    pub fn new(http: HttpClient, settings: LwaSettings) -> Self {
        Self { http, settings }
    }

    pub fn settings(&self) -> &LwaSettings {
        &self.settings
    }

    /// Exchanges an account-linking authorization code (single use: not retried).
    pub async fn exchange_code(&self, code: &Secret) -> Result<TokenGrant, LwaError> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code.expose()),
        ])
        .await
    }

    /// Gets a new access token; retried once on a transport error or 5xx.
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<TokenGrant, LwaError> {
        let pairs = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ];
        match self.token_request(&pairs).await {
            Err(e) if e.is_transient() => {
                warn!(error = %e, "LWA refresh failed, retrying once");
                tokio::time::sleep(Duration::from_millis(200)).await;
                self.token_request(&pairs).await
            }
            other => other,
        }
    }

    async fn token_request(&self, pairs: &[(&str, &str)]) -> Result<TokenGrant, LwaError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            form.append_pair(k, v);
        }
        form.append_pair("client_id", &self.settings.client_id);
        form.append_pair("client_secret", self.settings.client_secret.expose());
        let body = Bytes::from(form.finish());
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
                self.settings.timeout,
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
/// `refresh_margin` before it expires. One refresh at a time per instance: concurrent callers
/// wait on the same lock and then find the fresh token (refreshes are coalesced).
pub struct AccessTokenProvider<T> {
    store: Arc<T>,
    lwa: LwaClient,
    cache: tokio::sync::Mutex<Cache>,
}

impl<T> std::fmt::Debug for AccessTokenProvider<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenProvider")
            .field("token_id", &self.lwa.settings.token_id)
            .finish_non_exhaustive()
    }
}

impl<T: TokenStore> AccessTokenProvider<T> {
    pub fn new(store: Arc<T>, lwa: LwaClient) -> Self {
        Self {
            store,
            lwa,
            cache: tokio::sync::Mutex::new(Cache::default()),
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

    fn is_fresh(&self, expires_at: i64, now: i64) -> bool {
        let margin = self.lwa.settings.refresh_margin.as_secs() as i64;
        expires_at.saturating_sub(margin) > now
    }

    /// A valid access token, refreshing it if it expires within the margin.
    pub async fn access_token(&self) -> Result<Secret, TokenError> {
        let mut cache = self.cache.lock().await;
        let now = now_epoch_seconds();
        if let Some(c) = &cache.current
            && self.is_fresh(c.expires_at, now)
            && cache.rejected.as_ref() != Some(&c.token)
        {
            return Ok(c.token.clone());
        }

        let stored = self
            .store
            .get(self.token_id())
            .await
            .map_err(TokenError::Store)?
            .ok_or_else(|| TokenError::NotLinked(self.token_id().to_owned()))?;
        if self.is_fresh(stored.expires_at, now)
            && cache.rejected.as_ref() != Some(&stored.access_token)
        {
            debug!("using the stored LWA access token");
            cache.current = Some(CachedToken {
                token: stored.access_token.clone(),
                expires_at: stored.expires_at,
            });
            return Ok(stored.access_token);
        }

        let refresh_token = stored
            .refresh_token
            .clone()
            .ok_or(TokenError::NoRefreshToken)?;
        let grant = self.lwa.refresh(&refresh_token).await.map_err(|e| {
            if e.is_invalid_grant() {
                TokenError::Revoked(e)
            } else {
                TokenError::Lwa(e)
            }
        })?;
        let now = now_epoch_seconds();
        let next = StoredTokens {
            access_token: grant.access_token,
            // LWA may omit the refresh token on refresh: keep the one we have.
            refresh_token: grant.refresh_token.or(Some(refresh_token)),
            expires_at: now.saturating_add(grant.expires_in),
            version: stored.version + 1,
            updated_at: now,
        };
        let chosen = match self
            .store
            .put(self.token_id(), &next, Some(stored.version))
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
                // Another instance refreshed (or the account was re-linked) meanwhile: adopt the
                // stored tokens if usable, else keep the valid token in hand.
                match self
                    .store
                    .get(self.token_id())
                    .await
                    .map_err(TokenError::Store)?
                {
                    Some(t) if self.is_fresh(t.expires_at, now) => {
                        info!("another instance refreshed the LWA token first; using its token");
                        t
                    }
                    _ => next,
                }
            }
        };
        cache.rejected = None;
        cache.current = Some(CachedToken {
            token: chosen.access_token.clone(),
            expires_at: chosen.expires_at,
        });
        Ok(chosen.access_token)
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
    pub async fn link(
        &self,
        grant_type: Option<&str>,
        code: Option<&Secret>,
    ) -> Result<(), LinkError> {
        if let Some(t) = grant_type
            && t != "OAuth2.AuthorizationCode"
        {
            return Err(LinkError::UnsupportedGrant(t.to_owned()));
        }
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or(LinkError::MissingCode)?;
        let grant = self.lwa.exchange_code(code).await.map_err(LinkError::Lwa)?;
        let now = now_epoch_seconds();
        let version = self
            .store
            .get(self.token_id())
            .await
            .map_err(LinkError::Store)?
            .map_or(1, |t| t.version + 1);
        if grant.refresh_token.is_none() {
            warn!("LWA answered the code exchange without a refresh token");
        }
        let tokens = StoredTokens {
            access_token: grant.access_token,
            refresh_token: grant.refresh_token,
            expires_at: now.saturating_add(grant.expires_in),
            version,
            updated_at: now,
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
