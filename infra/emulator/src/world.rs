//! The simulation's shared state: the event queue on the virtual clock, the index of live calls
//! and contacts (what the fake Chime API and the Connect side need to see), the timeline, and
//! the findings (rule violations, wrong transfers, ...).
//!
//! Entity state (an SMA call, a Connect contact) is *not* here: the run loop owns it and hands
//! it to one future per entity per instant, so each entity handles its events in order while
//! different entities run concurrently. Everything here sits behind short `std` mutexes that are
//! never held across an `.await`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::chaos::ChimeChaos;
use crate::model::{
    CallEvent, ContactEvent, ContactRef, Entry, Finding, Function, LiveCall, Ms, PairHold,
    UpdateRecord, lock,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    Call(usize),
    Contact(usize),
}

#[derive(Debug)]
pub enum SimEvent {
    Call(CallEvent),
    Contact(ContactEvent),
}

#[derive(Debug)]
pub struct Scheduled {
    pub at: Ms,
    pub seq: u64,
    pub entity: Entity,
    pub event: SimEvent,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

pub struct World {
    /// Virtual milliseconds since the run began; shared with the in-process stores' clock
    /// ([`crate::backend::VirtualClock`]).
    pub now: Arc<AtomicU64>,
    seq: AtomicU64,
    order: AtomicU64,
    queue: Mutex<BinaryHeap<Reverse<Scheduled>>>,
    /// Transaction id → call.
    pub live: Mutex<HashMap<String, LiveCall>>,
    /// Contact id → contact entity, its call, and the event it is handling.
    pub contacts: Mutex<HashMap<String, ContactRef>>,
    pub next_contact: AtomicUsize,
    timeline: Mutex<Vec<Entry>>,
    findings: Mutex<Vec<Finding>>,
    latencies: Mutex<HashMap<Function, Vec<Duration>>>,
    /// SMA handler latency by invocation event type.
    event_latencies: Mutex<HashMap<String, Vec<Duration>>>,
    pub updates: Mutex<Vec<UpdateRecord>>,
    pub chime_faults: Mutex<VecDeque<String>>,
    /// Random Chime API faults (installed by `soak`; `None`: only the scripted ones).
    pub chime_chaos: Mutex<Option<ChimeChaos>>,
    /// Pairs calls must hold, for the double-claim check (see [`PairHold`]).
    holds: Mutex<Vec<PairHold>>,
    pub sma_id: String,
    /// Keep timeline lines (off in load mode: only findings and counters matter there).
    pub keep_timeline: bool,
}

impl World {
    pub fn new(sma_id: String, chime_faults: Vec<String>, keep_timeline: bool) -> Self {
        Self {
            now: Arc::default(),
            seq: AtomicU64::new(0),
            order: AtomicU64::new(0),
            queue: Mutex::new(BinaryHeap::new()),
            live: Mutex::default(),
            contacts: Mutex::default(),
            next_contact: AtomicUsize::new(0),
            timeline: Mutex::default(),
            findings: Mutex::default(),
            latencies: Mutex::default(),
            event_latencies: Mutex::default(),
            updates: Mutex::default(),
            chime_faults: Mutex::new(chime_faults.into()),
            chime_chaos: Mutex::new(None),
            holds: Mutex::default(),
            sma_id,
            keep_timeline,
        }
    }

    /// A world whose virtual time is `clock`'s, so the stores the backend built read the
    /// instant this loop is at.
    pub fn on_clock(mut self, clock: &crate::backend::VirtualClock) -> Self {
        self.now = clock.virtual_ms.clone();
        self
    }

    pub fn now(&self) -> Ms {
        self.now.load(Ordering::SeqCst)
    }

    pub fn schedule(&self, at: Ms, entity: Entity, event: SimEvent) {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        lock(&self.queue).push(Reverse(Scheduled {
            at,
            seq,
            entity,
            event,
        }));
    }

    pub fn call_event(&self, at: Ms, call: usize, event: CallEvent) {
        self.schedule(at, Entity::Call(call), SimEvent::Call(event));
    }

    pub fn contact_event(&self, at: Ms, contact: usize, event: ContactEvent) {
        self.schedule(at, Entity::Contact(contact), SimEvent::Contact(event));
    }

    /// All events due at the earliest pending instant, in scheduling order.
    pub fn pop_instant(&self) -> Option<(Ms, Vec<Scheduled>)> {
        let mut q = lock(&self.queue);
        let at = q.peek()?.0.at;
        let mut batch = Vec::new();
        while q.peek().is_some_and(|s| s.0.at == at) {
            if let Some(Reverse(s)) = q.pop() {
                batch.push(s);
            }
        }
        Some((at, batch))
    }

    pub fn log(&self, mut entry: Entry) {
        if !self.keep_timeline && !entry.problem {
            return;
        }
        entry.order.1 = self.order.fetch_add(1, Ordering::SeqCst);
        lock(&self.timeline).push(entry);
    }

    pub fn finding(
        &self,
        call: Option<usize>,
        t_ms: Ms,
        rule: impl Into<String>,
        detail: impl Into<String>,
    ) {
        lock(&self.findings).push(Finding {
            call,
            t_ms,
            rule: rule.into(),
            detail: detail.into(),
        });
    }

    pub fn latency(&self, f: Function, d: Duration) {
        lock(&self.latencies).entry(f).or_default().push(d);
    }

    pub fn sma_latency(&self, event_type: &str, d: Duration) {
        lock(&self.latencies)
            .entry(Function::Sma)
            .or_default()
            .push(d);
        lock(&self.event_latencies)
            .entry(event_type.to_owned())
            .or_default()
            .push(d);
    }

    pub fn event_latencies(&self) -> HashMap<String, Vec<Duration>> {
        lock(&self.event_latencies).clone()
    }

    pub fn take_timeline(&self) -> Vec<Entry> {
        let mut t = std::mem::take(&mut *lock(&self.timeline));
        t.sort_by_key(|e| (e.call, e.t_ms, e.order));
        t
    }

    pub fn findings(&self) -> Vec<Finding> {
        lock(&self.findings).clone()
    }

    /// `call` bridged to a Connect number with caller id `sma_number`: it holds that pair now.
    pub fn hold_open(&self, call: usize, sma_number: &str, connect_number: &str, at: Ms) {
        let mut holds = lock(&self.holds);
        for h in holds
            .iter_mut()
            .filter(|h| h.call == call && h.until_ms.is_none())
        {
            h.until_ms = Some(at);
        }
        holds.push(PairHold {
            call,
            sma_number: sma_number.to_owned(),
            connect_number: connect_number.to_owned(),
            from_ms: at,
            until_ms: None,
        });
    }

    /// From `at` on, `call` may have released its pair.
    pub fn hold_close(&self, call: usize, at: Ms) {
        for h in lock(&self.holds)
            .iter_mut()
            .filter(|h| h.call == call && h.until_ms.is_none())
        {
            h.until_ms = Some(at);
        }
    }

    pub fn holds(&self) -> Vec<PairHold> {
        lock(&self.holds).clone()
    }

    pub fn latencies(&self) -> HashMap<Function, Vec<Duration>> {
        lock(&self.latencies).clone()
    }
}
