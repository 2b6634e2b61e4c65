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
}

/// The process environment.
pub fn process_env() -> Env<fn(&str) -> Option<String>> {
    Env(|name| std::env::var(name).ok())
}
