//! DynamoDB implementation of [`PairStore`] and [`CallStore`] (see "Rolling-DNIS pair claims" in
//! docs/architecture.md). The same code runs in AWS and against DynamoDB Local: the SDK client is
//! pointed at the local server by `AWS_ENDPOINT_URL_DYNAMODB`, never by a code path here.
//!
//! # Data model
//!
//! PAIRS item (key `sma_number` + `connect_number`, the seed's names):
//! - `in_use` `"true"`/`"false"`: partition key of the `in_use` index that finds free pairs;
//! - while held: `transaction_id`, `original_calling_number`, `original_called_number`,
//!   `call_timestamp` (N, epoch ms), `lease_expires_at` (N, epoch s), `contact_id` once Connect
//!   looked it up;
//! - `released_contact_id`: the contact whose lookup freed the pair in release-on-lookup mode
//!   (see [`PairStore::lookup`] below for why it outlives the claim);
//! - `released_at`, `released_by`: the last release by the SMA handler. The release keeps
//!   `contact_id`, so a free pair without one was released before any lookup bound its claim:
//!   another transaction claims it only after [`ClaimRules::reuse_quiet_seconds`], so that a
//!   late first lookup of that claim's dying contact finds nothing rather than the next
//!   caller's claim.
//!
//! CALLS item (key `transaction_id`, TTL `expires_at`): `sma_number` + `connect_number` of the pair
//! this transaction claimed on the contention-aware path, written in the *same*
//! `TransactWriteItems` as the pair update (a fast-path claim writes none), plus
//! the transfer intent (`transfer_target_uri`, `transfer_target_arn`, `transfer_contact_id`).
//! Claims and releases only ever touch their own attributes of this item, so a recorded transfer
//! intent survives both.
//!
//! # One write per claim, a transaction only when two items must change together
//!
//! A warm environment claims with one conditional `UpdateItem` on a pair its view believes free
//! (see `takeback_pairs::strategy`, "The fast path"): one request, one write unit. A failed
//! condition returns the item (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), so a repeat
//! that finds its own live claim is answered without a second request.
//!
//! The contention-aware path, and every claim for an event the SMA may have delivered before,
//! writes the pair and the CALLS record in one `TransactWriteItems`: the SMA re-delivers
//! `NEW_INBOUND_CALL` when the Lambda is slow (5 s), possibly while the first invocation is still
//! running, and "this transaction holds a pair" and "this pair is held by this transaction" as
//! one atomic write means two concurrent deliveries cannot both win: the CALLS condition
//! (`attribute_not_exists(sma_number)`) fails for the second, and its cancellation reason
//! returns the pair the first one holds.
//!
//! # Retries
//!
//! Every request is retried on throttling, 5xx, timeouts and dropped connections, with jittered
//! backoff, until [`ClaimConfig::retry_budget`] (one budget per public operation; a claim's
//! requests share one) is spent — see `retrying`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use tracing::{debug, info, warn};

use takeback_common::mask::mask_number;
use takeback_pairs::strategy::{
    self, Candidate, ClaimAttempt, ClaimPrimitives, ClaimRules, ClaimablePairs, Delivery,
    FreePairs, PoolView, Ticket,
};
use takeback_pairs::{
    CallStore, Claim, ClaimOutcome, ClaimRequest, LiveClaim, LookupMode, PairKey, PairStore,
    ReleaseOutcome, StoreError, TransferIntent,
};

use crate::error::{is_throttling_code, is_transient_sdk_error, map_sdk_error};
use crate::item::{n, s};

/// Attribute names of the PAIRS and CALLS items.
pub mod attr {
    pub const SMA_NUMBER: &str = "sma_number";
    pub const CONNECT_NUMBER: &str = "connect_number";
    pub const IN_USE: &str = "in_use";
    pub const TRANSACTION_ID: &str = "transaction_id";
    pub const ORIGINAL_CALLING_NUMBER: &str = "original_calling_number";
    pub const ORIGINAL_CALLED_NUMBER: &str = "original_called_number";
    pub const CALL_TIMESTAMP: &str = "call_timestamp";
    pub const LEASE_EXPIRES_AT: &str = "lease_expires_at";
    pub const CONTACT_ID: &str = "contact_id";
    pub const RELEASED_CONTACT_ID: &str = "released_contact_id";
    /// When (N, epoch s) and by which transaction the last claim was released; with no
    /// `contact_id` left on the item, no lookup had bound that claim.
    pub const RELEASED_AT: &str = "released_at";
    pub const RELEASED_BY: &str = "released_by";
    // CALLS only
    pub const CLAIMED_AT: &str = "claimed_at";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const TRANSFER_TARGET_URI: &str = "transfer_target_uri";
    pub const TRANSFER_TARGET_ARN: &str = "transfer_target_arn";
    pub const TRANSFER_CONTACT_ID: &str = "transfer_contact_id";
    pub const TRANSFER_RECORDED_AT: &str = "transfer_recorded_at";
    /// Position of a pair in the pool (N, dealt by the seeder, never changes).
    pub const SLOT: &str = "slot";
    // The pool item (see `POOL_KEY`)
    /// Claim tickets dealt so far.
    pub const TICKET: &str = "ticket";
    /// Slots dealt to pairs so far.
    pub const PAIR_SLOTS: &str = "pair_slots";
}

/// The `in_use` values: strings, as in the seed, because they are the index's partition key.
pub const IN_USE_TRUE: &str = "true";
pub const IN_USE_FALSE: &str = "false";

/// Epoch milliseconds. Injected so lease-expiry tests do not sleep.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or_default()
    })
}

/// Tuning of the DynamoDB store: the claim rules every store follows, plus what only this
/// store reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimConfig {
    /// Lease, attempt bound, re-read and ticket rules (the shared claim strategy).
    pub rules: ClaimRules,
    /// Free pairs read per index query (the claimer picks among them). While every free pair
    /// fits in one read, tickets map to pool slots and simultaneous claimers cannot collide on
    /// their first pick; beyond it they index the (sorted) partial list. 100 keys-and-slot items
    /// are a few KB: one or two read units.
    pub candidates: i32,
    /// Pages of the `in_use = "true"` index read when looking for expired leases.
    pub max_expired_pages: u32,
    /// How long a CALLS record lives (DynamoDB TTL on `expires_at`).
    pub call_record_ttl_seconds: i64,
    /// How long one store operation (a whole claim, a release, a lookup…) keeps retrying
    /// transient failures: each function sets it from its caller's deadline
    /// (`takeback_sdk::SMA_STORE_RETRY_BUDGET` and the like). Zero: one try.
    pub retry_budget: Duration,
}

impl Default for ClaimConfig {
    fn default() -> Self {
        Self {
            rules: ClaimRules::default(),
            candidates: 100,
            max_expired_pages: 4,
            call_record_ttl_seconds: 24 * 60 * 60,
            // One SDK operation's time limit (`takeback_sdk::OPERATION_TIMEOUT`): a store nobody
            // gave a budget retries no longer than one operation may take. Each function sets
            // its caller's budget.
            retry_budget: Duration::from_secs(2),
        }
    }
}

