//! The DynamoDB pair store against real Amazon DynamoDB Local (`infra/dynamodb-local.sh`).
//! Needs `AWS_ENDPOINT_URL_DYNAMODB` (+ dummy credentials); without it every test prints a loud
//! SKIP line and returns. Each test creates its own tables.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use takeback_dynamo::pairs::{ClaimConfig, DynamoStore, attr};
use takeback_dynamo::seed::{cross_product, seed_pairs};
use takeback_dynamo::tables::{self, CreateOutcome, create_table};
use takeback_dynamo::testing;
use takeback_pairs::strategy::{self, ClaimRules};
use takeback_pairs::{
    CallStore, ClaimOutcome, ClaimRequest, LookupMode, PairKey, PairStore, ReleaseOutcome,
    TransferIntent,
};

fn numbers(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

/// `sma` × `connect` pairs, e.g. 8 × 8 = 64.
fn pairs(sma: usize, connect: usize) -> Vec<PairKey> {
    cross_product(&numbers("+1800555", sma), &numbers("+1888444", connect))
}

struct Fixture {
    client: Client,
    store: DynamoStore,
    clock: Arc<AtomicI64>,
}

async fn fixture(test: &str, pairs: &[PairKey], config: ClaimConfig) -> Option<Fixture> {
    let client = testing::local_client(test).await?;
    let store = testing::seeded_pair_store(&client, test, pairs).await;
    let (clock, cell) = testing::settable_clock();
    // A loaded test machine answers slower than DynamoDB: no retry budget cuts a test short.
    let config = ClaimConfig {
        retry_budget: std::time::Duration::from_secs(60),
        ..config
    };
    let store = store.with_config(config).with_clock(clock);
    Some(Fixture {
        client,
        store,
        clock: cell,
    })
}

fn request(tx: &str) -> ClaimRequest {
    ClaimRequest {
        transaction_id: tx.to_owned(),
        original_calling_number: "+14155550100".to_owned(),
        original_called_number: "+18005550199".to_owned(),
    }
}

fn claimed(outcome: ClaimOutcome) -> takeback_pairs::Claim {
    match outcome {
        ClaimOutcome::Claimed(c) => c,
        ClaimOutcome::Busy => panic!("expected a claim, got Busy"),
    }
}

/// Every pair item, read straight from the table (strongly consistent scan).
async fn table_state(f: &Fixture) -> HashMap<PairKey, HashMap<String, AttributeValue>> {
    let mut out = HashMap::new();
    let mut start = None;
    loop {
        let page = f
            .client
            .scan()
            .table_name(f.store.pairs_table())
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("test set-up");
        for item in page.items() {
            let s = item[attr::SMA_NUMBER].as_s().expect("test set-up").clone();
            if s.starts_with('#') {
                continue; // the pool item (claim tickets, slot count)
            }
            let c = item[attr::CONNECT_NUMBER]
                .as_s()
                .expect("test set-up")
                .clone();
            out.insert(
                PairKey {
                    sma_number: s,
                    connect_number: c,
                },
                item.clone(),
            );
        }
        match page.last_evaluated_key() {
            Some(k) => start = Some(k.clone()),
            None => return out,
        }
    }
}

fn holder(item: &HashMap<String, AttributeValue>) -> Option<String> {
    (item
        .get(attr::IN_USE)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        == Some("true"))
    .then(|| {
        item[attr::TRANSACTION_ID]
            .as_s()
            .expect("test set-up")
            .clone()
    })
}

async fn claim_concurrently(
    store: &DynamoStore,
    claimers: usize,
) -> Vec<(String, ClaimOutcome, u64)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(claimers));
    let tasks: Vec<_> = (0..claimers)
        .map(|i| {
            // Own counters per claimer, to check each one's attempt bound.
            let store = store.clone().with_fresh_metrics();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let tx = format!("tx-{i}-{}", uuid::Uuid::new_v4());
                barrier.wait().await;
                let outcome = store.claim(&request(&tx)).await.expect("test set-up");
                (tx, outcome, store.metrics().claim_write_attempts)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("test set-up"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_claimers_on_sixty_four_pairs_all_win_distinct_pairs() {
    let all = pairs(8, 8);
    let Some(f) = fixture("c64", &all, ClaimConfig::default()).await else {
        return;
    };
    let results = claim_concurrently(&f.store, 64).await;

    let mut by_pair: HashMap<PairKey, String> = HashMap::new();
    for (tx, outcome, _) in &results {
        let claim = claimed(outcome.clone());
        assert_eq!(&claim.transaction_id, tx);
        if let Some(other) = by_pair.insert(claim.pair.clone(), tx.clone()) {
            panic!("pair {:?} handed to {other} and {tx}", claim.pair);
        }
    }
    assert_eq!(by_pair.len(), 64);
    // The table agrees: every pair held, by the transaction that was told it won.
    let state = table_state(&f).await;
    for (pair, tx) in &by_pair {
        assert_eq!(holder(&state[pair]).as_deref(), Some(tx.as_str()));
    }
    // The spread (tickets over pool slots) keeps simultaneous claimers off each other's pairs:
    // the seed's Limit=1 strategy needs several times more writes here (see infra/claim-bench).
    let attempts: u64 = results.iter().map(|r| r.2).sum();
    eprintln!("64 on 64: {attempts} write attempts for 64 claims");
    assert!(
        attempts * 10 <= 64 * 13,
        "{attempts} write attempts for 64 claims"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_claimers_on_forty_pairs_forty_win_sixty_busy() {
    let all = pairs(5, 8);
    let config = ClaimConfig::default();
    let bound = u64::from(config.rules.max_write_attempts);
    let Some(f) = fixture("c100", &all, config).await else {
        return;
    };
    let results = claim_concurrently(&f.store, 100).await;
    let winners: Vec<_> = results
        .iter()
        .filter_map(|(tx, o, _)| match o {
            ClaimOutcome::Claimed(c) => Some((c.pair.clone(), tx.clone())),
            ClaimOutcome::Busy => None,
        })
        .collect();
    let busy = results
        .iter()
        .filter(|(_, o, _)| *o == ClaimOutcome::Busy)
        .count();
    assert_eq!(winners.len(), 40);
    assert_eq!(busy, 60);
    let distinct: HashSet<_> = winners.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(distinct.len(), 40, "a pair was handed out twice");
    for (tx, _, attempts) in &results {
        assert!(*attempts <= bound, "{tx} made {attempts} write attempts");
    }
    let state = table_state(&f).await;
    for (pair, tx) in &winners {
        assert_eq!(holder(&state[pair]).as_deref(), Some(tx.as_str()));
    }
}

#[tokio::test]
async fn stale_release_after_reclaim_leaves_new_owner_intact() {
    let all = pairs(1, 1);
    let config = ClaimConfig {
        rules: ClaimRules {
            lease_seconds: 60,
            ..ClaimRules::default()
        },
        ..ClaimConfig::default()
    };
    let Some(f) = fixture("stale", &all, config).await else {
        return;
    };
    let a = claimed(f.store.claim(&request("tx-a")).await.unwrap());
    // A's call outlives its lease (crashed invocation); B reclaims the pair.
    f.clock.fetch_add(61_000, Ordering::SeqCst);
    let b = claimed(f.store.claim(&request("tx-b")).await.unwrap());
    assert_eq!(a.pair, b.pair);

    // A's late release must not free B's pair.
    assert_eq!(
        f.store.release(&a.pair, "tx-a").await.unwrap(),
        ReleaseOutcome::NotHeld
    );
    let live = f
        .store
        .lookup(&b.pair, "contact-b", LookupMode::KeepClaim)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.transaction_id, "tx-b");
    assert_eq!(
        f.store.release(&b.pair, "tx-b").await.unwrap(),
        ReleaseOutcome::Released
    );
    // Releasing twice is fine and changes nothing.
    assert_eq!(
        f.store.release(&b.pair, "tx-b").await.unwrap(),
        ReleaseOutcome::NotHeld
    );
}

#[tokio::test]
async fn redelivered_claim_returns_the_same_pair() {
    let all = pairs(3, 3);
    let Some(f) = fixture("redeliver", &all, ClaimConfig::default()).await else {
        return;
    };
    let first = claimed(f.store.claim(&request("tx-r")).await.unwrap());
    let again = claimed(f.store.claim(&request("tx-r")).await.unwrap());
    assert_eq!(first.pair, again.pair);

    // Concurrent duplicates of another transaction's event: one pair between them.
    let dup = request("tx-dup");
    let (x, y) = tokio::join!(f.store.claim(&dup), f.store.claim(&dup));
    assert_eq!(claimed(x.unwrap()).pair, claimed(y.unwrap()).pair);

    let held: Vec<String> = table_state(&f).await.values().filter_map(holder).collect();
    assert_eq!(held.len(), 2, "held: {held:?}");
    assert_eq!(held.iter().filter(|t| *t == "tx-r").count(), 1);
    assert_eq!(held.iter().filter(|t| *t == "tx-dup").count(), 1);
}

#[tokio::test]
async fn redelivery_on_a_full_pool_gets_its_pair_not_busy() {
    let all = pairs(1, 1);
    let Some(f) = fixture("fullpool", &all, ClaimConfig::default()).await else {
        return;
    };
    let first = claimed(f.store.claim(&request("tx-full")).await.unwrap());
    let again = claimed(f.store.claim(&request("tx-full")).await.unwrap());
    assert_eq!(first.pair, again.pair);
    assert_eq!(
        f.store.claim(&request("tx-other")).await.unwrap(),
        ClaimOutcome::Busy
    );
}

#[tokio::test]
async fn a_transaction_may_claim_again_after_releasing() {
    // The SMA handler's "bridge failed: try another pair once".
    let all = pairs(2, 1);
    let Some(f) = fixture("reclaim", &all, ClaimConfig::default()).await else {
        return;
    };
    let first = claimed(f.store.claim(&request("tx-again")).await.unwrap());
    f.store.release(&first.pair, "tx-again").await.unwrap();
    let second = claimed(f.store.claim(&request("tx-again")).await.unwrap());
    let held: Vec<String> = table_state(&f).await.values().filter_map(holder).collect();
    assert_eq!(held, vec!["tx-again".to_owned()]);
    // And the re-delivery of the second claim is idempotent too.
    let third = claimed(f.store.claim(&request("tx-again")).await.unwrap());
    assert_eq!(second.pair, third.pair);
}

#[tokio::test]
async fn expired_lease_is_reclaimed_and_never_looked_up() {
    let all = pairs(1, 1);
    let config = ClaimConfig {
        rules: ClaimRules {
            lease_seconds: 30,
            ..ClaimRules::default()
        },
        ..ClaimConfig::default()
    };
    let Some(f) = fixture("expiry", &all, config).await else {
        return;
    };
    let a = claimed(f.store.claim(&request("tx-a")).await.unwrap());
    // Live: busy for others, visible to Connect.
    assert_eq!(
        f.store.claim(&request("tx-b")).await.unwrap(),
        ClaimOutcome::Busy
    );
    assert!(
        f.store
            .lookup(&a.pair, "c1", LookupMode::KeepClaim)
            .await
            .unwrap()
            .is_some()
    );

    f.clock.fetch_add(31_000, Ordering::SeqCst);
    assert_eq!(
        f.store
            .lookup(&a.pair, "c2", LookupMode::KeepClaim)
            .await
            .unwrap(),
        None,
        "an expired claim must not be looked up"
    );
    let b = claimed(f.store.claim(&request("tx-b")).await.unwrap());
    assert_eq!(b.pair, a.pair);
    assert_eq!(
        b.lease_expires_at,
        f.clock.load(Ordering::SeqCst) / 1000 + 30
    );

    f.store.release(&b.pair, "tx-b").await.unwrap();
    assert_eq!(
        f.store
            .lookup(&b.pair, "c3", LookupMode::KeepClaim)
            .await
            .unwrap(),
        None,
        "a released claim must not be looked up"
    );
    // An unknown pair is simply not found (and no item is created).
    let unknown = PairKey {
        sma_number: "+19995550000".into(),
        connect_number: "+19995550001".into(),
    };
    assert_eq!(
        f.store
            .lookup(&unknown, "c4", LookupMode::KeepClaim)
            .await
            .unwrap(),
        None
    );
    assert_eq!(table_state(&f).await.len(), 1);
}

#[tokio::test]
async fn lookup_binds_the_contact_and_returns_the_call() {
    let all = pairs(1, 2);
    let Some(f) = fixture("lookup", &all, ClaimConfig::default()).await else {
        return;
    };
    let a = claimed(f.store.claim(&request("tx-l")).await.unwrap());
    let live = f
        .store
        .lookup(&a.pair, "contact-1", LookupMode::KeepClaim)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.transaction_id, "tx-l");
    assert_eq!(live.original_calling_number, "+14155550100");
    assert_eq!(live.original_called_number, "+18005550199");
    assert_eq!(live.contact_id.as_deref(), Some("contact-1"));
    assert!(!live.released);
    assert!(live.call_timestamp_ms > 0);
    let state = table_state(&f).await;
    assert_eq!(
        state[&a.pair][attr::CONTACT_ID].as_s().unwrap(),
        "contact-1"
    );
    assert_eq!(holder(&state[&a.pair]).as_deref(), Some("tx-l"));
}

#[tokio::test]
async fn release_on_lookup_frees_the_pair_at_once() {
    let all = pairs(1, 1);
    let Some(f) = fixture("relookup", &all, ClaimConfig::default()).await else {
        return;
    };
    let a = claimed(f.store.claim(&request("tx-a")).await.unwrap());
    let live = f
        .store
        .lookup(&a.pair, "contact-a", LookupMode::ReleaseOnLookup)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.transaction_id, "tx-a");
    assert!(live.released);

    // Connect retries the same lookup: same answer while the pair is free.
    let retry = f
        .store
        .lookup(&a.pair, "contact-a", LookupMode::ReleaseOnLookup)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retry.transaction_id, "tx-a");
    // Another contact finds nothing on a free pair.
    assert_eq!(
        f.store
            .lookup(&a.pair, "contact-x", LookupMode::KeepClaim)
            .await
            .unwrap(),
        None
    );

    // The pair is claimable at once (the only pair).
    let b = claimed(f.store.claim(&request("tx-b")).await.unwrap());
    assert_eq!(b.pair, a.pair);
    // The SMA's later release of A is a no-op, B keeps the pair.
    assert_eq!(
        f.store.release(&a.pair, "tx-a").await.unwrap(),
        ReleaseOutcome::NotHeld
    );
    // A late retry for contact A must not be handed B's call.
    assert_eq!(
        f.store
            .lookup(&a.pair, "contact-a", LookupMode::ReleaseOnLookup)
            .await
            .unwrap(),
        None
    );
    let live_b = f
        .store
        .lookup(&b.pair, "contact-b", LookupMode::KeepClaim)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live_b.transaction_id, "tx-b");
}

