//! In-memory stores with the same semantics as the DynamoDB ones (ownership-checked release,
//! idempotent claims, leases): claims follow the same [`strategy`](crate::strategy) over a
//! mutex-guarded map, slots being the pairs' positions in key order. For unit tests and the
//! emulator's storage-free mode; the DynamoDB store is tested against DynamoDB Local, not
//! against this.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::strategy::{
    self, Candidate, ClaimAttempt, ClaimPrimitives, ClaimRules, ClaimablePairs, Delivery,
    FreePairs, PoolView, Ticket,
};
use crate::{
    CallStore, Claim, ClaimOutcome, ClaimRequest, LiveClaim, LookupMode, PairKey, PairStore,
    ReleaseOutcome, StoreError, TransferIntent,
};

#[derive(Debug, Clone)]
struct Holder {
    transaction_id: String,
    original_calling_number: String,
    original_called_number: String,
    call_timestamp_ms: i64,
    lease_expires_at: i64,
    contact_id: Option<String>,
}

/// Fault to inject into the next store call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFault {
    Throttle,
    Unavailable,
}

#[derive(Debug)]
struct InjectedError(&'static str);
impl std::fmt::Display for InjectedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}
impl std::error::Error for InjectedError {}

#[derive(Debug, Default)]
pub struct MemoryStore {
    pairs: Mutex<BTreeMap<PairKey, Option<Holder>>>,
    /// The last release-on-lookup per pair, so Connect's retry of that lookup (same contact)
    /// gets the same answer, as the DynamoDB store gives it. Cleared when the pair is claimed.
    released_lookups: Mutex<HashMap<PairKey, LiveClaim>>,
    intents: Mutex<HashMap<String, TransferIntent>>,
    /// The pair each transaction claimed last (the CALLS record of the DynamoDB store).
    records: Mutex<HashMap<String, PairKey>>,
    /// Pairs whose last claim was released before any lookup bound it: when, and by whom
    /// (see [`ClaimRules::reuse_quiet_seconds`]).
    released_unbound: Mutex<HashMap<PairKey, (i64, String)>>,
    /// Claim tickets dealt so far.
    tickets: AtomicU64,
    rules: ClaimRules,
    /// Seconds added to the clock, so tests can expire leases.
    clock_offset: AtomicU64,
    /// Where the time comes from when it is not the wall clock (see [`MemoryStore::with_clock`]).
    clock: Option<EpochClock>,
    fault: Mutex<Option<InjectedFault>>,
    requests: AtomicU64,
    /// The fast path's cached view of the pool (see [`strategy::PoolView`]).
    view: Mutex<PoolView>,
}

impl MemoryStore {
    /// The write both claim paths make, under the pairs lock (as DynamoDB's condition on one
    /// item): takes `pair` for `request` when it is free and not resting after a release no
    /// lookup bound, or when its lease has expired.
    fn take_if_claimable(
        &self,
        slot: &mut Option<Holder>,
        pair: &PairKey,
        request: &ClaimRequest,
        now_ms: i64,
        lease_expires_at: i64,
    ) -> bool {
        let now_s = now_ms.div_euclid(1000);
        let held = slot.as_ref().map(|h| h.lease_expires_at);
        if !strategy::is_claimable(held.is_some(), held, now_s) {
            return false;
        }
        let mut unbound = lock(&self.released_unbound);
        let resting = unbound.get(pair).map(|(at, by)| (*at, by.as_str()));
        if held.is_none()
            && !strategy::is_reusable(
                resting,
                &request.transaction_id,
                now_s,
                self.rules.reuse_quiet_seconds,
            )
        {
            return false;
        }
        unbound.remove(pair);
        *slot = Some(Holder {
            transaction_id: request.transaction_id.clone(),
            original_calling_number: request.original_calling_number.clone(),
            original_called_number: request.original_called_number.clone(),
            call_timestamp_ms: now_ms,
            lease_expires_at,
            contact_id: None,
        });
        true
    }