/// Counters for benchmarks and the emulator's per-call request counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreMetrics {
    /// DynamoDB API calls made by this store, its own retries included (not the SDK's).
    pub requests: u64,
    /// Of those, retries after a transient failure.
    pub retries: u64,
    /// Conditional claim writes (`UpdateItem` or `TransactWriteItems`) made by claims.
    pub claim_write_attempts: u64,
    /// Claims answered `Claimed`.
    pub claims: u64,
    /// Claims answered `Busy`.
    pub busy: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    claim_write_attempts: AtomicU64,
    claims: AtomicU64,
    busy: AtomicU64,
}

/// Pairs and call records in DynamoDB. Cheap to clone (the client and counters are shared).
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    pairs_table: String,
    calls_table: String,
    config: ClaimConfig,
    clock: Clock,
    counters: Arc<Counters>,
    /// The fast path's view of the pool, one per execution environment (shared by clones).
    view: Arc<Mutex<PoolView>>,
    /// One turn per transaction claiming in this process.
    in_flight: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// Held while the view is read for this environment ([`DynamoStore::prime_view`], or the
    /// first claim to find it unread or stale): a first claim arriving meanwhile waits for that
    /// read (up to [`PRIME_WAIT`]) instead of sending its own.
    priming: Arc<tokio::sync::Mutex<()>>,
}

/// How long a primer's read may take, retries included (its SDK attempts are bounded too).
pub const PRIME_BUDGET: std::time::Duration = std::time::Duration::from_millis(1_500);
/// How long a first claim waits for a primer's read still in flight before it reads itself
/// (a read left over from a frozen execution environment may never answer).
pub const PRIME_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("pairs_table", &self.pairs_table)
            .field("calls_table", &self.calls_table)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

type Item = HashMap<String, AttributeValue>;

/// The attribute names of [`CLAIMABLE`] and [`CLAIM_UPDATE`].
fn claim_names() -> HashMap<String, String> {
    [
        ("#rat", attr::RELEASED_AT),
        ("#rby", attr::RELEASED_BY),
        ("#s", attr::SMA_NUMBER),
        ("#u", attr::IN_USE),
        ("#tx", attr::TRANSACTION_ID),
        ("#from", attr::ORIGINAL_CALLING_NUMBER),
        ("#to", attr::ORIGINAL_CALLED_NUMBER),
        ("#ts", attr::CALL_TIMESTAMP),
        ("#l", attr::LEASE_EXPIRES_AT),
        ("#cid", attr::CONTACT_ID),
    ]
    .into_iter()
    .map(|(placeholder, name)| (placeholder.to_owned(), name.to_owned()))
    .collect()
}

impl DynamoStore {
    /// The values of [`CLAIMABLE`] and [`CLAIM_UPDATE`], the same for the fast write and the
    /// transaction's pair update.
    fn claim_values(&self, request: &ClaimRequest, now_ms: i64, lease_expires_at: i64) -> Item {
        let now_s = now_ms.div_euclid(1000);
        HashMap::from([
            (
                ":edge".to_owned(),
                n(now_s.saturating_sub(self.config.rules.reuse_quiet_seconds)),
            ),
            (":t".to_owned(), s(IN_USE_TRUE)),
            (":f".to_owned(), s(IN_USE_FALSE)),
            (":tx".to_owned(), s(&request.transaction_id)),
            (":from".to_owned(), s(&request.original_calling_number)),
            (":to".to_owned(), s(&request.original_called_number)),
            (":ts".to_owned(), n(now_ms)),
            (":lease".to_owned(), n(lease_expires_at)),
            (":now".to_owned(), n(now_s)),
        ])
    }

    pub fn new(
        client: Client,
        pairs_table: impl Into<String>,
        calls_table: impl Into<String>,
    ) -> Self {
        Self {
            client,
            pairs_table: pairs_table.into(),
            calls_table: calls_table.into(),
            config: ClaimConfig::default(),
            clock: system_clock(),
            counters: Arc::default(),
            view: Arc::default(),
            in_flight: Arc::default(),
            priming: Arc::default(),
        }
    }

