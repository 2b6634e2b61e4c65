//! The claim strategy: how a claimer picks a pair, how many conditional writes it may spend,
//! when it reads again, when a held pair counts as abandoned (its lease ran out), and how a
//! re-delivered event gets the pair it already holds. Every store follows this one algorithm
//! ([`claim`]); a store only supplies the primitive reads and the one conditional write
//! ([`ClaimPrimitives`]) — DynamoDB in `takeback-dynamo`, a mutex-guarded map in [`crate::memory`].
//!
//! # The fast path: one round trip
//!
//! A store may keep a [`PoolView`]: the free pairs its last read saw, cached for the life of
//! the execution environment. A first delivery of a new call ([`Delivery::First`]) picks a pair
//! the view believes free (in the transaction's [`spread_order`], skipping pairs another claim
//! of this process is trying) and sends one single-item conditional write
//! ([`ClaimPrimitives::attempt_single`]). Winning is the whole claim. A write that finds the pair
//! already held *by this transaction* (a re-delivery that picked the same pair) answers with that
//! claim from its failure reason, without a second request. Losing drops the pair from the view;
//! one read of every claimable pair ([`ClaimPrimitives::claimable_pairs`]) refreshes it, and
//! one record-keeping write on a pair from that read follows ([`fallback_order`]); another
//! loss reads again. Before that first read the caller waits about three round trips of its lost
//! write ([`settle_wait_ms`]): a fast write loses mostly in a burst, and the wait lets the other
//! environments' writes land, so the read shows what is really left (in the benchmark's burst of
//! 100 callers on 40 pairs, most losers then hear busy after 2 requests instead of 4). `Busy`
//! comes from a read that shows nothing claimable, or from losing the only pair a read showed
//! (see [`ClaimRules::writes_after_fast_loss`]): losing a race never refuses a caller while the
//! pool still shows room. A pair caught inside another write ([`ClaimAttempt::PairContended`])
//! is not lost: that write may fail, and the claim reads again.
//!
//! Why the fast path needs no per-transaction record: the SMA re-delivers an event only after
//! waiting 5 s for an answer, and the handler takes the fast path only while the call is younger
//! than [`FIRST_DELIVERY_WINDOW_MS`], so a first delivery's single write has settled long before
//! any re-delivery of it can arrive. A possible re-delivery ([`Delivery::MaybeRepeated`]) skips
//! the fast path and first looks for a pair the transaction already holds
//! ([`ClaimPrimitives::held_by`]). The contention-aware path below always claims with the
//! record-keeping write ([`ClaimPrimitives::attempt`]): pair and record change together, so even
//! concurrent duplicates cannot both win there.
//!
//! # The algorithm (the contention-aware path)
//!
//! 1. Read the free pairs (up to a limit), and in parallel take a *ticket* from a counter.
//!    Claimers that pick independently collide like birthdays; consecutive tickets target
//!    consecutive pool *slots* (dealt by the seeder), so simultaneous claimers aim at distinct
//!    pairs whenever the read saw every free pair. A failing counter only loses the spread.
//! 2. Sort the candidates (slot, then key) so claimers with consecutive tickets index the same
//!    list, and walk them in a [`spread_order`] derived from the transaction id: a start and a
//!    stride coprime with the list's length, so two claimers that collide on their first pick
//!    walk apart instead of probing the same neighbours in lockstep. The ticket sets the start.
//! 3. Try one conditional write per candidate. A lost race re-reads after
//!    [`ClaimRules::requery_after_conflicts`] conflicts (1 measured fewest writes: a stale list
//!    mostly offers pairs that were taken meanwhile), never trying a lost pair again.
//! 4. When nothing is free, held pairs whose lease ran out are candidates ([`is_claimable`]).
//! 5. When nothing is claimable, or after [`ClaimRules::max_write_attempts`] writes, answer
//!    `Busy` — unless this transaction already holds a live pair (a re-delivered event on a
//!    full pool), which it gets back.
//! 6. Idempotency: the write that claims a pair also records the pair for the transaction and
//!    fails when the transaction already has one ([`ClaimAttempt::AlreadyHas`]); a live earlier
//!    claim is answered as is, an ended one (released, lease expired) is replaced. (The fast
//!    path's single write relies on the delivery rule above instead.)

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use takeback_common::StoreError;
use takeback_common::mask::mask_number;
use tracing::{debug, info, warn};

use crate::{Claim, ClaimOutcome, ClaimRequest, PairKey};

/// Tuning of the claim, the same for every store. The defaults suit a property with tens to
/// hundreds of pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRules {
    /// How long a claim holds its pair unless released. It is the safety net for a crashed or
    /// abandoned call, so it must outlast the longest time a caller can legitimately spend
    /// between bridge and Connect lookup (keep-claim mode: the whole time in Connect).
    pub lease_seconds: i64,
    /// Bound on conditional writes per claim; reaching it answers `Busy`.
    pub max_write_attempts: u32,
    /// Conflicts tolerated on one candidate list before reading a fresh one.
    pub requery_after_conflicts: u32,
    /// Take a ticket with the first read (see the module documentation). The price is one
    /// small extra write per claim on a single counter; without it the start comes from the
    /// transaction id alone (64 claimers on 64 pairs measured 1.55 writes per claim that way,
    /// 1.0 with tickets).
    pub use_ticket: bool,
    /// After a claim that no Connect lookup bound is released, its pair is not claimed by
    /// another transaction for this long. That claim's Connect contact may still be running
    /// its lookup (a flow's Lambda block waits up to 8 s, and the caller's hangup takes a
    /// moment to reach Connect): a late first lookup must find no live claim on the pair, never
    /// the next caller's. A pair whose claim was looked up is reusable at once; 0 disables
    /// the wait.
    pub reuse_quiet_seconds: i64,
    /// Try one write on a pair the cached [`PoolView`] believes free before anything else.
    pub fast_path: bool,
    /// A view older than this is not trusted for the fast path (the next claim reads afresh).
    pub view_max_age_ms: i64,
    /// Writes a first delivery may still spend, after its fast write lost, on pairs that reads
    /// of every claimable pair ([`ClaimPrimitives::claimable_pairs`]) showed free, before it
    /// answers `Busy` even though a read still shows claimable pairs. The default sets no limit
    /// of its own (only `max_write_attempts`): a caller hears busy when a read shows nothing
    /// claimable or when it loses the only pair a read showed, never because it lost races
    /// while other pairs were free. Lower it only to answer
    /// a burst's losers in fewer requests at the price of refusing some callers while the pool
    /// has room: with 1, the benchmark's 100 callers on 40 pairs got every busy answer within 3
    /// requests instead of 4, but callers were told busy on a pool with free pairs (a test with
    /// 64 callers on 64 pairs saw it, and 4 of 2,048 calls under throttling).
    /// The fallback's pick avoids the pairs other environments' fast paths aim at next, so
    /// a second loss is rare (see [`fallback_order`]).
    pub writes_after_fast_loss: u32,
}

