//! `emulator`: plays calls through the SMA, Connect and the Chime SDK Voice API on one machine.
//! See the crate documentation (`lib.rs`) for the design.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use takeback_common::config::process_env;

use emulator::backend::{self, Options, StoreKind};
use emulator::chime_api::{self, ChimeApi};
use emulator::contact_flow_interpreter::ParsedFlow;
use emulator::invoke::LambdaApi;
use emulator::model::{Function, REGION};
use emulator::report::{self, Style};
use emulator::run::Run;
use emulator::scenario::{CallPlan, Scenario};
use emulator::simulate::{self, RunResult};
use emulator::world::World;
use serde_json::json;

const USAGE: &str = "\
emulator — the SIP media application, Amazon Connect and the Chime SDK Voice API on one machine

USAGE:
  emulator [OPTIONS] [SCENARIO.json | DIR]...     run scenarios (default: events/scenarios)
  emulator --load N --rate R[,R...] [SCENARIO]    load mode: N copies of the scenario's first call

OPTIONS:
  --json                    machine-readable output on stdout
  --summary                 outcomes and checks only, no timeline
  --store memory|dynamodb   default: dynamodb when AWS_ENDPOINT_URL_DYNAMODB is set, else memory
  --lookup-mode keep|release  LOOKUP_MODE of the in-process functions (overrides scenarios)
  --flow PATH               contact flow (default: the scenario's, else infra/contact-flow.json)
  --lambda-url URL          invoke the functions through the Lambda Invoke API at URL
                            (cargo lambda watch, sam local start-lambda) instead of in process
  --function ROLE=NAME      function name behind --lambda-url (ROLE: sma, lookup, transfer;
                            defaults sma-handler, connect-lookup, connect-transfer)
  --pairs-table NAME --calls-table NAME
                            use these tables (created/seeded if needed) instead of per-run ones
  --sma-id ID               SIP media application id (default: the env file's, else sma-emulator)
  --env-file PATH|none      the functions' environment, KEY=VALUE lines (default infra/local.env,
                            the file `make watch` gives cargo lambda watch); with --lambda-url its
                            PAIRS_TABLE/CALLS_TABLE and AWS_ENDPOINT_URL_CHIME_SDK_VOICE are used
  --log FILTER              handler logs on stderr (default: error)
  -h, --help

ENVIRONMENT:
  AWS_ENDPOINT_URL_CHIME_SDK_VOICE  where the fake Chime SDK Voice API listens (loopback); when
                            unset the emulator picks a free port and re-executes itself with it
                            set, so the transfer function's SDK client finds it the standard way
  AWS_ENDPOINT_URL_DYNAMODB         DynamoDB Local (see infra/dynamodb-local.sh)

EXIT STATUS: 0 all scenarios passed; 1 an expectation failed; 2 usage or setup error.";

#[derive(Debug, Default)]
struct Cli {
    paths: Vec<String>,
    json: bool,
    summary: bool,
    store: Option<StoreKind>,
    lookup_mode: Option<String>,
    flow: Option<String>,
    lambda_url: Option<String>,
    functions: HashMap<Function, String>,
    pairs_table: Option<String>,
    calls_table: Option<String>,
    sma_id: Option<String>,
    env_file: Option<String>,
    log: Option<String>,
    load: Option<usize>,
    rates: Vec<f64>,
}

fn parse_args(args: &[String]) -> Result<Cli, String> {
    let mut cli = Cli::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--json" => cli.json = true,
            "--summary" => cli.summary = true,
            "--store" => {
                cli.store = Some(match value("--store")?.as_str() {
                    "memory" => StoreKind::Memory,
                    "dynamodb" | "dynamo" => StoreKind::Dynamo,
                    other => return Err(format!("--store {other}: expected memory or dynamodb")),
                })
            }
            "--lookup-mode" => {
                let m = value("--lookup-mode")?;
                if !matches!(m.as_str(), "keep" | "release") {
                    return Err(format!("--lookup-mode {m}: expected keep or release"));
                }
                cli.lookup_mode = Some(m);
            }
            "--flow" => cli.flow = Some(value("--flow")?),
            "--lambda-url" => cli.lambda_url = Some(value("--lambda-url")?),
            "--function" => {
                let v = value("--function")?;
                let (role, name) = v.split_once('=').ok_or("--function expects ROLE=NAME")?;
                let f = match role {
                    "sma" => Function::Sma,
                    "lookup" => Function::Lookup,
                    "transfer" => Function::Transfer,
                    other => {
                        return Err(format!(
                            "--function {other}=…: ROLE is sma, lookup or transfer"
                        ));
                    }
                };
                cli.functions.insert(f, name.to_owned());
            }
            "--pairs-table" => cli.pairs_table = Some(value("--pairs-table")?),
            "--calls-table" => cli.calls_table = Some(value("--calls-table")?),
            "--sma-id" => cli.sma_id = Some(value("--sma-id")?),
            "--env-file" => cli.env_file = Some(value("--env-file")?),
            "--log" => cli.log = Some(value("--log")?),
            "--load" => {
                let n = value("--load")?;
                cli.load = Some(n.parse().map_err(|_| format!("--load {n}: not a number"))?);
            }
            "--rate" => {
                for r in value("--rate")?.split(',') {
                    let rate: f64 = r
                        .trim()
                        .parse()
                        .map_err(|_| format!("--rate {r}: not a number"))?;
                    if rate <= 0.0 {
                        return Err("--rate must be positive".into());
                    }
                    cli.rates.push(rate);
                }
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => cli.paths.push(s.to_owned()),
        }
    }
    if cli.pairs_table.is_some() != cli.calls_table.is_some() {
        return Err("--pairs-table and --calls-table go together".into());
    }
    if cli.load.is_some() && cli.rates.is_empty() {
        cli.rates.push(1.0);
    }
    Ok(cli)
}