    pub fn with_config(mut self, config: ClaimConfig) -> Self {
        self.config = config;
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same tables and client with counters of its own (benchmarks count per phase).
    pub fn with_fresh_metrics(mut self) -> Self {
        self.counters = Arc::default();
        self
    }

    /// The same tables and client with a view of its own, as a new execution environment
    /// starts (benchmarks and tests of several environments).
    pub fn with_fresh_view(mut self) -> Self {
        self.view = Arc::default();
        self.in_flight = Arc::default();
        self.priming = Arc::default();
        self
    }

    /// Reads the pool into this environment's view before any call needs it
    /// ([`strategy::prime_view`]); `sma-handler` starts it at cold start beside the runtime.
    /// A failure only means the first claim reads for itself.
    pub async fn prime_view(&self) -> Result<bool, StoreError> {
        let _reading = self.priming.lock().await;
        self.prime_view_by(Instant::now() + PRIME_BUDGET).await
    }

    /// [`strategy::prime_view`] within `deadline`; the caller holds `priming`.
    async fn prime_view_by(&self, deadline: Instant) -> Result<bool, StoreError> {
        let call = Budgeted {
            store: self,
            deadline,
        };
        strategy::prime_view(&call, &self.config.rules).await
    }

    /// Makes sure this environment's view is read before a first claim uses it, with one read
    /// per environment: claims that find the view unread or stale take turns, so the first
    /// reads (with a ticket that places the environment's walk) and the rest find the view
    /// fresh and pick distinct pairs from it. Without the turns, claims arriving together each
    /// read and aimed by their own tickets while later ones walked the view the first read
    /// filled, and the two kinds of pick collided (64 claims on 64 pairs in one process cost up
    /// to 85 writes instead of 64). A primer still reading counts as that first read. A failed
    /// read only leaves the claim to read for itself.
    async fn read_view_once(&self, deadline: Instant) {
        let Ok(_reading) = tokio::time::timeout(PRIME_WAIT, self.priming.lock()).await else {
            // Another read is taking long (or was frozen with its environment): read alone.
            return;
        };
        if let Err(e) = self.prime_view_by(deadline).await {
            debug!(error = %e, "reading the pool view failed; the claim reads for itself");
        }
    }

    /// Pairs the cached view believes free (0 before the first read).
    pub fn believed_free(&self) -> usize {
        strategy::lock_view(&self.view).believed_free()
    }

    pub fn config(&self) -> &ClaimConfig {
        &self.config
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn pairs_table(&self) -> &str {
        &self.pairs_table
    }

    pub fn calls_table(&self) -> &str {
        &self.calls_table
    }

    pub fn metrics(&self) -> StoreMetrics {
        let c = &self.counters;
        StoreMetrics {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            claim_write_attempts: c.claim_write_attempts.load(Ordering::Relaxed),
            claims: c.claims.load(Ordering::Relaxed),
            busy: c.busy.load(Ordering::Relaxed),
        }
    }

    fn count_request(&self) {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Free pairs from the `in_use` index (eventually consistent, as every GSI read: the
    /// conditional write is what decides).
    /// Also says whether the list is complete (every free pair) or was cut at the limit.
    async fn free_candidates(
        &self,
        deadline: Instant,
        transaction_id: &str,
        now_s: i64,
    ) -> Result<FreePairs, StoreError> {
        let req = self
            .client
            .query()
            .table_name(&self.pairs_table)
            .index_name(PAIRS_INDEX)
            .key_condition_expression("#u = :f")
            .filter_expression(NOT_RESTING)
            .expression_attribute_names("#u", attr::IN_USE)
            .expression_attribute_names("#cid", attr::CONTACT_ID)
            .expression_attribute_names("#rat", attr::RELEASED_AT)
            .expression_attribute_names("#rby", attr::RELEASED_BY)
            .expression_attribute_values(":f", s(IN_USE_FALSE))
            .expression_attribute_values(":tx", s(transaction_id))
            .expression_attribute_values(
                ":edge",
                n(now_s.saturating_sub(self.config.rules.reuse_quiet_seconds)),
            )
            .projection_expression("#s, #c, #slot")
            .expression_attribute_names("#s", attr::SMA_NUMBER)
            .expression_attribute_names("#c", attr::CONNECT_NUMBER)
            .expression_attribute_names("#slot", attr::SLOT)
            .limit(self.config.candidates.max(1));
        let mut candidates = Vec::new();
        // While many pairs rest, a page can offer few candidates: read on until enough.
        let complete = self
            .read_pages(
                move |start| {
                    let page = req.clone().set_exclusive_start_key(start);
                    async move {
                        let out = self
                            .retrying(deadline, || page.clone().send(), map_sdk_error)
                            .await?;
                        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
                    }
                },
                |item| {
                    candidates.push(candidate_of(item)?);
                    Ok(candidates.len())
                },
            )
            .await?;
        Ok(FreePairs {
            candidates,
            complete,
        })
    }

    /// Reads the pages `send_page` fetches (given where each starts), handing every item to
    /// `keep`, which answers how many wanted items it holds so far; stops when that reaches
    /// [`ClaimConfig::candidates`], when the read ends, or after
    /// [`ClaimConfig::max_expired_pages`] pages. A filter applies after DynamoDB's page limit,
    /// so a page may hold few matches; the page bound keeps a large, busy pool to a few
    /// requests. Answers whether the read reached its end.
    async fn read_pages<Fut>(
        &self,
        mut send_page: impl FnMut(Option<Item>) -> Fut,
        mut keep: impl FnMut(&Item) -> Result<usize, StoreError>,
    ) -> Result<bool, StoreError>
    where
        Fut: Future<Output = Result<(Vec<Item>, Option<Item>), StoreError>>,
    {
        let wanted = self.config.candidates.max(1) as usize;
        let mut kept = 0;
        let mut start = None;
        for _ in 0..self.config.max_expired_pages.max(1) {
            let (items, next) = send_page(start.take()).await?;
            for item in &items {
                kept = keep(item)?;
            }
            match next {
                Some(key) if kept < wanted => start = Some(key),
                Some(_) => return Ok(false),
                None => return Ok(true),
            }
        }
        Ok(false)
    }

    /// The next claim ticket and the pool's slot count (see [`ClaimRules::use_ticket`]).
    async fn next_ticket(&self, deadline: Instant) -> Result<Ticket, StoreError> {
        let req = self
            .client
            .update_item()
            .table_name(&self.pairs_table)
            .set_key(Some(pool_key_item()))
            .update_expression("ADD #n :one")
            .expression_attribute_names("#n", attr::TICKET)
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew);
        let out = self
            .retrying(deadline, || req.clone().send(), map_sdk_error)
            .await?;
        let item = out
            .attributes()
            .ok_or_else(|| StoreError::Corrupt("ticket counter returned nothing".into()))?;
        let ticket = opt_n(item, attr::TICKET)?
            .ok_or_else(|| StoreError::Corrupt("ticket counter returned no value".into()))?;
        Ok(Ticket {
            ticket: ticket.unsigned_abs(),
            slots: opt_n(item, attr::PAIR_SLOTS)?
                .unwrap_or_default()
                .unsigned_abs(),
        })
    }

    /// This transaction's CALLS record, read strongly consistently.
    async fn call_record(
        &self,
        transaction_id: &str,
        deadline: Instant,
    ) -> Result<Option<Item>, StoreError> {
        let req = self
            .client
            .get_item()
            .table_name(&self.calls_table)
            .key(attr::TRANSACTION_ID, s(transaction_id))
            .consistent_read(true);
        let out = self
            .retrying(deadline, || req.clone().send(), map_sdk_error)
            .await?;
        Ok(out.item)
    }

    /// The end of the retry budget of an operation starting now.
    fn deadline(&self) -> Instant {
        Instant::now() + self.config.retry_budget
    }

    /// Sends a request until it is answered, retrying transient failures (throttling, 5xx,
    /// timeouts, dropped connections) with jittered exponential backoff while `deadline` allows
    /// another try, and no longer: a backoff that would end past the deadline returns the last
    /// error instead. Every attempt is bounded by what is left of the budget. Answers other
    /// than transient failures (conditional-check failures included) return at once, through
    /// `map_err` when they are errors. Every request here is safe to repeat: conditional writes
    /// tell a repeat of their own success apart (see `attempt_single`, `classify_cancellation`),
    /// releases and lookups are conditional on the owner, and the rest are plain sets.
    async fn retrying<T, E, F, Fut>(
        &self,
        deadline: Instant,
        send: F,
        map_err: impl Fn(SdkError<E, HttpResponse>) -> StoreError,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.retrying_when(deadline, send, map_err, is_transient_sdk_error)
            .await
    }

    /// [`retrying`](Self::retrying) with its own test of what is transient.
    async fn retrying_when<T, E, F, Fut>(
        &self,
        deadline: Instant,
        mut send: F,
        map_err: impl Fn(SdkError<E, HttpResponse>) -> StoreError,
        transient: impl Fn(&SdkError<E, HttpResponse>) -> bool,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut retries = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            self.count_request();
            // Boxed: the SDK's request future is dozens of state machines deep, and every
            // async fn that awaits a store operation would otherwise nest it inside its own
            // layout, past the compiler's default depth in the crates that use the store.
            let err = match tokio::time::timeout(remaining, Box::pin(send())).await {
                Ok(Ok(out)) => return Ok(out),
                Ok(Err(err)) if transient(&err) => map_err(err),
                Ok(Err(err)) => return Err(map_err(err)),
                Err(_) => {
                    return Err(StoreError::Unavailable(
                        "the retry budget ran out while a request was in flight".into(),
                    ));
                }
            };
            let wait = retry_backoff(retries);
            if Instant::now() + wait >= deadline {
                warn!(retries, error = %err, "transient store error; retry budget spent");
                return Err(err);
            }
            retries += 1;
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            debug!(retries, wait_ms = wait.as_millis() as u64, error = %err, "retrying a transient store error");
            tokio::time::sleep(wait).await;
        }
    }

    /// Every held pair whose claim names `transaction_id`, with its lease, from the `in_use`
    /// index (a filter on the holder: it reads the held pairs, a few KB for hundreds of pairs).
    async fn held_pairs_of(
        &self,
        transaction_id: &str,
        deadline: Instant,
    ) -> Result<Vec<(PairKey, Option<i64>)>, StoreError> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let req = self
                .client
                .query()
                .table_name(&self.pairs_table)
                .index_name(PAIRS_INDEX)
                .key_condition_expression("#u = :t")
                .filter_expression("#tx = :tx")
                .expression_attribute_names("#u", attr::IN_USE)
                .expression_attribute_names("#tx", attr::TRANSACTION_ID)
                .expression_attribute_names("#s", attr::SMA_NUMBER)
                .expression_attribute_names("#c", attr::CONNECT_NUMBER)
                .expression_attribute_names("#l", attr::LEASE_EXPIRES_AT)
                .expression_attribute_values(":t", s(IN_USE_TRUE))
                .expression_attribute_values(":tx", s(transaction_id))
                .projection_expression("#s, #c, #l")
                .set_exclusive_start_key(start.take());
            let out = self
                .retrying(deadline, || req.clone().send(), map_sdk_error)
                .await?;
            for item in out.items() {
                found.push((pair_key_of(item)?, opt_n(item, attr::LEASE_EXPIRES_AT)?));
            }
            match out.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(found),
            }
        }
    }
}

