//! The Chime SDK Voice adapter: `UpdateSipMediaApplicationCall` through the SDK client, behind
//! the `takeback_connect::CallUpdater` port, so the transfer handler is tested with a recording
//! fake and, in integration tests, with this real client against a loopback server.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_chimesdkvoice::error::SdkError;
use aws_sdk_chimesdkvoice::operation::update_sip_media_application_call::UpdateSipMediaApplicationCallError as UpdateError;
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use takeback_connect::{CallUpdater, UpdateCallError, UpdateFailure};

/// The SDK client's configuration from the shared `SdkConfig` (bounded timeouts and retries from
/// `takeback-sdk`; the endpoint from `AWS_ENDPOINT_URL_CHIME_SDK_VOICE` when set), plus
/// [`ThrottledClientIsThrottling`]. Tests add `.endpoint_url(...)` before building.
pub fn client_config(sdk_config: &SdkConfig) -> aws_sdk_chimesdkvoice::config::Builder {
    aws_sdk_chimesdkvoice::config::Builder::from(sdk_config)
        .retry_classifier(ThrottledClientIsThrottling)
}

/// The production updater: an SDK client built from [`client_config`].
pub fn client(sdk_config: &SdkConfig) -> SdkCallUpdater {
    SdkCallUpdater(aws_sdk_chimesdkvoice::Client::from_conf(
        client_config(sdk_config).build(),
    ))
}

/// [`CallUpdater`] over the Chime SDK Voice client.
#[derive(Debug, Clone)]
pub struct SdkCallUpdater(pub aws_sdk_chimesdkvoice::Client);

impl From<aws_sdk_chimesdkvoice::Client> for SdkCallUpdater {
    fn from(client: aws_sdk_chimesdkvoice::Client) -> Self {
        Self(client)
    }
}

/// The Chime SDK Voice API answers throttling with `ThrottledClientException` (HTTP 429), a code
/// the SDK's standard classifiers do not know, so without this a throttled transfer would not
/// be retried at all. With it, a 429 gets the one bounded retry of `takeback-sdk`.
#[derive(Debug, Clone, Copy)]
pub struct ThrottledClientIsThrottling;

impl ClassifyRetry for ThrottledClientIsThrottling {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.response().map(|r| r.status().as_u16()) {
            Some(429) => RetryAction::throttling_error(),
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "ThrottledClientIsThrottling"
    }
}

impl CallUpdater for SdkCallUpdater {
    async fn update_call(
        &self,
        sip_media_application_id: &str,
        transaction_id: &str,
        arguments: BTreeMap<String, String>,
    ) -> Result<(), UpdateCallError> {
        self.0
            .update_sip_media_application_call()
            .sip_media_application_id(sip_media_application_id)
            .transaction_id(transaction_id)
            .set_arguments(Some(arguments.into_iter().collect()))
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

/// SDK error → what the flow needs to know, keeping the SDK error as the source.
pub fn classify(error: SdkError<UpdateError, HttpResponse>) -> UpdateCallError {
    let kind = match &error {
        SdkError::TimeoutError(_) => UpdateFailure::TimedOut,
        SdkError::DispatchFailure(f) if f.is_timeout() => UpdateFailure::TimedOut,
        SdkError::DispatchFailure(_) => UpdateFailure::Unavailable,
        SdkError::ServiceError(e) => match e.err() {
            UpdateError::NotFoundException(_) => UpdateFailure::CallNotFound,
            UpdateError::ThrottledClientException(_) => UpdateFailure::Throttled,
            UpdateError::BadRequestException(_) => UpdateFailure::BadRequest,
            UpdateError::ForbiddenException(_) | UpdateError::UnauthorizedClientException(_) => {
                UpdateFailure::AccessDenied
            }
            UpdateError::ServiceUnavailableException(_)
            | UpdateError::ServiceFailureException(_) => UpdateFailure::Unavailable,
            // An error code this SDK version does not model: go by the HTTP status.
            _ => match e.raw().status().as_u16() {
                404 => UpdateFailure::CallNotFound,
                429 => UpdateFailure::Throttled,
                400 => UpdateFailure::BadRequest,
                401 | 403 => UpdateFailure::AccessDenied,
                500..=599 => UpdateFailure::Unavailable,
                _ => UpdateFailure::Other,
            },
        },
        _ => UpdateFailure::Other,
    };
    UpdateCallError::new(kind, error)
}
