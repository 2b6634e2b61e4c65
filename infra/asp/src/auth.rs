//! Login with Amazon tokens, one per scope group, cached for the run. The PBX scope uses the
//! client-credentials grant; the management and service-provider scopes use the refresh-token
//! grant of the ASP operator's consent. Tokens and secrets are [`Secret`]s: never printed.

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http::{Outgoing, Secret, Transport, TransportError};
use crate::retry::{RetryPolicy, retry_delay};

pub const DEFAULT_LWA_URL: &str = "https://api.amazon.com/auth/o2/token";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// SIP trunks and extensions.
    SipTrunk,
    /// Communication profiles, address books, skill enablement.
    Management,
    /// Service providers, network mappings, account associations.
    ServiceProvider,
}

impl Scope {
    pub fn lwa_scope(self) -> &'static str {
        match self {
            Scope::SipTrunk => "amazon_communication::network:siptrunk",
            Scope::Management => "alexa::enterprise:management",
            Scope::ServiceProvider => "amazon_communication::service_provider",
        }
    }

    /// Which token an API path needs.
    pub fn for_path(path: &str) -> Scope {
        if path.starts_with("/v1/communications/network/siptrunk") {
            Scope::SipTrunk
        } else if path.starts_with("/v1/communications/serviceProviders") {
            Scope::ServiceProvider
        } else {
            Scope::Management
        }
    }
}

/// From the environment: `ASP_CLIENT_ID`, `ASP_CLIENT_SECRET`, `ASP_REFRESH_TOKEN`, and
/// optionally `ASP_SP_REFRESH_TOKEN` (a consent that includes the service-provider scope;
/// `ASP_REFRESH_TOKEN` is used when it is absent).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub refresh_token: Option<Secret>,
    pub service_provider_refresh_token: Option<Secret>,
}

