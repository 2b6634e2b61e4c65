//! The rolling-DNIS pair pool, pure: the storage ports handlers depend on ([`PairStore`],
//! [`CallStore`]), the claim strategy every store follows ([`strategy`]), and the in-memory
//! store ([`memory`]) for unit tests and the emulator's fast mode. The DynamoDB store, which
//! runs in AWS and against DynamoDB Local, is in `takeback-dynamo`.

use std::future::Future;
use std::sync::Arc;

pub mod memory;
pub mod strategy;

pub use takeback_common::StoreError;

/// One rolling-DNIS pair: the SMA number presented as caller id toward the Connect number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PairKey {
    pub sma_number: String,
    pub connect_number: String,
}

/// What the SMA handler knows when it claims a pair for a new inbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// The SMA `TransactionId`: the claim is idempotent per transaction.
    pub transaction_id: String,
    pub original_calling_number: String,
    pub original_called_number: String,
}

/// A pair held by one transaction until `lease_expires_at` (epoch seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub pair: PairKey,
    pub transaction_id: String,
    pub lease_expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    Claimed(Claim),
    /// Every pair is held by a live claim (or the attempt bound was reached).
    Busy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOutcome {
    Released,
    /// Already free, or now owned by another transaction: nothing was changed. Callers treat
    /// this as success.
    NotHeld,
}

/// Whether a Connect lookup keeps the pair held or frees it at once (the flow then carries the
/// transaction id in a contact attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LookupMode {
    #[default]
    KeepClaim,
    ReleaseOnLookup,
}

/// A live claim as Connect sees it: held, lease not expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveClaim {
    pub pair: PairKey,
    pub transaction_id: String,
    pub original_calling_number: String,
    pub original_called_number: String,
    /// Epoch milliseconds of the claim.
    pub call_timestamp_ms: i64,
    pub contact_id: Option<String>,
    /// True when this lookup freed the pair (release-on-lookup mode).
    pub released: bool,
}

/// Where the contact flow asked the call to go, recorded before `UpdateSipMediaApplicationCall`
/// so the SMA handler can finish the transfer even if Connect hangs up first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferIntent {
    pub target_uri: String,
    pub target_arn: String,
    pub contact_id: Option<String>,
}

/// Rolling-DNIS pair claims.
pub trait PairStore: Send + Sync {
    /// Claims a pair for a first delivery of the call's event, or for a re-delivery that
    /// reaches this same store (which remembers its claims); see [`strategy`].
    fn claim(
        &self,
        request: &ClaimRequest,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// Claims a pair for a new call, told whether the event may be a re-delivery (the SMA
    /// handler judges it by the call's age, [`strategy::delivery_of`]): a possible re-delivery
    /// first looks for the pair the transaction already holds. Stores without that distinction
    /// claim as [`claim`](Self::claim) does.
    fn claim_new_call(
        &self,
        request: &ClaimRequest,
        delivery: strategy::Delivery,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send {
        let _ = delivery;
        self.claim(request)
    }

    /// Frees the pair only if `transaction_id` still owns it.
    fn release(
        &self,
        pair: &PairKey,
        transaction_id: &str,
    ) -> impl Future<Output = Result<ReleaseOutcome, StoreError>> + Send;

    /// Strongly consistent; only a live claim matches. Binds `contact_id` to the claim.
    fn lookup(
        &self,
        pair: &PairKey,
        contact_id: &str,
        mode: LookupMode,
    ) -> impl Future<Output = Result<Option<LiveClaim>, StoreError>> + Send;

    /// A pair this transaction's claim holds or its claim record names, whether or not the
    /// claim is still live. A claim write whose outcome the caller never learned (a timeout, a
    /// 5xx) names its pair here if it landed (the DynamoDB store finds it by its holder in the
    /// `in_use` index, which has caught up by the time the next event of the call arrives).
    /// Stores without claim records answer `None`.
    fn claimed_pair(
        &self,
        transaction_id: &str,
    ) -> impl Future<Output = Result<Option<PairKey>, StoreError>> + Send {
        let _ = transaction_id;
        std::future::ready(Ok(None))
    }

    /// Frees whatever this transaction may own, each pair only if this transaction still owns
    /// it ([`release`](Self::release)); `Released` when a pair was freed; safe to repeat.
    /// `known` is the pair the call's state names: the claim's outcome was learned, and a
    /// transaction holds at most one pair, so that pair is all there is to free (one request).
    /// Without it the claim's outcome was never learned (a timeout, a 5xx, a rejected
    /// response): the pair is found by [`claimed_pair`](Self::claimed_pair) first.
    fn release_owned(
        &self,
        transaction_id: &str,
        known: Option<&PairKey>,
    ) -> impl Future<Output = Result<ReleaseOutcome, StoreError>> + Send {
        async move {
            if let Some(pair) = known {
                return self.release(pair, transaction_id).await;
            }
            match self.claimed_pair(transaction_id).await? {
                Some(found) => self.release(&found, transaction_id).await,
                None => Ok(ReleaseOutcome::NotHeld),
            }
        }
    }
}

/// Per-transaction call records (transfer intents).
pub trait CallStore: Send + Sync {
    fn record_transfer_intent(
        &self,
        transaction_id: &str,
        intent: &TransferIntent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn transfer_intent(
        &self,
        transaction_id: &str,
    ) -> impl Future<Output = Result<Option<TransferIntent>, StoreError>> + Send;
}

/// A store shared between a handler and whoever else holds it (tests, the emulator).
impl<S: PairStore + ?Sized> PairStore for Arc<S> {
    fn claim(
        &self,
        request: &ClaimRequest,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send {
        (**self).claim(request)
    }

    fn release(
        &self,
        pair: &PairKey,
        transaction_id: &str,
    ) -> impl Future<Output = Result<ReleaseOutcome, StoreError>> + Send {
        (**self).release(pair, transaction_id)
    }

    fn lookup(
        &self,
        pair: &PairKey,
        contact_id: &str,
        mode: LookupMode,
    ) -> impl Future<Output = Result<Option<LiveClaim>, StoreError>> + Send {
        (**self).lookup(pair, contact_id, mode)
    }

    fn claimed_pair(
        &self,
        transaction_id: &str,
    ) -> impl Future<Output = Result<Option<PairKey>, StoreError>> + Send {
        (**self).claimed_pair(transaction_id)
    }

    fn claim_new_call(
        &self,
        request: &ClaimRequest,
        delivery: strategy::Delivery,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send {
        (**self).claim_new_call(request, delivery)
    }

    fn release_owned(
        &self,
        transaction_id: &str,
        known: Option<&PairKey>,
    ) -> impl Future<Output = Result<ReleaseOutcome, StoreError>> + Send {
        (**self).release_owned(transaction_id, known)
    }
}

impl<S: CallStore + ?Sized> CallStore for Arc<S> {
    fn record_transfer_intent(
        &self,
        transaction_id: &str,
        intent: &TransferIntent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).record_transfer_intent(transaction_id, intent)
    }

    fn transfer_intent(
        &self,
        transaction_id: &str,
    ) -> impl Future<Output = Result<Option<TransferIntent>, StoreError>> + Send {
        (**self).transfer_intent(transaction_id)
    }
}
