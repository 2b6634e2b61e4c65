//! Time budgets of the two Alexa functions: one overall deadline per invocation, derived from
//! how long the caller waits, and the defaults of every step inside it. The arithmetic is
//! checked at compile time; a test in `functions/call-signaling` compares the Lambda timeouts
//! with `template.yaml`.
//!
//! # call-signaling (the skill)
//!
//! Alexa waits at most 8 s for a skill's answer, and Amazon advises a Lambda timeout below that
//! ("Your AWS Lambda function time out value should be less than 8 seconds, which is the maximum
//! amount of time Alexa waits for a skill to respond":
//! <https://developer.amazon.com/blogs/alexa/post/1ae545b3-cb73-43a8-b987-6613ed8ebced/tips-for-developing-high-performance-alexa-skills1>).
//! The function's timeout is [`SKILL_LAMBDA_TIMEOUT`] (7 s) and the handler answers by
//! [`SKILL_DEADLINE`] (6 s) whatever happens: the webhook (≤ `WEBHOOK_BUDGET_MS`, default 3 s),
//! the `CallEnded` the skill may send and the LWA refresh it may need all stop when the deadline
//! comes, and the deferred response goes out.
//!
//! # signaling-api (the property backend's way in)
//!
//! The backend waits [`BACKEND_WAIT_LIMIT`] (12 s, documented for backend developers) for an
//! answer; the function's timeout is the same (running on after the caller gave up helps no
//! one) and the handler answers by [`SIGNALING_API_DEADLINE`] (10 s), with `504` if Alexa or LWA
//! took all of it.
//!
//! # Inside a deadline
//!
//! Every HTTP attempt's timeout is cut to the time left; a retry is not started when its backoff
//! would end past the deadline; waiting for another environment's token refresh stops at the
//! deadline too. DynamoDB operations are bounded by `takeback-sdk` (2 s each) and the handler as
//! a whole by the deadline.

use std::time::{Duration, Instant};

/// How long Alexa waits for a skill's answer.
pub const ALEXA_WAIT_LIMIT: Duration = Duration::from_secs(8);
/// `Timeout` of `CallSignalingFunction` in `template.yaml`.
pub const SKILL_LAMBDA_TIMEOUT: Duration = Duration::from_secs(7);
/// When the skill answers at the latest, counted from the start of the invocation.
pub const SKILL_DEADLINE: Duration = Duration::from_secs(6);

/// How long the property backend is asked to wait for the signaling API (README).
pub const BACKEND_WAIT_LIMIT: Duration = Duration::from_secs(12);
/// `Timeout` of `SignalingApiFunction` in `template.yaml`.
pub const SIGNALING_API_LAMBDA_TIMEOUT: Duration = Duration::from_secs(12);
/// When the signaling API answers at the latest.
pub const SIGNALING_API_DEADLINE: Duration = Duration::from_secs(10);

/// Least time between a handler's deadline and its Lambda timeout (cold start, the runtime's
/// own round trip, writing the answer).
pub const MIN_LAMBDA_MARGIN: Duration = Duration::from_secs(1);

/// Default `WEBHOOK_BUDGET_MS`: all webhook attempts of one skill invocation together.
pub const DEFAULT_WEBHOOK_BUDGET: Duration = Duration::from_millis(3000);
/// Default `WEBHOOK_TIMEOUT_MS`.
pub const DEFAULT_WEBHOOK_ATTEMPT: Duration = Duration::from_millis(1500);
/// Default `SIGNALING_TIMEOUT_MS` of the skill (its `CallEnded` after a failed offer).
pub const DEFAULT_SKILL_SIGNALING_ATTEMPT: Duration = Duration::from_millis(1500);
/// Default `SIGNALING_TIMEOUT_MS` of the signaling API.
pub const DEFAULT_API_SIGNALING_ATTEMPT: Duration = Duration::from_millis(2000);
/// Default `LWA_TIMEOUT_MS`.
pub const DEFAULT_LWA_TIMEOUT: Duration = Duration::from_millis(3000);
/// How long an environment waits for another environment's token refresh before it gives up
/// (or takes over an expired lease). Cut to the deadline.
pub const TOKEN_LEASE_WAIT: Duration = Duration::from_millis(2500);
/// How often a waiting environment re-reads the token record.
pub const TOKEN_POLL_INTERVAL: Duration = Duration::from_millis(100);

const fn ms(d: Duration) -> u128 {
    d.as_millis()
}

