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

/// Log capture for tests that check what reaches the logs (masked numbers, no secrets).
#[cfg(feature = "test-support")]
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
