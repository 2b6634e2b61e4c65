//! The command line, and everything a run needs before its first call: the proxy, the
//! fixtures, the two functions' commands and environments.

use std::path::{Path, PathBuf};
use std::time::Duration;

use soak::proxy::{DdbFaultRates, FaultProxy};
use tokio::net::TcpListener;

use crate::answer::Markers;
use crate::bench::{Bench, Plan, workspace_path};
use crate::events::Templates;
use crate::function::{FunctionCommand, Side};

/// The SMA handler as Lambda runs it, beside a Python model of the sample (see the crate docs).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "call-bench")]
pub struct Args {
    /// This project's handler: the release `sma-handler` host build.
    #[arg(long, default_value_os_t = workspace_path("target/release/sma-handler"))]
    pub ours: PathBuf,
    /// Python 3 with boto3, for the sample's model.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Where `runtime.py` and `sma_handler.py` are.
    #[arg(long, default_value_os_t = workspace_path("infra/call-bench/sample_model"))]
    pub sample_dir: PathBuf,
    /// The project's `events/` fixtures.
    #[arg(long, default_value_os_t = workspace_path("events"))]
    pub events_dir: PathBuf,
    /// The functions' output (one log per side).
    #[arg(long, default_value_os_t = workspace_path("target/call-bench"))]
    pub log_dir: PathBuf,
    /// Fresh processes per side for the cold start.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub cold: u64,
    /// Timed warm calls per side.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    pub calls: u64,
    /// Calls per side while requests are throttled.
    #[arg(long = "throttled-calls", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub throttled_calls: u64,
    /// Execution environments side by side in the throttled run.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=16))]
    pub environments: u64,
    /// Share of DynamoDB requests the proxy throttles in the throttled run.
    #[arg(long = "throttle-rate", default_value_t = 0.2)]
    pub throttle_rate: f64,
    /// The functions' timeout: the SIP media application waits 5 s for an answer.
    #[arg(long = "timeout-ms", default_value_t = 5000)]
    pub timeout_ms: u64,
    /// A delay the proxy adds to every DynamoDB request, standing in for the network to a
    /// regional endpoint (DynamoDB Local on loopback answers in about a millisecond).
    #[arg(long = "dynamodb-delay-ms", default_value_t = 0)]
    pub dynamodb_delay_ms: u64,
    /// Seed of the proxy's fault draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "AWS_ENDPOINT_URL_DYNAMODB is not set: run `make bench-calls`, or start DynamoDB Local \
         and `eval \"$(infra/dynamodb-local.sh env NAME)\"` first"
    )]
    NoEndpoint,
    #[error("--throttle-rate must be between 0 and 1, not {0}")]
    Rate(f64),
    #[error("{0} is missing: build it with `cargo build --release -p sma-handler`")]
    NoHandler(String),
    #[error(
        "the sample's model needs Python 3 with boto3 ({python}: {problem}); install it with \
         `pip install boto3`"
    )]
    NoBoto3 { python: String, problem: String },
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Events(#[from] crate::events::EventError),
    #[error("proxy: {0}")]
    Proxy(#[from] soak::proxy::ProxyError),
}

/// The Python the sample's model runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplePython {
    /// The interpreter itself (not a version manager's shim script in front of it, which would
    /// add its own start-up to every cold start).
    pub executable: PathBuf,
    /// `python`, `boto3` and `botocore` versions, for the figures.
    pub versions: serde_json::Value,
}

