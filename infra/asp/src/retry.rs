//! When to try again: 429 and 5xx (and lost connections) are retried until the caller's
//! deadline, honouring `Retry-After` and otherwise backing off 2, 3, 5, 8, 13, 21 steps.

use http::HeaderMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// A request (with its retries) gives up after this long.
    pub deadline: Duration,
    /// One step of the backoff (1 s in production; tests use a millisecond).
    pub step: Duration,
    /// No single pause is longer than this, whatever `Retry-After` says.
    pub max_pause: Duration,
    /// One attempt's budget.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(120),
            step: Duration::from_secs(1),
            max_pause: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
        }
    }
}

const STEPS: [u32; 6] = [2, 3, 5, 8, 13, 21];

/// `Retry-After` in seconds (the HTTP-date form is ignored: the backoff applies then).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The pause before attempt `attempt + 1`, or `None` when the deadline does not allow one.
pub fn retry_delay(
    policy: &RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
    deadline: Instant,
) -> Option<Duration> {
    let index = usize::try_from(attempt.saturating_sub(1))
        .unwrap_or(usize::MAX)
        .min(STEPS.len() - 1);
    let backoff = policy.step * STEPS[index];
    let pause = retry_after.unwrap_or(backoff).min(policy.max_pause);
    let remaining = deadline.saturating_duration_since(Instant::now());
    (pause < remaining).then_some(pause)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_honours_retry_after_and_stops_at_the_deadline() {
        let policy = RetryPolicy {
            step: Duration::from_millis(10),
            ..RetryPolicy::default()
        };
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(
            retry_delay(&policy, 1, None, far),
            Some(Duration::from_millis(20))
        );
        assert_eq!(
            retry_delay(&policy, 3, None, far),
            Some(Duration::from_millis(50))
        );
        assert_eq!(
            retry_delay(&policy, 40, None, far),
            Some(Duration::from_millis(210))
        );
        assert_eq!(
            retry_delay(&policy, 1, Some(Duration::from_secs(7)), far),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_delay(&policy, 1, Some(Duration::from_secs(700)), far),
            Some(policy.max_pause)
        );
        let near = Instant::now() + Duration::from_millis(5);
        assert_eq!(retry_delay(&policy, 1, None, near), None);
    }

    #[test]
    fn reads_retry_after_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("3"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
