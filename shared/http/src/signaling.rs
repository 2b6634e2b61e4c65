//! Sending CallSignaling messages to Alexa: `POST {apiEndpoint}/v1/communications/signaling`
//! with `Authorization: Bearer <LWA access token>` and the flat message body.
//!
//! 2xx is success. 401 invalidates the token and retries once with a refreshed one (that retry
//! is not counted against the attempts). 429 and 5xx, and transport errors, are retried with
//! exponential backoff (honouring `Retry-After`) up to `max_attempts`. Other 4xx are returned
//! with Alexa's `{"message": ...}`. Everything stops at the caller's [`Deadline`]: each attempt's
//! timeout is cut to the time left and no retry starts whose backoff would end past it.

use crate::client::{HttpClient, HttpError};
use crate::lwa::{AccessTokenProvider, TokenError};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use std::sync::Arc;
use takeback_alexa::budget::Deadline;
use takeback_alexa::model::SignalingMessage;
use takeback_alexa::retry::{RetryPolicy, parse_retry_after};
use takeback_alexa::store::TokenStore;
use tracing::{info, warn};

pub const SIGNALING_PATH: &str = "/v1/communications/signaling";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub status: u16,
    pub attempts: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum SignalingError {
    #[error("no usable LWA access token")]
    Token(#[source] TokenError),
    #[error("Alexa rejected the message: HTTP {status}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Rejected {
        status: u16,
        message: Option<String>,
    },
    #[error("Alexa did not accept the message after {attempts} attempts (last HTTP status {})", last_status.map_or("none".to_owned(), |s| s.to_string()))]
    Exhausted {
        attempts: u32,
        last_status: Option<u16>,
        #[source]
        last_error: Option<HttpError>,
    },
    #[error("could not build the request")]
    Request(#[source] HttpError),
}

impl SignalingError {
    /// The HTTP status Alexa last answered, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            SignalingError::Rejected { status, .. } => Some(*status),
            SignalingError::Exhausted { last_status, .. } => *last_status,
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct AlexaErrorBody {
    #[serde(default)]
    message: Option<String>,
}

pub struct SignalingClient<T> {
    http: HttpClient,
    tokens: Arc<AccessTokenProvider<T>>,
    retry: RetryPolicy,
}

impl<T> std::fmt::Debug for SignalingClient<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalingClient")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl<T: TokenStore> SignalingClient<T> {
    pub fn new(http: HttpClient, tokens: Arc<AccessTokenProvider<T>>, retry: RetryPolicy) -> Self {
        Self {
            http,
            tokens,
            retry,
        }
    }

    pub fn tokens(&self) -> &Arc<AccessTokenProvider<T>> {
        &self.tokens
    }

    pub async fn send(
        &self,
        api_endpoint: &str,
        message: &SignalingMessage,
        deadline: Deadline,
    ) -> Result<Delivered, SignalingError> {
        let url = format!("{}{SIGNALING_PATH}", api_endpoint.trim_end_matches('/'));
        // The strict flat body: known fields only (`SignalingMessage`'s `Serialize`).
        let body = Bytes::from(serde_json::to_vec(message).unwrap_or_default());
        let mut attempt: u32 = 0;
        let mut refreshed_after_401 = false;
        loop {
            attempt += 1;
            let token = self
                .tokens
                .access_token_by(deadline)
                .await
                .map_err(SignalingError::Token)?;
            let mut auth = HeaderValue::try_from(format!("Bearer {}", token.expose()))
                .map_err(|e| SignalingError::Request(HttpError::Request(e.into())))?;
            auth.set_sensitive(true);
            let headers: [(HeaderName, HeaderValue); 2] = [
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (AUTHORIZATION, auth),
            ];
            let result = self
                .http
                .post(
                    &url,
                    &headers,
                    body.clone(),
                    deadline.cap(self.retry.attempt_timeout),
                )
                .await;
            let (status, retry_after, error) = match result {
                Ok(r) if r.status.is_success() => {
                    info!(
                        kind = message.kind.name(),
                        status = r.status.as_u16(),
                        attempt,
                        "Alexa accepted the signaling message"
                    );
                    return Ok(Delivered {
                        status: r.status.as_u16(),
                        attempts: attempt,
                    });
                }
                Ok(r) if r.status.as_u16() == 401 && !refreshed_after_401 => {
                    warn!(
                        kind = message.kind.name(),
                        "Alexa answered 401: refreshing the access token and retrying"
                    );
                    refreshed_after_401 = true;
                    self.tokens.invalidate(&token).await;
                    attempt -= 1;
                    continue;
                }
                Ok(r) => {
                    let s = r.status.as_u16();
                    if s != 429 && s < 500 {
                        let message_text = serde_json::from_slice::<AlexaErrorBody>(&r.body)
                            .ok()
                            .and_then(|b| b.message)
                            .map(|m| m.chars().take(300).collect());
                        return Err(SignalingError::Rejected {
                            status: s,
                            message: message_text,
                        });
                    }
                    (
                        Some(s),
                        parse_retry_after(r.headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok())),
                        None,
                    )
                }
                Err(e) => (None, None, Some(e)),
            };
            let delay = self.retry.delay_after(attempt, retry_after);
            if attempt >= self.retry.max_attempts || !deadline.allows(delay) {
                return Err(SignalingError::Exhausted {
                    attempts: attempt,
                    last_status: status,
                    last_error: error,
                });
            }
            warn!(
                kind = message.kind.name(),
                status = status.unwrap_or(0),
                error = error.as_ref().map(|e| e.to_string()),
                attempt,
                delay_ms = delay.as_millis() as u64,
                "Alexa signaling attempt failed, retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
}