/// Finds `python`'s interpreter and checks that it imports boto3.
pub fn python_with_boto3(python: &str) -> Result<SamplePython, SetupError> {
    let failed = |problem: String| SetupError::NoBoto3 {
        python: python.to_owned(),
        problem,
    };
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, platform, boto3, botocore; print(sys.executable); \
             print(platform.python_version()); print(boto3.__version__); print(botocore.__version__)",
        ])
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(failed(
            stderr.lines().last().unwrap_or("exit status").to_owned(),
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    let [path, python_version, boto3, botocore] = lines.as_slice() else {
        return Err(failed(format!("unexpected answer {stdout:?}")));
    };
    Ok(SamplePython {
        executable: PathBuf::from(path),
        versions: serde_json::json!({
            "python": python_version, "boto3": boto3, "botocore": botocore,
        }),
    })
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// What Lambda gives every function, plus where DynamoDB is.
fn lambda_env(side: Side, dynamodb: &str) -> Vec<(String, String)> {
    let region = var("AWS_REGION", "us-east-1");
    [
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.to_owned()),
        ("AWS_ACCESS_KEY_ID", var("AWS_ACCESS_KEY_ID", "local")),
        (
            "AWS_SECRET_ACCESS_KEY",
            var("AWS_SECRET_ACCESS_KEY", "local"),
        ),
        ("AWS_REGION", region.clone()),
        ("AWS_DEFAULT_REGION", region),
        (
            "AWS_LAMBDA_FUNCTION_NAME",
            format!("call-bench-{}", side.name()),
        ),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/call-bench-{}", side.name()),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "call-bench".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn with(mut env: Vec<(String, String)>, more: &[(&str, &str)]) -> Vec<(String, String)> {
    env.extend(more.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

/// The proxy (faults off), the fixtures and both functions' commands.
pub async fn prepare(args: &Args) -> Result<Bench, SetupError> {
    let upstream = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(SetupError::NoEndpoint)?;
    if !(0.0..=1.0).contains(&args.throttle_rate) {
        return Err(SetupError::Rate(args.throttle_rate));
    }
    if !args.ours.is_file() {
        return Err(SetupError::NoHandler(args.ours.display().to_string()));
    }
    let python = python_with_boto3(&args.python)?;
    eprintln!(
        "call-bench: the sample's model runs on {} ({})",
        python.executable.display(),
        python.versions
    );
    let runtime_py = args.sample_dir.join("runtime.py");
    if !runtime_py.is_file() {
        return Err(SetupError::Io(format!(
            "{} is missing",
            runtime_py.display()
        )));
    }
    std::fs::create_dir_all(&args.log_dir)
        .map_err(|e| SetupError::Io(format!("{}: {e}", args.log_dir.display())))?;
    let templates = Templates::load(&args.events_dir)?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| SetupError::Io(format!("proxy listener: {e}")))?;
    let rates = DdbFaultRates {
        throttled: args.throttle_rate,
        ..DdbFaultRates::default()
    };
    let proxy = FaultProxy::start(listener, &upstream, rates, args.seed)?;
    proxy.set_fixed_delay(Duration::from_millis(args.dynamodb_delay_ms));
    let sdk = takeback_sdk::load().await;
    let markers = Markers::default();
    let timeout = Duration::from_millis(args.timeout_ms);
    let log = |side: Side| args.log_dir.join(format!("{}.log", side.name()));
    let sample_dir = absolute(&args.sample_dir);
    let ours = FunctionCommand {
        side: Side::Ours,
        program: args.ours.clone(),
        args: Vec::new(),
        env: with(
            lambda_env(Side::Ours, proxy.endpoint()),
            &[
                ("MESSAGE_BUSY", &markers.busy),
                ("MESSAGE_UNAVAILABLE", &markers.unavailable),
                ("DEFAULT_TRANSFER_TARGET", "2000"),
                (
                    "DEFAULT_TRANSFER_TARGET_ARN",
                    "arn:aws:chime:us-east-1:123456789012:vc/call-bench",
                ),
                // Logging must not be what is measured.
                ("RUST_LOG", "warn"),
            ],
        ),
        log: log(Side::Ours),
        timeout,
    };
    let sample = FunctionCommand {
        side: Side::Sample,
        program: python.executable,
        args: vec![
            sample_dir.join("runtime.py").display().to_string(),
            "sma_handler.handler".to_owned(),
        ],
        env: with(
            lambda_env(Side::Sample, proxy.endpoint()),
            &[
                ("MESSAGE_BUSY", &markers.busy),
                ("LAMBDA_TASK_ROOT", &sample_dir.display().to_string()),
                ("_HANDLER", "sma_handler.handler"),
                // Keeps __pycache__ out of the source tree; only the model's two small
                // modules are compiled at each start (boto3's come precompiled).
                ("PYTHONDONTWRITEBYTECODE", "1"),
            ],
        ),
        log: log(Side::Sample),
        timeout,
    };
    for command in [&ours, &sample] {
        // One log per run.
        let _ = std::fs::remove_file(&command.log);
    }
    Ok(Bench {
        setup: aws_sdk_dynamodb::Client::new(&sdk),
        proxy,
        templates,
        markers,
        ours,
        sample,
        sample_versions: python.versions,
        plan: Plan {
            cold_processes: args.cold as usize,
            warm_calls: args.calls as usize,
            throttled_calls: args.throttled_calls as usize,
            throttled_environments: args.environments as usize,
            throttle_rate: args.throttle_rate,
            dynamodb_delay_ms: args.dynamodb_delay_ms,
        },
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_arguments() {
        let args = <Args as clap::Parser>::try_parse_from(["call-bench"]).unwrap();
        assert_eq!(
            (args.cold, args.calls, args.throttled_calls),
            (10, 200, 1000)
        );
        assert_eq!(args.throttle_rate, 0.2);
        assert!(args.ours.ends_with("target/release/sma-handler"));
        assert!(<Args as clap::Parser>::try_parse_from(["call-bench", "--calls", "0"]).is_err());
        assert!(
            <Args as clap::Parser>::try_parse_from(["call-bench", "--environments", "99"]).is_err()
        );
    }

    #[test]
    fn a_python_without_boto3_is_named_with_the_fix() {
        let err = python_with_boto3("/nonexistent/python3").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("pip install boto3"), "{text}");
        assert!(text.contains("/nonexistent/python3"), "{text}");
    }

    #[test]
    fn both_functions_get_the_lambda_variables() {
        let env = lambda_env(Side::Sample, "http://127.0.0.1:1");
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("AWS_ENDPOINT_URL_DYNAMODB"), Some("http://127.0.0.1:1"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_NAME"), Some("call-bench-sample"));
        assert!(get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").is_some());
        assert!(get("AWS_LAMBDA_FUNCTION_VERSION").is_some());
        assert!(get("AWS_REGION").is_some());
    }
}
