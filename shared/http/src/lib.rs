//! The HTTP adapter of Alexa calling: one HTTPS client ([`client`], hyper with rustls on the
//! aws-lc-rs stack the AWS SDK already brings), the Login with Amazon token client and cache
//! ([`lwa`]), the Alexa signaling API client ([`signaling`]) and the signed webhook to the
//! property backend ([`webhook`]). [`testing`] holds loopback fakes of all three servers.
//!
//! # Webhook signature (for property backend developers)
//!
//! Every message Alexa sends the skill is POSTed to `WEBHOOK_URL` as JSON with these headers:
//!
//! ```text
//! Content-Type: application/json
//! X-Signature-Timestamp: 1700000000            (Unix seconds when this attempt was signed)
//! X-Signature: v1=<hex HMAC-SHA256(WEBHOOK_SECRET, "<timestamp>.<raw body bytes>")>
//! X-Message-Id: <Alexa requestId>              (stable across retries: deduplicate on it)
//! ```
//!
//! To verify: take the raw body bytes as received, compute
//! `hex(hmac_sha256(secret, timestamp + "." + body))`, compare it in constant time with the
//! value after `v1=`, and reject timestamps more than 5 minutes from your clock. Each retry is
//! signed again with a fresh timestamp. [`webhook::verify`] is a reference implementation.
//! The body is a [`webhook::WebhookEnvelope`]:
//! `{"messageId","receivedAt","session":{"sessionId","state","direction"},"message":{"type":
//! "Alexa.Comms.CallSignaling.<Name>","sessionId",...}}` where `message` is the flat message as
//! Alexa sent it (participants, sdpDetails, renegotiationType, callResult, any new fields).

pub mod client;
pub mod lwa;
pub mod signaling;
pub mod webhook;

#[cfg(feature = "test-support")]
pub mod testing;
