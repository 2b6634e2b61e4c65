//! The calls of a soak: arrivals at a steady rate on the virtual clock, each call with its own
//! randomly drawn behaviour (seeded, so a run is reproducible): which events the SMA re-delivers,
//! in which order a LEG-B hangup is reported, how long `CALL_UPDATE_REQUESTED` takes, whether
//! Connect or the caller hangs up mid-flow (disconnect races), whether Connect or the target
//! answers.

use emulator::chaos::ChaosRng;
use emulator::scenario::{
    Answer, CallPlan, CallerBehaviour, ConnectBehaviour, HangupEvents, SmaKnobs, TargetBehaviour,
    offset_number,
};
use serde::Serialize;

/// Event types the SMA may deliver twice (as after its 5 s Lambda timeout).
pub const REDELIVERABLE: &[&str] = &[
    "NEW_INBOUND_CALL",
    "ACTION_SUCCESSFUL",
    "ACTION_FAILED",
    "HANGUP",
    "CALL_UPDATE_REQUESTED",
];

const HANGUP_ORDERS: &[HangupEvents] = &[
    HangupEvents::Hangup,
    HangupEvents::HangupThenSuccess,
    HangupEvents::SuccessThenHangup,
    HangupEvents::Success,
];

/// How often each abuse happens, per call.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CallAbuse {
    /// The SMA re-delivers one or two event types of the call.
    pub redeliver: f64,
    /// `CALL_UPDATE_REQUESTED` arrives late (0.5–8 s), racing Connect's own disconnect.
    pub slow_update: f64,
    /// Connect drops the contact 0.5–20 s after answering, wherever the flow is.
    pub connect_drops: f64,
    pub connect_busy: f64,
    pub connect_no_answer: f64,
    /// The caller hangs up 0.2–40 s after calling, wherever the call is.
    pub caller_hangs_up: f64,
    pub target_busy: f64,
    pub target_no_answer: f64,
    /// The target hangs up 1–30 s after answering.
    pub target_hangs_up: f64,
    /// The caller keys an extension in the IVR (else the flow's default transfer).
    pub keys_extension: f64,
}

impl Default for CallAbuse {
    fn default() -> Self {
        Self {
            redeliver: 0.10,
            slow_update: 0.10,
            connect_drops: 0.06,
            connect_busy: 0.01,
            connect_no_answer: 0.01,
            caller_hangs_up: 0.05,
            target_busy: 0.02,
            target_no_answer: 0.01,
            target_hangs_up: 0.10,
            keys_extension: 0.5,
        }
    }
}

/// What the abuse knobs did to one call, counted for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AbuseCounts {
    pub redelivered_event_types: u64,
    pub slow_updates: u64,
    pub connect_drops: u64,
    pub connect_busy: u64,
    pub connect_no_answer: u64,
    pub caller_hangups: u64,
    pub target_busy: u64,
    pub target_no_answer: u64,
    pub target_hangups: u64,
    /// Calls per `hangup_events` order.
    pub hangup_orders: std::collections::BTreeMap<String, u64>,
}

impl AbuseCounts {
    pub fn add(&mut self, other: &Self) {
        self.redelivered_event_types += other.redelivered_event_types;
        self.slow_updates += other.slow_updates;
        self.connect_drops += other.connect_drops;
        self.connect_busy += other.connect_busy;
        self.connect_no_answer += other.connect_no_answer;
        self.caller_hangups += other.caller_hangups;
        self.target_busy += other.target_busy;
        self.target_no_answer += other.target_no_answer;
        self.target_hangups += other.target_hangups;
        for (k, v) in &other.hangup_orders {
            *self.hangup_orders.entry(k.clone()).or_default() += v;
        }
    }
}

fn order_name(h: HangupEvents) -> &'static str {
    match h {
        HangupEvents::Hangup => "hangup",
        HangupEvents::HangupThenSuccess => "hangup_then_success",
        HangupEvents::SuccessThenHangup => "success_then_hangup",
        HangupEvents::Success => "success",
    }
}

/// `n` calls arriving at `rate` a second (first at 0), numbered from `first` (callers
/// `caller + index`), each drawn from `ChaosRng::for_item(seed, index)`.
pub fn soak_plans(
    caller: &str,
    dialled: &str,
    first: usize,
    n: usize,
    rate: f64,
    seed: u64,
    abuse: &CallAbuse,
) -> (Vec<CallPlan>, AbuseCounts) {
    let gap_ms = if rate > 0.0 { 1000.0 / rate } else { 1000.0 };
    let mut counts = AbuseCounts::default();
    let plans = (0..n)
        .map(|k| {
            let index = first + k;
            let mut rng = ChaosRng::for_item(seed, index as u64);
            // Arrivals: evenly spaced with a jitter of up to ±40 % of a gap, on 100 ms steps.
            let jitter = (rng.unit() - 0.5) * 0.8 * gap_ms;
            let at = (k as f64 * gap_ms + jitter).max(0.0) as u64 / 100 * 100;
            call_plan(
                index,
                offset_number(caller, index as u64),
                dialled,
                at,
                &mut rng,
                abuse,
                &mut counts,
            )
        })
        .collect::<Vec<_>>();
    let mut plans = plans;
    plans.sort_by_key(|p| p.at_ms);
    (plans, counts)
}