#[tokio::test]
async fn a_late_first_lookup_of_a_dying_contact_never_gets_the_next_callers_claim() {
    for mode in [LookupMode::KeepClaim, LookupMode::ReleaseOnLookup] {
        let all = pairs(1, 1);
        let Some(f) = fixture("dying-contact", &all, ClaimConfig::default()).await else {
            return;
        };
        let quiet_ms = ClaimRules::default().reuse_quiet_seconds * 1000;
        assert!(
            quiet_ms > 1000,
            "a released, never looked-up pair rests by default"
        );
        // Caller 1 is bridged, then hangs up before its contact's lookup has run.
        let a = claimed(f.store.claim(&request("tx-1")).await.unwrap());
        assert_eq!(
            f.store.release(&a.pair, "tx-1").await.unwrap(),
            ReleaseOutcome::Released
        );
        // Caller 2 comes at once: the pair rests, caller 2 is busy rather than exposed.
        f.clock.fetch_add(quiet_ms - 1000, Ordering::SeqCst);
        assert_eq!(
            f.store.claim(&request("tx-2")).await.unwrap(),
            ClaimOutcome::Busy,
            "{mode:?}"
        );
        // The dying contact's late first lookup finds nothing and frees nothing.
        assert_eq!(
            f.store.lookup(&a.pair, "contact-1", mode).await.unwrap(),
            None,
            "{mode:?}"
        );
        // After the rest, no lookup of that contact can still be on its way.
        f.clock.fetch_add(1000, Ordering::SeqCst);
        let b = claimed(f.store.claim(&request("tx-2")).await.unwrap());
        assert_eq!(b.pair, a.pair);
        let found = f
            .store
            .lookup(&b.pair, "contact-2", mode)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.transaction_id, "tx-2");
    }
}

