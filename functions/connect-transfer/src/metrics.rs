//! What one transfer request counts (see `takeback_common::metrics`), read from its answer.

use takeback_common::metrics::{Outcome, names};
use takeback_connect::response::{TransferResponse, TransferResult};

/// The `Function` dimension of this handler's metrics.
pub const FUNCTION: &str = "connect-transfer";

pub fn outcome(answer: &TransferResponse) -> Outcome {
    let reason = answer.reason.as_deref().unwrap_or_default();
    let result = match answer.result {
        TransferResult::Transferring => "transferring",
        TransferResult::NotFound => "not_found",
        TransferResult::InvalidTarget => "invalid_target",
        TransferResult::Error => "error",
    };
    let label = if reason.is_empty() {
        result.to_owned()
    } else {
        format!("{result}:{reason}")
    };
    let intent_lost = answer.intent_recorded.as_deref() == Some("false");
    Outcome::new(FUNCTION)
        .label(label)
        .count_if(
            answer.result == TransferResult::Transferring,
            names::TRANSFERS,
        )
        .count_if(
            answer.result == TransferResult::Error,
            names::TRANSFER_FAILURES,
        )
        .count_if(
            reason.starts_with("store_") || intent_lost,
            names::STORE_ERRORS,
        )
        .count_if(reason.starts_with("chime_"), names::API_ERRORS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use takeback_connect::response::UpdateFailure;

    #[test]
    fn failed_updates_count_a_transfer_failure_and_the_failing_side() {
        assert_eq!(
            outcome(&TransferResponse::update_failed(
                "t-1",
                UpdateFailure::Throttled
            ))
            .counts(),
            [names::TRANSFER_FAILURES, names::API_ERRORS]
        );
        assert_eq!(
            outcome(&TransferResponse::timed_out()).counts(),
            [names::TRANSFER_FAILURES]
        );
        // The call ended before the update: nothing failed on our side.
        assert!(
            outcome(&TransferResponse::update_failed(
                "t-1",
                UpdateFailure::CallNotFound
            ))
            .counts()
            .is_empty()
        );
        let lost_intent = TransferResponse::update_failed("t-1", UpdateFailure::Unavailable)
            .with_intent_recorded(false);
        assert_eq!(
            outcome(&lost_intent).counts(),
            [
                names::TRANSFER_FAILURES,
                names::STORE_ERRORS,
                names::API_ERRORS
            ]
        );
    }
}
