//! Typed configuration from the environment, shared by the two Alexa functions.
//!
//! Every reader takes a lookup function (`std::env::var` in Lambda, a map in tests) and fails
//! fast with the name of the variable that is missing or malformed. Secret values are wrapped in
//! [`Secret`] as soon as they are read.

use super::retry::RetryPolicy;
use super::secret::Secret;
use std::time::Duration;

/// Login with Amazon's token endpoint.
pub const DEFAULT_LWA_TOKEN_URL: &str = "https://api.amazon.com/auth/o2/token";
/// The North-America Alexa API endpoint (EU: `https://api.eu.amazonalexa.com`, FE: `api.fe.`).
pub const DEFAULT_ALEXA_API_ENDPOINT: &str = "https://api.amazonalexa.com";
/// Key of the one delegated account-linking token pair in the tokens table.
pub const DEFAULT_LWA_TOKEN_ID: &str = "alexa-calling";

/// The official Alexa API endpoints a session's `apiEndpoint` may name.
pub const OFFICIAL_ALEXA_API_ENDPOINTS: &[&str] = &[
    "https://api.amazonalexa.com",
    "https://api.eu.amazonalexa.com",
    "https://api.fe.amazonalexa.com",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A source of configuration values (`std::env::var` in production).
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// A non-empty value, or `Missing(name)`.
pub fn required(env: &dyn Env, name: &'static str) -> Result<String, ConfigError> {
    match env.get(name) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(ConfigError::Missing(name)),
    }
}

pub fn required_secret(env: &dyn Env, name: &'static str) -> Result<Secret, ConfigError> {
    // Secrets are not trimmed beyond surrounding whitespace: a trailing newline from a secret
    // store is the common accident, an inner space is data.
    required(env, name).map(Secret::new)
}

pub fn optional(env: &dyn Env, name: &'static str) -> Option<String> {
    env.get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// An optional unsigned number with a default.
pub fn number_or(env: &dyn Env, name: &'static str, default: u64) -> Result<u64, ConfigError> {
    match optional(env, name) {
        None => Ok(default),
        Some(v) => v.parse::<u64>().map_err(|e| ConfigError::Invalid {
            name,
            reason: format!("expected a non-negative integer: {e}"),
        }),
    }
}

/// An `http://` or `https://` URL without a trailing slash.
pub fn url(
    env: &dyn Env,
    name: &'static str,
    default: Option<&str>,
) -> Result<String, ConfigError> {
    let value = match (optional(env, name), default) {
        (Some(v), _) => v,
        (None, Some(d)) => d.to_owned(),
        (None, None) => return Err(ConfigError::Missing(name)),
    };
    check_url(&value).map_err(|reason| ConfigError::Invalid { name, reason })?;
    Ok(value.trim_end_matches('/').to_owned())
}

fn check_url(value: &str) -> Result<(), String> {
    let uri: http::Uri = value.parse().map_err(|e| format!("not a URL ({e})"))?;
    match uri.scheme_str() {
        Some("https") | Some("http") => {}
        _ => return Err("the scheme must be https (or http for local tests)".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(())
}

/// Login with Amazon settings (both functions: either may refresh the shared token).
#[derive(Debug, Clone)]
pub struct LwaSettings {
    /// `LWA_TOKEN_URL`, default [`DEFAULT_LWA_TOKEN_URL`].
    pub token_url: String,
    /// `LWA_CLIENT_ID`, required.
    pub client_id: String,
    /// `LWA_CLIENT_SECRET`, required, secret.
    pub client_secret: Secret,
    /// `LWA_TOKEN_ID`, default [`DEFAULT_LWA_TOKEN_ID`]: item key in the tokens table.
    pub token_id: String,
    /// `TOKEN_REFRESH_MARGIN_SECONDS`, default 300: refresh this long before expiry.
    pub refresh_margin: Duration,
    /// `LWA_TIMEOUT_MS`, default 3000: per-request timeout toward LWA.
    pub timeout: Duration,
}

impl LwaSettings {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            token_url: url(env, "LWA_TOKEN_URL", Some(DEFAULT_LWA_TOKEN_URL))?,
            client_id: required(env, "LWA_CLIENT_ID")?,
            client_secret: required_secret(env, "LWA_CLIENT_SECRET")?,
            token_id: optional(env, "LWA_TOKEN_ID").unwrap_or_else(|| DEFAULT_LWA_TOKEN_ID.into()),
            refresh_margin: Duration::from_secs(number_or(
                env,
                "TOKEN_REFRESH_MARGIN_SECONDS",
                300,
            )?),
            timeout: Duration::from_millis(number_or(env, "LWA_TIMEOUT_MS", 3000)?),
        })
    }
}

/// Where and how messages go to Alexa's signaling endpoint.
#[derive(Debug, Clone)]
pub struct SignalingSettings {
    /// `ALEXA_API_ENDPOINT`, default [`DEFAULT_ALEXA_API_ENDPOINT`]: used for calls the property
    /// starts, and accepted (besides the official endpoints) as a session's `apiEndpoint`.
    pub default_api_endpoint: String,
    /// `SIGNALING_MAX_ATTEMPTS` (default 3), `SIGNALING_TIMEOUT_MS` (default 2000),
    /// `RETRY_BASE_DELAY_MS` (default 100), `RETRY_MAX_DELAY_MS` (default 2000).
    pub retry: RetryPolicy,
}