    /// [`take_if_claimable`](Self::take_if_claimable) on `pair` of the pool, or the
    /// `PairTaken` answer (with its holder's claim time) both claim writes give when it fails.
    fn take_pair(
        &self,
        pairs: &mut BTreeMap<PairKey, Option<Holder>>,
        pair: &PairKey,
        request: &ClaimRequest,
        now_ms: i64,
        lease_expires_at: i64,
    ) -> Result<(), ClaimAttempt> {
        let Some(slot) = pairs.get_mut(pair) else {
            return Err(ClaimAttempt::PairTaken {
                claimed_at_ms: None,
            });
        };
        let claimed_at_ms = slot.as_ref().map(|h| h.call_timestamp_ms);
        if self.take_if_claimable(slot, pair, request, now_ms, lease_expires_at) {
            Ok(())
        } else {
            Err(ClaimAttempt::PairTaken { claimed_at_ms })
        }
    }

    pub fn new(pairs: impl IntoIterator<Item = PairKey>, lease_seconds: i64) -> Self {
        Self {
            pairs: Mutex::new(pairs.into_iter().map(|p| (p, None)).collect()),
            rules: ClaimRules {
                lease_seconds,
                ..ClaimRules::default()
            },
            ..Self::default()
        }
    }

    /// Takes the time from `clock` (epoch milliseconds) instead of the wall clock: an emulator
    /// that compresses time gives the store its virtual clock, so leases and the rest after an
    /// unbound release last as long as they would in a real call, not a twentieth of it.
    pub fn with_clock(mut self, clock: EpochClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Makes the next store call fail once with `fault`.
    pub fn inject_fault(&self, fault: InjectedFault) {
        *lock(&self.fault) = Some(fault);
    }

    pub fn advance_clock(&self, seconds: u64) {
        self.clock_offset.fetch_add(seconds, Ordering::SeqCst);
    }

    /// Pairs currently held by a live claim.
    pub fn held_pairs(&self) -> Vec<(PairKey, String)> {
        let now = self.now();
        lock(&self.pairs)
            .iter()
            .filter_map(|(k, h)| {
                h.as_ref()
                    .filter(|h| strategy::is_live(Some(h.lease_expires_at), now))
                    .map(|h| (k.clone(), h.transaction_id.clone()))
            })
            .collect()
    }

    /// Store calls made so far (for per-call request counts in the emulator).
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    fn now(&self) -> i64 {
        let base = match &self.clock {
            Some(clock) => (clock.0)().div_euclid(1000),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default(),
        };
        base + self.clock_offset.load(Ordering::SeqCst) as i64
    }

    fn enter(&self) -> Result<(), StoreError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        match lock(&self.fault).take() {
            None => Ok(()),
            Some(InjectedFault::Throttle) => Err(StoreError::Throttled(Box::new(InjectedError(
                "injected throttling",
            )))),
            Some(InjectedFault::Unavailable) => Err(StoreError::Unavailable(Box::new(
                InjectedError("injected unavailability"),
            ))),
        }
    }
}

/// A source of epoch milliseconds other than the wall clock.
#[derive(Clone)]
pub struct EpochClock(pub Arc<dyn Fn() -> i64 + Send + Sync>);