// The arithmetic above, checked at compile time.
const _: () = {
    // The skill answers before Alexa gives up, and before Lambda kills it.
    assert!(ms(SKILL_LAMBDA_TIMEOUT) < ms(ALEXA_WAIT_LIMIT));
    assert!(ms(SKILL_DEADLINE) + ms(MIN_LAMBDA_MARGIN) <= ms(SKILL_LAMBDA_TIMEOUT));
    // The default webhook budget leaves room for one CallEnded attempt toward Alexa.
    assert!(ms(DEFAULT_WEBHOOK_BUDGET) + ms(DEFAULT_SKILL_SIGNALING_ATTEMPT) <= ms(SKILL_DEADLINE));
    assert!(ms(DEFAULT_WEBHOOK_ATTEMPT) <= ms(DEFAULT_WEBHOOK_BUDGET));
    // The API answers before the backend gives up, and before Lambda kills it.
    assert!(ms(SIGNALING_API_LAMBDA_TIMEOUT) <= ms(BACKEND_WAIT_LIMIT));
    assert!(ms(SIGNALING_API_DEADLINE) + ms(MIN_LAMBDA_MARGIN) <= ms(SIGNALING_API_LAMBDA_TIMEOUT));
    // A refresh plus one signaling attempt fit into the API's deadline; waiting for another
    // environment's refresh plus one attempt too.
    assert!(
        ms(DEFAULT_LWA_TIMEOUT) + ms(DEFAULT_API_SIGNALING_ATTEMPT) <= ms(SIGNALING_API_DEADLINE)
    );
    assert!(ms(TOKEN_LEASE_WAIT) + ms(DEFAULT_API_SIGNALING_ATTEMPT) <= ms(SIGNALING_API_DEADLINE));
    assert!(ms(TOKEN_POLL_INTERVAL) < ms(TOKEN_LEASE_WAIT));
};

/// The moment an invocation must have answered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn at(instant: Instant) -> Self {
        Self(instant)
    }

    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self(Instant::now() + budget)
    }

    /// The earlier of `budget` from now and `limit - margin` (the Lambda context's deadline).
    pub fn within(budget: Duration, limit: Option<Instant>, margin: Duration) -> Self {
        let own = Instant::now() + budget;
        match limit.and_then(|l| l.checked_sub(margin)) {
            Some(l) if l < own => Self(l),
            _ => Self(own),
        }
    }

    /// For a Lambda invocation: `budget` from now, or the context's deadline (epoch
    /// milliseconds, as `lambda_runtime::Context::deadline` gives it) less `margin` if that is
    /// earlier.
    pub fn for_invocation(
        budget: Duration,
        lambda_deadline_epoch_ms: u64,
        margin: Duration,
    ) -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let left = Duration::from_millis(lambda_deadline_epoch_ms.saturating_sub(now_ms));
        Self::within(budget, Some(Instant::now() + left), margin)
    }

    pub fn instant(self) -> Instant {
        self.0
    }

    pub fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    pub fn is_past(self) -> bool {
        self.remaining().is_zero()
    }

    /// `timeout` cut to the time left.
    pub fn cap(self, timeout: Duration) -> Duration {
        timeout.min(self.remaining())
    }

    /// Whether a pause of `delay` still ends before the deadline.
    pub fn allows(self, delay: Duration) -> bool {
        delay < self.remaining()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_the_earlier_limit_win() {
        let d = Deadline::after(Duration::from_secs(60));
        assert!(d.cap(Duration::from_secs(1)) == Duration::from_secs(1));
        assert!(d.cap(Duration::from_secs(120)) <= Duration::from_secs(60));
        assert!(d.allows(Duration::from_secs(1)));
        assert!(!d.allows(Duration::from_secs(61)));
        let past = Deadline::at(Instant::now());
        assert!(past.is_past() && past.cap(Duration::from_secs(1)).is_zero());
        let now = Instant::now();
        let lambda = now + Duration::from_secs(3);
        let w = Deadline::within(
            Duration::from_secs(60),
            Some(lambda),
            Duration::from_secs(1),
        );
        assert!(w.instant() <= lambda - Duration::from_secs(1));
        let own = Deadline::within(
            Duration::from_secs(1),
            Some(now + Duration::from_secs(60)),
            Duration::from_secs(1),
        );
        assert!(own.instant() < now + Duration::from_secs(59));
    }
}
