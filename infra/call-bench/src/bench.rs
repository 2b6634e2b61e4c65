//! The three runs — cold start, warm calls, calls under throttling — for both functions.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use serde_json::{Value, json};
use soak::proxy::FaultProxy;
use takeback_dynamo::seed::seed_pairs;
use takeback_dynamo::tables::{self, create_table};
use takeback_pairs::PairKey;

use crate::answer::{self, Markers, Refusal, Verdict};
use crate::events::Templates;
use crate::function::{Environment, FunctionCommand, FunctionError, Side};
use crate::runtime_api::{Outcome, RuntimeApi, Waited};
use crate::stats::{median, percentile, ratio, round2};

/// How long past the function's timeout the benchmark still waits for a late answer (which
/// then counts as a timeout) before it gives the environment up.
const LATE_GRACE: Duration = Duration::from_secs(10);
/// Untimed calls before the warm figures: the first one pays the init and the first claim.
const WARM_UP_CALLS: usize = 3;
/// Pairs beyond one per call: a pair freed by a hangup before Connect looked it up rests
/// 15 s before our claims hand it to another transaction, so a run of quick calls needs
/// about a pair per call to never hear "busy".
const SPARE_PAIRS: usize = 64;
/// Pairs of the cold-start tables (10 cold processes each free one pair, which then rests).
const COLD_PAIRS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Function(#[from] FunctionError),
    #[error("tables: {0}")]
    Tables(String),
    #[error("{side} {phase}: {problem}")]
    Run {
        side: &'static str,
        phase: &'static str,
        problem: String,
    },
}

/// What one run is made of.
#[derive(Debug, Clone)]
pub struct Plan {
    pub cold_processes: usize,
    pub warm_calls: usize,
    pub throttled_calls: usize,
    /// Execution environments side by side in the throttled run.
    pub throttled_environments: usize,
    pub throttle_rate: f64,
    /// Added by the proxy to every DynamoDB request.
    pub dynamodb_delay_ms: u64,
}

/// Everything the runs share.
pub struct Bench {
    pub setup: Client,
    pub proxy: FaultProxy,
    pub templates: Templates,
    pub markers: Markers,
    pub ours: FunctionCommand,
    pub sample: FunctionCommand,
    /// The model's Python, boto3 and botocore versions.
    pub sample_versions: Value,
    pub plan: Plan,
}

/// Fresh tables: ours reads both, the sample's model only the pairs table.
#[derive(Debug, Clone)]
pub struct Tables {
    pub pairs: String,
    pub calls: String,
}

