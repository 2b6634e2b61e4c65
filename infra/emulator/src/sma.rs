//! The SIP media application: one [`SmaCall`] per inbound call (transaction).
//!
//! It invokes the SMA handler with the events the service sends, checks every response against
//! [`crate::rules`], keeps `TransactionAttributes` the way the service does (absent: kept; `{}`:
//! erased; otherwise replaced) and executes the returned actions:
//!
//! - the actions of one response run in order; `ACTION_SUCCESSFUL` (with the last action as
//!   `ActionData`) comes once the whole list is done, `ACTION_FAILED` for the first action that
//!   fails (the rest of the list is dropped);
//! - a non-empty response replaces whatever was still pending, including the action running now
//!   (a ringing `CallAndBridge` leg is cancelled); an empty one changes nothing;
//! - `Speak` / `PlayAudio` / `Pause` / `SendDigits` take time on the virtual clock; a `Speak` on
//!   LEG-A is what the caller hears;
//! - `CallAndBridge` opens LEG-B: a PSTN Uri that is one of the scenario's Connect numbers starts a
//!   Connect contact when answered, an `AWS` endpoint reaches a SIP target; answer, busy or no
//!   answer (after `CallTimeoutSeconds`) as the scenario says. Failure: `ACTION_FAILED` with
//!   `ErrorType` `CallNotAnswered`, LEG-B gone from the participants;
//! - `Hangup` of LEG-B produces `HANGUP` for LEG-B and/or `ACTION_SUCCESSFUL` for the Hangup, in the
//!   order the scenario's `hangup_events` knob says (the documentation is silent);
//! - a leg that goes down (the caller, the far end, a Hangup) produces a `HANGUP` event for it;
//!   when it was the last leg, the service ignores the answer to that event and the call ends.
//!   The other leg is never hung up automatically: a handler that leaves LEG-B up after the
//!   caller left is flagged.
//!
//! Every follow-up invocation is scheduled on the queue at the current instant rather than made
//! inline, so one event's handling makes at most one invocation and the ordering of events for a
//! call is exactly the queue's.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::invoke::InvokeError;
use crate::model::{
    ACCOUNT_ID, ActionResult, Actor, CallEvent, ContactEvent, Delivery, Function, LiveCall, Ms,
    REGION, Stamp, lock, speech_ms,
};
use crate::rules::{self, LegView};
use crate::run::Run;
use crate::scenario::{Answer, CallOutcome, CallPlan, HangupEvents};

/// The SMA waits this long for the Lambda, then retries.
pub const LAMBDA_TIMEOUT: Duration = Duration::from_secs(5);
/// Invocations per call the service allows.
pub const MAX_INVOCATIONS: u32 = 1000;
/// Time a busy far end takes to answer 486.
const BUSY_AFTER_MS: Ms = 500;
/// Time an ordinary PSTN number takes to answer.
const PSTN_ANSWER_MS: Ms = 2000;

/// One invocation about to be made (see [`Delivery`]).
struct Invocation<'a> {
    event_type: &'a str,
    leg: Option<&'static str>,
    last: bool,
    /// Appended to the timeline line.
    note: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegStatus {
    Ringing,
    Connected,
    Disconnected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Caller,
    /// A Connect number; the contact exists once the leg is answered.
    Connect {
        contact: Option<usize>,
    },
    Target {
        uri: String,
        arn: String,
    },
    Pstn,
}

#[derive(Debug, Clone)]
pub struct Leg {
    pub call_id: String,
    pub tag: &'static str,
    pub from: String,
    pub to: String,
    pub start_ms: Ms,
    pub status: LegStatus,
    pub peer: Peer,
}

impl Leg {
    fn up(&self) -> bool {
        self.status == LegStatus::Connected
    }
}

/// What happened to one call: the input of the expectations and the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallRecord {
    pub index: usize,
    pub label: String,
    pub caller: String,
    pub dialled: String,
    pub transaction_id: String,
    pub outcome: Option<CallOutcome>,
    /// Uri of the SIP target the caller was last bridged to.
    pub target: Option<String>,
    /// Bridges to SIP targets that were started (`CallAndBridge` with an `AWS` endpoint).
    pub target_bridges: u32,
    /// Uri of each of those bridges, in order.
    #[serde(skip)]
    pub target_uris: Vec<String>,
    pub heard: Vec<String>,
    /// SIP code of the system's hangup of the caller.
    pub hangup_code: Option<u16>,
    pub caller_hung_up: bool,
    pub rejected: bool,
    pub still_connected: bool,
    pub invocations: u32,
    pub updates: usize,
    /// (caller id presented, Connect number) of each bridge to Connect.
    pub connect_bridges: Vec<(String, String)>,
    pub contacts: Vec<String>,
    pub lookup_results: Vec<String>,
    pub transfer_results: Vec<String>,
}

pub struct SmaCall {
    pub idx: usize,
    pub txn: String,
    plan: CallPlan,
    sequence: u64,
    attributes: BTreeMap<String, String>,
    leg_a: Leg,
    leg_b: Option<Leg>,
    pending: VecDeque<Value>,
    current: Option<Value>,
    last_done: Option<Value>,
    epoch: u64,
    ended: bool,
    redelivered: HashSet<&'static str>,
    /// Events that came up while an invocation awaited its retry. The service invokes the
    /// handler for one transaction at a time and retries a timed-out invocation before it
    /// moves on, so these wait and then go out, in order, with the retry's attributes.
    held_for_retry: Option<VecDeque<Delivery>>,
    pub record: CallRecord,
}

