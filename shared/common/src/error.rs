//! Errors every layer shares: the storage failure kinds the ports report, and a one-line
//! rendering of a cause chain for logs.

/// A storage operation failed. Adapters map their SDK errors onto these kinds; the pure
/// crates decide on the kind alone (transient or not).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store throttled the request")]
    Throttled(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the store is unavailable or timed out")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    #[error("store request failed")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Throttling and unavailability are transient: a handler answers the caller with a safe
    /// action (busy message, fallback target) and a retried invocation may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Throttled(_) | StoreError::Unavailable(_))
    }
}

/// `error: cause: cause…` in one line, for logs that must carry the whole cause chain.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_includes_every_cause() {
        let err = Outer(std::io::Error::other("inner"));
        assert_eq!(super::chain(&err), "outer: inner");
    }
}
