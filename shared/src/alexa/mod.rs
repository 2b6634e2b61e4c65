//! Alexa Smart Properties WebRTC calling (`Alexa.Comms.CallSignaling`) and account linking.
//!
//! Two Lambda functions use this module:
//! - `functions/call-signaling`, the Alexa skill endpoint: answers every CallSignaling request
//!   with the deferred response, records the call session ([`session`], [`session_store`]),
//!   forwards the message to the property backend by a signed webhook ([`webhook`]), and handles
//!   account linking (`Alexa.Authorization.Grant` / `AcceptGrant`) through [`lwa`] and
//!   [`token_store`].
//! - `functions/signaling-api`, the property backend's way in: validates the backend's message
//!   against the session's state and sends it to `{apiEndpoint}/v1/communications/signaling`
//!   ([`signaling`]) with a cached LWA access token.
//!
//! The wire shapes are in [`model`] (see `CONTRACTS.md` §3); the state machine in [`session`] is
//! pure; the stores come as traits with an in-memory and a DynamoDB implementation. The exact
//! environment variables each function reads are listed in the crate docs of
//! `functions/call-signaling/src/lib.rs` and `functions/signaling-api/src/lib.rs`; the shared
//! ones are parsed here, in [`config`].
//!
//! # Design notes
//!
//! - Idempotency: every applied message id (Alexa `requestId`, backend `messageId`) is kept in
//!   the session item; a re-delivery is answered without being applied again, and forwarded
//!   again only when its first delivery was never confirmed and nothing newer happened since.
//!   Delivery is therefore at-least-once: receivers deduplicate on `X-Message-Id`.
//! - Timing: Lambda freezes after it answers, so the skill forwards *before* returning the
//!   deferred response, bounded by `WEBHOOK_BUDGET_MS` (Alexa allows a custom skill 8 s).
//! - The bearer token only goes to an official Alexa endpoint or the configured
//!   `ALEXA_API_ENDPOINT`, whatever a request's `apiEndpoint` says.
//! - One LWA token pair (delegated account linking) under `LWA_TOKEN_ID`, shared by both
//!   functions through the tokens table; each instance caches it and refreshes it once for all
//!   concurrent callers; a 401 from Alexa forces one refresh.
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

pub mod config;
pub mod http;
pub mod lwa;
pub mod model;
pub mod retry;
pub mod secret;
pub mod session;
pub mod session_store;
pub mod signaling;
pub mod token_store;
pub mod webhook;

#[cfg(feature = "test-support")]
pub mod testing;

pub use secret::Secret;

/// Seconds since the Unix epoch.
pub fn now_epoch_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