/// The same event, its leg start times moved `by_ms` into the past: the real clock barely moves
/// while the virtual one waits out the SMA's timeout, and the retry must look that much older.
fn aged(mut payload: Value, by_ms: i64) -> Value {
    if let Some(participants) = payload
        .pointer_mut("/CallDetails/Participants")
        .and_then(Value::as_array_mut)
    {
        for leg in participants {
            if let Some(start) = leg
                .get("StartTimeInMilliseconds")
                .and_then(Value::as_str)
                .and_then(|t| t.parse::<i64>().ok())
            {
                leg["StartTimeInMilliseconds"] = json!((start - by_ms).to_string());
            }
        }
    }
    payload
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn short(text: &str, n: usize) -> String {
    let t: String = text.chars().take(n).collect();
    if t.len() < text.len() {
        format!("{t}…")
    } else {
        t
    }
}

impl SmaCall {
    pub fn new(idx: usize, plan: &CallPlan) -> Self {
        let txn = uuid::Uuid::new_v4().to_string();
        Self {
            idx,
            record: CallRecord {
                index: idx,
                label: plan.label.clone(),
                caller: plan.caller.clone(),
                dialled: plan.dialled.clone(),
                transaction_id: txn.clone(),
                ..CallRecord::default()
            },
            txn,
            leg_a: Leg {
                call_id: uuid::Uuid::new_v4().to_string(),
                tag: "LEG-A",
                from: plan.caller.clone(),
                to: plan.dialled.clone(),
                start_ms: plan.at_ms,
                status: LegStatus::Connected,
                peer: Peer::Caller,
            },
            plan: plan.clone(),
            sequence: 0,
            attributes: BTreeMap::new(),
            leg_b: None,
            pending: VecDeque::new(),
            current: None,
            last_done: None,
            epoch: 0,
            ended: false,
            redelivered: HashSet::new(),
            held_for_retry: None,
        }
    }

    pub fn leg_b_up(&self) -> bool {
        self.leg_b.as_ref().is_some_and(Leg::up)
    }

    pub fn leg_a_up(&self) -> bool {
        self.leg_a.up()
    }

    fn legs(&self) -> impl Iterator<Item = &Leg> {
        std::iter::once(&self.leg_a).chain(self.leg_b.iter())
    }

    fn leg_views(&self) -> Vec<LegView> {
        self.legs()
            .filter(|l| l.status != LegStatus::Ringing)
            .map(|l| LegView {
                tag: l.tag,
                call_id: l.call_id.clone(),
            })
            .collect()
    }

    fn tag_of(&self, call_id: &str) -> Option<&'static str> {
        self.legs().find(|l| l.call_id == call_id).map(|l| l.tag)
    }

    /// The event payload the service sends.
    fn payload(&mut self, run: &Run, d: &Delivery) -> Value {
        self.sequence += 1;
        // Leg start times as the handler's wall clock should see them: the virtual clock runs
        // ahead of the real one, so a start is placed its virtual age before the real now. The
        // handler judges a first delivery by that age.
        let real_now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(run.epoch_ms, |d| {
                i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
            });
        let virtual_now = run.world.now();
        let started = |start_ms: Ms| real_now_ms - virtual_now.saturating_sub(start_ms) as i64;
        let participants: Vec<Value> = self
            .legs()
            .filter(|l| l.status != LegStatus::Ringing)
            .map(|l| {
                json!({
                    "CallId": l.call_id,
                    "ParticipantTag": l.tag,
                    "To": l.to,
                    "From": l.from,
                    "Direction": if l.tag == "LEG-A" { "Inbound" } else { "Outbound" },
                    "StartTimeInMilliseconds": started(l.start_ms).to_string(),
                    "Status": if l.up() { "Connected" } else { "Disconnected" },
                })
            })
            .collect();
        let mut details = json!({
            "TransactionId": self.txn,
            "AwsAccountId": ACCOUNT_ID,
            "AwsRegion": REGION,
            "SipRuleId": "sip-rule-emulator",
            "SipMediaApplicationId": run.world.sma_id,
            "Participants": participants,
        });
        if !self.attributes.is_empty() {
            details["TransactionAttributes"] = json!(self.attributes);
        }
        let mut event = json!({
            "SchemaVersion": "1.0",
            "Sequence": self.sequence,
            "InvocationEventType": d.event_type,
            "CallDetails": details,
        });
        if let Some(data) = &d.action_data {
            event["ActionData"] = data.clone();
        }
        if let (Some(top), Some(obj)) = (&d.top_level, event.as_object_mut()) {
            for (k, v) in top {
                obj.insert(k.clone(), v.clone());
            }
        }
        event
    }

    pub async fn handle(&mut self, run: &Run, stamp: Stamp, event: CallEvent) {
        match event {
            CallEvent::Arrive => self.arrive(run, stamp).await,
            CallEvent::ActionDone { epoch, result } => {
                if epoch == self.epoch && !self.ended {
                    self.action_done(run, stamp, result);
                }
            }
            CallEvent::Deliver(d) => {
                if self.ended && !d.last {
                    return;
                }
                if let Some(held) = self.held_for_retry.as_mut() {
                    held.push_back(d);
                    return;
                }
                self.invoke(run, stamp, d).await;
            }
            CallEvent::Redeliver {
                event_type,
                leg,
                payload,
            } => {
                let held = self.held_for_retry.take().unwrap_or_default();
                if !self.ended {
                    let call = Invocation {
                        event_type: &event_type,
                        leg,
                        last: false,
                        note: " again (retry)",
                    };
                    self.call_handler(run, stamp, call, payload).await;
                }
                for d in held {
                    run.world
                        .call_event(stamp.at, self.idx, CallEvent::Deliver(d));
                }
            }
            CallEvent::CallerHangup => {
                if !self.leg_a.up() {
                    return;
                }
                self.record.caller_hung_up = true;
                run.world.log(stamp.entry(Actor::Caller, "hangs up"));
                self.leg_a_down(run, stamp);
            }
            CallEvent::FarEndHangup { call_id } => {
                let Some(b) = self
                    .leg_b
                    .as_ref()
                    .filter(|b| b.call_id == call_id && b.up())
                else {
                    return;
                };
                let who = match &b.peer {
                    Peer::Connect { .. } => "Connect hangs up LEG-B".to_owned(),
                    Peer::Target { uri, .. } => format!("target {uri} hangs up"),
                    _ => "far end hangs up LEG-B".to_owned(),
                };
                let actor = if matches!(b.peer, Peer::Connect { .. }) {
                    Actor::Connect
                } else {
                    Actor::Target
                };
                run.world.log(stamp.entry(actor, who));
                self.leg_b_down(run, stamp, false);
            }
            CallEvent::UpdateRequested { arguments } => {
                if self.ended {
                    return;
                }
                self.record.updates += 1;
                let data =
                    json!({"Type": "CallUpdateRequest", "Parameters": {"Arguments": arguments}});
                self.invoke(
                    run,
                    stamp,
                    Delivery::new("CALL_UPDATE_REQUESTED", Some(data), None),
                )
                .await;
            }
        }
    }

    async fn arrive(&mut self, run: &Run, stamp: Stamp) {
        lock(&run.world.live).insert(
            self.txn.clone(),
            LiveCall {
                call: self.idx,
                ended: false,
                update_delay_ms: self.plan.sma.update_delay_ms,
            },
        );
        self.leg_a.start_ms = stamp.at;
        let mut e = stamp.entry(
            Actor::Caller,
            format!("{} dials {}", self.plan.caller, self.plan.dialled),
        );
        e.leg = Some("LEG-A");
        run.world.log(e);
        if let Some(t) = self.plan.caller_behaviour.hangs_up_at_ms {
            run.world
                .call_event(stamp.at + t, self.idx, CallEvent::CallerHangup);
        }
        self.invoke(
            run,
            stamp,
            Delivery::new("NEW_INBOUND_CALL", None, Some("LEG-A")),
        )
        .await;
    }

    /// Invokes the handler with one event and applies its answer.
    async fn invoke(&mut self, run: &Run, stamp: Stamp, d: Delivery) {
        if self.record.invocations >= MAX_INVOCATIONS {
            run.world.finding(
                Some(self.idx),
                stamp.at,
                "sma.invocation_limit",
                format!("more than {MAX_INVOCATIONS} invocations"),
            );
            self.end_without_invocation(run, stamp, "the service ends the call: invocation limit");
            return;
        }
        if matches!(
            d.event_type,
            "CALL_UPDATE_REQUESTED" | "HANGUP" | "ACTION_FAILED" | "INVALID_LAMBDA_RESPONSE"
        ) {
            // The handler may release the call's pair while handling this event.
            run.world.hold_close(self.idx, stamp.at);
        }
        let payload = self.payload(run, &d);
        let retry = !d.last
            && self.plan.sma.redeliver.iter().any(|e| e == d.event_type)
            && self.redelivered.insert(d.event_type);
        if retry {
            let response = self.timed_invoke(run, d.event_type, payload.clone()).await;
            let mut e = stamp.entry(
                Actor::Sma,
                format!(
                    "{} — answer discarded: the SMA retries as after a 5 s timeout",
                    event_title(d.event_type, d.leg, &payload)
                ),
            );
            e.event = Some(d.event_type.to_owned());
            e.actions = response.0.as_ref().ok().map(action_types);
            e.latency_ms = Some(ms(response.1));
            run.world.log(e);
            self.held_for_retry = Some(VecDeque::new());
            let payload = aged(payload, LAMBDA_TIMEOUT.as_millis() as i64);
            run.world.call_event(
                stamp.at + LAMBDA_TIMEOUT.as_millis() as Ms,
                self.idx,
                CallEvent::Redeliver {
                    event_type: d.event_type.to_owned(),
                    leg: d.leg,
                    payload,
                },
            );
            return;
        }
        let call = Invocation {
            event_type: d.event_type,
            leg: d.leg,
            last: d.last,
            note: "",
        };
        self.call_handler(run, stamp, call, payload).await;
    }

    async fn timed_invoke(
        &self,
        run: &Run,
        event_type: &str,
        payload: Value,
    ) -> (Result<Value, InvokeError>, Duration) {
        let started = Instant::now();
        let result = run.invoker.invoke(Function::Sma, payload).await;
        let latency = started.elapsed();
        run.world.sma_latency(event_type, latency);
        (result, latency)
    }

    async fn call_handler(
        &mut self,
        run: &Run,
        stamp: Stamp,
        call: Invocation<'_>,
        payload: Value,
    ) {
        let Invocation {
            event_type,
            leg,
            last,
            note,
        } = call;
        self.record.invocations += 1;
        let (result, latency) = self.timed_invoke(run, event_type, payload.clone()).await;
        if latency > LAMBDA_TIMEOUT {
            run.world.finding(
                Some(self.idx),
                stamp.at,
                "sma.lambda_timeout",
                format!(
                    "{event_type} took {} ms; the SMA retries after 5 s",
                    latency.as_millis()
                ),
            );
        }
        let before = self.attributes.get("state").cloned();
        let mut entry = stamp.entry(
            Actor::Sma,
            format!("{}{note}", event_title(event_type, leg, &payload)),
        );
        entry.event = Some(event_type.to_owned());
        entry.leg = leg;
        entry.latency_ms = Some(ms(latency));
        if run.world.keep_timeline {
            entry.detail = Some(json!({"event": payload}));
        }
        let response = match result {
            Ok(v) => v,
            Err(e) => {
                entry.text.push_str(&format!(" ✗ {e}"));
                entry.problem = true;
                run.world.log(entry);
                run.world.finding(
                    Some(self.idx),
                    stamp.at,
                    "sma.lambda_error",
                    format!("{event_type}: {e}"),
                );
                if event_type == "NEW_INBOUND_CALL" {
                    self.record.rejected = true;
                    self.end_without_invocation(run, stamp, "the call is not answered");
                }
                return;
            }
        };
        if let Some(d) = entry.detail.as_mut() {
            d["response"] = response.clone();
        }
        entry.actions = Some(action_types(&response));
        if last {
            entry
                .text
                .push_str(" — last leg gone: the answer is ignored");
            run.world.log(entry);
            return;
        }
        let violations = rules::check_response(&response, &self.leg_views());
        if !violations.is_empty() {
            entry.problem = true;
            entry.text.push_str(&format!(
                " ✗ the SMA rejects the response: {}",
                violations
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            run.world.log(entry);
            for v in &violations {
                run.world.finding(
                    Some(self.idx),
                    stamp.at,
                    v.rule,
                    format!("answer to {event_type}: {}", v.detail),
                );
            }
            if event_type == "INVALID_LAMBDA_RESPONSE" {
                self.end_without_invocation(
                    run,
                    stamp,
                    "second invalid response: the SMA ends the call",
                );
                return;
            }
            let mut d = Delivery::new("INVALID_LAMBDA_RESPONSE", None, None);
            let first = &violations[0];
            let mut top = Map::new();
            top.insert("ErrorType".into(), json!("InvalidActionParameter"));
            top.insert("ErrorMessage".into(), json!(first.detail));
            d.top_level = Some(top);
            run.world
                .call_event(stamp.at, self.idx, CallEvent::Deliver(d));
            return;
        }
        // TransactionAttributes: absent keeps, `{}` erases, anything else replaces.
        if let Some(Value::Object(map)) = response.get("TransactionAttributes") {
            self.attributes = map
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect();
        }
        let after = self.attributes.get("state").cloned();
        let actions: Vec<Value> = response
            .get("Actions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let summary: Vec<String> = actions.iter().map(|a| self.describe_action(a)).collect();
        entry.text.push_str(&if summary.is_empty() {
            " → no actions".to_owned()
        } else {
            format!(" → {}", summary.join(", "))
        });
        if before != after {
            entry.text.push_str(&format!(
                "   [state {} → {}]",
                before.as_deref().unwrap_or("-"),
                after.as_deref().unwrap_or("-")
            ));
        }
        run.world.log(entry);
        let caller_left = event_type == "HANGUP" && leg == Some("LEG-A") && self.leg_b_up();
        if caller_left
            && !actions
                .iter()
                .any(|a| a.get("Type").and_then(Value::as_str) == Some("Hangup"))
        {
            run.world.finding(
                Some(self.idx),
                stamp.at,
                "sma.leg_left_open",
                "the caller hung up but the answer does not hang up LEG-B (the SMA never does it on its own)",
            );
        }
        if !actions.is_empty() {
            self.replace_actions(actions);
            self.start_next(run, stamp);
        }
    }

    fn describe_action(&self, a: &Value) -> String {
        let ty = s(a, "Type").unwrap_or_default();
        let p = a.get("Parameters").cloned().unwrap_or(Value::Null);
        let leg = s(&p, "CallId")
            .and_then(|id| self.tag_of(&id))
            .map(str::to_owned)
            .or_else(|| s(&p, "ParticipantTag"))
            .unwrap_or_else(|| "?".into());
        match ty.as_str() {
            "Speak" => format!(
                "Speak {leg} \"{}\"",
                short(&s(&p, "Text").unwrap_or_default(), 40)
            ),
            "Hangup" => {
                let code = p.get("SipResponseCode").map(|c| {
                    c.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| c.to_string())
                });
                format!("Hangup {leg} ({})", code.unwrap_or_else(|| "0".into()))
            }
            "CallAndBridge" => {
                let ep = p
                    .get("Endpoints")
                    .and_then(|e| e.get(0))
                    .cloned()
                    .unwrap_or(Value::Null);
                let uri = s(&ep, "Uri").unwrap_or_default();
                let caller_id = s(&p, "CallerIdNumber").unwrap_or_default();
                match s(&ep, "BridgeEndpointType").as_deref() {
                    Some("AWS") => format!(
                        "CallAndBridge → SIP {uri} @ {}",
                        arn_tail(&s(&ep, "Arn").unwrap_or_default())
                    ),
                    _ => format!("CallAndBridge → PSTN {uri} as {caller_id}"),
                }
            }
            other => other.to_owned(),
        }
    }

    /// A non-empty answer replaces the pending actions and the running one.
    fn replace_actions(&mut self, actions: Vec<Value>) {
        self.epoch += 1;
        if self.current.take().is_some()
            && self
                .leg_b
                .as_ref()
                .is_some_and(|b| b.status == LegStatus::Ringing)
        {
            self.leg_b = None;
        }
        self.pending = actions.into();
        self.last_done = None;
    }

    fn action_failed(
        &mut self,
        run: &Run,
        stamp: Stamp,
        action: &Value,
        error_type: &str,
        message: &str,
    ) {
        self.pending.clear();
        self.current = None;
        self.epoch += 1;
        let mut data = json!({"Type": action.get("Type").cloned().unwrap_or(Value::Null),
                              "Parameters": action.get("Parameters").cloned().unwrap_or(json!({}))});
        data["ErrorType"] = json!(error_type);
        data["ErrorMessage"] = json!(message);
        run.world.call_event(
            stamp.at,
            self.idx,
            CallEvent::Deliver(Delivery::new("ACTION_FAILED", Some(data), None)),
        );
    }

    /// Which leg an action addresses: `CallId`, else `ParticipantTag`, else LEG-A.
    fn target_leg(&self, p: &Value) -> Option<&'static str> {
        if let Some(id) = s(p, "CallId") {
            return self.tag_of(&id);
        }
        match s(p, "ParticipantTag").as_deref() {
            Some("LEG-B") => Some("LEG-B"),
            _ => Some("LEG-A"),
        }
    }

    fn leg_is_up(&self, tag: Option<&'static str>) -> bool {
        match tag {
            Some("LEG-A") => self.leg_a.up(),
            Some("LEG-B") => self.leg_b_up(),
            _ => false,
        }
    }

    /// Runs actions until one takes time, the list ends, or the call changes shape.
    fn start_next(&mut self, run: &Run, stamp: Stamp) {
        loop {
            let Some(action) = self.pending.pop_front() else {
                self.current = None;
                if let Some(last) = self.last_done.take() {
                    let data = json!({"Type": last.get("Type").cloned().unwrap_or(Value::Null),
                                      "Parameters": last.get("Parameters").cloned().unwrap_or(json!({}))});
                    run.world.call_event(
                        stamp.at,
                        self.idx,
                        CallEvent::Deliver(Delivery::new("ACTION_SUCCESSFUL", Some(data), None)),
                    );
                }
                return;
            };
            let ty = s(&action, "Type").unwrap_or_default();
            let p = action.get("Parameters").cloned().unwrap_or(json!({}));
            let leg = self.target_leg(&p);
            match ty.as_str() {
                "Speak" | "PlayAudio" | "Pause" | "SendDigits" => {
                    if !self.leg_is_up(leg) {
                        self.action_failed(
                            run,
                            stamp,
                            &action,
                            "InvalidActionParameter",
                            "the call leg is not connected",
                        );
                        return;
                    }
                    let duration = match ty.as_str() {
                        "Speak" => {
                            let text = s(&p, "Text").unwrap_or_default();
                            if leg == Some("LEG-A") {
                                self.record.heard.push(text.clone());
                            }
                            let mut e = stamp.entry(
                                Actor::Sma,
                                format!(
                                    "Speak \"{}\" ({:.1} s)",
                                    short(&text, 60),
                                    speech_ms(&text) as f64 / 1000.0
                                ),
                            );
                            e.leg = leg;
                            run.world.log(e);
                            speech_ms(&text)
                        }
                        "PlayAudio" => {
                            let repeat = p
                                .get("Repeat")
                                .and_then(|r| r.as_u64().or_else(|| r.as_str()?.parse().ok()))
                                .unwrap_or(1);
                            let key = p
                                .get("AudioSource")
                                .and_then(|a| s(a, "Key"))
                                .unwrap_or_default();
                            if leg == Some("LEG-A") {
                                self.record.heard.push(format!("[audio {key}]"));
                            }
                            3000 * repeat.max(1)
                        }
                        "Pause" => p
                            .get("DurationInMilliseconds")
                            .and_then(|d| d.as_u64().or_else(|| d.as_str()?.parse().ok()))
                            .unwrap_or(0),
                        _ => {
                            let digits = s(&p, "Digits").unwrap_or_default();
                            digits.len() as Ms * 350
                        }
                    };
                    self.current = Some(action);
                    let epoch = self.epoch;
                    run.world.call_event(
                        stamp.at + duration,
                        self.idx,
                        CallEvent::ActionDone {
                            epoch,
                            result: ActionResult::Done,
                        },
                    );
                    return;
                }
                "Hangup" => {
                    if !self.leg_is_up(leg) {
                        self.action_failed(
                            run,
                            stamp,
                            &action,
                            "InvalidActionParameter",
                            "the call leg is not connected",
                        );
                        return;
                    }
                    let code = p
                        .get("SipResponseCode")
                        .and_then(|c| {
                            c.as_str()
                                .map(str::to_owned)
                                .or_else(|| Some(c.to_string()))
                        })
                        .and_then(|c| c.parse::<u16>().ok())
                        .unwrap_or(0);
                    if leg == Some("LEG-A") {
                        self.record.hangup_code = Some(code);
                        let mut e =
                            stamp.entry(Actor::Sma, format!("hangs up the caller ({code})"));
                        e.leg = Some("LEG-A");
                        run.world.log(e);
                        self.pending.clear();
                        self.leg_a_down(run, stamp);
                        return;
                    }
                    let mut e = stamp.entry(Actor::Sma, "hangs up LEG-B".to_string());
                    e.leg = Some("LEG-B");
                    run.world.log(e);
                    let last_in_list = self.pending.is_empty();
                    self.last_done = Some(action.clone());
                    if self.hangup_leg_b_by_action(run, stamp, action, last_in_list) {
                        self.current = None;
                        return;
                    }
                }
                "CallAndBridge" => {
                    self.call_and_bridge(run, stamp, action, &p);
                    return;
                }
                // Known to the service, not emulated: completes at once.
                _ => {
                    let mut e = stamp.entry(
                        Actor::Sma,
                        format!("{ty} (not emulated: completes at once)"),
                    );
                    e.leg = leg;
                    run.world.log(e);
                    self.last_done = Some(action);
                }
            }
        }
    }

    /// The Hangup action took LEG-B down. Returns true when the action list is finished.
    fn hangup_leg_b_by_action(
        &mut self,
        run: &Run,
        stamp: Stamp,
        action: Value,
        last_in_list: bool,
    ) -> bool {
        if !self.leg_a.up() {
            self.leg_b_down(run, stamp, true);
            return true;
        }
        let call_id = self
            .leg_b
            .as_ref()
            .map(|b| b.call_id.clone())
            .unwrap_or_default();
        self.take_leg_b_down(run, stamp);
        let hangup = Delivery::new(
            "HANGUP",
            Some(
                json!({"Type": "Hangup", "Parameters": {"SipResponseCode": 0, "CallId": call_id, "ParticipantTag": "LEG-B"}}),
            ),
            Some("LEG-B"),
        );
        let success = Delivery::new(
            "ACTION_SUCCESSFUL",
            Some(
                json!({"Type": "Hangup", "Parameters": action.get("Parameters").cloned().unwrap_or(json!({}))}),
            ),
            None,
        );
        let order: Vec<Delivery> = match (self.plan.sma.hangup_events, last_in_list) {
            (HangupEvents::Hangup, _) => vec![hangup],
            (HangupEvents::HangupThenSuccess, true) => vec![hangup, success],
            (HangupEvents::SuccessThenHangup, true) => vec![success, hangup],
            (HangupEvents::Success, true) => vec![success],
            (HangupEvents::Success, false) => vec![],
            (_, false) => vec![hangup],
        };
        for d in order {
            run.world
                .call_event(stamp.at, self.idx, CallEvent::Deliver(d));
        }
        if last_in_list {
            // The list's completion was delivered above (or, for `hangup`, replaced by HANGUP).
            self.last_done = None;
            return true;
        }
        false
    }

    fn call_and_bridge(&mut self, run: &Run, stamp: Stamp, action: Value, p: &Value) {
        if !self.leg_a.up() {
            self.action_failed(
                run,
                stamp,
                &action,
                "InvalidActionParameter",
                "the caller's leg is not connected",
            );
            return;
        }
        if self.leg_b_up() {
            self.action_failed(
                run,
                stamp,
                &action,
                "InvalidActionParameter",
                "LEG-B is still connected",
            );
            return;
        }
        let ep = p
            .get("Endpoints")
            .and_then(|e| e.get(0))
            .cloned()
            .unwrap_or(Value::Null);
        let uri = s(&ep, "Uri").unwrap_or_default();
        let caller_id = s(p, "CallerIdNumber").unwrap_or_default();
        let timeout_ms = p
            .get("CallTimeoutSeconds")
            .and_then(|t| t.as_u64().or_else(|| t.as_str()?.parse().ok()))
            .unwrap_or(30)
            * 1000;
        let (peer, answer, answer_after, what) = match s(&ep, "BridgeEndpointType").as_deref() {
            Some("PSTN") if run.connect_numbers.contains(&uri) => (
                Peer::Connect { contact: None },
                self.plan.connect.answer,
                self.plan.connect.answer_after_ms,
                format!("Connect number {uri}"),
            ),
            Some("AWS") => {
                let arn = s(&ep, "Arn").unwrap_or_default();
                let behaviour = run
                    .targets
                    .get(&uri)
                    .cloned()
                    .unwrap_or_else(|| self.plan.target.clone());
                self.record.target_bridges += 1;
                self.record.target_uris.push(uri.clone());
                let headers = p
                    .get("SipHeaders")
                    .and_then(Value::as_object)
                    .map(|h| {
                        h.iter()
                            .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                let what = if headers.is_empty() {
                    format!("SIP target {uri} @ {}", arn_tail(&arn))
                } else {
                    format!("SIP target {uri} @ {} [{headers}]", arn_tail(&arn))
                };
                (
                    Peer::Target {
                        uri: uri.clone(),
                        arn,
                    },
                    behaviour.answer,
                    behaviour.answer_after_ms,
                    what,
                )
            }
            _ => (
                Peer::Pstn,
                Answer::Answer,
                PSTN_ANSWER_MS,
                format!("PSTN {uri} (not a Connect number here: an ordinary phone that answers)"),
            ),
        };
        if matches!(peer, Peer::Connect { .. }) {
            run.world.hold_open(self.idx, &caller_id, &uri, stamp.at);
        }
        let leg = Leg {
            call_id: uuid::Uuid::new_v4().to_string(),
            tag: "LEG-B",
            from: caller_id.clone(),
            to: uri,
            start_ms: stamp.at,
            status: LegStatus::Ringing,
            peer,
        };
        let mut e = stamp.entry(
            Actor::Sma,
            format!("LEG-B rings {what}, caller id {caller_id}"),
        );
        e.leg = Some("LEG-B");
        run.world.log(e);
        self.leg_b = Some(leg);
        let (result, delay) = match answer {
            Answer::Answer if answer_after < timeout_ms => (ActionResult::Answered, answer_after),
            Answer::Answer | Answer::NoAnswer => (ActionResult::NotAnswered, timeout_ms),
            Answer::Busy => (ActionResult::Busy, BUSY_AFTER_MS.min(timeout_ms)),
        };
        self.current = Some(action);
        let epoch = self.epoch;
        run.world.call_event(
            stamp.at + delay,
            self.idx,
            CallEvent::ActionDone { epoch, result },
        );
    }

    fn action_done(&mut self, run: &Run, stamp: Stamp, result: ActionResult) {
        let Some(action) = self.current.take() else {
            return;
        };
        match result {
            ActionResult::Done => {
                self.last_done = Some(action);
                self.start_next(run, stamp);
            }
            ActionResult::Answered => {
                let Some(b) = self.leg_b.as_mut() else {
                    return;
                };
                b.status = LegStatus::Connected;
                let mut e = stamp.entry(Actor::Sma, String::new());
                e.leg = Some("LEG-B");
                match b.peer.clone() {
                    Peer::Connect { .. } => {
                        let contact = run
                            .world
                            .next_contact
                            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        b.peer = Peer::Connect {
                            contact: Some(contact),
                        };
                        let contact_id = uuid::Uuid::new_v4().to_string();
                        self.record
                            .connect_bridges
                            .push((b.from.clone(), b.to.clone()));
                        self.record.contacts.push(contact_id.clone());
                        e.actor = Actor::Connect;
                        e.text = format!("answers {} (LEG-B bridged)", b.to);
                        run.world.contact_event(
                            stamp.at,
                            contact,
                            ContactEvent::Start {
                                call: self.idx,
                                contact_id,
                                customer: b.from.clone(),
                                system: b.to.clone(),
                                leg_b: b.call_id.clone(),
                            },
                        );
                    }
                    Peer::Target { uri, .. } => {
                        self.record.target = Some(uri.clone());
                        e.actor = Actor::Target;
                        e.text =
                            format!("{uri} answers: the caller is transferred (LEG-B bridged)");
                        let behaviour = run
                            .targets
                            .get(&uri)
                            .cloned()
                            .unwrap_or_else(|| self.plan.target.clone());
                        if let Some(after) = behaviour.hangs_up_after_ms {
                            run.world.call_event(
                                stamp.at + after,
                                self.idx,
                                CallEvent::FarEndHangup {
                                    call_id: b.call_id.clone(),
                                },
                            );
                        }
                        run.world.call_event(
                            stamp.at + self.plan.caller_behaviour.talk_ms,
                            self.idx,
                            CallEvent::CallerHangup,
                        );
                    }
                    _ => {
                        e.actor = Actor::Target;
                        e.text = format!("{} answers (LEG-B bridged)", b.to);
                        run.world.call_event(
                            stamp.at + self.plan.caller_behaviour.talk_ms,
                            self.idx,
                            CallEvent::CallerHangup,
                        );
                    }
                }
                run.world.log(e);
                self.last_done = Some(action);
                self.start_next(run, stamp);
            }
            ActionResult::NotAnswered | ActionResult::Busy => {
                let leg = self.leg_b.take();
                let actor = match leg.as_ref().map(|b| &b.peer) {
                    Some(Peer::Connect { .. }) => Actor::Connect,
                    _ => Actor::Target,
                };
                let to = leg.map(|b| b.to).unwrap_or_default();
                let (text, message) = if result == ActionResult::Busy {
                    (format!("{to} is busy (486)"), "Busy Here")
                } else {
                    (format!("{to} does not answer"), "Call not answered")
                };
                let mut e = stamp.entry(actor, text);
                e.leg = Some("LEG-B");
                run.world.log(e);
                self.action_failed(run, stamp, &action, "CallNotAnswered", message);
            }
        }
    }

    fn set_ended(&mut self, run: &Run) {
        self.ended = true;
        run.world.hold_close(self.idx, run.world.now());
        if let Some(live) = lock(&run.world.live).get_mut(&self.txn) {
            live.ended = true;
        }
    }

    /// LEG-A goes down (the caller, or a Hangup action): abort the list; `HANGUP` for LEG-A.
    fn leg_a_down(&mut self, run: &Run, stamp: Stamp) {
        self.leg_a.status = LegStatus::Disconnected;
        self.epoch += 1;
        self.pending.clear();
        self.current = None;
        self.last_done = None;
        if self
            .leg_b
            .as_ref()
            .is_some_and(|b| b.status == LegStatus::Ringing)
        {
            self.leg_b = None;
        }
        let call_id = self.leg_a.call_id.clone();
        let mut d = Delivery::new(
            "HANGUP",
            Some(
                json!({"Type": "Hangup", "Parameters": {"SipResponseCode": 0, "CallId": call_id, "ParticipantTag": "LEG-A"}}),
            ),
            Some("LEG-A"),
        );
        if !self.leg_b_up() {
            d.last = true;
            self.set_ended(run);
        }
        run.world
            .call_event(stamp.at, self.idx, CallEvent::Deliver(d));
    }

    /// Marks LEG-B down and tells its far end.
    fn take_leg_b_down(&mut self, run: &Run, stamp: Stamp) {
        if let Some(b) = self.leg_b.as_mut() {
            b.status = LegStatus::Disconnected;
            if let Peer::Connect { contact: Some(c) } = b.peer {
                run.world.contact_event(stamp.at, c, ContactEvent::Ended);
            }
        }
    }

    /// LEG-B went down (far end, or a Hangup of LEG-B while the caller is gone).
    fn leg_b_down(&mut self, run: &Run, stamp: Stamp, by_us: bool) {
        if by_us {
            self.take_leg_b_down(run, stamp);
        } else if let Some(b) = self.leg_b.as_mut() {
            b.status = LegStatus::Disconnected;
        }
        let call_id = self
            .leg_b
            .as_ref()
            .map(|b| b.call_id.clone())
            .unwrap_or_default();
        let mut d = Delivery::new(
            "HANGUP",
            Some(
                json!({"Type": "Hangup", "Parameters": {"SipResponseCode": 0, "CallId": call_id, "ParticipantTag": "LEG-B"}}),
            ),
            Some("LEG-B"),
        );
        if !self.leg_a.up() {
            d.last = true;
            self.set_ended(run);
        }
        run.world
            .call_event(stamp.at, self.idx, CallEvent::Deliver(d));
    }

    /// The service itself ends the call (no further invocation).
    fn end_without_invocation(&mut self, run: &Run, stamp: Stamp, why: &str) {
        self.epoch += 1;
        self.pending.clear();
        self.current = None;
        self.take_leg_b_down(run, stamp);
        self.leg_a.status = LegStatus::Disconnected;
        let mut e = stamp.entry(Actor::Sma, why.to_owned());
        e.problem = true;
        run.world.log(e);
        self.set_ended(run);
    }

    /// Where the caller ended up; called once nothing more will happen.
    pub fn finish(&mut self, run: &Run) -> CallRecord {
        run.world.hold_close(self.idx, run.world.now());
        let fallback_uri = run.fallback.as_ref().map(|f| f.0.as_str());
        self.record.still_connected = self.leg_a.up();
        if self.leg_b_up() && !self.leg_a.up() {
            run.world.finding(
                Some(self.idx),
                run.world.now(),
                "sma.leg_open_at_end",
                "LEG-B is still connected after the caller left",
            );
        }
        let outcome = if self.record.rejected {
            CallOutcome::Rejected
        } else if self.record.still_connected {
            CallOutcome::Stuck
        } else if let Some(t) = &self.record.target {
            if Some(t.as_str()) == fallback_uri {
                CallOutcome::Fallback
            } else {
                CallOutcome::Transferred
            }
        } else if self.record.caller_hung_up {
            CallOutcome::CallerHungUp
        } else {
            match self.record.hangup_code {
                Some(486) => CallOutcome::Busy,
                Some(480) => CallOutcome::Unavailable,
                _ => CallOutcome::Ended,
            }
        };
        self.record.outcome = Some(outcome);
        self.record.clone()
    }
}

/// `HANGUP (LEG-B)`, `ACTION_SUCCESSFUL CallAndBridge`, `ACTION_FAILED CallAndBridge CallNotAnswered`.
fn event_title(event_type: &str, leg: Option<&'static str>, payload: &Value) -> String {
    let data = payload.get("ActionData");
    let action = data.and_then(|d| s(d, "Type"));
    match event_type {
        "ACTION_SUCCESSFUL" | "ACTION_FAILED" => {
            let error = data
                .and_then(|d| s(d, "ErrorType"))
                .map(|e| format!(" {e}"))
                .unwrap_or_default();
            format!("{event_type} {}{error}", action.unwrap_or_default())
        }
        "INVALID_LAMBDA_RESPONSE" => format!(
            "{event_type} ({})",
            s(payload, "ErrorMessage").unwrap_or_default()
        ),
        _ => format!(
            "{event_type}{}",
            leg.map(|l| format!(" ({l})")).unwrap_or_default()
        ),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

fn action_types(response: &Value) -> Vec<String> {
    response
        .get("Actions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| s(x, "Type")).collect())
        .unwrap_or_default()
}

/// `vc/pbx` from a Voice Connector ARN, for short timeline lines.
fn arn_tail(arn: &str) -> String {
    arn.rsplit(':').next().unwrap_or(arn).to_owned()
}
