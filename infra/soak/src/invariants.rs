//! The soak's invariants, checked on the emulator's own records of a run and on the pairs table
//! read after the faults were switched off:
//!
//! - every caller hears something or reaches a target before the system ends the call (an
//!   announcement on LEG-A, or Connect's flow prompts; a caller who hangs up is exempt) and no
//!   call is left connected in silence at the end (calls Connect dropped that the SMA then ended
//!   without a word of its own are counted apart, not failed);
//! - no double claim: two calls never hold one pair at the same time (see
//!   [`emulator::model::PairHold`]: from the bridge to Connect until the first event that may
//!   release the pair, so legitimate reuse after a release is never counted);
//! - no wrong-caller transfer (an accepted update whose contact belongs to another call) and no
//!   wrong-caller lookup (a `found` naming another call's transaction);
//! - at most one transfer per call (bridges to SIP targets other than the fallback);
//! - no pair still held once its call has ended;
//! - no other finding of the emulator (invalid SMA responses, handler errors, budgets exceeded,
//!   legs left open, ...).
//!
//! Calls that ended on the busy or unavailable path are allowed and counted by cause
//! ([`fallback_cause`]).

use std::collections::{BTreeMap, HashMap};

use emulator::backend::HeldPair;
use emulator::connect::{ContactAnswer, ContactRecord};
use emulator::model::{Function, Ms, PairHold};
use emulator::scenario::{CallOutcome, CallPlan};
use emulator::simulate::RunResult;
use emulator::sma::CallRecord;
use serde::Serialize;
use takeback_sma::call_machine::Messages;

/// Findings that are the subject of a dedicated invariant (counted there, not twice).
const COUNTED_ELSEWHERE: &[&str] = &["transfer.wrong_caller", "sma.leg_open_at_end"];

/// Invariant counters of one or more batches; all must be 0 for a pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InvariantCounts {
    /// Calls the system ended without the caller hearing anything or reaching a target.
    pub silent_calls: u64,
    /// Calls still connected when nothing more was going to happen.
    pub stuck_calls: u64,
    pub double_claims: u64,
    pub wrong_caller_transfers: u64,
    pub wrong_caller_lookups: u64,
    pub calls_with_more_than_one_transfer: u64,
    pub pairs_held_after_call_ended: u64,
    /// Every other finding (invalid SMA responses, handler errors, budgets, ...).
    pub other_findings: u64,
}

impl InvariantCounts {
    pub fn all_zero(&self) -> bool {
        *self == Self::default()
    }

    pub fn add(&mut self, o: &Self) {
        self.silent_calls += o.silent_calls;
        self.stuck_calls += o.stuck_calls;
        self.double_claims += o.double_claims;
        self.wrong_caller_transfers += o.wrong_caller_transfers;
        self.wrong_caller_lookups += o.wrong_caller_lookups;
        self.calls_with_more_than_one_transfer += o.calls_with_more_than_one_transfer;
        self.pairs_held_after_call_ended += o.pairs_held_after_call_ended;
        self.other_findings += o.other_findings;
    }
}

/// What the checks found in one or more batches.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub calls: u64,
    pub outcomes: BTreeMap<String, u64>,
    pub fallbacks_by_cause: BTreeMap<String, u64>,
    pub invariants: InvariantCounts,
    /// Every finding of the emulator, by rule.
    pub findings_by_rule: BTreeMap<String, u64>,
    /// Calls Connect dropped that the SMA then ended without an announcement of its own (the
    /// caller heard the flow's prompts, then nothing): reported, not an invariant.
    pub ended_quietly_after_connect_dropped: u64,
    /// Accepted `UpdateSipMediaApplicationCall`s beyond the first, per call (a retried update
    /// that had been applied): the handler must not transfer twice.
    pub repeated_update_requests: u64,
    /// Up to a few descriptions of each failed invariant, to start debugging from.
    pub examples: Vec<String>,
}

/// Examples kept per kind of failure.
const MAX_EXAMPLES_PER_KIND: usize = 3;

impl Tally {
    /// Keeps `text` unless `MAX_EXAMPLES_PER_KIND` examples of its kind (the text up to the
    /// first `:` after the batch label) are already kept.
    fn example(&mut self, kind: &str, text: String) {
        let tag = format!("[{kind}]");
        if self.examples.iter().filter(|e| e.starts_with(&tag)).count() < MAX_EXAMPLES_PER_KIND {
            self.examples.push(format!("{tag} {text}"));
        }
    }

