//! JSON log set-up of the Alexa functions: the project's format (one JSON object per line,
//! level from `RUST_LOG`, no colours, no timestamps: Lambda adds its own) plus a cap on what
//! the libraries underneath may log, whatever `RUST_LOG` says.
//!
//! The caps exist because those libraries print secrets at their most verbose levels:
//! `lambda_runtime` logs every raw event at TRACE ("raw JSON event received from Lambda", with
//! the skill request's `apiAccessToken` and grant code, or the backend's body), the AWS SDK's
//! orchestrator logs whole requests and responses at TRACE (`aws_smithy_runtime`: "transmitting
//! request" / "received response from service", i.e. the token record's access and refresh
//! tokens), and the HTTP/TLS stack's TRACE output is no place for bearer tokens either. Each of
//! them is held at INFO ([`CAPPED_TARGETS`]) by a filter that sits beside the `RUST_LOG` one,
//! so no directive (a target, a span filter) can lift it. This crate's own code and the
//! functions never log a token, code or secret at any level (they are [`Secret`]s).
//!
//! [`Secret`]: takeback_alexa::Secret

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

/// The cap filter: everything else passes (the `RUST_LOG` filter still applies).
pub fn caps() -> Targets {
    CAPPED_TARGETS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |t, (target, level)| t.with_target(*target, *level),
    )
}

/// The subscriber the Alexa functions log through, writing to `writer`; `directives` is
/// `RUST_LOG` (an invalid value falls back to `info`).
pub fn subscriber<W>(directives: &str, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(filter)
        .with(caps())
        .with(
            fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_ansi(false)
                .without_time()
                .with_target(false)
                .with_writer(writer),
        )
}

/// Installs the global subscriber (stdout, `RUST_LOG`, default `info`); a second call is a no-op.
pub fn init_json_logs() {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    let _ = tracing::subscriber::set_global_default(subscriber(&directives, std::io::stdout));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
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

    fn logged(directives: &str, emit: impl FnOnce()) -> String {
        let capture = Capture::default();
        let writer = capture.clone();
        let guard = takeback_common::telemetry::capture::set_thread_default(subscriber(
            directives,
            move || writer.clone(),
        ));
        emit();
        drop(guard);
        let bytes = capture.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// What `lambda_runtime` and the SDK print at TRACE (the raw event, whole DynamoDB requests)
    /// never reaches the logs, even with `RUST_LOG=trace` or a span directive; our own TRACE
    /// lines do.
    #[test]
    fn library_trace_output_is_capped_whatever_rust_log_says() {
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
}