/// Full-jitter exponential backoff for the deadline-bound retries: uniform in
/// `0..=min(25 ms × 2^retries, 400 ms)`. Short, because a caller is listening to silence; many,
/// because the budget, not a count, ends them.
pub fn retry_backoff(retries: u32) -> Duration {
    let cap_ms = 25u64.saturating_mul(1 << retries.min(5)).min(400);
    let jitter = strategy::mix(
        u64::from(retries),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos().into())
            .unwrap_or_default(),
    );
    Duration::from_millis(jitter % (cap_ms + 1))
}

/// The claim primitives of one claim: the store, and the end of that claim's retry budget,
/// which every request of the claim shares.
struct Budgeted<'a> {
    store: &'a DynamoStore,
    deadline: Instant,
}

impl std::ops::Deref for Budgeted<'_> {
    type Target = DynamoStore;
    fn deref(&self) -> &DynamoStore {
        self.store
    }
}

const PAIRS_INDEX: &str = "in_use";

/// `sma_number` and `connect_number` of the pool item in the PAIRS table: the claim-ticket counter
/// and the number of slots dealt to pairs. It has no `in_use`, so it is not in the index and
/// never a candidate; it is not a phone number, so the seeder never writes it as a pair. Tools
/// that scan the table should skip keys starting with `#`.
pub const POOL_KEY: &str = "#pool";

pub(crate) fn pool_key_item() -> Item {
    pair_key_item(&PairKey {
        sma_number: POOL_KEY.to_owned(),
        connect_number: POOL_KEY.to_owned(),
    })
}

