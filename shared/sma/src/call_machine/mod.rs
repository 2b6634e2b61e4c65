//! The SMA call state machine as pure functions.
//!
//! A handler runs one invocation in three steps:
//! 1. [`store_work`] says which store operations the event needs (claim, release, read the
//!    transfer intent);
//! 2. the handler performs them and collects a [`StoreResults`];
//! 3. [`decide`] turns (event, attributes, store results) into actions and new attributes.
//!
//! Nothing here touches AWS, so every row of the state table is a plain unit test.

mod attributes;
mod config;

use crate::action::Pause;
use crate::{
    Action, CallAndBridge, E164, HangupCode, InvocationEventType, LegRef, LegTag, SipHeaders,
    SmaEvent, Speak, SpeakText,
};
use takeback_pairs::{ClaimOutcome, ClaimRequest, PairKey, ReleaseOutcome, TransferIntent};

pub use attributes::{CallAttributes, CallState, MAX_EVENT_VALUE_CHARS, event_value, keys};
pub use config::{CallMachineConfig, Messages, UpdateGrace};

use crate::target::TransferTarget;

/// SIP header that carries the caller's original number to the transfer target: an E.164
/// number, or left out.
pub const ORIGINAL_CALLING_NUMBER_HEADER: &str = "X-Original-Calling-Number";

/// Store operations an event needs before the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreWork {
    Nothing,
    Claim(ClaimRequest),
    /// The call, or its hope of reaching Connect, ended (or the caller is being taken back):
    /// free whatever this transaction may own — the pair its claim record names and `known`
    /// (the pair the attributes name, even when they say it is not held) — each only if this
    /// transaction still owns it. A claim whose outcome was unknown (a timeout, a 5xx, a
    /// response the SMA rejected) may have landed without the attributes knowing.
    ReleaseOwned {
        transaction_id: String,
        known: Option<PairKey>,
    },
    /// Connect's leg ended before any update arrived: read the transfer intent the transfer
    /// function may have recorded, and release what this transaction may own. The two are
    /// independent and each has its own budget: a slow release never costs the transfer.
    ConnectLegEnded {
        known: Option<PairKey>,
        transaction_id: String,
    },
}

impl StoreWork {
    /// A label for logs, free of phone numbers.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Nothing => "nothing",
            Self::Claim(_) => "claim",
            Self::ReleaseOwned { .. } => "release_owned",
            Self::ConnectLegEnded { .. } => "connect_leg_ended",
        }
    }
}

/// A store operation failed; the handler has logged the error with its cause chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreFailed;

/// What the store answered for [`StoreWork`]; `None` where the operation was not asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreResults {
    pub claim: Option<Result<ClaimOutcome, StoreFailed>>,
    pub release: Option<Result<ReleaseOutcome, StoreFailed>>,
    pub transfer_intent: Option<Result<Option<TransferIntent>, StoreFailed>>,
}

/// The answer to one invocation, before it becomes an `SmaResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub actions: Vec<Action>,
    /// `None`: the call's state is unchanged and the attributes are left out of the response.
    pub attributes: Option<CallAttributes>,
    /// A short label for logs and the emulator's timeline.
    pub outcome: &'static str,
}

impl Decision {
    fn unchanged(outcome: &'static str) -> Self {
        Self {
            actions: Vec::new(),
            attributes: None,
            outcome,
        }
    }

    fn with(actions: Vec<Action>, attributes: CallAttributes, outcome: &'static str) -> Self {
        Self {
            actions,
            attributes: Some(attributes),
            outcome,
        }
    }
}

/// Which leg a `HANGUP` event is about, from `ActionData.Parameters` (tag or `CallId`), never
/// from `ActionData.Type` (documented examples put unrelated types there).
pub fn hangup_leg(event: &SmaEvent) -> Option<(LegTag, Option<String>)> {
    let data = event.action_data.as_ref()?;
    let call_id = data.parameter_str("CallId").map(str::to_owned);
    let tag = data
        .parameter_str("ParticipantTag")
        .and_then(LegTag::parse)
        .or_else(|| {
            call_id
                .as_deref()
                .and_then(|id| event.participant_by_call_id(id))
                .and_then(|p| p.tag())
        })?;
    Some((tag, call_id))
}

