//! Claim benchmark: N concurrent claimers, each running `rounds` claim → lookup → release cycles
//! against DynamoDB (Local: `AWS_ENDPOINT_URL_DYNAMODB`), on fresh tables with P pairs.
//!
//! ```text
//! claim-bench [--mode spread|hash|seed] [--claimers 64] [--pairs 64] [--rounds 1] [--hold-ms 0]
//! ```
//!
//! Modes:
//! - `spread`: this project's `DynamoStore` (claim tickets over pool slots, bounded attempts,
//!   idempotent per transaction).
//! - `hash`: the same store with tickets off (start from a hash of the transaction id only).
//! - `seed`: the seed's strategy — query the index with `Limit=1`, conditional update, retry
//!   until success (or until the index shows no free pair: that counts as busy); its lookup is a
//!   key query and its release an unconditional update.
//!
//! Every claimer starts at the same instant (a barrier) — the worst case for contention.
//! DynamoDB requests are counted by an SDK interceptor on a client used only for claims, so SDK
//! retries count too. A double claim is a pair handed to a claimer while another still holds it
//! (checked in memory between claim and release), or a lookup that returns another transaction.
//! Prints progress to stderr and the JSON result as the last line of stdout.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use takeback_dynamo::pairs::{ClaimConfig, DynamoStore, IN_USE_FALSE, IN_USE_TRUE, attr};
use takeback_dynamo::seed::seed_pairs;
use takeback_dynamo::tables::{self, create_table};
use takeback_pairs::strategy::{ClaimRules, Delivery};
use takeback_pairs::{ClaimOutcome, ClaimRequest, LookupMode, PairKey, PairStore};

mod suite;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Spread,
    Hash,
    Seed,
}

/// Pair-claim benchmark against DynamoDB (Local: `AWS_ENDPOINT_URL_DYNAMODB`).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "claim-bench")]
struct Args {
    /// Burst mode: `spread` (this project's store), `hash` (tickets off), `seed` (the sample).
    #[arg(long, value_enum, default_value = "spread")]
    mode: Mode,
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    claimers: u64,
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pairs: u64,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// How long each winner holds its pair before the release.
    #[arg(long = "hold-ms", default_value_t = 0)]
    hold_ms: u64,
    /// Run every figure of a call side by side with the sample's strategy (see `suite.rs`)
    /// instead of one burst.
    #[arg(long)]
    suite: bool,
    /// Calls per figure in `--suite`.
    #[arg(long, default_value_t = 200)]
    calls: usize,
    /// Calls per strategy in the suite's throttled run (20 % of requests throttled): enough
    /// that a 0.5 % refusal rate is ten callers, not a fraction of one.
    #[arg(long = "throttled-calls", default_value_t = 2048)]
    throttled_calls: usize,
    /// Only these figures of `--suite` (the others print as null): `warm`, `per-call`,
    /// `cold`, `bursts`, `throttled`. Default: all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Our store's `ClaimRules::writes_after_fast_loss` (default: the functions' own).
    #[arg(long = "writes-after-fast-loss")]
    writes_after_fast_loss: Option<u32>,
    /// Internal: one cold claim in a fresh process (`ours` or `sample`), for `--suite`.
    #[arg(long, hide = true)]
    cold_child: Option<String>,
    #[arg(long, hide = true)]
    pairs_table: Option<String>,
    #[arg(long, hide = true)]
    calls_table: Option<String>,
    #[arg(long, hide = true)]
    spawned_at_us: Option<u128>,
}

impl Args {
    /// Whether `--suite` should measure `figure`.
    fn wants(&self, figure: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|f| f == figure)
    }

    /// The claim rules our store runs with in `--suite`.
    fn rules(&self) -> ClaimRules {
        let mut rules = ClaimRules::default();
        if let Some(n) = self.writes_after_fast_loss {
            rules.writes_after_fast_loss = n;
        }
        rules
    }

    fn hold(&self) -> Duration {
        Duration::from_millis(self.hold_ms)
    }
}

