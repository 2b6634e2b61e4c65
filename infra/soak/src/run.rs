//! One soak: the batches, the faults switched on around each simulation, the checks, the figures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use emulator::backend::{self, Options, PairProbe, StoreKind};
use emulator::chaos::{ChimeChaos, ChimeFaultRates};
use emulator::chime_api::ChimeApi;
use emulator::contact_flow_interpreter::ParsedFlow;
use emulator::model::lock;
use emulator::run::Run;
use emulator::scenario::Scenario;
use emulator::simulate;
use emulator::world::World;
use serde::Serialize;
use serde_json::json;
use takeback_sma::call_machine::Messages;

use crate::invariants::{self, Tally};
use crate::plan::{AbuseCounts, CallAbuse, soak_plans};
use crate::proxy::{DdbFaultRates, FaultProxy, ProxyCounts};

/// The pool: 3 SMA numbers × 3 Connect numbers, as in `infra/pairs.example.json`.
pub const SMA_NUMBERS: [&str; 3] = ["+18005557777", "+18005558888", "+18005559999"];
pub const CONNECT_NUMBERS: [&str; 3] = ["+18005551111", "+18005552222", "+18005553333"];
const FIRST_CALLER: &str = "+12065550000";
const DIALLED: &str = "+18005550100";

/// What a soak runs.
#[derive(Debug, Clone, Serialize)]
pub struct SoakSettings {
    pub calls: usize,
    /// Calls per batch (fresh tables, alternating lookup mode).
    pub batch: usize,
    /// Arrivals per second of virtual time.
    pub rate_per_s: f64,
    pub seed: u64,
    pub dynamodb_faults: DdbFaultRates,
    pub chime_faults: ChimeFaultRates,
    pub abuse: CallAbuse,
}

impl SoakSettings {
    /// The defaults for `calls` calls: about 10 % of DynamoDB requests and 15 % of Chime API
    /// requests fail in one of the ways the faults describe.
    pub fn new(calls: usize, seed: u64) -> Self {
        Self {
            calls,
            batch: 1_000,
            rate_per_s: 0.4,
            seed,
            dynamodb_faults: DdbFaultRates {
                throttled: 0.05,
                error_before: 0.02,
                error_after: 0.02,
                latency: 0.002,
                latency_min_ms: 1_000,
                latency_max_ms: 2_500,
            },
            chime_faults: ChimeFaultRates {
                throttled: 0.06,
                unavailable: 0.02,
                failure: 0.02,
                timeout_before_apply: 0.02,
                timeout_after_apply: 0.03,
            },
            abuse: CallAbuse::default(),
        }
    }
}

/// The figures of a soak (the last line `make soak` prints).
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub passed: bool,
    pub calls: u64,
    pub batches: usize,
    pub pairs: usize,
    pub rate_per_s: f64,
    pub seed: u64,
    pub lookup_modes: BTreeMap<String, u64>,
    pub wall_s: f64,
    pub virtual_s: f64,
    pub invariants: invariants::InvariantCounts,
    pub outcomes: BTreeMap<String, u64>,
    pub fallbacks_by_cause: BTreeMap<String, u64>,
    pub faults: FaultFigures,
    pub repeated_update_requests: u64,
    pub ended_quietly_after_connect_dropped: u64,
    pub findings_by_rule: BTreeMap<String, u64>,
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FaultFigures {
    pub dynamodb: ProxyCounts,
    pub chime_api_requests: u64,
    pub chime_api: BTreeMap<&'static str, u64>,
    pub calls: AbuseCounts,
}

#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error("{0}")]
    Setup(String),
    #[error("batch {batch}: {source}")]
    Backend {
        batch: usize,
        #[source]
        source: backend::BackendError,
    },
}

/// The workspace root as compiled in.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What every batch shares: the proxy, the fake Chime API, the SDK configuration, the flow.
pub struct SoakEnv {
    pub proxy: FaultProxy,
    pub api: Arc<ChimeApi>,
    pub sdk: aws_config::SdkConfig,
    pub env_file: BTreeMap<String, String>,
}

