//! Configuration from the environment, shared by the functions: every reader takes a lookup
//! function (the process environment in Lambda, a map in tests), treats blank values as unset,
//! and fails with the name of the variable that is missing or invalid.

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {message}")]
    Invalid {
        name: &'static str,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl ConfigError {
    pub fn invalid(name: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            name,
            message: message.into(),
            source: None,
        }
    }
}

/// Reads variables through `get`; blank values count as unset.
pub struct Env<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    /// An optional non-negative whole number, `default` when unset.
    pub fn number_or(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v.parse::<u64>().map_err(|e| ConfigError::Invalid {
                name,
                message: format!("expected a non-negative integer: {e}"),
                source: Some(Box::new(e)),
            }),
        }
    }
}

/// A fixed set of variables: tests, and tools that read an env file. Later pairs win.
pub fn map_env<K, V>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> Env<impl Fn(&str) -> Option<String>>
where
    K: Into<String>,
    V: Into<String>,
{
    let map: std::collections::HashMap<String, String> = pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    Env(move |name: &str| map.get(name).cloned())
}

/// The process environment.
pub fn process_env() -> Env<fn(&str) -> Option<String>> {
    Env(|name| std::env::var(name).ok())
}