impl std::fmt::Debug for EpochClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("EpochClock").field(&(self.0)()).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another test thread panicked; the data is still consistent
    // because every critical section here is a single map operation.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClaimPrimitives for MemoryStore {
    fn now_ms(&self) -> i64 {
        self.now().saturating_mul(1000)
    }

    async fn free_pairs(
        &self,
        take_ticket: bool,
        transaction_id: &str,
        now_s: i64,
    ) -> Result<(Option<Ticket>, FreePairs), StoreError> {
        let pairs = lock(&self.pairs);
        let unbound = lock(&self.released_unbound);
        let ticket = take_ticket.then(|| Ticket {
            ticket: self.tickets.fetch_add(1, Ordering::SeqCst),
            slots: pairs.len() as u64,
        });
        let candidates = pairs
            .iter()
            .enumerate()
            .filter(|(_, (pair, holder))| {
                holder.is_none()
                    && strategy::is_reusable(
                        unbound.get(pair).map(|(at, by)| (*at, by.as_str())),
                        transaction_id,
                        now_s,
                        self.rules.reuse_quiet_seconds,
                    )
            })
            .map(|(slot, (pair, _))| Candidate {
                slot: Some(slot as u64),
                pair: pair.clone(),
            })
            .collect();
        Ok((
            ticket,
            FreePairs {
                candidates,
                complete: true,
            },
        ))
    }

    async fn expired_pairs(&self, now_s: i64) -> Result<Vec<Candidate>, StoreError> {
        Ok(lock(&self.pairs)
            .iter()
            .enumerate()
            .filter(|(_, (_, holder))| {
                holder
                    .as_ref()
                    .is_some_and(|h| strategy::is_claimable(true, Some(h.lease_expires_at), now_s))
            })
            .map(|(slot, (pair, _))| Candidate {
                slot: Some(slot as u64),
                pair: pair.clone(),
            })
            .collect())
    }

    async fn claimable_pairs(
        &self,
        transaction_id: &str,
        now_s: i64,
    ) -> Result<ClaimablePairs, StoreError> {
        let pairs = lock(&self.pairs);
        let unbound = lock(&self.released_unbound);
        let mut claimable = ClaimablePairs::default();
        for (slot, (pair, holder)) in pairs.iter().enumerate() {
            let candidate = Candidate {
                slot: Some(slot as u64),
                pair: pair.clone(),
            };
            match holder {
                None => {
                    let resting = unbound.get(pair).map(|(at, by)| (*at, by.as_str()));
                    if strategy::is_reusable(
                        resting,
                        transaction_id,
                        now_s,
                        self.rules.reuse_quiet_seconds,
                    ) {
                        claimable.free.push(candidate);
                    }
                }
                Some(h) if strategy::is_claimable(true, Some(h.lease_expires_at), now_s) => {
                    claimable.expired.push(candidate);
                }
                Some(_) => {}
            }
        }
        Ok(claimable)
    }

    async fn attempt(
        &self,
        pair: &PairKey,
        request: &ClaimRequest,
        now_ms: i64,
        lease_expires_at: i64,
        replacing: Option<&PairKey>,
    ) -> Result<ClaimAttempt, StoreError> {
        let mut pairs = lock(&self.pairs);
        let mut records = lock(&self.records);
        let recorded = records.get(&request.transaction_id);
        match (recorded, replacing) {
            (Some(existing), None) => return Ok(ClaimAttempt::AlreadyHas(existing.clone())),
            (recorded, Some(old)) if recorded != Some(old) => {
                return Ok(ClaimAttempt::RecordConflict);
            }
            _ => {}
        }
        if let Err(taken) = self.take_pair(&mut pairs, pair, request, now_ms, lease_expires_at) {
            return Ok(taken);
        }
        records.insert(request.transaction_id.clone(), pair.clone());
        Ok(ClaimAttempt::Won(Claim {
            pair: pair.clone(),
            transaction_id: request.transaction_id.clone(),
            lease_expires_at,
        }))
    }

    async fn live_claim_of(
        &self,
        pair: &PairKey,
        transaction_id: &str,
        now_s: i64,
    ) -> Result<Option<Claim>, StoreError> {
        Ok(lock(&self.pairs)
            .get(pair)
            .and_then(Option::as_ref)
            .filter(|h| {
                h.transaction_id == transaction_id
                    && strategy::is_live(Some(h.lease_expires_at), now_s)
            })
            .map(|h| Claim {
                pair: pair.clone(),
                transaction_id: h.transaction_id.clone(),
                lease_expires_at: h.lease_expires_at,
            }))
    }

    async fn recorded_pair(&self, transaction_id: &str) -> Result<Option<PairKey>, StoreError> {
        Ok(lock(&self.records).get(transaction_id).cloned())
    }

    /// Checks and writes under the map's lock, as DynamoDB's condition does on one item; a
    /// transaction that already holds another live pair is told so (`AlreadyHas`), which this
    /// store can afford to check on every write.
    async fn attempt_single(
        &self,
        pair: &PairKey,
        request: &ClaimRequest,
        now_ms: i64,
        lease_expires_at: i64,
    ) -> Result<ClaimAttempt, StoreError> {
        let now_s = now_ms.div_euclid(1000);
        let mut pairs = lock(&self.pairs);
        let own = pairs.iter().find(|(_, h)| {
            h.as_ref().is_some_and(|h| {
                h.transaction_id == request.transaction_id
                    && strategy::is_live(Some(h.lease_expires_at), now_s)
            })
        });
        if let Some((held, holder)) = own {
            if held == pair {
                return Ok(ClaimAttempt::Won(Claim {
                    pair: pair.clone(),
                    transaction_id: request.transaction_id.clone(),
                    lease_expires_at: holder.as_ref().map_or(0, |h| h.lease_expires_at),
                }));
            }
            return Ok(ClaimAttempt::AlreadyHas(held.clone()));
        }
        if let Err(taken) = self.take_pair(&mut pairs, pair, request, now_ms, lease_expires_at) {
            return Ok(taken);
        }
        lock(&self.records).insert(request.transaction_id.clone(), pair.clone());
        Ok(ClaimAttempt::Won(Claim {
            pair: pair.clone(),
            transaction_id: request.transaction_id.clone(),
            lease_expires_at,
        }))
    }

    async fn held_by(&self, transaction_id: &str, now_s: i64) -> Result<Option<Claim>, StoreError> {
        Ok(lock(&self.pairs).iter().find_map(|(pair, h)| {
            h.as_ref()
                .filter(|h| {
                    h.transaction_id == transaction_id
                        && strategy::is_live(Some(h.lease_expires_at), now_s)
                })
                .map(|h| Claim {
                    pair: pair.clone(),
                    transaction_id: h.transaction_id.clone(),
                    lease_expires_at: h.lease_expires_at,
                })
        }))
    }

    fn pool_view(&self) -> Option<&Mutex<PoolView>> {
        Some(&self.view)
    }
}

