//! Drives the SMA and Connect entry points with mutated events and checks their answers.
//!
//! - SMA, pure: `SmaEvent::from_value`, `call_machine::store_work`, `call_machine::decide` with
//!   plausible (random) store results, the response built and serialized as the handler does;
//! - SMA, end to end: the sma-handler's `handle` over an in-memory store, for single events and
//!   for whole calls (a transaction's events in call order, mutated, duplicated, dropped and
//!   re-ordered, `TransactionAttributes` carried from answer to event as the SMA does), with the
//!   Connect lookup and transfer of the call's bridge interleaved on the same store;
//! - Connect: connect-lookup's and connect-transfer's `handle` over an in-memory store and a
//!   fake `CallUpdater` that fails in every documented way.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use emulator::chaos::ChaosRng;
use serde_json::{Value, json};
use takeback_common::config::Env;
use takeback_connect::config::{LookupConfig, TransferConfig};
use takeback_connect::{CallUpdater, UpdateCallError, UpdateFailure};
use takeback_pairs::memory::MemoryStore;
use takeback_pairs::{
    Claim, ClaimOutcome, ClaimRequest, LookupMode, PairKey, PairStore, ReleaseOutcome,
    TransferIntent,
};
use takeback_sma::call_machine::{
    self, CallAttributes, CallMachineConfig, StoreFailed, StoreResults, StoreWork,
};
use takeback_sma::target::TransferPolicy;
use takeback_sma::{Actions, SmaEvent, SmaResponse, TransactionAttributes};

use crate::check::{self, Broken};
use crate::corpus::Corpus;
use crate::mutate::{self, DOMAIN_STRINGS};

/// The pool of pairs (`infra/pairs.example.json`).
pub const SMA_NUMBERS: [&str; 3] = ["+18005557777", "+18005558888", "+18005559999"];
pub const CONNECT_NUMBERS: [&str; 3] = ["+18005551111", "+18005552222", "+18005553333"];
const SMA_ID: &str = "sma-emulator";

/// One broken promise, with the input that broke it.
#[derive(Debug, Clone)]
pub struct Violation {
    /// Which entry point answered (`sma.decide`, `sma.handle`, `connect.lookup`, ...).
    pub target: &'static str,
    pub broken: Broken,
    pub input: Value,
}

/// What one fuzz case did.
#[derive(Debug, Default)]
pub struct CaseResult {
    /// Entry-point calls made.
    pub calls: u64,
    pub violations: Vec<Violation>,
}

impl CaseResult {
    fn flag(&mut self, target: &'static str, broken: Vec<Broken>, input: &Value) {
        for b in broken {
            self.violations.push(Violation {
                target,
                broken: b,
                input: input.clone(),
            });
        }
    }
}

/// The functions' configuration, as the emulator composes it from `infra/local.env`.
pub struct Configs {
    pub call_machine: CallMachineConfig,
    /// The same with a fallback target configured.
    pub call_machine_fallback: CallMachineConfig,
    pub policy: TransferPolicy,
    pub lookup_mode: LookupMode,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration of {function}: {source}")]
pub struct ConfigsError {
    function: &'static str,
    #[source]
    source: takeback_common::config::ConfigError,
}

fn env_of(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("PAIRS_TABLE", "fuzz-pairs"),
        ("CALLS_TABLE", "fuzz-calls"),
        ("SIP_MEDIA_APPLICATION_ID", SMA_ID),
        ("DEFAULT_TRANSFER_TARGET", "100"),
        (
            "DEFAULT_TRANSFER_TARGET_ARN",
            "arn:aws:chime:us-east-1:123456789012:vc/local-pbx",
        ),
        ("LOOKUP_MODE", "keep"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

impl Configs {
    pub fn load() -> Result<Self, ConfigsError> {
        let plain = env_of(&[]);
        let with_fallback = env_of(&[
            ("FALLBACK_TARGET", "999"),
            (
                "FALLBACK_TARGET_ARN",
                "arn:aws:chime:us-east-1:123456789012:vc/local-pbx",
            ),
        ]);
        let sma = |env: &BTreeMap<String, String>| {
            let e = Env(|k: &str| env.get(k).cloned());
            sma_handler::config::SmaHandlerConfig::from_env(&e)
                .map(|c| c.call_machine)
                .map_err(|source| ConfigsError {
                    function: "sma-handler",
                    source,
                })
        };
        let e = Env(|k: &str| plain.get(k).cloned());
        let transfer = TransferConfig::from_env(&e).map_err(|source| ConfigsError {
            function: "connect-transfer",
            source,
        })?;
        let lookup = LookupConfig::from_env(&e).map_err(|source| ConfigsError {
            function: "connect-lookup",
            source,
        })?;
        Ok(Self {
            call_machine: sma(&plain)?,
            call_machine_fallback: sma(&with_fallback)?,
            policy: transfer.policy,
            lookup_mode: lookup.lookup_mode,
        })
    }
}

/// A `CallUpdater` that answers as the Chime SDK Voice API might: accepted, or any failure.
pub struct FakeUpdater {
    rng: Mutex<ChaosRng>,
}

impl FakeUpdater {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Mutex::new(ChaosRng::new(seed)),
        }
    }
}

const UPDATE_FAILURES: [UpdateFailure; 7] = [
    UpdateFailure::CallNotFound,
    UpdateFailure::Throttled,
    UpdateFailure::BadRequest,
    UpdateFailure::AccessDenied,
    UpdateFailure::Unavailable,
    UpdateFailure::TimedOut,
    UpdateFailure::Other,
];

impl CallUpdater for FakeUpdater {
    async fn update_call(
        &self,
        _sip_media_application_id: &str,
        _transaction_id: &str,
        _arguments: BTreeMap<String, String>,
    ) -> Result<(), UpdateCallError> {
        let failure = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            if rng.chance(0.6) {
                None
            } else {
                rng.pick(&UPDATE_FAILURES).copied()
            }
        };
        match failure {
            None => Ok(()),
            Some(kind) => Err(UpdateCallError { kind, source: None }),
        }
    }
}