/// Counts every HTTP attempt the client makes.
#[derive(Debug, Clone, Default)]
struct RequestCounter(Arc<AtomicU64>);

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// `n` pairs: SMA number i/8 × Connect number i%8 (8 Connect numbers, as many SMA numbers as
/// needed).
fn bench_pairs(n: usize) -> Vec<PairKey> {
    (0..n)
        .map(|i| PairKey {
            sma_number: format!("+1800555{:04}", i / 8),
            connect_number: format!("+1888444{:04}", i % 8),
        })
        .collect()
}

/// What one claim attempt sequence produced.
struct ClaimResult {
    pair: Option<PairKey>,
    write_attempts: u64,
    /// Requests sent (SDK retries not included).
    requests: u64,
}

#[derive(Clone)]
struct Seed {
    client: Client,
    table: String,
}

impl Seed {
    /// The seed's claim: Query Limit=1 on `in_use = false`, conditional UpdateItem, retry.
    async fn claim(&self, request: &ClaimRequest) -> Result<ClaimResult, String> {
        let mut write_attempts = 0;
        let mut requests = 0;
        // "Until success": bounded only so a broken run cannot spin forever.
        while write_attempts < 10_000 {
            requests += 1;
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("in_use")
                .key_condition_expression("in_use = :false")
                .expression_attribute_values(":false", AttributeValue::S(IN_USE_FALSE.into()))
                .limit(1)
                .send()
                .await
                .map_err(|e| format!("query: {e:?}"))?;
            let Some(item) = out.items().first() else {
                return Ok(ClaimResult {
                    pair: None,
                    write_attempts,
                    requests,
                });
            };
            let pair = PairKey {
                sma_number: s_of(item, attr::SMA_NUMBER)?,
                connect_number: s_of(item, attr::CONNECT_NUMBER)?,
            };
            write_attempts += 1;
            requests += 1;
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(attr::SMA_NUMBER, AttributeValue::S(pair.sma_number.clone()))
                .key(
                    attr::CONNECT_NUMBER,
                    AttributeValue::S(pair.connect_number.clone()),
                )
                .update_expression(
                    "SET transaction_id = :transaction_id, call_timestamp = :current_timestamp, \
                     in_use = :true, original_calling_number = :original_calling_number",
                )
                .condition_expression("attribute_not_exists(in_use) OR in_use = :false")
                .expression_attribute_values(
                    ":transaction_id",
                    AttributeValue::S(request.transaction_id.clone()),
                )
                .expression_attribute_values(
                    ":original_calling_number",
                    AttributeValue::S(request.original_calling_number.clone()),
                )
                .expression_attribute_values(
                    ":current_timestamp",
                    AttributeValue::N(now_ms().to_string()),
                )
                .expression_attribute_values(":true", AttributeValue::S(IN_USE_TRUE.into()))
                .expression_attribute_values(":false", AttributeValue::S(IN_USE_FALSE.into()))
                .send()
                .await;
            match result {
                Ok(_) => {
                    return Ok(ClaimResult {
                        pair: Some(pair),
                        write_attempts,
                        requests,
                    });
                }
                Err(SdkError::ServiceError(e))
                    if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) => {}
                Err(e) => return Err(format!("update: {e:?}")),
            }
        }
        Err("seed claim did not finish in 10000 attempts".into())
    }

    /// The seed's lookup: a key query; the transaction id it finds.
    async fn lookup(&self, pair: &PairKey) -> Result<Option<String>, String> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(
                "sma_number = :sma_number and connect_number = :connect_number",
            )
            .expression_attribute_values(":sma_number", AttributeValue::S(pair.sma_number.clone()))
            .expression_attribute_values(
                ":connect_number",
                AttributeValue::S(pair.connect_number.clone()),
            )
            .limit(1)
            .send()
            .await
            .map_err(|e| format!("lookup: {e:?}"))?;
        Ok(out
            .items()
            .first()
            .and_then(|i| i.get(attr::TRANSACTION_ID))
            .and_then(|v| v.as_s().ok())
            .cloned())
    }

    /// The seed's release: unconditional.
    async fn release(&self, pair: &PairKey) -> Result<(), String> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(attr::SMA_NUMBER, AttributeValue::S(pair.sma_number.clone()))
            .key(
                attr::CONNECT_NUMBER,
                AttributeValue::S(pair.connect_number.clone()),
            )
            .update_expression("SET in_use = :false")
            .expression_attribute_values(":false", AttributeValue::S(IN_USE_FALSE.into()))
            .send()
            .await
            .map_err(|e| format!("release: {e:?}"))?;
        Ok(())
    }
}

