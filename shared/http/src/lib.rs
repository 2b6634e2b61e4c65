//! The HTTP adapter of Alexa calling: one HTTPS client ([`client`], hyper with rustls on the
//! aws-lc-rs stack the AWS SDK already brings), the Login with Amazon token client and cache
//! ([`lwa`]), the Alexa signaling API client ([`signaling`]), the signed webhook to the
//! property backend ([`webhook`]) and the log set-up ([`logging`]). [`testing`] holds loopback
//! fakes of all three servers and a log capture.
//!
//! # Webhook signature (for property backend developers)
//!
//! Every message Alexa sends the skill is POSTed to `WEBHOOK_URL` (https; plain http only to a
//! loopback host) as JSON with these headers:
//!
//! ```text
//! Content-Type: application/json
//! X-Signature-Timestamp: 1700000000            (Unix seconds when this attempt was signed)
//! X-Message-Id: <Alexa requestId>              (stable across retries: deduplicate on it)
//! X-Signature: v2=<hex HMAC-SHA256(WEBHOOK_SECRET, "<timestamp>.<message id>.<raw body bytes>")>
//! ```
//!
//! To verify: take the raw body bytes as received, compute
//! `hex(hmac_sha256(secret, timestamp + "." + message_id + "." + body))` with the two headers'
//! values, compare it in constant time with the value after `v2=`, and reject timestamps more
//! than 5 minutes from your clock. The message id is signed, so deduplicating on it is safe: a
//! captured body cannot be replayed under a new id. Each retry is signed again with a fresh
//! timestamp. [`webhook::verify`] is a reference implementation. `WEBHOOK_SECRET` must be at
//! least 32 bytes. The body is a [`webhook::WebhookEnvelope`]:
//! `{"messageId","receivedAt","redelivery","session":{"sessionId","state","direction"},
//! "message":{"type":"Alexa.Comms.CallSignaling.<Name>","sessionId",...},"refused"?}` where
//! `message` is the flat message as Alexa sent it (participants, sdpDetails, renegotiationType,
//! callResult, any new fields) and `refused` (`{"type","reason"}`) says that the skill could not
//! take what Alexa sent and ended the call itself; `message` is then that `CallEnded`.
//!
//! # Logs
//!
//! [`logging`] sets up the Alexa functions' JSON logs with the Lambda runtime's, the AWS SDK's
//! and the HTTP stack's own output capped at INFO (they print raw events and requests, tokens
//! included, at TRACE).

pub mod client;
pub mod logging;
pub mod lwa;
pub mod signaling;
pub mod webhook;

#[cfg(feature = "test-support")]
pub mod testing;
