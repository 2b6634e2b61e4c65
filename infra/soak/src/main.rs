//! `soak`: see the crate documentation (`lib.rs`). Run it with `make soak` (`infra/soak.sh`),
//! which provides DynamoDB Local.
//!
//! Environment: `AWS_ENDPOINT_URL_DYNAMODB` (DynamoDB Local, required), `SOAK_CALLS` (10000),
//! `SOAK_SEED` (1), `SOAK_BATCH` (1000 calls per batch), `SOAK_RATE` (0.4 calls per virtual
//! second), `SOAK_LOG` (handler logs); each also a flag (`soak --help`). The proxy and the fake Chime API listen on free loopback ports: the binary runs
//! itself again with `AWS_ENDPOINT_URL_DYNAMODB` pointing at the proxy and
//! `AWS_ENDPOINT_URL_CHIME_SDK_VOICE` at the fake API, so the handlers' SDK clients find them
//! the standard way. Exit status: 0 every invariant held, 1 one failed, 2 setup error.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use emulator::backend;
use emulator::chime_api::{self, ChimeApi};
use soak::proxy::FaultProxy;
use soak::run::{SoakEnv, SoakSettings, run_soak, workspace_root};
use takeback_common::config::process_env;

const UPSTREAM: &str = "SOAK_DYNAMODB_UPSTREAM";
const PROXY_ADDR: &str = "SOAK_PROXY_ADDR";

fn main() -> ExitCode {
    // --help and bad values: clap prints them and exits (0, or 2 as before) before any set-up.
    let args = Args::parse();
    match child_or_reexec() {
        Ok(Some(code)) => return code,
        Ok(None) => {}
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    }
    let settings = settings(&args);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            args.log
                .as_deref()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .unwrap_or("off"),
        ))
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("soak: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(real_main(settings)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    }
}

/// `make soak` passes everything through the environment; the flags are for running it by hand.
#[derive(Debug, Parser)]
#[command(
    name = "soak",
    about = "Plays many calls through the real handlers under injected faults and checks the invariants (see make soak)",
    after_help = "Needs AWS_ENDPOINT_URL_DYNAMODB (DynamoDB Local; make soak starts one). Prints its \
                  figures as one JSON line, last. EXIT STATUS: 0 every invariant held; 1 one \
                  failed; 2 a setup error."
)]
struct Args {
    /// Calls to play [default: 10000]
    #[arg(long, env = "SOAK_CALLS", value_parser = positive::<usize>)]
    calls: Option<OrBlank<usize>>,
    /// Seed of the plan and the faults [default: 1]
    #[arg(long, env = "SOAK_SEED", value_parser = number::<u64>)]
    seed: Option<OrBlank<u64>>,
    /// Calls per batch (fresh tables per batch) [default: 1000]
    #[arg(long, env = "SOAK_BATCH", value_parser = positive::<usize>)]
    batch: Option<OrBlank<usize>>,
    /// Calls per virtual second [default: 0.4]
    #[arg(long, env = "SOAK_RATE", value_parser = positive::<f64>)]
    rate: Option<OrBlank<f64>>,
    /// Handler logs on stderr (a tracing filter) [default: off]
    #[arg(long, env = "SOAK_LOG", value_name = "FILTER")]
    log: Option<String>,
}

/// A value that may be blank (`SOAK_RATE=` from a Makefile): blank counts as unset, as for
/// every variable the project reads (`takeback_common::config::Env`); clap alone would refuse it.
#[derive(Debug, Clone, Copy)]
struct OrBlank<T>(Option<T>);

fn given<T: Copy>(value: Option<OrBlank<T>>) -> Option<T> {
    value.and_then(|v| v.0)
}

fn number<T: std::str::FromStr>(value: &str) -> Result<OrBlank<T>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(OrBlank(None));
    }
    value
        .parse()
        .map(|n| OrBlank(Some(n)))
        .map_err(|_| format!("{value}: not a number"))
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(
    value: &str,
) -> Result<OrBlank<T>, String> {
    match number::<T>(value)? {
        OrBlank(Some(n)) if n <= T::default() => Err(format!("{value}: must be positive")),
        n => Ok(n),
    }
}