impl Default for ClaimRules {
    fn default() -> Self {
        Self {
            lease_seconds: 2 * 60 * 60,
            max_write_attempts: 8,
            requery_after_conflicts: 1,
            use_ticket: true,
            reuse_quiet_seconds: 15,
            fast_path: true,
            view_max_age_ms: 5 * 60 * 1000,
            writes_after_fast_loss: u32::MAX,
        }
    }
}

/// How long after the call started (its leg's `StartTimeInMilliseconds`) a `NEW_INBOUND_CALL`
/// still counts as a first delivery. The SMA waits 5 s before it re-delivers; a single write
/// sent within this window settles (answered, or its attempt timed out) well before that.
pub const FIRST_DELIVERY_WINDOW_MS: i64 = 2_000;

/// Whether a claim may be for an event the SMA already delivered once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// The first delivery: no other claim of this transaction can be under way elsewhere.
    #[default]
    First,
    /// Possibly a re-delivery (old event, or its age unknown): look for the transaction's pair
    /// first and claim only with the record-keeping write.
    MaybeRepeated,
}

/// Whether a `NEW_INBOUND_CALL` whose caller leg started at `call_started_ms` (epoch ms) and is
/// handled at `now_ms` is certainly a first delivery (see [`FIRST_DELIVERY_WINDOW_MS`]). A start
/// in the future beyond the window, or no start at all, is treated as a possible re-delivery.
pub fn delivery_of(call_started_ms: Option<i64>, now_ms: i64) -> Delivery {
    match call_started_ms {
        Some(start) if now_ms.saturating_sub(start).abs() < FIRST_DELIVERY_WINDOW_MS => {
            Delivery::First
        }
        _ => Delivery::MaybeRepeated,
    }
}

/// The free pairs as this execution environment last saw them, and the claims it made: what
/// the fast path picks from. Kept behind a mutex by the store and shared by its clones.
#[derive(Debug, Default)]
pub struct PoolView {
    free: Vec<Candidate>,
    refreshed_at_ms: Option<i64>,
    /// Pairs a claim of this process is writing right now: concurrent claimers in one process
    /// pick distinct pairs.
    trying: HashSet<PairKey>,
    /// The last claims this environment won, so a re-delivery that reaches the same environment
    /// tries its own pair first.
    recent: VecDeque<(String, PairKey)>,
    /// Slot of the last pair this environment won.
    cursor: Option<u64>,
    /// Where a primed view's first pick starts before any claim set the cursor: the pair the
    /// primer's ticket chose ([`prime_view`]).
    placed: Option<Candidate>,
    /// Slots of the pairs reads have shown (pairs are never renumbered).
    slots: std::collections::HashMap<PairKey, Option<u64>>,
}

/// Claims remembered per environment for re-deliveries.
const RECENT_CLAIMS: usize = 256;

impl PoolView {
    /// Replaces the free list with a fresh read.
    pub fn refresh(&mut self, free: &FreePairs, now_ms: i64) {
        let mut candidates = free.candidates.clone();
        candidates.sort_unstable();
        for c in &candidates {
            self.slots.insert(c.pair.clone(), c.slot);
        }
        self.free = candidates;
        self.refreshed_at_ms = Some(now_ms);
    }

    /// The pair the fast path should try for `transaction_id`, reserved for it until
    /// [`won`](Self::won), [`lost`](Self::lost) or [`abandon`](Self::abandon): the pair this
    /// environment already claimed for the transaction; else the first pair believed free after
    /// the slot of this environment's last claim (its cursor), skipping pairs another claim here
    /// is trying. The cursor starts where the environment's first claim landed, which a ticket
    /// chose, so warm environments walk the pool from different places, as consecutive tickets
    /// do; without a cursor the transaction's [`spread_order`] decides. `None` when the view is
    /// empty, missing or older than `max_age_ms`.
    pub fn pick(&mut self, transaction_id: &str, now_ms: i64, max_age_ms: i64) -> Option<PairKey> {
        if let Some((_, pair)) = self.recent.iter().find(|(tx, _)| tx == transaction_id) {
            let pair = pair.clone();
            self.trying.insert(pair.clone());
            return Some(pair);
        }
        if !self.usable(now_ms, max_age_ms) || self.free.is_empty() {
            return None;
        }
        let len = self.free.len();
        let start = match self.cursor {
            Some(cursor) => self
                .free
                .iter()
                .position(|c| c.slot.is_some_and(|s| s > cursor))
                .unwrap_or(0),
            None => match &self.placed {
                Some(target) => self.free.partition_point(|c| c < target) % len,
                None => spread_order(mix(fnv1a(transaction_id.as_bytes()), 0), len)
                    .next()
                    .unwrap_or(0),
            },
        };
        let pick = (0..len)
            .map(|i| &self.free[(start + i) % len].pair)
            .find(|p| !self.trying.contains(*p))?
            .clone();
        self.trying.insert(pick.clone());
        Some(pick)
    }