fn pool() -> Vec<PairKey> {
    SMA_NUMBERS
        .iter()
        .flat_map(|s| {
            CONNECT_NUMBERS.iter().map(|c| PairKey {
                sma_number: (*s).to_owned(),
                connect_number: (*c).to_owned(),
            })
        })
        .collect()
}

fn random_pair(rng: &mut ChaosRng) -> PairKey {
    if rng.chance(0.1) {
        // A mis-seeded pair: numbers that are not E.164.
        return PairKey {
            sma_number: mutate::nasty_string(rng),
            connect_number: mutate::nasty_string(rng),
        };
    }
    let p = pool();
    p.get(rng.below(p.len() as u64) as usize)
        .cloned()
        .unwrap_or(PairKey {
            sma_number: SMA_NUMBERS[0].into(),
            connect_number: CONNECT_NUMBERS[0].into(),
        })
}

fn stored<T>(rng: &mut ChaosRng, ok: impl FnOnce(&mut ChaosRng) -> T) -> Result<T, StoreFailed> {
    if rng.chance(0.2) {
        Err(StoreFailed)
    } else {
        Ok(ok(rng))
    }
}

fn random_string_or_domain(rng: &mut ChaosRng) -> String {
    if rng.chance(0.5) {
        rng.pick(DOMAIN_STRINGS)
            .copied()
            .unwrap_or("100")
            .to_owned()
    } else {
        mutate::nasty_string(rng)
    }
}

/// Store answers a real store could give for `work`.
pub fn plausible_results(work: &StoreWork, rng: &mut ChaosRng) -> StoreResults {
    let release = |rng: &mut ChaosRng| {
        Some(stored(rng, |r| {
            if r.chance(0.5) {
                ReleaseOutcome::Released
            } else {
                ReleaseOutcome::NotHeld
            }
        }))
    };
    match work {
        StoreWork::Nothing => StoreResults::default(),
        StoreWork::Claim(request) => StoreResults {
            claim: Some(stored(rng, |r| {
                if r.chance(0.25) {
                    ClaimOutcome::Busy
                } else {
                    ClaimOutcome::Claimed(Claim {
                        pair: random_pair(r),
                        transaction_id: request.transaction_id.clone(),
                        lease_expires_at: 2_000_000_000,
                    })
                }
            })),
            ..StoreResults::default()
        },
        StoreWork::ReleaseOwned { .. } => StoreResults {
            release: release(rng),
            ..StoreResults::default()
        },
        StoreWork::ConnectLegEnded { .. } => StoreResults {
            claim: None,
            release: release(rng),
            transfer_intent: Some(stored(rng, |r| {
                r.chance(0.6).then(|| TransferIntent {
                    target_uri: random_string_or_domain(r),
                    target_arn: if r.chance(0.7) {
                        "arn:aws:chime:us-east-1:123456789012:vc/local-pbx".to_owned()
                    } else {
                        random_string_or_domain(r)
                    },
                    contact_id: r.chance(0.5).then(|| random_string_or_domain(r)),
                })
            })),
        },
    }
}

