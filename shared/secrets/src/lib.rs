//! The Alexa functions' secrets at run time: the Login with Amazon client secret and the
//! webhook's HMAC key.
//!
//! In AWS the functions get the ARN of one Secrets Manager secret (`ALEXA_SECRET_ARN`), never
//! the values: an environment variable is readable by anyone allowed
//! `lambda:GetFunctionConfiguration`, and a value resolved at deploy time changes only with a
//! redeploy. The secret's `SecretString` is a JSON object:
//!
//! ```json
//! {"lwa_client_secret": "…", "webhook_hmac_secret": "…"}
//! ```
//!
//! [`SecretsManagerSecrets`] reads it once at cold start (`GetSecretValue`), keeps it in memory,
//! and reads it again when a far end refuses a value (LWA answers `invalid_client`, the backend
//! answers 401 to a signature) — at most once per [`MIN_REFETCH_INTERVAL`], so a wrong secret
//! costs one read per interval, not one per request. The clients in `takeback-http` take the
//! values through the [`SecretSource`] port and retry once with a value that changed.
//!
//! Without `ALEXA_SECRET_ARN` (local runs, tests) the functions read `LWA_CLIENT_SECRET` and
//! `WEBHOOK_SECRET` from the environment as before, and nothing talks to AWS.
//!
//! No value is ever logged or put in an error: errors name the secret's ARN, the key and what is
//! wrong, and a `SecretString` that is no JSON object is reported by line and column only.

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use serde::Deserialize;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use takeback_alexa::config::MIN_WEBHOOK_SECRET_BYTES;
use takeback_alexa::{Secret, SecretSource};
use takeback_common::config::{ConfigError, Env};
use tracing::{debug, info, warn};

pub use aws_sdk_secretsmanager::Client as SecretsManagerClient;

/// The secret's ARN; when set, the two value variables below must not be.
pub const SECRET_ARN_VAR: &str = "ALEXA_SECRET_ARN";
/// The LWA client secret for local runs.
pub const LWA_CLIENT_SECRET_VAR: &str = "LWA_CLIENT_SECRET";
/// The webhook HMAC key for local runs.
pub const WEBHOOK_SECRET_VAR: &str = "WEBHOOK_SECRET";
/// Keys of the secret's JSON.
pub const LWA_CLIENT_SECRET_KEY: &str = "lwa_client_secret";
pub const WEBHOOK_SECRET_KEY: &str = "webhook_hmac_secret";

/// The least time between two reads of the secret after refusals. A rotation is picked up by the
/// first refusal after it; a secret that is simply wrong costs a read per interval at most.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Which values a function needs from the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// `signaling-api`: only the LWA client secret.
    Lwa,
    /// `call-signaling`: the LWA client secret and the webhook key.
    LwaAndWebhook,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("GetSecretValue failed: {0}")]
    Fetch(String),
    #[error("the secret has no SecretString (a binary secret is not supported)")]
    NotAString,
    #[error("the SecretString is not a JSON object of strings (line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    #[error("the secret's JSON has no {0:?} key (or it is empty)")]
    MissingKey(&'static str),
    #[error(
        "{WEBHOOK_SECRET_KEY} in the secret must be at least {MIN_WEBHOOK_SECRET_BYTES} bytes long"
    )]
    ShortWebhookKey,
}

/// The values, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlexaSecrets {
    pub lwa_client_secret: Secret,
    /// Present when [`Keys::LwaAndWebhook`] asked for it.
    pub webhook_secret: Option<Secret>,
}

#[derive(Deserialize)]
struct SecretJson {
    #[serde(default)]
    lwa_client_secret: Option<Secret>,
    #[serde(default)]
    webhook_hmac_secret: Option<Secret>,
}