    /// Whether the view was read at all, and recently enough to be trusted.
    pub fn usable(&self, now_ms: i64, max_age_ms: i64) -> bool {
        self.refreshed_at_ms
            .is_some_and(|at| now_ms.saturating_sub(at) <= max_age_ms)
    }

    /// Like [`pick`](Self::pick), starting at `target` (the pair a ticket chose in this
    /// claimer's own read, [`ticket_start`]) rather than at the cursor: claimers of one process
    /// that read at the same time each keep their own ticket's place.
    pub fn pick_at(&mut self, target: &Candidate) -> Option<PairKey> {
        let len = self.free.len();
        if len == 0 {
            return None;
        }
        let start = self.free.partition_point(|c| c < target) % len;
        let pick = (0..len)
            .map(|i| &self.free[(start + i) % len].pair)
            .find(|p| !self.trying.contains(*p))?
            .clone();
        self.trying.insert(pick.clone());
        Some(pick)
    }

    /// Starts this environment's walk at `target` (a ticket's choice), as a new environment's
    /// first claim would, until a claim sets the cursor.
    pub fn place_at(&mut self, target: Candidate) {
        self.placed = Some(target);
    }

    /// `pair` is now held by `transaction_id`.
    pub fn won(&mut self, transaction_id: &str, pair: &PairKey) {
        self.trying.remove(pair);
        if let Some(slot) = self
            .free
            .iter()
            .find(|c| &c.pair == pair)
            .and_then(|c| c.slot)
        {
            self.cursor = Some(slot);
        }
        self.free.retain(|c| &c.pair != pair);
        self.recent.retain(|(tx, _)| tx != transaction_id);
        if self.recent.len() >= RECENT_CLAIMS {
            self.recent.pop_front();
        }
        self.recent
            .push_back((transaction_id.to_owned(), pair.clone()));
    }

    /// `pair` was freed by this environment and may be claimed again at once (its claim had
    /// been looked up, so it does not rest): believed free again, if a read ever showed it.
    pub fn freed(&mut self, pair: &PairKey) {
        let Some(slot) = self.slots.get(pair).copied() else {
            return;
        };
        if !self.free.iter().any(|c| &c.pair == pair) {
            let candidate = Candidate {
                slot,
                pair: pair.clone(),
            };
            let at = self.free.partition_point(|c| c < &candidate);
            self.free.insert(at, candidate);
        }
    }

    /// `pair` turned out to be taken.
    pub fn lost(&mut self, pair: &PairKey) {
        self.trying.remove(pair);
        self.free.retain(|c| &c.pair != pair);
    }

    /// The write on `pair` ended without an answer: no longer reserved, belief unchanged.
    pub fn abandon(&mut self, pair: &PairKey) {
        self.trying.remove(pair);
    }

    /// Pairs the view believes free.
    pub fn believed_free(&self) -> usize {
        self.free.len()
    }
}

/// Locks a view; a poisoned lock only means another claimer panicked between two plain
/// field updates, so the view is still usable.
pub fn lock_view(view: &Mutex<PoolView>) -> MutexGuard<'_, PoolView> {
    view.lock().unwrap_or_else(|e| e.into_inner())
}

/// Epoch seconds at which a claim made at `now_s` stops holding its pair.
pub fn lease_expiry(now_s: i64, lease_seconds: i64) -> i64 {
    now_s.saturating_add(lease_seconds)
}

/// Whether a claim with this lease still holds its pair at `now_s`. A held pair without a lease
/// (left by older code) is not live.
pub fn is_live(lease_expires_at: Option<i64>, now_s: i64) -> bool {
    lease_expires_at.is_some_and(|lease| lease > now_s)
}

/// Whether a pair may be claimed at `now_s`: free, or held by a claim that is no longer live.
pub fn is_claimable(held: bool, lease_expires_at: Option<i64>, now_s: i64) -> bool {
    !held || !is_live(lease_expires_at, now_s)
}

/// Whether a free pair may be claimed by `transaction_id` at `now_s`: no claim that a lookup
/// never bound was released from it within the last `quiet_seconds` — unless by this very
/// transaction, whose own contact it would be (see [`ClaimRules::reuse_quiet_seconds`]).
pub fn is_reusable(
    released_unbound: Option<(i64, &str)>,
    transaction_id: &str,
    now_s: i64,
    quiet_seconds: i64,
) -> bool {
    released_unbound.is_none_or(|(released_at, by)| {
        by == transaction_id || released_at.saturating_add(quiet_seconds) <= now_s
    })
}

/// What the pool's counter said when a ticket was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub ticket: u64,
    /// Slots dealt to pairs so far.
    pub slots: u64,
}

/// A claimable pair as a read shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Candidate {
    /// Position of the pair in the pool, dealt by the seeder; `None` for pairs from before slots.
    pub slot: Option<u64>,
    pub pair: PairKey,
}

/// Free pairs from one read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreePairs {
    pub candidates: Vec<Candidate>,
    /// Every free pair (`false`: the read was cut at its limit).
    pub complete: bool,
}

/// Every pair a claim could win, from one read: free pairs (not resting after an unbound
/// release, unless this transaction released it) and held pairs whose lease ran out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimablePairs {
    pub free: Vec<Candidate>,
    pub expired: Vec<Candidate>,
}