impl ClaimPrimitives for Budgeted<'_> {
    fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    async fn settle(&self, ms: i64) {
        let wait = Duration::from_millis(u64::try_from(ms).unwrap_or_default());
        // Never past the claim's budget: the read after it must still fit.
        if Instant::now() + wait < self.deadline {
            tokio::time::sleep(wait).await;
        }
    }

    /// The ticket is an `UpdateItem ADD` on the pool item, sent in parallel with the index query.
    async fn free_pairs(
        &self,
        take_ticket: bool,
        transaction_id: &str,
        now_s: i64,
    ) -> Result<(Option<Ticket>, FreePairs), StoreError> {
        let free = self.free_candidates(self.deadline, transaction_id, now_s);
        if !take_ticket {
            return Ok((None, free.await?));
        }
        let (ticket, free) = futures::join!(self.next_ticket(self.deadline), free);
        // A failing counter only costs the spread, not the claim.
        let ticket = ticket
            .inspect_err(|e| warn!(error = %e, "claim ticket unavailable"))
            .ok();
        Ok((ticket, free?))
    }

    /// Held pairs whose lease ran out (or that carry none, e.g. items left by the seed's code).
    /// A filter applies after the page limit, so a few pages are read at most.
    async fn expired_pairs(&self, now_s: i64) -> Result<Vec<Candidate>, StoreError> {
        let req = self
            .client
            .query()
            .table_name(&self.pairs_table)
            .index_name(PAIRS_INDEX)
            .key_condition_expression("#u = :t")
            .filter_expression("attribute_not_exists(#l) OR #l <= :now")
            .expression_attribute_names("#u", attr::IN_USE)
            .expression_attribute_names("#l", attr::LEASE_EXPIRES_AT)
            .expression_attribute_names("#s", attr::SMA_NUMBER)
            .expression_attribute_names("#c", attr::CONNECT_NUMBER)
            .expression_attribute_values(":t", s(IN_USE_TRUE))
            .expression_attribute_values(":now", n(now_s))
            .expression_attribute_names("#slot", attr::SLOT)
            .projection_expression("#s, #c, #slot")
            .limit(self.config.candidates.max(1).saturating_mul(4));
        let deadline = self.deadline;
        let mut found = Vec::new();
        self.read_pages(
            move |start| {
                let page = req.clone().set_exclusive_start_key(start);
                async move {
                    let out = self
                        .retrying(deadline, || page.clone().send(), map_sdk_error)
                        .await?;
                    Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
                }
            },
            |item| {
                found.push(candidate_of(item)?);
                Ok(found.len())
            },
        )
        .await?;
        Ok(found)
    }

    /// One scan of the `in_use` index (every pair is in it; the pool item is not), filtered by
    /// the claim write's condition ([`CLAIMABLE`]): free pairs that are not resting, and held
    /// pairs whose lease ran out. The projected keys and slots of a few hundred pairs fit one
    /// page, so this is one request; a larger pool reads on while fewer than
    /// [`ClaimConfig::candidates`] free pairs were found, at most
    /// [`ClaimConfig::max_expired_pages`] pages.
    async fn claimable_pairs(
        &self,
        transaction_id: &str,
        now_s: i64,
    ) -> Result<ClaimablePairs, StoreError> {
        let req = self
            .client
            .scan()
            .table_name(&self.pairs_table)
            .index_name(PAIRS_INDEX)
            .filter_expression(CLAIMABLE)
            .expression_attribute_names("#s", attr::SMA_NUMBER)
            .expression_attribute_names("#c", attr::CONNECT_NUMBER)
            .expression_attribute_names("#slot", attr::SLOT)
            .expression_attribute_names("#u", attr::IN_USE)
            .expression_attribute_names("#l", attr::LEASE_EXPIRES_AT)
            .expression_attribute_names("#cid", attr::CONTACT_ID)
            .expression_attribute_names("#rat", attr::RELEASED_AT)
            .expression_attribute_names("#rby", attr::RELEASED_BY)
            .expression_attribute_values(":t", s(IN_USE_TRUE))
            .expression_attribute_values(":f", s(IN_USE_FALSE))
            .expression_attribute_values(":tx", s(transaction_id))
            .expression_attribute_values(":now", n(now_s))
            .expression_attribute_values(
                ":edge",
                n(now_s.saturating_sub(self.config.rules.reuse_quiet_seconds)),
            )
            .projection_expression("#s, #c, #slot, #u");
        let deadline = self.deadline;
        let mut claimable = ClaimablePairs::default();
        self.read_pages(
            move |start| {
                let page = req.clone().set_exclusive_start_key(start);
                async move {
                    let out = self
                        .retrying(deadline, || page.clone().send(), map_sdk_error)
                        .await?;
                    Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
                }
            },
            |item| {
                let candidate = candidate_of(item)?;
                if opt_s(item, attr::IN_USE) == Some(IN_USE_FALSE) {
                    claimable.free.push(candidate);
                } else {
                    claimable.expired.push(candidate);
                }
                Ok(claimable.free.len())
            },
        )
        .await?;
        Ok(claimable)
    }

    /// One conditional claim of `pair`, atomically with this transaction's CALLS record.
    /// `replacing`: the pair a previous, no longer live claim of this transaction recorded.
    async fn attempt(
        &self,
        pair: &PairKey,
        request: &ClaimRequest,
        now_ms: i64,
        lease_expires_at: i64,
        replacing: Option<&PairKey>,
    ) -> Result<ClaimAttempt, StoreError> {
        let now_s = now_ms.div_euclid(1000);
        let pair_update = Update::builder()
            .table_name(&self.pairs_table)
            .set_key(Some(pair_key_item(pair)))
            // A new claim drops the previous holder's contact binding but keeps
            // `released_contact_id` (see `lookup`).
            .update_expression(CLAIM_UPDATE)
            // Free and not resting after an unbound release (see `ClaimRules::
            // reuse_quiet_seconds`), or held by a claim that is no longer live.
            .condition_expression(CLAIMABLE)
            .set_expression_attribute_names(Some(claim_names()))
            .set_expression_attribute_values(Some(self.claim_values(
                request,
                now_ms,
                lease_expires_at,
            )))
            .build()
            .map_err(|e| StoreError::Other(Box::new(e)))?;

        let mut calls_update = Update::builder()
            .table_name(&self.calls_table)
            .key(attr::TRANSACTION_ID, s(&request.transaction_id))
            .update_expression("SET #s = :s, #c = :c, #at = :at, #exp = :exp")
            .expression_attribute_names("#s", attr::SMA_NUMBER)
            .expression_attribute_names("#c", attr::CONNECT_NUMBER)
            .expression_attribute_names("#at", attr::CLAIMED_AT)
            .expression_attribute_names("#exp", attr::EXPIRES_AT)
            .expression_attribute_values(":s", s(&pair.sma_number))
            .expression_attribute_values(":c", s(&pair.connect_number))
            .expression_attribute_values(":at", n(now_ms))
            .expression_attribute_values(
                ":exp",
                n(now_s.saturating_add(self.config.call_record_ttl_seconds)),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        calls_update = match replacing {
            None => calls_update.condition_expression("attribute_not_exists(#s)"),
            Some(old) => calls_update
                .condition_expression("#s = :olds AND #c = :oldc")
                .expression_attribute_values(":olds", s(&old.sma_number))
                .expression_attribute_values(":oldc", s(&old.connect_number)),
        };
        let calls_update = calls_update
            .build()
            .map_err(|e| StoreError::Other(Box::new(e)))?;

        self.counters
            .claim_write_attempts
            .fetch_add(1, Ordering::Relaxed);
        let req = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(pair_update).build())
            .transact_items(TransactWriteItem::builder().update(calls_update).build());
        // A cancellation is an answer, sorted by `classify_cancellation`; only one caused by
        // throttling comes back as a (transient) error, and is retried like any other.
        let attempt = self
            .retrying_when(
                self.deadline,
                || {
                    let req = req.clone();
                    async move {
                        match req.send().await {
                            Ok(_) => Ok(Ok(())),
                            Err(SdkError::ServiceError(e))
                                if matches!(
                                    e.err(),
                                    TransactWriteItemsError::TransactionCanceledException(tce)
                                        if !cancelled_by_throttling(tce)
                                ) =>
                            {
                                Ok(Err(SdkError::ServiceError(e)))
                            }
                            Err(err) => Err(err),
                        }
                    }
                },
                |err| {
                    classify_cancellation(err).err().unwrap_or_else(|| {
                        StoreError::Other("transaction cancelled for no reason given".into())
                    })
                },
                |err| {
                    is_transient_sdk_error(err)
                        || matches!(err, SdkError::ServiceError(e) if matches!(
                            e.err(),
                            TransactWriteItemsError::TransactionCanceledException(tce)
                                if cancelled_by_throttling(tce)
                        ))
                },
            )
            .await?;
        match attempt {
            Ok(()) => Ok(ClaimAttempt::Won(Claim {
                pair: pair.clone(),
                transaction_id: request.transaction_id.clone(),
                lease_expires_at,
            })),
            Err(cancelled) => classify_cancellation(cancelled),
        }
    }

    /// This transaction's claim of `pair`, if it is still live.
    async fn live_claim_of(
        &self,
        pair: &PairKey,
        transaction_id: &str,
        now_s: i64,
    ) -> Result<Option<Claim>, StoreError> {
        let req = self
            .client
            .get_item()
            .table_name(&self.pairs_table)
            .set_key(Some(pair_key_item(pair)))
            .consistent_read(true);
        let out = self
            .retrying(self.deadline, || req.clone().send(), map_sdk_error)
            .await?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let lease = opt_n(item, attr::LEASE_EXPIRES_AT)?;
        let live = opt_s(item, attr::IN_USE) == Some(IN_USE_TRUE)
            && opt_s(item, attr::TRANSACTION_ID) == Some(transaction_id)
            && strategy::is_live(lease, now_s);
        Ok(live.then(|| Claim {
            pair: pair.clone(),
            transaction_id: transaction_id.to_owned(),
            lease_expires_at: lease.unwrap_or_default(),
        }))
    }

    /// The pair this transaction's CALLS record names (strongly consistent).
    async fn recorded_pair(&self, transaction_id: &str) -> Result<Option<PairKey>, StoreError> {
        self.call_record(transaction_id, self.deadline)
            .await?
            .as_ref()
            .map(recorded_pair_of)
            .transpose()
            .map(Option::flatten)
    }

    /// One conditional `UpdateItem` on the pair: one write unit, no transaction. A failed
    /// condition returns the item as it is (`ALL_OLD`), which tells a pair held by someone else
    /// from one this transaction already holds (a re-delivery that picked the same pair: its
    /// claim is answered unchanged, contact binding and lease included).
    async fn attempt_single(
        &self,
        pair: &PairKey,
        request: &ClaimRequest,
        now_ms: i64,
        lease_expires_at: i64,
    ) -> Result<ClaimAttempt, StoreError> {
        let now_s = now_ms.div_euclid(1000);
        let req = self
            .client
            .update_item()
            .table_name(&self.pairs_table)
            .set_key(Some(pair_key_item(pair)))
            .update_expression(CLAIM_UPDATE)
            .condition_expression(CLAIMABLE)
            .set_expression_attribute_names(Some(claim_names()))
            .set_expression_attribute_values(Some(self.claim_values(
                request,
                now_ms,
                lease_expires_at,
            )))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        self.counters
            .claim_write_attempts
            .fetch_add(1, Ordering::Relaxed);
        let answer = self
            .retrying(
                self.deadline,
                || {
                    let req = req.clone();
                    async move {
                        match req.send().await {
                            Ok(_) => Ok(None),
                            Err(SdkError::ServiceError(e))
                                if matches!(
                                    e.err(),
                                    UpdateItemError::ConditionalCheckFailedException(_)
                                ) =>
                            {
                                let UpdateItemError::ConditionalCheckFailedException(ccf) =
                                    e.into_err()
                                else {
                                    return Ok(Some(None));
                                };
                                Ok(Some(ccf.item))
                            }
                            Err(err) => Err(err),
                        }
                    }
                },
                map_sdk_error,
            )
            .await?;
        let Some(held) = answer else {
            return Ok(ClaimAttempt::Won(Claim {
                pair: pair.clone(),
                transaction_id: request.transaction_id.clone(),
                lease_expires_at,
            }));
        };
        let own_live_lease = held.as_ref().and_then(|item| {
            let lease = opt_n(item, attr::LEASE_EXPIRES_AT).ok().flatten();
            (opt_s(item, attr::IN_USE) == Some(IN_USE_TRUE)
                && opt_s(item, attr::TRANSACTION_ID) == Some(request.transaction_id.as_str())
                && strategy::is_live(lease, now_s))
            .then_some(lease)
            .flatten()
        });
        Ok(match own_live_lease {
            Some(lease) => ClaimAttempt::Won(Claim {
                pair: pair.clone(),
                transaction_id: request.transaction_id.clone(),
                lease_expires_at: lease,
            }),
            None => ClaimAttempt::PairTaken {
                claimed_at_ms: held.as_ref().and_then(claimed_at_ms_of),
            },
        })
    }

    async fn held_by(&self, transaction_id: &str, now_s: i64) -> Result<Option<Claim>, StoreError> {
        Ok(self
            .held_pairs_of(transaction_id, self.deadline)
            .await?
            .into_iter()
            .find(|(_, lease)| strategy::is_live(*lease, now_s))
            .map(|(pair, lease)| Claim {
                pair,
                transaction_id: transaction_id.to_owned(),
                lease_expires_at: lease.unwrap_or_default(),
            }))
    }

    fn pool_view(&self) -> Option<&Mutex<PoolView>> {
        Some(&self.store.view)
    }
}