impl PairStore for MemoryStore {
    /// The shared claim strategy over this store's primitives; one store call for the fault
    /// injection and the request count, as one `claim` is one call here.
    async fn claim(&self, request: &ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        self.enter()?;
        strategy::claim(self, &self.rules, request).await
    }

    async fn claim_new_call(
        &self,
        request: &ClaimRequest,
        delivery: Delivery,
    ) -> Result<ClaimOutcome, StoreError> {
        self.enter()?;
        strategy::claim_for(self, &self.rules, request, delivery).await
    }

    async fn release(
        &self,
        pair: &PairKey,
        transaction_id: &str,
    ) -> Result<ReleaseOutcome, StoreError> {
        self.enter()?;
        let mut pairs = lock(&self.pairs);
        match pairs.get_mut(pair) {
            Some(slot)
                if slot
                    .as_ref()
                    .is_some_and(|h| h.transaction_id == transaction_id) =>
            {
                if slot.as_ref().is_some_and(|h| h.contact_id.is_none()) {
                    lock(&self.released_unbound)
                        .insert(pair.clone(), (self.now(), transaction_id.to_owned()));
                }
                *slot = None;
                Ok(ReleaseOutcome::Released)
            }
            _ => Ok(ReleaseOutcome::NotHeld),
        }
    }

