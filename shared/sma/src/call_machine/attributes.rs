//! The call's state as carried in `TransactionAttributes` between invocations (≤ 10 keys,
//! string values).

use std::collections::BTreeMap;

use takeback_pairs::PairKey;

/// Where the call is in the take-back-and-transfer flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallState {
    /// No attributes yet: the first event of the call.
    #[default]
    New,
    /// `CallAndBridge` toward the Connect number is ringing.
    Connecting,
    /// The caller is in the Connect contact flow.
    InConnect,
    /// Transfer requested; the Connect leg is being hung up.
    TransferPending,
    /// Connect's leg ended with no transfer intent recorded: the caller waits (a `Pause`) for
    /// a late, asynchronous `CALL_UPDATE_REQUESTED` before the call ends.
    AwaitingUpdate,
    /// `CallAndBridge` toward the SIP target (or fallback) is ringing.
    Transferring,
    /// Caller bridged to the SIP target.
    Transferred,
    /// We told the caller goodbye and hung up; waiting for the hangup events.
    Ending,
    /// The caller's leg is gone.
    Ended,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Connecting => "connecting",
            Self::InConnect => "in_connect",
            Self::TransferPending => "transfer_pending",
            Self::AwaitingUpdate => "awaiting_update",
            Self::Transferring => "transferring",
            Self::Transferred => "transferred",
            Self::Ending => "ending",
            Self::Ended => "ended",
        }
    }

    /// An unreadable state is treated as `Ending`: no new bridges are started from it, but the
    /// caller's hangup still cleans up.
    fn parse(value: &str) -> Self {
        match value {
            "new" => Self::New,
            "connecting" => Self::Connecting,
            "in_connect" => Self::InConnect,
            "transfer_pending" => Self::TransferPending,
            "awaiting_update" => Self::AwaitingUpdate,
            "transferring" => Self::Transferring,
            "transferred" => Self::Transferred,
            "ended" => Self::Ended,
            _ => Self::Ending,
        }
    }
}

/// Longest value taken from an event into the transaction attributes (phone numbers, call ids).
/// Real values are tens of characters; the SMA refuses a response whose attributes pass its size
/// limit (20 KB), so an absurd value from the event is left out instead of echoed back.
pub const MAX_EVENT_VALUE_CHARS: usize = 128;

/// `value` if it is short and free of control characters, else `None`.
pub fn event_value(value: Option<&String>) -> Option<String> {
    value
        .filter(|v| v.chars().count() <= MAX_EVENT_VALUE_CHARS && !v.chars().any(char::is_control))
        .cloned()
}

pub mod keys {
    pub const STATE: &str = "state";
    pub const CALLER: &str = "caller";
    pub const CALLED: &str = "called";
    pub const SMA_NUMBER: &str = "sma_number";
    pub const CONNECT_NUMBER: &str = "connect_number";
    pub const PAIR_HELD: &str = "pair_held";
    pub const CONNECT_LEG: &str = "connect_leg";
    pub const TARGET_URI: &str = "target_uri";
    pub const TARGET_ARN: &str = "target_arn";
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallAttributes {
    pub state: CallState,
    /// The caller's original number (LEG-A `From`).
    pub caller: Option<String>,
    /// The number the caller dialled (LEG-A `To`).
    pub called: Option<String>,
    pub sma_number: Option<String>,
    pub connect_number: Option<String>,
    /// True while this transaction may still own the pair (release not yet confirmed).
    pub pair_held: bool,
    /// `CallId` of the leg toward Connect, to tell its late events from the target leg's;
    /// remembered from the first event that names it (an update can overtake the bridge's
    /// `ACTION_SUCCESSFUL`).
    pub connect_leg: Option<String>,
    pub target_uri: Option<String>,
    pub target_arn: Option<String>,
}

impl CallAttributes {
    pub fn from_map(map: &BTreeMap<String, String>) -> Self {
        // Only what this handler writes comes back, but the map arrives in an event: a value
        // that cannot be ours is left out rather than echoed past the SMA's size limit.
        let get = |k: &str| event_value(map.get(k).filter(|v| !v.is_empty()));
        if map.is_empty() {
            return Self::default();
        }
        Self {
            state: map
                .get(keys::STATE)
                .map(|s| CallState::parse(s))
                .unwrap_or(CallState::Ending),
            caller: get(keys::CALLER),
            called: get(keys::CALLED),
            sma_number: get(keys::SMA_NUMBER),
            connect_number: get(keys::CONNECT_NUMBER),
            pair_held: map.get(keys::PAIR_HELD).is_some_and(|v| v == "true"),
            connect_leg: get(keys::CONNECT_LEG),
            target_uri: get(keys::TARGET_URI),
            target_arn: get(keys::TARGET_ARN),
        }
    }

    /// Always contains `state`, so the map is never empty; at most 9 keys.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        map.insert(keys::STATE.to_owned(), self.state.as_str().to_owned());
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                map.insert(k.to_owned(), v.clone());
            }
        };
        put(keys::CALLER, &self.caller);
        put(keys::CALLED, &self.called);
        put(keys::SMA_NUMBER, &self.sma_number);
        put(keys::CONNECT_NUMBER, &self.connect_number);
        put(keys::CONNECT_LEG, &self.connect_leg);
        put(keys::TARGET_URI, &self.target_uri);
        put(keys::TARGET_ARN, &self.target_arn);
        map.insert(keys::PAIR_HELD.to_owned(), self.pair_held.to_string());
        map
    }

    pub fn pair(&self) -> Option<PairKey> {
        Some(PairKey {
            sma_number: self.sma_number.clone()?,
            connect_number: self.connect_number.clone()?,
        })
    }

    /// The pair this transaction may still own, if any.
    pub fn held_pair(&self) -> Option<PairKey> {
        self.pair().filter(|_| self.pair_held)
    }
}
