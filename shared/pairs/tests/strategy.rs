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
