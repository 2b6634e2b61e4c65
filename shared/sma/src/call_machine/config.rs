//! Deployment choices the call state machine needs: timeouts, voice, messages, targets.

use crate::target::{TransferPolicy, TransferTarget};
use crate::{CallTimeout, SpeakText, Voice};

/// What the caller hears in each situation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Messages {
    pub busy: SpeakText,
    pub unavailable: SpeakText,
    pub connect_failed: SpeakText,
    pub transfer_hold: SpeakText,
    pub transfer_failed: SpeakText,
}

impl Default for Messages {
    fn default() -> Self {
        let text = |s: &str| SpeakText::parse(s).unwrap_or_else(|_| SpeakText::goodbye());
        Self {
            busy: text(
                "All of our lines are busy right now. Please call again in a few minutes. Goodbye.",
            ),
            unavailable: text(
                "We are sorry, we cannot take your call right now. Please try again later. Goodbye.",
            ),
            connect_failed: text(
                "We are sorry, we could not connect your call. Please try again later. Goodbye.",
            ),
            transfer_hold: text("Please hold while we connect you."),
            transfer_failed: text(
                "We are sorry, we could not complete the transfer. Please try again later. Goodbye.",
            ),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct CallMachineConfig {
    /// Ring time toward the Connect number.
    pub connect_timeout: CallTimeout,
    /// Ring time toward the SIP transfer target.
    pub transfer_timeout: CallTimeout,
    pub voice: Voice,
    pub messages: Messages,
    /// Which targets an update or a recorded intent may name; the same type `connect-transfer`
    /// applies.
    pub targets: TransferPolicy,
    /// Where callers go when no pair is free, the store is down, or Connect cannot be reached,
    /// and once when a transfer target fails. `None`: they hear a message and are hung up.
    pub fallback: Option<TransferTarget>,
    /// How long the caller waits when Connect's leg ends with no transfer intent recorded: the
    /// update is asynchronous and may still arrive (the intent write failed, or another caller
    /// of the API asked for the transfer).
    pub update_grace: UpdateGrace,
}

/// A wait of 0–10,000 ms (a `Pause` on the caller's leg); 0 ends the call at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateGrace(u32);

impl UpdateGrace {
    pub const MAX_MS: u32 = 10_000;
    pub const DEFAULT_MS: u32 = 3_000;

    pub fn millis(ms: u32) -> Option<Self> {
        (ms <= Self::MAX_MS).then_some(Self(ms))
    }

    pub fn as_millis(self) -> u32 {
        self.0
    }
}

impl Default for UpdateGrace {
    fn default() -> Self {
        Self(Self::DEFAULT_MS)
    }
}