fn is_connect_leg(attrs: &CallAttributes, call_id: Option<&str>) -> bool {
    match (&attrs.connect_leg, call_id) {
        (Some(known), Some(id)) => known == id,
        // Without ids, a LEG-B hangup before any transfer can only be the Connect leg.
        _ => matches!(
            attrs.state,
            CallState::Connecting | CallState::InConnect | CallState::TransferPending
        ),
    }
}

/// The caller's leg is listed and gone: nothing this transaction holds is needed any more.
/// (An event that does not list the caller at all says nothing about them.)
fn caller_gone(event: &SmaEvent) -> bool {
    event
        .participant(LegTag::A)
        .is_some_and(|p| p.status.as_deref() == Some("Disconnected"))
}

/// Whether the transfer policy accepts the target an update names.
fn update_target(
    event: &SmaEvent,
    config: &CallMachineConfig,
) -> Option<Result<TransferTarget, crate::target::TargetRejection>> {
    let args = event.action_data.as_ref()?.update_arguments();
    Some(
        config.targets.resolve_target(
            args.get(crate::update_args::names::TRANSFER_TARGET)
                .map(String::as_str),
            args.get(crate::update_args::names::TRANSFER_TARGET_ARN)
                .map(String::as_str),
        ),
    )
}

/// Step 1: which store operations this event needs.
pub fn store_work(
    event: &SmaEvent,
    attrs: &CallAttributes,
    config: &CallMachineConfig,
) -> StoreWork {
    let Some(transaction_id) = event.call_details.transaction_id.clone() else {
        return StoreWork::Nothing;
    };
    let release_owned = || StoreWork::ReleaseOwned {
        transaction_id: transaction_id.clone(),
        known: attrs.pair(),
    };
    match &event.invocation_event_type {
        InvocationEventType::NewInboundCall if attrs.state == CallState::New => {
            match event.participant(LegTag::A) {
                Some(leg_a) if leg_a.call_id.is_some() => StoreWork::Claim(ClaimRequest {
                    transaction_id,
                    original_calling_number: event_value(leg_a.from.as_ref()).unwrap_or_default(),
                    original_called_number: event_value(leg_a.to.as_ref()).unwrap_or_default(),
                }),
                _ => StoreWork::Nothing,
            }
        }
        InvocationEventType::NewInboundCall => StoreWork::Nothing,
        // The bridge toward Connect failed (also when the attributes never learned of the
        // claim): the pair is not needed whatever happens next.
        InvocationEventType::ActionFailed
            if matches!(attrs.state, CallState::New | CallState::Connecting)
                && event.action_type() == Some(&crate::ActionType::CallAndBridge) =>
        {
            release_owned()
        }
        InvocationEventType::CallUpdateRequested if attrs.state == CallState::AwaitingUpdate => {
            release_owned()
        }
        // Only an update the policy accepts takes the caller out of Connect; a refused one
        // leaves the caller there with the pair still held.
        InvocationEventType::CallUpdateRequested
            if update_can_be_ours(event, attrs)
                && wants_transfer(event)
                && matches!(update_target(event, config), Some(Ok(_))) =>
        {
            release_owned()
        }
        InvocationEventType::Hangup => match hangup_leg(event) {
            Some((LegTag::A, _)) => release_owned(),
            Some((LegTag::B, call_id))
                if matches!(attrs.state, CallState::Connecting | CallState::InConnect)
                    && is_connect_leg(attrs, call_id.as_deref()) =>
            {
                StoreWork::ConnectLegEnded {
                    known: attrs.pair(),
                    transaction_id,
                }
            }
            _ if caller_gone(event) => release_owned(),
            _ => StoreWork::Nothing,
        },
        InvocationEventType::InvalidLambdaResponse => release_owned(),
        _ if caller_gone(event) => release_owned(),
        _ => StoreWork::Nothing,
    }
}

