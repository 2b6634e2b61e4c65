//! Forwarding Alexa's messages to the property backend, signed.
//!
//! Headers on every attempt (the recipe for receivers is in this crate's docs):
//! `X-Signature-Timestamp: <unix seconds>`, `X-Message-Id: <id>`,
//! `X-Signature: v2=<hex HMAC-SHA256(secret, "<timestamp>.<message id>.<body>")>`.
//! The message id a receiver deduplicates on is covered by the signature (as the timestamp is),
//! so a replayed body cannot be passed off under a new id, nor a new body under a seen one.
//! [`verify`] accepts a comma-separated list of `v2=` values so that a sender can sign with an
//! old and a new secret while a rotation is under way.
//!
//! Retries: transport errors, 429 and 5xx are retried with backoff until `max_attempts`, the
//! client's `budget` or the invocation's [`Deadline`] runs out (the skill must answer Alexa
//! within a few seconds); other 4xx are final.
//!
//! The URL must be `https://` (plain `http://` only to a loopback host, for tests) and the secret
//! at least `MIN_WEBHOOK_SECRET_BYTES` long: `takeback_alexa::config` refuses anything else at
//! start-up, and [`WebhookClient::new`] checks again.

use crate::client::{HttpClient, HttpError};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue};
use serde::Serialize;
use sha2::Sha256;
use std::sync::Arc;
use std::time::{Duration, Instant};
use takeback_alexa::budget::Deadline;
use takeback_alexa::config::MIN_WEBHOOK_SECRET_BYTES;
use takeback_alexa::model::{ForwardedMessage, MessageKind, SignalingMessage};
use takeback_alexa::retry::{RetryPolicy, parse_retry_after};
use takeback_alexa::session::{CallDirection, CallSession, SessionState};
use takeback_alexa::{Secret, SecretSource};
use tracing::{info, warn};

pub const SIGNATURE_HEADER: &str = "x-signature";
pub const TIMESTAMP_HEADER: &str = "x-signature-timestamp";
pub const MESSAGE_ID_HEADER: &str = "x-message-id";
/// `v2`: the signed string is `"<timestamp>.<message id>.<body>"`.
pub const SIGNATURE_SCHEME: &str = "v2";
/// How far a receiver should let a timestamp drift from its clock.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &Secret, timestamp: &str, message_id: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret.expose().as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cold]
fn unreachable_hmac() -> ! {
    // `Hmac::new_from_slice` only rejects keys for MACs with a fixed key size; HMAC has none.
    panic!("HMAC-SHA256 rejected a key")
}

/// `v2=<hex>` for `timestamp`, `message_id` and `body`.
pub fn sign(secret: &Secret, timestamp: i64, message_id: &str, body: &[u8]) -> String {
    let tag = mac(secret, &timestamp.to_string(), message_id, body)
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
    #[error("no v2 signature in the signature header")]
    NoSignature,
    #[error("the signature does not match")]
    Mismatch,
}

/// Reference verification for receivers: constant-time comparison, timestamp window, the
/// `X-Message-Id` header value as received.
pub fn verify(
    secret: &Secret,
    timestamp_header: &str,
    message_id_header: &str,
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
        if mac(secret, ts_text, message_id_header, body)
            .verify_slice(&sig)
            .is_ok()
        {
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
    /// `{"type":"Alexa.Comms.CallSignaling.<Name>","sessionId",...}`; for a message the skill
    /// refused, the `CallEnded` the skill sent Alexa in its place.
    pub message: ForwardedMessage<'a>,
    /// Present when the skill refused what Alexa sent (malformed or oversized offer or answer)
    /// and ended the call itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refused>,
}

/// What the skill refused, and why: `{"type":"Alexa.Comms.CallSignaling.<Name>","reason":...}`.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    #[serde(rename = "type")]
    pub message_type: String,
    pub reason: String,
}

