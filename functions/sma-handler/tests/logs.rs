//! Phone numbers never appear in full in the handler's logs, at any level down to info.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use sma_handler::{Deps, handle};
use takeback_core::store::memory::InjectedFault;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn info_logs_mask_the_callers_number() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let deps = Deps {
        store: store(),
        flow: flow(),
    };
    handle(&deps, fixture("sma-new-inbound-call-basic"))
        .await
        .unwrap();
    deps.store.inject_fault(InjectedFault::Unavailable);
    let mut second = fixture("sma-new-inbound-call-basic");
    second["CallDetails"]["TransactionId"] = "another".into();
    handle(&deps, second).await.unwrap();
    handle(&deps, fixture("sma-hangup-leg-a-caller"))
        .await
        .unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("decided"),
        "the handler logged nothing: {logs}"
    );
    assert!(
        logs.contains("+1********23"),
        "masked caller missing: {logs}"
    );
    for number in ["+12065550123", "2065550123"] {
        assert!(!logs.contains(number), "{number} in logs: {logs}");
    }
}
