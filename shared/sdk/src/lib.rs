//! The one place where AWS SDK clients get their time limits.
//!
//! Every function builds its `SdkConfig` with [`load`] (or [`loader`] when a test needs to add
//! something), so every DynamoDB and Chime SDK Voice call in the project is bounded the same way.
//! Endpoints, region and credentials still come from the standard `aws-config` chain, so
//! `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_CHIME_SDK_VOICE` point the clients at DynamoDB
//! Local and the emulator without any special local code path.
//!
//! # The budget
//!
//! Amazon Connect waits at most 8 s for a synchronous Lambda (`InvocationTimeLimitSeconds`,
//! 1–8); the SMA waits 5 s before it re-invokes. One SDK *operation* here is bounded like this:
//!
//! | limit | value | why |
//! |---|---|---|
//! | connect timeout | 500 ms | TCP+TLS to an in-region endpoint takes a few ms; a black-holed endpoint must not eat the budget |
//! | attempt timeout | 900 ms | DynamoDB answers in ~5–10 ms, `UpdateSipMediaApplicationCall` in well under 300 ms; an attempt that is not done in 900 ms is stuck |
//! | max attempts | 2 | one retry rides out a single throttle, 5xx or stuck connection; more would only move us past Connect's limit |
//! | backoff | ≤ 50 ms for 5xx (SDK default), ≤ 100 ms for throttling | short: the caller is listening to silence |
//! | operation timeout | 2 s | hard cap on one operation including both attempts, backoff and any `Retry-After` |
//!
//! So one operation never takes more than [`OPERATION_TIMEOUT`] = 2 s. The Connect lookup makes
//! one operation (≤ 2 s); the Connect transfer makes two (record the intent, then
//! `UpdateSipMediaApplicationCall`: ≤ 4 s), or three when it has to find the transaction by the
//! number pair (≤ 6 s). Both also run under [`CONNECT_HANDLER_BUDGET`] (7 s), which turns anything
//! unforeseen into a `result=error` answer that the flow can branch on instead of Connect's
//! Error branch. With the flow's `InvocationTimeLimitSeconds` at 8 that leaves ≥ 1 s for a cold
//! start and Connect's own overhead. In the normal case the functions answer in milliseconds.

use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};

/// Time to establish a connection (TCP and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Time for one attempt of an operation, from sending the request to the parsed response.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(900);
/// Attempts per operation, the first one included.
pub const MAX_ATTEMPTS: u32 = 2;
/// Base backoff before retrying a throttled request (jittered: the wait is uniform in
/// `0..=INITIAL_BACKOFF` for the first retry). Non-throttling errors use the SDK's 50 ms.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Cap on any single backoff.
pub const MAX_BACKOFF: Duration = Duration::from_millis(200);
/// Hard cap on one operation: all attempts, backoffs and server-requested delays.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(2);

/// Amazon Connect's upper bound for a synchronous Lambda invocation from a flow.
pub const CONNECT_INVOCATION_LIMIT: Duration = Duration::from_secs(8);
/// What a Connect-facing handler allows itself end to end before it answers `result=error`
/// (`reason=timeout`) on its own.
pub const CONNECT_HANDLER_BUDGET: Duration = Duration::from_secs(7);
/// The most SDK operations a Connect-facing handler makes in one invocation.
pub const CONNECT_MAX_OPERATIONS: u32 = 3;

/// How long the SIP media application waits for the handler before it re-delivers the event.
pub const SMA_INVOCATION_LIMIT: Duration = Duration::from_secs(5);

// Retries by deadline. The SDK's two attempts per operation give up on a burst of throttling
// that one more short wait would absorb, so the DynamoDB stores (`takeback-dynamo`) also retry
// transient failures themselves, with jittered backoff, until the budget their function gives
// them is spent — never by a count. Each budget is what the caller's deadline leaves:

/// The SMA handler's store operations (a whole claim, a release, an intent read): under its
/// 3.5 s per-operation cap, so a retry stops on its own rather than being cut off mid-request,
/// leaving ≥ 1.5 s of the SMA's 5 s for the answer.
pub const SMA_STORE_RETRY_BUDGET: Duration = Duration::from_millis(3200);
/// The Connect lookup: one store operation within the handler's 7 s.
pub const CONNECT_LOOKUP_STORE_RETRY_BUDGET: Duration = Duration::from_secs(6);
/// The Connect transfer: up to two store operations (lookup by pair, intent), leaving time
/// for `UpdateSipMediaApplicationCall` (≤ one operation timeout) within the handler's 7 s.
pub const CONNECT_TRANSFER_STORE_RETRY_BUDGET: Duration = Duration::from_millis(2400);

