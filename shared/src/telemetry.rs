//! Logging set-up shared by every function: JSON lines (CloudWatch-friendly), level from
//! `RUST_LOG` (default `info`), no ANSI colours, no timestamps (Lambda adds its own).

/// Installs the global subscriber; a second call (tests, the emulator) is a no-op.
pub fn init_json_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init();
}
