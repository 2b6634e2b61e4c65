//! Logging set-up shared by every function: one JSON object per line (CloudWatch-friendly), no
//! ANSI colours, no timestamps (Lambda adds its own), and each line carries the Lambda request id.
//!
//! Level: `AWS_LAMBDA_LOG_LEVEL` (what Lambda sets from the function's `LoggingConfig`
//! `ApplicationLogLevel`), else `RUST_LOG` (tracing-subscriber `EnvFilter` syntax), else `info`.
//!
//! The libraries underneath are capped at INFO whatever the level says ([`CAPPED_TARGETS`]),
//! because they print secrets at their most verbose levels: `lambda_runtime` logs every raw event
//! at TRACE (with an Alexa request's `apiAccessToken` and grant code, or the backend's body), the
//! AWS SDK's orchestrator logs whole requests and responses at TRACE (token records, secret
//! values), and the HTTP/TLS stack's TRACE output is no place for bearer tokens either. The cap
//! sits beside the level filter, so no directive (a target, a span filter) can lift it. The
//! project's own code never logs a token, code or secret at any level.
//!
//! The request id comes from the span `lambda_runtime` opens around each invocation
//! ("Lambda runtime invoke", field `requestId`, target [`INVOKE_SPAN_TARGET`]): that span is
//! always enabled, and every line lists its spans (`spans`), so a handler's own spans never
//! hide it.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

/// Target prefixes (as `tracing` matches them: string prefixes of the module path) and the most
/// verbose level each may log at.
pub const CAPPED_TARGETS: &[(&str, LevelFilter)] = &[
    ("lambda_runtime", LevelFilter::INFO),
    ("aws_smithy", LevelFilter::INFO),
    ("aws_sdk", LevelFilter::INFO),
    ("aws_config", LevelFilter::INFO),
    ("aws_credential_types", LevelFilter::INFO),
    ("aws_runtime", LevelFilter::INFO),
    ("hyper", LevelFilter::INFO),
    ("h2", LevelFilter::INFO),
    ("rustls", LevelFilter::INFO),
    ("tower", LevelFilter::INFO),
];

/// Where `lambda_runtime` declares its per-invocation span (it logs no events there).
pub const INVOKE_SPAN_TARGET: &str = "lambda_runtime::layers::trace";

/// The cap filter: everything else passes (the level filter still applies).
pub fn caps() -> Targets {
    CAPPED_TARGETS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |t, (target, level)| t.with_target(*target, *level),
    )
}

/// The level directives from `AWS_LAMBDA_LOG_LEVEL` and `RUST_LOG` (blank counts as unset).
/// Lambda's level names are upper case and include `FATAL`, which `tracing` spells `error`.
pub fn directives(aws_lambda_log_level: Option<&str>, rust_log: Option<&str>) -> String {
    fn blank_is_unset(v: Option<&str>) -> Option<&str> {
        v.map(str::trim).filter(|v| !v.is_empty())
    }
    match blank_is_unset(aws_lambda_log_level) {
        Some(level) if level.eq_ignore_ascii_case("fatal") => "error".to_owned(),
        Some(level) => level.to_ascii_lowercase(),
        None => blank_is_unset(rust_log).unwrap_or("info").to_owned(),
    }
}

/// The subscriber every function logs through, writing to `writer`; an invalid `directives`
/// value falls back to `info`.
pub fn subscriber<W>(directives: &str, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let mut filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    if let Ok(invoke_span) = format!("{INVOKE_SPAN_TARGET}=info").parse() {
        filter = filter.add_directive(invoke_span);
    }
    tracing_subscriber::registry()
        .with(filter)
        .with(caps())
        .with(
            fmt::layer()
                .json()
                .with_current_span(false)
                .with_span_list(true)
                .with_ansi(false)
                .without_time()
                .with_target(false)
                .with_writer(writer),
        )
}

