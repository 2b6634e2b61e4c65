//! Bounded retries with exponential backoff for the outbound HTTP calls (webhook, signaling).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (≥ 1).
    pub max_attempts: u32,
    /// Timeout of one attempt (connect + request + response body).
    pub attempt_timeout: Duration,
    /// Delay before the second attempt; doubles per attempt up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Fast settings for tests: loopback servers answer in microseconds.
    pub fn fast(max_attempts: u32) -> Self {
        Self {
            max_attempts,
            attempt_timeout: Duration::from_secs(2),
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        }
    }

    /// The pause after failed attempt number `attempt` (1-based), honouring a server's
    /// `Retry-After` (capped at `max_delay`). A small jitter derived from the clock spreads
    /// concurrent retriers without a random-number dependency.
    pub fn delay_after(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max_delay);
        }
        let exp = attempt.saturating_sub(1).min(16);
        let base = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let jitter_range = base.as_micros() as u64 / 4;
        let jitter = if jitter_range == 0 {
            0
        } else {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos() as u64)
                .unwrap_or(0);
            nanos % jitter_range
        };
        (base + Duration::from_micros(jitter)).min(self.max_delay.max(base))
    }
}

/// Parses a `Retry-After` header given in seconds (the HTTP-date form is ignored).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            attempt_timeout: Duration::from_secs(1),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        let d1 = p.delay_after(1, None);
        let d2 = p.delay_after(2, None);
        let d4 = p.delay_after(4, None);
        assert!(d1 >= Duration::from_millis(100) && d1 < Duration::from_millis(126));
        assert!(d2 >= Duration::from_millis(200) && d2 < Duration::from_millis(251));
        assert!(d4 <= Duration::from_millis(350));
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let p = RetryPolicy::fast(3);
        assert_eq!(p.delay_after(1, Some(Duration::from_secs(30))), p.max_delay);
        assert_eq!(parse_retry_after(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
    }
}