fn settings(args: &Args) -> SoakSettings {
    let calls = given(args.calls).unwrap_or(10_000);
    let mut s = SoakSettings::new(calls, given(args.seed).unwrap_or(1));
    s.batch = given(args.batch).unwrap_or(s.batch);
    s.rate_per_s = given(args.rate).unwrap_or(s.rate_per_s);
    s
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// In the parent: runs the child with the proxy's and the fake API's endpoints set, returns its
/// exit code. In the child: `None`.
fn child_or_reexec() -> Result<Option<ExitCode>, String> {
    let env = process_env();
    if env.optional(UPSTREAM).is_some() {
        return Ok(None);
    }
    let upstream = env.optional("AWS_ENDPOINT_URL_DYNAMODB").ok_or(
        "AWS_ENDPOINT_URL_DYNAMODB is not set: run `make soak`, or start DynamoDB Local and \
         eval \"$(infra/dynamodb-local.sh env)\"",
    )?;
    if !upstream.starts_with("http://127.0.0.1:") && !upstream.starts_with("http://localhost:") {
        return Err(format!(
            "AWS_ENDPOINT_URL_DYNAMODB={upstream}: the soak only runs against a local DynamoDB"
        ));
    }
    let proxy = format!("127.0.0.1:{}", free_port()?);
    let chime = format!("http://127.0.0.1:{}", free_port()?);
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args().skip(1))
        .env(UPSTREAM, &upstream)
        .env(PROXY_ADDR, &proxy)
        .env("AWS_ENDPOINT_URL_DYNAMODB", format!("http://{proxy}"))
        .env("AWS_ENDPOINT_URL_CHIME_SDK_VOICE", &chime)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    if env.optional("AWS_REGION").is_none() && env.optional("AWS_DEFAULT_REGION").is_none() {
        cmd.env("AWS_REGION", emulator::model::REGION);
    }
    if env.optional("AWS_ACCESS_KEY_ID").is_none() {
        cmd.env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local");
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run myself again: {e}"))?;
    Ok(Some(ExitCode::from(
        status.code().unwrap_or(2).clamp(0, 255) as u8,
    )))
}

async fn real_main(settings: SoakSettings) -> Result<bool, String> {
    let env = process_env();
    let upstream = env.required(UPSTREAM).map_err(|e| e.to_string())?;
    let proxy_addr = env.required(PROXY_ADDR).map_err(|e| e.to_string())?;
    let chime = env
        .required("AWS_ENDPOINT_URL_CHIME_SDK_VOICE")
        .map_err(|e| e.to_string())?;
    let chime_addr = chime.trim_start_matches("http://").trim_end_matches('/');

    let listener = tokio::net::TcpListener::bind(&proxy_addr)
        .await
        .map_err(|e| format!("proxy on {proxy_addr}: {e}"))?;
    let proxy = FaultProxy::start(listener, &upstream, settings.dynamodb_faults, settings.seed)
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(chime_addr)
        .await
        .map_err(|e| format!("fake Chime SDK Voice API on {chime_addr}: {e}"))?;
    let api = Arc::new(ChimeApi::default());
    tokio::spawn(chime_api::serve(listener, api.clone()));
    let env_file = backend::read_env_file(&workspace_root().join("infra/local.env"))?;
    let soak_env = SoakEnv {
        proxy,
        api,
        sdk: takeback_sdk::load().await,
        env_file,
    };
    eprintln!(
        "soak: {} calls in batches of {} at {}/s on 9 pairs; DynamoDB Local {upstream} behind the fault proxy {}; seed {}",
        settings.calls,
        settings.batch,
        settings.rate_per_s,
        soak_env.proxy.endpoint(),
        settings.seed
    );
    let report = run_soak(&soak_env, &settings, |line| eprintln!("{line}"))
        .await
        .map_err(|e| e.to_string())?;
    for e in &report.examples {
        eprintln!("soak: FAILED INVARIANT: {e}");
    }
    let line = serde_json::to_string(&report).map_err(|e| e.to_string())?;
    println!("{line}");
    Ok(report.passed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("soak").chain(args.iter().copied()))
    }

    #[test]
    fn the_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn unset_sizes_keep_the_soaks_defaults_and_zero_is_refused() {
        let s = settings(&parse(&["--calls", "200", "--seed", "3"]).unwrap());
        let defaults = SoakSettings::new(200, 3);
        assert_eq!((s.calls, s.seed), (200, 3));
        assert_eq!(
            (s.batch, s.rate_per_s),
            (defaults.batch, defaults.rate_per_s)
        );
        let s = settings(&parse(&["--calls", "10", "--batch", "5", "--rate", "2.5"]).unwrap());
        assert_eq!((s.batch, s.rate_per_s), (5, 2.5));
        let s = settings(&parse(&["--calls", " ", "--rate", ""]).unwrap());
        assert_eq!((s.calls, s.rate_per_s), (10_000, defaults.rate_per_s));
        for bad in [
            ["--seed", "x"],
            ["--calls", "0"],
            ["--batch", "0"],
            ["--rate", "0"],
            ["--rate", "-1"],
        ] {
            assert_eq!(parse(&bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
        let help = Args::command().render_help().to_string();
        for var in [
            "SOAK_CALLS",
            "SOAK_SEED",
            "SOAK_BATCH",
            "SOAK_RATE",
            "SOAK_LOG",
        ] {
            assert!(help.contains(var), "{var} missing from --help");
        }
    }
}