/// Runs every batch; `progress` gets one line per batch.
pub async fn run_soak(
    env: &SoakEnv,
    settings: &SoakSettings,
    mut progress: impl FnMut(&str),
) -> Result<SoakReport, SoakError> {
    let started = Instant::now();
    let flow_file = workspace_root().join("infra/contact-flow.json");
    let flow_text = std::fs::read_to_string(&flow_file)
        .map_err(|e| SoakError::Setup(format!("{}: {e}", flow_file.display())))?;
    let flow = ParsedFlow::parse(&flow_text)
        .map_err(|e| SoakError::Setup(format!("{}: {e}", flow_file.display())))?;
    let messages = Messages::default();
    let mut tally = Tally::default();
    let mut faults = FaultFigures::default();
    let mut modes: BTreeMap<String, u64> = BTreeMap::new();
    let mut virtual_ms = 0u64;
    let batch = settings.batch.max(1);
    let batches = settings.calls.div_ceil(batch);
    for b in 0..batches {
        let first = b * batch;
        let n = batch.min(settings.calls - first);
        let mode = if b % 2 == 0 { "keep" } else { "release" };
        let scenario: Scenario = serde_json::from_value(json!({
            "name": format!("soak-{b}"),
            "pairs": {"sma_numbers": SMA_NUMBERS, "connect_numbers": CONNECT_NUMBERS},
            "env": {"LOOKUP_MODE": mode},
            "calls": [{"caller": FIRST_CALLER, "dialled": DIALLED}],
        }))
        .map_err(|e| SoakError::Setup(format!("soak scenario: {e}")))?;
        let (plans, abuse) = soak_plans(
            FIRST_CALLER,
            DIALLED,
            first,
            n,
            settings.rate_per_s,
            settings.seed,
            &settings.abuse,
        );
        faults.calls.add(&abuse);
        *modes.entry(mode.to_owned()).or_default() += n as u64;

        env.proxy.set_enabled(false);
        let opts = Options {
            store: StoreKind::Dynamo,
            lambda: None,
            tables: None,
            lookup_mode: None,
            sma_id: None,
            env_file: env.env_file.clone(),
            dynamodb_local: true,
            sdk: Some(env.sdk.clone()),
        };
        let run_id = format!("{:08x}", settings.seed.wrapping_add(b as u64) & 0xffff_ffff);
        let backend = backend::prepare(&scenario, &opts, &run_id)
            .await
            .map_err(|source| SoakError::Backend { batch: b, source })?;
        let sma_id = backend
            .env
            .get("SIP_MEDIA_APPLICATION_ID")
            .cloned()
            .unwrap_or_default();
        let fallback = backend
            .env
            .get("FALLBACK_TARGET")
            .cloned()
            .zip(backend.env.get("FALLBACK_TARGET_ARN").cloned());
        let run = Arc::new(Run {
            world: World::new(sma_id, Vec::new(), false).on_clock(&backend.clock),
            invoker: backend.invoker.clone(),
            plans,
            connect_numbers: backend.connect_numbers.clone(),
            targets: BTreeMap::new(),
            fallback: fallback.clone(),
            flow: flow.clone(),
            epoch_ms: backend.clock.epoch_ms,
            sample_pairs: false,
        });
        *lock(&run.world.chime_chaos) = Some(ChimeChaos::new(
            settings.chime_faults,
            settings.seed ^ (0xC41A_u64 << 32) ^ b as u64,
        ));
        env.api.set(Some(run.clone()));
        env.proxy.set_enabled(true);
        let batch_started = Instant::now();
        let result = simulate::simulate(
            &run,
            &PairProbe::None("read after the faults are off".into()),
        )
        .await;
        env.proxy.set_enabled(false);
        env.api.set(None);
        if let Some(chaos) = lock(&run.world.chime_chaos).take() {
            faults.chime_api_requests += chaos.requests;
            for (f, n) in chaos.injected {
                *faults.chime_api.entry(f.label()).or_default() += n;
            }
        }
        let held = match backend.probe.held().await {
            Ok(Some(h)) => h,
            Ok(None) => Vec::new(),
            Err(e) => {
                backend.cleanup().await;
                return Err(SoakError::Setup(format!(
                    "batch {b}: cannot read the pairs table after the run: {e}"
                )));
            }
        };
        let label = format!("batch {b} ({mode})");
        let checked = invariants::check(
            &label,
            &run.plans,
            &result,
            &held,
            fallback.as_ref().map(|f| f.0.as_str()),
            &messages,
        );
        virtual_ms += result.virtual_ms;
        progress(&format!(
            "soak: {label}: {} calls in {:.1} s ({:.0} virtual s): outcomes {:?}; invariant failures {}",
            checked.calls,
            batch_started.elapsed().as_secs_f64(),
            result.virtual_ms as f64 / 1000.0,
            checked.outcomes,
            if checked.invariants.all_zero() {
                "none".to_owned()
            } else {
                format!("{:?}", checked.invariants)
            }
        ));
        tally.add(&checked);
        backend.cleanup().await;
    }
    faults.dynamodb = env.proxy.counts();
    Ok(SoakReport {
        passed: tally.invariants.all_zero(),
        calls: tally.calls,
        batches,
        pairs: SMA_NUMBERS.len() * CONNECT_NUMBERS.len(),
        rate_per_s: settings.rate_per_s,
        seed: settings.seed,
        lookup_modes: modes,
        wall_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        virtual_s: (virtual_ms as f64 / 100.0).round() / 10.0,
        invariants: tally.invariants,
        outcomes: tally.outcomes,
        fallbacks_by_cause: tally.fallbacks_by_cause,
        faults,
        repeated_update_requests: tally.repeated_update_requests,
        ended_quietly_after_connect_dropped: tally.ended_quietly_after_connect_dropped,
        findings_by_rule: tally.findings_by_rule,
        examples: tally.examples,
    })
}
