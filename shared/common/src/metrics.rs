//! Outcome metrics in CloudWatch embedded metric format (EMF): one JSON object per line on
//! stdout, which CloudWatch Logs turns into metrics without an SDK call, a client or a network
//! round trip inside the caller's time budget.
//!
//! Every function reports each invocation's outcome once ([`Outcome::emit`]), as counts of 1
//! under [`NAMESPACE`] with the single dimension `Function`; a count that did not happen is not
//! written (alarms and the dashboard fill gaps with 0). The outcome label travels as a plain
//! property, searchable in Logs Insights without becoming a metric of its own.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns [`Outcome::emit`] on for this process. Only a function's `main` calls it: the emulator,
/// the fuzzer and the tests drive the same handlers in process, and their stdout is theirs.
pub fn enable_stdout() {
    STDOUT_ENABLED.store(true, Ordering::Relaxed);
}

/// The CloudWatch namespace of every metric; the template's alarms and dashboard name it too.
pub const NAMESPACE: &str = "TakeBackAndTransfer";
/// The one dimension: which function counted.
pub const DIMENSION: &str = "Function";

/// The metric names (CloudWatch metric names; the template refers to them).
pub mod names {
    /// A caller got a pair and is bridged to Connect.
    pub const CLAIMS: &str = "Claims";
    /// No free pair: the caller heard the busy message (or went to the fallback target).
    pub const BUSY: &str = "Busy";
    /// The caller was bridged to the fallback target.
    pub const FALLBACKS: &str = "Fallbacks";
    /// A transfer started (SMA: bridging to the target; Connect: the SMA accepted the update).
    pub const TRANSFERS: &str = "Transfers";
    /// A transfer could not be completed (target unreachable, update refused or failed).
    pub const TRANSFER_FAILURES: &str = "TransferFailures";
    pub const LOOKUPS_FOUND: &str = "LookupsFound";
    pub const LOOKUPS_NOT_FOUND: &str = "LookupsNotFound";
    /// DynamoDB failed (throttled, unavailable, corrupt data, timeout).
    pub const STORE_ERRORS: &str = "StoreErrors";
    /// A remote API failed (Chime SDK Voice, Alexa, Login with Amazon, the webhook).
    pub const API_ERRORS: &str = "ApiErrors";
    /// A new Alexa call session (an Alexa device or the property starts a call).
    pub const ALEXA_SESSIONS: &str = "AlexaSessions";
}

/// What one invocation counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    function: &'static str,
    label: Option<String>,
    counts: Vec<&'static str>,
}

impl Outcome {
    pub fn new(function: &'static str) -> Self {
        Self {
            function,
            label: None,
            counts: Vec::new(),
        }
    }

    /// A short label of what happened (the handler's outcome), written as a property.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Counts `name` once (a second count of the same name is ignored: one outcome, one count).
    pub fn count(mut self, name: &'static str) -> Self {
        if !self.counts.contains(&name) {
            self.counts.push(name);
        }
        self
    }

    /// [`count`](Self::count) when `condition` holds.
    pub fn count_if(self, condition: bool, name: &'static str) -> Self {
        if condition { self.count(name) } else { self }
    }

    pub fn counts(&self) -> &[&'static str] {
        &self.counts
    }

    /// The EMF line at `timestamp_ms` (epoch milliseconds), or `None` when nothing was counted.
    pub fn to_emf(&self, timestamp_ms: u64) -> Option<String> {
        if self.counts.is_empty() {
            return None;
        }
        let metrics: Vec<serde_json::Value> = self
            .counts
            .iter()
            .map(|name| serde_json::json!({ "Name": name, "Unit": "Count" }))
            .collect();
        let mut line = serde_json::Map::new();
        line.insert(
            "_aws".to_owned(),
            serde_json::json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": metrics,
                }],
            }),
        );
        line.insert(DIMENSION.to_owned(), self.function.into());
        if let Some(label) = &self.label {
            line.insert("outcome".to_owned(), label.as_str().into());
        }
        for name in &self.counts {
            line.insert((*name).to_owned(), 1.into());
        }
        Some(serde_json::Value::Object(line).to_string())
    }

    /// Writes the EMF line to stdout (where Lambda sends it to CloudWatch Logs) once
    /// [`enable_stdout`] was called; a no-op before. A failed write loses one data point and
    /// never fails the invocation.
    pub fn emit(&self) {
        if !STDOUT_ENABLED.load(Ordering::Relaxed) {
            return;
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or_default();
        if let Some(line) = self.to_emf(now_ms) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_is_one_emf_object_declaring_each_count() {
        let line = Outcome::new("sma-handler")
            .label("no_free_pair")
            .count(names::BUSY)
            .count(names::BUSY)
            .count(names::STORE_ERRORS)
            .to_emf(1_700_000_000_123)
            .expect("something was counted");
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_123_u64);
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], serde_json::json!([["Function"]]));
        assert_eq!(
            directive["Metrics"],
            serde_json::json!([
                {"Name": "Busy", "Unit": "Count"},
                {"Name": "StoreErrors", "Unit": "Count"}
            ])
        );
        // EMF resolves every declared name and dimension from the object's root members.
        assert_eq!(v["Function"], "sma-handler");
        assert_eq!(v["Busy"], 1);
        assert_eq!(v["StoreErrors"], 1);
        assert_eq!(v["outcome"], "no_free_pair");
    }

    #[test]
    fn nothing_counted_writes_nothing() {
        assert_eq!(
            Outcome::new("connect-lookup")
                .label("x")
                .count_if(false, names::CLAIMS)
                .to_emf(1),
            None
        );
    }
}
