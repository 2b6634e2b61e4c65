//! `claim-bench --suite`: this project's store and the sample's strategy side by side, in one
//! run against the same DynamoDB Local, on figures of a whole call rather than a burst alone.
//! Every figure counts HTTP attempts with an interceptor, so SDK and store retries count too.
//!
//! What a call does to DynamoDB mirrors the handlers' store work (`call_machine::
//! store_work_needed` and the Connect functions), with the sample's counterpart beside it:
//!
//! | step | this project | the sample |
//! |---|---|---|
//! | `NEW_INBOUND_CALL` | claim (warm: one conditional `UpdateItem`) | index query `Limit=1` + conditional update |
//! | Connect lookup | one conditional `UpdateItem` (binds the contact) | key query |
//! | Connect transfer | transfer intent `UpdateItem` | key query to find the transaction |
//! | `CALL_UPDATE_REQUESTED` | owner-conditional release | unconditional release |
//! | caller's hangup after the transfer | nothing (the release was confirmed) | nothing |
//!
//! An *abandoned* call is claimed, bridged, and hung up before the flow's lookup: claim and
//! release.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use takeback_dynamo::pairs::{ClaimConfig, DynamoStore};
use takeback_pairs::strategy::{self, ClaimRules, Delivery};
use takeback_pairs::{
    CallStore, ClaimOutcome, ClaimRequest, LookupMode, PairKey, PairStore, TransferIntent,
};

use crate::{RequestCounter, Seed, percentile, round2};

/// Makes a share of the requests throttled, the way DynamoDB throttles: the request does not
/// take effect. The chosen request is turned into a harmless `DescribeLimits` before it leaves,
/// and its answer into a `ThrottlingException`.
#[derive(Debug, Clone, Default)]
pub struct Throttler {
    percent: Arc<AtomicU64>,
    seen: Arc<AtomicU64>,
    pub injected: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Injected;
impl Storable for Injected {
    type Storer = StoreReplace<Self>;
}

impl Throttler {
    pub fn set_percent(&self, percent: u64) {
        self.percent.store(percent, Ordering::Relaxed);
    }
}

impl Intercept for Throttler {
    fn name(&self) -> &'static str {
        "Throttler"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let n = self.seen.fetch_add(1, Ordering::Relaxed);
        let roll = strategy::mix(n, 0x5eed) % 100;
        if roll >= self.percent.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.injected.fetch_add(1, Ordering::Relaxed);
        let request = context.request_mut();
        request
            .headers_mut()
            .insert("x-amz-target", "DynamoDB_20120810.DescribeLimits");
        // The length must match the new body: a stale, longer Content-Length left the server
        // waiting for bytes that never came, so a "throttled" request hung until the attempt
        // timeout instead of being answered at once, as DynamoDB answers a throttled request.
        let body = "{}";
        request
            .headers_mut()
            .insert("content-length", body.len().to_string());
        *request.body_mut() = SdkBody::from(body);
        cfg.interceptor_state().store_put(Injected);
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if cfg.load::<Injected>().is_none() {
            return Ok(());
        }
        // The mark belongs to this attempt only: the operation's retry must reach the server.
        cfg.interceptor_state().unset::<Injected>();
        let response = context.response_mut();
        *response.status_mut() = 400u16.try_into()?;
        *response.body_mut() = SdkBody::from(
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"injected"}"#,
        );
        Ok(())
    }
}

/// Clients and tables for one side-by-side run.
pub struct Bench {
    pub sdk: aws_config::SdkConfig,
    pub pairs_table: String,
    pub calls_table: String,
    pub counter: RequestCounter,
    pub throttler: Throttler,
    /// Through the counter and the throttler, with the project's SDK limits
    /// (`takeback_sdk`): what the functions use.
    pub ours: Client,
    /// Through the counter and the throttler, with the retries of the sample's boto3 client.
    pub sample: Client,
    /// The claim rules our store runs with (the functions' defaults unless a run varies them).
    pub rules: ClaimRules,
}

