//! The emulator's shared vocabulary, which every other module may use and which uses none of
//! them: the fake account and region, virtual time, the functions, the timeline's lines and
//! findings, what the fake Chime API knows of calls and contacts, the events the SMA and
//! Connect sides schedule for each other, and the speech rate both use for prompts.
//!
//! Nothing here may import another module of the crate (`tests/module_graph.rs` checks that the
//! modules form no cycle).

use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use serde_json::{Map, Value};

/// The account and region the emulated services present.
pub const ACCOUNT_ID: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// Virtual milliseconds since the run started.
pub type Ms = u64;

/// Speech rate used for prompt durations: about 16 characters a second.
pub const MS_PER_CHAR: u64 = 60;
pub const MIN_PROMPT_MS: u64 = 500;

/// How long speaking `text` takes, rounded up to 100 ms.
pub fn speech_ms(text: &str) -> u64 {
    let ms = (text.chars().count() as u64 * MS_PER_CHAR).max(MIN_PROMPT_MS);
    ms.div_ceil(100) * 100
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Who did something, for the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Actor {
    #[serde(rename = "caller")]
    Caller,
    #[serde(rename = "sma")]
    Sma,
    #[serde(rename = "connect")]
    Connect,
    #[serde(rename = "chime_api")]
    ChimeApi,
    #[serde(rename = "target")]
    Target,
    #[serde(rename = "emulator")]
    Emulator,
}

impl Actor {
    pub fn label(self) -> &'static str {
        match self {
            Self::Caller => "caller",
            Self::Sma => "SMA",
            Self::Connect => "Connect",
            Self::ChimeApi => "Chime API",
            Self::Target => "target",
            Self::Emulator => "emulator",
        }
    }
}

/// One line of a call's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    #[serde(skip)]
    pub call: usize,
    pub t_ms: Ms,
    #[serde(skip)]
    pub order: (u64, u64),
    pub actor: Actor,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leg: Option<&'static str>,
    /// An invocation's event type, when this line is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    pub text: String,
    /// Action types the handler returned, when this line is an SMA invocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
    /// This line records a problem.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub problem: bool,
}

/// Something that makes a scenario fail unless it expects it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The call it concerns (index into the run's calls), if any.
    pub call: Option<usize>,
    pub t_ms: Ms,
    /// Rule id (`response.too_many_actions`, `transfer.wrong_caller`, `flow.unsupported_block`, ...).
    pub rule: String,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Function {
    Sma,
    Lookup,
    Transfer,
}

impl Function {
    pub fn label(self) -> &'static str {
        match self {
            Self::Sma => "sma-handler",
            Self::Lookup => "connect-lookup",
            Self::Transfer => "connect-transfer",
        }
    }
}

/// What the fake Chime API knows of a call.
#[derive(Debug, Clone)]
pub struct LiveCall {
    pub call: usize,
    pub ended: bool,
    pub update_delay_ms: u64,
}

/// A contact as the fake Chime API sees it.
#[derive(Debug, Clone, Copy)]
pub struct ContactRef {
    pub contact: usize,
    pub call: usize,
    /// Order of the contact's current event, so API lines sort next to the invocation.
    pub seq: u64,
}

/// An accepted `UpdateSipMediaApplicationCall`.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateRecord {
    pub t_ms: Ms,
    pub transaction_id: String,
    pub call: usize,
    pub contact_id: Option<String>,
    /// The call the requesting contact belongs to, when the request named a known contact.
    pub from_call: Option<usize>,
    pub arguments: serde_json::Map<String, Value>,
}

/// A pair a call must hold: from its bridge to a Connect number (caller id = the SMA number)
/// until the first event that may release it (`CALL_UPDATE_REQUESTED`, `HANGUP`, `ACTION_FAILED`,
/// `INVALID_LAMBDA_RESPONSE`, a lookup that did or may have released it, the end of the call).
/// Two calls whose intervals overlap on one pair held it at the same time: a double claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairHold {
    pub call: usize,
    pub sma_number: String,
    pub connect_number: String,
    pub from_ms: Ms,
    /// `None` while still open.
    pub until_ms: Option<Ms>,
}

/// Builds timeline lines for one event being handled: same call, instant and event order.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub call: usize,
    pub at: Ms,
    pub seq: u64,
}

impl Stamp {
    pub fn entry(&self, actor: Actor, text: impl Into<String>) -> Entry {
        Entry {
            call: self.call,
            t_ms: self.at,
            order: (self.seq, 0),
            actor,
            leg: None,
            event: None,
            text: text.into(),
            actions: None,
            latency_ms: None,
            detail: None,
            problem: false,
        }
    }
}

/// Events of an SMA call (a transaction), scheduled on the run's queue.
#[derive(Debug)]
pub enum CallEvent {
    Arrive,
    /// The running action finished (`epoch` guards against completions of replaced actions).
    ActionDone {
        epoch: u64,
        result: ActionResult,
    },
    Deliver(Delivery),
    /// The same event again, as the service does after the Lambda timed out.
    Redeliver {
        event_type: String,
        leg: Option<&'static str>,
        payload: Value,
    },
    CallerHangup,
    /// The far end of LEG-B hung up (a SIP target, or Connect disconnecting the contact).
    FarEndHangup {
        call_id: String,
    },
    UpdateRequested {
        arguments: Map<String, Value>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionResult {
    Done,
    Answered,
    NotAnswered,
    Busy,
}

/// An invocation to make.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event_type: &'static str,
    pub action_data: Option<Value>,
    /// Fields at the top level of the event (`INVALID_LAMBDA_RESPONSE`'s error).
    pub top_level: Option<Map<String, Value>>,
    /// Which leg the event is about, for the timeline.
    pub leg: Option<&'static str>,
    /// The call's last leg went down: delivered even though the call has ended, and the
    /// service ignores the answer.
    pub last: bool,
}

impl Delivery {
    pub fn new(
        event_type: &'static str,
        action_data: Option<Value>,
        leg: Option<&'static str>,
    ) -> Self {
        Self {
            event_type,
            action_data,
            top_level: None,
            leg,
            last: false,
        }
    }
}

/// Events of a Connect contact, scheduled on the run's queue.
#[derive(Debug)]
pub enum ContactEvent {
    Start {
        call: usize,
        contact_id: String,
        customer: String,
        system: String,
        leg_b: String,
    },
    /// A timed block is over (`epoch` guards against steps of an ended contact).
    Step { epoch: u64 },
    /// The SMA hung up the Connect leg.
    Ended,
    /// Connect drops the contact on its own (scenario knob).
    Drop,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_takes_time_proportional_to_text() {
        assert_eq!(speech_ms(""), 500);
        assert_eq!(speech_ms(&"x".repeat(50)), 3000);
    }
}