impl SignalingSettings {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            default_api_endpoint: url(env, "ALEXA_API_ENDPOINT", Some(DEFAULT_ALEXA_API_ENDPOINT))?,
            retry: retry_policy(
                env,
                "SIGNALING_MAX_ATTEMPTS",
                "SIGNALING_TIMEOUT_MS",
                3,
                2000,
            )?,
        })
    }

    /// The endpoint to use for a session: its recorded `apiEndpoint` when that is an official
    /// Alexa endpoint or the configured one, else the configured default. The bearer token goes
    /// to this host, so it is never taken from unvetted input.
    pub fn endpoint_for<'a>(&'a self, recorded: Option<&'a str>) -> &'a str {
        match recorded {
            Some(e) if self.is_allowed_endpoint(e) => e,
            _ => &self.default_api_endpoint,
        }
    }

    pub fn is_allowed_endpoint(&self, endpoint: &str) -> bool {
        let e = endpoint.trim_end_matches('/');
        e == self.default_api_endpoint || OFFICIAL_ALEXA_API_ENDPOINTS.contains(&e)
    }
}

/// Session record lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTtl {
    /// `SESSION_TTL_SECONDS`, default 86400: a live session's expiry, renewed on every message.
    pub active: Duration,
    /// `ENDED_SESSION_TTL_SECONDS`, default 3600: how long an ended session is kept so that late
    /// or re-delivered messages are still recognised.
    pub ended: Duration,
}

impl Default for SessionTtl {
    fn default() -> Self {
        Self {
            active: Duration::from_secs(86_400),
            ended: Duration::from_secs(3_600),
        }
    }
}

impl SessionTtl {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            active: Duration::from_secs(number_or(env, "SESSION_TTL_SECONDS", d.active.as_secs())?),
            ended: Duration::from_secs(number_or(
                env,
                "ENDED_SESSION_TTL_SECONDS",
                d.ended.as_secs(),
            )?),
        })
    }
}

/// A retry policy from `<attempts_var>`, `<timeout_var>`, `RETRY_BASE_DELAY_MS` and
/// `RETRY_MAX_DELAY_MS`.
pub fn retry_policy(
    env: &dyn Env,
    attempts_var: &'static str,
    timeout_var: &'static str,
    default_attempts: u64,
    default_timeout_ms: u64,
) -> Result<RetryPolicy, ConfigError> {
    let max_attempts = number_or(env, attempts_var, default_attempts)?;
    if max_attempts == 0 || max_attempts > 10 {
        return Err(ConfigError::Invalid {
            name: attempts_var,
            reason: "must be between 1 and 10".into(),
        });
    }
    Ok(RetryPolicy {
        max_attempts: max_attempts as u32,
        attempt_timeout: Duration::from_millis(number_or(env, timeout_var, default_timeout_ms)?),
        base_delay: Duration::from_millis(number_or(env, "RETRY_BASE_DELAY_MS", 100)?),
        max_delay: Duration::from_millis(number_or(env, "RETRY_MAX_DELAY_MS", 2000)?),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn missing_variable_is_named() {
        let e = env(&[("LWA_CLIENT_SECRET", "s")]);
        assert_eq!(
            LwaSettings::from_env(&e).unwrap_err(),
            ConfigError::Missing("LWA_CLIENT_ID")
        );
    }

    #[test]
    fn blank_counts_as_missing() {
        let e = env(&[("LWA_CLIENT_ID", "  ")]);
        assert_eq!(
            required(&e, "LWA_CLIENT_ID"),
            Err(ConfigError::Missing("LWA_CLIENT_ID"))
        );
    }

    #[test]
    fn defaults_apply_and_secret_is_redacted_in_debug() {
        let e = env(&[
            ("LWA_CLIENT_ID", "amzn1.application-oa2-client.x"),
            ("LWA_CLIENT_SECRET", "topsecret\n"),
        ]);
        let s = LwaSettings::from_env(&e).unwrap();
        assert_eq!(s.token_url, DEFAULT_LWA_TOKEN_URL);
        assert_eq!(s.token_id, DEFAULT_LWA_TOKEN_ID);
        assert_eq!(s.client_secret.expose(), "topsecret");
        assert!(!format!("{s:?}").contains("topsecret"));
    }

    #[test]
    fn bad_number_and_bad_url_name_the_variable() {
        let e = env(&[("SESSION_TTL_SECONDS", "a day")]);
        assert!(matches!(
            SessionTtl::from_env(&e),
            Err(ConfigError::Invalid {
                name: "SESSION_TTL_SECONDS",
                ..
            })
        ));
        let e = env(&[("ALEXA_API_ENDPOINT", "ftp://x")]);
        assert!(matches!(
            SignalingSettings::from_env(&e),
            Err(ConfigError::Invalid {
                name: "ALEXA_API_ENDPOINT",
                ..
            })
        ));
    }

    #[test]
    fn session_endpoint_must_be_official_or_configured() {
        let e = env(&[("ALEXA_API_ENDPOINT", "http://127.0.0.1:9999/")]);
        let s = SignalingSettings::from_env(&e).unwrap();
        assert_eq!(s.default_api_endpoint, "http://127.0.0.1:9999");
        assert_eq!(
            s.endpoint_for(Some("https://api.eu.amazonalexa.com")),
            "https://api.eu.amazonalexa.com"
        );
        assert_eq!(
            s.endpoint_for(Some("https://evil.example.com")),
            "http://127.0.0.1:9999"
        );
        assert_eq!(s.endpoint_for(None), "http://127.0.0.1:9999");
    }
}