// The arithmetic above, checked at compile time so a later edit cannot silently break it.
const _: () = {
    let op = OPERATION_TIMEOUT.as_millis();
    let attempts = ATTEMPT_TIMEOUT.as_millis() * MAX_ATTEMPTS as u128 + MAX_BACKOFF.as_millis();
    // Both attempts (with the longest backoff between them) fit into one operation...
    assert!(attempts <= op);
    // ...the connect timeout fits into an attempt...
    assert!(CONNECT_TIMEOUT.as_millis() < ATTEMPT_TIMEOUT.as_millis());
    // ...the worst-case sequence of operations fits into the handler budget...
    assert!(op * CONNECT_MAX_OPERATIONS as u128 <= CONNECT_HANDLER_BUDGET.as_millis());
    // ...and the handler budget leaves Connect a margin of at least a second.
    assert!(CONNECT_HANDLER_BUDGET.as_millis() + 1_000 <= CONNECT_INVOCATION_LIMIT.as_millis());
    // The store retry budgets end inside their callers' deadlines: the SMA's answer (with a
    // second to spare), the lookup's handler budget, and the transfer's two store operations
    // plus the Chime update.
    assert!(SMA_STORE_RETRY_BUDGET.as_millis() + 1_000 < SMA_INVOCATION_LIMIT.as_millis());
    assert!(CONNECT_LOOKUP_STORE_RETRY_BUDGET.as_millis() < CONNECT_HANDLER_BUDGET.as_millis());
    assert!(
        CONNECT_TRANSFER_STORE_RETRY_BUDGET.as_millis() * 2 + op
            <= CONNECT_HANDLER_BUDGET.as_millis()
    );
};

/// The project's timeouts (see the module documentation for the reasoning).
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Standard retry mode, bounded to [`MAX_ATTEMPTS`] with short backoffs.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// The default `aws-config` loader (environment, profile, container/IMDS credentials, the
/// standard `AWS_ENDPOINT_URL_*` variables) with the project's timeouts and retries applied.
///
/// Lambda puts the execution role's credentials in the environment, where the default chain
/// would find them first anyway; naming that provider outright skips building the rest of the
/// chain (profiles, SSO, web identity, container, IMDS), which measured 4–5 ms of every cold
/// start. Without those variables (a developer's machine) the whole chain applies.
pub fn loader() -> ConfigLoader {
    let var = |name: &str| std::env::var(name).ok();
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeout_config())
        .retry_config(retry_config());
    if credentials_in_environment(var) {
        loader.credentials_provider(EnvironmentVariableCredentialsProvider::new())
    } else {
        loader
    }
}

/// Whether `var` holds a complete set of static credentials (key id and secret).
pub fn credentials_in_environment(var: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
    set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY")
}

/// Loads the shared SDK configuration once, at cold start; build every client from it.
pub async fn load() -> SdkConfig {
    loader().load().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_all_set() {
        let t = timeout_config();
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(t.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(t.operation_timeout(), Some(OPERATION_TIMEOUT));
    }

    #[test]
    fn only_a_complete_key_pair_in_the_environment_skips_the_credential_chain() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(credentials_in_environment(env(&[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "example"),
        ])));
        assert!(!credentials_in_environment(env(&[(
            "AWS_ACCESS_KEY_ID",
            "AKIDEXAMPLE"
        )])));
        assert!(!credentials_in_environment(env(&[
            ("AWS_ACCESS_KEY_ID", " "),
            ("AWS_SECRET_ACCESS_KEY", "example"),
        ])));
        assert!(!credentials_in_environment(env(&[])));
    }

    #[test]
    fn retries_are_bounded() {
        let r = retry_config();
        assert_eq!(r.max_attempts(), MAX_ATTEMPTS);
        assert!(r.max_backoff() <= Duration::from_millis(200));
        assert!(r.initial_backoff() <= r.max_backoff());
    }

    #[tokio::test]
    async fn loaded_config_carries_the_limits() {
        let config = loader()
            .region(aws_config::Region::new("us-east-1"))
            .no_credentials()
            .load()
            .await;
        assert_eq!(
            config.timeout_config().and_then(|t| t.operation_timeout()),
            Some(OPERATION_TIMEOUT)
        );
        assert_eq!(
            config.retry_config().map(|r| r.max_attempts()),
            Some(MAX_ATTEMPTS)
        );
    }
}