/// Step 1 as the handler performs it: [`store_work`] less what the attributes prove is done. A
/// call whose claim was learned (the attributes name its pair) and whose release was confirmed
/// (`pair_held` false) after it reached Connect holds nothing: the transaction held exactly that
/// pair, so the ending events that follow (the caller's hangup after a transfer, a late
/// update) cost no request. Before Connect (`New`, `Connecting`, `InConnect`) the release is
/// always made, as [`store_work`] says.
pub fn store_work_needed(
    event: &SmaEvent,
    attrs: &CallAttributes,
    config: &CallMachineConfig,
) -> StoreWork {
    let work = store_work(event, attrs, config);
    let released_after_connect = !attrs.pair_held
        && attrs.pair().is_some()
        && matches!(
            attrs.state,
            CallState::TransferPending
                | CallState::AwaitingUpdate
                | CallState::Transferring
                | CallState::Transferred
                | CallState::Ending
                | CallState::Ended
        );
    match work {
        StoreWork::ReleaseOwned { known: Some(_), .. } if released_after_connect => {
            StoreWork::Nothing
        }
        work => work,
    }
}

/// When the caller's leg started (`StartTimeInMilliseconds`, epoch ms): with the handler's
/// clock it tells a first delivery of `NEW_INBOUND_CALL` from a possible re-delivery
/// (`takeback_pairs::strategy::delivery_of`).
pub fn call_started_ms(event: &SmaEvent) -> Option<i64> {
    event
        .participant(LegTag::A)
        .and_then(|p| p.start_time_in_milliseconds)
        .and_then(|ms| i64::try_from(ms).ok())
}

/// An update can only come from this call's own contact once Connect has answered: in
/// `InConnect`, or in `Connecting` when the event already lists a connected LEG-B (the update
/// overtook the bridge's `ACTION_SUCCESSFUL`). Before that it is someone else's (a lookup that
/// matched a reused pair): following it would release the pair while the bridge still rings
/// and hang up a LEG-B that does not exist.
fn update_can_be_ours(event: &SmaEvent, attrs: &CallAttributes) -> bool {
    // (`AwaitingUpdate` is handled on its own: Connect's leg is gone by then.)
    match attrs.state {
        CallState::InConnect => true,
        CallState::Connecting => event
            .participant(LegTag::B)
            .is_some_and(|p| p.is_connected()),
        _ => false,
    }
}

fn wants_transfer(event: &SmaEvent) -> bool {
    event.action_data.as_ref().is_some_and(|d| {
        d.update_arguments()
            .get(crate::update_args::names::TRANSFER)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    })
}

/// Step 3: the actions and new attributes for this event.
pub fn decide(
    event: &SmaEvent,
    attrs: &CallAttributes,
    config: &CallMachineConfig,
    store: &StoreResults,
) -> Decision {
    let flow = Flow {
        event,
        config,
        leg_a_call_id: event.participant(LegTag::A).and_then(|p| p.call_id.clone()),
    };
    let mut attrs = attrs.clone();
    // Whatever the event, a confirmed release means the pair is no longer ours.
    if matches!(store.release, Some(Ok(_))) {
        attrs.pair_held = false;
    }
    // Remember Connect's leg from the first event that names it: an update can overtake the
    // bridge's ACTION_SUCCESSFUL, and a late hangup of that leg must never be taken for the
    // far end hanging up on a transferred caller.
    if attrs.connect_leg.is_none()
        && matches!(
            attrs.state,
            CallState::Connecting | CallState::InConnect | CallState::TransferPending
        )
    {
        attrs.connect_leg = event
            .participant(LegTag::B)
            .and_then(|p| event_value(p.call_id.as_ref()));
    }
    match &event.invocation_event_type {
        InvocationEventType::NewInboundCall => flow.new_inbound_call(attrs, store),
        InvocationEventType::ActionSuccessful => flow.action_successful(attrs),
        InvocationEventType::ActionFailed => flow.action_failed(attrs),
        InvocationEventType::Hangup => flow.hangup(attrs, store),
        InvocationEventType::CallUpdateRequested => flow.update_requested(attrs),
        InvocationEventType::InvalidLambdaResponse => flow.invalid_response(attrs),
        InvocationEventType::NewOutboundCall
        | InvocationEventType::Ringing
        | InvocationEventType::CallAnswered
        | InvocationEventType::ActionInterrupted
        | InvocationEventType::DigitsReceived
        | InvocationEventType::Unknown(_) => Decision::unchanged("informational"),
    }
}

struct Flow<'a> {
    event: &'a SmaEvent,
    config: &'a CallMachineConfig,
    leg_a_call_id: Option<String>,
}

