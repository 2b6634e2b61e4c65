//! Typed configuration from the environment, shared by the two Alexa functions.
//!
//! Read through the project's one [`Env`] reader (`std::env::var` in Lambda, a map in tests),
//! failing fast with the name of the variable that is missing or malformed. Secret values are wrapped in
//! [`Secret`] as soon as they are read.

use crate::retry::RetryPolicy;
use crate::secret::Secret;
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

pub use takeback_common::config::{ConfigError, Env};

/// Shortest accepted `WEBHOOK_SECRET`, in bytes: an HMAC-SHA256 key should be at least as long
/// as the hash (RFC 2104 §3: keys shorter than the output length are "strongly discouraged").
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 32;

/// A required secret of at least `min_bytes` bytes, wrapped in [`Secret`]. The error names the
/// variable and the length rule, never the value.
pub fn required_secret_min_len<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    name: &'static str,
    min_bytes: usize,
) -> Result<Secret, ConfigError> {
    let secret = required_secret(env, name)?;
    if secret.expose().len() < min_bytes {
        return Err(ConfigError::invalid(
            name,
            format!("must be at least {min_bytes} bytes long"),
        ));
    }
    Ok(secret)
}

/// A required secret: wrapped in [`Secret`] as soon as it is read.
pub fn required_secret<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    name: &'static str,
) -> Result<Secret, ConfigError> {
    // Secrets are not trimmed beyond surrounding whitespace: a trailing newline from a secret
    // store is the common accident, an inner space is data.
    env.required(name).map(Secret::new)
}

/// An `https://` URL (or `http://` to a loopback host, for local tests) without a trailing
/// slash. Every URL the functions read carries a secret or a token (the LWA client secret, the
/// bearer token, the webhook's signed messages), so plain HTTP leaves the machine never.
pub fn url<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    name: &'static str,
    default: Option<&str>,
) -> Result<String, ConfigError> {
    let value = match (env.optional(name), default) {
        (Some(v), _) => v,
        (None, Some(d)) => d.to_owned(),
        (None, None) => return Err(ConfigError::Missing(name)),
    };
    check_url(&value).map_err(|reason| ConfigError::invalid(name, reason))?;
    Ok(value.trim_end_matches('/').to_owned())
}

/// The rule of [`url`] for a value in hand: `Err` says what is wrong with it.
pub fn check_url(value: &str) -> Result<(), String> {
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("not a URL (it contains white space or control characters)".into());
    }
    let (rest, plain) = match value.strip_prefix("https://") {
        Some(rest) => (rest, false),
        None => (
            value
                .strip_prefix("http://")
                .ok_or("the scheme must be https (or http to a loopback host for local tests)")?,
            true,
        ),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_and_port = authority.rsplit('@').next().unwrap_or_default();
    let host = if host_and_port.starts_with('[') {
        host_and_port.split(']').next().unwrap_or_default()
    } else {
        host_and_port.split(':').next().unwrap_or_default()
    };
    let host = host.trim_start_matches('[');
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    if plain && !is_loopback_host(host) {
        return Err("plain http is only allowed to a loopback host; use https".into());
    }
    Ok(())
}

/// `localhost`, `127.0.0.0/8` or `::1`.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
    /// `LWA_TIMEOUT_MS`, default 3000 ([`crate::budget::DEFAULT_LWA_TIMEOUT`]): per-request
    /// timeout toward LWA (cut to the invocation's deadline).
    pub timeout: Duration,
}

