//! Forwarding Alexa's messages to the property backend, signed.
//!
//! Headers on every attempt (see the module docs of [`takeback_alexa`] for the recipe):
//! `X-Signature-Timestamp: <unix seconds>`,
//! `X-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`,
//! `X-Message-Id: <id>`. [`verify`] accepts a comma-separated list of `v1=` values so that a
//! sender can sign with an old and a new secret while a rotation is under way.
//!
//! Retries: transport errors, 429 and 5xx are retried with backoff until `max_attempts` or the
//! overall `budget` runs out (the skill must answer Alexa within a few seconds); other 4xx are
//! final.

use crate::client::{HttpClient, HttpError};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue};
use serde::Serialize;
use sha2::Sha256;
use std::time::{Duration, Instant};
use takeback_alexa::Secret;
use takeback_alexa::model::{ForwardedMessage, SignalingMessage};
use takeback_alexa::retry::{RetryPolicy, parse_retry_after};
use takeback_alexa::session::{CallDirection, CallSession, SessionState};
use tracing::{info, warn};

pub const SIGNATURE_HEADER: &str = "x-signature";
pub const TIMESTAMP_HEADER: &str = "x-signature-timestamp";
pub const MESSAGE_ID_HEADER: &str = "x-message-id";
pub const SIGNATURE_SCHEME: &str = "v1";
/// How far a receiver should let a timestamp drift from its clock.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &Secret, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret.expose().as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cold]
fn unreachable_hmac() -> ! {
    // `Hmac::new_from_slice` only rejects keys for MACs with a fixed key size; HMAC has none.
    panic!("HMAC-SHA256 rejected a key")
}

/// `v1=<hex>` for `timestamp` and `body`.
pub fn sign(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("{SIGNATURE_SCHEME}={}", hex::encode(tag))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the timestamp header is not a Unix time")]
    BadTimestamp,
    #[error("the timestamp is outside the allowed window")]
    Stale,
    #[error("no v1 signature in the signature header")]
    NoSignature,
    #[error("the signature does not match")]
    Mismatch,
}

/// Reference verification for receivers: constant-time comparison, timestamp window.
pub fn verify(
    secret: &Secret,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let ts_text = timestamp_header.trim();
    let ts: i64 = ts_text.parse().map_err(|_| VerifyError::BadTimestamp)?;
    if (now - ts).abs() > tolerance_secs {
        return Err(VerifyError::Stale);
    }
    let mut any = false;
    for part in signature_header.split(',') {
        let Some(hex_sig) = part
            .trim()
            .strip_prefix(SIGNATURE_SCHEME)
            .and_then(|r| r.strip_prefix('='))
        else {
            continue;
        };
        any = true;
        let Ok(sig) = hex::decode(hex_sig.trim()) else {
            continue;
        };
        if mac(secret, ts_text, body).verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(if any {
        VerifyError::Mismatch
    } else {
        VerifyError::NoSignature
    })
}

/// The session as the backend sees it in a webhook.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSession {
    pub session_id: String,
    pub state: SessionState,
    pub direction: CallDirection,
}

impl From<&CallSession> for WebhookSession {
    fn from(s: &CallSession) -> Self {
        Self {
            session_id: s.session_id.clone(),
            state: s.state,
            direction: s.direction,
        }
    }
}

/// The webhook body.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEnvelope<'a> {
    /// Alexa's `requestId`: the same on every retry and re-delivery; deduplicate on it.
    pub message_id: String,
    /// Epoch milliseconds when the skill received the message.
    pub received_at: i64,
    /// True when this message was forwarded before without a confirmed delivery.
    pub redelivery: bool,
    pub session: WebhookSession,
    /// The flat message as Alexa sent it, unknown fields included:
    /// `{"type":"Alexa.Comms.CallSignaling.<Name>","sessionId",...}`.
    pub message: ForwardedMessage<'a>,
}