impl Bench {
    pub fn new(sdk: aws_config::SdkConfig, pairs_table: String, calls_table: String) -> Self {
        let counter = RequestCounter::default();
        let throttler = Throttler::default();
        let build = |timeouts: TimeoutConfig, retry: RetryConfig| {
            Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .timeout_config(timeouts)
                    .retry_config(retry)
                    .interceptor(counter.clone())
                    .interceptor(throttler.clone())
                    .build(),
            )
        };
        let ours = build(takeback_sdk::timeout_config(), takeback_sdk::retry_config());
        // The sample's boto3 client as configured by default (botocore's legacy retry mode,
        // whose DynamoDB entry allows 10 attempts with exponential backoff from 50 ms; no
        // operation time limit, 60 s socket timeouts).
        let sample = build(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(60))
                .read_timeout(Duration::from_secs(60))
                .build(),
            RetryConfig::standard()
                .with_max_attempts(10)
                .with_initial_backoff(Duration::from_millis(50)),
        );
        Self {
            sdk,
            pairs_table,
            calls_table,
            counter,
            throttler,
            ours,
            sample,
            rules: ClaimRules::default(),
        }
    }

    pub fn with_rules(mut self, rules: ClaimRules) -> Self {
        self.rules = rules;
        self
    }

    /// A store as the SMA handler builds it (a fresh execution environment).
    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(self.ours.clone(), &self.pairs_table, &self.calls_table).with_config(
            ClaimConfig {
                rules: self.rules.clone(),
                retry_budget: takeback_sdk::SMA_STORE_RETRY_BUDGET,
                ..ClaimConfig::default()
            },
        )
    }

    pub fn seed(&self) -> Seed {
        Seed {
            client: self.sample.clone(),
            table: self.pairs_table.clone(),
        }
    }

    fn requests(&self) -> u64 {
        self.counter.0.load(Ordering::Relaxed)
    }
}

fn request(tx: &str) -> ClaimRequest {
    ClaimRequest {
        transaction_id: tx.to_owned(),
        original_calling_number: "+14155550100".into(),
        original_called_number: "+18005550199".into(),
    }
}

fn tx() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn claimed(outcome: ClaimOutcome) -> Result<PairKey, String> {
    match outcome {
        ClaimOutcome::Claimed(c) => Ok(c.pair),
        ClaimOutcome::Busy => Err("busy on an idle pool".into()),
    }
}

fn intent() -> TransferIntent {
    TransferIntent {
        target_uri: "2001".into(),
        target_arn: "arn:aws:chime:us-east-1:111122223333:vc/bench".into(),
        contact_id: Some("contact".into()),
    }
}