    pub fn add(&mut self, o: &Tally) {
        self.calls += o.calls;
        for (k, v) in &o.outcomes {
            *self.outcomes.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.fallbacks_by_cause {
            *self.fallbacks_by_cause.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.findings_by_rule {
            *self.findings_by_rule.entry(k.clone()).or_default() += v;
        }
        self.invariants.add(&o.invariants);
        self.repeated_update_requests += o.repeated_update_requests;
        self.ended_quietly_after_connect_dropped += o.ended_quietly_after_connect_dropped;
        for e in &o.examples {
            let kind = e
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .map(|(k, _)| k.to_owned())
                .unwrap_or_default();
            if self
                .examples
                .iter()
                .filter(|x| x.starts_with(&format!("[{kind}]")))
                .count()
                < MAX_EXAMPLES_PER_KIND
            {
                self.examples.push(e.clone());
            }
        }
    }
}

/// Checks one run. `held` is the pairs table's held pairs read after the run (faults off);
/// `batch` names the run in examples.
pub fn check(
    batch: &str,
    plans: &[CallPlan],
    result: &RunResult,
    held: &[HeldPair],
    fallback_uri: Option<&str>,
    messages: &Messages,
) -> Tally {
    let mut t = Tally {
        calls: result.calls.len() as u64,
        ..Tally::default()
    };
    let mut contacts_of: HashMap<usize, Vec<&ContactRecord>> = HashMap::new();
    for c in &result.contacts {
        contacts_of.entry(c.call).or_default().push(c);
    }
    let no_contacts = Vec::new();
    for call in &result.calls {
        let outcome = call.outcome.unwrap_or(CallOutcome::Stuck);
        *t.outcomes.entry(outcome.as_str().to_owned()).or_default() += 1;
        let contacts = contacts_of.get(&call.index).unwrap_or(&no_contacts);
        if let Some(cause) = fallback_cause(call, contacts, messages) {
            *t.fallbacks_by_cause.entry(cause).or_default() += 1;
        }
        if outcome == CallOutcome::Stuck {
            t.invariants.stuck_calls += 1;
            t.example(
                "stuck",
                format!(
                    "{batch}: {} is stuck: still connected at the end ({}; {})",
                    call.label,
                    describe(call, contacts),
                    knobs(plans, call.index)
                ),
            );
        } else if is_silent(call, contacts) {
            t.invariants.silent_calls += 1;
            t.example(
                "silent",
                format!(
                    "{batch}: {} ended ({}) without the caller hearing anything ({}; {})",
                    call.label,
                    outcome.as_str(),
                    describe(call, contacts),
                    knobs(plans, call.index)
                ),
            );
        }
        if ended_quietly_after_connect_dropped(call, contacts) {
            t.ended_quietly_after_connect_dropped += 1;
        }
        let transfers = call
            .target_uris
            .iter()
            .filter(|u| Some(u.as_str()) != fallback_uri)
            .count();
        if transfers > 1 {
            t.invariants.calls_with_more_than_one_transfer += 1;
            t.example(
                "more_than_one_transfer",
                format!(
                    "{batch}: {} was bridged to {transfers} transfer targets {:?} ({}; {})",
                    call.label,
                    call.target_uris,
                    describe(call, contacts),
                    knobs(plans, call.index)
                ),
            );
        }
        for contact in contacts {
            for a in contact
                .answers
                .iter()
                .filter(|a| wrong_lookup(a, &call.transaction_id))
            {
                t.invariants.wrong_caller_lookups += 1;
                t.example(
                    "wrong_caller_lookup",
                    format!(
                        "{batch}: the lookup for {}'s contact {} named transaction {:?}, not {}",
                        call.label, contact.contact_id, a.transaction_id, call.transaction_id
                    ),
                );
            }
        }
    }
    let mut updates: HashMap<usize, u64> = HashMap::new();
    for u in &result.updates {
        *updates.entry(u.call).or_default() += 1;
    }
    t.repeated_update_requests = updates.values().map(|n| n.saturating_sub(1)).sum();

    for (a, b) in double_claims(&result.holds, result.virtual_ms) {
        t.invariants.double_claims += 1;
        let label = |i: usize| {
            result
                .calls
                .get(i)
                .map(|c| {
                    let contacts = contacts_of.get(&c.index).unwrap_or(&no_contacts);
                    format!("{} ({})", c.label, describe(c, contacts))
                })
                .unwrap_or_default()
        };
        t.example("double_claim", format!(
            "{batch}: double claim of ({}, {}): {} holds it from {} ms until {:?}, {} bridged with it at {} ms",
            a.sma_number, a.connect_number, label(a.call), a.from_ms, a.until_ms, label(b.call), b.from_ms
        ));
    }
    for f in &result.findings {
        *t.findings_by_rule.entry(f.rule.clone()).or_default() += 1;
        if f.rule == "transfer.wrong_caller" {
            t.invariants.wrong_caller_transfers += 1;
            t.example("wrong_caller_transfer", format!("{batch}: {}", f.detail));
        } else if !COUNTED_ELSEWHERE.contains(&f.rule.as_str()) {
            t.invariants.other_findings += 1;
            let who = f
                .call
                .and_then(|i| result.calls.get(i))
                .map(|c| c.label.clone())
                .unwrap_or_else(|| "-".into());
            let how = f.call.map(|i| knobs(plans, i)).unwrap_or_default();
            t.example(
                &f.rule,
                format!("{batch}: {who}: {}: {} ({how})", f.rule, f.detail),
            );
        }
    }
    let live: HashMap<&str, &CallRecord> = result
        .calls
        .iter()
        .filter(|c| c.outcome == Some(CallOutcome::Stuck))
        .map(|c| (c.transaction_id.as_str(), c))
        .collect();
    for h in held
        .iter()
        .filter(|h| !live.contains_key(h.transaction_id.as_str()))
    {
        t.invariants.pairs_held_after_call_ended += 1;
        let who = result
            .calls
            .iter()
            .find(|c| c.transaction_id == h.transaction_id)
            .map(|c| {
                format!(
                    "{} ({}, {}; {})",
                    c.label,
                    c.outcome.map(CallOutcome::as_str).unwrap_or("-"),
                    describe(c, contacts_of.get(&c.index).unwrap_or(&no_contacts)),
                    knobs(plans, c.index)
                )
            })
            .unwrap_or_else(|| format!("unknown transaction {}", h.transaction_id));
        t.example(
            "pair_held_after_call_ended",
            format!(
                "{batch}: pair ({}, {}) still held after the run by {who}",
                h.sma_number, h.connect_number
            ),
        );
    }
    t
}

fn wrong_lookup(a: &ContactAnswer, transaction_id: &str) -> bool {
    a.function == Function::Lookup
        && a.result == "found"
        && a.transaction_id.as_deref() != Some(transaction_id)
}

/// The system ended the call and the caller neither heard anything — an announcement of the
/// SMA (`Speak` / `PlayAudio` on LEG-A) or Connect's flow (a contact ran: its prompts played) —
/// nor reached a target.
pub fn is_silent(call: &CallRecord, contacts: &[&ContactRecord]) -> bool {
    !call.caller_hung_up && call.target.is_none() && call.heard.is_empty() && contacts.is_empty()
}

/// Stricter, reported but not an invariant: Connect dropped the contact (not the flow's own
/// goodbye) and the SMA then ended the call without a word of its own.
pub fn ended_quietly_after_connect_dropped(call: &CallRecord, contacts: &[&ContactRecord]) -> bool {
    !call.caller_hung_up
        && call.target.is_none()
        && call.heard.is_empty()
        && contacts.last().is_some_and(|c| c.ended_by == "connect")
}

/// Why a call ended on the busy / unavailable path (`None`: it was transferred, or the caller
/// hung up first). Read from what the caller heard and what the Connect functions answered.
pub fn fallback_cause(
    call: &CallRecord,
    contacts: &[&ContactRecord],
    messages: &Messages,
) -> Option<String> {
    let outcome = call.outcome.unwrap_or(CallOutcome::Stuck);
    match outcome {
        CallOutcome::Transferred | CallOutcome::CallerHungUp => return None,
        CallOutcome::Stuck => return Some("stuck".into()),
        CallOutcome::Rejected => return Some("rejected_first_invocation_failed".into()),
        _ => {}
    }
    let heard = |text: &str| call.heard.iter().any(|h| h == text);
    let prefix = if outcome == CallOutcome::Fallback {
        "fallback_target:"
    } else {
        ""
    };
    let cause = if heard(messages.busy.as_str()) {
        "no_free_pair".to_owned()
    } else if heard(messages.transfer_failed.as_str()) {
        "transfer_target_failed".to_owned()
    } else if contacts.is_empty() {
        if heard(messages.connect_failed.as_str()) {
            "connect_not_answered".to_owned()
        } else if heard(messages.unavailable.as_str()) {
            "claim_failed_store_unavailable".to_owned()
        } else {
            format!("ended_before_connect_{}", outcome.as_str())
        }
    } else if heard(messages.unavailable.as_str()) {
        format!(
            "store_unavailable_after_connect:{}",
            connect_cause(contacts)
        )
    } else {
        connect_cause(contacts)
    };
    Some(format!("{prefix}{cause}"))
}

/// What went wrong in Connect: the first lookup or transfer answer that was not a success, else
/// how the contact ended.
fn connect_cause(contacts: &[&ContactRecord]) -> String {
    for c in contacts {
        for a in &c.answers {
            let ok = match a.function {
                Function::Lookup => a.result == "found",
                Function::Transfer => a.result == "transferring",
                Function::Sma => true,
            };
            if !ok {
                let f = match a.function {
                    Function::Lookup => "lookup",
                    _ => "transfer",
                };
                return match &a.reason {
                    Some(r) => format!("{f}_{}_{r}", a.result),
                    None => format!("{f}_{}", a.result),
                };
            }
        }
    }
    match contacts.last().map(|c| c.ended_by.as_str()) {
        Some("connect") => "connect_dropped_the_contact".into(),
        Some("flow") => "flow_ended_without_transfer".into(),
        _ => "connect_leg_ended_before_transfer".into(),
    }
}

/// The abuse knobs of call `index`, for examples.
fn knobs(plans: &[CallPlan], index: usize) -> String {
    plans
        .iter()
        .find(|p| p.label == format!("soak {}", index + 1))
        .or_else(|| plans.get(index))
        .map(|p| {
            format!(
                "knobs: redeliver {:?}, hangup events {:?}, update delay {} ms, connect {:?}, target {:?}, caller {:?}",
                p.sma.redeliver, p.sma.hangup_events, p.sma.update_delay_ms, p.connect, p.target, p.caller_behaviour
            )
        })
        .unwrap_or_default()
}

/// A short description of a call for examples.
fn describe(call: &CallRecord, contacts: &[&ContactRecord]) -> String {
    let answers: Vec<String> = contacts
        .iter()
        .flat_map(|c| c.answers.iter())
        .map(|a| {
            format!(
                "{}={}{}",
                a.function.label(),
                a.result,
                a.reason
                    .as_ref()
                    .map(|r| format!("/{r}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    format!(
        "heard {:?}, bridges to Connect {}, contacts ended by {:?}, answers [{}], targets {:?}, hangup {:?}, updates {}",
        call.heard,
        call.connect_bridges.len(),
        contacts
            .iter()
            .map(|c| c.ended_by.as_str())
            .collect::<Vec<_>>(),
        answers.join(", "),
        call.target_uris,
        call.hangup_code,
        call.updates
    )
}

/// Pairs of holds of different calls that overlap on one pair (the later one second).
pub fn double_claims(holds: &[PairHold], end_ms: Ms) -> Vec<(PairHold, PairHold)> {
    let mut by_pair: BTreeMap<(&str, &str), Vec<&PairHold>> = BTreeMap::new();
    for h in holds {
        by_pair
            .entry((h.sma_number.as_str(), h.connect_number.as_str()))
            .or_default()
            .push(h);
    }
    let mut out = Vec::new();
    for list in by_pair.values_mut() {
        list.sort_by_key(|h| h.from_ms);
        for (j, later) in list.iter().enumerate() {
            let overlapping = list[..j].iter().find(|earlier| {
                earlier.call != later.call
                    && later.from_ms < earlier.until_ms.unwrap_or(end_ms.saturating_add(1))
            });
            if let Some(earlier) = overlapping {
                out.push(((*earlier).clone(), (*later).clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(call: usize, pair: (&str, &str), from: Ms, until: Option<Ms>) -> PairHold {
        PairHold {
            call,
            sma_number: pair.0.into(),
            connect_number: pair.1.into(),
            from_ms: from,
            until_ms: until,
        }
    }

    const P: (&str, &str) = ("+18005557777", "+18005551111");
    const Q: (&str, &str) = ("+18005558888", "+18005551111");

    #[test]
    fn reuse_after_release_is_not_a_double_claim() {
        let holds = vec![
            hold(0, P, 1_000, Some(5_000)),
            hold(1, P, 5_000, Some(9_000)),
            hold(2, Q, 2_000, None),
            hold(3, P, 9_000, None),
        ];
        assert!(double_claims(&holds, 20_000).is_empty());
    }

    #[test]
    fn overlapping_holds_of_two_calls_are_double_claims() {
        let holds = vec![
            hold(0, P, 1_000, Some(5_000)),
            hold(1, P, 4_900, Some(9_000)),
            // Same call, second bridge (after a redelivery): not a double claim.
            hold(1, P, 6_000, None),
            // Opened at the same instant as another call's.
            hold(2, Q, 2_000, Some(3_000)),
            hold(3, Q, 2_000, Some(2_500)),
        ];
        let found = double_claims(&holds, 20_000);
        let calls: Vec<(usize, usize)> = found.iter().map(|(a, b)| (a.call, b.call)).collect();
        assert_eq!(calls, vec![(0, 1), (2, 3)]);
        // An open hold lasts until the end of the run.
        let open = vec![hold(0, P, 1_000, None), hold(1, P, 19_000, Some(19_500))];
        assert_eq!(double_claims(&open, 20_000).len(), 1);
    }

    fn record(outcome: CallOutcome) -> CallRecord {
        CallRecord {
            label: "c".into(),
            transaction_id: "t1".into(),
            outcome: Some(outcome),
            ..CallRecord::default()
        }
    }

    fn contact(ended_by: &str, answers: Vec<ContactAnswer>) -> ContactRecord {
        ContactRecord {
            contact_id: "k".into(),
            ended_by: ended_by.into(),
            answers,
            ..ContactRecord::default()
        }
    }

    fn answer(
        function: Function,
        result: &str,
        reason: Option<&str>,
        txn: Option<&str>,
    ) -> ContactAnswer {
        ContactAnswer {
            function,
            result: result.into(),
            reason: reason.map(str::to_owned),
            transaction_id: txn.map(str::to_owned),
        }
    }

    #[test]
    fn causes_are_read_from_what_the_caller_heard_and_connect_answered() {
        let m = Messages::default();
        let mut busy = record(CallOutcome::Busy);
        busy.heard.push(m.busy.as_str().into());
        assert_eq!(
            fallback_cause(&busy, &[], &m).as_deref(),
            Some("no_free_pair")
        );

        let mut store = record(CallOutcome::Unavailable);
        store.heard.push(m.unavailable.as_str().into());
        assert_eq!(
            fallback_cause(&store, &[], &m).as_deref(),
            Some("claim_failed_store_unavailable")
        );

        let mut not_answered = record(CallOutcome::Unavailable);
        not_answered.heard.push(m.connect_failed.as_str().into());
        assert_eq!(
            fallback_cause(&not_answered, &[], &m).as_deref(),
            Some("connect_not_answered")
        );

        let mut lookup = record(CallOutcome::Unavailable);
        lookup.connect_bridges.push(("+1".into(), "+2".into()));
        lookup.heard.push(m.connect_failed.as_str().into());
        let c = contact(
            "flow",
            vec![answer(
                Function::Lookup,
                "error",
                Some("store_throttled"),
                None,
            )],
        );
        assert_eq!(
            fallback_cause(&lookup, &[&c], &m).as_deref(),
            Some("lookup_error_store_throttled")
        );
        let dropped = contact(
            "connect",
            vec![answer(Function::Lookup, "found", None, Some("t1"))],
        );
        assert_eq!(
            fallback_cause(&lookup, &[&dropped], &m).as_deref(),
            Some("connect_dropped_the_contact")
        );
        assert_eq!(
            fallback_cause(&record(CallOutcome::Transferred), &[], &m),
            None
        );
        assert_eq!(
            fallback_cause(&record(CallOutcome::CallerHungUp), &[], &m),
            None
        );
    }

    #[test]
    fn silence_is_only_when_the_system_ended_a_call_without_a_word() {
        let mut silent = record(CallOutcome::Unavailable);
        assert!(is_silent(&silent, &[]));
        let goodbye = contact("flow", Vec::new());
        assert!(!is_silent(&silent, &[&goodbye]));
        let dropped = contact("connect", Vec::new());
        assert!(
            !is_silent(&silent, &[&dropped]),
            "the flow's prompts were heard"
        );
        assert!(ended_quietly_after_connect_dropped(&silent, &[&dropped]));
        assert!(!ended_quietly_after_connect_dropped(&silent, &[&goodbye]));
        silent.heard.push("Goodbye.".into());
        assert!(!is_silent(&silent, &[]));
        assert!(!ended_quietly_after_connect_dropped(&silent, &[&dropped]));
        let mut gone = record(CallOutcome::CallerHungUp);
        gone.caller_hung_up = true;
        assert!(!is_silent(&gone, &[]));
    }

    #[test]
    fn wrong_caller_lookups_are_found() {
        let ok = answer(Function::Lookup, "found", None, Some("t1"));
        let wrong = answer(Function::Lookup, "found", None, Some("t2"));
        let not_found = answer(Function::Lookup, "not_found", None, None);
        let transfer = answer(Function::Transfer, "transferring", None, Some("t2"));
        assert!(!wrong_lookup(&ok, "t1"));
        assert!(wrong_lookup(&wrong, "t1"));
        assert!(!wrong_lookup(&not_found, "t1"));
        assert!(!wrong_lookup(&transfer, "t1"));
    }
}