/// Result of one conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimAttempt {
    Won(Claim),
    /// The pair is held by someone else; `claimed_at_ms`: when that holder claimed it, where
    /// the store's answer says (see [`contention_is_recent`]).
    PairTaken {
        claimed_at_ms: Option<i64>,
    },
    /// The pair was part of another write still in progress (DynamoDB's `TransactionConflict`):
    /// that write may yet fail, so the pair may still be free. Not a lost race: the claim reads
    /// again and may try the pair again.
    PairContended,
    /// This transaction already has a pair recorded.
    AlreadyHas(PairKey),
    /// This transaction's record was being written concurrently: read it again.
    RecordConflict,
}

/// The reads and the one conditional write a store offers the strategy.
pub trait ClaimPrimitives: Send + Sync {
    /// Epoch milliseconds.
    fn now_ms(&self) -> i64;

    /// Free pairs that `transaction_id` may claim at `now_s`: not resting after a release no
    /// lookup bound ([`is_reusable`]), so the read offers only pairs the write accepts. With
    /// `take_ticket`, also a ticket taken at the same time (`None` when the counter failed:
    /// that only loses the spread).
    fn free_pairs(
        &self,
        take_ticket: bool,
        transaction_id: &str,
        now_s: i64,
    ) -> impl Future<Output = Result<(Option<Ticket>, FreePairs), StoreError>> + Send;

    /// Held pairs whose claim is no longer live at `now_s` (see [`is_claimable`]).
    fn expired_pairs(
        &self,
        now_s: i64,
    ) -> impl Future<Output = Result<Vec<Candidate>, StoreError>> + Send;

    /// Claims `pair` for the request if [`is_claimable`], recording the pair for the
    /// transaction in the same atomic write. `replacing`: the pair an ended earlier claim of
    /// this transaction recorded (the record is then overwritten only if it still names it);
    /// `None`: the record must not name a pair yet.
    fn attempt(
        &self,
        pair: &PairKey,
        request: &ClaimRequest,
        now_ms: i64,
        lease_expires_at: i64,
        replacing: Option<&PairKey>,
    ) -> impl Future<Output = Result<ClaimAttempt, StoreError>> + Send;

    /// This transaction's claim of `pair`, if it is still live (strongly consistent).
    fn live_claim_of(
        &self,
        pair: &PairKey,
        transaction_id: &str,
        now_s: i64,
    ) -> impl Future<Output = Result<Option<Claim>, StoreError>> + Send;

    /// The pair recorded for this transaction (strongly consistent).
    fn recorded_pair(
        &self,
        transaction_id: &str,
    ) -> impl Future<Output = Result<Option<PairKey>, StoreError>> + Send;

    /// The fast path's single-item write: claims `pair` if [`is_claimable`] (and not resting),
    /// without touching any record. `Won` also when the pair is already held live by this very
    /// transaction (the write's failure reason says so; nothing is changed then), else
    /// `PairTaken`.
    fn attempt_single(
        &self,
        pair: &PairKey,
        request: &ClaimRequest,
        now_ms: i64,
        lease_expires_at: i64,
    ) -> impl Future<Output = Result<ClaimAttempt, StoreError>> + Send;

    /// A live claim this transaction holds on any pair, found by its holder rather than by a
    /// record (a first delivery's claim has none).
    fn held_by(
        &self,
        transaction_id: &str,
        now_s: i64,
    ) -> impl Future<Output = Result<Option<Claim>, StoreError>> + Send;

    /// Every pair `transaction_id` could claim at `now_s` (see [`ClaimablePairs`]), free and
    /// lease-expired together, filtered by the claim write's own condition so that a pair this
    /// read offers is one the write accepts unless someone took it meanwhile. One request for
    /// a pool that fits one read (the fallback after a lost fast write, see
    /// [`ClaimRules::writes_after_fast_loss`]).
    fn claimable_pairs(
        &self,
        transaction_id: &str,
        now_s: i64,
    ) -> impl Future<Output = Result<ClaimablePairs, StoreError>> + Send;

    /// The environment's cached view of the pool, if the store keeps one.
    fn pool_view(&self) -> Option<&Mutex<PoolView>> {
        None
    }

    /// Waits `ms` milliseconds before the next request (see [`settle_wait_ms`]). A store whose
    /// writes take effect the moment they are made (nothing is ever in flight) need not wait.
    fn settle(&self, ms: i64) -> impl Future<Output = ()> + Send {
        let _ = ms;
        std::future::ready(())
    }
}

/// The longest a claim waits after a lost fast write before it reads the pool (see
/// [`settle_wait_ms`]).
pub const MAX_SETTLE_WAIT_MS: i64 = 250;

/// How long a caller whose fast write lost waits before it reads the pool: three times as long as
/// that write took, within [`MAX_SETTLE_WAIT_MS`]. A fast write loses mostly in a burst, where other
/// environments' fast writes are in flight at the same moment; a read sent at once shows their
/// targets as free, the caller writes on one, loses again and must read again — two requests
/// more for a caller who is going to be told busy. Writes sent with its own are answered within
/// about its own round trip on a server that runs them in parallel; one that queues them, as
/// DynamoDB Local does, spreads their answers wider. In the benchmark's burst (100 callers on
/// 40 pairs, 10 runs each) a read after no wait made most busy answers cost 4 requests; after
/// two round trips 10 of 600 did, after three 3 of 600 (a longer bound than 250 ms changed
/// nothing but the latency).
pub fn settle_wait_ms(fast_write_ms: i64) -> i64 {
    fast_write_ms.saturating_mul(3).clamp(0, MAX_SETTLE_WAIT_MS)
}

/// A claim made this recently, relative to the lost write's answer, means claimers are racing
/// now (see [`contention_is_recent`]).
pub const RECENT_CLAIM_MS: i64 = 1_000;