    async fn claimed_pair(&self, transaction_id: &str) -> Result<Option<PairKey>, StoreError> {
        self.enter()?;
        Ok(lock(&self.records).get(transaction_id).cloned())
    }

    async fn lookup(
        &self,
        pair: &PairKey,
        contact_id: &str,
        mode: LookupMode,
    ) -> Result<Option<LiveClaim>, StoreError> {
        self.enter()?;
        let now = self.now();
        let mut pairs = lock(&self.pairs);
        let Some(slot) = pairs.get_mut(pair) else {
            return Ok(None);
        };
        let live = slot
            .as_ref()
            .is_some_and(|h| strategy::is_live(Some(h.lease_expires_at), now));
        // A contact that already freed this pair by its lookup gets that same answer again
        // while the pair is free, and nothing once another call holds it: never the next
        // caller's transaction.
        if let Some(earlier) = lock(&self.released_lookups)
            .get(pair)
            .filter(|c| c.contact_id.as_deref() == Some(contact_id))
        {
            return Ok((!live).then(|| earlier.clone()));
        }
        let Some(holder) = slot
            .as_mut()
            .filter(|h| strategy::is_live(Some(h.lease_expires_at), now))
        else {
            return Ok(None);
        };
        holder.contact_id = Some(contact_id.to_owned());
        let live = LiveClaim {
            pair: pair.clone(),
            transaction_id: holder.transaction_id.clone(),
            original_calling_number: holder.original_calling_number.clone(),
            original_called_number: holder.original_called_number.clone(),
            call_timestamp_ms: holder.call_timestamp_ms,
            contact_id: holder.contact_id.clone(),
            released: mode == LookupMode::ReleaseOnLookup,
        };
        if mode == LookupMode::ReleaseOnLookup {
            *slot = None;
            lock(&self.released_lookups).insert(pair.clone(), live.clone());
        }
        Ok(Some(live))
    }
}

impl CallStore for MemoryStore {
    async fn record_transfer_intent(
        &self,
        transaction_id: &str,
        intent: &TransferIntent,
    ) -> Result<(), StoreError> {
        self.enter()?;
        lock(&self.intents).insert(transaction_id.to_owned(), intent.clone());
        Ok(())
    }

