//! What the handlers run against: the store (in memory, or DynamoDB — Local through
//! `AWS_ENDPOINT_URL_DYNAMODB`), the tables (created from the shared definitions and seeded with
//! the shared seeding code), and the in-process handlers built from the same configuration code
//! their `main.rs` uses, fed an environment the emulator composes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::FutureExt;
use serde_json::Value;
use takeback_connect::config::{Env, LookupConfig, TransferConfig};
use takeback_dynamo::pairs::{ClaimConfig, DynamoStore, IN_USE_TRUE, attr, system_clock};
use takeback_dynamo::seed::seed_pairs;
use takeback_dynamo::tables;
use takeback_pairs::memory::{EpochClock, MemoryStore};
use takeback_pairs::strategy::{ClaimRules, Delivery};
use takeback_pairs::{
    CallStore, ClaimOutcome, ClaimRequest, LiveClaim, LookupMode, PairKey, PairStore,
    ReleaseOutcome, StoreError, TransferIntent,
};

use crate::invoke::{Handler, Invoker, LambdaApi};
use crate::model::Function;
use crate::scenario::Scenario;

pub const DEFAULT_SMA_ID: &str = "sma-emulator";
/// Built-in defaults, used when there is no env file; `infra/local.env` (what `make watch` gives
/// the functions) normally provides them.
pub const DEFAULT_TARGET: &str = "100";
pub const DEFAULT_TARGET_ARN: &str = "arn:aws:chime:us-east-1:123456789012:vc/local-pbx";

/// Reads a `KEY=VALUE` file (blank lines and `#` comments skipped, optional quotes removed), the
/// format `cargo lambda watch --env-file` reads.
pub fn read_env_file(path: &std::path::Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("{}: not KEY=VALUE: {line}", path.display()));
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        map.insert(k.trim().to_owned(), v.to_owned());
    }
    Ok(map)
}

/// The in-process store, shared by the three functions as their one database.
#[derive(Clone)]
pub enum AnyStore {
    Memory(Arc<MemoryStore>),
    Dynamo(DynamoStore),
}

impl PairStore for AnyStore {
    async fn claim(&self, request: &ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        match self {
            Self::Memory(m) => m.claim(request).await,
            Self::Dynamo(d) => d.claim(request).await,
        }
    }

    async fn release(
        &self,
        pair: &PairKey,
        transaction_id: &str,
    ) -> Result<ReleaseOutcome, StoreError> {
        match self {
            Self::Memory(m) => m.release(pair, transaction_id).await,
            Self::Dynamo(d) => d.release(pair, transaction_id).await,
        }
    }

    async fn lookup(
        &self,
        pair: &PairKey,
        contact_id: &str,
        mode: LookupMode,
    ) -> Result<Option<LiveClaim>, StoreError> {
        match self {
            Self::Memory(m) => m.lookup(pair, contact_id, mode).await,
            Self::Dynamo(d) => d.lookup(pair, contact_id, mode).await,
        }
    }

    // The trait's defaults below would hide what the stores do differently (claim records,
    // the re-delivery path of a claim, their own release), so each one is forwarded.
    async fn claimed_pair(&self, transaction_id: &str) -> Result<Option<PairKey>, StoreError> {
        match self {
            Self::Memory(m) => m.claimed_pair(transaction_id).await,
            Self::Dynamo(d) => d.claimed_pair(transaction_id).await,
        }
    }

    async fn claim_new_call(
        &self,
        request: &ClaimRequest,
        delivery: Delivery,
    ) -> Result<ClaimOutcome, StoreError> {
        match self {
            Self::Memory(m) => m.claim_new_call(request, delivery).await,
            Self::Dynamo(d) => d.claim_new_call(request, delivery).await,
        }
    }

    async fn release_owned(
        &self,
        transaction_id: &str,
        known: Option<&PairKey>,
    ) -> Result<ReleaseOutcome, StoreError> {
        match self {
            Self::Memory(m) => m.release_owned(transaction_id, known).await,
            Self::Dynamo(d) => d.release_owned(transaction_id, known).await,
        }
    }
}