/// Whether a lost fast write lost to a race under way (the holder claimed within
/// [`RECENT_CLAIM_MS`], or the store did not say when), which is worth the settle wait; or to
/// a claim made long before — this environment's view was stale, nothing is in flight, and the
/// caller reads at once.
pub fn contention_is_recent(claimed_at_ms: Option<i64>, now_ms: i64) -> bool {
    claimed_at_ms.is_none_or(|at| now_ms.saturating_sub(at) <= RECENT_CLAIM_MS)
}

/// What the fast path achieved.
enum FastPath {
    Claimed(Claim),
    /// Not tried (no usable view), or lost: the pair it lost, if any.
    FallBack(Option<PairKey>),
}

async fn fast_path<P: ClaimPrimitives>(
    store: &P,
    rules: &ClaimRules,
    request: &ClaimRequest,
) -> Result<FastPath, StoreError> {
    let Some(view) = store.pool_view() else {
        return Ok(FastPath::FallBack(None));
    };
    let now_ms = store.now_ms();
    let mut picked = lock_view(view).pick(&request.transaction_id, now_ms, rules.view_max_age_ms);
    if picked.is_none() && !lock_view(view).usable(now_ms, rules.view_max_age_ms) {
        // A new (or long idle) environment: read the pool first, with a ticket in parallel that
        // places this claim (and so this environment's walk) apart from its neighbours'.
        let (ticket, mut free) = store
            .free_pairs(
                rules.use_ticket,
                &request.transaction_id,
                now_ms.div_euclid(1000),
            )
            .await?;
        free.candidates.sort_unstable();
        let mut view = lock_view(view);
        view.refresh(&free, now_ms);
        picked = match ticket {
            Some(t) if !free.candidates.is_empty() => {
                let target = &free.candidates[ticket_start(t, &free.candidates, free.complete)];
                view.pick_at(target)
            }
            _ => view.pick(&request.transaction_id, now_ms, rules.view_max_age_ms),
        };
    }
    let Some(pair) = picked else {
        return Ok(FastPath::FallBack(None));
    };
    let lease_expires_at = lease_expiry(now_ms.div_euclid(1000), rules.lease_seconds);
    let sent_ms = store.now_ms();
    match store
        .attempt_single(&pair, request, now_ms, lease_expires_at)
        .await
    {
        Ok(ClaimAttempt::Won(claim)) => {
            lock_view(view).won(&request.transaction_id, &pair);
            info!(
                sma_number = %mask_number(&pair.sma_number),
                connect_number = %mask_number(&pair.connect_number),
                attempts = 1,
                "pair claimed (fast path)"
            );
            Ok(FastPath::Claimed(claim))
        }
        Ok(lost) => {
            lock_view(view).lost(&pair);
            let answered_ms = store.now_ms();
            let claimed_at_ms = match lost {
                ClaimAttempt::PairTaken { claimed_at_ms } => claimed_at_ms,
                _ => None,
            };
            if contention_is_recent(claimed_at_ms, answered_ms) {
                let wait_ms = settle_wait_ms(answered_ms - sent_ms);
                debug!(
                    wait_ms,
                    "fast path lost its pair to a claim just made; reading the pool after the burst settles"
                );
                store.settle(wait_ms).await;
            } else {
                debug!(
                    "fast path lost its pair to an older claim (a stale view); reading the pool"
                );
            }
            Ok(FastPath::FallBack(Some(pair)))
        }
        Err(e) => {
            lock_view(view).abandon(&pair);
            Err(e)
        }
    }
}

/// The name a primer's read goes by: no pair is ever released by it, so the read offers what
/// any new transaction may claim.
pub const PRIMER_ID: &str = "pool-view-primer";

/// Fills a store's missing or stale view of the pool ahead of the first claim, so that claim
/// is one write: at cold start the read (and its ticket, which places this environment's walk
/// as a new environment's first claim would) overlaps the runtime's own start instead of
/// waiting for the first caller. Returns whether the view is usable afterwards. A view that is
/// already usable is left alone (no request).
pub async fn prime_view<P: ClaimPrimitives>(
    store: &P,
    rules: &ClaimRules,
) -> Result<bool, StoreError> {
    let Some(view) = store.pool_view() else {
        return Ok(false);
    };
    if !rules.fast_path {
        return Ok(false);
    }
    let now_ms = store.now_ms();
    if lock_view(view).usable(now_ms, rules.view_max_age_ms) {
        return Ok(true);
    }
    let (ticket, mut free) = store
        .free_pairs(rules.use_ticket, PRIMER_ID, now_ms.div_euclid(1000))
        .await?;
    free.candidates.sort_unstable();
    let mut view = lock_view(view);
    view.refresh(&free, now_ms);
    if let Some(t) = ticket
        && let Some(target) = free
            .candidates
            .get(ticket_start(t, &free.candidates, free.complete))
    {
        view.place_at(target.clone());
    }
    Ok(true)
}

/// Claims a pair for a first delivery (see [`claim_for`]).
pub async fn claim<P: ClaimPrimitives>(
    store: &P,
    rules: &ClaimRules,
    request: &ClaimRequest,
) -> Result<ClaimOutcome, StoreError> {
    claim_for(store, rules, request, Delivery::First).await
}