/// The claim's update: the pair held by the request's transaction with a fresh lease. A new
/// claim drops the previous holder's contact binding but keeps `released_contact_id` (see
/// `lookup`).
const CLAIM_UPDATE: &str = "SET #u = :t, #tx = :tx, #from = :from, #to = :to, #ts = :ts, \
                            #l = :lease REMOVE #cid, #rat, #rby";

/// Free and not resting after an unbound release (see `ClaimRules::reuse_quiet_seconds`), or
/// held by a claim that is no longer live.
/// A free pair a claim may take: its last release was bound by a lookup, or is older than the
/// quiet time, or was this transaction's own (the free half of [`CLAIMABLE`]).
const NOT_RESTING: &str =
    "attribute_exists(#cid) OR attribute_not_exists(#rat) OR #rat <= :edge OR #rby = :tx";

const CLAIMABLE: &str = "attribute_exists(#s) AND ((#u = :f AND (attribute_exists(#cid) \
                         OR attribute_not_exists(#rat) OR #rat <= :edge OR #rby = :tx)) \
                         OR (#u = :t AND (attribute_not_exists(#l) OR #l <= :now)))";

impl PairStore for DynamoStore {
    /// The shared claim strategy ([`strategy::claim`]) over this store's primitives.
    async fn claim(&self, request: &ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        self.claim_new_call(request, Delivery::First).await
    }