/// The pure path: parse, plan the store work, decide with random store results, build and
/// serialize the response exactly as the handler does.
pub fn sma_pure(
    event: &Value,
    config: &CallMachineConfig,
    rng: &mut ChaosRng,
    out: &mut CaseResult,
) {
    out.calls += 1;
    crate::note_input("sma.decide", event);
    let Ok(parsed) = SmaEvent::from_value(event.clone()) else {
        return;
    };
    let attrs = CallAttributes::from_map(&parsed.call_details.transaction_attributes);
    let work = call_machine::store_work(&parsed, &attrs, config);
    let results = plausible_results(&work, rng);
    let decision = call_machine::decide(&parsed, &attrs, config, &results);
    let attributes = decision
        .attributes
        .map(|a| TransactionAttributes::new(a.to_map()))
        .transpose();
    let response = match (Actions::new(decision.actions), attributes) {
        (Ok(actions), Ok(attributes)) => SmaResponse::new(actions, attributes),
        (actions, attributes) => {
            out.flag(
                "sma.decide",
                vec![Broken {
                    rule: "decision.limit".into(),
                    detail: format!(
                        "decide() broke a response limit (actions: {:?}, attributes: {:?}); the handler would hang up",
                        actions.err(),
                        attributes.err()
                    ),
                }],
                event,
            );
            return;
        }
    };
    match serde_json::to_value(&response) {
        Ok(v) => out.flag("sma.decide", check::sma_response(&v, event), event),
        Err(e) => out.flag(
            "sma.decide",
            vec![Broken {
                rule: "serialize".into(),
                detail: e.to_string(),
            }],
            event,
        ),
    }
}

/// Everything the end-to-end paths share for one case.
pub struct Handlers {
    pub store: Arc<MemoryStore>,
    pub sma: sma_handler::SmaDeps<Arc<MemoryStore>>,
    pub lookup: connect_lookup::LookupDeps<Arc<MemoryStore>>,
    pub transfer: connect_transfer::TransferDeps<Arc<MemoryStore>, FakeUpdater>,
}

impl Handlers {
    pub fn new(configs: &Configs, pairs: Vec<PairKey>, fallback: bool, seed: u64) -> Self {
        let store = Arc::new(MemoryStore::new(pairs, 7200));
        let call_machine = if fallback {
            configs.call_machine_fallback.clone()
        } else {
            configs.call_machine.clone()
        };
        let mode = if seed.is_multiple_of(2) {
            configs.lookup_mode
        } else {
            LookupMode::ReleaseOnLookup
        };
        Self {
            sma: sma_handler::SmaDeps {
                store: store.clone(),
                call_machine,
            },
            lookup: connect_lookup::LookupDeps::new(store.clone(), mode),
            transfer: connect_transfer::TransferDeps::new(
                store.clone(),
                FakeUpdater::new(seed),
                SMA_ID.to_owned(),
                configs.policy.clone(),
            ),
            store,
        }
    }

    /// The sma-handler's answer to `event`, checked; `None` when it refused the event.
    pub async fn sma(&self, event: &Value, out: &mut CaseResult) -> Option<Value> {
        out.calls += 1;
        crate::note_input("sma.handle", event);
        let response = sma_handler::handle(&self.sma, event.clone()).await.ok()?;
        match serde_json::to_value(&response) {
            Ok(v) => {
                out.flag("sma.handle", check::sma_response(&v, event), event);
                Some(v)
            }
            Err(e) => {
                out.flag(
                    "sma.handle",
                    vec![Broken {
                        rule: "serialize".into(),
                        detail: e.to_string(),
                    }],
                    event,
                );
                None
            }
        }
    }

    pub async fn lookup(&self, event: &Value, out: &mut CaseResult) -> Option<Value> {
        out.calls += 1;
        crate::note_input("connect.lookup", event);
        let response = connect_lookup::handle(&self.lookup, event.clone()).await;
        self.connect_answer(
            "connect.lookup",
            serde_json::to_value(&response),
            event,
            out,
        )
    }

    pub async fn transfer(&self, event: &Value, out: &mut CaseResult) -> Option<Value> {
        out.calls += 1;
        crate::note_input("connect.transfer", event);
        let response = connect_transfer::handle(&self.transfer, event.clone()).await;
        self.connect_answer(
            "connect.transfer",
            serde_json::to_value(&response),
            event,
            out,
        )
    }

