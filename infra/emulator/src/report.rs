//! Verdicts (a scenario's expectations against what happened), the readable timeline, the
//! `--json` document, and the load-mode summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::model::{Entry, Function};
use crate::scenario::{CallOutcome, CallPlan, Scenario};
use crate::simulate::RunResult;
use crate::sma::CallRecord;

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub ok: bool,
    pub what: String,
    /// A per-call expectation (collapsed in the text output when there are many).
    #[serde(skip)]
    pub per_call: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub passed: bool,
    pub checks: Vec<Check>,
}

fn check(checks: &mut Vec<Check>, ok: bool, what: impl Into<String>) {
    checks.push(Check {
        ok,
        what: what.into(),
        per_call: false,
    });
}

fn call_check(checks: &mut Vec<Check>, ok: bool, what: impl Into<String>) {
    checks.push(Check {
        ok,
        what: what.into(),
        per_call: true,
    });
}

/// `$NAME` → the functions' environment value (`$DEFAULT_TRANSFER_TARGET`), else as written.
fn expand(value: &str, env: &BTreeMap<String, String>) -> String {
    value
        .strip_prefix('$')
        .and_then(|name| env.get(name))
        .cloned()
        .unwrap_or_else(|| value.to_owned())
}

/// Rules that are problems in every scenario unless the scenario lists them in
/// `expect.violations`: every finding.
pub fn verdict(
    scenario: &Scenario,
    plans: &[CallPlan],
    result: &RunResult,
    fallback_configured: bool,
    env: &BTreeMap<String, String>,
) -> Verdict {
    let mut checks = Vec::new();
    for (plan, call) in plans.iter().zip(&result.calls) {
        let name = &plan.label;
        let outcome = call.outcome.unwrap_or(CallOutcome::Stuck);
        let mut outcome_checked = false;
        for e in &plan.expect {
            if let Some(want) = e.outcome {
                outcome_checked = true;
                call_check(
                    &mut checks,
                    outcome == want,
                    format!(
                        "{name}: outcome {} (expected {})",
                        outcome.as_str(),
                        want.as_str()
                    ),
                );
            }
            if let Some(want) = e.target.as_deref().map(|t| expand(t, env)) {
                let want = &want;
                call_check(
                    &mut checks,
                    call.target.as_deref() == Some(want.as_str()),
                    format!(
                        "{name}: reached target {} (expected {want})",
                        call.target.as_deref().unwrap_or("none")
                    ),
                );
            }
            for h in &e.heard {
                call_check(
                    &mut checks,
                    call.heard.iter().any(|t| t.contains(h.as_str())),
                    format!("{name}: heard \"{h}\""),
                );
            }
            if let Some(code) = e.hangup_code {
                call_check(
                    &mut checks,
                    call.hangup_code == Some(code),
                    format!(
                        "{name}: hung up with {} (expected {code})",
                        call.hangup_code
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| "none".into())
                    ),
                );
            }
            if let Some(want) = &e.lookup {
                let got = call
                    .lookup_results
                    .last()
                    .map(String::as_str)
                    .unwrap_or("none");
                call_check(
                    &mut checks,
                    got == want,
                    format!("{name}: lookup result {got} (expected {want})"),
                );
            }
            if let Some(want) = &e.transfer {
                let got = call
                    .transfer_results
                    .last()
                    .map(String::as_str)
                    .unwrap_or("none");
                call_check(
                    &mut checks,
                    got == want,
                    format!("{name}: transfer result {got} (expected {want})"),
                );
            }
            if let Some(want) = e.updates {
                call_check(
                    &mut checks,
                    call.updates == want,
                    format!(
                        "{name}: {} CALL_UPDATE_REQUESTED (expected {want})",
                        call.updates
                    ),
                );
            }
        }
        if !outcome_checked && outcome == CallOutcome::Stuck {
            call_check(
                &mut checks,
                false,
                format!("{name}: the caller is left connected with nothing happening"),
            );
        }
        let allowed = 1 + u32::from(fallback_configured);
        if call.target_bridges > allowed {
            call_check(
                &mut checks,
                false,
                format!(
                    "{name}: bridged to SIP targets {} times (at most {allowed})",
                    call.target_bridges
                ),
            );
        }
    }
    for (outcome, want) in &scenario.expect.counts {
        let got = result
            .calls
            .iter()
            .filter(|c| c.outcome == Some(*outcome))
            .count();
        check(
            &mut checks,
            got == *want,
            format!("{got} calls {} (expected {want})", outcome.as_str()),
        );
    }
    if scenario.expect.pairs_free_at_end {
        match &result.held_at_end {
            Some(held) if held.is_empty() => check(&mut checks, true, "pairs all free at the end"),
            Some(held) => check(
                &mut checks,
                false,
                format!(
                    "pairs leaked: {}",
                    held.iter()
                        .map(|h| format!(
                            "{}→{} (txn {})",
                            h.sma_number,
                            h.connect_number,
                            short(&h.transaction_id)
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            None => check(
                &mut checks,
                true,
                result
                    .pair_check_note
                    .clone()
                    .unwrap_or_else(|| "pair check skipped".into()),
            ),
        }
    }
    let wrong = result
        .findings
        .iter()
        .filter(|f| f.rule == "transfer.wrong_caller")
        .count();
    if scenario.expect.no_wrong_transfers {
        check(
            &mut checks,
            wrong == 0,
            if wrong == 0 {
                "no wrong-caller transfer".to_owned()
            } else {
                format!("{wrong} wrong-caller transfers")
            },
        );
    }
    let expected = &scenario.expect.violations;
    let unexpected: Vec<String> = result
        .findings
        .iter()
        .filter(|f| f.rule != "transfer.wrong_caller" && !expected.iter().any(|e| e == &f.rule))
        .map(|f| {
            format!(
                "{}{}: {}",
                f.call
                    .map(|c| format!("call {}: ", c + 1))
                    .unwrap_or_default(),
                f.rule,
                f.detail
            )
        })
        .collect();
    check(
        &mut checks,
        unexpected.is_empty(),
        if unexpected.is_empty() {
            "every response valid, no emulator finding".to_owned()
        } else {
            format!("findings: {}", unexpected.join(" | "))
        },
    );
    for e in expected {
        let seen = result.findings.iter().any(|f| &f.rule == e);
        check(&mut checks, seen, format!("expected finding {e}"));
    }
    Verdict {
        passed: checks.iter().all(|c| c.ok),
        checks,
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

pub struct Style {
    color: bool,
}

impl Style {
    pub fn detect() -> Self {
        Self {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn green(&self, t: &str) -> String {
        self.paint("32", t)
    }
    fn red(&self, t: &str) -> String {
        self.paint("31", t)
    }
    fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
    fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
}

fn outcome_text(c: &CallRecord) -> String {
    let o = c.outcome.unwrap_or(CallOutcome::Stuck);
    let mut s = match (o, &c.target) {
        (CallOutcome::Transferred | CallOutcome::Fallback, Some(t)) => {
            format!("{} to {t}", o.as_str())
        }
        _ => o.as_str().to_owned(),
    };
    if let Some(code) = c.hangup_code {
        let _ = write!(s, ", caller hung up by the system ({code})");
    } else if c.caller_hung_up {
        s.push_str(", the caller hung up");
    }
    let _ = write!(
        s,
        " · {} invocations, {} update(s)",
        c.invocations, c.updates
    );
    s
}

/// The readable timeline of one scenario run plus its checks.
pub fn render_text(
    scenario: &Scenario,
    result: &RunResult,
    verdict: &Verdict,
    style: &Style,
    show_timeline: bool,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}",
        style.bold(&format!("━━ {}", scenario.name)),
        style.dim(&scenario.description)
    );
    if show_timeline {
        let mut by_call: BTreeMap<usize, Vec<&Entry>> = BTreeMap::new();
        for e in &result.timeline {
            by_call.entry(e.call).or_default().push(e);
        }
        for call in &result.calls {
            let _ = writeln!(
                out,
                "  {} · {} → {} · txn {}",
                style.bold(&call.label),
                call.caller,
                call.dialled,
                short(&call.transaction_id)
            );
            for e in by_call
                .get(&call.index)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let latency = e
                    .latency_ms
                    .map(|l| style.dim(&format!("  ({l:.1} ms)")))
                    .unwrap_or_default();
                let text = if e.problem {
                    style.red(&e.text)
                } else {
                    e.text.clone()
                };
                let _ = writeln!(
                    out,
                    "    {:>6.1}s  {:<9}  {text}{latency}",
                    e.t_ms as f64 / 1000.0,
                    e.actor.label()
                );
            }
            let _ = writeln!(out, "    ⇒ {}", outcome_text(call));
        }
    } else {
        for call in &result.calls {
            let _ = writeln!(out, "  {}: {}", call.label, outcome_text(call));
        }
    }
    let per_call_ok = verdict.checks.iter().filter(|c| c.per_call && c.ok).count();
    let collapse = per_call_ok > 8;
    if collapse {
        let _ = writeln!(
            out,
            "  {} {per_call_ok} per-call expectations met",
            style.green("✓")
        );
    }
    for c in verdict
        .checks
        .iter()
        .filter(|c| !(collapse && c.per_call && c.ok))
    {
        let mark = if c.ok {
            style.green("✓")
        } else {
            style.red("✗")
        };
        let _ = writeln!(out, "  {mark} {}", c.what);
    }
    let head = if verdict.passed {
        style.green("PASS")
    } else {
        style.red("FAIL")
    };
    let _ = writeln!(
        out,
        "{head} {} · {} call(s) · {:.1} s virtual · {:.2} s wall{}\n",
        scenario.name,
        result.calls.len(),
        result.virtual_ms as f64 / 1000.0,
        result.wall.as_secs_f64(),
        latency_line(result)
            .map(|l| format!(" · {l}"))
            .unwrap_or_default()
    );
    out
}

/// Percentile (nearest rank) of a sorted sample.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencyStats {
    pub invocations: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn stats(v: &[Duration]) -> LatencyStats {
    let ms = |d: Option<Duration>| {
        d.map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0)
            .unwrap_or(0.0)
    };
    let mut v = v.to_vec();
    v.sort();
    LatencyStats {
        invocations: v.len(),
        p50_ms: ms(percentile(&v, 50.0)),
        p99_ms: ms(percentile(&v, 99.0)),
        max_ms: ms(v.last().copied()),
    }
}

pub fn latency_stats(result: &RunResult) -> BTreeMap<Function, LatencyStats> {
    result
        .latencies
        .iter()
        .map(|(f, v)| (*f, stats(v)))
        .collect()
}

/// SMA handler latency per invocation event type.
pub fn sma_event_stats(result: &RunResult) -> BTreeMap<String, LatencyStats> {
    result
        .event_latencies
        .iter()
        .map(|(e, v)| (e.clone(), stats(v)))
        .collect()
}

fn latency_line(result: &RunResult) -> Option<String> {
    let stats = latency_stats(result);
    let s = stats.get(&Function::Sma)?;
    Some(format!(
        "sma-handler p50 {:.1} ms p99 {:.1} ms",
        s.p50_ms, s.p99_ms
    ))
}

pub fn scenario_json(scenario: &Scenario, result: &RunResult, verdict: &Verdict) -> Value {
    let calls: Vec<Value> = result
        .calls
        .iter()
        .map(|c| {
            let timeline: Vec<&Entry> = result
                .timeline
                .iter()
                .filter(|e| e.call == c.index)
                .collect();
            let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
            v["timeline"] = serde_json::to_value(timeline).unwrap_or(Value::Null);
            v
        })
        .collect();
    let latency: BTreeMap<&str, LatencyStats> = latency_stats(result)
        .into_iter()
        .map(|(f, s)| (f.label(), s))
        .collect();
    json!({
        "name": scenario.name,
        "description": scenario.description,
        "passed": verdict.passed,
        "checks": verdict.checks,
        "calls": calls,
        "contacts": result.contacts,
        "findings": result.findings,
        "updates": result.updates,
        "held_at_end": result.held_at_end,
        "virtual_ms": result.virtual_ms,
        "wall_ms": result.wall.as_millis() as u64,
        "latency": latency,
        "sma_latency_by_event": sma_event_stats(result),
    })
}

/// Load mode: what a run of many calls did.
#[derive(Debug, Clone, Serialize)]
pub struct LoadSummary {
    pub rate_per_s: f64,
    pub calls: usize,
    pub pairs: usize,
    pub lookup_mode: String,
    pub store: String,
    pub completed: usize,
    pub transferred: usize,
    pub busy: usize,
    pub caller_hung_up: usize,
    pub failed: usize,
    pub pairs_leaked: Option<usize>,
    pub wrong_transfers: usize,
    pub findings: usize,
    pub peak_pairs_held: Option<usize>,
    pub latency: BTreeMap<String, LatencyStats>,
    /// SMA handler latency per event type (`NEW_INBOUND_CALL` claims, `CALL_UPDATE_REQUESTED`
    /// releases, most others touch no store).
    pub sma_latency_by_event: BTreeMap<String, LatencyStats>,
    pub store_requests_per_call: Option<f64>,
    pub virtual_s: f64,
    pub wall_s: f64,
    /// Every call was served (none busy, none failed, nothing leaked, no wrong transfer).
    pub sustained: bool,
}

pub fn load_summary(
    result: &RunResult,
    rate: f64,
    pairs: usize,
    lookup_mode: &str,
    store: &str,
    store_requests: Option<u64>,
) -> LoadSummary {
    let count = |o: &[CallOutcome]| {
        result
            .calls
            .iter()
            .filter(|c| c.outcome.is_some_and(|x| o.contains(&x)))
            .count()
    };
    let transferred = count(&[CallOutcome::Transferred, CallOutcome::Fallback]);
    let busy = count(&[CallOutcome::Busy]);
    let caller_hung_up = count(&[CallOutcome::CallerHungUp]);
    let failed = count(&[
        CallOutcome::Unavailable,
        CallOutcome::Rejected,
        CallOutcome::Ended,
        CallOutcome::Stuck,
    ]);
    let wrong = result
        .findings
        .iter()
        .filter(|f| f.rule == "transfer.wrong_caller")
        .count();
    let leaked = result.held_at_end.as_ref().map(Vec::len);
    let n = result.calls.len();
    LoadSummary {
        rate_per_s: rate,
        calls: n,
        pairs,
        lookup_mode: lookup_mode.to_owned(),
        store: store.to_owned(),
        completed: n - count(&[CallOutcome::Stuck]),
        transferred,
        busy,
        caller_hung_up,
        failed,
        pairs_leaked: leaked,
        wrong_transfers: wrong,
        findings: result.findings.len(),
        peak_pairs_held: result.peak_pairs_held,
        latency: latency_stats(result)
            .into_iter()
            .map(|(f, s)| (f.label().to_owned(), s))
            .collect(),
        sma_latency_by_event: sma_event_stats(result),
        store_requests_per_call: store_requests
            .filter(|_| n > 0)
            .map(|r| (r as f64 / n as f64 * 10.0).round() / 10.0),
        virtual_s: result.virtual_ms as f64 / 1000.0,
        wall_s: (result.wall.as_secs_f64() * 100.0).round() / 100.0,
        sustained: busy == 0
            && failed == 0
            && leaked.unwrap_or(0) == 0
            && wrong == 0
            && result.findings.is_empty(),
    }
}

pub fn render_load(s: &LoadSummary, style: &Style) -> String {
    let mut out = String::new();
    let lat = |name: &str| {
        s.latency
            .get(name)
            .map(|l| {
                format!(
                    "p50 {:.1} ms, p99 {:.1} ms ({} invocations)",
                    l.p50_ms, l.p99_ms, l.invocations
                )
            })
            .unwrap_or_else(|| "-".into())
    };
    let verdict = if s.sustained {
        style.green("sustained")
    } else {
        style.red("NOT sustained")
    };
    let _ = writeln!(
        out,
        "{} {} calls at {:.2}/s on {} pairs, LOOKUP_MODE={}, {} — {verdict}",
        style.bold("load:"),
        s.calls,
        s.rate_per_s,
        s.pairs,
        s.lookup_mode,
        s.store
    );
    let _ = writeln!(
        out,
        "  completed {}  transferred {}  busy {}  caller hung up {}  failed {}",
        s.completed, s.transferred, s.busy, s.caller_hung_up, s.failed
    );
    let _ = writeln!(
        out,
        "  pairs leaked {}  wrong transfers {}  findings {}  peak pairs held {}",
        s.pairs_leaked
            .map(|n| n.to_string())
            .unwrap_or_else(|| "?".into()),
        s.wrong_transfers,
        s.findings,
        s.peak_pairs_held
            .map(|n| format!("{n}/{}", s.pairs))
            .unwrap_or_else(|| "?".into())
    );
    let _ = writeln!(out, "  sma-handler      {}", lat("sma-handler"));
    for (event, l) in &s.sma_latency_by_event {
        let _ = writeln!(
            out,
            "    {event:<24} p50 {:.1} ms, p99 {:.1} ms ({})",
            l.p50_ms, l.p99_ms, l.invocations
        );
    }
    let _ = writeln!(out, "  connect-lookup   {}", lat("connect-lookup"));
    let _ = writeln!(out, "  connect-transfer {}", lat("connect-transfer"));
    let _ = writeln!(
        out,
        "  store requests per call {}  ·  {:.0} s virtual in {:.1} s wall",
        s.store_requests_per_call
            .map(|r| format!("{r:.1}"))
            .unwrap_or_else(|| "?".into()),
        s.virtual_s,
        s.wall_s
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&v, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&v[..1], 99.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