impl CallStore for AnyStore {
    async fn record_transfer_intent(
        &self,
        transaction_id: &str,
        intent: &TransferIntent,
    ) -> Result<(), StoreError> {
        match self {
            Self::Memory(m) => m.record_transfer_intent(transaction_id, intent).await,
            Self::Dynamo(d) => d.record_transfer_intent(transaction_id, intent).await,
        }
    }

    async fn transfer_intent(
        &self,
        transaction_id: &str,
    ) -> Result<Option<TransferIntent>, StoreError> {
        match self {
            Self::Memory(m) => m.transfer_intent(transaction_id).await,
            Self::Dynamo(d) => d.transfer_intent(transaction_id).await,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    Dynamo,
}

impl StoreKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Memory => "in-memory store",
            Self::Dynamo => "DynamoDB",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("configuration of {function}: {source}")]
    Config {
        function: &'static str,
        #[source]
        source: takeback_connect::config::ConfigError,
    },
    #[error("{0}")]
    Setup(String),
    #[error("DynamoDB: {0}")]
    Store(#[from] StoreError),
}

/// Who holds pairs right now, for the leak check and the occupancy samples.
pub enum PairProbe {
    Memory(Arc<MemoryStore>),
    Dynamo {
        client: aws_sdk_dynamodb::Client,
        table: String,
    },
    None(String),
}

/// A pair held at the end of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HeldPair {
    pub sma_number: String,
    pub connect_number: String,
    pub transaction_id: String,
}

impl PairProbe {
    /// Pairs currently held (`None`: cannot tell).
    pub async fn held(&self) -> Result<Option<Vec<HeldPair>>, StoreError> {
        match self {
            Self::Memory(m) => Ok(Some(
                m.held_pairs()
                    .into_iter()
                    .map(|(p, t)| HeldPair {
                        sma_number: p.sma_number,
                        connect_number: p.connect_number,
                        transaction_id: t,
                    })
                    .collect(),
            )),
            Self::Dynamo { client, table } => {
                let mut held = Vec::new();
                let mut start = None;
                loop {
                    let out = client
                        .scan()
                        .table_name(table)
                        .consistent_read(true)
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .map_err(takeback_dynamo::map_sdk_error)?;
                    for item in out.items() {
                        let get = |k: &str| match item.get(k) {
                            Some(AttributeValue::S(s)) => s.clone(),
                            _ => String::new(),
                        };
                        if get(attr::IN_USE) == IN_USE_TRUE {
                            held.push(HeldPair {
                                sma_number: get(attr::SMA_NUMBER),
                                connect_number: get(attr::CONNECT_NUMBER),
                                transaction_id: get(attr::TRANSACTION_ID),
                            });
                        }
                    }
                    match out.last_evaluated_key() {
                        Some(k) => start = Some(k.clone()),
                        None => break,
                    }
                }
                Ok(Some(held))
            }
            Self::None(_) => Ok(None),
        }
    }

    /// How many pairs are held (cheap: an index count query on DynamoDB).
    pub async fn held_count(&self) -> Option<usize> {
        match self {
            Self::Memory(m) => Some(m.held_pairs().len()),
            Self::Dynamo { client, table } => client
                .query()
                .table_name(table)
                .index_name("in_use")
                .key_condition_expression("#u = :t")
                .expression_attribute_names("#u", attr::IN_USE)
                .expression_attribute_values(":t", AttributeValue::S(IN_USE_TRUE.into()))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .send()
                .await
                .ok()
                .map(|o| o.count() as usize),
            Self::None(_) => None,
        }
    }
}

/// The run's virtual clock as the in-process stores read it: the real epoch ms at which the
/// run's virtual time 0 sits, plus the virtual ms the event loop has reached. The loop
/// compresses time (a 30 s ring costs nothing), so a store on the wall clock would see a call's
/// minutes as seconds: the lease and the rest after an unbound release would last many times
/// longer, measured in the calls' time, than in a real deployment.
#[derive(Clone)]
pub struct VirtualClock {
    pub epoch_ms: i64,
    pub virtual_ms: Arc<AtomicU64>,
}

