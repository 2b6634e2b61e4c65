//! Plays a [`Run`]: the discrete-event loop on the virtual clock.
//!
//! The loop takes every event due at the earliest pending instant, groups them by entity (an
//! SMA call, a Connect contact) and handles each group in its own future, all groups of the
//! instant concurrently (`join_all`): one entity's events stay in order, different calls really
//! race each other on the store. Handlers run in real time while the virtual clock stands still;
//! when every future of the instant is done the clock jumps to the next pending instant. So a
//! 30 s ring costs no wall time, and handler latency is measured in real time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{LocalBoxFuture, join_all};
use serde::Serialize;

use crate::backend::{HeldPair, PairProbe};
use crate::connect::{ConnectContact, ContactRecord};
use crate::model::{CallEvent, Entry, Finding, Function, Ms, PairHold, Stamp, UpdateRecord, lock};
use crate::run::Run;
use crate::sma::{CallRecord, SmaCall};
use crate::world::{Entity, SimEvent};

/// A run stops after this much virtual time (a flow that loops forever, ...).
pub const VIRTUAL_LIMIT_MS: Ms = 6 * 60 * 60 * 1000;
/// Occupancy sample period (load mode).
const SAMPLE_EVERY_MS: Ms = 1000;

#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub calls: Vec<CallRecord>,
    pub contacts: Vec<ContactRecord>,
    #[serde(skip)]
    pub timeline: Vec<Entry>,
    pub findings: Vec<Finding>,
    #[serde(skip)]
    pub latencies: HashMap<Function, Vec<Duration>>,
    #[serde(skip)]
    pub event_latencies: HashMap<String, Vec<Duration>>,
    pub updates: Vec<UpdateRecord>,
    pub virtual_ms: Ms,
    #[serde(skip)]
    pub wall: Duration,
    /// Pairs still held when the run ended (`None`: not checked).
    pub held_at_end: Option<Vec<HeldPair>>,
    pub pair_check_note: Option<String>,
    pub peak_pairs_held: Option<usize>,
    /// Pairs the calls had to hold, and when (the double-claim check).
    #[serde(skip)]
    pub holds: Vec<PairHold>,
}

enum Slot {
    Call(usize, Option<Box<SmaCall>>),
    Contact(usize, Option<Box<ConnectContact>>),
}

pub async fn simulate(run: &Arc<Run>, probe: &PairProbe) -> RunResult {
    let started = Instant::now();
    let world = &run.world;
    let mut calls: Vec<Option<Box<SmaCall>>> = run
        .plans
        .iter()
        .enumerate()
        .map(|(i, p)| Some(Box::new(SmaCall::new(i, p))))
        .collect();
    for (i, p) in run.plans.iter().enumerate() {
        world.call_event(p.at_ms, i, CallEvent::Arrive);
    }
    let mut contacts: Vec<Option<Box<ConnectContact>>> = Vec::new();
    let mut last_at = 0;
    let mut next_sample = 0;
    let mut peak: Option<usize> = None;
    while let Some((at, batch)) = world.pop_instant() {
        if at > VIRTUAL_LIMIT_MS {
            world.finding(
                None,
                at,
                "emulator.time_limit",
                format!(
                    "still running after {} virtual hours",
                    VIRTUAL_LIMIT_MS / 3_600_000
                ),
            );
            break;
        }
        if run.sample_pairs && at >= next_sample {
            if let Some(n) = probe.held_count().await {
                peak = Some(peak.unwrap_or(0).max(n));
            }
            next_sample = (at / SAMPLE_EVERY_MS + 1) * SAMPLE_EVERY_MS;
        }
        last_at = at;
        world.now.store(at, Ordering::SeqCst);
        let mut groups: BTreeMap<Entity, Vec<(u64, SimEvent)>> = BTreeMap::new();
        for s in batch {
            groups.entry(s.entity).or_default().push((s.seq, s.event));
        }
        let mut futures: Vec<LocalBoxFuture<'_, Slot>> = Vec::with_capacity(groups.len());
        for (entity, events) in groups {
            match entity {
                Entity::Call(i) => {
                    let mut taken = calls.get_mut(i).and_then(Option::take);
                    futures.push(
                        async move {
                            if let Some(call) = taken.as_mut() {
                                for (seq, ev) in events {
                                    if let SimEvent::Call(ev) = ev {
                                        call.handle(run, Stamp { call: i, at, seq }, ev).await;
                                    }
                                }
                            }
                            Slot::Call(i, taken)
                        }
                        .boxed_local(),
                    );
                }
                Entity::Contact(i) => {
                    if contacts.len() <= i {
                        contacts.resize_with(i + 1, || None);
                    }
                    let mut slot = contacts[i].take();
                    futures.push(
                        async move {
                            for (seq, ev) in events {
                                if let SimEvent::Contact(ev) = ev {
                                    ConnectContact::handle(&mut slot, i, run, at, seq, ev).await;
                                }
                            }
                            Slot::Contact(i, slot)
                        }
                        .boxed_local(),
                    );
                }
            }
        }
        for slot in join_all(futures).await {
            match slot {
                Slot::Call(i, c) => {
                    if let Some(place) = calls.get_mut(i) {
                        *place = c;
                    }
                }
                Slot::Contact(i, c) => contacts[i] = c,
            }
        }
    }

    let mut records: Vec<CallRecord> = calls
        .iter_mut()
        .filter_map(|c| c.as_mut().map(|c| c.finish(run)))
        .collect();
    let contact_records: Vec<ContactRecord> = contacts
        .iter()
        .flatten()
        .map(|c| c.record.clone())
        .collect();
    for c in &contact_records {
        if let Some(r) = records.get_mut(c.call) {
            r.lookup_results.extend(c.lookups.iter().cloned());
            r.transfer_results.extend(c.transfers.iter().cloned());
        }
    }
    let (held_at_end, pair_check_note) = match probe.held().await {
        Ok(Some(h)) => (Some(h), None),
        Ok(None) => (
            None,
            match probe {
                PairProbe::None(note) => Some(note.clone()),
                _ => None,
            },
        ),
        Err(e) => (None, Some(format!("pair check failed: {e}"))),
    };
    let updates = lock(&world.updates).clone();
    RunResult {
        calls: records,
        contacts: contact_records,
        timeline: world.take_timeline(),
        findings: world.findings(),
        latencies: world.latencies(),
        event_latencies: world.event_latencies(),
        updates,
        virtual_ms: last_at,
        wall: started.elapsed(),
        held_at_end,
        pair_check_note,
        peak_pairs_held: peak,
        holds: world.holds(),
    }
}
