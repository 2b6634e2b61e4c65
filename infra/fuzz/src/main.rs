//! `fuzz`: see the crate documentation (`lib.rs`). `make fuzz` runs it (release build).
//!
//! Environment (or the flags `fuzz --help` lists): `FUZZ_INPUTS` (200000), `FUZZ_SEED` (1),
//! `FUZZ_THREADS` (the machine's cores), `FUZZ_OUT` (where failing inputs go, default
//! `target/fuzz`), `FUZZ_REPLAY=i` (run case `i` alone and print its inputs and findings). Prints its figures as one JSON line, last; exits 1
//! on any panic or violated invariant, 2 on a setup error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Parser;
use fuzz::{FuzzSettings, fuzz, quiet_panics, replay};

/// `make fuzz` passes everything through the environment; the flags are for running it by hand.
#[derive(Debug, Parser)]
#[command(
    name = "fuzz",
    about = "Structure-aware fuzzing of every event parser, decision and handler (see make fuzz)",
    after_help = "Prints its figures as one JSON line, last. EXIT STATUS: 0 no finding; 1 a panic or \
                  a violated invariant; 2 a setup error."
)]
struct Args {
    /// Inputs to generate [default: 200000]
    #[arg(long, env = "FUZZ_INPUTS", value_parser = whole_number)]
    inputs: Option<OrBlank<u64>>,
    /// Seed: case i of a seed is the same everywhere [default: 1]
    #[arg(long, env = "FUZZ_SEED", value_parser = whole_number)]
    seed: Option<OrBlank<u64>>,
    /// Worker threads, 1 to 64 [default: the machine's cores]
    #[arg(long, env = "FUZZ_THREADS", value_parser = whole_number)]
    threads: Option<OrBlank<u64>>,
    /// Where the first failing input of each kind is written [default: target/fuzz]
    #[arg(long, env = "FUZZ_OUT", value_name = "DIR", value_parser = path)]
    out: Option<OrBlank<PathBuf>>,
    /// Run case I alone and print its inputs and findings
    #[arg(long, env = "FUZZ_REPLAY", value_name = "I", value_parser = whole_number)]
    replay: Option<OrBlank<u64>>,
}

/// A value that may be blank (`FUZZ_REPLAY=` from a Makefile): blank counts as unset, as for
/// every variable the project reads (`takeback_common::config::Env`); clap alone would refuse it.
#[derive(Debug, Clone)]
struct OrBlank<T>(Option<T>);

fn given<T>(value: &Option<OrBlank<T>>) -> Option<&T> {
    value.as_ref().and_then(|v| v.0.as_ref())
}

/// A whole number; `_` separators and surrounding blanks allowed (`FUZZ_INPUTS=1_000_000`).
fn whole_number(value: &str) -> Result<OrBlank<u64>, String> {
    let digits = value.trim().replace('_', "");
    if digits.is_empty() {
        return Ok(OrBlank(None));
    }
    digits
        .parse()
        .map(|n| OrBlank(Some(n)))
        .map_err(|_| format!("{value}: not a number"))
}

fn path(value: &str) -> Result<OrBlank<PathBuf>, String> {
    Ok(OrBlank(
        Some(value.trim())
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    ))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn settings(args: &Args) -> FuzzSettings {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    FuzzSettings {
        inputs: given(&args.inputs).copied().unwrap_or(200_000),
        seed: given(&args.seed).copied().unwrap_or(1),
        threads: given(&args.threads).copied().unwrap_or(cores).clamp(1, 64) as usize,
        corpus: root().join("events"),
        out_dir: given(&args.out)
            .cloned()
            .unwrap_or_else(|| root().join("target/fuzz")),
    }
}

fn main() -> ExitCode {
    // --help and bad values: clap prints them and exits (0, or 2 as before).
    let args = Args::parse();
    let settings = settings(&args);
    quiet_panics();
    if let Some(&index) = given(&args.replay) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("fuzz").chain(args.iter().copied()))
    }

    #[test]
    fn the_definition_is_consistent() {
        Args::command().debug_assert();
    }

    /// The flags and their value rules; the variables `make fuzz` and CI pass are the flags'
    /// fallbacks, and `--help` names each.
    #[test]
    fn numbers_take_separators_and_bad_values_are_usage_errors() {
        let a = parse(&["--inputs", "1_000", "--seed", " 7 ", "--replay", "4711"]).unwrap();
        let s = settings(&a);
        assert_eq!((s.inputs, s.seed), (1_000, 7));
        assert_eq!(given(&a.replay), Some(&4711));
        // Blank is unset, as for every variable the project reads.
        let a = parse(&["--inputs", " ", "--replay", "", "--out", ""]).unwrap();
        let s = settings(&a);
        assert_eq!((s.inputs, given(&a.replay)), (200_000, None));
        assert!(s.out_dir.ends_with("target/fuzz"));
        assert_eq!(parse(&["--inputs", "many"]).unwrap_err().exit_code(), 2);
        let help = Args::command().render_help().to_string();
        for var in [
            "FUZZ_INPUTS",
            "FUZZ_SEED",
            "FUZZ_THREADS",
            "FUZZ_OUT",
            "FUZZ_REPLAY",
        ] {
            assert!(help.contains(var), "{var} missing from --help");
        }
    }
}