impl VirtualClock {
    fn starting_now() -> Self {
        Self {
            epoch_ms: system_clock()(),
            virtual_ms: Arc::default(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        let virtual_ms = i64::try_from(self.virtual_ms.load(Ordering::SeqCst)).unwrap_or(i64::MAX);
        self.epoch_ms.saturating_add(virtual_ms)
    }

    fn read_by(&self) -> Arc<dyn Fn() -> i64 + Send + Sync> {
        let clock = self.clone();
        Arc::new(move || clock.now_ms())
    }
}

pub struct Backend {
    /// The Connect numbers of the pairs the functions may claim: the scenario's, plus those
    /// already in a named table (which other scenarios or a deployment seeded).
    pub connect_numbers: HashSet<String>,
    pub invoker: Invoker,
    pub probe: PairProbe,
    pub store: Option<AnyStore>,
    pub env: BTreeMap<String, String>,
    /// The clock of the in-process stores (functions behind the Invoke API keep their own).
    pub clock: VirtualClock,
    /// Tables this run created (deleted by [`Backend::cleanup`]).
    created: Vec<String>,
    ddb: Option<aws_sdk_dynamodb::Client>,
}

pub struct Options {
    pub store: StoreKind,
    pub lambda: Option<Arc<LambdaApi>>,
    /// Existing tables to use (created if missing) instead of per-run ones.
    pub tables: Option<(String, String)>,
    pub lookup_mode: Option<String>,
    pub sma_id: Option<String>,
    /// The functions' environment from the env file (`infra/local.env`), if any.
    pub env_file: BTreeMap<String, String>,
    /// `AWS_ENDPOINT_URL_DYNAMODB` is set: DynamoDB calls go to a local server, never to AWS.
    pub dynamodb_local: bool,
    pub sdk: Option<SdkConfig>,
}

impl Backend {
    /// Requests the in-process store has made so far (DynamoDB API calls, or in-memory store
    /// calls).
    pub fn store_requests(&self) -> Option<u64> {
        match &self.store {
            Some(AnyStore::Dynamo(d)) => Some(d.metrics().requests),
            Some(AnyStore::Memory(m)) => Some(m.request_count()),
            None => None,
        }
    }

    pub async fn cleanup(&self) {
        if let Some(client) = &self.ddb {
            for t in &self.created {
                let _ = client.delete_table().table_name(t).send().await;
            }
        }
    }
}

/// Every Connect number in a pairs table.
async fn table_connect_numbers(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<HashSet<String>, StoreError> {
    let mut numbers = HashSet::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .projection_expression("#c")
            .expression_attribute_names("#c", attr::CONNECT_NUMBER)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(takeback_dynamo::map_sdk_error)?;
        for item in out.items() {
            if let Some(AttributeValue::S(n)) = item.get(attr::CONNECT_NUMBER) {
                numbers.insert(n.clone());
            }
        }
        match out.last_evaluated_key() {
            Some(k) => start = Some(k.clone()),
            None => return Ok(numbers),
        }
    }
}

fn table_name(scenario: &str, run_id: &str, suffix: &str) -> String {
    let clean: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!("emu-{clean}-{run_id}-{suffix}")
}

/// The functions' environment without a scenario: built-in defaults, then the env file (the one
/// `make watch` passes to `cargo lambda watch`), then `--sma-id`.
pub fn base_env(opts: &Options) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([
        (
            "SIP_MEDIA_APPLICATION_ID".to_owned(),
            DEFAULT_SMA_ID.to_owned(),
        ),
        (
            "DEFAULT_TRANSFER_TARGET".to_owned(),
            DEFAULT_TARGET.to_owned(),
        ),
        (
            "DEFAULT_TRANSFER_TARGET_ARN".to_owned(),
            DEFAULT_TARGET_ARN.to_owned(),
        ),
        ("LOOKUP_MODE".to_owned(), "keep".to_owned()),
    ]);
    env.extend(opts.env_file.clone());
    if let Some(id) = &opts.sma_id {
        env.insert("SIP_MEDIA_APPLICATION_ID".into(), id.clone());
    }
    env
}

/// The environment the in-process functions see: [`base_env`], this run's tables, the
/// scenario's `env`, then `--lookup-mode`.
pub fn function_env(
    scenario: &Scenario,
    pairs_table: &str,
    calls_table: &str,
    opts: &Options,
) -> BTreeMap<String, String> {
    let mut env = base_env(opts);
    env.insert("PAIRS_TABLE".to_owned(), pairs_table.to_owned());
    env.insert("CALLS_TABLE".to_owned(), calls_table.to_owned());
    env.extend(scenario.env.clone());
    if let Some(mode) = &opts.lookup_mode {
        env.insert("LOOKUP_MODE".into(), mode.clone());
    }
    env
}

/// Scenario settings the functions behind `--lambda-url` would not have (they take their
/// environment from their own server, presumably from the same env file).
pub fn env_conflicts(scenario: &Scenario, opts: &Options) -> Vec<String> {
    let base = base_env(opts);
    scenario
        .env
        .iter()
        .filter(|(k, v)| base.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

pub async fn prepare(
    scenario: &Scenario,
    opts: &Options,
    run_id: &str,
) -> Result<Backend, BackendError> {
    let clock = VirtualClock::starting_now();
    let pairs = scenario
        .pairs
        .pairs()
        .map_err(|e| BackendError::Setup(format!("pairs: {e}")))?;
    // Lambda mode: the functions' tables (the env file's, as `make seed` / `make watch` use).
    let lambda_tables = opts.lambda.as_ref().and_then(|_| {
        let f = &opts.env_file;
        f.get("PAIRS_TABLE")
            .cloned()
            .zip(f.get("CALLS_TABLE").cloned())
    });
    let named_tables = opts.tables.clone().or(lambda_tables);
    let (pairs_table, calls_table) = named_tables.clone().unwrap_or_else(|| {
        (
            table_name(&scenario.name, run_id, "pairs"),
            table_name(&scenario.name, run_id, "calls"),
        )
    });
    let env = function_env(scenario, &pairs_table, &calls_table, opts);
    let lookup = |name: &str| env.get(name).cloned();
    let env_fn = Env(lookup);

    // DynamoDB: tables and seed (also in Lambda mode when tables are named, so the functions
    // behind the Invoke API find the scenario's pairs).
    let wants_ddb = opts.dynamodb_local
        && (opts.store == StoreKind::Dynamo || (opts.lambda.is_some() && named_tables.is_some()));
    let mut created = Vec::new();
    let ddb = match (&opts.sdk, wants_ddb) {
        (Some(sdk), true) => {
            let client = aws_sdk_dynamodb::Client::new(sdk);
            for (def, name) in [
                (&tables::PAIRS, &pairs_table),
                (&tables::CALLS, &calls_table),
            ] {
                let outcome = tables::create_table(&client, def, name).await?;
                if outcome == tables::CreateOutcome::Created && named_tables.is_none() {
                    created.push(name.clone());
                }
            }
            seed_pairs(&client, &pairs_table, &pairs).await?;
            Some(client)
        }
        _ => None,
    };
    let mut connect_numbers: HashSet<String> =
        pairs.iter().map(|p| p.connect_number.clone()).collect();
    if let (Some(client), Some(_)) = (&ddb, &named_tables) {
        connect_numbers.extend(table_connect_numbers(client, &pairs_table).await?);
    }

    if let Some(api) = &opts.lambda {
        let probe = match &ddb {
            Some(client) => PairProbe::Dynamo {
                client: client.clone(),
                table: pairs_table.clone(),
            },
            None => PairProbe::None("pair check skipped: the functions' tables are unknown (--pairs-table/--calls-table, or PAIRS_TABLE/CALLS_TABLE in the env file, with AWS_ENDPOINT_URL_DYNAMODB)".into()),
        };
        return Ok(Backend {
            connect_numbers,
            invoker: Invoker::Lambda(api.clone()),
            probe,
            store: None,
            env,
            clock,
            created,
            ddb,
        });
    }

    let sma_config =
        sma_handler::config::SmaHandlerConfig::from_env(&env_fn).map_err(|source| {
            BackendError::Config {
                function: "sma-handler",
                source,
            }
        })?;
    let lookup_config = LookupConfig::from_env(&env_fn).map_err(|source| BackendError::Config {
        function: "connect-lookup",
        source,
    })?;
    let transfer_config =
        TransferConfig::from_env(&env_fn).map_err(|source| BackendError::Config {
            function: "connect-transfer",
            source,
        })?;

    let (store, probe) = match (&ddb, opts.store) {
        (Some(client), StoreKind::Dynamo) => {
            let store = DynamoStore::new(client.clone(), pairs_table.clone(), calls_table.clone())
                .with_config(ClaimConfig {
                    rules: ClaimRules {
                        lease_seconds: sma_config.lease_seconds,
                        ..ClaimRules::default()
                    },
                    ..ClaimConfig::default()
                })
                .with_clock(clock.read_by());
            (
                AnyStore::Dynamo(store),
                PairProbe::Dynamo {
                    client: client.clone(),
                    table: pairs_table.clone(),
                },
            )
        }
        _ => {
            let m = Arc::new(
                MemoryStore::new(pairs, sma_config.lease_seconds)
                    .with_clock(EpochClock(clock.read_by())),
            );
            (AnyStore::Memory(m.clone()), PairProbe::Memory(m))
        }
    };

    let sdk = opts.sdk.clone().ok_or_else(|| {
        BackendError::Setup(
            "no AWS SDK configuration for the transfer function's Chime client".into(),
        )
    })?;
    let mut handlers: HashMap<Function, Handler> = HashMap::new();

    let sma_deps = Arc::new(sma_handler::SmaDeps {
        store: store.clone(),
        call_machine: sma_config.call_machine,
    });
    handlers.insert(
        Function::Sma,
        Arc::new(move |event: Value| {
            let deps = sma_deps.clone();
            async move {
                let response = sma_handler::handle(&deps, event)
                    .await
                    .map_err(|e| e.to_string())?;
                serde_json::to_value(response).map_err(|e| e.to_string())
            }
            .boxed()
        }),
    );

    let lookup_deps = Arc::new(connect_lookup::LookupDeps::new(
        store.clone(),
        lookup_config.lookup_mode,
    ));
    handlers.insert(
        Function::Lookup,
        Arc::new(move |event: Value| {
            let deps = lookup_deps.clone();
            async move {
                let response = connect_lookup::handle(&deps, event).await;
                serde_json::to_value(response).map_err(|e| e.to_string())
            }
            .boxed()
        }),
    );

    // The real SDK client, built the way the function's main.rs builds it: its endpoint comes
    // from AWS_ENDPOINT_URL_CHIME_SDK_VOICE, which points at the emulator's fake API.
    let transfer_deps = Arc::new(connect_transfer::TransferDeps::new(
        store.clone(),
        takeback_chime::client(&sdk),
        transfer_config.sip_media_application_id,
        transfer_config.policy,
    ));
    handlers.insert(
        Function::Transfer,
        Arc::new(move |event: Value| {
            let deps = transfer_deps.clone();
            async move {
                let response = connect_transfer::handle(&deps, event).await;
                serde_json::to_value(response).map_err(|e| e.to_string())
            }
            .boxed()
        }),
    );

    Ok(Backend {
        connect_numbers,
        invoker: Invoker::InProcess(Arc::new(handlers)),
        probe,
        store: Some(store),
        env,
        clock,
        created,
        ddb,
    })
}