/// Reads the values out of a `SecretString`. Surrounding white space (a trailing newline pasted
/// into the console) is dropped, as for the environment variables.
pub fn parse_secret_string(text: &str, keys: Keys) -> Result<AlexaSecrets, SecretsError> {
    // serde's message can quote the offending value: only the position is kept.
    let json: SecretJson = serde_json::from_str(text).map_err(|e| SecretsError::NotJson {
        line: e.line(),
        column: e.column(),
    })?;
    let trimmed = |s: Option<Secret>| {
        s.map(|s| Secret::new(s.expose().trim()))
            .filter(|s| !s.is_empty())
    };
    let lwa_client_secret =
        trimmed(json.lwa_client_secret).ok_or(SecretsError::MissingKey(LWA_CLIENT_SECRET_KEY))?;
    let webhook_secret = match keys {
        Keys::Lwa => None,
        Keys::LwaAndWebhook => {
            let key = trimmed(json.webhook_hmac_secret)
                .ok_or(SecretsError::MissingKey(WEBHOOK_SECRET_KEY))?;
            if key.expose().len() < MIN_WEBHOOK_SECRET_BYTES {
                return Err(SecretsError::ShortWebhookKey);
            }
            Some(key)
        }
    };
    Ok(AlexaSecrets {
        lwa_client_secret,
        webhook_secret,
    })
}

/// `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>`: the ARN the IAM policy
/// grants, so a name alone is refused here as it is by the template's parameter pattern.
pub fn check_secret_arn(value: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.splitn(7, ':').collect();
    let well_formed = parts.len() == 7
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "secretsmanager"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5] == "secret"
        && !parts[6].is_empty()
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if well_formed {
        Ok(())
    } else {
        Err("must be a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)".into())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    LwaClientSecret,
    WebhookKey,
}

impl Field {
    fn pick(self, secrets: &AlexaSecrets) -> Option<&Secret> {
        match self {
            Field::LwaClientSecret => Some(&secrets.lwa_client_secret),
            Field::WebhookKey => secrets.webhook_secret.as_ref(),
        }
    }
}

/// The secret read from Secrets Manager and kept in memory; see the crate documentation.
pub struct SecretsManagerSecrets {
    client: SecretsManagerClient,
    arn: String,
    keys: Keys,
    min_refetch_interval: Duration,
    values: RwLock<AlexaSecrets>,
    /// Held while reading again, so concurrent refusals cause one read; the time of the last one.
    last_read: tokio::sync::Mutex<Instant>,
}

impl fmt::Debug for SecretsManagerSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManagerSecrets")
            .field("arn", &self.arn)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl SecretsManagerSecrets {
    /// The cold-start read: fails when the secret cannot be read or lacks a value `keys` needs.
    pub async fn load(
        client: SecretsManagerClient,
        arn: impl Into<String>,
        keys: Keys,
        min_refetch_interval: Duration,
    ) -> Result<Arc<Self>, SecretsError> {
        let arn = arn.into();
        let values = read(&client, &arn, keys).await?;
        info!(secret_arn = %arn, "read the Alexa secrets from Secrets Manager");
        Ok(Arc::new(Self {
            client,
            arn,
            keys,
            min_refetch_interval,
            values: RwLock::new(values),
            last_read: tokio::sync::Mutex::new(Instant::now()),
        }))
    }

    /// The values held now.
    pub fn current(&self) -> AlexaSecrets {
        self.values
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The LWA client secret, as a source for `LwaClient::with_client_secret`.
    pub fn lwa_client_secret(self: &Arc<Self>) -> Arc<dyn SecretSource> {
        Arc::new(FieldSource {
            secrets: self.clone(),
            field: Field::LwaClientSecret,
        })
    }

    /// The webhook key, as a source for `WebhookClient::with_secret_source`; `None` unless
    /// loaded with [`Keys::LwaAndWebhook`].
    pub fn webhook_secret(self: &Arc<Self>) -> Option<Arc<dyn SecretSource>> {
        (self.keys == Keys::LwaAndWebhook).then(|| {
            Arc::new(FieldSource {
                secrets: self.clone(),
                field: Field::WebhookKey,
            }) as Arc<dyn SecretSource>
        })
    }

    fn held(&self, field: Field) -> Option<Secret> {
        field.pick(&self.current()).cloned()
    }

    /// A far end refused `used`: the value to retry with, if a read (now, or a concurrent one)
    /// found a different value.
    async fn after_refusal(&self, field: Field, used: &Secret) -> Option<Secret> {
        let mut last_read = self.last_read.lock().await;
        if let Some(held) = self.held(field).filter(|held| held != used) {
            return Some(held);
        }
        if last_read.elapsed() < self.min_refetch_interval {
            debug!(secret_arn = %self.arn, "a value was refused, but the secret was read moments ago; not reading it again yet");
            return None;
        }
        *last_read = Instant::now();
        match read(&self.client, &self.arn, self.keys).await {
            Ok(fresh) => {
                let value = field.pick(&fresh).cloned();
                let changed = value.as_ref() != Some(used);
                *self
                    .values
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
                info!(secret_arn = %self.arn, changed, "read the Alexa secrets again after a refusal");
                value.filter(|_| changed)
            }
            Err(e) => {
                warn!(secret_arn = %self.arn, error = %e, "could not read the Alexa secrets again; keeping the values held");
                None
            }
        }
    }
}

async fn read(
    client: &SecretsManagerClient,
    arn: &str,
    keys: Keys,
) -> Result<AlexaSecrets, SecretsError> {
    let answer = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| SecretsError::Fetch(DisplayErrorContext(&e).to_string()))?;
    let text = answer.secret_string().ok_or(SecretsError::NotAString)?;
    parse_secret_string(text, keys)
}

