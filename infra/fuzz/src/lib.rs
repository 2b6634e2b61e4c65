//! `fuzz`: a structure-aware fuzzer on stable Rust over the SMA, Connect and Alexa parsers and
//! decisions.
//!
//! Each input is one case, generated from the `events/` corpus by a seeded generator
//! ([`emulator::chaos::ChaosRng::for_item`]: case `i` of seed `s` is the same everywhere, so any
//! case can be replayed alone) and [`mutate`]d the way a broken or hostile sender would. A case
//! is one of: an SMA event through the pure decision path and the handler; a whole SMA call
//! (events duplicated, dropped, re-ordered, attributes carried along) with the Connect lookup and
//! transfer of its bridge; a Connect event through the lookup or transfer function; a sequence of
//! Alexa skill events or property-backend requests on one session ([`alexa`], [`drive`]).
//!
//! Invariants ([`check`]): no panic (each case runs under `catch_unwind`); every SMA answer
//! within the documented limits; every Connect answer a flat string map with a `result`; every
//! answer serializes. The first failing input of each kind is written to a file; `FUZZ_REPLAY=i`
//! runs case `i` alone and prints its inputs.

pub mod alexa;
pub mod check;
pub mod corpus;
pub mod drive;
pub mod mutate;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Instant;

use emulator::chaos::ChaosRng;
use serde::Serialize;
use serde_json::{Value, json};

use crate::corpus::Corpus;
use crate::drive::{CaseResult, Configs};

/// What a run does.
#[derive(Debug, Clone)]
pub struct FuzzSettings {
    pub inputs: u64,
    pub seed: u64,
    pub threads: usize,
    pub corpus: PathBuf,
    /// Where failing inputs are written.
    pub out_dir: PathBuf,
}

/// The figures of a run (the last line `make fuzz` prints).
#[derive(Debug, Clone, Serialize)]
pub struct FuzzReport {
    pub inputs: u64,
    /// Entry-point calls (a case makes one or more).
    pub calls: u64,
    pub panics: u64,
    pub violations: u64,
    pub seconds: f64,
    pub inputs_per_second: f64,
    pub seed: u64,
    pub threads: usize,
    pub cases_by_kind: BTreeMap<&'static str, u64>,
    /// `target rule` → count.
    pub violations_by_rule: BTreeMap<String, u64>,
    /// Files holding the first failing inputs.
    pub failure_files: Vec<String>,
}

/// The kinds of case, by share of inputs.
pub const CASE_KINDS: &[(&str, u64)] = &[
    ("sma_event", 30),
    ("sma_call", 15),
    ("connect_event", 25),
    ("alexa_sequence", 16),
    ("backend_sequence", 14),
];

fn case_kind(rng: &mut ChaosRng) -> &'static str {
    let total: u64 = CASE_KINDS.iter().map(|(_, w)| w).sum();
    let mut x = rng.below(total);
    for (name, w) in CASE_KINDS {
        if x < *w {
            return name;
        }
        x -= w;
    }
    "sma_event"
}

thread_local! {
    /// The message of the last panic on this thread (the hook records it instead of printing).
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the panic hook: panics are recorded for the report, not printed.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{payload}{location}")));
    }));
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
}

/// Runs case `index` of `seed`.
pub fn run_case(
    index: u64,
    seed: u64,
    corpus: &Corpus,
    configs: &Configs,
    rt: &tokio::runtime::Runtime,
) -> (&'static str, CaseResult) {
    let mut rng = ChaosRng::for_item(seed, index);
    let kind = case_kind(&mut rng);
    let mut out = CaseResult::default();
    match kind {
        "sma_event" => rt.block_on(drive::sma_single(corpus, configs, &mut rng, &mut out)),
        "sma_call" => rt.block_on(drive::sma_call(corpus, configs, &mut rng, &mut out)),
        "connect_event" => rt.block_on(drive::connect_single(corpus, configs, &mut rng, &mut out)),
        "alexa_sequence" => alexa::alexa_sequence(corpus, &mut rng, &mut out),
        _ => alexa::backend_sequence(corpus, &mut rng, &mut out),
    }
    (kind, out)
}