#[tokio::test]
async fn a_pair_whose_claim_was_looked_up_is_reused_at_once() {
    let all = pairs(1, 1);
    let Some(f) = fixture("looked-up-reuse", &all, ClaimConfig::default()).await else {
        return;
    };
    let a = claimed(f.store.claim(&request("tx-1")).await.unwrap());
    f.store
        .lookup(&a.pair, "contact-1", LookupMode::KeepClaim)
        .await
        .unwrap()
        .unwrap();
    f.store.release(&a.pair, "tx-1").await.unwrap();
    let b = claimed(f.store.claim(&request("tx-2")).await.unwrap());
    assert_eq!(b.pair, a.pair);
}

#[tokio::test]
async fn claims_and_releases_keep_the_transfer_intent() {
    let all = pairs(1, 1);
    let Some(f) = fixture("intent", &all, ClaimConfig::default()).await else {
        return;
    };
    let intent = TransferIntent {
        target_uri: "1001".into(),
        target_arn: "arn:aws:chime:us-east-1:123456789012:vc/abcdef".into(),
        contact_id: Some("contact-1".into()),
    };
    assert_eq!(f.store.transfer_intent("tx-i").await.unwrap(), None);
    let a = claimed(f.store.claim(&request("tx-i")).await.unwrap());
    f.store
        .record_transfer_intent("tx-i", &intent)
        .await
        .unwrap();
    assert_eq!(
        f.store.release(&a.pair, "tx-i").await.unwrap(),
        ReleaseOutcome::Released
    );
    assert_eq!(
        f.store.transfer_intent("tx-i").await.unwrap(),
        Some(intent.clone())
    );
    // A claim for a transaction whose intent came first keeps it too. (tx-i's claim was
    // never looked up: its pair rests before another transaction may claim it.)
    f.store
        .record_transfer_intent("tx-j", &intent)
        .await
        .unwrap();
    f.clock.fetch_add(
        ClaimRules::default().reuse_quiet_seconds * 1000,
        Ordering::SeqCst,
    );
    claimed(f.store.claim(&request("tx-j")).await.unwrap());
    assert_eq!(f.store.transfer_intent("tx-j").await.unwrap(), Some(intent));
}