/// `n` pairs: SMA number i/8 × Connect number i%8.
pub fn bench_pairs(n: usize) -> Vec<PairKey> {
    (0..n)
        .map(|i| PairKey {
            sma_number: format!("+1800555{:04}", i / 8),
            connect_number: format!("+1888444{:04}", i % 8),
        })
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Counts of `after` minus `before`, zeros left out.
fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// One call's first event and what the caller got.
struct NewCall {
    transaction_id: String,
    waited: Waited,
    verdict: Verdict,
}

impl Bench {
    fn command(&self, side: Side) -> &FunctionCommand {
        match side {
            Side::Ours => &self.ours,
            Side::Sample => &self.sample,
        }
    }

    /// The side's command on `tables`.
    fn on_tables(&self, side: Side, tables: &Tables) -> FunctionCommand {
        let mut command = self.command(side).clone();
        let vars: &[(&str, &str)] = match side {
            Side::Ours => &[
                ("PAIRS_TABLE", &tables.pairs),
                ("CALLS_TABLE", &tables.calls),
            ],
            // The sample's name for its one table.
            Side::Sample => &[("INTEGRATION_TABLE", &tables.pairs)],
        };
        command
            .env
            .extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        command
    }

    /// Fresh tables, defined as the project deploys them, with `pairs` free pairs.
    pub async fn fresh_tables(&self, pairs: usize) -> Result<Tables, BenchError> {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let t = Tables {
            pairs: format!("callbench-pairs-{suffix}"),
            calls: format!("callbench-calls-{suffix}"),
        };
        for (def, name) in [(&tables::PAIRS, &t.pairs), (&tables::CALLS, &t.calls)] {
            create_table(&self.setup, def, name)
                .await
                .map_err(|e| BenchError::Tables(format!("create {name}: {e}")))?;
        }
        seed_pairs(&self.setup, &t.pairs, &bench_pairs(pairs))
            .await
            .map_err(|e| BenchError::Tables(format!("seed {}: {e}", t.pairs)))?;
        Ok(t)
    }

    fn wait_limit(&self, side: Side) -> Duration {
        self.command(side).timeout + LATE_GRACE
    }

    /// Sends a `NEW_INBOUND_CALL` and waits for its answer.
    async fn new_call(&self, side: Side, api: &RuntimeApi) -> NewCall {
        let transaction_id = uuid::Uuid::new_v4().to_string();
        let event = self.templates.new_inbound_call(&transaction_id, now_ms());
        let waited = api.invoke(&event).wait(self.wait_limit(side)).await;
        let verdict = answer::classify(&waited, self.command(side).timeout, &self.markers);
        NewCall {
            transaction_id,
            waited,
            verdict,
        }
    }

    /// The caller hangs up (LEG-A), with what the SMA would send: the attributes of the
    /// function's answer and the bridge it asked for. True when the function answered it.
    async fn hang_up(&self, side: Side, api: &RuntimeApi, call: &NewCall) -> bool {
        let body = match &call.waited {
            Waited::Answered(a) => match &a.outcome {
                Outcome::Response(body) => Some(body.as_slice()),
                Outcome::Error(_) => None,
            },
            _ => None,
        };
        let attributes = body.and_then(answer::transaction_attributes);
        let bridge = match &call.verdict {
            Verdict::Claimed(bridge) => Some(bridge),
            _ => None,
        };
        let event = self.templates.hangup_leg_a(
            &call.transaction_id,
            now_ms(),
            attributes.as_ref(),
            bridge,
        );
        let waited = api.invoke(&event).wait(self.wait_limit(side)).await;
        matches!(waited, Waited::Answered(a) if matches!(a.outcome, Outcome::Response(_)))
    }

    fn failed(side: Side, phase: &'static str, problem: impl Into<String>) -> BenchError {
        BenchError::Run {
            side: side.name(),
            phase,
            problem: problem.into(),
        }
    }

    /// `cold_processes` fresh environments of each side, alternating: spawn → first `/next`
    /// (init), spawn → first answer (a `NEW_INBOUND_CALL`, its claim included), peak RSS.
    pub async fn cold(&self) -> Result<(Value, Value), BenchError> {
        let ours = self.on_tables(Side::Ours, &self.fresh_tables(COLD_PAIRS).await?);
        let sample = self.on_tables(Side::Sample, &self.fresh_tables(COLD_PAIRS).await?);
        let mut figures: BTreeMap<&str, ColdFigures> = BTreeMap::new();
        for i in 0..self.plan.cold_processes {
            for command in [&ours, &sample] {
                let side = command.side;
                let api = command.runtime_api().await?;
                let upstream_before = self.proxy.upstream_time();
                let ops_before = self.proxy.requests_by_operation();
                let transaction_id = uuid::Uuid::new_v4().to_string();
                let invocation =
                    api.invoke(&self.templates.new_inbound_call(&transaction_id, now_ms()));
                let env = command.spawn(api)?;
                let waited = invocation.wait(self.wait_limit(side)).await;
                let verdict = answer::classify(&waited, command.timeout, &self.markers);
                let call = NewCall {
                    transaction_id,
                    waited,
                    verdict,
                };
                let (Waited::Answered(answered), Verdict::Claimed(_)) =
                    (&call.waited, &call.verdict)
                else {
                    let problem = format!(
                        "cold process {i}: no claim ({:?}); init error: {:?}; see {}",
                        call.verdict,
                        env.api.init_error(),
                        command.log.display()
                    );
                    env.stop().await;
                    return Err(Self::failed(side, "cold", problem));
                };
                let init = env
                    .api
                    .first_next()
                    .map(|t| t.saturating_duration_since(env.spawned_at));
                let first_answer = answered
                    .answered_at
                    .saturating_duration_since(env.spawned_at);
                let upstream = self.proxy.upstream_time().saturating_sub(upstream_before);
                let ops = delta(&ops_before, &self.proxy.requests_by_operation());
                self.hang_up(side, &env.api, &call).await;
                let rss = env.stop().await;
                let f = figures.entry(side.name()).or_default();
                f.init.extend(init.map(ms));
                f.first_answer.push(ms(first_answer));
                f.dynamodb.push(ms(upstream));
                f.rss.extend(rss.map(|k| k as f64));
                for (op, n) in ops {
                    *f.operations.entry(op).or_default() += n;
                }
                eprintln!(
                    "call-bench: cold {} #{i}: init {:.1} ms, first answer {:.1} ms, peak RSS {} KiB",
                    side.name(),
                    init.map(ms).unwrap_or(f64::NAN),
                    ms(first_answer),
                    rss.unwrap_or_default()
                );
            }
        }
        let summary = |side: Side| {
            let f = figures.get(side.name()).cloned().unwrap_or_default();
            json!({
                "processes": f.first_answer.len(),
                "init_p50_ms": round2(median(&f.init)),
                "first_answer_p50_ms": round2(median(&f.first_answer)),
                "first_answer_max_ms": round2(percentile(&f.first_answer, 100.0)),
                "first_call_dynamodb_p50_ms": round2(median(&f.dynamodb)),
                "first_call_requests_by_operation": f
                    .operations
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(round2(*v as f64 / f.first_answer.len().max(1) as f64))))
                    .collect::<serde_json::Map<_, _>>(),
                "peak_rss_p50_kib": median(&f.rss),
            })
        };
        Ok((summary(Side::Ours), summary(Side::Sample)))
    }

    /// One environment, `warm_calls` timed `NEW_INBOUND_CALL`s (each followed by its untimed
    /// hangup) after a few untimed ones; DynamoDB requests per call from the proxy's counts.
    pub async fn warm(&self, side: Side) -> Result<Value, BenchError> {
        let tables = self
            .fresh_tables(self.plan.warm_calls + WARM_UP_CALLS + SPARE_PAIRS)
            .await?;
        let command = self.on_tables(side, &tables);
        let env = command.spawn(command.runtime_api().await?)?;
        for _ in 0..WARM_UP_CALLS {
            let call = self.new_call(side, &env.api).await;
            self.hang_up(side, &env.api, &call).await;
        }
        let (mut latency, mut in_function) = (Vec::new(), Vec::new());
        let (mut requests, mut busy, mut refused, mut hangups_failed) =
            (0_u64, 0_u64, 0_u64, 0_u64);
        let mut by_operation: BTreeMap<String, u64> = BTreeMap::new();
        let mut upstream = Duration::ZERO;
        for _ in 0..self.plan.warm_calls {
            let (before, ops_before, upstream_before) = (
                self.proxy.counts().requests,
                self.proxy.requests_by_operation(),
                self.proxy.upstream_time(),
            );
            let call = self.new_call(side, &env.api).await;
            requests += self.proxy.counts().requests - before;
            upstream += self.proxy.upstream_time().saturating_sub(upstream_before);
            for (op, n) in delta(&ops_before, &self.proxy.requests_by_operation()) {
                *by_operation.entry(op).or_default() += n;
            }
            match (&call.waited, &call.verdict) {
                (Waited::Answered(a), Verdict::Claimed(_)) => {
                    latency.push(ms(a.latency()));
                    in_function.push(ms(a.in_function()));
                }
                (_, Verdict::Busy) => busy += 1,
                _ => refused += 1,
            }
            if !self.hang_up(side, &env.api, &call).await {
                hangups_failed += 1;
            }
        }
        let rss = env.stop().await;
        let calls = self.plan.warm_calls.max(1) as f64;
        eprintln!(
            "call-bench: warm {}: p50 {:.2} ms over {} claimed calls",
            side.name(),
            median(&latency),
            latency.len()
        );
        Ok(json!({
            "calls": self.plan.warm_calls,
            // Not claimed: told busy (no pair free, or the claim's attempts ran out), refused.
            "busy": busy,
            "refused": refused,
            "hangups_failed": hangups_failed,
            "p50_ms": round2(median(&latency)),
            "p90_ms": round2(percentile(&latency, 90.0)),
            "max_ms": round2(percentile(&latency, 100.0)),
            "in_function_p50_ms": round2(median(&in_function)),
            // DynamoDB Local's share: time the proxy waited for it, per call (mean).
            "dynamodb_mean_ms": round2(ms(upstream) / calls),
            "requests_per_call": round2(requests as f64 / calls),
            "requests_per_call_by_operation": by_operation
                .into_iter()
                .map(|(k, v)| (k, json!(round2(v as f64 / calls))))
                .collect::<serde_json::Map<_, _>>(),
            "peak_rss_kib": rss,
        }))
    }

    /// `throttled_calls` calls over a few environments while the proxy throttles
    /// `throttle_rate` of all requests. An environment whose invocation timed out is replaced,
    /// as Lambda does.
    pub async fn throttled(&self, side: Side) -> Result<Value, BenchError> {
        let tables = self
            .fresh_tables(self.plan.throttled_calls + SPARE_PAIRS)
            .await?;
        let command = self.on_tables(side, &tables);
        let next = AtomicUsize::new(0);
        let before = self.proxy.counts();
        self.proxy.set_enabled(true);
        let started = Instant::now();
        let lanes = (0..self.plan.throttled_environments.max(1))
            .map(|_| self.throttled_lane(&command, &next));
        let results = futures::future::join_all(lanes).await;
        self.proxy.set_enabled(false);
        let wall = started.elapsed();
        let after = self.proxy.counts();
        let mut tally = Tally::default();
        for lane in results {
            tally.add(lane?);
        }
        let calls = tally.calls.max(1) as f64;
        let refused: u64 = tally.refused.values().sum();
        let injected =
            |c: &soak::proxy::ProxyCounts| c.injected.get("throttled_400").copied().unwrap_or(0);
        eprintln!(
            "call-bench: throttled {}: {refused} of {} refused",
            side.name(),
            tally.calls
        );
        let mut figures = json!({
            "calls": tally.calls,
            "claimed": tally.claimed,
            "busy": tally.busy,
            "refused": refused,
            "refusal_rate": (refused as f64 / calls * 10_000.0).round() / 10_000.0,
            "claimed_p50_ms": round2(median(&tally.claimed_ms)),
            "claimed_p99_ms": round2(percentile(&tally.claimed_ms, 99.0)),
            "hangups_failed": tally.hangups_failed,
            "environment_restarts": tally.restarts,
            "requests": after.requests - before.requests,
            "throttled_requests": injected(&after) - injected(&before),
            "wall_s": round2(wall.as_secs_f64()),
        });
        for refusal in [
            Refusal::InvocationError,
            Refusal::Timeout,
            Refusal::Unavailable,
            Refusal::Unrecognised,
        ] {
            figures[refusal.label()] = json!(tally.refused.get(&refusal).copied().unwrap_or(0));
        }
        Ok(figures)
    }

    async fn throttled_lane(
        &self,
        command: &FunctionCommand,
        next: &AtomicUsize,
    ) -> Result<Tally, BenchError> {
        let side = command.side;
        let mut tally = Tally::default();
        let mut env: Environment = command.spawn(command.runtime_api().await?)?;
        while next.fetch_add(1, Ordering::Relaxed) < self.plan.throttled_calls {
            let call = self.new_call(side, &env.api).await;
            tally.calls += 1;
            match &call.verdict {
                Verdict::Claimed(_) => {
                    tally.claimed += 1;
                    if let Waited::Answered(a) = &call.waited {
                        tally.claimed_ms.push(ms(a.latency()));
                    }
                }
                Verdict::Busy => tally.busy += 1,
                Verdict::Refused(r) => *tally.refused.entry(*r).or_default() += 1,
            }
            let restart = matches!(call.verdict, Verdict::Refused(Refusal::Timeout))
                || matches!(call.waited, Waited::InitFailed(_));
            if restart {
                // Lambda ends an environment whose invocation timed out; the next call
                // starts a fresh one.
                env.stop().await;
                env = command.spawn(command.runtime_api().await?)?;
                tally.restarts += 1;
            }
            if !self.hang_up(side, &env.api, &call).await {
                tally.hangups_failed += 1;
            }
        }
        env.stop().await;
        Ok(tally)
    }
}

