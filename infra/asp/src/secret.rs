//! Credentials from one AWS Secrets Manager secret (`--secret-name`, `ASP_SECRET_NAME`), so a
//! property engineer's refresh tokens and client secret need not sit in a shell's environment
//! or history. The secret's `SecretString` is a JSON object with any of the keys
//! `client_id`, `client_secret`, `refresh_token` and `service_provider_refresh_token`; an
//! `ASP_*` variable that is set wins over the secret's value.
//!
//! Values never reach an error or the output: a malformed secret is reported by line and
//! column, a wrong key by its name.

use std::collections::BTreeMap;

use crate::auth::Credentials;
use crate::http::Secret;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("could not read secret `{name}` from AWS Secrets Manager: {reason}")]
    Read { name: String, reason: String },
    #[error("secret `{name}` has no SecretString (a binary secret cannot hold the credentials)")]
    NoString { name: String },
    #[error(
        "secret `{name}` is not a JSON object of strings (line {line}, column {column}); expected keys: client_id, client_secret, refresh_token, service_provider_refresh_token"
    )]
    Format {
        name: String,
        line: usize,
        column: usize,
    },
    #[error(
        "secret `{name}` has the unknown key `{key}` (a typo would silently leave a credential unset)"
    )]
    UnknownKey { name: String, key: String },
}

const KEYS: [&str; 4] = [
    "client_id",
    "client_secret",
    "refresh_token",
    "service_provider_refresh_token",
];

/// Reads the secret with the default AWS configuration (profile, SSO, role, region from the
/// environment; `AWS_ENDPOINT_URL_SECRETS_MANAGER` for a local endpoint).
pub async fn credentials_from_secret(name: &str) -> Result<Credentials, SecretError> {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let answer = client
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .map_err(|e| SecretError::Read {
            name: name.to_owned(),
            reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
        })?;
    let text = answer
        .secret_string()
        .ok_or_else(|| SecretError::NoString {
            name: name.to_owned(),
        })?;
    parse_credentials(name, text)
}

pub fn parse_credentials(name: &str, text: &str) -> Result<Credentials, SecretError> {
    let values: BTreeMap<String, String> =
        serde_json::from_str(text).map_err(|e| SecretError::Format {
            name: name.to_owned(),
            line: e.line(),
            column: e.column(),
        })?;
    if let Some(key) = values.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(SecretError::UnknownKey {
            name: name.to_owned(),
            key: key.clone(),
        });
    }
    let value = |key: &str| values.get(key).filter(|v| !v.is_empty()).cloned();
    Ok(Credentials {
        client_id: value("client_id"),
        client_secret: value("client_secret").map(Secret::new),
        refresh_token: value("refresh_token").map(Secret::new),
        service_provider_refresh_token: value("service_provider_refresh_token").map(Secret::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_fills_what_the_environment_leaves_unset() {
        let from_secret = parse_credentials(
            "asp/hotel",
            r#"{"client_id": "from-secret", "client_secret": "s3cret-value", "refresh_token": "Atzr|secret"}"#,
        )
        .unwrap();
        let env = Credentials {
            client_id: Some("from-env".into()),
            ..Credentials::default()
        };
        let merged = env.or(from_secret);
        assert_eq!(merged.client_id.as_deref(), Some("from-env"));
        assert_eq!(
            merged.client_secret.as_ref().map(Secret::expose),
            Some("s3cret-value")
        );
        assert_eq!(
            merged.refresh_token.as_ref().map(Secret::expose),
            Some("Atzr|secret")
        );
        assert!(merged.service_provider_refresh_token.is_none());
    }

    #[test]
    fn a_malformed_secret_is_named_without_its_value() {
        let e = parse_credentials("asp/hotel", r#"{"client_secret": "s3cret-value""#).unwrap_err();
        assert!(matches!(e, SecretError::Format { .. }), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = parse_credentials("asp/hotel", r#"{"clientSecret": "s3cret-value"}"#).unwrap_err();
        assert!(e.to_string().contains("`clientSecret`"), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = parse_credentials("asp/hotel", r#"{"client_secret": 42}"#).unwrap_err();
        assert!(matches!(e, SecretError::Format { .. }), "{e}");
    }
}