#[derive(Debug, Default)]
struct Tally {
    inputs: u64,
    calls: u64,
    panics: u64,
    violations: u64,
    kinds: BTreeMap<&'static str, u64>,
    by_rule: BTreeMap<String, u64>,
    first_panic: Option<(u64, String)>,
    first_violation: Option<(u64, drive::Violation)>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.inputs += o.inputs;
        self.calls += o.calls;
        self.panics += o.panics;
        self.violations += o.violations;
        for (k, v) in o.kinds {
            *self.kinds.entry(k).or_default() += v;
        }
        for (k, v) in o.by_rule {
            *self.by_rule.entry(k).or_default() += v;
        }
        self.first_panic = earliest(self.first_panic.take(), o.first_panic);
        self.first_violation = earliest(self.first_violation.take(), o.first_violation);
    }
}

/// The one with the lower case number.
fn earliest<T>(a: Option<(u64, T)>, b: Option<(u64, T)>) -> Option<(u64, T)> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.0 < x.0 { y } else { x }),
        (x, y) => x.or(y),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FuzzError {
    #[error(transparent)]
    Corpus(#[from] corpus::CorpusError),
    #[error(transparent)]
    Config(#[from] drive::ConfigsError),
    #[error("cannot start a runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn worker(
    first: u64,
    step: u64,
    settings: &FuzzSettings,
    corpus: &Corpus,
    configs: &Configs,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Tally, FuzzError> {
    let mut tally = Tally::default();
    let mut rt = runtime().map_err(FuzzError::Runtime)?;
    let mut i = first;
    while i < settings.inputs {
        let result = catch_unwind(AssertUnwindSafe(|| {
            run_case(i, settings.seed, corpus, configs, &rt)
        }));
        tally.inputs += 1;
        match result {
            Ok((kind, out)) => {
                *tally.kinds.entry(kind).or_default() += 1;
                tally.calls += out.calls;
                for v in out.violations {
                    tally.violations += 1;
                    *tally
                        .by_rule
                        .entry(format!("{} {}", v.target, v.broken.rule))
                        .or_default() += 1;
                    if tally.first_violation.is_none() {
                        tally.first_violation = Some((i, v));
                    }
                }
            }
            Err(_) => {
                tally.panics += 1;
                let message = LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_else(|| "panic".into());
                *tally.by_rule.entry(format!("panic {message}")).or_default() += 1;
                if tally.first_panic.is_none() {
                    tally.first_panic = Some((i, message));
                }
                // The runtime unwound mid-poll: start a fresh one.
                rt = runtime().map_err(FuzzError::Runtime)?;
            }
        }
        if first == 0 {
            progress(i + 1);
        }
        i += step;
    }
    Ok(tally)
}

fn write_failure(dir: &std::path::Path, name: &str, doc: &Value) -> Result<String, FuzzError> {
    let path = dir.join(name);
    std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap_or_default()))
        .map_err(|source| FuzzError::Write {
            path: path.display().to_string(),
            source,
        })?;
    Ok(path.display().to_string())
}

/// Runs `settings.inputs` cases on `settings.threads` threads.
pub fn fuzz(
    settings: &FuzzSettings,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<FuzzReport, FuzzError> {
    let corpus = Corpus::load(&settings.corpus)?;
    let configs = Configs::load()?;
    let threads = settings.threads.max(1);
    let started = Instant::now();
    let results: Vec<Result<Tally, FuzzError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let (corpus, configs) = (&corpus, &configs);
                s.spawn(move || worker(t, threads as u64, settings, corpus, configs, progress))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Ok(Tally::default())))
            .collect()
    });
    let mut tally = Tally::default();
    for r in results {
        tally.merge(r?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut files = Vec::new();
    if let Some((i, message)) = &tally.first_panic {
        let inputs = replay_inputs(*i, settings.seed, &corpus, &configs);
        files.push(write_failure(
            &settings.out_dir,
            &format!("fuzz-panic-{}-{i}.json", settings.seed),
            &json!({"seed": settings.seed, "case": i, "panic": message,
                    "replay": format!("FUZZ_SEED={} FUZZ_REPLAY={i} make fuzz", settings.seed),
                    "inputs": inputs}),
        )?);
    }
    if let Some((i, v)) = &tally.first_violation {
        files.push(write_failure(
            &settings.out_dir,
            &format!("fuzz-violation-{}-{i}.json", settings.seed),
            &json!({"seed": settings.seed, "case": i, "target": v.target,
                    "rule": v.broken.rule, "detail": v.broken.detail,
                    "replay": format!("FUZZ_SEED={} FUZZ_REPLAY={i} make fuzz", settings.seed),
                    "input": v.input}),
        )?);
    }
    Ok(FuzzReport {
        inputs: tally.inputs,
        calls: tally.calls,
        panics: tally.panics,
        violations: tally.violations,
        seconds: (seconds * 100.0).round() / 100.0,
        inputs_per_second: if seconds > 0.0 {
            (tally.inputs as f64 / seconds).round()
        } else {
            0.0
        },
        seed: settings.seed,
        threads,
        cases_by_kind: tally.kinds,
        violations_by_rule: tally.by_rule,
        failure_files: files,
    })
}

thread_local! {
    static RECORDING: RefCell<Option<Vec<Value>>> = const { RefCell::new(None) };
}

/// Records `input` while a case is being replayed (a no-op otherwise).
pub fn note_input(target: &str, input: &Value) {
    RECORDING.with(|r| {
        if let Some(list) = r.borrow_mut().as_mut() {
            list.push(json!({"target": target, "input": input}));
        }
    });
}

/// Case `index` again, recording every input it gives an entry point (up to a panic).
pub fn replay_inputs(index: u64, seed: u64, corpus: &Corpus, configs: &Configs) -> Vec<Value> {
    RECORDING.with(|r| *r.borrow_mut() = Some(Vec::new()));
    if let Ok(rt) = runtime() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            run_case(index, seed, corpus, configs, &rt)
        }));
    }
    RECORDING
        .with(|r| r.borrow_mut().take())
        .unwrap_or_default()
}