impl LwaSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            token_url: url(env, "LWA_TOKEN_URL", Some(DEFAULT_LWA_TOKEN_URL))?,
            client_id: env.required("LWA_CLIENT_ID")?,
            client_secret: required_secret(env, "LWA_CLIENT_SECRET")?,
            token_id: env
                .optional("LWA_TOKEN_ID")
                .unwrap_or_else(|| DEFAULT_LWA_TOKEN_ID.into()),
            refresh_margin: Duration::from_secs(
                env.number_or("TOKEN_REFRESH_MARGIN_SECONDS", 300)?,
            ),
            timeout: Duration::from_millis(env.number_or(
                "LWA_TIMEOUT_MS",
                crate::budget::DEFAULT_LWA_TIMEOUT.as_millis() as u64,
            )?),
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
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            default_api_endpoint: url(env, "ALEXA_API_ENDPOINT", Some(DEFAULT_ALEXA_API_ENDPOINT))?,
            retry: retry_policy(
                env,
                "SIGNALING_MAX_ATTEMPTS",
                "SIGNALING_TIMEOUT_MS",
                3,
                crate::budget::DEFAULT_API_SIGNALING_ATTEMPT.as_millis() as u64,
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
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            active: Duration::from_secs(env.number_or("SESSION_TTL_SECONDS", d.active.as_secs())?),
            ended: Duration::from_secs(
                env.number_or("ENDED_SESSION_TTL_SECONDS", d.ended.as_secs())?,
            ),
        })
    }
}

/// A retry policy from `<attempts_var>`, `<timeout_var>`, `RETRY_BASE_DELAY_MS` and
/// `RETRY_MAX_DELAY_MS`.
pub fn retry_policy<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    attempts_var: &'static str,
    timeout_var: &'static str,
    default_attempts: u64,
    default_timeout_ms: u64,
) -> Result<RetryPolicy, ConfigError> {
    let max_attempts = env.number_or(attempts_var, default_attempts)?;
    if max_attempts == 0 || max_attempts > 10 {
        return Err(ConfigError::invalid(
            attempts_var,
            "must be between 1 and 10",
        ));
    }
    Ok(RetryPolicy {
        max_attempts: max_attempts as u32,
        attempt_timeout: Duration::from_millis(env.number_or(timeout_var, default_timeout_ms)?),
        base_delay: Duration::from_millis(env.number_or("RETRY_BASE_DELAY_MS", 100)?),
        max_delay: Duration::from_millis(env.number_or("RETRY_MAX_DELAY_MS", 2000)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        takeback_common::config::map_env(pairs.iter().copied())
    }

    #[test]
    fn missing_variable_is_named() {
        let e = env(&[("LWA_CLIENT_SECRET", "s")]);
        assert!(matches!(
            LwaSettings::from_env(&e).unwrap_err(),
            ConfigError::Missing("LWA_CLIENT_ID")
        ));
    }

    #[test]
    fn blank_counts_as_missing() {
        let e = env(&[("LWA_CLIENT_ID", "  ")]);
        assert!(matches!(
            e.required("LWA_CLIENT_ID"),
            Err(ConfigError::Missing("LWA_CLIENT_ID"))
        ));
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
    fn plain_http_only_to_loopback_and_short_secrets_refused() {
        for (value, ok) in [
            ("https://backend.example.com/alexa", true),
            ("http://127.0.0.1:8080/hook", true),
            ("http://localhost:8080", true),
            ("http://[::1]:8080/x", true),
            ("http://backend.example.com/alexa", false),
            ("http://10.0.0.1/alexa", false),
            ("http://127.0.0.1.evil.example/x", false),
        ] {
            assert_eq!(check_url(value).is_ok(), ok, "{value}");
        }
        let e = env(&[("WEBHOOK_SECRET", "short-secret")]);
        let err =
            required_secret_min_len(&e, "WEBHOOK_SECRET", MIN_WEBHOOK_SECRET_BYTES).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                name: "WEBHOOK_SECRET",
                ..
            }
        ));
        assert!(!err.to_string().contains("short-secret"));
        let e = env(&[("WEBHOOK_SECRET", "0123456789abcdef0123456789abcdef")]);
        assert!(required_secret_min_len(&e, "WEBHOOK_SECRET", MIN_WEBHOOK_SECRET_BYTES).is_ok());
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