impl<'a> WebhookEnvelope<'a> {
    pub fn new(
        message_id: impl Into<String>,
        received_at: i64,
        redelivery: bool,
        session: &CallSession,
        message: &'a SignalingMessage,
    ) -> Self {
        Self {
            message_id: message_id.into(),
            received_at,
            redelivery,
            session: session.into(),
            message: message.forwarded(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the backend refused the message: HTTP {status}")]
    Rejected { status: u16 },
    #[error("the backend could not be reached after {attempts} attempts (last HTTP status {})", last_status.map_or("none".to_owned(), |s| s.to_string()))]
    Unreachable {
        attempts: u32,
        last_status: Option<u16>,
        #[source]
        last_error: Option<HttpError>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookDelivered {
    pub status: u16,
    pub attempts: u32,
}

#[derive(Clone)]
pub struct WebhookClient {
    http: HttpClient,
    url: String,
    secret: Secret,
    retry: RetryPolicy,
    budget: Duration,
}

impl std::fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookClient")
            .field("url", &self.url)
            .field("secret", &self.secret)
            .field("retry", &self.retry)
            .field("budget", &self.budget)
            .finish()
    }
}

impl WebhookClient {
    pub fn new(
        http: HttpClient,
        url: impl Into<String>,
        secret: Secret,
        retry: RetryPolicy,
        budget: Duration,
    ) -> Self {
        Self {
            http,
            url: url.into(),
            secret,
            retry,
            budget,
        }
    }

    pub async fn deliver(
        &self,
        envelope: &WebhookEnvelope<'_>,
    ) -> Result<WebhookDelivered, WebhookError> {
        let body = Bytes::from(serde_json::to_vec(envelope).unwrap_or_default());
        let message_id = HeaderValue::try_from(envelope.message_id.as_str())
            .unwrap_or_else(|_| HeaderValue::from_static("invalid"));
        let deadline = Instant::now() + self.budget;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ts = takeback_alexa::now_epoch_seconds();
            let signature = sign(&self.secret, ts, &body);
            let headers: Vec<(HeaderName, HeaderValue)> = vec![
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (
                    HeaderName::from_static(TIMESTAMP_HEADER),
                    HeaderValue::from(ts),
                ),
                (
                    HeaderName::from_static(SIGNATURE_HEADER),
                    HeaderValue::try_from(signature)
                        .unwrap_or_else(|_| HeaderValue::from_static("")),
                ),
                (
                    HeaderName::from_static(MESSAGE_ID_HEADER),
                    message_id.clone(),
                ),
            ];
            let remaining = deadline.saturating_duration_since(Instant::now());
            let timeout = self.retry.attempt_timeout.min(remaining);
            let (status, retry_after, error) = match self
                .http
                .post(&self.url, &headers, body.clone(), timeout)
                .await
            {
                Ok(r) if r.status.is_success() => {
                    info!(
                        message_id = %envelope.message_id,
                        status = r.status.as_u16(),
                        attempt,
                        "webhook delivered"
                    );
                    return Ok(WebhookDelivered {
                        status: r.status.as_u16(),
                        attempts: attempt,
                    });
                }
                Ok(r) => {
                    let s = r.status.as_u16();
                    if s != 429 && s < 500 {
                        return Err(WebhookError::Rejected { status: s });
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
            let out_of_time = Instant::now() + delay >= deadline;
            if attempt >= self.retry.max_attempts || out_of_time {
                return Err(WebhookError::Unreachable {
                    attempts: attempt,
                    last_status: status,
                    last_error: error,
                });
            }
            warn!(
                message_id = %envelope.message_id,
                status = status.unwrap_or(0),
                error = error.as_ref().map(|e| e.to_string()),
                attempt,
                "webhook attempt failed, retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // HMAC-SHA256("key", "1700000000.{}"), computed independently with Python's hmac module.
        let s = sign(&Secret::new("key"), 1_700_000_000, b"{}");
        assert_eq!(s, format!("v1={}", expected_hex()));
    }

    fn expected_hex() -> String {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"key",b"1700000000.{}",hashlib.sha256).hexdigest())'
        "9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae".to_owned()
    }

    #[test]
    fn verify_accepts_own_signature_and_rejects_tampering() {
        let secret = Secret::new("s3cr3t");
        let body = br#"{"a":1}"#;
        let sig = sign(&secret, 1_000, body);
        assert_eq!(verify(&secret, "1000", &sig, body, 1_010, 300), Ok(()));
        assert_eq!(
            verify(&secret, "1000", &sig, br#"{"a":2}"#, 1_010, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&Secret::new("other"), "1000", &sig, body, 1_010, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&secret, "1001", &sig, body, 1_010, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&secret, "1000", &sig, body, 2_000, 300),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(&secret, "x", &sig, body, 1_000, 300),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            verify(&secret, "1000", "sha=abc", body, 1_000, 300),
            Err(VerifyError::NoSignature)
        );
        // rotation: any listed signature may match
        let both = format!("v1=00ff, {sig}");
        assert_eq!(verify(&secret, "1000", &both, body, 1_000, 300), Ok(()));
    }
}