/// The workspace root as compiled in, for default paths when run from elsewhere.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `path` as given when it exists, else relative to the workspace root.
fn resolve(path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    if p.exists() || p.is_absolute() {
        p
    } else {
        workspace_root().join(path)
    }
}

fn scenario_files(paths: &[String]) -> Result<Vec<PathBuf>, String> {
    let paths = if paths.is_empty() {
        vec!["events/scenarios".to_owned()]
    } else {
        paths.to_vec()
    };
    let mut files = Vec::new();
    for p in paths {
        let path = resolve(&p);
        if path.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            in_dir.sort();
            files.extend(in_dir);
        } else if path.is_file() {
            files.push(path);
        } else {
            return Err(format!("{p}: no such scenario file or directory"));
        }
    }
    if files.is_empty() {
        return Err("no scenario files".into());
    }
    Ok(files)
}

/// The fake Chime API must be where `AWS_ENDPOINT_URL_CHIME_SDK_VOICE` points, and the SDK needs
/// a region and credentials. Without unsafe code a process cannot set its own environment, so
/// when something is missing the emulator runs itself again with it set.
fn reexec_if_needed(preset_endpoint: Option<&str>) -> Option<ExitCode> {
    let env = process_env();
    let unset = |k: &'static str| env.optional(k).is_none();
    let need_endpoint = unset("AWS_ENDPOINT_URL_CHIME_SDK_VOICE");
    let need_region = unset("AWS_REGION") && unset("AWS_DEFAULT_REGION");
    let need_creds = unset("AWS_ACCESS_KEY_ID") && unset("AWS_PROFILE");
    if !(need_endpoint || need_region || need_creds) || !unset("EMULATOR_REEXECUTED") {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args().skip(1))
        .env("EMULATOR_REEXECUTED", "1");
    if let (true, Some(endpoint)) = (need_endpoint, preset_endpoint) {
        cmd.env("AWS_ENDPOINT_URL_CHIME_SDK_VOICE", endpoint);
    } else if need_endpoint {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        cmd.env(
            "AWS_ENDPOINT_URL_CHIME_SDK_VOICE",
            format!("http://127.0.0.1:{port}"),
        );
    }
    if need_region {
        cmd.env("AWS_REGION", REGION);
    }
    if need_creds {
        cmd.env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local");
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    match cmd.status() {
        Ok(status) => Some(ExitCode::from(
            status.code().unwrap_or(2).clamp(0, 255) as u8
        )),
        Err(e) => {
            eprintln!("emulator: cannot re-execute itself: {e}");
            Some(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = match parse_args(&args) {
        Ok(cli) => cli,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("emulator: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let env_file = match load_env_file(&cli) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("emulator: {e}");
            return ExitCode::from(2);
        }
    };
    // With --lambda-url the functions reach the fake Chime API where their env file says.
    let preset = cli.lambda_url.as_ref().and_then(|_| {
        env_file
            .get("AWS_ENDPOINT_URL_CHIME_SDK_VOICE")
            .map(String::as_str)
    });
    if let Some(code) = reexec_if_needed(preset) {
        return code;
    }
    let filter = cli.log.clone().unwrap_or_else(|| "error".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("emulator: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(real_main(cli, env_file)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("emulator: {e}");
            ExitCode::from(2)
        }
    }
}

struct Shared {
    env_file: BTreeMap<String, String>,
    api: Arc<ChimeApi>,
    sdk: aws_config::SdkConfig,
    lambda: Option<Arc<LambdaApi>>,
    store: StoreKind,
}

async fn start_chime_api() -> Result<Arc<ChimeApi>, String> {
    let endpoint = process_env()
        .required("AWS_ENDPOINT_URL_CHIME_SDK_VOICE")
        .map_err(|e| e.to_string())?;
    let addr = endpoint
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/'))
        .filter(|a| a.starts_with("127.0.0.1:") || a.starts_with("localhost:") || a.starts_with("[::1]:"))
        .ok_or_else(|| format!("AWS_ENDPOINT_URL_CHIME_SDK_VOICE={endpoint}: the emulator serves only http://127.0.0.1:PORT"))?;
    let addr = addr.replacen("localhost", "127.0.0.1", 1);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} for the fake Chime SDK Voice API: {e}"))?;
    let api = Arc::new(ChimeApi::default());
    tokio::spawn(chime_api::serve(listener, api.clone()));
    Ok(api)
}

/// The env file: `--env-file`, else `infra/local.env` when it exists; `none` for none.
fn load_env_file(cli: &Cli) -> Result<BTreeMap<String, String>, String> {
    match cli.env_file.as_deref() {
        Some("none") => Ok(BTreeMap::new()),
        Some(path) => backend::read_env_file(&resolve(path)),
        None => {
            let default = resolve("infra/local.env");
            if default.is_file() {
                backend::read_env_file(&default)
            } else {
                Ok(BTreeMap::new())
            }
        }
    }
}

async fn real_main(cli: Cli, env_file: BTreeMap<String, String>) -> Result<bool, String> {
    let api = start_chime_api().await?;
    let sdk = takeback_sdk::load().await;
    let store = cli.store.unwrap_or(if dynamodb_local_endpoint_set() {
        StoreKind::Dynamo
    } else {
        StoreKind::Memory
    });
    if store == StoreKind::Dynamo && !dynamodb_local_endpoint_set() {
        eprintln!(
            "emulator: --store dynamodb without AWS_ENDPOINT_URL_DYNAMODB talks to real AWS DynamoDB; refusing"
        );
        return Err(
            "set AWS_ENDPOINT_URL_DYNAMODB (eval \"$(infra/dynamodb-local.sh env)\")".into(),
        );
    }
    let lambda = cli
        .lambda_url
        .as_deref()
        .map(|u| Arc::new(LambdaApi::new(u, cli.functions.clone())));
    let shared = Shared {
        api,
        sdk,
        lambda,
        store,
        env_file,
    };
    let files = scenario_files(&cli.paths)?;
    if let Some(n) = cli.load {
        let file = files.first().ok_or("no scenario for load mode")?;
        return load_mode(&cli, &shared, file, n).await;
    }
    let style = Style::detect();
    let mut all_passed = true;
    let mut docs = Vec::new();
    if !cli.json {
        let mode = match &shared.lambda {
            Some(_) => format!(
                "functions behind {}",
                cli.lambda_url.as_deref().unwrap_or_default()
            ),
            None => format!("functions in process, {}", shared.store.label()),
        };
        println!("emulator: {} scenario(s), {mode}\n", files.len());
    }
    for file in &files {
        let scenario = Scenario::load(file).map_err(|e| e.to_string())?;
        let store_name = match shared.store {
            StoreKind::Memory => "memory",
            StoreKind::Dynamo => "dynamodb",
        };
        let conflicts = backend::env_conflicts(&scenario, &options(&cli, &shared));
        let skip = if shared.lambda.is_some() && !conflicts.is_empty() {
            Some(format!(
                "it needs {} in the functions' environment; functions behind --lambda-url take theirs from their own server",
                conflicts.join(", ")
            ))
        } else if shared.lambda.is_none()
            && !scenario.stores.is_empty()
            && !scenario.stores.iter().any(|s| s == store_name)
        {
            Some(scenario.skip_reason.clone().unwrap_or_default())
        } else {
            None
        };
        if let Some(why) = skip {
            if cli.json {
                docs.push(
                    json!({"name": scenario.name, "skipped": true, "passed": true, "reason": why}),
                );
            } else {
                println!("SKIP {}: {why}\n", scenario.name);
            }
            continue;
        }
        let plans = scenario.plans();
        let (result, verdict) = run_once(&cli, &shared, &scenario, plans.clone(), true).await?;
        all_passed &= verdict.passed;
        if cli.json {
            docs.push(report::scenario_json(&scenario, &result, &verdict));
        } else {
            print!(
                "{}",
                report::render_text(&scenario, &result, &verdict, &style, !cli.summary)
            );
        }
    }
    if cli.json {
        let doc = json!({"passed": all_passed, "scenarios": docs});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!(
            "{}",
            if all_passed {
                "all scenarios passed"
            } else {
                "SOME SCENARIOS FAILED"
            }
        );
    }
    Ok(all_passed)
}

fn flow_path(cli: &Cli, scenario: &Scenario) -> PathBuf {
    resolve(
        cli.flow
            .as_deref()
            .or(scenario.flow.as_deref())
            .unwrap_or("infra/contact-flow.json"),
    )
}

/// What one run produced, beyond the simulation result.
struct Executed {
    result: RunResult,
    /// The functions' environment (for `$VAR` in expectations).
    env: BTreeMap<String, String>,
    fallback_configured: bool,
    store_requests: Option<u64>,
    lookup_mode: String,
}

async fn run_once(
    cli: &Cli,
    shared: &Shared,
    scenario: &Scenario,
    plans: Vec<CallPlan>,
    keep_timeline: bool,
) -> Result<(RunResult, report::Verdict), String> {
    let done = execute(cli, shared, scenario, plans.clone(), keep_timeline).await?;
    let verdict = report::verdict(
        scenario,
        &plans,
        &done.result,
        done.fallback_configured,
        &done.env,
    );
    Ok((done.result, verdict))
}

fn options(cli: &Cli, shared: &Shared) -> Options {
    Options {
        store: shared.store,
        lambda: shared.lambda.clone(),
        tables: cli.pairs_table.clone().zip(cli.calls_table.clone()),
        lookup_mode: cli.lookup_mode.clone(),
        sma_id: cli.sma_id.clone(),
        env_file: shared.env_file.clone(),
        dynamodb_local: dynamodb_local_endpoint_set(),
        sdk: Some(shared.sdk.clone()),
    }
}

/// Builds the backend (tables, seeded pairs, handlers), runs the plans, cleans up.
async fn execute(
    cli: &Cli,
    shared: &Shared,
    scenario: &Scenario,
    plans: Vec<CallPlan>,
    keep_timeline: bool,
) -> Result<Executed, String> {
    let flow_file = flow_path(cli, scenario);
    let flow_text = std::fs::read_to_string(&flow_file)
        .map_err(|e| format!("contact flow {}: {e}", flow_file.display()))?;
    let flow = ParsedFlow::parse(&flow_text)
        .map_err(|e| format!("contact flow {}: {e}", flow_file.display()))?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let opts = options(cli, shared);
    let backend = backend::prepare(scenario, &opts, &run_id)
        .await
        .map_err(|e| format!("{}: {e}", scenario.name))?;
    let env: &BTreeMap<String, String> = &backend.env;
    let sma_id = env
        .get("SIP_MEDIA_APPLICATION_ID")
        .cloned()
        .unwrap_or_default();
    let lookup_mode = env
        .get("LOOKUP_MODE")
        .cloned()
        .unwrap_or_else(|| "keep".into());
    let fallback = env
        .get("FALLBACK_TARGET")
        .cloned()
        .zip(env.get("FALLBACK_TARGET_ARN").cloned());
    let connect_numbers = backend.connect_numbers.clone();
    let faults = plans
        .first()
        .map(|p| p.sma.chime_api_faults.clone())
        .unwrap_or_default();
    let run = Arc::new(Run {
        world: World::new(sma_id, faults, keep_timeline),
        invoker: backend.invoker.clone(),
        plans,
        connect_numbers,
        targets: scenario.targets.clone(),
        fallback,
        flow,
        epoch_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default(),
        sample_pairs: !keep_timeline,
    });
    shared.api.set(Some(run.clone()));
    let result = simulate::simulate(&run, &backend.probe).await;
    shared.api.set(None);
    let store_requests = backend.store_requests();
    backend.cleanup().await;
    Ok(Executed {
        result,
        env: backend.env.clone(),
        fallback_configured: run.fallback.is_some(),
        store_requests,
        lookup_mode,
    })
}

async fn load_mode(cli: &Cli, shared: &Shared, file: &Path, n: usize) -> Result<bool, String> {
    let scenario = Scenario::load(file).map_err(|e| e.to_string())?;
    let pairs = scenario.pairs.pairs().map_err(|e| e.to_string())?.len();
    let style = Style::detect();
    let mut summaries = Vec::new();
    let mut ok = true;
    for &rate in &cli.rates {
        let plans = scenario.load_plans(n, rate);
        let done = execute(cli, shared, &scenario, plans, false).await?;
        let store = match &shared.lambda {
            Some(_) => "Lambda Invoke API".to_owned(),
            None => shared.store.label().to_owned(),
        };
        let summary = report::load_summary(
            &done.result,
            rate,
            pairs,
            &done.lookup_mode,
            &store,
            done.store_requests,
        );
        ok &= summary.pairs_leaked.unwrap_or(0) == 0
            && summary.wrong_transfers == 0
            && summary.findings == 0;
        if !cli.json {
            println!("{}", report::render_load(&summary, &style));
            for f in done.result.findings.iter().take(10) {
                println!(
                    "  finding: {}{}: {}",
                    f.call
                        .map(|c| format!("call {}: ", c + 1))
                        .unwrap_or_default(),
                    f.rule,
                    f.detail
                );
            }
        }
        summaries.push(summary);
    }
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summaries).unwrap_or_default()
        );
    }
    Ok(ok)
}

/// Whether the SDK will talk to a local DynamoDB (never real AWS from here by accident).
fn dynamodb_local_endpoint_set() -> bool {
    process_env()
        .optional("AWS_ENDPOINT_URL_DYNAMODB")
        .is_some()
}