#[tokio::test]
async fn reseeding_adds_new_pairs_and_leaves_pairs_in_use_alone() {
    // 60 pairs: three write batches (25 + 25 + 10).
    let first = pairs(6, 10);
    let Some(f) = fixture("seed", &first, ClaimConfig::default()).await else {
        return;
    };
    assert_eq!(table_state(&f).await.len(), 60);
    let a = claimed(f.store.claim(&request("tx-seed")).await.unwrap());

    // Later: two more SMA numbers. No redeploy, and the held pair stays held.
    let more = pairs(8, 10);
    let report = seed_pairs(&f.client, f.store.pairs_table(), &more)
        .await
        .unwrap();
    assert_eq!(report.requested, 80);
    assert_eq!(report.added, 20);
    assert_eq!(report.existing, 60);
    let state = table_state(&f).await;
    assert_eq!(state.len(), 80);
    assert_eq!(holder(&state[&a.pair]).as_deref(), Some("tx-seed"));
    assert_eq!(state.values().filter_map(holder).count(), 1);

    // Creating the table again is not an error (the seed tool may be re-run).
    assert_eq!(
        create_table(&f.client, &tables::PAIRS, f.store.pairs_table())
            .await
            .unwrap(),
        CreateOutcome::AlreadyExisted
    );
}