/// Installs the global subscriber (stdout, level from the environment as [`directives`] reads
/// it); a second call (tests, the emulator) is a no-op.
pub fn init_json_logs() {
    let var = |name: &str| std::env::var(name).ok();
    let directives = directives(
        var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        var("RUST_LOG").as_deref(),
    );
    let _ = tracing::subscriber::set_global_default(subscriber(&directives, std::io::stdout));
}

/// Reports a configuration error the way every `main` does before it exits: one JSON log line
/// naming the variable and what is wrong with it (a cold start that cannot work should say why
/// in the function's log, not as a Rust `Debug` dump on stderr).
pub fn log_config_error(error: &crate::ConfigError) {
    let (variable, problem) = match error {
        crate::ConfigError::Missing(name) => (*name, "is not set".to_owned()),
        crate::ConfigError::Invalid { name, message, .. } => (*name, message.clone()),
    };
    tracing::error!(variable, problem = %problem, error = %crate::chain(error), "configuration error");
}

/// The exit status of a function that stopped on a configuration error.
pub const CONFIG_ERROR_EXIT_CODE: i32 = 78; // EX_CONFIG (sysexits.h)

/// `Ok(value)`, or: log the error ([`log_config_error`]) and exit with
/// [`CONFIG_ERROR_EXIT_CODE`]. For `main` only.
pub fn config_or_exit<T>(result: Result<T, crate::ConfigError>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => {
            log_config_error(&error);
            std::process::exit(CONFIG_ERROR_EXIT_CODE)
        }
    }
}

/// Log capture for tests that check what reaches the logs (masked numbers, no secrets).
#[cfg(any(test, feature = "test-support"))]
pub mod capture {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// A `MakeWriter` that keeps everything written to it.
    #[derive(Clone, Default)]
    pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

