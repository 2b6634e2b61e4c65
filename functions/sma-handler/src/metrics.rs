//! What one SMA invocation counts (see `takeback_common::metrics`): claims and busy from the
//! claim's result, store errors from any failed store operation, and the fallbacks, transfers
//! and transfer failures the decision started.

use takeback_common::metrics::{Outcome, names};
use takeback_pairs::ClaimOutcome;
use takeback_sma::call_machine::StoreResults;

/// The `Function` dimension of this handler's metrics.
pub const FUNCTION: &str = "sma-handler";

/// `outcome` is the decision's label (`Decision::outcome`).
pub fn outcome(outcome: &'static str, results: &StoreResults) -> Outcome {
    let store_failed = results.claim.as_ref().is_some_and(Result::is_err)
        || results.release.as_ref().is_some_and(Result::is_err)
        || results.transfer_intent.as_ref().is_some_and(Result::is_err);
    Outcome::new(FUNCTION)
        .label(outcome)
        .count_if(
            matches!(results.claim, Some(Ok(ClaimOutcome::Claimed(_)))),
            names::CLAIMS,
        )
        .count_if(
            matches!(results.claim, Some(Ok(ClaimOutcome::Busy))),
            names::BUSY,
        )
        .count_if(store_failed, names::STORE_ERRORS)
        .count_if(outcome == "bridging_to_fallback", names::FALLBACKS)
        .count_if(outcome == "bridging_to_target", names::TRANSFERS)
        .count_if(
            outcome == "transfer_bridge_failed",
            names::TRANSFER_FAILURES,
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use takeback_pairs::{Claim, PairKey};
    use takeback_sma::call_machine::StoreFailed;

    fn claimed() -> ClaimOutcome {
        ClaimOutcome::Claimed(Claim {
            pair: PairKey {
                sma_number: "+15550100".into(),
                connect_number: "+15550200".into(),
            },
            transaction_id: "t-1".into(),
            lease_expires_at: 1,
        })
    }

    #[test]
    fn a_claim_counts_a_claim_and_nothing_else() {
        let results = StoreResults {
            claim: Some(Ok(claimed())),
            ..StoreResults::default()
        };
        assert_eq!(
            outcome("bridging_to_connect", &results).counts(),
            [names::CLAIMS]
        );
    }

    #[test]
    fn busy_counts_whether_the_caller_hears_busy_or_goes_to_the_fallback() {
        let results = StoreResults {
            claim: Some(Ok(ClaimOutcome::Busy)),
            ..StoreResults::default()
        };
        assert_eq!(outcome("no_free_pair", &results).counts(), [names::BUSY]);
        assert_eq!(
            outcome("bridging_to_fallback", &results).counts(),
            [names::BUSY, names::FALLBACKS]
        );
    }

    #[test]
    fn failed_store_work_and_transfers_are_counted() {
        let results = StoreResults {
            release: Some(Err(StoreFailed)),
            ..StoreResults::default()
        };
        assert_eq!(
            outcome("bridging_to_target", &results).counts(),
            [names::STORE_ERRORS, names::TRANSFERS]
        );
        assert_eq!(
            outcome("transfer_bridge_failed", &StoreResults::default()).counts(),
            [names::TRANSFER_FAILURES]
        );
        assert!(
            outcome("in_connect", &StoreResults::default())
                .counts()
                .is_empty()
        );
    }
}