#[tokio::test]
async fn created_tables_match_the_definitions() {
    let Some(client) = testing::local_client("created_tables").await else {
        return;
    };
    let name = format!("pairs-def-{}", uuid::Uuid::new_v4().simple());
    create_table(&client, &tables::PAIRS, &name).await.unwrap();
    let out = client
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let table = out.table().unwrap();
    let keys: Vec<(String, String)> = table
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_owned(),
                k.key_type().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("sma_number".to_owned(), "HASH".to_owned()),
            ("connect_number".to_owned(), "RANGE".to_owned())
        ]
    );
    let gsi = &table.global_secondary_indexes()[0];
    assert_eq!(gsi.index_name(), Some("in_use"));
    assert_eq!(gsi.key_schema()[0].attribute_name(), "in_use");
    assert_eq!(
        gsi.projection()
            .and_then(|p| p.projection_type())
            .map(|t| t.as_str()),
        Some("ALL")
    );
}

// --- the fast path -------------------------------------------------------------------------

#[tokio::test]
async fn a_warm_uncontended_claim_is_one_conditional_write_and_its_release_one_more() {
    let all = pairs(2, 4);
    let Some(f) = fixture("fast", &all, ClaimConfig::default()).await else {
        return;
    };
    // The environment's first claim reads the pool (and fills its view).
    claimed(f.store.claim(&request("tx-cold")).await.unwrap());
    assert_eq!(f.store.believed_free(), 7);
    let store = f.store.clone().with_fresh_metrics();
    let warm = claimed(store.claim(&request("tx-warm")).await.unwrap());
    assert_eq!(store.metrics().requests, 1, "{:?}", store.metrics());
    assert_eq!(store.metrics().claim_write_attempts, 1);
    let state = table_state(&f).await;
    assert_eq!(holder(&state[&warm.pair]).as_deref(), Some("tx-warm"));
    // Released by the pair the call's state names: one owner-conditional write.
    let store = store.with_fresh_metrics();
    assert_eq!(
        store
            .release_owned("tx-warm", Some(&warm.pair))
            .await
            .unwrap(),
        ReleaseOutcome::Released
    );
    assert_eq!(store.metrics().requests, 1);
}

