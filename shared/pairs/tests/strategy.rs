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

/// The in-memory store's primitives, counted, with a rival claimer that takes every pair the
/// contention-aware write aims at just before that write lands (a burst's simultaneous
/// claimers, made deterministic).
struct RivalBeforeEachWrite<'a> {
    inner: &'a MemoryStore,
    requests: std::sync::atomic::AtomicU64,
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
    ) -> Result<(Option<strategy::Ticket>, strategy::FreePairs), takeback_pairs::StoreError> {
        self.count();
        self.inner.free_pairs(take_ticket).await
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
        let rival = format!(
            "rival-{}",
            self.requests.load(std::sync::atomic::Ordering::SeqCst)
        );
        self.inner
            .attempt_single(pair, &self::request(&rival), now_ms, lease_expires_at)
            .await?;
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
}

#[tokio::test]
async fn a_caller_whose_fast_write_lost_hears_its_answer_within_three_requests() {
    let store = MemoryStore::new(pairs(6), 600);
    let rules = ClaimRules::default();
    // Warm: this environment has read the pool (5 pairs believed free after its own claim).
    claimed(store.claim(&request("warm")).await.unwrap());
    // Another environment takes the pair this one would try next.
    let next = {
        let view = store.pool_view().unwrap();
        let pick = strategy::lock_view(view).pick("peek", store.now_ms(), i64::MAX);
        let pick = pick.unwrap();
        strategy::lock_view(view).abandon(&pick);
        pick
    };
    let lease = store.now_ms() / 1000 + 600;
    store
        .attempt_single(&next, &request("other-env"), store.now_ms(), lease)
        .await
        .unwrap();
    // The fast write loses; the read still shows free pairs, but a rival takes the one this
    // caller writes: the answer is busy after 3 requests, not a walk of read-lose-read.
    let contended = RivalBeforeEachWrite {
        inner: &store,
        requests: Default::default(),
    };
    assert_eq!(
        strategy::claim(&contended, &rules, &request("loser"))
            .await
            .unwrap(),
        ClaimOutcome::Busy
    );
    assert_eq!(
        contended.requests.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "lost fast write, one read of every claimable pair, one lost write"
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
    let counted = RivalBeforeEachWrite {
        inner: &store,
        requests: Default::default(),
    };
    assert_eq!(
        strategy::claim(&counted, &ClaimRules::default(), &request("t"))
            .await
            .unwrap(),
        ClaimOutcome::Busy
    );
    assert_eq!(
        counted.requests.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the lost fast write and one read covering free and expired pairs"
    );
}
