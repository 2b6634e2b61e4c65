//! `fuzz`: see the crate documentation (`lib.rs`). `make fuzz` runs it (release build).
//!
//! Environment: `FUZZ_INPUTS` (200000), `FUZZ_SEED` (1), `FUZZ_THREADS` (the machine's cores),
//! `FUZZ_OUT` (where failing inputs go, default `target/fuzz`), `FUZZ_REPLAY=i` (run case `i`
//! alone and print its inputs and findings). Prints its figures as one JSON line, last; exits 1
//! on any panic or violated invariant, 2 on a setup error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use fuzz::{FuzzSettings, fuzz, quiet_panics, replay};
use takeback_common::config::process_env;

fn number(name: &'static str, default: u64) -> Result<u64, String> {
    match process_env().optional(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|_| format!("{name}={v}: not a number")),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn settings() -> Result<FuzzSettings, String> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    Ok(FuzzSettings {
        inputs: number("FUZZ_INPUTS", 200_000)?,
        seed: number("FUZZ_SEED", 1)?,
        threads: number("FUZZ_THREADS", cores)?.clamp(1, 64) as usize,
        corpus: root().join("events"),
        out_dir: process_env()
            .optional("FUZZ_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target/fuzz")),
    })
}

fn main() -> ExitCode {
    let settings = match settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    quiet_panics();
    if let Some(index) = process_env().optional("FUZZ_REPLAY") {
        let Ok(index) = index.trim().parse::<u64>() else {
            eprintln!("fuzz: FUZZ_REPLAY={index}: not a case number");
            return ExitCode::from(2);
        };
        return match replay(&settings, index) {
            Ok(doc) => {
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("fuzz: {e}");
                ExitCode::from(2)
            }
        };
    }
    eprintln!(
        "fuzz: {} inputs, seed {}, {} thread(s), corpus {}",
        settings.inputs,
        settings.seed,
        settings.threads,
        settings.corpus.display()
    );
    let step = (settings.inputs / 10).max(1);
    let shown = AtomicU64::new(0);
    let threads = settings.threads as u64;
    let progress = |done_by_first: u64| {
        // The first worker runs every `threads`-th case: scale to the whole run.
        let done = done_by_first.saturating_mul(threads);
        let mark = done / step;
        if mark > shown.load(Ordering::Relaxed) && done < settings.inputs {
            shown.store(mark, Ordering::Relaxed);
            eprintln!("fuzz: ~{done} inputs");
            let _ = std::io::stderr().flush();
        }
    };
    match fuzz(&settings, &progress) {
        Ok(report) => {
            for (rule, n) in &report.violations_by_rule {
                eprintln!("fuzz: FOUND {n} × {rule}");
            }
            for f in &report.failure_files {
                eprintln!("fuzz: first failing input written to {f}");
            }
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            if report.panics == 0 && report.violations == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("fuzz: {e}");
            ExitCode::from(2)
        }
    }
}