#[tokio::test]
async fn a_redelivery_in_another_environment_gets_the_pair_the_fast_path_took() {
    let all = pairs(2, 4);
    let Some(f) = fixture("fast-redeliver", &all, ClaimConfig::default()).await else {
        return;
    };
    claimed(f.store.claim(&request("tx-warmup")).await.unwrap());
    let first = claimed(f.store.claim(&request("tx-r")).await.unwrap());
    // The SMA re-delivers to a fresh environment, 5 s later: a possible re-delivery.
    let elsewhere = f.store.clone().with_fresh_view();
    let again = claimed(
        elsewhere
            .claim_new_call(&request("tx-r"), strategy::Delivery::MaybeRepeated)
            .await
            .unwrap(),
    );
    assert_eq!(first.pair, again.pair);
    // The same environment answers a re-delivery from its memory, with the same one write.
    let store = f.store.clone().with_fresh_metrics();
    assert_eq!(
        claimed(store.claim(&request("tx-r")).await.unwrap()).pair,
        first.pair
    );
    let held: Vec<String> = table_state(&f).await.values().filter_map(holder).collect();
    assert_eq!(held.iter().filter(|t| *t == "tx-r").count(), 1, "{held:?}");
    // The repeat changed nothing: the lookup still binds the first claim.
    let live = f
        .store
        .lookup(&first.pair, "contact-r", LookupMode::KeepClaim)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.transaction_id, "tx-r");
    assert_eq!(
        claimed(store.claim(&request("tx-r")).await.unwrap()).pair,
        first.pair
    );
    let state = table_state(&f).await;
    assert_eq!(
        state[&first.pair][attr::CONTACT_ID].as_s().unwrap(),
        "contact-r",
        "a repeated claim keeps the contact binding"
    );
}

