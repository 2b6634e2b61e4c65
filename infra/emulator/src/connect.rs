//! Amazon Connect: a contact per answered bridge to a Connect number, running the contact flow
//! (the same JSON users import into Connect) with the interpreter in
//! [`crate::contact_flow_interpreter`].
//!
//! The contact's `CustomerEndpoint` is the caller id the SMA presented on LEG-B (the claimed SMA
//! number) and its `SystemEndpoint` the Connect number dialled. Prompts take time on the virtual
//! clock; Lambda invocations take none (their real latency is measured and held against the
//! block's `InvocationTimeLimitSeconds`); the caller's keypad input comes from the scenario. The
//! contact ends when the flow disconnects (LEG-B's far end hangs up on the SMA side), when the SMA
//! hangs up LEG-B, or when the scenario makes Connect drop it.

use std::collections::VecDeque;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::contact_flow_interpreter::{
    self as interpreter, FlowContactState, FlowInvokeResult, FlowStep, shorten,
};
use crate::model::{
    ACCOUNT_ID, Actor, CallEvent, ContactEvent, ContactRef, Function, REGION, Stamp, lock,
};
use crate::run::Run;

/// Blocks without cost one contact may run at one instant before the flow counts as looping.
const MAX_STEPS_PER_INSTANT: usize = 200;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ContactRecord {
    pub contact_id: String,
    pub call: usize,
    /// `result` of each lookup / transfer invocation (`error` for a failed invocation).
    pub lookups: Vec<String>,
    pub transfers: Vec<String>,
    pub blocks_run: u32,
    pub ended_by: String,
    /// Every lookup / transfer answer, in order.
    #[serde(skip)]
    pub answers: Vec<ContactAnswer>,
}

/// One answer of the lookup or transfer function to this contact's flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactAnswer {
    pub function: Function,
    /// `result` (`error` for a failed invocation).
    pub result: String,
    pub reason: Option<String>,
    /// The transaction the answer names.
    pub transaction_id: Option<String>,
}

enum Pending {
    None,
    Input { store: bool, value: Option<String> },
}

/// One Connect contact: where it is in the flow, what the flow knows, and what happened to it.
pub struct ConnectContact {
    idx: usize,
    call: usize,
    leg_b: String,
    data: FlowContactState,
    at_block: Option<String>,
    epoch: u64,
    ended: bool,
    pending: Pending,
    inputs: VecDeque<String>,
    input_after_ms: u64,
    pub record: ContactRecord,
}

/// Which of our functions an ARN names: by the function name, `*lookup*` or `*transfer*`.
pub fn function_of(arn: &str, run: &Run) -> Option<Function> {
    let name = arn
        .split(":function:")
        .nth(1)
        .unwrap_or(arn)
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    for f in [Function::Lookup, Function::Transfer] {
        if name == run.invoker.describe(f).to_ascii_lowercase() {
            return Some(f);
        }
    }
    if name.contains("lookup") {
        Some(Function::Lookup)
    } else if name.contains("transfer") {
        Some(Function::Transfer)
    } else {
        None
    }
}

