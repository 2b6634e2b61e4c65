//! The claim strategy, tested once, through the in-memory store's primitives (the DynamoDB
//! store runs the same `strategy::claim`; its tests against DynamoDB Local check the store's
//! own conditions and records).

use std::collections::HashSet;
use std::sync::Arc;

use takeback_pairs::memory::MemoryStore;
use takeback_pairs::strategy::{self, ClaimPrimitives, ClaimRules};
use takeback_pairs::{ClaimOutcome, ClaimRequest, PairKey, PairStore, ReleaseOutcome};

fn pairs(n: usize) -> Vec<PairKey> {
    (0..n)
        .map(|i| PairKey {
            sma_number: format!("+1800555{i:04}"),
            connect_number: "+18884440000".into(),
        })
        .collect()
}

fn request(txn: &str) -> ClaimRequest {
    ClaimRequest {
        transaction_id: txn.into(),
        original_calling_number: "+12065550123".into(),
        original_called_number: "+18005550100".into(),
    }
}

fn claimed(outcome: ClaimOutcome) -> PairKey {
    match outcome {
        ClaimOutcome::Claimed(claim) => claim.pair,
        ClaimOutcome::Busy => panic!("busy"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_claimers_get_distinct_pairs_and_the_rest_hear_busy() {
    let store = Arc::new(MemoryStore::new(pairs(40), 600));
    let calls = (0..100).map(|i| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.claim(&request(&format!("t{i}"))).await })
    });
    let mut won = HashSet::new();
    let mut busy = 0;
    for call in calls {
        match call.await.unwrap().unwrap() {
            ClaimOutcome::Claimed(claim) => assert!(won.insert(claim.pair), "double claim"),
            ClaimOutcome::Busy => busy += 1,
        }
    }
    assert_eq!((won.len(), busy), (40, 60));
}

#[tokio::test]
async fn consecutive_tickets_take_consecutive_slots() {
    let store = MemoryStore::new(pairs(8), 600);
    let all = pairs(8);
    for (i, expected) in all.iter().enumerate().take(4) {
        let pair = claimed(store.claim(&request(&format!("t{i}"))).await.unwrap());
        assert_eq!(&pair, expected, "ticket {i} aims at slot {i}");
    }
}

#[tokio::test]
async fn a_redelivered_claim_gets_the_same_pair_even_on_a_full_pool() {
    let store = MemoryStore::new(pairs(2), 600);
    let first = claimed(store.claim(&request("t1")).await.unwrap());
    claimed(store.claim(&request("t2")).await.unwrap());
    assert_eq!(claimed(store.claim(&request("t1")).await.unwrap()), first);
    assert_eq!(
        store.claim(&request("t3")).await.unwrap(),
        ClaimOutcome::Busy
    );
}

#[tokio::test]
async fn an_expired_lease_is_claimable_and_a_released_claim_can_be_replaced() {
    let store = MemoryStore::new(pairs(1), 60);
    let pair = claimed(store.claim(&request("t1")).await.unwrap());
    assert_eq!(
        store.claim(&request("t2")).await.unwrap(),
        ClaimOutcome::Busy
    );
    store.advance_clock(61);
    assert_eq!(claimed(store.claim(&request("t2")).await.unwrap()), pair);
    // t2 releases; a second claim by t2 (e.g. after a failed bridge) replaces its record.
    assert_eq!(
        store.release(&pair, "t2").await.unwrap(),
        ReleaseOutcome::Released
    );
    assert_eq!(claimed(store.claim(&request("t2")).await.unwrap()), pair);
    assert_eq!(store.recorded_pair("t2").await.unwrap(), Some(pair));
}

#[tokio::test]
async fn the_attempt_bound_answers_busy() {
    // No writes allowed: even a free pool answers busy rather than looping.
    let store = MemoryStore::new(pairs(3), 600);
    let rules = ClaimRules {
        max_write_attempts: 0,
        ..ClaimRules::default()
    };
    assert_eq!(
        strategy::claim(&store, &rules, &request("t1"))
            .await
            .unwrap(),
        ClaimOutcome::Busy
    );
}