/// Ends a call whose claim a Connect lookup bound, so its pair is reusable at once (an unbound
/// release would leave it resting): the lookup, then the release.
pub async fn look_up_and_release(
    store: &DynamoStore,
    pair: &PairKey,
    transaction_id: &str,
) -> Result<(), String> {
    store
        .lookup(pair, transaction_id, LookupMode::KeepClaim)
        .await
        .map_err(|e| e.to_string())?;
    store
        .release(pair, transaction_id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Median claim latency (ms) of `n` sequential claims on a warm store, each released (after a
/// lookup, so the pair is reusable at once) outside the timing.
pub async fn warm_latency(b: &Bench, n: usize) -> Result<(f64, f64), String> {
    let store = b.store();
    let seed = b.seed();
    let mut ours = Vec::new();
    let mut sample = Vec::new();
    // Warm both: connections open, and this environment's view of the pool filled.
    for _ in 0..3 {
        let t = tx();
        let p = claimed(store.claim(&request(&t)).await.map_err(|e| e.to_string())?)?;
        look_up_and_release(&store, &p, &t).await?;
        let r = seed.claim(&request(&t)).await?;
        if let Some(p) = r.pair {
            seed.release(&p).await?;
        }
    }
    for _ in 0..n {
        let t = tx();
        let started = Instant::now();
        let outcome = store
            .claim_new_call(&request(&t), Delivery::First)
            .await
            .map_err(|e| e.to_string())?;
        ours.push(started.elapsed().as_secs_f64() * 1000.0);
        let p = claimed(outcome)?;
        look_up_and_release(&store, &p, &t).await?;

        let started = Instant::now();
        let r = seed.claim(&request(&t)).await?;
        sample.push(started.elapsed().as_secs_f64() * 1000.0);
        if let Some(p) = r.pair {
            seed.release(&p).await?;
        }
    }
    ours.sort_by(f64::total_cmp);
    sample.sort_by(f64::total_cmp);
    Ok((percentile(&ours, 50.0), percentile(&sample, 50.0)))
}

/// Requests of a full transferred call and of an abandoned one, per strategy, averaged over `n`
/// calls each on a warm store.
pub async fn requests_per_call(b: &Bench, n: u64) -> Result<serde_json::Value, String> {
    let store = b.store();
    let seed = b.seed();
    // Warm the store's view.
    let t = tx();
    let p = claimed(store.claim(&request(&t)).await.map_err(|e| e.to_string())?)?;
    look_up_and_release(&store, &p, &t).await?;
    let e = |e: takeback_pairs::StoreError| e.to_string();

    let before = b.requests();
    for _ in 0..n {
        let t = tx();
        let p = claimed(
            store
                .claim_new_call(&request(&t), Delivery::First)
                .await
                .map_err(e)?,
        )?;
        store
            .lookup(&p, &t, LookupMode::KeepClaim)
            .await
            .map_err(e)?;
        store
            .record_transfer_intent(&t, &intent())
            .await
            .map_err(e)?;
        store.release_owned(&t, Some(&p)).await.map_err(e)?;
    }
    let ours_full = (b.requests() - before) as f64 / n as f64;
    let before = b.requests();
    for _ in 0..n {
        let t = tx();
        let p = claimed(
            store
                .claim_new_call(&request(&t), Delivery::First)
                .await
                .map_err(e)?,
        )?;
        store.release_owned(&t, Some(&p)).await.map_err(e)?;
    }
    let ours_abandoned = (b.requests() - before) as f64 / n as f64;

    let before = b.requests();
    for _ in 0..n {
        let t = tx();
        let Some(p) = seed.claim(&request(&t)).await?.pair else {
            return Err("sample: busy on an idle pool".into());
        };
        seed.lookup(&p).await?; // the lookup function
        seed.lookup(&p).await?; // the transfer function finding the transaction
        seed.release(&p).await?;
    }
    let sample_full = (b.requests() - before) as f64 / n as f64;
    let before = b.requests();
    for _ in 0..n {
        let t = tx();
        let Some(p) = seed.claim(&request(&t)).await?.pair else {
            return Err("sample: busy on an idle pool".into());
        };
        seed.release(&p).await?;
    }
    let sample_abandoned = (b.requests() - before) as f64 / n as f64;
    Ok(serde_json::json!({
        "ours_full": round2(ours_full),
        "ours_abandoned": round2(ours_abandoned),
        "sample_full": round2(sample_full),
        "sample_abandoned": round2(sample_abandoned),
        // Each request is a conditional write of one item under 1 KB (ours) = 1 WCU.
        "ours_full_wcu": round2(ours_full),
        "ours_abandoned_wcu": round2(ours_abandoned),
    }))
}

/// Claims under injected throttling: `workers` concurrent callers making `rounds` calls each
/// (claim, then release on a clean client); the share refused with an error.
pub async fn refusals_under_throttling(
    b: &Bench,
    percent: u64,
    workers: usize,
    rounds: usize,
    ours: bool,
) -> Result<serde_json::Value, String> {
    let refused = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    // Why callers were refused: the error's text (or the cap), counted.
    let reasons: Arc<Mutex<std::collections::BTreeMap<String, u64>>> = Arc::default();
    let releaser = DynamoStore::new(Client::new(&b.sdk), &b.pairs_table, &b.calls_table);
    let clean_seed = Seed {
        client: Client::new(&b.sdk),
        table: b.pairs_table.clone(),
    };
    b.throttler.set_percent(percent);
    let started = Instant::now();
    let injected_before = b.throttler.injected.load(Ordering::Relaxed);
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (store, seed, releaser, clean_seed) =
            (b.store(), b.seed(), releaser.clone(), clean_seed.clone());
        let (refused, busy, calls, reasons) = (
            refused.clone(),
            busy.clone(),
            calls.clone(),
            reasons.clone(),
        );
        let note = move |reason: String| {
            if let Ok(mut r) = reasons.lock() {
                *r.entry(reason).or_default() += 1;
            }
        };
        tasks.push(tokio::spawn(async move {
            for _ in 0..rounds {
                let t = tx();
                calls.fetch_add(1, Ordering::Relaxed);
                if ours {
                    // Within the SMA handler's own cap, as the handler runs it.
                    let claim = tokio::time::timeout(
                        Duration::from_millis(3500),
                        store.claim_new_call(&request(&t), Delivery::First),
                    )
                    .await;
                    match claim {
                        Ok(Ok(ClaimOutcome::Claimed(c))) => {
                            let _ = releaser.lookup(&c.pair, &t, LookupMode::KeepClaim).await;
                            let _ = releaser.release(&c.pair, &t).await;
                        }
                        Ok(Ok(ClaimOutcome::Busy)) => {
                            busy.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Err(e)) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            let cause = std::error::Error::source(&e)
                                .map(|s| format!(": {s}"))
                                .unwrap_or_default();
                            note(format!("{e}{cause}"));
                            let _ = releaser.release_owned(&t, None).await;
                        }
                        Err(_) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            note("over the handler's cap".into());
                            // Whatever may have landed is freed by the call's next event.
                            let _ = releaser.release_owned(&t, None).await;
                        }
                    }
                } else {
                    match tokio::time::timeout(
                        Duration::from_millis(3500),
                        seed.claim(&request(&t)),
                    )
                    .await
                    {
                        Ok(Ok(r)) => match r.pair {
                            Some(p) => {
                                let _ = clean_seed.release(&p).await;
                            }
                            None => {
                                busy.fetch_add(1, Ordering::Relaxed);
                            }
                        },
                        Ok(Err(e)) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            // The operation and the error's kind, without its request id.
                            note(e.split('{').next().unwrap_or_default().trim().to_owned());
                        }
                        Err(_) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            note("over the handler's cap".into());
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())?;
    }
    b.throttler.set_percent(0);
    let calls = calls.load(Ordering::Relaxed).max(1);
    let refused = refused.load(Ordering::Relaxed);
    let reasons = reasons.lock().map(|r| r.clone()).unwrap_or_default();
    Ok(serde_json::json!({
        "calls": calls,
        "refused": refused,
        "busy": busy.load(Ordering::Relaxed),
        "refused_by_reason": reasons,
        "refusal_rate_pct": round2(refused as f64 * 100.0 / calls as f64),
        "throttled_requests": b.throttler.injected.load(Ordering::Relaxed) - injected_before,
        "seconds": round2(started.elapsed().as_secs_f64()),
    }))
}

/// A burst of `claimers` simultaneous callers on the pool, each a separate execution
/// environment; `warm`: each environment has claimed (and released) before, so it has a view.
/// Holds won pairs for `hold`. Returns write attempts per claim, busy answers, the slowest busy
/// answer (ms) and the most requests one busy answer cost, and double claims.
pub async fn burst(
    b: &Bench,
    claimers: usize,
    warm: bool,
    hold: Duration,
    ours: bool,
) -> Result<serde_json::Value, String> {
    let mut envs = Vec::new();
    for _ in 0..claimers {
        let store = b.store();
        if warm && ours {
            let t = tx();
            if let ClaimOutcome::Claimed(c) =
                store.claim(&request(&t)).await.map_err(|e| e.to_string())?
            {
                look_up_and_release(&store, &c.pair, &t).await?;
            }
        }
        envs.push(store);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(claimers));
    let held: Arc<Mutex<std::collections::HashMap<PairKey, String>>> = Arc::default();
    let mut tasks = Vec::new();
    for store in envs {
        let (barrier, held, seed) = (barrier.clone(), held.clone(), b.seed());
        tasks.push(tokio::spawn(async move {
            let t = tx();
            let store = store.with_fresh_metrics();
            barrier.wait().await;
            let started = Instant::now();
            let (pair, writes, requests) = if ours {
                let outcome = store
                    .claim_new_call(&request(&t), Delivery::First)
                    .await
                    .map_err(|e| e.to_string())?;
                let m = store.metrics();
                let pair = match outcome {
                    ClaimOutcome::Claimed(c) => Some(c.pair),
                    ClaimOutcome::Busy => None,
                };
                (pair, m.claim_write_attempts, m.requests)
            } else {
                let r = seed.claim(&request(&t)).await?;
                (r.pair, r.write_attempts, r.requests)
            };
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let double = pair.as_ref().is_some_and(|p| {
                held.lock()
                    .map(|mut h| h.insert(p.clone(), t.clone()).is_some())
                    .unwrap_or(false)
            });
            if let Some(p) = &pair {
                tokio::time::sleep(hold).await;
                if let Ok(mut h) = held.lock() {
                    h.remove(p);
                }
                if ours {
                    let _ = store.lookup(p, &t, LookupMode::KeepClaim).await;
                    let _ = store.release(p, &t).await;
                } else {
                    let _ = seed.release(p).await;
                }
            }
            Ok::<_, String>((pair.is_some(), writes, requests, ms, double))
        }));
    }
    let (mut claims, mut busy, mut writes, mut doubles) = (0u64, 0u64, 0u64, 0u64);
    let (mut busy_ms, mut busy_requests_max) = (0.0f64, 0u64);
    let mut busy_by_requests = std::collections::BTreeMap::<u64, u64>::new();
    for t in tasks {
        let (won, w, r, ms, double) = t.await.map_err(|e| e.to_string())??;
        writes += w;
        if won {
            claims += 1;
        } else {
            busy += 1;
            busy_ms = busy_ms.max(ms);
            busy_requests_max = busy_requests_max.max(r);
            *busy_by_requests.entry(r).or_default() += 1;
        }
        doubles += u64::from(double);
    }
    Ok(serde_json::json!({
        "claims": claims,
        "busy": busy,
        "double_claims": doubles,
        "write_attempts_per_claim": round2(writes as f64 / claims.max(1) as f64),
        "slowest_busy_ms": round2(busy_ms),
        "max_requests_per_busy": busy_requests_max,
        // How many busy answers cost each number of requests.
        "busy_by_requests": busy_by_requests
            .iter()
            .map(|(r, n)| (r.to_string(), serde_json::json!(n)))
            .collect::<serde_json::Map<_, _>>(),
    }))
}

/// Process start to first claim: the median over `runs` child processes, each building its SDK
/// configuration and client and claiming one pair on fresh connections.
pub fn cold_start(
    pairs_table: &str,
    calls_table: &str,
    runs: usize,
    strategy: &str,
) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let spawned_at_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or_default()
            .to_string();
        let out = std::process::Command::new(&exe)
            .args(["--cold-child", strategy, "--pairs-table", pairs_table])
            .args(["--spawned-at-us", &spawned_at_us])
            .args(["--calls-table", calls_table])
            // The child's phases (SDK loaded, claim answered) go to our stderr as progress.
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| e.to_string())?;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        if !out.status.success() {
            return Err(format!("cold child failed ({})", out.status));
        }
        // The child prints when its claim was answered; the rest is process exit.
        let first_claim_ms = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<f64>()
            .unwrap_or(elapsed);
        times.push(first_claim_ms.min(elapsed));
    }
    times.sort_by(f64::total_cmp);
    Ok(percentile(&times, 50.0))
}