impl Refused {
    pub fn new(kind: MessageKind, reason: impl Into<String>) -> Self {
        Self {
            message_type: kind.full_type(),
            reason: reason.into(),
        }
    }
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
            refused: None,
        }
    }

    /// The envelope of a refusal: `ended` is the `CallEnded` the skill sent Alexa.
    pub fn refusal(
        message_id: impl Into<String>,
        received_at: i64,
        session: &CallSession,
        ended: &'a SignalingMessage,
        refused: Refused,
    ) -> Self {
        Self {
            refused: Some(refused),
            ..Self::new(message_id, received_at, false, session, ended)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookConfigError {
    #[error("the webhook URL must be https (plain http only to a loopback host)")]
    NotHttps,
    #[error("the webhook secret must be at least {MIN_WEBHOOK_SECRET_BYTES} bytes long")]
    ShortSecret,
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
    secret: Arc<dyn SecretSource>,
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
    /// Refuses a URL that is not https (except to a loopback host) and a short secret.
    pub fn new(
        http: HttpClient,
        url: impl Into<String>,
        secret: Secret,
        retry: RetryPolicy,
        budget: Duration,
    ) -> Result<Self, WebhookConfigError> {
        let url = url.into();
        if takeback_alexa::config::check_url(&url).is_err() {
            return Err(WebhookConfigError::NotHttps);
        }
        if secret.expose().len() < MIN_WEBHOOK_SECRET_BYTES {
            return Err(WebhookConfigError::ShortSecret);
        }
        Ok(Self {
            http,
            url,
            secret: Arc::new(secret),
            retry,
            budget,
        })
    }

    /// Signs with the key `source` holds (rotation at run time): when the backend answers 401,
    /// the source is told and the message is signed again and re-sent once if it offers a
    /// different key.
    pub fn with_secret_source(mut self, source: Arc<dyn SecretSource>) -> Self {
        self.secret = source;
        self
    }

    /// Delivers `envelope`, stopping at the client's budget or `deadline`, whichever is first.
    pub async fn deliver(
        &self,
        envelope: &WebhookEnvelope<'_>,
        deadline: Deadline,
    ) -> Result<WebhookDelivered, WebhookError> {
        let body = Bytes::from(serde_json::to_vec(envelope).unwrap_or_default());
        // A header value the id cannot be is replaced, and the signature covers what is sent.
        let (message_id, id_text) = match HeaderValue::try_from(envelope.message_id.as_str()) {
            Ok(v) => (v, envelope.message_id.as_str()),
            Err(_) => (HeaderValue::from_static("invalid"), "invalid"),
        };
        let deadline = Deadline::at((Instant::now() + self.budget).min(deadline.instant()));
        let mut attempt = 0;
        let mut secret = self.secret.current();
        let mut asked_for_fresher_key = false;
        loop {
            attempt += 1;
            let ts = takeback_alexa::now_epoch_seconds();
            let signature = sign(&secret, ts, id_text, &body);
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
            let timeout = deadline.cap(self.retry.attempt_timeout);
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
                Ok(r) if r.status.as_u16() == 401 && !asked_for_fresher_key => {
                    asked_for_fresher_key = true;
                    let fresher = tokio::time::timeout_at(
                        tokio::time::Instant::from_std(deadline.instant()),
                        self.secret.refused(&secret),
                    )
                    .await
                    .ok()
                    .flatten();
                    match fresher {
                        Some(fresher) => {
                            warn!(
                                message_id = %envelope.message_id,
                                "the backend refused the signature; signing with the rotated key"
                            );
                            secret = fresher;
                            attempt -= 1;
                            continue;
                        }
                        None => return Err(WebhookError::Rejected { status: 401 }),
                    }
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
            let out_of_time = !deadline.allows(delay);
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
        // HMAC-SHA256("key", "1700000000.msg-1.{}"), computed independently with Python's hmac.
        let s = sign(&Secret::new("key"), 1_700_000_000, "msg-1", b"{}");
        assert_eq!(s, format!("v2={}", expected_hex()));
    }

    fn expected_hex() -> String {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"key",b"1700000000.msg-1.{}",hashlib.sha256).hexdigest())'
        "60aab2621fbd46edafebb89b3d475fcec4b60986ce975bb86838f390c85a3fba".to_owned()
    }

    #[test]
    fn verify_accepts_own_signature_and_rejects_tampering() {
        let secret = Secret::new("s3cr3t");
        let body = br#"{"a":1}"#;
        let sig = sign(&secret, 1_000, "m-1", body);
        assert_eq!(
            verify(&secret, "1000", "m-1", &sig, body, 1_010, 300),
            Ok(())
        );
        assert_eq!(
            verify(&secret, "1000", "m-1", &sig, br#"{"a":2}"#, 1_010, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&Secret::new("other"), "1000", "m-1", &sig, body, 1_010, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&secret, "1001", "m-1", &sig, body, 1_010, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&secret, "1000", "m-1", &sig, body, 2_000, 300),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(&secret, "x", "m-1", &sig, body, 1_000, 300),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            verify(&secret, "1000", "m-1", "sha=abc", body, 1_000, 300),
            Err(VerifyError::NoSignature)
        );
        // rotation: any listed signature may match
        let both = format!("v2=00ff, {sig}");
        assert_eq!(
            verify(&secret, "1000", "m-1", &both, body, 1_000, 300),
            Ok(())
        );
    }

    /// The message id receivers deduplicate on is signed: the same body and signature under
    /// another `X-Message-Id` do not verify.
    #[test]
    fn the_message_id_is_covered_by_the_signature() {
        let secret = Secret::new("0123456789abcdef0123456789abcdef");
        let body = br#"{"messageId":"m-1"}"#;
        let sig = sign(&secret, 1_000, "m-1", body);
        assert_eq!(
            verify(&secret, "1000", "m-1", &sig, body, 1_000, 300),
            Ok(())
        );
        assert_eq!(
            verify(&secret, "1000", "m-2", &sig, body, 1_000, 300),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn plain_http_and_short_secrets_are_refused() {
        let http = HttpClient::new().expect("test set-up");
        let long = Secret::new("0123456789abcdef0123456789abcdef");
        let policy = RetryPolicy::fast(1);
        let budget = Duration::from_secs(1);
        assert!(matches!(
            WebhookClient::new(
                http.clone(),
                "http://backend.example.com/x",
                long.clone(),
                policy,
                budget
            ),
            Err(WebhookConfigError::NotHttps)
        ));
        assert!(matches!(
            WebhookClient::new(
                http.clone(),
                "https://backend.example.com/x",
                Secret::new("short"),
                policy,
                budget
            ),
            Err(WebhookConfigError::ShortSecret)
        ));
        assert!(
            WebhookClient::new(
                http.clone(),
                "https://backend.example.com/x",
                long.clone(),
                policy,
                budget
            )
            .is_ok()
        );
        assert!(WebhookClient::new(http, "http://127.0.0.1:9/x", long, policy, budget).is_ok());
    }
}
