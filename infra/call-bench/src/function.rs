//! One function as Lambda runs it: a process started with the Lambda environment variables,
//! pulling its events from its own [`RuntimeApi`].

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::runtime_api::RuntimeApi;

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// This project's `sma-handler` (the release binary).
    Ours,
    /// The Python model of the sample (`sample_model/runtime.py`).
    Sample,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Sample => "sample",
        }
    }
}

/// How to start one execution environment of a function.
#[derive(Debug, Clone)]
pub struct FunctionCommand {
    pub side: Side,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The function's whole environment (the process starts with nothing else, as in Lambda).
    pub env: Vec<(String, String)>,
    /// Both output streams of every process go here (appended).
    pub log: PathBuf,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("cannot start the runtime API: {0}")]
    Api(#[source] std::io::Error),
    #[error("cannot open the log {path}: {source}")]
    Log {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// A running execution environment.
pub struct Environment {
    pub api: RuntimeApi,
    child: Child,
    pub pid: Option<u32>,
    pub spawned_at: Instant,
}

impl FunctionCommand {
    /// A fresh Runtime API for one environment (queue its first event before [`Self::spawn`]:
    /// Lambda starts an environment for an invocation that is already waiting).
    pub async fn runtime_api(&self) -> Result<RuntimeApi, FunctionError> {
        RuntimeApi::start(&format!("call-bench-{}", self.side.name()), self.timeout)
            .await
            .map_err(FunctionError::Api)
    }

    /// Starts the process against `api`.
    pub fn spawn(&self, api: RuntimeApi) -> Result<Environment, FunctionError> {
        let log = |path: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| FunctionError::Log {
                    path: path.display().to_string(),
                    source,
                })
        };
        let stdout = log(&self.log)?;
        let stderr = log(&self.log)?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        let spawned_at = Instant::now();
        let child = command.spawn().map_err(|source| FunctionError::Spawn {
            program: self.program.display().to_string(),
            source,
        })?;
        Ok(Environment {
            api,
            pid: child.id(),
            child,
            spawned_at,
        })
    }
}

impl Environment {
    /// The process's peak resident set so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        vm_hwm_kib(&status)
    }

    /// Stops the process (SIGKILL to its own PID, as Lambda ends an environment) and returns
    /// its peak resident set, read just before.
    pub async fn stop(mut self) -> Option<u64> {
        let peak = self.peak_rss_kib();
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        peak
    }
}

/// `VmHWM` of a `/proc/<pid>/status` text, in KiB.
pub fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_is_read_from_proc_status() {
        let status =
            "Name:\tpython3\nVmPeak:\t  412000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   80000 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(81_234));
        assert_eq!(vm_hwm_kib("Name:\tx\nVmRSS:\t1 kB\n"), None);
        assert_eq!(vm_hwm_kib("VmHWM:\tlots kB\n"), None);
        let own = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(vm_hwm_kib(&own).unwrap() > 0);
    }
}