#[tokio::test]
async fn a_lost_fast_path_falls_back_to_the_contention_aware_path() {
    let all = pairs(1, 2);
    let Some(f) = fixture("fast-lost", &all, ClaimConfig::default()).await else {
        return;
    };
    claimed(f.store.claim(&request("tx-a")).await.unwrap());
    // Another environment takes the pair this one believes free.
    let other = f.store.clone().with_fresh_view();
    let taken = claimed(other.claim(&request("tx-b")).await.unwrap());
    assert_eq!(f.store.believed_free(), 1);
    let store = f.store.clone().with_fresh_metrics();
    // The pool is now full: the fast path loses, the read shows nothing free, busy.
    assert_eq!(
        store.claim(&request("tx-c")).await.unwrap(),
        ClaimOutcome::Busy
    );
    assert_eq!(store.metrics().claim_write_attempts, 1);
    assert_eq!(
        store.metrics().requests,
        2,
        "the lost write and one read of free and expired pairs together"
    );
    assert_eq!(f.store.believed_free(), 0, "the loss refreshed the view");
    // Once freed, the next claim reads again and wins with the record-keeping write.
    // (Looked up first, so the freed pair does not rest.)
    f.store
        .lookup(&taken.pair, "contact-b", LookupMode::KeepClaim)
        .await
        .unwrap();
    other.release(&taken.pair, "tx-b").await.unwrap();
    let c = claimed(f.store.claim(&request("tx-d")).await.unwrap());
    assert_eq!(c.pair, taken.pair);
}

#[tokio::test]
async fn a_fast_path_claim_whose_outcome_was_never_learned_is_found_and_freed() {
    let all = pairs(1, 4);
    let Some(f) = fixture("fast-unknown", &all, ClaimConfig::default()).await else {
        return;
    };
    claimed(f.store.claim(&request("tx-warmup")).await.unwrap());
    let lost_answer = claimed(f.store.claim(&request("tx-u")).await.unwrap());
    // The handler never learned it (the attributes name no pair): the ending event finds it.
    assert_eq!(
        f.store.claimed_pair("tx-u").await.unwrap(),
        Some(lost_answer.pair.clone())
    );
    assert_eq!(
        f.store.release_owned("tx-u", None).await.unwrap(),
        ReleaseOutcome::Released
    );
    let state = table_state(&f).await;
    assert_eq!(holder(&state[&lost_answer.pair]), None);
}

#[tokio::test]
async fn after_a_lost_fast_write_the_read_offers_only_pairs_the_write_accepts() {
    let all = pairs(1, 8);
    let Some(f) = fixture("fast-lost-resting", &all, ClaimConfig::default()).await else {
        return;
    };
    // This environment's claim, which it later frees after a lookup (reusable at once).
    let mine = claimed(f.store.claim(&request("tx-mine")).await.unwrap());
    // Another environment takes the other seven pairs and frees six of them before any
    // lookup: those rest (`reuse_quiet_seconds`), the seventh stays held.
    let other = f.store.clone().with_fresh_view();
    let mut taken = Vec::new();
    for i in 0..7 {
        let tx = format!("tx-other-{i}");
        taken.push((claimed(other.claim(&request(&tx)).await.unwrap()).pair, tx));
    }
    for (pair, tx) in &taken[1..] {
        assert_eq!(
            other.release(pair, tx).await.unwrap(),
            ReleaseOutcome::Released
        );
    }
    f.store
        .lookup(&mine.pair, "contact-mine", LookupMode::KeepClaim)
        .await
        .unwrap();
    f.store.release(&mine.pair, "tx-mine").await.unwrap();
    // The view still believes the other seven free: the fast write loses; the read after it
    // leaves out the resting pairs, so the one write goes to the only pair it can win.
    let store = f.store.clone().with_fresh_metrics();
    let c = claimed(store.claim(&request("tx-next")).await.unwrap());
    assert_eq!(c.pair, mine.pair);
    assert_eq!(store.metrics().requests, 3, "{:?}", store.metrics());
    assert_eq!(store.metrics().claim_write_attempts, 2);
}

