//! DynamoDB SDK errors to the ports' [`StoreError`] kinds, in one place for every store.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use takeback_common::StoreError;

pub(crate) fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException"
            | "ProvisionedThroughputExceeded"
            | "ThrottlingException"
            | "ThrottlingError"
            | "RequestLimitExceeded"
            | "Throttling"
    )
}

/// Whether a request failed in a way worth repeating: throttling, 5xx, a timeout, a dropped
/// or refused connection, an unreadable response (the same split as [`map_sdk_error`]), and a
/// single-item write on an item that another request's transaction is changing
/// (`TransactionConflictException`): that transaction ends within milliseconds, and the repeat
/// then meets the item as it left it, so its condition decides (a claim wins or finds the pair
/// taken, a release finds its owner or not). Without the retry, a fast-path claim that met a
/// fallback's transaction on its pair refused the caller as "unavailable".
pub fn is_transient_sdk_error<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default();
            is_throttling_code(code)
                || matches!(
                    code,
                    "InternalServerError" | "ServiceUnavailable" | "TransactionConflictException"
                )
                || se.raw().status().as_u16() >= 500
                || se.raw().status().as_u16() == 429
        }
        _ => false,
    }
}

/// SDK errors to [`StoreError`], keeping the source: throttling → `Throttled`; timeouts, dispatch
/// failures, unreadable responses and 5xx → `Unavailable`; the rest → `Other`.
pub fn map_sdk_error<E>(err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(Box::new(err))
        }
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or_default();
            if is_throttling_code(code) || status == 429 {
                StoreError::Throttled(Box::new(err))
            } else if status >= 500 || matches!(code, "InternalServerError" | "ServiceUnavailable")
            {
                StoreError::Unavailable(Box::new(err))
            } else {
                StoreError::Other(Box::new(err))
            }
        }
        _ => StoreError::Other(Box::new(err)),
    }
}
