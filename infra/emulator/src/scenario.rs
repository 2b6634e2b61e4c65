//! Scenario files (`events/scenarios/*.json`): the pairs, the calls with how the caller, Connect
//! and the transfer target behave, the SMA's undocumented choices, and the expected outcome.
//!
//! ```json
//! { "name": "happy-path",
//!   "description": "…",
//!   "pairs": { "sma_numbers": ["+18005557777"], "connect_numbers": ["+18005551111"] },
//!   "env": { "LOOKUP_MODE": "keep" },
//!   "sma": { "hangup_events": "hangup_then_success", "update_delay_ms": 200 },
//!   "connect": { "answer": "answer", "answer_after_ms": 1000 },
//!   "target": { "answer": "answer", "answer_after_ms": 2000 },
//!   "caller": { "ivr_input": ["1"], "talk_ms": 10000 },
//!   "calls": [ { "caller": "+12065550123", "dialled": "+18005550100" } ],
//!   "expect": { "all": { "outcome": "transferred", "target": "$DEFAULT_TRANSFER_TARGET" } } }
//! ```
//!
//! An expected `target` written `$NAME` is the value of `NAME` in the functions' environment
//! (the env file, `infra/local.env`, plus the scenario's `env`), so the same scenario holds in
//! process and against `make watch`.
//!
//! Per-call `connect`, `target`, `caller` and `sma` objects replace the scenario-level ones for
//! that call (whole objects: unspecified fields take the built-in defaults, not the scenario's).
//! `count` repeats a call (the caller number is incremented for each copy, `spacing_ms` apart).
//! Unknown fields are errors, so a typo cannot silently weaken a scenario.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use takeback_dynamo::seed::PairsFile;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub pairs: PairsFile,
    /// Contact flow, relative to the workspace root. Default `infra/contact-flow.json`.
    #[serde(default)]
    pub flow: Option<String>,
    /// Environment of the in-process functions (on top of the emulator's defaults).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub sma: SmaKnobs,
    #[serde(default)]
    pub connect: ConnectBehaviour,
    #[serde(default)]
    pub target: TargetBehaviour,
    /// Behaviour of particular SIP targets by Uri (e.g. the fallback), over `target`.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetBehaviour>,
    #[serde(default)]
    pub caller: CallerBehaviour,
    pub calls: Vec<CallSpec>,
    #[serde(default)]
    pub expect: Expect,
    /// Stores this scenario runs against (`memory`, `dynamodb`); empty: both. With a reason in
    /// `skip_reason`, shown when the scenario is skipped.
    #[serde(default)]
    pub stores: Vec<String>,
    #[serde(default)]
    pub skip_reason: Option<String>,
}

/// Choices the real service makes that its documentation leaves open, and retries.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SmaKnobs {
    /// Which events a `Hangup` action on a bridged LEG-B produces, and in which order.
    pub hangup_events: HangupEvents,
    /// Delay between an accepted `UpdateSipMediaApplicationCall` and `CALL_UPDATE_REQUESTED`.
    pub update_delay_ms: u64,
    /// Event types delivered twice, as after the 5 s Lambda timeout: the first response is
    /// discarded and the same event is delivered again 5 s later.
    pub redeliver: Vec<String>,
    /// Errors the Chime SDK Voice API answers to the first update requests
    /// (e.g. `ThrottledClientException`), one per request.
    pub chime_api_faults: Vec<String>,
}

impl Default for SmaKnobs {
    fn default() -> Self {
        Self {
            hangup_events: HangupEvents::HangupThenSuccess,
            update_delay_ms: 200,
            redeliver: Vec::new(),
            chime_api_faults: Vec::new(),
        }
    }
}

/// The documentation says a Hangup of a bridged LEG-B produces a `HANGUP` event for LEG-B; the
/// seed's code waits for `ACTION_SUCCESSFUL` of the Hangup. Both, either, in either order.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HangupEvents {
    Hangup,
    HangupThenSuccess,
    SuccessThenHangup,
    Success,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    #[default]
    Answer,
    NoAnswer,
    Busy,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectBehaviour {
    pub answer: Answer,
    pub answer_after_ms: u64,
    /// Connect drops the contact this long after answering, wherever the flow is.
    pub hangs_up_after_ms: Option<u64>,
}

