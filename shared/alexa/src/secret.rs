//! A string that must never reach a log line: LWA client secret, webhook HMAC secret, access and
//! refresh tokens, authorization codes, Alexa's `apiAccessToken`.
//!
//! `Debug` and `Display` print `[redacted]`; the value is reachable only through
//! [`Secret::expose`], which makes every use greppable. `Serialize` is deliberately not
//! implemented so a secret cannot slip into a logged or forwarded JSON document by accident.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::future::Future;
use std::pin::Pin;

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for the one place that must send it (a request header or form field).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// Where a client takes a secret it sends, and whom it tells when the far end refused it. The
/// port behind runtime rotation: a plain [`Secret`] is a source that never changes, the
/// Secrets Manager adapter (`takeback-secrets`) one that reads the secret again after a refusal.
pub trait SecretSource: fmt::Debug + Send + Sync {
    /// The value to use now (held in memory; no I/O).
    fn current(&self) -> Secret;

    /// The far end refused `used` (LWA `invalid_client`, a webhook 401). Resolves to the value to
    /// retry with when a fresher one differs from `used`, or `None` when there is nothing new
    /// (the source may decline to look again so soon).
    fn refused<'a>(
        &'a self,
        used: &'a Secret,
    ) -> Pin<Box<dyn Future<Output = Option<Secret>> + Send + 'a>>;
}

impl SecretSource for Secret {
    fn current(&self) -> Secret {
        self.clone()
    }

    fn refused<'a>(
        &'a self,
        _used: &'a Secret,
    ) -> Pin<Box<dyn Future<Output = Option<Secret>> + Send + 'a>> {
        Box::pin(std::future::ready(None))
    }
}

#[cfg(test)]
mod tests {
    use super::{Secret, SecretSource};

    #[tokio::test]
    async fn a_fixed_secret_is_its_own_source_and_never_offers_another() {
        let s = Secret::new("fixed");
        assert_eq!(s.current(), s);
        assert_eq!(s.refused(&s).await, None);
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("Atzr|super-secret-refresh");
        assert!(!format!("{s:?}").contains("super-secret"));
        assert!(!format!("{s}").contains("super-secret"));
        assert_eq!(s.expose(), "Atzr|super-secret-refresh");
    }

    #[test]
    fn structs_holding_secrets_debug_redacted() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: Secret,
        }
        let h = Holder {
            token: Secret::new("Atza|abc"),
        };
        assert!(!format!("{h:?}").contains("Atza|abc"));
    }

    #[test]
    fn deserializes_from_a_plain_string() {
        let s: Secret = serde_json::from_str("\"code-123\"").unwrap();
        assert_eq!(s.expose(), "code-123");
    }
}