/// Claims a pair for `request` following the strategy in the module documentation: the fast
/// path for a first delivery, the contention-aware path when it loses (or for a possible
/// re-delivery, after looking for the pair the transaction already holds).
pub async fn claim_for<P: ClaimPrimitives>(
    store: &P,
    rules: &ClaimRules,
    request: &ClaimRequest,
    delivery: Delivery,
) -> Result<ClaimOutcome, StoreError> {
    let seed = fnv1a(request.transaction_id.as_bytes());
    let mut attempts = 0u32;
    let mut replacing: Option<PairKey> = None;
    let mut lost: HashSet<PairKey> = HashSet::new();
    let mut round = 0u64;
    // After a fast path the ticket is not worth a request: that path's read or view already
    // placed this claim, and a loser should hear its answer in as few requests as possible.
    let mut take_ticket = rules.use_ticket;
    // Set when the fast write lost: the rest of the claim alternates reads of every claimable
    // pair and writes, within `writes_after_fast_loss` (see `ClaimRules::writes_after_fast_loss`).
    let mut after_fast_loss = false;
    let mut losses_after_fast_loss = 0u32;
    match delivery {
        // The fast write counts against the attempt bound like any other.
        Delivery::First if rules.fast_path && rules.max_write_attempts > 0 => {
            match fast_path(store, rules, request).await? {
                FastPath::Claimed(claim) => return Ok(ClaimOutcome::Claimed(claim)),
                FastPath::FallBack(lost_pair) => {
                    take_ticket = false;
                    if let Some(pair) = lost_pair {
                        attempts += 1;
                        lost.insert(pair);
                        after_fast_loss = true;
                    }
                }
            }
        }
        Delivery::First => {}
        Delivery::MaybeRepeated => {
            let now_s = store.now_ms().div_euclid(1000);
            if let Some(claim) = store.held_by(&request.transaction_id, now_s).await? {
                info!("claim re-delivered: the pair this transaction holds");
                return Ok(ClaimOutcome::Claimed(claim));
            }
        }
    }
    loop {
        let now_ms = store.now_ms();
        let now_s = now_ms.div_euclid(1000);
        let (ticket, mut candidates, complete) = if after_fast_loss {
            let ClaimablePairs { free, expired } = store
                .claimable_pairs(&request.transaction_id, now_s)
                .await?;
            if let Some(view) = store.pool_view() {
                let free = FreePairs {
                    candidates: free.clone(),
                    complete: true,
                };
                lock_view(view).refresh(&free, now_ms);
            }
            let mut candidates: Vec<Candidate> = free;
            candidates.retain(|c| !lost.contains(&c.pair));
            if candidates.is_empty() {
                candidates = expired;
                candidates.retain(|c| !lost.contains(&c.pair));
            }
            (None, candidates, false)
        } else {
            let (ticket, free) = store
                .free_pairs(round == 0 && take_ticket, &request.transaction_id, now_s)
                .await?;
            if let Some(view) = store.pool_view() {
                lock_view(view).refresh(&free, now_ms);
            }
            let FreePairs {
                mut candidates,
                mut complete,
            } = free;
            candidates.retain(|c| !lost.contains(&c.pair));
            if candidates.is_empty() {
                candidates = store.expired_pairs(now_s).await?;
                candidates.retain(|c| !lost.contains(&c.pair));
                complete = false;
            }
            (ticket, candidates, complete)
        };
        if candidates.is_empty() {
            // A re-delivered event on a full pool never reached a write (whose record check
            // would have said so): it may hold one of the busy pairs itself.
            // (A first delivery's only earlier claim would be this environment's, which the
            // fast path already tried.)
            if replacing.is_none()
                && !(delivery == Delivery::First && rules.fast_path)
                && let Some(claim) = store.held_by(&request.transaction_id, now_s).await?
            {
                info!(attempts, "claim re-delivered on a full pool: same pair");
                return Ok(ClaimOutcome::Claimed(claim));
            }
            debug!(attempts, "no claimable pair");
            return Ok(ClaimOutcome::Busy);
        }
        // Reads return candidates in no documented order: sort them (by slot, then key) so
        // that claimers with consecutive tickets index the same list.
        candidates.sort_unstable();
        let mut order = spread_order(mix(seed, round), candidates.len());
        if let Some(t) = ticket {
            order = order.with_start(ticket_start(t, &candidates, complete));
        }
        let order: Vec<usize> = if after_fast_loss {
            fallback_order(order, &candidates)
        } else {
            order.collect()
        };
        let lease_expires_at = lease_expiry(now_s, rules.lease_seconds);
        let mut conflicts = 0u32;
        for idx in order {
            if attempts >= rules.max_write_attempts {
                warn!(attempts, "claim attempt bound reached");
                return Ok(ClaimOutcome::Busy);
            }
            attempts += 1;
            let pair = &candidates[idx].pair;
            match store
                .attempt(pair, request, now_ms, lease_expires_at, replacing.as_ref())
                .await?
            {
                ClaimAttempt::Won(claim) => {
                    if let Some(view) = store.pool_view() {
                        lock_view(view).won(&request.transaction_id, pair);
                    }
                    info!(
                        sma_number = %mask_number(&pair.sma_number),
                        connect_number = %mask_number(&pair.connect_number),
                        attempts,
                        "pair claimed"
                    );
                    return Ok(ClaimOutcome::Claimed(claim));
                }
                ClaimAttempt::PairTaken { .. } => {
                    if let Some(view) = store.pool_view() {
                        lock_view(view).lost(pair);
                    }
                    lost.insert(pair.clone());
                    if after_fast_loss {
                        losses_after_fast_loss += 1;
                        // The read showed this pair as the only claimable one and someone else
                        // holds it now: the pool is as full as an empty read would show, and a
                        // second read would only cost the caller another request.
                        if candidates.len() == 1 {
                            debug!(attempts, "lost the only claimable pair: busy");
                            return Ok(ClaimOutcome::Busy);
                        }
                        if losses_after_fast_loss >= rules.writes_after_fast_loss.max(1) {
                            debug!(attempts, "lost again after a lost fast write: busy");
                            return Ok(ClaimOutcome::Busy);
                        }
                    }
                    conflicts += 1;
                    if conflicts >= rules.requery_after_conflicts.max(1) {
                        break;
                    }
                }
                ClaimAttempt::PairContended => {
                    // Neither lost nor won: read again, which shows whether the other write
                    // took the pair.
                    debug!(attempts, "pair in another write; reading again");
                    break;
                }
                ClaimAttempt::AlreadyHas(existing) => {
                    // A re-delivered event (or a concurrent duplicate that won): answer with the
                    // pair this transaction already holds.
                    if let Some(claim) = store
                        .live_claim_of(&existing, &request.transaction_id, now_s)
                        .await?
                    {
                        info!(attempts, "claim re-delivered: same pair");
                        return Ok(ClaimOutcome::Claimed(claim));
                    }
                    // That claim ended (released, or its lease ran out): this transaction may
                    // claim again, e.g. after a failed bridge. Replace the record.
                    replacing = Some(existing);
                    break;
                }
                ClaimAttempt::RecordConflict => {
                    replacing = store.recorded_pair(&request.transaction_id).await?;
                    if let Some(existing) = &replacing
                        && let Some(claim) = store
                            .live_claim_of(existing, &request.transaction_id, now_s)
                            .await?
                    {
                        return Ok(ClaimOutcome::Claimed(claim));
                    }
                    break;
                }
            }
        }
        if attempts >= rules.max_write_attempts {
            warn!(attempts, "claim attempt bound reached");
            return Ok(ClaimOutcome::Busy);
        }
        round += 1;
    }
}

