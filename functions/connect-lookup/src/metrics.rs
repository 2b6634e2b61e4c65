//! What one lookup counts (see `takeback_common::metrics`), read from its answer.

use takeback_common::metrics::{Outcome, names};
use takeback_connect::response::{LookupResponse, LookupResult};

/// The `Function` dimension of this handler's metrics.
pub const FUNCTION: &str = "connect-lookup";

pub fn outcome(answer: &LookupResponse) -> Outcome {
    let reason = answer.reason.as_deref().unwrap_or_default();
    let label = match answer.result {
        LookupResult::Found => "found".to_owned(),
        LookupResult::NotFound => format!("not_found:{reason}"),
        LookupResult::Error => format!("error:{reason}"),
    };
    Outcome::new(FUNCTION)
        .label(label)
        .count_if(answer.result == LookupResult::Found, names::LOOKUPS_FOUND)
        .count_if(
            answer.result == LookupResult::NotFound,
            names::LOOKUPS_NOT_FOUND,
        )
        // The lookup's only remote work is one DynamoDB operation, so its timeout is the store's.
        .count_if(
            reason.starts_with("store_") || reason == "timeout",
            names::STORE_ERRORS,
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use takeback_pairs::{LiveClaim, PairKey};

    #[test]
    fn found_not_found_and_store_failures_are_counted() {
        let claim = LiveClaim {
            pair: PairKey {
                sma_number: "+15550100".into(),
                connect_number: "+15550200".into(),
            },
            transaction_id: "t-1".into(),
            original_calling_number: "+15550300".into(),
            original_called_number: "+15550400".into(),
            call_timestamp_ms: 1,
            contact_id: None,
            released: false,
        };
        assert_eq!(
            outcome(&LookupResponse::found(&claim)).counts(),
            [names::LOOKUPS_FOUND]
        );
        assert_eq!(
            outcome(&LookupResponse::not_found()).counts(),
            [names::LOOKUPS_NOT_FOUND]
        );
        assert_eq!(
            outcome(&LookupResponse::timed_out()).counts(),
            [names::STORE_ERRORS]
        );
    }
}