    fn connect_answer(
        &self,
        target: &'static str,
        answer: Result<Value, serde_json::Error>,
        event: &Value,
        out: &mut CaseResult,
    ) -> Option<Value> {
        match answer {
            Ok(v) => {
                out.flag(target, check::connect_response(&v), event);
                Some(v)
            }
            Err(e) => {
                out.flag(
                    target,
                    vec![Broken {
                        rule: "serialize".into(),
                        detail: e.to_string(),
                    }],
                    event,
                );
                None
            }
        }
    }
}

/// A mutated copy of `base` (1..=`max` mutations, donors from the same corpus).
fn mutated(base: &Value, corpus: &Corpus, max: u64, rng: &mut ChaosRng) -> Value {
    let mut doc = base.clone();
    let donors: Vec<&Value> = (0..2).filter_map(|_| corpus.any(rng)).collect();
    mutate::mutate(&mut doc, &donors, max, rng);
    doc
}

/// One SMA event, mutated, through the pure path and the handler.
pub async fn sma_single(
    corpus: &Corpus,
    configs: &Configs,
    rng: &mut ChaosRng,
    out: &mut CaseResult,
) {
    let Some(base) = rng.pick(&corpus.sma).map(|(_, v)| v.clone()) else {
        return;
    };
    let event = mutated(&base, corpus, 6, rng);
    let fallback = rng.chance(0.3);
    let config = if fallback {
        &configs.call_machine_fallback
    } else {
        &configs.call_machine
    };
    sma_pure(&event, config, rng, out);
    let handlers = Handlers::new(configs, pool(), fallback, rng.next_u64());
    if rng.chance(0.3) {
        // Someone holds pairs already: some claims find the pool busy.
        for i in 0..rng.range(1, 9) {
            let _ = handlers
                .store
                .claim(&ClaimRequest {
                    transaction_id: format!("other-{i}"),
                    original_calling_number: "+12065550100".into(),
                    original_called_number: "+18005550100".into(),
                })
                .await;
        }
    }
    handlers.sma(&event, out).await;
}

/// The SMA events of one call in the order they happen.
const CALL_ORDER: &[&str] = &[
    "sma-new-inbound-call-basic",
    "sma-new-inbound-call-leg-a-mixed-case",
    "sma-ringing-basic",
    "sma-call-answered-basic",
    "sma-action-failed-call-and-bridge-connect-not-answered",
    "sma-action-successful-call-and-bridge-connect",
    "sma-digits-received-basic",
    "sma-hangup-leg-b-connect-before-update",
    "sma-call-update-requested-transfer",
    "sma-call-update-requested-duplicate",
    "sma-action-successful-hangup-transfer-pending",
    "sma-action-interrupted-basic",
    "sma-action-failed-call-and-bridge-target-busy",
    "sma-action-successful-call-and-bridge-target",
    "sma-invalid-lambda-response-top-level-error",
    "sma-hangup-leg-b-far-end-after-transfer",
    "sma-hangup-leg-a-caller",
];

/// Sets the event's transaction and the attributes the SMA keeps for the call.
fn as_part_of_call(event: &mut Value, txn: &str, attributes: &Option<Value>) {
    let Some(details) = event.get_mut("CallDetails").and_then(Value::as_object_mut) else {
        return;
    };
    details.insert("TransactionId".into(), json!(txn));
    details.insert("SipMediaApplicationId".into(), json!(SMA_ID));
    match attributes {
        Some(a) => {
            details.insert("TransactionAttributes".into(), a.clone());
        }
        None => {
            details.remove("TransactionAttributes");
        }
    }
}

/// The Connect number and caller id of a `CallAndBridge` to the PSTN in `response`.
fn connect_bridge(response: &Value) -> Option<(String, String)> {
    let actions = response.get("Actions")?.as_array()?;
    actions.iter().find_map(|a| {
        let p = a.get("Parameters")?;
        let ep = p.get("Endpoints")?.get(0)?;
        if ep.get("BridgeEndpointType")?.as_str()? != "PSTN" {
            return None;
        }
        Some((
            p.get("CallerIdNumber")?.as_str()?.to_owned(),
            ep.get("Uri")?.as_str()?.to_owned(),
        ))
    })
}