/// The fallback's walk after a lost fast write: `order`, but with the pairs that directly
/// follow a taken slot last. Warm environments' fast paths try the first free pair after the
/// slot of their last claim, so a free pair right after a taken one is the likeliest next
/// target of another environment; one inside a run of free slots is not. Candidates without
/// slots keep their place.
pub fn fallback_order(order: impl Iterator<Item = usize>, candidates: &[Candidate]) -> Vec<usize> {
    let free_slots: HashSet<u64> = candidates.iter().filter_map(|c| c.slot).collect();
    let targeted = |i: &usize| {
        candidates[*i]
            .slot
            .is_some_and(|s| s > 0 && !free_slots.contains(&(s - 1)))
    };
    let (likely_targets, rest): (Vec<usize>, Vec<usize>) = order.partition(targeted);
    rest.into_iter().chain(likely_targets).collect()
}

/// The first candidate to try for a ticket. When the list is every free pair and they all carry
/// slots, take the first free slot at or after `ticket mod slots`: that choice does not depend on
/// *when* a claimer read the list, so consecutive tickets land on distinct pairs even when some
/// claimers read before and some after their neighbours' claims. Otherwise (a truncated list,
/// pairs from before slots existed) index the sorted list by the ticket.
pub fn ticket_start(t: Ticket, candidates: &[Candidate], complete: bool) -> usize {
    if candidates.is_empty() {
        return 0;
    }
    if complete && t.slots > 0 && candidates.iter().all(|c| c.slot.is_some()) {
        let target = t.ticket % t.slots;
        candidates
            .iter()
            .position(|c| c.slot.is_some_and(|s| s >= target))
            .unwrap_or(0)
    } else {
        (t.ticket % candidates.len() as u64) as usize
    }
}