impl ConnectContact {
    pub async fn handle(
        slot: &mut Option<Box<ConnectContact>>,
        idx: usize,
        run: &Run,
        at: u64,
        seq: u64,
        event: ContactEvent,
    ) {
        match event {
            ContactEvent::Start {
                call,
                contact_id,
                customer,
                system,
                leg_b,
            } => {
                let plan = &run.plans[call];
                let mut contact = ConnectContact {
                    idx,
                    call,
                    leg_b,
                    data: FlowContactState {
                        contact_id: contact_id.clone(),
                        customer_address: customer.clone(),
                        system_address: system.clone(),
                        instance_arn: format!(
                            "arn:aws:connect:{}:{}:instance/emulator",
                            REGION, ACCOUNT_ID
                        ),
                        ..FlowContactState::default()
                    },
                    at_block: Some(run.flow.start.clone()),
                    epoch: 0,
                    ended: false,
                    pending: Pending::None,
                    inputs: plan.caller_behaviour.ivr_input.iter().cloned().collect(),
                    input_after_ms: plan.caller_behaviour.input_after_ms,
                    record: ContactRecord {
                        contact_id: contact_id.clone(),
                        call,
                        ..ContactRecord::default()
                    },
                };
                lock(&run.world.contacts).insert(
                    contact_id.clone(),
                    ContactRef {
                        contact: idx,
                        call,
                        seq,
                    },
                );
                let stamp = Stamp { call, at, seq };
                run.world.log(stamp.entry(
                    Actor::Connect,
                    format!(
                        "contact {} starts the flow: CustomerEndpoint {customer}, SystemEndpoint {system}",
                        short_id(&contact_id)
                    ),
                ));
                if let Some(after) = plan.connect.hangs_up_after_ms {
                    run.world.contact_event(at + after, idx, ContactEvent::Drop);
                }
                contact.run_flow(run, stamp).await;
                *slot = Some(Box::new(contact));
            }
            ContactEvent::Step { epoch } => {
                let Some(contact) = slot.as_mut() else { return };
                if contact.ended || epoch != contact.epoch {
                    return;
                }
                let stamp = Stamp {
                    call: contact.call,
                    at,
                    seq,
                };
                if let Pending::Input { store, value } =
                    std::mem::replace(&mut contact.pending, Pending::None)
                {
                    let block = contact
                        .at_block
                        .as_deref()
                        .and_then(|id| run.flow.block(id))
                        .cloned();
                    if let Some(block) = block {
                        let (next, note) = interpreter::after_input(
                            &block,
                            &mut contact.data,
                            value.as_deref(),
                            store,
                        );
                        run.world
                            .log(stamp.entry(Actor::Connect, format!("  {note}")));
                        contact.at_block = next;
                    }
                }
                contact.run_flow(run, stamp).await;
            }
            ContactEvent::Ended => {
                let Some(contact) = slot.as_mut() else { return };
                if contact.ended {
                    return;
                }
                contact.ended = true;
                contact.epoch += 1;
                contact.record.ended_by = "sma".into();
                let stamp = Stamp {
                    call: contact.call,
                    at,
                    seq,
                };
                run.world.log(stamp.entry(
                    Actor::Connect,
                    format!(
                        "contact {} ends: the SMA hung up LEG-B",
                        short_id(&contact.data.contact_id)
                    ),
                ));
            }
            ContactEvent::Drop => {
                let Some(contact) = slot.as_mut() else { return };
                if contact.ended {
                    return;
                }
                let stamp = Stamp {
                    call: contact.call,
                    at,
                    seq,
                };
                run.world
                    .log(stamp.entry(Actor::Connect, "drops the contact (scenario)"));
                contact.record.ended_by = "connect".into();
                contact.disconnect(run, stamp);
            }
        }
    }

    fn disconnect(&mut self, run: &Run, stamp: Stamp) {
        self.ended = true;
        self.epoch += 1;
        if self.record.ended_by.is_empty() {
            self.record.ended_by = "flow".into();
        }
        run.world.call_event(
            stamp.at,
            self.call,
            CallEvent::FarEndHangup {
                call_id: self.leg_b.clone(),
            },
        );
    }

    fn set_seq(&self, run: &Run, seq: u64) {
        if let Some(r) = lock(&run.world.contacts).get_mut(&self.data.contact_id) {
            r.seq = seq;
        }
    }