impl Flow<'_> {
    fn new_inbound_call(&self, mut attrs: CallAttributes, store: &StoreResults) -> Decision {
        if attrs.state != CallState::New {
            return Decision::unchanged("duplicate_new_inbound_call");
        }
        let leg_a = self.event.participant(LegTag::A);
        attrs.caller = leg_a.and_then(|p| event_value(p.from.as_ref()));
        attrs.called = leg_a.and_then(|p| event_value(p.to.as_ref()));
        if self.leg_a_call_id.is_none() || self.event.call_details.transaction_id.is_none() {
            return self.end_call(
                attrs,
                &self.config.messages.unavailable,
                HangupCode::TemporarilyUnavailable,
                "malformed_new_call",
            );
        }
        match &store.claim {
            Some(Ok(ClaimOutcome::Claimed(claim))) => {
                // Bounded like event values: a mis-seeded pair with absurd numbers must not push
                // the attributes past the SMA's limit (its claim record still names it).
                attrs.sma_number = event_value(Some(&claim.pair.sma_number));
                attrs.connect_number = event_value(Some(&claim.pair.connect_number));
                attrs.pair_held = true;
                let numbers = (
                    E164::parse(&claim.pair.sma_number),
                    E164::parse(&claim.pair.connect_number),
                );
                let (Ok(caller_id), Ok(connect)) = numbers else {
                    // A mis-seeded pair: keep it marked held so the next event releases it.
                    return self.fallback_or_end(
                        attrs,
                        &self.config.messages.unavailable,
                        HangupCode::TemporarilyUnavailable,
                        "bad_pair_numbers",
                    );
                };
                attrs.state = CallState::Connecting;
                let bridge = CallAndBridge::pstn(caller_id, connect, self.config.connect_timeout);
                Decision::with(
                    vec![Action::CallAndBridge(bridge)],
                    attrs,
                    "bridging_to_connect",
                )
            }
            Some(Ok(ClaimOutcome::Busy)) => self.fallback_or_end(
                attrs,
                &self.config.messages.busy,
                HangupCode::BusyHere,
                "no_free_pair",
            ),
            Some(Err(StoreFailed)) | None => self.fallback_or_end(
                attrs,
                &self.config.messages.unavailable,
                HangupCode::TemporarilyUnavailable,
                "store_unavailable",
            ),
        }
    }

    fn action_successful(&self, mut attrs: CallAttributes) -> Decision {
        use crate::ActionType;
        match (self.event.action_type(), attrs.state) {
            (Some(ActionType::CallAndBridge), CallState::Connecting) => {
                attrs.state = CallState::InConnect;
                if let Some(leg_b) = self.event.participant(LegTag::B) {
                    attrs.connect_leg = event_value(leg_b.call_id.as_ref());
                }
                Decision::with(Vec::new(), attrs, "in_connect")
            }
            (Some(ActionType::CallAndBridge), CallState::Transferring) => {
                attrs.state = CallState::Transferred;
                Decision::with(Vec::new(), attrs, "transferred")
            }
            (Some(ActionType::Hangup), CallState::TransferPending) => self.bridge_to_target(attrs),
            (Some(ActionType::Pause), CallState::AwaitingUpdate) => self.grace_over(attrs),
            _ => Decision::unchanged("action_done"),
        }
    }

    fn action_failed(&self, attrs: CallAttributes) -> Decision {
        use crate::ActionType;
        match (self.event.action_type(), attrs.state) {
            (Some(ActionType::CallAndBridge), CallState::Connecting) => self.fallback_or_end(
                attrs,
                &self.config.messages.connect_failed,
                HangupCode::TemporarilyUnavailable,
                "connect_bridge_failed",
            ),
            (Some(ActionType::CallAndBridge), CallState::Transferring) => {
                let on_fallback = self.config.fallback.as_ref().is_some_and(|f| {
                    attrs.target_uri.as_deref() == Some(f.uri.as_str())
                        && attrs.target_arn.as_deref() == Some(f.arn.as_str())
                });
                if on_fallback {
                    self.end_call(
                        attrs,
                        &self.config.messages.transfer_failed,
                        HangupCode::TemporarilyUnavailable,
                        "fallback_bridge_failed",
                    )
                } else {
                    self.fallback_or_end(
                        attrs,
                        &self.config.messages.transfer_failed,
                        HangupCode::TemporarilyUnavailable,
                        "transfer_bridge_failed",
                    )
                }
            }
            // The Connect leg may already be gone when we hang it up: the transfer goes on.
            (Some(ActionType::Hangup), CallState::TransferPending) => self.bridge_to_target(attrs),
            // A failed announcement can cancel the actions queued behind it: re-issue what
            // must still happen so the caller is not left in silence.
            (Some(ActionType::Speak | ActionType::PlayAudio), CallState::Ending) => {
                let hangup = Action::hangup(self.leg_a(), HangupCode::TemporarilyUnavailable);
                Decision::with(vec![hangup], attrs, "hangup_after_failed_message")
            }
            (Some(ActionType::Speak | ActionType::PlayAudio), CallState::Transferring) => {
                self.bridge_to_target_silently(attrs)
            }
            (Some(ActionType::Pause), CallState::AwaitingUpdate) => self.grace_over(attrs),
            _ => Decision::unchanged("action_failed_ignored"),
        }
    }

    fn hangup(&self, mut attrs: CallAttributes, store: &StoreResults) -> Decision {
        let Some((leg, call_id)) = hangup_leg(self.event) else {
            return Decision::unchanged("hangup_unknown_leg");
        };
        match leg {
            LegTag::A => {
                if attrs.state == CallState::Ended {
                    return if matches!(store.release, Some(Ok(ReleaseOutcome::Released))) {
                        Decision::with(Vec::new(), attrs, "caller_gone")
                    } else {
                        Decision::unchanged("duplicate_hangup")
                    };
                }
                let leg_b_open = self
                    .event
                    .participant(LegTag::B)
                    .filter(|p| p.status.as_deref() != Some("Disconnected"));
                let actions = leg_b_open
                    .map(|p| {
                        let leg = p
                            .call_id
                            .clone()
                            .map(LegRef::CallId)
                            .unwrap_or(LegRef::Tag(LegTag::B.as_str()));
                        vec![Action::hangup(leg, HangupCode::Normal)]
                    })
                    .unwrap_or_default();
                attrs.state = CallState::Ended;
                Decision::with(actions, attrs, "caller_hung_up")
            }
            LegTag::B => {
                let connect_leg = is_connect_leg(&attrs, call_id.as_deref());
                match attrs.state {
                    CallState::Connecting | CallState::InConnect if connect_leg => {
                        self.connect_ended_first(attrs, store)
                    }
                    CallState::TransferPending if connect_leg => self.bridge_to_target(attrs),
                    CallState::Transferred if !connect_leg => {
                        attrs.state = CallState::Ending;
                        let hangup = Action::hangup(self.leg_a(), HangupCode::Normal);
                        Decision::with(vec![hangup], attrs, "far_end_hung_up")
                    }
                    _ => Decision::unchanged("leg_b_hangup_ignored"),
                }
            }
        }
    }

    /// Connect hung up before `CALL_UPDATE_REQUESTED`: the update is asynchronous, so the
    /// transfer function may already have asked for a transfer.
    fn connect_ended_first(&self, mut attrs: CallAttributes, store: &StoreResults) -> Decision {
        match &store.transfer_intent {
            Some(Ok(Some(intent))) => {
                match self
                    .config
                    .targets
                    .resolve_target(Some(&intent.target_uri), Some(&intent.target_arn))
                {
                    Ok(target) => {
                        attrs.target_uri = Some(target.uri.as_str().to_owned());
                        attrs.target_arn = Some(target.arn.as_str().to_owned());
                        self.bridge_to_target(attrs)
                    }
                    Err(_) => self.end_call(
                        attrs,
                        &self.config.messages.transfer_failed,
                        HangupCode::TemporarilyUnavailable,
                        "intent_target_rejected",
                    ),
                }
            }
            Some(Ok(None)) => {
                let grace = self.config.update_grace.as_millis();
                if grace == 0 {
                    return self.grace_over(attrs);
                }
                // No intent recorded (its write may have failed, or the update comes from
                // another caller of the API): the asynchronous update may still arrive.
                attrs.state = CallState::AwaitingUpdate;
                let pause = Action::Pause(Pause {
                    leg: self.leg_a(),
                    duration_in_milliseconds: grace,
                });
                Decision::with(vec![pause], attrs, "awaiting_update")
            }
            Some(Err(StoreFailed)) | None => self.end_call(
                attrs,
                &self.config.messages.unavailable,
                HangupCode::TemporarilyUnavailable,
                "intent_unreadable",
            ),
        }
    }

    /// Connect ended the call and no update came within the grace: one proper hangup.
    fn grace_over(&self, mut attrs: CallAttributes) -> Decision {
        attrs.state = CallState::Ending;
        let hangup = Action::hangup(self.leg_a(), HangupCode::Normal);
        Decision::with(vec![hangup], attrs, "connect_ended_call")
    }

    /// A late update while the caller waits after Connect's leg ended: transfer, or end the
    /// call if the policy refuses the target (the caller is no longer in Connect).
    fn update_after_connect_ended(&self, mut attrs: CallAttributes) -> Decision {
        if !wants_transfer(self.event) {
            return Decision::unchanged("update_without_transfer");
        }
        match update_target(self.event, self.config) {
            Some(Ok(target)) => {
                attrs.target_uri = Some(target.uri.as_str().to_owned());
                attrs.target_arn = Some(target.arn.as_str().to_owned());
                self.bridge_to_target(attrs)
            }
            Some(Err(_)) | None => self.end_call(
                attrs,
                &self.config.messages.transfer_failed,
                HangupCode::TemporarilyUnavailable,
                "late_update_target_rejected",
            ),
        }
    }

    fn update_requested(&self, mut attrs: CallAttributes) -> Decision {
        if attrs.state == CallState::AwaitingUpdate {
            return self.update_after_connect_ended(attrs);
        }
        if !matches!(attrs.state, CallState::Connecting | CallState::InConnect) {
            // One-shot guard: a second update (or one after the caller left) changes nothing.
            return Decision::unchanged("update_ignored");
        }
        if !update_can_be_ours(self.event, &attrs) {
            return Decision::unchanged("update_before_connect_answered");
        }
        if self.event.action_data.is_none() {
            return Decision::unchanged("update_without_arguments");
        }
        if !wants_transfer(self.event) {
            return Decision::unchanged("update_without_transfer");
        }
        let Some(Ok(target)) = update_target(self.event, self.config) else {
            // Leave the caller in Connect rather than send them somewhere unapproved, with the
            // pair still held (store_work releases only for an accepted target), so the
            // contact keeps its claim and a later transfer can still find the call.
            return Decision::with(Vec::new(), attrs, "update_target_rejected");
        };
        attrs.target_uri = Some(target.uri.as_str().to_owned());
        attrs.target_arn = Some(target.arn.as_str().to_owned());
        attrs.state = CallState::TransferPending;
        let connect_leg = attrs
            .connect_leg
            .clone()
            .map(LegRef::CallId)
            .unwrap_or(LegRef::Tag(LegTag::B.as_str()));
        Decision::with(
            vec![Action::hangup(connect_leg, HangupCode::Normal)],
            attrs,
            "taking_call_back",
        )
    }

    fn invalid_response(&self, attrs: CallAttributes) -> Decision {
        if matches!(attrs.state, CallState::Ending | CallState::Ended) {
            return Decision::unchanged("invalid_response_while_ending");
        }
        let mut actions = Vec::new();
        if let Some(leg_b) = self
            .event
            .participant(LegTag::B)
            .filter(|p| p.is_connected())
            .and_then(|p| p.call_id.clone())
        {
            actions.push(Action::hangup(LegRef::CallId(leg_b), HangupCode::Normal));
        }
        actions.push(Action::hangup(
            self.leg_a(),
            HangupCode::TemporarilyUnavailable,
        ));
        let mut attrs = attrs;
        attrs.state = CallState::Ending;
        Decision::with(actions, attrs, "invalid_response_hangup")
    }

    /// Speak "please hold" to the caller and bridge to the stored target: the one transfer.
    fn bridge_to_target(&self, attrs: CallAttributes) -> Decision {
        self.bridge_to_stored_target(attrs, true)
    }

    fn bridge_to_target_silently(&self, attrs: CallAttributes) -> Decision {
        self.bridge_to_stored_target(attrs, false)
    }

    fn bridge_to_stored_target(&self, mut attrs: CallAttributes, announce: bool) -> Decision {
        // The fallback is trusted configuration; anything else passes the policy again.
        let stored = (attrs.target_uri.as_deref(), attrs.target_arn.as_deref());
        let target = match &self.config.fallback {
            Some(f) if stored == (Some(f.uri.as_str()), Some(f.arn.as_str())) => Ok(f.clone()),
            _ => self.config.targets.resolve_target(stored.0, stored.1),
        };
        let Ok(target) = target else {
            return self.end_call(
                attrs,
                &self.config.messages.transfer_failed,
                HangupCode::TemporarilyUnavailable,
                "stored_target_invalid",
            );
        };
        let Some(bridge) = self.bridge_to(&attrs, &target) else {
            return self.end_call(
                attrs,
                &self.config.messages.transfer_failed,
                HangupCode::TemporarilyUnavailable,
                "no_caller_id",
            );
        };
        attrs.state = CallState::Transferring;
        let mut actions = Vec::with_capacity(2);
        if let Some(call_id) = self.leg_a_call_id.as_ref().filter(|_| announce) {
            actions.push(Action::Speak(Speak::new(
                call_id,
                self.config.messages.transfer_hold.clone(),
                &self.config.voice,
            )));
        }
        actions.push(Action::CallAndBridge(bridge));
        Decision::with(actions, attrs, "bridging_to_target")
    }

    fn bridge_to(&self, attrs: &CallAttributes, target: &TransferTarget) -> Option<CallAndBridge> {
        // The seed presents the SMA number; without a pair (fallback on busy) the number the
        // caller dialled, which also belongs to the SMA.
        let caller_id = [attrs.sma_number.as_deref(), attrs.called.as_deref()]
            .into_iter()
            .flatten()
            .find_map(|n| E164::parse(n).ok())?;
        // Only an E.164 number goes into the header ("anonymous", a SIP URI or anything with
        // CR/LF in it is left out): the value comes from the caller's side of the PSTN.
        let headers = attrs
            .caller
            .as_deref()
            .and_then(|caller| E164::parse(caller).ok())
            .and_then(|caller| {
                SipHeaders::new()
                    .with(ORIGINAL_CALLING_NUMBER_HEADER, caller.as_str())
                    .ok()
            })
            .unwrap_or_default();
        Some(CallAndBridge::voice_connector(
            caller_id,
            target.uri.clone(),
            target.arn.clone(),
            self.config.transfer_timeout,
            headers,
        ))
    }

    fn fallback_or_end(
        &self,
        mut attrs: CallAttributes,
        message: &SpeakText,
        code: HangupCode,
        outcome: &'static str,
    ) -> Decision {
        if let Some(fallback) = &self.config.fallback
            && let Some(bridge) = self.bridge_to(&attrs, fallback)
        {
            attrs.target_uri = Some(fallback.uri.as_str().to_owned());
            attrs.target_arn = Some(fallback.arn.as_str().to_owned());
            attrs.state = CallState::Transferring;
            return Decision::with(
                vec![Action::CallAndBridge(bridge)],
                attrs,
                "bridging_to_fallback",
            );
        }
        self.end_call(attrs, message, code, outcome)
    }

    /// The caller hears `message` (when their leg is known), then a proper hangup.
    fn end_call(
        &self,
        mut attrs: CallAttributes,
        message: &SpeakText,
        code: HangupCode,
        outcome: &'static str,
    ) -> Decision {
        attrs.state = CallState::Ending;
        let mut actions = Vec::with_capacity(2);
        if let Some(call_id) = &self.leg_a_call_id {
            actions.push(Action::Speak(Speak::new(
                call_id,
                message.clone(),
                &self.config.voice,
            )));
        }
        actions.push(Action::hangup(self.leg_a(), code));
        Decision::with(actions, attrs, outcome)
    }

    fn leg_a(&self) -> LegRef {
        self.leg_a_call_id
            .clone()
            .map(LegRef::CallId)
            .unwrap_or(LegRef::Tag(LegTag::A.as_str()))
    }
}

#[cfg(test)]
mod tests;
