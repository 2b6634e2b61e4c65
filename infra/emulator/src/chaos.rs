//! Seeded randomness for abuse runs, and the random faults of the fake Chime SDK Voice API.
//!
//! [`ChaosRng`] is SplitMix64: tiny, fast, and the same sequence for the same seed on every
//! machine, so a soak or fuzz run is reproducible from its seed. It is not cryptographic.
//!
//! [`ChimeChaos`] is what `soak` (or a test) installs on a run's world: every
//! `UpdateSipMediaApplicationCall` then draws a [`ChimeFault`] by the configured rates —
//! `ThrottledClientException` (429), `ServiceUnavailableException` (503),
//! `ServiceFailureException` (500), or an answer that comes later than the SDK's 900 ms attempt
//! timeout, either before the update is applied (nothing happened) or after (the update was
//! accepted, but the client never hears it and retries). Scripted faults of a scenario
//! (`sma.chime_api_faults`) still come first.
//!
//! Nothing here imports another module of the crate.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// SplitMix64 (Steele, Lea, Flood 2014): a seedable 64-bit generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaosRng(u64);

impl ChaosRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator for item `index` of a run seeded with `seed`: independent of how many numbers
    /// other items drew, so item `index` can be replayed alone.
    pub fn for_item(seed: u64, index: u64) -> Self {
        let mut mixer = Self(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        Self(mixer.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform in `lo..=hi` (`lo` when `hi < lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.below(hi - lo + 1)
        }
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One element, uniformly (`None` for an empty slice).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        items.get(self.below(items.len() as u64) as usize)
    }
}

/// How long a "timed out" Chime API answer is held back: beyond the SDK's 900 ms attempt timeout.
pub const CHIME_TIMEOUT_DELAY: Duration = Duration::from_millis(1500);

/// A fault of the fake Chime SDK Voice API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChimeFault {
    /// 429 `ThrottledClientException`.
    Throttled,
    /// 503 `ServiceUnavailableException`.
    Unavailable,
    /// 500 `ServiceFailureException`.
    Failure,
    /// The answer (503) comes after the client gave up; the update was not applied.
    TimeoutBeforeApply,
    /// The update was applied, but the answer comes after the client gave up.
    TimeoutAfterApply,
}

impl ChimeFault {
    pub fn label(self) -> &'static str {
        match self {
            Self::Throttled => "throttled_429",
            Self::Unavailable => "unavailable_503",
            Self::Failure => "failure_500",
            Self::TimeoutBeforeApply => "timeout_before_apply",
            Self::TimeoutAfterApply => "timeout_after_apply",
        }
    }

    /// The error the API answers (`None`: the update goes through).
    pub fn error_kind(self) -> Option<&'static str> {
        match self {
            Self::Throttled => Some("ThrottledClientException"),
            Self::Unavailable | Self::TimeoutBeforeApply => Some("ServiceUnavailableException"),
            Self::Failure => Some("ServiceFailureException"),
            Self::TimeoutAfterApply => None,
        }
    }
}

/// Probability of each fault per `UpdateSipMediaApplicationCall` request (their sum ≤ 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ChimeFaultRates {
    pub throttled: f64,
    pub unavailable: f64,
    pub failure: f64,
    pub timeout_before_apply: f64,
    pub timeout_after_apply: f64,
}

impl ChimeFaultRates {
    /// Draws the fault for one request, if any.
    pub fn choose(&self, rng: &mut ChaosRng) -> Option<ChimeFault> {
        let x = rng.unit();
        let mut edge = 0.0;
        for (rate, fault) in [
            (self.throttled, ChimeFault::Throttled),
            (self.unavailable, ChimeFault::Unavailable),
            (self.failure, ChimeFault::Failure),
            (self.timeout_before_apply, ChimeFault::TimeoutBeforeApply),
            (self.timeout_after_apply, ChimeFault::TimeoutAfterApply),
        ] {
            edge += rate.max(0.0);
            if x < edge {
                return Some(fault);
            }
        }
        None
    }
}

/// Random Chime API faults for one run, and what was injected.
#[derive(Debug, Clone)]
pub struct ChimeChaos {
    pub rates: ChimeFaultRates,
    rng: ChaosRng,
    /// Requests seen while installed.
    pub requests: u64,
    pub injected: BTreeMap<ChimeFault, u64>,
}

impl ChimeChaos {
    pub fn new(rates: ChimeFaultRates, seed: u64) -> Self {
        Self {
            rates,
            rng: ChaosRng::new(seed),
            requests: 0,
            injected: BTreeMap::new(),
        }
    }

    /// The fault for the next request (counted), if any.
    pub fn next_fault(&mut self) -> Option<ChimeFault> {
        self.requests += 1;
        let fault = self.rates.choose(&mut self.rng)?;
        *self.injected.entry(fault).or_default() += 1;
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_items_are_independent() {
        let a: Vec<u64> = (0..5).map(|_| ChaosRng::new(7).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut x = ChaosRng::new(7);
        let mut y = ChaosRng::new(8);
        assert_ne!(x.next_u64(), y.next_u64());
        assert_eq!(ChaosRng::for_item(1, 42), ChaosRng::for_item(1, 42));
        assert_ne!(
            ChaosRng::for_item(1, 42).next_u64(),
            ChaosRng::for_item(1, 43).next_u64()
        );
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut r = ChaosRng::new(1);
        for _ in 0..10_000 {
            let v = r.range(3, 9);
            assert!((3..=9).contains(&v));
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.range(5, 5), 5);
        assert!(r.pick::<u8>(&[]).is_none());
    }

    #[test]
    fn fault_rates_are_honoured() {
        let mut rng = ChaosRng::new(99);
        assert_eq!(ChimeFaultRates::default().choose(&mut rng), None);
        let always = ChimeFaultRates {
            timeout_after_apply: 1.0,
            ..ChimeFaultRates::default()
        };
        assert_eq!(always.choose(&mut rng), Some(ChimeFault::TimeoutAfterApply));
        let mut chaos = ChimeChaos::new(
            ChimeFaultRates {
                throttled: 0.2,
                failure: 0.1,
                ..ChimeFaultRates::default()
            },
            5,
        );
        for _ in 0..20_000 {
            chaos.next_fault();
        }
        let throttled = chaos
            .injected
            .get(&ChimeFault::Throttled)
            .copied()
            .unwrap_or(0);
        let failed = chaos
            .injected
            .get(&ChimeFault::Failure)
            .copied()
            .unwrap_or(0);
        assert_eq!(chaos.requests, 20_000);
        assert!((3_600..4_400).contains(&throttled), "{throttled}");
        assert!((1_600..2_400).contains(&failed), "{failed}");
        assert!(!chaos.injected.contains_key(&ChimeFault::Unavailable));
    }
}
