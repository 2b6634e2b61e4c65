//! What the functions answer: flat objects of string values (valid under both `STRING_MAP` and
//! `JSON` response validation), read in the flow as `$.External.<key>`. Absent values are
//! omitted, never `null`. Every answer has a `result` the flow can branch on; failures also
//! carry a `reason`.

use serde::Serialize;

use crate::request::RequestError;
use takeback_pairs::{LiveClaim, StoreError};
use takeback_sma::target::{ResolvedTarget, TargetRejection};

/// `reason` for a lookup that found no live claim.
pub const REASON_NO_LIVE_CLAIM: &str = "no_live_claim";
/// `reason` when the handler's own time budget ran out.
pub const REASON_TIMEOUT: &str = "timeout";
/// `reason` for `not_found` when `UpdateSipMediaApplicationCall` answered 404.
pub const REASON_CALL_ENDED: &str = "call_ended";

/// The `reason` for a store failure.
pub fn store_reason(error: &StoreError) -> &'static str {
    match error {
        StoreError::Throttled(_) => "store_throttled",
        StoreError::Unavailable(_) => "store_unavailable",
        StoreError::Corrupt(_) => "store_corrupt",
        StoreError::Other(_) => "store_error",
    }
}

fn flag(value: bool) -> String {
    if value { "true" } else { "false" }.to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LookupResult {
    Found,
    NotFound,
    Error,
}

/// The lookup function's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LookupResponse {
    pub result: LookupResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// The caller's own number, as the SMA received it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_calling_number: Option<String>,
    /// The property number the caller dialled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_called_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sma_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_number: Option<String>,
    /// Epoch milliseconds of the SMA's claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_timestamp: Option<String>,
    /// "true" when this lookup freed the pair (release-on-lookup mode): the flow must then carry
    /// `transaction_id` onward in a contact attribute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pair_released: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl LookupResponse {
    fn bare(result: LookupResult, reason: Option<&str>) -> Self {
        Self {
            result,
            transaction_id: None,
            original_calling_number: None,
            original_called_number: None,
            sma_number: None,
            connect_number: None,
            call_timestamp: None,
            pair_released: None,
            reason: reason.map(str::to_owned),
        }
    }

    pub fn found(claim: &LiveClaim) -> Self {
        Self {
            transaction_id: Some(claim.transaction_id.clone()),
            original_calling_number: Some(claim.original_calling_number.clone()),
            original_called_number: Some(claim.original_called_number.clone()),
            sma_number: Some(claim.pair.sma_number.clone()),
            connect_number: Some(claim.pair.connect_number.clone()),
            call_timestamp: Some(claim.call_timestamp_ms.to_string()),
            pair_released: Some(flag(claim.released)),
            ..Self::bare(LookupResult::Found, None)
        }
    }

    pub fn not_found() -> Self {
        Self::bare(LookupResult::NotFound, Some(REASON_NO_LIVE_CLAIM))
    }

    pub fn bad_request(error: RequestError) -> Self {
        Self::bare(LookupResult::Error, Some(error.reason()))
    }

    pub fn store_failed(error: &StoreError) -> Self {
        Self::bare(LookupResult::Error, Some(store_reason(error)))
    }

    pub fn timed_out() -> Self {
        Self::bare(LookupResult::Error, Some(REASON_TIMEOUT))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferResult {
    /// `UpdateSipMediaApplicationCall` was accepted; the SMA takes the call back.
    Transferring,
    /// The SMA call is gone (404) or no live claim matches the pair.
    NotFound,
    /// The per-call target broke the configured rules; nothing was sent.
    InvalidTarget,
    Error,
}

/// The transfer function's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferResponse {
    pub result: TransferResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_target_arn: Option<String>,
    /// "contact_flow" or "default".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_source: Option<String>,
    /// "false" when the transfer intent could not be stored; the transfer was still requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent_recorded: Option<String>,
    /// On `invalid_target`: the target the flow asked for (at most 30 characters echoed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TransferResponse {
    fn bare(result: TransferResult, reason: Option<&str>) -> Self {
        Self {
            result,
            transaction_id: None,
            transfer_target: None,
            transfer_target_arn: None,
            target_source: None,
            intent_recorded: None,
            requested_target: None,
            reason: reason.map(str::to_owned),
        }
    }

    /// After a failed update: `intent_recorded=true` tells the flow that the SMA will still
    /// transfer the caller from the recorded intent once the flow ends the contact.
    pub fn with_intent_recorded(mut self, recorded: bool) -> Self {
        self.intent_recorded = Some(flag(recorded));
        self
    }

    pub fn transferring(
        transaction_id: &str,
        target: &ResolvedTarget,
        intent_recorded: bool,
    ) -> Self {
        Self {
            transaction_id: Some(transaction_id.to_owned()),
            transfer_target: Some(target.target.uri.as_str().to_owned()),
            transfer_target_arn: Some(target.target.arn.as_str().to_owned()),
            target_source: Some(target.source.as_str().to_owned()),
            intent_recorded: Some(flag(intent_recorded)),
            ..Self::bare(TransferResult::Transferring, None)
        }
    }

    pub fn invalid_target(rejection: TargetRejection, requested: Option<&str>) -> Self {
        Self {
            requested_target: requested.map(|r| r.chars().take(30).collect()),
            ..Self::bare(TransferResult::InvalidTarget, Some(rejection.reason()))
        }
    }

    /// The pair lookup found no live claim.
    pub fn no_live_claim() -> Self {
        Self::bare(TransferResult::NotFound, Some(REASON_NO_LIVE_CLAIM))
    }

    pub fn bad_request(error: RequestError) -> Self {
        Self::bare(TransferResult::Error, Some(error.reason()))
    }

    pub fn store_failed(error: &StoreError) -> Self {
        Self::bare(TransferResult::Error, Some(store_reason(error)))
    }

    /// `UpdateSipMediaApplicationCall` failed.
    pub fn update_failed(transaction_id: &str, failure: UpdateFailure) -> Self {
        let result = match failure {
            UpdateFailure::CallNotFound => TransferResult::NotFound,
            _ => TransferResult::Error,
        };
        Self {
            transaction_id: Some(transaction_id.to_owned()),
            ..Self::bare(result, Some(failure.reason()))
        }
    }

    pub fn timed_out() -> Self {
        Self::bare(TransferResult::Error, Some(REASON_TIMEOUT))
    }
}

/// How `UpdateSipMediaApplicationCall` failed, independent of the SDK's error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateFailure {
    /// 404 `NotFoundException`: the call has already ended.
    CallNotFound,
    /// 429 `ThrottledClientException` (after the bounded retries).
    Throttled,
    /// 400 `BadRequestException`: e.g. an argument the service refused.
    BadRequest,
    /// 401/403: the function's role or the SMA id is wrong.
    AccessDenied,
    /// 5xx, `ServiceUnavailable`, connection failures.
    Unavailable,
    /// The SDK's attempt/operation timeout.
    TimedOut,
    Other,
}