impl Credentials {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            client_id: var("ASP_CLIENT_ID"),
            client_secret: var("ASP_CLIENT_SECRET").map(Secret::new),
            refresh_token: var("ASP_REFRESH_TOKEN").map(Secret::new),
            service_provider_refresh_token: var("ASP_SP_REFRESH_TOKEN").map(Secret::new),
        }
    }

    /// These credentials, each one that is unset taken from `fallback` (the environment wins
    /// over a Secrets Manager secret).
    pub fn or(self, fallback: Credentials) -> Self {
        Self {
            client_id: self.client_id.or(fallback.client_id),
            client_secret: self.client_secret.or(fallback.client_secret),
            refresh_token: self.refresh_token.or(fallback.refresh_token),
            service_provider_refresh_token: self
                .service_provider_refresh_token
                .or(fallback.service_provider_refresh_token),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0} is not set (needed for the {1} scope)")]
    Missing(&'static str, &'static str),
    #[error("Login with Amazon refused the {scope} token: {error} (HTTP {status}){description}")]
    Refused {
        scope: &'static str,
        status: u16,
        error: String,
        description: String,
    },
    #[error("Login with Amazon answered HTTP {status} for the {scope} token")]
    Status { scope: &'static str, status: u16 },
    #[error("could not reach Login with Amazon for the {scope} token")]
    Transport {
        scope: &'static str,
        #[source]
        source: TransportError,
    },
    #[error("Login with Amazon's answer for the {scope} token could not be read")]
    Decode { scope: &'static str },
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct OAuthError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Clone)]
struct Cached {
    token: Secret,
    good_until: Instant,
}

/// Hands out a valid token per scope; fetches at most one at a time per scope.
pub struct TokenProvider<T> {
    transport: Arc<T>,
    lwa_url: String,
    credentials: std::sync::Mutex<Credentials>,
    policy: RetryPolicy,
    cache: HashMap<Scope, tokio::sync::Mutex<Option<Cached>>>,
    fetched: std::sync::atomic::AtomicU64,
}

impl<T: Transport> TokenProvider<T> {
    pub fn new(
        transport: Arc<T>,
        lwa_url: String,
        credentials: Credentials,
        policy: RetryPolicy,
    ) -> Self {
        let cache = [Scope::SipTrunk, Scope::Management, Scope::ServiceProvider]
            .into_iter()
            .map(|s| (s, tokio::sync::Mutex::new(None)))
            .collect();
        Self {
            transport,
            lwa_url,
            credentials: std::sync::Mutex::new(credentials),
            policy,
            cache,
            fetched: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many tokens were fetched from LWA this run.
    pub fn fetched(&self) -> u64 {
        self.fetched.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn token(&self, scope: Scope) -> Result<Secret, TokenError> {
        let Some(slot) = self.cache.get(&scope) else {
            return Err(TokenError::Decode {
                scope: scope.lwa_scope(),
            });
        };
        let mut slot = slot.lock().await;
        if let Some(cached) = slot.as_ref()
            && Instant::now() < cached.good_until
        {
            return Ok(cached.token.clone());
        }
        let fresh = self.fetch(scope).await?;
        let token = fresh.token.clone();
        *slot = Some(fresh);
        Ok(token)
    }

    /// Drops `token` after the API refused it (401), unless another task already replaced it.
    pub async fn invalidate(&self, scope: Scope, token: &Secret) {
        if let Some(slot) = self.cache.get(&scope) {
            let mut slot = slot.lock().await;
            if slot.as_ref().is_some_and(|c| &c.token == token) {
                *slot = None;
            }
        }
    }

    fn form(&self, scope: Scope) -> Result<String, TokenError> {
        let name = scope.lwa_scope();
        let credentials = self
            .credentials
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        let client_id = credentials
            .client_id
            .ok_or(TokenError::Missing("ASP_CLIENT_ID", name))?;
        let secret = credentials
            .client_secret
            .ok_or(TokenError::Missing("ASP_CLIENT_SECRET", name))?;
        let mut form = form_urlencoded::Serializer::new(String::new());
        match scope {
            Scope::SipTrunk => {
                form.append_pair("grant_type", "client_credentials");
            }
            Scope::Management | Scope::ServiceProvider => {
                let refresh = match scope {
                    Scope::ServiceProvider => credentials
                        .service_provider_refresh_token
                        .or(credentials.refresh_token),
                    _ => credentials.refresh_token,
                }
                .ok_or(TokenError::Missing("ASP_REFRESH_TOKEN", name))?;
                form.append_pair("grant_type", "refresh_token");
                form.append_pair("refresh_token", refresh.expose());
            }
        }
        form.append_pair("client_id", &client_id);
        form.append_pair("client_secret", secret.expose());
        form.append_pair("scope", name);
        Ok(form.finish())
    }

    async fn fetch(&self, scope: Scope) -> Result<Cached, TokenError> {
        let name = scope.lwa_scope();
        let body = Bytes::from(self.form(scope)?);
        let deadline = Instant::now() + self.policy.deadline;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let request = Outgoing {
                method: Method::POST,
                url: self.lwa_url.clone(),
                headers: vec![
                    (
                        CONTENT_TYPE,
                        HeaderValue::from_static("application/x-www-form-urlencoded"),
                    ),
                    (ACCEPT, HeaderValue::from_static("application/json")),
                ],
                body: body.clone(),
            };
            let answer = self
                .transport
                .send(request, self.policy.request_timeout)
                .await;
            let retry_after = match &answer {
                Ok(a) if a.status == 429 || a.status >= 500 => {
                    Some(crate::retry::retry_after(&a.headers))
                }
                Err(_) => Some(None),
                _ => None,
            };
            if let Some(retry_after) = retry_after
                && let Some(pause) = retry_delay(&self.policy, attempt, retry_after, deadline)
            {
                tokio::time::sleep(pause).await;
                continue;
            }
            let answer = answer.map_err(|source| TokenError::Transport {
                scope: name,
                source,
            })?;
            if (200..300).contains(&answer.status) {
                let parsed: TokenAnswer = serde_json::from_slice(&answer.body)
                    .map_err(|_| TokenError::Decode { scope: name })?;
                if let Some(rotated) = parsed.refresh_token
                    && let Ok(mut credentials) = self.credentials.lock()
                {
                    // A rotated refresh token is kept for the rest of the run only.
                    match scope {
                        Scope::ServiceProvider
                            if credentials.service_provider_refresh_token.is_some() =>
                        {
                            credentials.service_provider_refresh_token = Some(Secret::new(rotated));
                        }
                        Scope::SipTrunk => {}
                        _ => credentials.refresh_token = Some(Secret::new(rotated)),
                    }
                }
                let lifetime = parsed.expires_in.unwrap_or(3600);
                // Renew a minute early so a token never expires between check and use.
                let margin = if lifetime > 120 { 60 } else { lifetime / 2 };
                self.fetched
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(Cached {
                    token: Secret::new(parsed.access_token),
                    good_until: Instant::now() + Duration::from_secs(lifetime - margin),
                });
            }
            return Err(match serde_json::from_slice::<OAuthError>(&answer.body) {
                Ok(OAuthError {
                    error: Some(error),
                    error_description,
                }) => TokenError::Refused {
                    scope: name,
                    status: answer.status,
                    error,
                    description: error_description
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default(),
                },
                _ => TokenError::Status {
                    scope: name,
                    status: answer.status,
                },
            });
        }
    }
}