    /// Concurrent claims of one transaction in this process take turns, so a duplicate that
    /// arrives while the first is still writing finds its pair in the view's memory.
    async fn claim_new_call(
        &self,
        request: &ClaimRequest,
        delivery: Delivery,
    ) -> Result<ClaimOutcome, StoreError> {
        let turn = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(in_flight.entry(request.transaction_id.clone()).or_default())
        };
        let deadline = self.deadline();
        if delivery == Delivery::First && self.config.rules.fast_path {
            self.read_view_once(deadline).await;
        }
        let outcome = {
            let _turn = turn.lock().await;
            let call = Budgeted {
                store: self,
                deadline,
            };
            strategy::claim_for(&call, &self.config.rules, request, delivery).await
        };
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            // Only the map and this claim still hold the turn: nobody is waiting for it.
            if Arc::strong_count(&turn) <= 2 {
                in_flight.remove(&request.transaction_id);
            }
        }
        let outcome = outcome?;
        let counter = match outcome {
            ClaimOutcome::Claimed(_) => &self.counters.claims,
            ClaimOutcome::Busy => &self.counters.busy,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(outcome)
    }

    async fn release(
        &self,
        pair: &PairKey,
        transaction_id: &str,
    ) -> Result<ReleaseOutcome, StoreError> {
        let req = self
            .client
            .update_item()
            .table_name(&self.pairs_table)
            .set_key(Some(pair_key_item(pair)))
            // `contact_id` stays: it tells the next claim whether a lookup bound this claim.
            .update_expression(
                "SET #u = :f, #rat = :now, #rby = :tx REMOVE #tx, #l, #from, #to, #ts",
            )
            .condition_expression("#u = :t AND #tx = :tx")
            .expression_attribute_names("#u", attr::IN_USE)
            .expression_attribute_names("#tx", attr::TRANSACTION_ID)
            .expression_attribute_names("#l", attr::LEASE_EXPIRES_AT)
            .expression_attribute_names("#rat", attr::RELEASED_AT)
            .expression_attribute_names("#rby", attr::RELEASED_BY)
            .expression_attribute_values(":now", n((self.clock)().div_euclid(1000)))
            .expression_attribute_names("#from", attr::ORIGINAL_CALLING_NUMBER)
            .expression_attribute_names("#to", attr::ORIGINAL_CALLED_NUMBER)
            .expression_attribute_names("#ts", attr::CALL_TIMESTAMP)
            .expression_attribute_values(":t", s(IN_USE_TRUE))
            .expression_attribute_values(":f", s(IN_USE_FALSE))
            .expression_attribute_values(":tx", s(transaction_id))
            // Whether a lookup had bound the claim: then the pair is reusable at once.
            .return_values(ReturnValue::AllOld);
        let result = self
            .retrying(
                self.deadline(),
                || {
                    let req = req.clone();
                    async move {
                        match req.send().await {
                            Ok(out) => Ok(Ok(out
                                .attributes()
                                .is_some_and(|item| item.contains_key(attr::CONTACT_ID)))),
                            Err(SdkError::ServiceError(e))
                                if matches!(
                                    e.err(),
                                    UpdateItemError::ConditionalCheckFailedException(_)
                                ) =>
                            {
                                Ok(Err(()))
                            }
                            Err(err) => Err(err),
                        }
                    }
                },
                map_sdk_error,
            )
            .await?;
        match result {
            Ok(looked_up) => {
                if looked_up {
                    strategy::lock_view(&self.view).freed(pair);
                }
                info!(
                    sma_number = %mask_number(&pair.sma_number),
                    connect_number = %mask_number(&pair.connect_number),
                    "pair released"
                );
                Ok(ReleaseOutcome::Released)
            }
            // Already free (a repeat of this very release included), or owned by another
            // transaction now: nothing to do.
            Err(()) => {
                debug!("release: pair not held by this transaction");
                Ok(ReleaseOutcome::NotHeld)
            }
        }
    }

    /// A pair held by this transaction, found by its holder in the `in_use` index: a claim
    /// that landed while its caller timed out is there, with or without a CALLS record. The
    /// index is eventually consistent; the event that asks (the call's next one) comes seconds
    /// after the claim, long after the index caught up.
    async fn claimed_pair(&self, transaction_id: &str) -> Result<Option<PairKey>, StoreError> {
        Ok(self
            .held_pairs_of(transaction_id, self.deadline())
            .await?
            .into_iter()
            .next()
            .map(|(pair, _)| pair))
    }

    /// One conditional `UpdateItem` (strongly consistent by nature) both checks that the claim is
    /// live and binds the contact; in release-on-lookup mode the same write frees the pair.
    ///
    /// Connect retries a lookup that failed or timed out. In release-on-lookup mode the first
    /// attempt may have freed the pair already, so the freeing write leaves `contact_id` and
    /// `released_contact_id` behind: a retry from the same contact gets the same answer (flagged
    /// `released`) while the pair is still free. `released_contact_id` survives a later claim,
    /// so a late retry can never be handed the *next* caller's transaction: it gets `None`.
    async fn lookup(
        &self,
        pair: &PairKey,
        contact_id: &str,
        mode: LookupMode,
    ) -> Result<Option<LiveClaim>, StoreError> {
        let now_s = (self.clock)().div_euclid(1000);
        let (update, returns) = match mode {
            LookupMode::KeepClaim => ("SET #cid = :cid", ReturnValue::AllNew),
            LookupMode::ReleaseOnLookup => (
                "SET #u = :f, #cid = :cid, #rcid = :cid REMOVE #l",
                ReturnValue::AllOld,
            ),
        };
        let mut req = self
            .client
            .update_item()
            .table_name(&self.pairs_table)
            .set_key(Some(pair_key_item(pair)))
            .update_expression(update)
            .condition_expression(
                "#u = :t AND #l > :now AND (attribute_not_exists(#rcid) OR #rcid <> :cid)",
            )
            .expression_attribute_names("#u", attr::IN_USE)
            .expression_attribute_names("#l", attr::LEASE_EXPIRES_AT)
            .expression_attribute_names("#cid", attr::CONTACT_ID)
            .expression_attribute_names("#rcid", attr::RELEASED_CONTACT_ID)
            .expression_attribute_values(":t", s(IN_USE_TRUE))
            .expression_attribute_values(":now", n(now_s))
            .expression_attribute_values(":cid", s(contact_id))
            .return_values(returns)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if mode == LookupMode::ReleaseOnLookup {
            req = req.expression_attribute_values(":f", s(IN_USE_FALSE));
        }
        let answer = self
            .retrying(
                self.deadline(),
                || {
                    let req = req.clone();
                    async move {
                        match req.send().await {
                            Ok(out) => Ok(Ok(out)),
                            Err(SdkError::ServiceError(e))
                                if matches!(
                                    e.err(),
                                    UpdateItemError::ConditionalCheckFailedException(_)
                                ) =>
                            {
                                Ok(Err(e.into_err()))
                            }
                            Err(err) => Err(err),
                        }
                    }
                },
                map_sdk_error,
            )
            .await?;
        match answer {
            Ok(out) => {
                let item = out.attributes().ok_or_else(|| {
                    StoreError::Corrupt("lookup update returned no attributes".into())
                })?;
                let released = mode == LookupMode::ReleaseOnLookup;
                live_claim_of(pair, item, contact_id, released).map(Some)
            }
            Err(failed) => {
                let UpdateItemError::ConditionalCheckFailedException(ccf) = &failed else {
                    return Ok(None);
                };
                // A retry of a lookup that already freed the pair for this very contact.
                match ccf.item() {
                    Some(item)
                        if opt_s(item, attr::IN_USE) == Some(IN_USE_FALSE)
                            && opt_s(item, attr::RELEASED_CONTACT_ID) == Some(contact_id)
                            && opt_s(item, attr::CONTACT_ID) == Some(contact_id)
                            && opt_s(item, attr::TRANSACTION_ID).is_some() =>
                    {
                        debug!("lookup retried after release-on-lookup");
                        live_claim_of(pair, item, contact_id, true).map(Some)
                    }
                    _ => Ok(None),
                }
            }
        }
    }
}

impl CallStore for DynamoStore {
    /// Touches only the transfer attributes: the claim's attributes (and the claim's own
    /// idempotency) are left alone, and a claim later on does not erase the intent.
    async fn record_transfer_intent(
        &self,
        transaction_id: &str,
        intent: &TransferIntent,
    ) -> Result<(), StoreError> {
        let now_ms = (self.clock)();
        let ttl = now_ms
            .div_euclid(1000)
            .saturating_add(self.config.call_record_ttl_seconds);
        let mut req = self
            .client
            .update_item()
            .table_name(&self.calls_table)
            .key(attr::TRANSACTION_ID, s(transaction_id))
            .expression_attribute_names("#uri", attr::TRANSFER_TARGET_URI)
            .expression_attribute_names("#arn", attr::TRANSFER_TARGET_ARN)
            .expression_attribute_names("#cid", attr::TRANSFER_CONTACT_ID)
            .expression_attribute_names("#at", attr::TRANSFER_RECORDED_AT)
            .expression_attribute_names("#exp", attr::EXPIRES_AT)
            .expression_attribute_values(":uri", s(&intent.target_uri))
            .expression_attribute_values(":arn", s(&intent.target_arn))
            .expression_attribute_values(":at", n(now_ms))
            .expression_attribute_values(":exp", n(ttl));
        req = match &intent.contact_id {
            Some(cid) => req
                .update_expression(
                    "SET #uri = :uri, #arn = :arn, #cid = :cid, #at = :at, \
                     #exp = if_not_exists(#exp, :exp)",
                )
                .expression_attribute_values(":cid", s(cid)),
            None => req.update_expression(
                "SET #uri = :uri, #arn = :arn, #at = :at, #exp = if_not_exists(#exp, :exp) \
                 REMOVE #cid",
            ),
        };
        self.retrying(self.deadline(), || req.clone().send(), map_sdk_error)
            .await?;
        Ok(())
    }