/// FNV-1a: a stable, dependency-free hash of the transaction id (transaction ids are random
/// UUIDs, so this is only a way to turn them into a number).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64 finaliser of `seed + round`: a different, well-mixed order for every re-read.
pub fn mix(seed: u64, round: u64) -> u64 {
    let mut z = seed.wrapping_add(round.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A permutation of `0..len`: start at `h mod len` and step by a stride coprime with `len`
/// (also from `h`). Two claimers who collide on their first pick then walk apart instead of
/// probing the same neighbours in lockstep, as they would with a stride of 1.
pub fn spread_order(h: u64, len: usize) -> SpreadOrder {
    let len = len.max(1) as u64;
    let mut stride = 1 + (h >> 32) % len;
    while gcd(stride, len) != 1 {
        stride += 1;
    }
    SpreadOrder {
        start: h % len,
        stride,
        len,
        i: 0,
    }
}

/// The candidate indexes in the order a claimer tries them (see [`spread_order`]).
#[derive(Debug, Clone)]
pub struct SpreadOrder {
    start: u64,
    stride: u64,
    len: u64,
    i: u64,
}

impl SpreadOrder {
    /// The same walk, starting at `start` (a ticket's pick).
    pub fn with_start(mut self, start: usize) -> Self {
        self.start = start as u64 % self.len;
        self
    }
}

impl Iterator for SpreadOrder {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.i >= self.len {
            return None;
        }
        let idx = (self.start + self.i * self.stride) % self.len;
        self.i += 1;
        Some(idx as usize)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_order_is_a_permutation() {
        for len in 1..=64usize {
            for h in [0u64, 1, 7, 0xdead_beef_cafe_f00d, u64::MAX] {
                let mut seen: Vec<usize> = spread_order(h, len).collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..len).collect::<Vec<_>>(), "len {len} h {h}");
            }
        }
    }

    #[test]
    fn different_transactions_start_at_different_pairs() {
        let starts: HashSet<usize> = (0..64)
            .map(|i| {
                let h = mix(fnv1a(format!("tx-{i}").as_bytes()), 0);
                spread_order(h, 64).next().unwrap_or_default()
            })
            .collect();
        // 64 random picks of 64 slots hit ~40 distinct ones; all-the-same would be 1.
        assert!(starts.len() > 30, "only {} distinct starts", starts.len());
    }

    #[test]
    fn a_ticket_sets_the_start_and_keeps_a_permutation() {
        let order: Vec<usize> = spread_order(12345, 10).with_start(7).collect();
        assert_eq!(order[0], 7);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
    }

    fn cand(slot: Option<u64>, i: u32) -> Candidate {
        Candidate {
            slot,
            pair: PairKey {
                sma_number: format!("+1800555{i:04}"),
                connect_number: "+18884440000".into(),
            },
        }
    }

    #[test]
    fn ticket_targets_the_first_free_slot_at_or_after_it() {
        // Slots 0..8 dealt; 2, 3 and 7 are free.
        let free = [cand(Some(2), 2), cand(Some(3), 3), cand(Some(7), 7)];
        let t = |ticket| Ticket { ticket, slots: 8 };
        assert_eq!(ticket_start(t(1), &free, true), 0); // slot 2
        assert_eq!(ticket_start(t(3), &free, true), 1); // slot 3
        assert_eq!(ticket_start(t(5), &free, true), 2); // slot 7
        assert_eq!(ticket_start(t(16), &free, true), 0); // 16 mod 8 = 0 -> slot 2
        // Truncated list or slot-less pairs: index the list.
        assert_eq!(ticket_start(t(5), &free, false), 2);
        let legacy = [cand(None, 1), cand(None, 2)];
        assert_eq!(ticket_start(t(5), &legacy, true), 1);
    }

    #[test]
    fn the_fallback_tries_pairs_inside_a_free_run_before_pairs_right_after_a_taken_slot() {
        // Slots 2, 3, 4 and 7 free: 2 and 7 follow taken slots (1 and 6), another
        // environment's likeliest next picks; 3 and 4 do not.
        let free = [
            cand(Some(2), 2),
            cand(Some(3), 3),
            cand(Some(4), 4),
            cand(Some(7), 7),
        ];
        let order = fallback_order([3usize, 0, 2, 1].into_iter(), &free);
        assert_eq!(order, vec![2, 1, 3, 0]);
        let legacy = [cand(None, 1), cand(None, 2)];
        assert_eq!(fallback_order([1usize, 0].into_iter(), &legacy), vec![1, 0]);
    }

    #[test]
    fn rounds_reshuffle() {
        let h = fnv1a(b"tx");
        let a: Vec<usize> = spread_order(mix(h, 0), 16).collect();
        let b: Vec<usize> = spread_order(mix(h, 1), 16).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn a_pair_released_without_a_lookup_rests_before_another_transaction_claims_it() {
        assert!(is_reusable(None, "t2", 100, 15), "never released unbound");
        assert!(!is_reusable(Some((100, "t1")), "t2", 114, 15));
        assert!(is_reusable(Some((100, "t1")), "t2", 115, 15));
        assert!(
            is_reusable(Some((100, "t1")), "t1", 101, 15),
            "its own contact"
        );
        assert!(is_reusable(Some((100, "t1")), "t2", 100, 0), "disabled");
    }

    #[test]
    fn only_a_young_event_counts_as_a_first_delivery() {
        assert_eq!(delivery_of(Some(10_000), 10_500), Delivery::First);
        assert_eq!(
            delivery_of(Some(10_000), 9_000),
            Delivery::First,
            "small skew"
        );
        assert_eq!(delivery_of(Some(10_000), 15_000), Delivery::MaybeRepeated);
        assert_eq!(delivery_of(Some(10_000), 12_000), Delivery::MaybeRepeated);
        assert_eq!(delivery_of(None, 10_000), Delivery::MaybeRepeated);
    }

    fn free(slots: &[u64]) -> FreePairs {
        FreePairs {
            candidates: slots.iter().map(|s| cand(Some(*s), *s as u32)).collect(),
            complete: true,
        }
    }

    #[test]
    fn a_view_gives_concurrent_claimers_distinct_pairs_and_walks_on_from_its_last_claim() {
        let mut view = PoolView::default();
        assert_eq!(view.pick("t0", 0, 1000), None, "no view yet");
        view.refresh(&free(&[0, 1, 2, 3]), 0);
        let a = view.pick("t1", 10, 1000).unwrap();
        let b = view.pick("t2", 10, 1000).unwrap();
        assert_ne!(a, b, "a pair being tried is not offered twice");
        view.won("t1", &a);
        view.lost(&b);
        assert_eq!(view.believed_free(), 2);
        // The next pick follows the slot of this environment's last claim.
        let next = view.pick("t3", 20, 1000).unwrap();
        let slot_of = |p: &PairKey| p.sma_number[8..].parse::<u64>().unwrap();
        assert!(
            slot_of(&next) > slot_of(&a) || view.believed_free() == 0 || slot_of(&a) == 3,
            "{next:?} after {a:?}"
        );
        view.abandon(&next);
        // A repeat of t1's claim gets t1's pair back first.
        assert_eq!(view.pick("t1", 30, 1000), Some(a.clone()));
        // A pair this environment freed is believed free again.
        let before = view.believed_free();
        view.freed(&a);
        assert_eq!(view.believed_free(), before + 1);
        view.freed(&a);
        assert_eq!(view.believed_free(), before + 1, "once");
        // A view older than its age limit is not used.
        assert_eq!(view.pick("t4", 5000, 1000), None);
    }

    #[test]
    fn lease_rules() {
        assert_eq!(lease_expiry(100, 60), 160);
        assert!(is_live(Some(161), 160));
        assert!(
            !is_live(Some(160), 160),
            "a lease ends at its expiry second"
        );
        assert!(
            !is_live(None, 160),
            "a held pair without a lease is not live"
        );
        assert!(is_claimable(false, Some(999), 160), "a free pair");
        assert!(is_claimable(true, Some(160), 160), "an expired lease");
        assert!(is_claimable(true, None, 160), "a lease-less holder");
        assert!(!is_claimable(true, Some(161), 160), "a live claim");
    }
}