fn call_plan(
    index: usize,
    caller: String,
    dialled: &str,
    at_ms: u64,
    rng: &mut ChaosRng,
    abuse: &CallAbuse,
    counts: &mut AbuseCounts,
) -> CallPlan {
    let hangup_events = rng
        .pick(HANGUP_ORDERS)
        .copied()
        .unwrap_or(HangupEvents::HangupThenSuccess);
    *counts
        .hangup_orders
        .entry(order_name(hangup_events).to_owned())
        .or_default() += 1;
    let mut redeliver = Vec::new();
    if rng.chance(abuse.redeliver) {
        for _ in 0..rng.range(1, 2) {
            if let Some(e) = rng.pick(REDELIVERABLE)
                && !redeliver.iter().any(|r: &String| r.as_str() == *e)
            {
                redeliver.push((*e).to_owned());
            }
        }
        counts.redelivered_event_types += redeliver.len() as u64;
    }
    let update_delay_ms = if rng.chance(abuse.slow_update) {
        counts.slow_updates += 1;
        rng.range(500, 8_000) / 100 * 100
    } else {
        200
    };
    let connect_answer = pick_answer(
        rng,
        abuse.connect_busy,
        abuse.connect_no_answer,
        &mut counts.connect_busy,
        &mut counts.connect_no_answer,
    );
    let connect = ConnectBehaviour {
        answer: connect_answer,
        answer_after_ms: rng.range(5, 25) * 100,
        hangs_up_after_ms: rng.chance(abuse.connect_drops).then(|| {
            counts.connect_drops += 1;
            rng.range(5, 200) * 100
        }),
    };
    let target_answer = pick_answer(
        rng,
        abuse.target_busy,
        abuse.target_no_answer,
        &mut counts.target_busy,
        &mut counts.target_no_answer,
    );
    let target = TargetBehaviour {
        answer: target_answer,
        answer_after_ms: rng.range(10, 40) * 100,
        hangs_up_after_ms: rng.chance(abuse.target_hangs_up).then(|| {
            counts.target_hangups += 1;
            rng.range(10, 300) * 100
        }),
    };
    let ivr_input = if rng.chance(abuse.keys_extension) {
        vec![format!("{}", rng.range(2000, 2999))]
    } else {
        Vec::new()
    };
    let caller_behaviour = CallerBehaviour {
        ivr_input,
        input_after_ms: rng.range(5, 30) * 100,
        hangs_up_at_ms: rng.chance(abuse.caller_hangs_up).then(|| {
            counts.caller_hangups += 1;
            rng.range(2, 400) * 100
        }),
        talk_ms: rng.range(50, 200) * 100,
    };
    CallPlan {
        label: format!("soak {}", index + 1),
        caller,
        dialled: dialled.to_owned(),
        at_ms,
        connect,
        target,
        caller_behaviour,
        sma: SmaKnobs {
            hangup_events,
            update_delay_ms,
            redeliver,
            chime_api_faults: Vec::new(),
        },
        expect: Vec::new(),
    }
}

fn pick_answer(
    rng: &mut ChaosRng,
    busy: f64,
    no_answer: f64,
    busy_count: &mut u64,
    no_answer_count: &mut u64,
) -> Answer {
    let x = rng.unit();
    if x < busy {
        *busy_count += 1;
        Answer::Busy
    } else if x < busy + no_answer {
        *no_answer_count += 1;
        Answer::NoAnswer
    } else {
        Answer::Answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_reproducible_ordered_and_numbered() {
        let abuse = CallAbuse::default();
        let (a, ca) = soak_plans("+12065550100", "+18005550100", 100, 500, 2.0, 9, &abuse);
        let (b, cb) = soak_plans("+12065550100", "+18005550100", 100, 500, 2.0, 9, &abuse);
        assert_eq!(a.len(), 500);
        assert_eq!(ca, cb);
        assert!(a.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        let callers: std::collections::BTreeSet<&str> =
            a.iter().map(|p| p.caller.as_str()).collect();
        assert_eq!(callers.len(), 500, "every call has its own caller");
        assert!(callers.contains("+12065550200"));
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.sma, y.sma);
            assert_eq!(x.connect, y.connect);
            assert_eq!(x.at_ms, y.at_ms);
        }
        // 500 calls at 2/s span about 250 s.
        let last = a.last().map(|p| p.at_ms).unwrap_or(0);
        assert!((240_000..=260_000).contains(&last), "{last}");
    }

    #[test]
    fn abuse_rates_show_up_in_the_plans() {
        let abuse = CallAbuse::default();
        let (plans, counts) = soak_plans("+12065550100", "+18005550100", 0, 4_000, 1.0, 1, &abuse);
        let redelivered = plans.iter().filter(|p| !p.sma.redeliver.is_empty()).count();
        assert!((300..500).contains(&redelivered), "{redelivered}");
        let drops = plans
            .iter()
            .filter(|p| p.connect.hangs_up_after_ms.is_some())
            .count() as u64;
        assert_eq!(drops, counts.connect_drops);
        assert!((160..330).contains(&drops), "{drops}");
        assert_eq!(counts.hangup_orders.len(), 4, "{:?}", counts.hangup_orders);
        assert!(plans.iter().all(|p| {
            p.sma
                .redeliver
                .iter()
                .all(|e| REDELIVERABLE.contains(&e.as_str()))
        }));
        let none = CallAbuse {
            redeliver: 0.0,
            slow_update: 0.0,
            connect_drops: 0.0,
            connect_busy: 0.0,
            connect_no_answer: 0.0,
            caller_hangs_up: 0.0,
            target_busy: 0.0,
            target_no_answer: 0.0,
            target_hangs_up: 0.0,
            keys_extension: 0.0,
        };
        let (calm, c) = soak_plans("+12065550100", "+18005550100", 0, 200, 1.0, 1, &none);
        assert!(calm.iter().all(|p| p.sma.redeliver.is_empty()
            && p.sma.update_delay_ms == 200
            && p.connect.answer == Answer::Answer
            && p.caller_behaviour.hangs_up_at_ms.is_none()));
        assert_eq!(c.caller_hangups + c.connect_drops + c.slow_updates, 0);
    }
}