    async fn transfer_intent(
        &self,
        transaction_id: &str,
    ) -> Result<Option<TransferIntent>, StoreError> {
        self.enter()?;
        Ok(lock(&self.intents).get(transaction_id).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> PairKey {
        PairKey {
            sma_number: "+18005557777".into(),
            connect_number: "+18005551111".into(),
        }
    }

    fn request(txn: &str) -> ClaimRequest {
        ClaimRequest {
            transaction_id: txn.into(),
            original_calling_number: "+12065550123".into(),
            original_called_number: "+18005550100".into(),
        }
    }

    #[tokio::test]
    async fn release_on_lookup_answers_the_same_contacts_retry_but_nobody_else() {
        let store = MemoryStore::new([pair()], 600);
        store.claim(&request("t1")).await.unwrap();
        let first = store
            .lookup(&pair(), "contact-1", LookupMode::ReleaseOnLookup)
            .await
            .unwrap();
        assert_eq!(
            first.as_ref().map(|c| c.transaction_id.as_str()),
            Some("t1")
        );
        assert!(store.held_pairs().is_empty());
        let retry = store
            .lookup(&pair(), "contact-1", LookupMode::ReleaseOnLookup)
            .await
            .unwrap();
        assert_eq!(retry, first);
        assert_eq!(
            store
                .lookup(&pair(), "contact-2", LookupMode::KeepClaim)
                .await
                .unwrap(),
            None
        );
        // Once the next caller holds the pair, the first contact never gets their call.
        store.claim(&request("t2")).await.unwrap();
        assert_eq!(
            store
                .lookup(&pair(), "contact-1", LookupMode::KeepClaim)
                .await
                .unwrap(),
            None
        );
        let next = store
            .lookup(&pair(), "contact-2", LookupMode::KeepClaim)
            .await
            .unwrap();
        assert_eq!(next.map(|c| c.transaction_id), Some("t2".to_owned()));
    }

    #[tokio::test]
    async fn a_late_first_lookup_of_a_dying_contact_never_gets_the_next_callers_claim() {
        for mode in [LookupMode::KeepClaim, LookupMode::ReleaseOnLookup] {
            let store = MemoryStore::new([pair()], 600);
            // Caller 1 is bridged but hangs up before its contact's lookup ran.
            store.claim(&request("t1")).await.unwrap();
            store.release(&pair(), "t1").await.unwrap();
            // Caller 2 arrives at once: the pair is resting.
            assert_eq!(
                store.claim(&request("t2")).await.unwrap(),
                ClaimOutcome::Busy,
                "{mode:?}"
            );
            // The dying contact's lookup finds nothing (and frees nothing).
            assert_eq!(
                store.lookup(&pair(), "contact-1", mode).await.unwrap(),
                None
            );
            // Once no lookup of that contact can still be on its way, the pair is reused.
            store.advance_clock(15);
            store.claim(&request("t2")).await.unwrap();
            let found = store.lookup(&pair(), "contact-2", mode).await.unwrap();
            assert_eq!(found.map(|c| c.transaction_id), Some("t2".to_owned()));
        }
    }

    #[tokio::test]
    async fn a_store_on_a_given_clock_keeps_time_by_it_not_by_the_wall() {
        // An emulator's virtual clock, far from the wall clock and moved by hand.
        let virtual_ms = Arc::new(AtomicU64::new(1_000_000_000));
        let read = virtual_ms.clone();
        let store = MemoryStore::new([pair()], 60).with_clock(EpochClock(Arc::new(move || {
            read.load(Ordering::SeqCst) as i64
        })));
        assert_eq!(store.now_ms(), 1_000_000_000);
        let ClaimOutcome::Claimed(claim) = store.claim(&request("t1")).await.unwrap() else {
            panic!("expected a claim");
        };
        assert_eq!(
            claim.lease_expires_at,
            1_000_000 + 60,
            "the lease counts from the clock"
        );
        store.release(&pair(), "t1").await.unwrap();
        // Unbound release: the pair rests 15 s of this clock, however little wall time passes.
        virtual_ms.fetch_add(14_000, Ordering::SeqCst);
        assert_eq!(
            store.claim(&request("t2")).await.unwrap(),
            ClaimOutcome::Busy
        );
        virtual_ms.fetch_add(1_000, Ordering::SeqCst);
        assert!(matches!(
            store.claim(&request("t2")).await.unwrap(),
            ClaimOutcome::Claimed(_)
        ));
    }

    #[tokio::test]
    async fn a_pair_whose_claim_was_looked_up_is_reused_at_once() {
        let store = MemoryStore::new([pair()], 600);
        store.claim(&request("t1")).await.unwrap();
        store
            .lookup(&pair(), "contact-1", LookupMode::KeepClaim)
            .await
            .unwrap();
        store.release(&pair(), "t1").await.unwrap();
        assert!(matches!(
            store.claim(&request("t2")).await.unwrap(),
            ClaimOutcome::Claimed(_)
        ));
    }

    #[tokio::test]
    async fn release_by_a_stale_owner_changes_nothing() {
        let store = MemoryStore::new([pair()], 600);
        store.claim(&request("t1")).await.unwrap();
        assert_eq!(
            store.release(&pair(), "t0").await.unwrap(),
            ReleaseOutcome::NotHeld
        );
        assert_eq!(store.held_pairs(), vec![(pair(), "t1".to_owned())]);
        assert_eq!(
            store.release(&pair(), "t1").await.unwrap(),
            ReleaseOutcome::Released
        );
    }
}