    /// Runs blocks until one takes time, waits for input, or the contact ends.
    async fn run_flow(&mut self, run: &Run, stamp: Stamp) {
        self.set_seq(run, stamp.seq);
        for _ in 0..MAX_STEPS_PER_INSTANT {
            if self.ended {
                return;
            }
            let Some(id) = self.at_block.clone() else {
                run.world.log(stamp.entry(
                    Actor::Connect,
                    "the flow has no next block: Connect disconnects",
                ));
                self.disconnect(run, stamp);
                return;
            };
            let Some(block) = run.flow.block(&id).cloned() else {
                run.world.finding(
                    Some(self.call),
                    stamp.at,
                    "flow.missing_block",
                    format!("no block {id:?}"),
                );
                self.disconnect(run, stamp);
                return;
            };
            self.record.blocks_run += 1;
            match interpreter::step(&block, &mut self.data) {
                FlowStep::Next {
                    next,
                    cost_ms,
                    note,
                } => {
                    if !note.is_empty() {
                        run.world
                            .log(stamp.entry(Actor::Connect, format!("{} {note}", block.kind)));
                    }
                    self.at_block = next;
                    if cost_ms > 0 {
                        self.epoch += 1;
                        run.world.contact_event(
                            stamp.at + cost_ms,
                            self.idx,
                            ContactEvent::Step { epoch: self.epoch },
                        );
                        return;
                    }
                }
                FlowStep::Invoke {
                    function_arn,
                    parameters,
                    time_limit_ms,
                    validation,
                } => {
                    let function = function_of(&function_arn, run);
                    let name = function
                        .map(|f| run.invoker.describe(f))
                        .unwrap_or_else(|| function_arn.clone());
                    let params: Vec<String> = parameters
                        .iter()
                        .map(|(k, v)| format!("{k}={}", shorten(v)))
                        .collect();
                    run.world.log(stamp.entry(
                        Actor::Connect,
                        format!("InvokeLambdaFunction {name}({})", params.join(", ")),
                    ));
                    let result = match function {
                        None => {
                            run.world.finding(Some(self.call), stamp.at, "flow.unknown_function", format!("block {id:?} invokes {function_arn:?}, which is neither the lookup nor the transfer function"));
                            FlowInvokeResult::Failed(format!("unknown function {function_arn}"))
                        }
                        Some(f) => {
                            let event = self.data.lambda_event(&parameters);
                            let started = Instant::now();
                            let r = run.invoker.invoke(f, event).await;
                            let latency = started.elapsed();
                            run.world.latency(f, latency);
                            match r {
                                Ok(_) if latency.as_millis() as u64 > time_limit_ms => {
                                    run.world.finding(
                                        Some(self.call),
                                        stamp.at,
                                        "connect.lambda_timeout",
                                        format!(
                                            "{} took {} ms (limit {time_limit_ms} ms)",
                                            f.label(),
                                            latency.as_millis()
                                        ),
                                    );
                                    FlowInvokeResult::Failed(format!(
                                        "timed out after {} ms",
                                        latency.as_millis()
                                    ))
                                }
                                Ok(v) => FlowInvokeResult::Answered(v),
                                Err(e) => FlowInvokeResult::Failed(e.to_string()),
                            }
                        }
                    };
                    let result_field = match &result {
                        FlowInvokeResult::Answered(v) => v
                            .get("result")
                            .and_then(Value::as_str)
                            .unwrap_or("-")
                            .to_owned(),
                        FlowInvokeResult::Failed(_) => "error".to_owned(),
                    };
                    let answered = |key: &str| match &result {
                        FlowInvokeResult::Answered(v) => {
                            v.get(key).and_then(Value::as_str).map(str::to_owned)
                        }
                        FlowInvokeResult::Failed(_) => None,
                    };
                    if let Some(f) = function {
                        // A lookup may release the pair (release-on-lookup mode), also when
                        // its answer is an error (the write landed, the answer was lost): from
                        // then on another call may hold the pair. Only a `found` that says the
                        // pair is still held keeps the call's hold open.
                        let kept = result_field == "found"
                            && answered("pair_released").as_deref() != Some("true");
                        if f == Function::Lookup && !kept {
                            run.world.hold_close(self.call, stamp.at);
                        }
                        self.record.answers.push(ContactAnswer {
                            function: f,
                            result: result_field.clone(),
                            reason: answered("reason"),
                            transaction_id: answered("transaction_id"),
                        });
                    }
                    match function {
                        Some(Function::Lookup) => self.record.lookups.push(result_field),
                        Some(Function::Transfer) => self.record.transfers.push(result_field),
                        _ => {}
                    }
                    let shown = match &result {
                        FlowInvokeResult::Answered(v) => summarize_map(v),
                        FlowInvokeResult::Failed(e) => format!("✗ {e}"),
                    };
                    let (next, note) =
                        interpreter::after_invoke(&block, &mut self.data, result, validation);
                    let mut e = stamp.entry(
                        Actor::Connect,
                        format!(
                            "  ← {shown}{}",
                            if note.is_empty() {
                                String::new()
                            } else {
                                format!(" — {note}: error branch")
                            }
                        ),
                    );
                    e.problem = !note.is_empty();
                    run.world.log(e);
                    self.at_block = next;
                }
                FlowStep::Input {
                    prompt,
                    prompt_ms,
                    timeout_ms,
                    store,
                    max_digits,
                } => {
                    let value = self.inputs.pop_front().map(|mut v| {
                        v.truncate(max_digits.max(1));
                        v
                    });
                    let (delay, what) = match &value {
                        Some(v) => (
                            prompt_ms + self.input_after_ms,
                            format!("the caller keys {v}"),
                        ),
                        None => (prompt_ms + timeout_ms, "the caller keys nothing".to_owned()),
                    };
                    run.world.log(stamp.entry(
                        Actor::Connect,
                        format!(
                            "GetParticipantInput plays \"{}\"; {what}",
                            prompt.chars().take(60).collect::<String>()
                        ),
                    ));
                    self.pending = Pending::Input { store, value };
                    self.epoch += 1;
                    run.world.contact_event(
                        stamp.at + delay,
                        self.idx,
                        ContactEvent::Step { epoch: self.epoch },
                    );
                    return;
                }
                FlowStep::Disconnect { note } => {
                    run.world
                        .log(stamp.entry(Actor::Connect, format!("{note}: Connect hangs up")));
                    self.disconnect(run, stamp);
                    return;
                }
                FlowStep::Unsupported { kind } => {
                    run.world.finding(
                        Some(self.call),
                        stamp.at,
                        "flow.unsupported_block",
                        format!(
                            "block {id:?} has type {kind}, which the emulator does not interpret"
                        ),
                    );
                    let mut e = stamp.entry(
                        Actor::Connect,
                        format!("{kind}: not interpreted by the emulator, error branch"),
                    );
                    e.problem = true;
                    run.world.log(e);
                    self.at_block = interpreter::error_branch(&block, "NoMatchingError");
                }
            }
        }
        run.world.finding(
            Some(self.call),
            stamp.at,
            "flow.loop",
            format!("more than {MAX_STEPS_PER_INSTANT} blocks without any time passing"),
        );
        self.disconnect(run, stamp);
    }
}

fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// `result=found, transaction_id=…` for the timeline, `result` first.
fn summarize_map(v: &Value) -> String {
    match v.as_object() {
        Some(map) => {
            let mut parts: Vec<(bool, String)> = map
                .iter()
                .map(|(k, v)| {
                    (
                        k != "result",
                        format!(
                            "{k}={}",
                            shorten(
                                &v.as_str()
                                    .map(str::to_owned)
                                    .unwrap_or_else(|| v.to_string())
                            )
                        ),
                    )
                })
                .collect();
            parts.sort_by_key(|a| a.0);
            parts
                .into_iter()
                .map(|(_, p)| p)
                .collect::<Vec<_>>()
                .join(", ")
        }
        None => v.to_string(),
    }
}