    async fn transfer_intent(
        &self,
        transaction_id: &str,
    ) -> Result<Option<TransferIntent>, StoreError> {
        let Some(item) = self.call_record(transaction_id, self.deadline()).await? else {
            return Ok(None);
        };
        let item = &item;
        let Some(target_uri) = opt_s(item, attr::TRANSFER_TARGET_URI) else {
            return Ok(None);
        };
        Ok(Some(TransferIntent {
            target_uri: target_uri.to_owned(),
            target_arn: opt_s(item, attr::TRANSFER_TARGET_ARN)
                .unwrap_or_default()
                .to_owned(),
            contact_id: opt_s(item, attr::TRANSFER_CONTACT_ID).map(str::to_owned),
        }))
    }
}

/// Whether a cancelled transaction was cancelled because an item was throttled: that is a
/// transient failure to retry, not an answer.
fn cancelled_by_throttling(
    tce: &aws_sdk_dynamodb::types::error::TransactionCanceledException,
) -> bool {
    tce.cancellation_reasons()
        .iter()
        .any(|r| r.code().is_some_and(is_throttling_code))
}

/// When the holder of a pair item claimed it (its claim's call timestamp), if the item says.
fn claimed_at_ms_of(item: &Item) -> Option<i64> {
    opt_n(item, attr::CALL_TIMESTAMP).ok().flatten()
}

/// Sorts a failed `TransactWriteItems` into "pair taken", "pair inside another transaction",
/// "transaction already has a pair", "concurrent write on the CALLS record", or a
/// [`StoreError`]. Reasons come in item order: 0 = pair, 1 = CALLS record.
fn classify_cancellation(
    err: SdkError<TransactWriteItemsError>,
) -> Result<ClaimAttempt, StoreError> {
    let reasons = match &err {
        SdkError::ServiceError(e) => match e.err() {
            TransactWriteItemsError::TransactionCanceledException(tce) => {
                tce.cancellation_reasons().to_vec()
            }
            _ => return Err(map_sdk_error(err)),
        },
        _ => return Err(map_sdk_error(err)),
    };
    let code = |i: usize| {
        reasons
            .get(i)
            .and_then(|r| r.code())
            .unwrap_or("None")
            .to_owned()
    };
    let (pair_code, calls_code) = (code(0), code(1));
    if [&pair_code, &calls_code]
        .iter()
        .any(|c| is_throttling_code(c))
    {
        return Err(StoreError::Throttled(Box::new(err)));
    }
    if calls_code == "ConditionalCheckFailed" {
        let recorded = reasons
            .get(1)
            .and_then(|r| r.item())
            .map(recorded_pair_of)
            .transpose()?
            .flatten();
        return Ok(match recorded {
            Some(pair) => ClaimAttempt::AlreadyHas(pair),
            // The condition failed but the item names no pair: only possible when a concurrent
            // write changed it between; read it again.
            None => ClaimAttempt::RecordConflict,
        });
    }
    if calls_code == "TransactionConflict" {
        return Ok(ClaimAttempt::RecordConflict);
    }
    match pair_code.as_str() {
        "ConditionalCheckFailed" => Ok(ClaimAttempt::PairTaken {
            claimed_at_ms: reasons
                .first()
                .and_then(|r| r.item())
                .and_then(claimed_at_ms_of),
        }),
        "TransactionConflict" => Ok(ClaimAttempt::PairContended),
        _ => Err(StoreError::Other(Box::new(err))),
    }
}

pub(crate) fn pair_key_item(pair: &PairKey) -> Item {
    HashMap::from([
        (attr::SMA_NUMBER.to_owned(), s(&pair.sma_number)),
        (attr::CONNECT_NUMBER.to_owned(), s(&pair.connect_number)),
    ])
}

fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    }
}

fn req_s(item: &Item, name: &str) -> Result<String, StoreError> {
    opt_s(item, name)
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Corrupt(format!("missing or non-string attribute {name}")))
}

fn opt_n(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("attribute {name} is not an integer"))),
        Some(_) => Err(StoreError::Corrupt(format!(
            "attribute {name} is not a number"
        ))),
    }
}

fn pair_key_of(item: &Item) -> Result<PairKey, StoreError> {
    Ok(PairKey {
        sma_number: req_s(item, attr::SMA_NUMBER)?,
        connect_number: req_s(item, attr::CONNECT_NUMBER)?,
    })
}

fn candidate_of(item: &Item) -> Result<Candidate, StoreError> {
    Ok(Candidate {
        slot: opt_n(item, attr::SLOT)?.map(i64::unsigned_abs),
        pair: pair_key_of(item)?,
    })
}

/// The pair a CALLS item names, if any.
fn recorded_pair_of(item: &Item) -> Result<Option<PairKey>, StoreError> {
    if item.contains_key(attr::SMA_NUMBER) {
        pair_key_of(item).map(Some)
    } else {
        Ok(None)
    }
}

fn live_claim_of(
    pair: &PairKey,
    item: &Item,
    contact_id: &str,
    released: bool,
) -> Result<LiveClaim, StoreError> {
    Ok(LiveClaim {
        pair: pair.clone(),
        transaction_id: req_s(item, attr::TRANSACTION_ID)?,
        original_calling_number: opt_s(item, attr::ORIGINAL_CALLING_NUMBER)
            .unwrap_or_default()
            .to_owned(),
        original_called_number: opt_s(item, attr::ORIGINAL_CALLED_NUMBER)
            .unwrap_or_default()
            .to_owned(),
        call_timestamp_ms: opt_n(item, attr::CALL_TIMESTAMP)?.unwrap_or_default(),
        contact_id: Some(contact_id.to_owned()),
        released,
    })
}

/// Exponential backoff with full jitter for batch retries (`UnprocessedItems`/`Keys`).
pub(crate) fn backoff(attempt: u32) -> Duration {
    let cap_ms = 50u64.saturating_mul(1 << attempt.min(6));
    let jitter = strategy::mix(
        u64::from(attempt),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos().into())
            .unwrap_or_default(),
    );
    Duration::from_millis(cap_ms / 2 + jitter % (cap_ms / 2 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_codes() {
        assert!(is_throttling_code("ThrottlingError"));
        assert!(is_throttling_code("ProvisionedThroughputExceededException"));
        assert!(!is_throttling_code("ConditionalCheckFailed"));
    }

    #[test]
    fn a_lost_writes_old_item_tells_when_its_holder_claimed() {
        let held: Item = HashMap::from([
            (attr::IN_USE.to_owned(), s(IN_USE_TRUE)),
            (attr::CALL_TIMESTAMP.to_owned(), n(1_796_000_000_123_i64)),
        ]);
        assert_eq!(claimed_at_ms_of(&held), Some(1_796_000_000_123));
        let free: Item = HashMap::from([(attr::IN_USE.to_owned(), s(IN_USE_FALSE))]);
        assert_eq!(claimed_at_ms_of(&free), None);
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert!(backoff(0) <= Duration::from_millis(50));
        assert!(backoff(10) <= Duration::from_millis(3200));
        assert!(backoff(10) >= Duration::from_millis(1600));
    }
}