impl UpdateFailure {
    pub fn reason(self) -> &'static str {
        match self {
            Self::CallNotFound => REASON_CALL_ENDED,
            Self::Throttled => "chime_throttled",
            Self::BadRequest => "chime_bad_request",
            Self::AccessDenied => "chime_access_denied",
            Self::Unavailable => "chime_unavailable",
            Self::TimedOut => "chime_timeout",
            Self::Other => "chime_error",
        }
    }
}

/// An `UpdateSipMediaApplicationCall` failure with its cause kept for the logs.
#[derive(Debug, thiserror::Error)]
#[error("UpdateSipMediaApplicationCall failed ({})", .kind.reason())]
pub struct UpdateCallError {
    pub kind: UpdateFailure,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl UpdateCallError {
    pub fn new(
        kind: UpdateFailure,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            source: Some(source.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use takeback_pairs::PairKey;
    use takeback_sma::target::TransferPolicy;

    /// Every answer must be a flat object of strings (Connect's STRING_MAP validation).
    fn assert_flat_strings(value: &Value) {
        let obj = value.as_object().expect("an object");
        assert!(obj.contains_key("result"));
        for (k, v) in obj {
            assert!(v.is_string(), "{k} is not a string: {v}");
        }
    }

    fn claim(released: bool) -> LiveClaim {
        LiveClaim {
            pair: PairKey {
                sma_number: "+18005557777".into(),
                connect_number: "+18005551111".into(),
            },
            transaction_id: "txn-1".into(),
            original_calling_number: "+13125550142".into(),
            original_called_number: "+18005550000".into(),
            call_timestamp_ms: 1_700_000_000_123,
            contact_id: Some("c-1".into()),
            released,
        }
    }

    #[test]
    fn found_carries_the_call_data_as_strings() {
        let v = serde_json::to_value(LookupResponse::found(&claim(true))).unwrap();
        assert_flat_strings(&v);
        assert_eq!(v["result"], "found");
        assert_eq!(v["transaction_id"], "txn-1");
        assert_eq!(v["original_calling_number"], "+13125550142");
        assert_eq!(v["original_called_number"], "+18005550000");
        assert_eq!(v["call_timestamp"], "1700000000123");
        assert_eq!(v["pair_released"], "true");
        assert!(v.get("reason").is_none());
    }

    #[test]
    fn failures_are_flat_and_carry_a_reason() {
        let cases = [
            (
                serde_json::to_value(LookupResponse::not_found()).unwrap(),
                "not_found",
                "no_live_claim",
            ),
            (
                serde_json::to_value(LookupResponse::bad_request(
                    RequestError::MissingCalledNumber,
                ))
                .unwrap(),
                "error",
                "missing_called_number",
            ),
            (
                serde_json::to_value(LookupResponse::store_failed(&StoreError::Corrupt(
                    "x".into(),
                )))
                .unwrap(),
                "error",
                "store_corrupt",
            ),
            (
                serde_json::to_value(LookupResponse::timed_out()).unwrap(),
                "error",
                "timeout",
            ),
        ];
        for (v, result, reason) in cases {
            assert_flat_strings(&v);
            assert_eq!(v["result"], result);
            assert_eq!(v["reason"], reason);
            assert!(v.get("transaction_id").is_none(), "no data on failure: {v}");
        }
    }

    #[test]
    fn transfer_answers() {
        let policy = TransferPolicy::new(
            "100",
            "arn:aws:chime:us-east-1:111122223333:vc/abc",
            Vec::<String>::new(),
            None,
        )
        .unwrap();
        let target = policy.resolve(Some("1234"), None).unwrap();
        let v =
            serde_json::to_value(TransferResponse::transferring("txn-1", &target, false)).unwrap();
        assert_flat_strings(&v);
        assert_eq!(v["result"], "transferring");
        assert_eq!(v["transfer_target"], "1234");
        assert_eq!(
            v["transfer_target_arn"],
            "arn:aws:chime:us-east-1:111122223333:vc/abc"
        );
        assert_eq!(v["target_source"], "contact_flow");
        assert_eq!(v["intent_recorded"], "false");

        let v = serde_json::to_value(TransferResponse::update_failed(
            "txn-1",
            UpdateFailure::CallNotFound,
        ))
        .unwrap();
        assert_eq!(v["result"], "not_found");
        assert_eq!(v["reason"], "call_ended");

        let v = serde_json::to_value(TransferResponse::update_failed(
            "txn-1",
            UpdateFailure::Throttled,
        ))
        .unwrap();
        assert_eq!(v["result"], "error");
        assert_eq!(v["reason"], "chime_throttled");

        let long = "9".repeat(100);
        let v = serde_json::to_value(TransferResponse::invalid_target(
            TargetRejection::PatternMismatch,
            Some(&long),
        ))
        .unwrap();
        assert_flat_strings(&v);
        assert_eq!(v["result"], "invalid_target");
        assert_eq!(v["reason"], "target_pattern_mismatch");
        assert_eq!(v["requested_target"].as_str().unwrap().len(), 30);
    }

    #[test]
    fn every_update_failure_has_a_distinct_reason() {
        let all = [
            UpdateFailure::CallNotFound,
            UpdateFailure::Throttled,
            UpdateFailure::BadRequest,
            UpdateFailure::AccessDenied,
            UpdateFailure::Unavailable,
            UpdateFailure::TimedOut,
            UpdateFailure::Other,
        ];
        let reasons: std::collections::BTreeSet<_> = all.iter().map(|f| f.reason()).collect();
        assert_eq!(reasons.len(), all.len());
    }
}