    impl Write for CapturedLogs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl CapturedLogs {
        /// Everything logged so far, as text.
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
        }
    }

    /// Routes this thread's JSON logs at `level` and above into the returned capture until the
    /// guard is dropped.
    pub fn capture_logs(
        level: tracing::Level,
    ) -> (tracing::subscriber::DefaultGuard, CapturedLogs) {
        let captured = CapturedLogs::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(level)
            .with_writer(move || writer.clone())
            .finish();
        (set_thread_default(subscriber), captured)
    }

    /// Checks what a function's `main` printed when started with no configuration at all:
    /// exit status 78 (EX_CONFIG) and one JSON log line that names a missing environment
    /// variable — not a Rust `Debug` dump.
    pub fn assert_one_configuration_error_line(out: &std::process::Output) {
        assert_eq!(out.status.code(), Some(78), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {stdout}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
        assert_eq!(line["level"], "ERROR", "{line}");
        assert_eq!(line["fields"]["message"], "configuration error", "{line}");
        let variable = line["fields"]["variable"].as_str().unwrap_or_default();
        assert!(
            !variable.is_empty()
                && variable
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            "names an environment variable: {line}"
        );
        assert_eq!(line["fields"]["problem"], "is not set", "{line}");
    }

    /// `tracing::subscriber::set_default`, made safe for tests that run in parallel threads.
    ///
    /// When exactly one dispatcher is registered, `tracing-core` rebuilds callsite interest and
    /// the global max level from the *rebuilding thread's* default dispatcher. A test thread
    /// without a subscriber that meets a new callsite then sets the max level to OFF, and the
    /// capturing thread silently loses events until the next rebuild. A global no-op registry
    /// keeps at least two dispatchers registered, so every rebuild consults all of them.
    pub fn set_thread_default<S>(subscriber: S) -> tracing::subscriber::DefaultGuard
    where
        S: tracing::Subscriber + Send + Sync + 'static,
    {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
        });
        tracing::subscriber::set_default(subscriber)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capture::CapturedLogs;

    fn logged(directives: &str, emit: impl FnOnce()) -> String {
        let captured = CapturedLogs::default();
        let writer = captured.clone();
        let guard = capture::set_thread_default(subscriber(directives, move || writer.clone()));
        emit();
        drop(guard);
        captured.text()
    }

    /// What `lambda_runtime` and the SDK print at TRACE (the raw event, whole requests) never
    /// reaches the logs, even with `RUST_LOG=trace` or a span directive; our own TRACE lines do.
    #[test]
    fn library_trace_output_is_capped_whatever_the_level_says() {
        for directives in [
            "trace",
            "lambda_runtime=trace,aws_smithy_runtime=trace",
            "[alexa_request]=trace",
        ] {
            let text = logged(directives, || {
                let span = tracing::info_span!("alexa_request");
                let _entered = span.enter();
                tracing::trace!(
                    target: "lambda_runtime::layers::api_response",
                    body = "{\"apiAccessToken\":\"fixture-api-access-token\"}",
                    "raw JSON event received from Lambda"
                );
                tracing::trace!(
                    target: "aws_smithy_runtime::client::orchestrator",
                    request = "Atzr|fixture-refresh",
                    "transmitting request"
                );
                tracing::debug!(target: "hyper_util::client::legacy", "Bearer Atza|fixture");
                tracing::trace!(target: "takeback_http::lwa", "own trace line");
                tracing::info!(target: "lambda_runtime::runtime", "runtime info line");
            });
            for secret in ["fixture-api-access-token", "Atzr|", "Atza|"] {
                assert!(
                    !text.contains(secret),
                    "{directives}: {secret} leaked: {text}"
                );
            }
            if directives != "lambda_runtime=trace,aws_smithy_runtime=trace" {
                assert!(text.contains("own trace line"), "{directives}: {text}");
            }
            if directives == "trace" {
                assert!(text.contains("runtime info line"), "{text}");
            }
        }
    }

    /// Every line carries the request id of `lambda_runtime`'s invocation span, at any level
    /// and under the handler's own spans.
    #[test]
    fn every_line_carries_the_lambda_request_id() {
        for directives in ["warn", "info", "error"] {
            let text = logged(directives, || {
                let invoke = tracing::info_span!(
                    target: "lambda_runtime::layers::trace",
                    "Lambda runtime invoke",
                    requestId = "req-7f3a"
                );
                let _invoke = invoke.enter();
                let own = tracing::info_span!("sma_invocation", transaction_id = "t-1");
                let _own = own.enter();
                tracing::error!("store failed");
            });
            let line: serde_json::Value = serde_json::from_str(text.trim())
                .unwrap_or_else(|e| panic!("{directives}: one JSON line, got {text:?}: {e}"));
            let spans = line["spans"].as_array().expect("a span list");
            assert!(
                spans.iter().any(|s| s["requestId"] == "req-7f3a"),
                "{directives}: no request id in {text}"
            );
        }
    }

    #[test]
    fn aws_lambda_log_level_wins_over_rust_log() {
        assert_eq!(directives(Some("WARN"), Some("debug")), "warn");
        assert_eq!(directives(Some("FATAL"), None), "error");
        assert_eq!(
            directives(Some("  "), Some("debug,hyper=info")),
            "debug,hyper=info"
        );
        assert_eq!(directives(None, None), "info");
        let text = logged(&directives(Some("ERROR"), Some("trace")), || {
            tracing::warn!("a warning");
            tracing::error!("an error");
        });
        assert!(
            !text.contains("a warning") && text.contains("an error"),
            "{text}"
        );
    }

    #[test]
    fn a_configuration_error_is_one_json_line_naming_the_variable() {
        let text = logged("info", || {
            log_config_error(&crate::ConfigError::invalid(
                "LEASE_SECONDS",
                "expected a non-negative integer",
            ));
        });
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["fields"]["variable"], "LEASE_SECONDS");
        assert_eq!(line["fields"]["problem"], "expected a non-negative integer");
    }
}