/// The in-memory store's primitives, counted, with a rival claimer that takes the pair the
/// contention-aware write aims at just before that write lands (a burst's simultaneous
/// claimers, made deterministic), for the first `rival_writes` such writes.
/// Optionally, the first `contended_writes` such writes find their pair inside another write
/// still in progress (DynamoDB's `TransactionConflict`) and change nothing. Records the waits
/// the strategy asks for.
struct RivalBeforeEachWrite<'a> {
    inner: &'a MemoryStore,
    requests: std::sync::atomic::AtomicU64,
    rival_writes: std::sync::atomic::AtomicU64,
    contended_writes: std::sync::atomic::AtomicU64,
    settle_waits_ms: std::sync::Mutex<Vec<i64>>,
}

impl<'a> RivalBeforeEachWrite<'a> {
    fn new(inner: &'a MemoryStore, rival_writes: u64) -> Self {
        Self {
            inner,
            requests: Default::default(),
            rival_writes: rival_writes.into(),
            contended_writes: Default::default(),
            settle_waits_ms: Default::default(),
        }
    }

    fn with_contended_writes(self, n: u64) -> Self {
        self.contended_writes
            .store(n, std::sync::atomic::Ordering::SeqCst);
        self
    }

    fn settle_waits_ms(&self) -> Vec<i64> {
        self.settle_waits_ms
            .lock()
            .map(|w| w.clone())
            .unwrap_or_default()
    }

    fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Takes one from `left` if any is left.
fn take_one(left: &std::sync::atomic::AtomicU64) -> bool {
    left.fetch_update(
        std::sync::atomic::Ordering::SeqCst,
        std::sync::atomic::Ordering::SeqCst,
        |n| n.checked_sub(1),
    )
    .is_ok()
}

impl RivalBeforeEachWrite<'_> {
    fn count(&self) {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl ClaimPrimitives for RivalBeforeEachWrite<'_> {
    fn now_ms(&self) -> i64 {
        self.inner.now_ms()
    }
    async fn free_pairs(
        &self,
        take_ticket: bool,
        transaction_id: &str,
        now_s: i64,
    ) -> Result<(Option<strategy::Ticket>, strategy::FreePairs), takeback_pairs::StoreError> {
        self.count();
        self.inner
            .free_pairs(take_ticket, transaction_id, now_s)
            .await
    }
    async fn expired_pairs(
        &self,
        now_s: i64,
    ) -> Result<Vec<strategy::Candidate>, takeback_pairs::StoreError> {
        self.count();
        self.inner.expired_pairs(now_s).await
    }
    async fn attempt(
        &self,
        pair: &PairKey,
        request: &ClaimRequest,
        now_ms: i64,
        lease_expires_at: i64,
        replacing: Option<&PairKey>,
    ) -> Result<strategy::ClaimAttempt, takeback_pairs::StoreError> {
        self.count();
        if take_one(&self.contended_writes) {
            return Ok(strategy::ClaimAttempt::PairContended);
        }
        if take_one(&self.rival_writes) {
            let rival = format!("rival-{}", self.requests());
            self.inner
                .attempt_single(pair, &self::request(&rival), now_ms, lease_expires_at)
                .await?;
        }
        self.inner
            .attempt(pair, request, now_ms, lease_expires_at, replacing)
            .await
    }
    async fn live_claim_of(
        &self,
        pair: &PairKey,
        transaction_id: &str,
        now_s: i64,
    ) -> Result<Option<takeback_pairs::Claim>, takeback_pairs::StoreError> {
        self.count();
        self.inner.live_claim_of(pair, transaction_id, now_s).await
    }
    async fn recorded_pair(
        &self,
        transaction_id: &str,
    ) -> Result<Option<PairKey>, takeback_pairs::StoreError> {
        self.count();
        self.inner.recorded_pair(transaction_id).await
    }
    async fn attempt_single(
        &self,
        pair: &PairKey,
        request: &ClaimRequest,
        now_ms: i64,
        lease_expires_at: i64,
    ) -> Result<strategy::ClaimAttempt, takeback_pairs::StoreError> {
        self.count();
        self.inner
            .attempt_single(pair, request, now_ms, lease_expires_at)
            .await
    }
    async fn held_by(
        &self,
        transaction_id: &str,
        now_s: i64,
    ) -> Result<Option<takeback_pairs::Claim>, takeback_pairs::StoreError> {
        self.count();
        self.inner.held_by(transaction_id, now_s).await
    }
    async fn claimable_pairs(
        &self,
        transaction_id: &str,
        now_s: i64,
    ) -> Result<strategy::ClaimablePairs, takeback_pairs::StoreError> {
        self.count();
        self.inner.claimable_pairs(transaction_id, now_s).await
    }
    fn pool_view(&self) -> Option<&std::sync::Mutex<strategy::PoolView>> {
        self.inner.pool_view()
    }
    async fn settle(&self, ms: i64) {
        if let Ok(mut waits) = self.settle_waits_ms.lock() {
            waits.push(ms);
        }
    }
}

/// A warm environment (6 pairs, or `pool`, 1 held by its own earlier claim) whose fast path is
/// about to lose: another environment has just taken the pair this one would try next.
async fn warm_store_whose_next_pick_is_taken() -> MemoryStore {
    warm_store_of_whose_next_pick_is_taken(6).await
}

async fn warm_store_of_whose_next_pick_is_taken(pool: usize) -> MemoryStore {
    let store = MemoryStore::new(pairs(pool), 600);
    claimed(store.claim(&request("warm")).await.expect("test set-up"));
    let view = store.pool_view().expect("the memory store keeps a view");
    let next = strategy::lock_view(view)
        .pick("peek", store.now_ms(), i64::MAX)
        .expect("the view believes pairs free");
    strategy::lock_view(view).abandon(&next);
    let lease = store.now_ms() / 1000 + 600;
    let taken = store
        .attempt_single(&next, &request("other-env"), store.now_ms(), lease)
        .await
        .expect("test set-up");
    assert!(matches!(taken, strategy::ClaimAttempt::Won(_)));
    store
}

#[tokio::test]
async fn a_caller_who_loses_a_race_after_its_fast_write_still_gets_a_free_pair() {
    let store = warm_store_whose_next_pick_is_taken().await;
    // The fast write loses; the read shows 4 free pairs; a rival takes the one this caller
    // writes. Pairs are still free, so this caller must not hear busy.
    let contended = RivalBeforeEachWrite::new(&store, 1);
    let pair = claimed(
        strategy::claim(&contended, &ClaimRules::default(), &request("caller"))
            .await
            .unwrap(),
    );
    assert_eq!(
        store.held_pairs().len(),
        4,
        "own warm-up, other env, rival, caller"
    );
    assert!(
        store
            .held_pairs()
            .iter()
            .any(|(p, t)| p == &pair && t == "caller")
    );
    assert_eq!(
        contended.requests(),
        5,
        "lost fast write, read, lost write, read, winning write"
    );
}

/// A caller on a warm environment of `pool` pairs whose next pick is taken, with rivals taking
/// every pair it writes just before its write lands: its outcome, how many pairs are held
/// afterwards, and the requests it made.
async fn claim_while_rivals_take_every_pair_written(pool: usize) -> (ClaimOutcome, usize, u64) {
    let store = warm_store_of_whose_next_pick_is_taken(pool).await;
    let contended = RivalBeforeEachWrite::new(&store, u64::MAX);
    let outcome = strategy::claim(&contended, &ClaimRules::default(), &request("caller"))
        .await
        .expect("the memory store answers");
    (outcome, store.held_pairs().len(), contended.requests())
}

#[tokio::test]
async fn busy_is_answered_once_the_pool_is_full_not_after_lost_races() {
    // It claims on while reads show free pairs and hears busy when it loses the only pair a
    // read showed.
    let (outcome, held, requests) = claim_while_rivals_take_every_pair_written(6).await;
    assert_eq!(outcome, ClaimOutcome::Busy);
    assert_eq!(held, 6, "busy only once every pair is held");
    assert_eq!(
        requests,
        1 + 4 * 2,
        "lost fast write, 4 × (read, lost write): the last read showed one pair, and it was lost"
    );
}

#[tokio::test]
async fn losing_the_only_pair_a_read_showed_answers_busy_in_three_requests() {
    // Three pairs: one held by this environment's own earlier claim, one taken elsewhere
    // (this environment's next pick), one free that a rival takes first.
    let (outcome, held, requests) = claim_while_rivals_take_every_pair_written(3).await;
    assert_eq!(outcome, ClaimOutcome::Busy);
    assert_eq!(held, 3, "busy only with every pair held");
    assert_eq!(
        requests, 3,
        "lost fast write, the read showing one pair, the write that lost it"
    );
}

#[tokio::test]
async fn a_pair_inside_another_write_is_not_lost_the_claim_reads_again_and_takes_it() {
    // The same pool, but the last free pair is only *inside* another write that then fails
    // (DynamoDB's TransactionConflict): it is still free, so the caller must get it, not busy.
    let store = warm_store_of_whose_next_pick_is_taken(3).await;
    let contended = RivalBeforeEachWrite::new(&store, 0).with_contended_writes(1);
    let pair = claimed(
        strategy::claim(&contended, &ClaimRules::default(), &request("caller"))
            .await
            .unwrap(),
    );
    assert!(
        store
            .held_pairs()
            .iter()
            .any(|(p, t)| p == &pair && t == "caller")
    );
    assert_eq!(
        contended.requests(),
        5,
        "lost fast write, read, contended write, read, winning write on the same pair"
    );
}

#[tokio::test]
async fn a_lost_fast_write_waits_for_the_burst_to_settle_before_reading() {
    let store = warm_store_whose_next_pick_is_taken().await;
    let counted = RivalBeforeEachWrite::new(&store, 0);
    claimed(
        strategy::claim(&counted, &ClaimRules::default(), &request("caller"))
            .await
            .unwrap(),
    );
    let waits = counted.settle_waits_ms();
    assert_eq!(
        waits.len(),
        1,
        "one wait, after the lost fast write: {waits:?}"
    );
    assert!((0..=strategy::MAX_SETTLE_WAIT_MS).contains(&waits[0]));
    // A fast write that wins waits for nothing.
    let store = MemoryStore::new(pairs(4), 600);
    let counted = RivalBeforeEachWrite::new(&store, 0);
    claimed(
        strategy::claim(&counted, &ClaimRules::default(), &request("a"))
            .await
            .unwrap(),
    );
    claimed(
        strategy::claim(&counted, &ClaimRules::default(), &request("b"))
            .await
            .unwrap(),
    );
    assert!(counted.settle_waits_ms().is_empty());
}

#[tokio::test]
async fn a_fast_write_lost_to_a_claim_made_long_ago_reads_at_once() {
    // The other environment took this environment's next pick a minute ago: the view was
    // stale, no burst is under way, and waiting would only delay the caller.
    let store = warm_store_whose_next_pick_is_taken().await;
    store.advance_clock(60);
    let counted = RivalBeforeEachWrite::new(&store, 0);
    claimed(
        strategy::claim(&counted, &ClaimRules::default(), &request("caller"))
            .await
            .unwrap(),
    );
    assert!(
        counted.settle_waits_ms().is_empty(),
        "{:?}",
        counted.settle_waits_ms()
    );
    assert_eq!(
        counted.requests(),
        3,
        "lost fast write, read, winning write"
    );
}

#[test]
fn only_a_loss_to_a_claim_just_made_or_of_unknown_age_is_worth_the_wait() {
    let now = 1_796_000_000_000;
    assert!(strategy::contention_is_recent(Some(now - 40), now));
    assert!(strategy::contention_is_recent(
        Some(now - strategy::RECENT_CLAIM_MS),
        now
    ));
    assert!(!strategy::contention_is_recent(
        Some(now - strategy::RECENT_CLAIM_MS - 1),
        now
    ));
    assert!(
        strategy::contention_is_recent(None, now),
        "unknown: assume a burst"
    );
}

#[test]
fn the_settle_wait_is_three_round_trips_of_the_lost_write_within_a_bound() {
    assert_eq!(strategy::settle_wait_ms(0), 0);
    assert_eq!(strategy::settle_wait_ms(7), 21);
    assert_eq!(
        strategy::settle_wait_ms(-3),
        0,
        "a clock step back waits for nothing"
    );
    assert_eq!(
        strategy::settle_wait_ms(10_000),
        strategy::MAX_SETTLE_WAIT_MS
    );
}

#[tokio::test]
async fn a_limit_on_writes_after_a_lost_fast_write_answers_a_loser_in_three_requests() {
    let store = warm_store_whose_next_pick_is_taken().await;
    let rules = ClaimRules {
        writes_after_fast_loss: 1,
        ..ClaimRules::default()
    };
    let contended = RivalBeforeEachWrite::new(&store, u64::MAX);
    assert_eq!(
        strategy::claim(&contended, &rules, &request("loser"))
            .await
            .unwrap(),
        ClaimOutcome::Busy
    );
    assert_eq!(
        contended.requests(),
        3,
        "lost fast write, one read of every claimable pair, one lost write"
    );
    assert_eq!(
        store.held_pairs().len(),
        3,
        "the price: three pairs still free"
    );
}

#[tokio::test]
async fn after_a_lost_fast_write_a_full_pool_answers_busy_after_one_read() {
    let store = MemoryStore::new(pairs(2), 600);
    claimed(store.claim(&request("warm")).await.unwrap());
    // The other pair, which this environment believes free, is taken elsewhere.
    let other = pairs(2)
        .into_iter()
        .find(|p| store.held_pairs().iter().all(|(h, _)| h != p))
        .unwrap();
    let lease = store.now_ms() / 1000 + 600;
    store
        .attempt_single(&other, &request("other-env"), store.now_ms(), lease)
        .await
        .unwrap();
    let counted = RivalBeforeEachWrite::new(&store, u64::MAX);
    assert_eq!(
        strategy::claim(&counted, &ClaimRules::default(), &request("t"))
            .await
            .unwrap(),
        ClaimOutcome::Busy
    );
    assert_eq!(
        counted.requests(),
        2,
        "the lost fast write and one read covering free and expired pairs"
    );
}

#[tokio::test]
async fn reads_offer_no_resting_pair_so_the_first_write_lands_on_a_free_one() {
    let store = MemoryStore::new(pairs(12), 600);
    // Nine calls abandoned before their Connect lookup: their pairs rest after the release.
    for i in 0..9 {
        let t = format!("abandoned-{i}");
        let pair = claimed(store.claim(&request(&t)).await.unwrap());
        assert_eq!(
            store.release_owned(&t, Some(&pair)).await.unwrap(),
            ReleaseOutcome::Released
        );
    }
    let now_s = store.now_ms() / 1000;
    let (_, free) = store.free_pairs(false, "next", now_s).await.unwrap();
    assert_eq!(free.candidates.len(), 3, "only the never-claimed pairs");
    // The contention-aware path with a single write: it must aim at one of them.
    let rules = ClaimRules {
        fast_path: false,
        max_write_attempts: 1,
        ..ClaimRules::default()
    };
    claimed(
        strategy::claim(&store, &rules, &request("next"))
            .await
            .unwrap(),
    );
}