impl Default for ConnectBehaviour {
    fn default() -> Self {
        Self {
            answer: Answer::Answer,
            answer_after_ms: 1000,
            hangs_up_after_ms: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TargetBehaviour {
    pub answer: Answer,
    pub answer_after_ms: u64,
    /// The far end hangs up this long after answering.
    pub hangs_up_after_ms: Option<u64>,
}

impl Default for TargetBehaviour {
    fn default() -> Self {
        Self {
            answer: Answer::Answer,
            answer_after_ms: 2000,
            hangs_up_after_ms: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CallerBehaviour {
    /// Digits keyed in, one entry per `GetParticipantInput` block reached.
    pub ivr_input: Vec<String>,
    /// Time from the prompt's end to the input.
    pub input_after_ms: u64,
    /// The caller hangs up this long after the call arrived, wherever it is.
    pub hangs_up_at_ms: Option<u64>,
    /// After reaching a SIP target, the caller talks this long, then hangs up.
    pub talk_ms: u64,
}

impl Default for CallerBehaviour {
    fn default() -> Self {
        Self {
            ivr_input: Vec::new(),
            input_after_ms: 1500,
            hangs_up_at_ms: None,
            talk_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    pub caller: String,
    pub dialled: String,
    #[serde(default)]
    pub at_ms: u64,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub spacing_ms: u64,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub connect: Option<ConnectBehaviour>,
    #[serde(default)]
    pub target: Option<TargetBehaviour>,
    #[serde(default)]
    pub caller_behaviour: Option<CallerBehaviour>,
    #[serde(default)]
    pub sma: Option<SmaKnobs>,
    #[serde(default)]
    pub expect: Option<CallExpect>,
}

fn one() -> u32 {
    1
}

/// Where the caller ended up.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// Bridged to a SIP transfer target.
    Transferred,
    /// Bridged to the configured fallback target.
    Fallback,
    /// Heard the busy message and was hung up with 486.
    Busy,
    /// Hung up with 480 (Connect unreachable, transfer failed, store down, ...).
    Unavailable,
    /// Hung up normally by the system without a transfer (e.g. Connect ended the call).
    Ended,
    /// Hung up before any transfer.
    CallerHungUp,
    /// The first invocation failed: the call was never answered.
    Rejected,
    /// Still connected when nothing more was going to happen: left in silence.
    Stuck,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transferred => "transferred",
            Self::Fallback => "fallback",
            Self::Busy => "busy",
            Self::Unavailable => "unavailable",
            Self::Ended => "ended",
            Self::CallerHungUp => "caller_hung_up",
            Self::Rejected => "rejected",
            Self::Stuck => "stuck",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CallExpect {
    pub outcome: Option<CallOutcome>,
    /// Uri of the SIP target the caller reached; `$NAME` reads the functions' environment.
    pub target: Option<String>,
    /// Substrings of what the caller heard (Speak on LEG-A), each must appear.
    pub heard: Vec<String>,
    /// SIP code of the system's hangup of the caller.
    pub hangup_code: Option<u16>,
    /// `result` of the (last) lookup Lambda, e.g. `found`.
    pub lookup: Option<String>,
    /// `result` of the (last) transfer Lambda, e.g. `transferring`, `not_found`.
    pub transfer: Option<String>,
    /// Number of `CALL_UPDATE_REQUESTED` events delivered.
    pub updates: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Expect {
    /// Expectations every call must meet (a call's own `expect` is checked too).
    pub all: Option<CallExpect>,
    /// Number of calls per outcome, e.g. `{"transferred": 9, "busy": 3}`.
    pub counts: BTreeMap<CallOutcome, usize>,
    pub pairs_free_at_end: bool,
    pub no_wrong_transfers: bool,
    /// Rule ids (see `rules`) this scenario expects the handler to break; anything else fails.
    pub violations: Vec<String>,
}

impl Default for Expect {
    fn default() -> Self {
        Self {
            all: None,
            counts: BTreeMap::new(),
            pairs_free_at_end: true,
            no_wrong_transfers: true,
            violations: Vec::new(),
        }
    }
}

/// One call as the simulation runs it: the spec expanded, the defaults applied.
#[derive(Debug, Clone)]
pub struct CallPlan {
    pub label: String,
    pub caller: String,
    pub dialled: String,
    pub at_ms: u64,
    pub connect: ConnectBehaviour,
    pub target: TargetBehaviour,
    pub caller_behaviour: CallerBehaviour,
    pub sma: SmaKnobs,
    pub expect: Vec<CallExpect>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid scenario: {source}")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Scenario {
    pub fn load(path: &std::path::Path) -> Result<Self, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: shown.clone(),
            source,
        })?;
        let s: Self = serde_json::from_str(&text).map_err(|source| ScenarioError::Parse {
            path: shown.clone(),
            source,
        })?;
        s.validate()
            .map_err(|e| ScenarioError::Invalid(format!("{shown}: {e}")))?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), String> {
        self.pairs.pairs().map_err(|e| format!("pairs: {e}"))?;
        if self.calls.is_empty() {
            return Err("no calls".into());
        }
        for c in &self.calls {
            for n in [&c.caller, &c.dialled] {
                if !crate::rules::is_e164(n) {
                    return Err(format!("{n:?} is not an E.164 number"));
                }
            }
        }
        Ok(())
    }

    /// Every call, expanded and with defaults applied, in arrival order.
    pub fn plans(&self) -> Vec<CallPlan> {
        let mut plans = Vec::new();
        for (i, spec) in self.calls.iter().enumerate() {
            for k in 0..spec.count.max(1) {
                let mut expect: Vec<CallExpect> = self.expect.all.iter().cloned().collect();
                expect.extend(spec.expect.iter().cloned());
                let label = match (&spec.label, spec.count) {
                    (Some(l), 1) => l.clone(),
                    (Some(l), _) => format!("{l} #{}", k + 1),
                    (None, 1) => format!("call {}", i + 1),
                    (None, _) => format!("call {}.{}", i + 1, k + 1),
                };
                plans.push(CallPlan {
                    label,
                    caller: offset_number(&spec.caller, u64::from(k)),
                    dialled: spec.dialled.clone(),
                    at_ms: spec.at_ms + u64::from(k) * spec.spacing_ms,
                    connect: spec.connect.clone().unwrap_or_else(|| self.connect.clone()),
                    target: spec.target.clone().unwrap_or_else(|| self.target.clone()),
                    caller_behaviour: spec
                        .caller_behaviour
                        .clone()
                        .unwrap_or_else(|| self.caller.clone()),
                    sma: spec.sma.clone().unwrap_or_else(|| self.sma.clone()),
                    expect,
                });
            }
        }
        plans.sort_by_key(|p| p.at_ms);
        plans
    }

    /// Load mode: `n` copies of the first call, arriving at `rate` per second (evenly spaced,
    /// with a deterministic jitter of up to half a gap so arrivals are not perfectly regular).
    pub fn load_plans(&self, n: usize, rate: f64) -> Vec<CallPlan> {
        let template = self.plans().into_iter().next();
        let Some(template) = template else {
            return Vec::new();
        };
        let gap_ms = if rate > 0.0 { 1000.0 / rate } else { 0.0 };
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..n)
            .map(|i| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let jitter = ((seed >> 33) % 1000) as f64 / 1000.0 * gap_ms * 0.5;
                let at = (i as f64 * gap_ms + jitter) as u64;
                CallPlan {
                    label: format!("load {}", i + 1),
                    caller: offset_number(&template.caller, i as u64),
                    at_ms: at / 100 * 100,
                    expect: Vec::new(),
                    ..template.clone()
                }
            })
            .collect()
    }
}

/// `+12065550100` offset by `k` in its last digits (`+12065550101`, ...).
pub fn offset_number(number: &str, k: u64) -> String {
    if k == 0 {
        return number.to_owned();
    }
    let digits = number.trim_start_matches('+');
    match digits.parse::<u64>() {
        Ok(n) => format!("+{}", n.saturating_add(k)),
        Err(_) => number.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_expand_with_distinct_callers_and_spacing() {
        let s: Scenario = serde_json::from_value(serde_json::json!({
            "name": "x",
            "pairs": {"sma_numbers": ["+18005557777"], "connect_numbers": ["+18005551111"]},
            "calls": [{"caller": "+12065550100", "dialled": "+18005550100", "count": 3, "spacing_ms": 500}],
            "expect": {"all": {"outcome": "transferred"}}
        }))
        .unwrap();
        let plans = s.plans();
        assert_eq!(plans.len(), 3);
        assert_eq!(plans[2].caller, "+12065550102");
        assert_eq!(plans[2].at_ms, 1000);
        assert_eq!(plans[0].expect[0].outcome, Some(CallOutcome::Transferred));
        let load = s.load_plans(10, 2.0);
        assert_eq!(load.len(), 10);
        assert!(load.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert!(
            load[9].at_ms >= 4500 && load[9].at_ms < 4800,
            "{}",
            load[9].at_ms
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<Scenario, _> = serde_json::from_value(serde_json::json!({
            "name": "x", "pairs": {}, "calls": [], "expectt": {}
        }));
        assert!(r.is_err());
    }
}