/// One value of [`SecretsManagerSecrets`] behind the [`SecretSource`] port.
struct FieldSource {
    secrets: Arc<SecretsManagerSecrets>,
    field: Field,
}

impl fmt::Debug for FieldSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldSource")
            .field("arn", &self.secrets.arn)
            .field("field", &self.field)
            .finish()
    }
}

impl SecretSource for FieldSource {
    fn current(&self) -> Secret {
        self.secrets.held(self.field).unwrap_or_default()
    }

    fn refused<'a>(
        &'a self,
        used: &'a Secret,
    ) -> Pin<Box<dyn Future<Output = Option<Secret>> + Send + 'a>> {
        Box::pin(self.secrets.after_refusal(self.field, used))
    }
}

/// The first half of [`RuntimeSecrets::from_env`], without I/O: `ALEXA_SECRET_ARN` checked
/// (`None` when unset), and neither value variable set beside it.
pub fn secret_arn<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Option<String>, ConfigError> {
    let Some(arn) = env.optional(SECRET_ARN_VAR) else {
        return Ok(None);
    };
    check_secret_arn(&arn).map_err(|reason| ConfigError::invalid(SECRET_ARN_VAR, reason))?;
    for variable in [LWA_CLIENT_SECRET_VAR, WEBHOOK_SECRET_VAR] {
        if env.optional(variable).is_some() {
            return Err(ConfigError::invalid(
                variable,
                format!("must not be set together with {SECRET_ARN_VAR}: the secret holds it"),
            ));
        }
    }
    Ok(Some(arn))
}

/// Where a function's secrets come from: the environment (no `ALEXA_SECRET_ARN`) or Secrets
/// Manager.
#[derive(Debug, Clone)]
pub enum RuntimeSecrets {
    Environment,
    SecretsManager(Arc<SecretsManagerSecrets>),
}