/// Per cold process: spawn → first `/next`, spawn → first answer, DynamoDB Local's time
/// during the first call, peak RSS.
#[derive(Debug, Clone, Default)]
struct ColdFigures {
    init: Vec<f64>,
    first_answer: Vec<f64>,
    dynamodb: Vec<f64>,
    rss: Vec<f64>,
    /// DynamoDB requests of the first calls, by operation (summed).
    operations: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
struct Tally {
    calls: u64,
    claimed: u64,
    busy: u64,
    refused: BTreeMap<Refusal, u64>,
    claimed_ms: Vec<f64>,
    hangups_failed: u64,
    restarts: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.calls += other.calls;
        self.claimed += other.claimed;
        self.busy += other.busy;
        for (k, v) in other.refused {
            *self.refused.entry(k).or_default() += v;
        }
        self.claimed_ms.extend(other.claimed_ms);
        self.hangups_failed += other.hangups_failed;
        self.restarts += other.restarts;
    }
}

/// Every figure, both sides, and the ratios the issue sets targets for.
pub async fn run(bench: &Bench) -> Result<Value, BenchError> {
    eprintln!(
        "call-bench: cold start, {} processes each",
        bench.plan.cold_processes
    );
    let (cold_ours, cold_sample) = bench.cold().await?;
    eprintln!("call-bench: warm, {} calls each", bench.plan.warm_calls);
    let warm_ours = bench.warm(Side::Ours).await?;
    let warm_sample = bench.warm(Side::Sample).await?;
    eprintln!(
        "call-bench: {} % of requests throttled, {} calls each",
        bench.plan.throttle_rate * 100.0,
        bench.plan.throttled_calls
    );
    let throttled_ours = bench.throttled(Side::Ours).await?;
    let throttled_sample = bench.throttled(Side::Sample).await?;
    let f = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
    let warm_ratio = ratio(f(&warm_ours, "/p50_ms"), f(&warm_sample, "/p50_ms"));
    let cold_ratio = ratio(
        f(&cold_ours, "/first_answer_p50_ms"),
        f(&cold_sample, "/first_answer_p50_ms"),
    );
    let rss_ratio = ratio(
        f(&warm_ours, "/peak_rss_kib"),
        f(&warm_sample, "/peak_rss_kib"),
    );
    let refusal_rate = f(&throttled_ours, "/refusal_rate");
    Ok(json!({
        "bench": "calls",
        "plan": {
            "cold_processes": bench.plan.cold_processes,
            "warm_calls": bench.plan.warm_calls,
            "throttled_calls": bench.plan.throttled_calls,
            "throttled_environments": bench.plan.throttled_environments,
            "throttle_rate": bench.plan.throttle_rate,
            "dynamodb_delay_ms": bench.plan.dynamodb_delay_ms,
            "function_timeout_ms": bench.ours.timeout.as_millis() as u64,
            "sample_runtime": bench.sample_versions,
        },
        "ours": {"cold": cold_ours, "warm": warm_ours, "throttled": throttled_ours},
        "sample": {"cold": cold_sample, "warm": warm_sample, "throttled": throttled_sample},
        "warm_ratio": warm_ratio,
        "cold_ratio": cold_ratio,
        "rss_ratio": rss_ratio,
        "targets": {
            "warm_ratio_at_most": 0.5,
            "cold_ratio_at_most": 0.0667,
            "refusal_rate_at_most": 0.005,
            "warm_met": warm_ratio.is_some_and(|r| r <= 0.5),
            "cold_met": cold_ratio.is_some_and(|r| r <= 1.0 / 15.0),
            "refusals_met": refusal_rate <= 0.005,
        },
    }))
}

/// The path of a file in the workspace.
pub fn workspace_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_pairs_are_distinct_and_e164() {
        let pairs = bench_pairs(300);
        let set: std::collections::HashSet<_> = pairs.iter().collect();
        assert_eq!(set.len(), 300);
        assert!(
            pairs
                .iter()
                .all(|p| p.sma_number.len() == 12 && p.connect_number.starts_with("+1888444"))
        );
    }

    #[test]
    fn deltas_leave_out_what_did_not_move() {
        let before = BTreeMap::from([("Query".to_owned(), 3), ("UpdateItem".to_owned(), 1)]);
        let after = BTreeMap::from([
            ("Query".to_owned(), 4),
            ("UpdateItem".to_owned(), 1),
            ("GetItem".to_owned(), 2),
        ]);
        assert_eq!(
            delta(&before, &after),
            BTreeMap::from([("Query".to_owned(), 1), ("GetItem".to_owned(), 2)])
        );
    }
}