#[tokio::test]
async fn resting_pairs_never_crowd_out_free_ones_from_a_claim() {
    // Reads offer 4 candidates at a time, so the first page of the index holds only pairs
    // that rest after the calls below.
    let all = pairs(2, 4);
    let config = ClaimConfig {
        candidates: 4,
        ..ClaimConfig::default()
    };
    let Some(f) = fixture("resting-crowd", &all, config).await else {
        return;
    };
    // Calls abandoned before any Connect lookup: each pair rests (15 s) after its release.
    let mut resting = HashSet::new();
    for i in 0..4 {
        let t = format!("tx-abandoned-{i}");
        let claim = claimed(f.store.claim(&request(&t)).await.unwrap());
        assert_eq!(
            f.store.release_owned(&t, Some(&claim.pair)).await.unwrap(),
            ReleaseOutcome::Released
        );
        resting.insert(claim.pair);
    }
    // Four pairs were never claimed: the next callers get them, whichever environment they
    // reach, and no resting pair.
    for (i, store) in [f.store.clone(), f.store.clone().with_fresh_view()]
        .into_iter()
        .enumerate()
    {
        let next = claimed(
            store
                .claim(&request(&format!("tx-next-{i}")))
                .await
                .unwrap(),
        );
        assert!(!resting.contains(&next.pair), "claimed a resting pair");
    }
}

#[tokio::test]
async fn a_primed_environment_answers_its_first_caller_with_one_write() {
    let all = pairs(2, 4);
    let Some(f) = fixture("primed", &all, ClaimConfig::default()).await else {
        return;
    };
    // Two environments start one after the other: each primer reads the pool and takes a
    // ticket, which places each environment's first claim on a pair of its own.
    let (first_env, second_env) = (f.store.clone(), f.store.clone().with_fresh_view());
    assert!(first_env.prime_view().await.unwrap());
    assert!(second_env.prime_view().await.unwrap());
    assert_eq!(first_env.believed_free(), 8);
    let mut won = HashSet::new();
    for (i, env) in [first_env, second_env].into_iter().enumerate() {
        let env = env.with_fresh_metrics();
        let claim = claimed(env.claim(&request(&format!("tx-first-{i}"))).await.unwrap());
        assert_eq!(env.metrics().requests, 1, "{:?}", env.metrics());
        assert!(
            won.insert(claim.pair),
            "both environments aimed at one pair"
        );
    }
    // A view that is already fresh is not read again.
    let warm = f.store.clone().with_fresh_metrics();
    assert!(warm.prime_view().await.unwrap());
    assert_eq!(warm.metrics().requests, 0);
}

#[tokio::test]
async fn a_first_claim_during_the_primers_read_waits_for_it_instead_of_reading_again() {
    let all = pairs(2, 4);
    let Some(f) = fixture("primed-race", &all, ClaimConfig::default()).await else {
        return;
    };
    let store = f.store.clone().with_fresh_metrics();
    // `join!` polls the primer first: it holds the read when the claim starts.
    let early = request("tx-early");
    let (primed, claim) = futures::join!(store.prime_view(), store.claim(&early));
    assert!(primed.unwrap());
    claimed(claim.unwrap());
    assert_eq!(
        store.metrics().requests,
        3,
        "the primer's read and ticket, then the claim's one write: {:?}",
        store.metrics()
    );
}