impl RuntimeSecrets {
    /// Reads `ALEXA_SECRET_ARN` and, when it is set, the secret (cold start). Every failure is a
    /// [`ConfigError`] naming the variable: a malformed ARN, a value variable set beside it, a
    /// secret that cannot be read or lacks a key.
    pub async fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        client: impl FnOnce() -> SecretsManagerClient,
        keys: Keys,
    ) -> Result<Self, ConfigError> {
        Self::load(secret_arn(env)?, client, keys).await
    }

    /// The second half of [`Self::from_env`]: reads the secret when there is an ARN
    /// ([`secret_arn`]); `client` is only called then.
    pub async fn load(
        arn: Option<String>,
        client: impl FnOnce() -> SecretsManagerClient,
        keys: Keys,
    ) -> Result<Self, ConfigError> {
        let Some(arn) = arn else {
            return Ok(Self::Environment);
        };
        SecretsManagerSecrets::load(client(), arn, keys, MIN_REFETCH_INTERVAL)
            .await
            .map(Self::SecretsManager)
            .map_err(|e| ConfigError::Invalid {
                name: SECRET_ARN_VAR,
                message: format!("the secret could not be used: {e}"),
                source: Some(Box::new(e)),
            })
    }

    /// `env` with the secret's values as `LWA_CLIENT_SECRET` and `WEBHOOK_SECRET`, so the
    /// functions' configuration reads one set of variables either way.
    pub fn overlay<'a, F: Fn(&str) -> Option<String>>(
        &'a self,
        env: &'a Env<F>,
    ) -> Env<impl Fn(&str) -> Option<String> + 'a> {
        let held = match self {
            Self::Environment => None,
            Self::SecretsManager(secrets) => Some(secrets.current()),
        };
        Env(move |name: &str| match (&held, name) {
            (Some(h), LWA_CLIENT_SECRET_VAR) => Some(h.lwa_client_secret.expose().to_owned()),
            (Some(h), WEBHOOK_SECRET_VAR) => {
                h.webhook_secret.as_ref().map(|s| s.expose().to_owned())
            }
            _ => (env.0)(name),
        })
    }

    /// The LWA client secret's source: Secrets Manager's, or the configured value.
    pub fn lwa_client_secret(&self, configured: &Secret) -> Arc<dyn SecretSource> {
        match self {
            Self::Environment => Arc::new(configured.clone()),
            Self::SecretsManager(secrets) => secrets.lwa_client_secret(),
        }
    }

    /// The webhook key's source: Secrets Manager's, or the configured value.
    pub fn webhook_secret(&self, configured: &Secret) -> Arc<dyn SecretSource> {
        match self {
            Self::Environment => Arc::new(configured.clone()),
            Self::SecretsManager(secrets) => secrets
                .webhook_secret()
                .unwrap_or_else(|| Arc::new(configured.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn both_keys_are_read_and_trimmed() {
        let text = format!(r#"{{"lwa_client_secret":"lwa-1\n","webhook_hmac_secret":"{KEY}"}}"#);
        let s = parse_secret_string(&text, Keys::LwaAndWebhook).unwrap();
        assert_eq!(s.lwa_client_secret.expose(), "lwa-1");
        assert_eq!(s.webhook_secret.unwrap().expose(), KEY);
        let s = parse_secret_string(r#"{"lwa_client_secret":"x"}"#, Keys::Lwa).unwrap();
        assert_eq!(s.webhook_secret, None);
    }

    #[test]
    fn missing_short_and_malformed_secrets_are_refused_without_their_values() {
        assert!(matches!(
            parse_secret_string(r#"{"lwa_client_secret":"x"}"#, Keys::LwaAndWebhook),
            Err(SecretsError::MissingKey(WEBHOOK_SECRET_KEY))
        ));
        assert!(matches!(
            parse_secret_string(r#"{"webhook_hmac_secret":"x"}"#, Keys::Lwa),
            Err(SecretsError::MissingKey(LWA_CLIENT_SECRET_KEY))
        ));
        let short = r#"{"lwa_client_secret":"x","webhook_hmac_secret":"short-key-value"}"#;
        let e = parse_secret_string(short, Keys::LwaAndWebhook).unwrap_err();
        assert!(matches!(e, SecretsError::ShortWebhookKey));
        assert!(!e.to_string().contains("short-key-value"));
        // A plain string where JSON was expected: serde would quote it; the error does not.
        let e = parse_secret_string(r#""plain-secret-value""#, Keys::Lwa).unwrap_err();
        assert!(matches!(e, SecretsError::NotJson { .. }));
        assert!(!e.to_string().contains("plain-secret-value"));
        let e = parse_secret_string(r#"{"lwa_client_secret": 12345678}"#, Keys::Lwa).unwrap_err();
        assert!(!e.to_string().contains("12345678"));
    }

    #[test]
    fn only_a_secrets_manager_arn_is_accepted() {
        for (value, ok) in [
            (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:takeback/alexa-AbCdEf",
                true,
            ),
            (
                "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x",
                true,
            ),
            ("takeback/alexa", false),
            ("arn:aws:ssm:eu-west-1:123456789012:parameter/x", false),
            ("arn:aws:secretsmanager:eu-west-1:1234:secret:x", false),
            (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:",
                false,
            ),
        ] {
            assert_eq!(check_secret_arn(value).is_ok(), ok, "{value}");
        }
    }
}