fn s_of(item: &HashMap<String, AttributeValue>, name: &str) -> Result<String, String> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .ok_or_else(|| format!("item without {name}"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

enum Backend {
    Store {
        claims: Box<DynamoStore>,
        others: Box<DynamoStore>,
    },
    Seed {
        claims: Seed,
        others: Seed,
    },
}

#[derive(Debug, Default)]
struct Tally {
    claims: u64,
    busy: u64,
    write_attempts: u64,
    double_claims: u64,
    lookup_misses: u64,
    release_misses: u64,
    claim_ms: Vec<f64>,
    cycle_ms: Vec<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

async fn run(args: Args) -> Result<serde_json::Value, String> {
    if takeback_common::config::process_env()
        .optional("AWS_ENDPOINT_URL_DYNAMODB")
        .is_none()
    {
        eprintln!(
            "claim-bench: AWS_ENDPOINT_URL_DYNAMODB is not set; this talks to whatever DynamoDB \
             the SDK finds"
        );
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let claim_counter = RequestCounter::default();
    let claim_client = Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(claim_counter.clone())
            .build(),
    );
    let other_client = Client::new(&sdk);
    let (pairs_table, calls_table) = fresh_tables(&sdk, args.pairs).await?;

    let backend = Arc::new(match args.mode {
        Mode::Spread | Mode::Hash => {
            let config = ClaimConfig {
                rules: ClaimRules {
                    use_ticket: args.mode == Mode::Spread,
                    ..ClaimRules::default()
                },
                ..ClaimConfig::default()
            };
            Backend::Store {
                claims: Box::new(
                    DynamoStore::new(claim_client, &pairs_table, &calls_table)
                        .with_config(config.clone()),
                ),
                others: Box::new(
                    DynamoStore::new(other_client, &pairs_table, &calls_table).with_config(config),
                ),
            }
        }
        Mode::Seed => Backend::Seed {
            claims: Seed {
                client: claim_client,
                table: pairs_table.clone(),
            },
            others: Seed {
                client: other_client,
                table: pairs_table.clone(),
            },
        },
    });

    let holders: Arc<Mutex<HashMap<PairKey, String>>> = Arc::default();
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let barrier = Arc::new(tokio::sync::Barrier::new(args.claimers as usize));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.claimers {
        let (backend, holders, tally, barrier, args) = (
            backend.clone(),
            holders.clone(),
            tally.clone(),
            barrier.clone(),
            args.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            for _ in 0..args.rounds {
                let tx = uuid::Uuid::new_v4().to_string();
                let contact = uuid::Uuid::new_v4().to_string();
                let request = ClaimRequest {
                    transaction_id: tx.clone(),
                    original_calling_number: format!("+1415555{c:04}"),
                    original_called_number: "+18005550199".into(),
                };
                let t0 = Instant::now();
                let claim = match &*backend {
                    Backend::Store { claims, .. } => {
                        let store = (**claims).clone().with_fresh_metrics();
                        let outcome = store.claim(&request).await.map_err(|e| format!("{e:?}"))?;
                        ClaimResult {
                            pair: match outcome {
                                ClaimOutcome::Claimed(c) => Some(c.pair),
                                ClaimOutcome::Busy => None,
                            },
                            write_attempts: store.metrics().claim_write_attempts,
                            requests: store.metrics().requests,
                        }
                    }
                    Backend::Seed { claims, .. } => claims.claim(&request).await?,
                };
                let claim_ms = t0.elapsed().as_secs_f64() * 1000.0;
                {
                    let mut t = tally.lock().map_err(|_| "poisoned")?;
                    t.write_attempts += claim.write_attempts;
                    t.claim_ms.push(claim_ms);
                }
                let Some(pair) = claim.pair else {
                    tally.lock().map_err(|_| "poisoned")?.busy += 1;
                    continue;
                };
                let double = {
                    let mut h = holders.lock().map_err(|_| "poisoned")?;
                    h.insert(pair.clone(), tx.clone())
                        .is_some_and(|other| other != tx)
                };
                let found = match &*backend {
                    Backend::Store { others, .. } => others
                        .lookup(&pair, &contact, LookupMode::KeepClaim)
                        .await
                        .map_err(|e| format!("{e:?}"))?
                        .map(|l| l.transaction_id),
                    Backend::Seed { others, .. } => others.lookup(&pair).await?,
                };
                if !args.hold().is_zero() {
                    tokio::time::sleep(args.hold()).await;
                }
                holders.lock().map_err(|_| "poisoned")?.remove(&pair);
                let released = match &*backend {
                    Backend::Store { others, .. } => {
                        others
                            .release(&pair, &tx)
                            .await
                            .map_err(|e| format!("{e:?}"))?
                            == takeback_pairs::ReleaseOutcome::Released
                    }
                    Backend::Seed { others, .. } => {
                        others.release(&pair).await?;
                        true
                    }
                };
                let mut t = tally.lock().map_err(|_| "poisoned")?;
                t.claims += 1;
                t.cycle_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                if double || found.as_deref().is_some_and(|f| f != tx) {
                    t.double_claims += 1;
                }
                if found.is_none() {
                    t.lookup_misses += 1;
                }
                if !released {
                    t.release_misses += 1;
                }
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| format!("claimer panicked: {e}"))??;
    }
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;

    let mut t = std::mem::take(&mut *tally.lock().map_err(|_| "poisoned")?);
    t.claim_ms.sort_by(f64::total_cmp);
    t.cycle_ms.sort_by(f64::total_cmp);
    let claims = t.claims.max(1) as f64;
    let requests = claim_counter.0.load(Ordering::Relaxed);
    Ok(serde_json::json!({
        "mode": match args.mode { Mode::Spread => "spread", Mode::Hash => "hash", Mode::Seed => "seed" },
        "claimers": args.claimers,
        "pairs": args.pairs,
        "rounds": args.rounds,
        "claims": t.claims,
        "busy": t.busy,
        "double_claims": t.double_claims,
        "lookup_misses": t.lookup_misses,
        "release_misses": t.release_misses,
        "requests_per_claim": round2(requests as f64 / claims),
        "write_attempts_per_claim": round2(t.write_attempts as f64 / claims),
        // Per claim call, busy answers included (the cost of telling a caller "busy" too).
        "requests_per_claim_call": round2(requests as f64 / (t.claims + t.busy).max(1) as f64),
        "claim_requests": requests,
        "claim_write_attempts": t.write_attempts,
        "claim_p50_ms": round2(percentile(&t.claim_ms, 50.0)),
        "claim_p99_ms": round2(percentile(&t.claim_ms, 99.0)),
        "cycle_p50_ms": round2(percentile(&t.cycle_ms, 50.0)),
        "cycle_p99_ms": round2(percentile(&t.cycle_ms, 99.0)),
        "wall_ms": round2(wall_ms),
    }))
}

/// Fresh PAIRS and CALLS tables with `pairs` seeded.
async fn fresh_tables(sdk: &aws_config::SdkConfig, pairs: u64) -> Result<(String, String), String> {
    let setup = Client::new(sdk);
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let pairs_table = format!("bench-pairs-{suffix}");
    let calls_table = format!("bench-calls-{suffix}");
    for (def, name) in [
        (&tables::PAIRS, &pairs_table),
        (&tables::CALLS, &calls_table),
    ] {
        create_table(&setup, def, name)
            .await
            .map_err(|e| format!("create {name}: {e:?}"))?;
    }
    seed_pairs(&setup, &pairs_table, &bench_pairs(pairs as usize))
        .await
        .map_err(|e| format!("seed: {e:?}"))?;
    Ok((pairs_table, calls_table))
}

/// Every figure of the issue, this project's store beside the sample's strategy, one run.
async fn run_suite(args: &Args) -> Result<serde_json::Value, String> {
    let sdk = takeback_sdk::load().await;
    let n = args.calls.max(10);
    let (pairs_table, calls_table) = fresh_tables(&sdk, 16).await?;
    let b = suite::Bench::new(sdk.clone(), pairs_table.clone(), calls_table.clone())
        .with_rules(args.rules());
    let mut warm = serde_json::Value::Null;
    if args.wants("warm") {
        eprintln!("claim-bench: warm uncontended claims");
        let (ours_ms, sample_ms) = suite::warm_latency(&b, n).await?;
        warm = serde_json::json!({"ours": round2(ours_ms), "sample": round2(sample_ms),
            "ratio": round2(ours_ms / sample_ms.max(f64::EPSILON))});
    }
    let mut per_call = serde_json::Value::Null;
    if args.wants("per-call") {
        eprintln!("claim-bench: requests per call");
        // Abandoned calls free their pairs unbound (no lookup), which then rest 15 s: a pool
        // with room for them, so every call of the figure finds a pair.
        let (pt, ct) = fresh_tables(&sdk, 256).await?;
        per_call = suite::requests_per_call(
            &suite::Bench::new(sdk.clone(), pt, ct).with_rules(args.rules()),
            (n / 4).max(10) as u64,
        )
        .await?;
    }
    let mut cold = serde_json::Value::Null;
    if args.wants("cold") {
        eprintln!("claim-bench: cold start");
        let cold_ours = suite::cold_start(&pairs_table, &calls_table, 5, "ours")?;
        let cold_sample = suite::cold_start(&pairs_table, &calls_table, 5, "sample")?;
        cold = serde_json::json!({"ours": round2(cold_ours), "sample_strategy_in_rust": round2(cold_sample)});
    }

    let mut bursts = serde_json::Map::new();
    for (name, claimers, pairs, warm, hold_ms, ours) in [
        ("ours_64_on_64_warm", 64, 64, true, 0, true),
        ("ours_64_on_64_cold", 64, 64, false, 0, true),
        ("sample_64_on_64", 64, 64, false, 0, false),
        ("ours_100_on_40_warm", 100, 40, true, 1000, true),
        ("sample_100_on_40", 100, 40, false, 1000, false),
    ] {
        if !args.wants("bursts") {
            break;
        }
        eprintln!("claim-bench: burst {name}");
        let (pt, ct) = fresh_tables(&sdk, pairs).await?;
        let bb = suite::Bench::new(sdk.clone(), pt, ct).with_rules(args.rules());
        let r = suite::burst(&bb, claimers, warm, Duration::from_millis(hold_ms), ours).await?;
        bursts.insert(name.to_owned(), r);
    }
    let mut throttled = serde_json::Value::Null;
    if args.wants("throttled") {
        eprintln!("claim-bench: 20 % of requests throttled");
        let (pt, ct) = fresh_tables(&sdk, 64).await?;
        let tb = suite::Bench::new(sdk.clone(), pt, ct).with_rules(args.rules());
        // 16 callers at a time on 64 pairs: nobody is busy, every refusal is a fault's.
        let workers = 16;
        let rounds = args.throttled_calls.div_ceil(workers).max(5);
        let ours = suite::refusals_under_throttling(&tb, 20, workers, rounds, true).await?;
        let sample = suite::refusals_under_throttling(&tb, 20, workers, rounds, false).await?;
        throttled = serde_json::json!({"ours": ours, "sample": sample});
    }
    Ok(serde_json::json!({
        "bench": "calls",
        "warm_claim_p50_ms": warm,
        "requests_per_call": per_call,
        "cold_start_to_first_claim_ms": cold,
        "bursts": bursts,
        "throttled_20pct": throttled,
    }))
}

/// The child of `cold_start`: one claim from a fresh process; prints the milliseconds from the
/// parent's spawn to the claim's answer.
async fn cold_child(args: &Args, strategy: &str) -> Result<(), String> {
    let (Some(pairs_table), Some(calls_table)) = (&args.pairs_table, &args.calls_table) else {
        return Err("--cold-child needs --pairs-table and --calls-table".into());
    };
    let sdk = takeback_sdk::load().await;
    let sdk_loaded = since_spawn(args);
    let t = uuid::Uuid::new_v4().to_string();
    let request = ClaimRequest {
        transaction_id: t.clone(),
        original_calling_number: "+14155550100".into(),
        original_called_number: "+18005550199".into(),
    };
    // The client and store as `sma-handler`'s `main` builds them.
    let client = Client::new(&sdk);
    let pair = if strategy == "ours" {
        let store = DynamoStore::new(client, pairs_table, calls_table).with_config(ClaimConfig {
            retry_budget: takeback_sdk::SMA_STORE_RETRY_BUDGET,
            ..ClaimConfig::default()
        });
        match store
            .claim_new_call(&request, Delivery::First)
            .await
            .map_err(|e| e.to_string())?
        {
            ClaimOutcome::Claimed(c) => {
                let done = since_spawn(args);
                suite::look_up_and_release(&store, &c.pair, &t).await?;
                done
            }
            ClaimOutcome::Busy => return Err("busy".into()),
        }
    } else {
        let seed = Seed {
            client,
            table: pairs_table.clone(),
        };
        let r = seed.claim(&request).await?;
        let done = since_spawn(args);
        if let Some(p) = r.pair {
            seed.release(&p).await?;
        }
        done
    };
    eprintln!(
        "claim-bench: cold {strategy}: SDK loaded at {sdk_loaded:.2} ms, claimed at {pair:.2} ms"
    );
    println!("{pair}");
    Ok(())
}

fn since_spawn(args: &Args) -> f64 {
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or_default();
    let spawned = args.spawned_at_us.unwrap_or(now_us);
    now_us.saturating_sub(spawned) as f64 / 1000.0
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();
    if let Some(strategy) = args.cold_child.clone() {
        return match cold_child(&args, &strategy).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("claim-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let result = if args.suite {
        eprintln!(
            "claim-bench: side-by-side suite, {} calls per figure",
            args.calls
        );
        run_suite(&args).await
    } else {
        eprintln!(
            "claim-bench: mode {:?}, {} claimers, {} pairs, {} rounds",
            args.mode, args.claimers, args.pairs, args.rounds
        );
        run(args).await
    };
    match result {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("claim-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn arguments_parse_and_bad_ones_are_refused() {
        let args = <Args as clap::Parser>::try_parse_from([
            "claim-bench",
            "--mode",
            "seed",
            "--claimers",
            "100",
            "--pairs",
            "40",
            "--hold-ms",
            "1000",
        ])
        .unwrap();
        assert_eq!(args.mode, Mode::Seed);
        assert_eq!((args.claimers, args.pairs), (100, 40));
        assert_eq!(args.hold(), Duration::from_millis(1000));
        assert!(<Args as clap::Parser>::try_parse_from(["claim-bench", "--mode", "x"]).is_err());
        assert!(<Args as clap::Parser>::try_parse_from(["claim-bench", "--pairs", "0"]).is_err());
    }

    #[test]
    fn bench_pairs_are_distinct() {
        let p = bench_pairs(100);
        let set: std::collections::HashSet<_> = p.iter().collect();
        assert_eq!(set.len(), 100);
    }
}