/// `FUZZ_REPLAY`: case `index` alone, its inputs and what it found.
pub fn replay(settings: &FuzzSettings, index: u64) -> Result<Value, FuzzError> {
    let corpus = Corpus::load(&settings.corpus)?;
    let configs = Configs::load()?;
    let inputs = replay_inputs(index, settings.seed, &corpus, &configs);
    let rt = runtime().map_err(FuzzError::Runtime)?;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        run_case(index, settings.seed, &corpus, &configs, &rt)
    }));
    let found = match outcome {
        Ok((kind, out)) => json!({
            "kind": kind,
            "calls": out.calls,
            "violations": out.violations.iter().map(|v| json!({
                "target": v.target, "rule": v.broken.rule, "detail": v.broken.detail})).collect::<Vec<_>>(),
        }),
        Err(_) => json!({"panic": LAST_PANIC.with(|p| p.borrow_mut().take())}),
    };
    Ok(json!({"seed": settings.seed, "case": index, "inputs": inputs, "found": found}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(inputs: u64, threads: usize) -> FuzzSettings {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        FuzzSettings {
            inputs,
            seed: 7,
            threads,
            corpus: root.join("events"),
            out_dir: std::env::temp_dir().join("takeback-fuzz-test"),
        }
    }

    #[test]
    fn a_short_run_covers_every_kind_and_is_reproducible() {
        let a = fuzz(&settings(600, 2), &|_| {}).unwrap();
        assert_eq!(a.inputs, 600);
        for (kind, _) in CASE_KINDS {
            assert!(
                a.cases_by_kind.get(kind).copied().unwrap_or(0) > 20,
                "{:?}",
                a.cases_by_kind
            );
        }
        assert!(a.calls >= a.inputs);
        let b = fuzz(&settings(600, 1), &|_| {}).unwrap();
        assert_eq!(a.calls, b.calls, "the same cases whatever the threads");
        assert_eq!(a.violations_by_rule, b.violations_by_rule);
    }

    #[test]
    fn replay_records_the_inputs_of_a_case() {
        let s = settings(1, 1);
        let doc = replay(&s, 3).unwrap();
        let inputs = doc["inputs"].as_array().cloned().unwrap_or_default();
        assert!(!inputs.is_empty(), "{doc}");
        assert!(inputs.iter().all(|i| i["target"].is_string()));
    }
}