/// A whole call: its events in call order, some mutated, duplicated, dropped and re-ordered,
/// the attributes carried from answer to event; Connect's lookup and transfer run when the
/// handler bridges to a Connect number.
pub async fn sma_call(
    corpus: &Corpus,
    configs: &Configs,
    rng: &mut ChaosRng,
    out: &mut CaseResult,
) {
    let mut events: Vec<Value> = CALL_ORDER
        .iter()
        .filter(|_| rng.chance(0.6))
        .filter_map(|name| corpus.named(name).cloned())
        .collect();
    if let Some(first) = corpus.named(CALL_ORDER[0]).cloned()
        && rng.chance(0.8)
    {
        events.insert(0, first);
    }
    for e in events.iter_mut() {
        if rng.chance(0.3) {
            *e = mutated(e, corpus, 3, rng);
        }
    }
    mutate::shuffle_sequence(&mut events, rng);
    let handlers = Handlers::new(configs, pool(), rng.chance(0.3), rng.next_u64());
    let txn = format!("fuzz-{:016x}", rng.next_u64());
    let mut attributes: Option<Value> = None;
    let lookup_base = corpus.named("connect-lookup-found").cloned();
    let transfer_base = corpus.named("connect-transfer-transaction-id").cloned();
    for mut event in events {
        as_part_of_call(&mut event, &txn, &attributes);
        let Some(response) = handlers.sma(&event, out).await else {
            continue;
        };
        // The SMA keeps the attributes: absent keeps, anything else replaces.
        if let Some(a) = response.get("TransactionAttributes") {
            attributes = Some(a.clone());
        }
        let Some((caller_id, connect_number)) = connect_bridge(&response) else {
            continue;
        };
        // Connect answers: the flow looks the call up and asks for the transfer.
        if let Some(mut lookup) = lookup_base.clone() {
            let contact = format!("contact-{:08x}", rng.next_u64() as u32);
            lookup["Details"]["ContactData"]["ContactId"] = json!(contact);
            lookup["Details"]["ContactData"]["CustomerEndpoint"]["Address"] = json!(caller_id);
            lookup["Details"]["ContactData"]["SystemEndpoint"]["Address"] = json!(connect_number);
            lookup["Details"]["Parameters"] =
                json!({"CallingNumber": caller_id, "CalledNumber": connect_number});
            if rng.chance(0.2) {
                lookup = mutated(&lookup, corpus, 2, rng);
            }
            let found = handlers.lookup(&lookup, out).await;
            let transaction = found
                .as_ref()
                .and_then(|f| f.get("transaction_id"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let (Some(mut transfer), Some(t)) = (transfer_base.clone(), transaction) {
                transfer["Details"]["ContactData"]["ContactId"] = json!(contact);
                transfer["Details"]["Parameters"]["TransactionId"] = json!(t);
                if rng.chance(0.2) {
                    transfer = mutated(&transfer, corpus, 2, rng);
                }
                handlers.transfer(&transfer, out).await;
            }
        }
    }
}

/// The pair a Connect event names (customer, system endpoint), when both are strings.
fn pair_of(event: &Value) -> Option<PairKey> {
    let data = event.get("Details")?.get("ContactData")?;
    Some(PairKey {
        sma_number: data
            .get("CustomerEndpoint")?
            .get("Address")?
            .as_str()?
            .to_owned(),
        connect_number: data
            .get("SystemEndpoint")?
            .get("Address")?
            .as_str()?
            .to_owned(),
    })
}

/// One Connect event, mutated, through the lookup or the transfer function (the store holds a
/// live claim of the event's pair half of the time, so the success paths run too).
pub async fn connect_single(
    corpus: &Corpus,
    configs: &Configs,
    rng: &mut ChaosRng,
    out: &mut CaseResult,
) {
    let lookup = rng.chance(0.5);
    let list = if lookup {
        &corpus.connect_lookup
    } else {
        &corpus.connect_transfer
    };
    let Some(base) = rng.pick(list).map(|(_, v)| v.clone()) else {
        return;
    };
    let event = mutated(&base, corpus, 6, rng);
    let pairs = match pair_of(&event) {
        Some(p) if rng.chance(0.5) => vec![p],
        _ => pool(),
    };
    let handlers = Handlers::new(configs, pairs, false, rng.next_u64());
    if rng.chance(0.5) {
        let _ = handlers
            .store
            .claim(&ClaimRequest {
                transaction_id: event
                    .pointer("/Details/Parameters/TransactionId")
                    .and_then(Value::as_str)
                    .unwrap_or("5d5c8c2e-4f3a-4a55-9f0e-2b9d3c1a7e01")
                    .to_owned(),
                original_calling_number: "+12065550123".into(),
                original_called_number: "+18005550100".into(),
            })
            .await;
    }
    if lookup {
        handlers.lookup(&event, out).await;
        if rng.chance(0.3) {
            // The same contact again (a retry of the block).
            handlers.lookup(&event, out).await;
        }
    } else {
        handlers.transfer(&event, out).await;
    }
}
