//! Size limits of Alexa calling, in one place. The skill (`call-signaling`) and the signaling
//! API (`signaling-api`) validate every message with the same
//! [`InboundSignal::validate`](crate::model::InboundSignal::validate), so a message one of them
//! accepts the other accepts too; the API's body limit is derived from the message limits below
//! and checked at compile time, so a valid message is never refused for its body size.
//!
//! | limit | value | why |
//! |---|---|---|
//! | [`MAX_SDP_BYTES`] | 64 KiB | one complete SDP per message (ICE is not trickled); real offers are 2–10 KB |
//! | [`MAX_SESSION_ID_LEN`] | 256 | the id is a DynamoDB key and a log field |
//! | [`MAX_PARTICIPANTS`] | 16 | a call has two participants; a few more are tolerated |
//! | [`MAX_PARTICIPANT_ID_LEN`] | 512 | profile ids, addresses and numbers are short |
//! | [`MAX_BACKEND_BODY_BYTES`] | 256 KiB | the signaling API's request body |
//!
//! An SDP may hold no control character other than CR, LF and TAB (RFC 4566 §5: SDP is text
//! with CRLF line ends), so its JSON encoding is at most twice its size.
//!
//! The skill never turns a message over these limits into a Lambda error: an offer or answer it
//! cannot take ends the call (`CallEnded` with `INTERNAL_ERROR`), see `functions/call-signaling`.

/// Largest `sdpDetails.value`, in bytes.
pub const MAX_SDP_BYTES: usize = 64 * 1024;
/// Longest `sessionId`, in bytes.
pub const MAX_SESSION_ID_LEN: usize = 256;
/// Most `participants` in one message.
pub const MAX_PARTICIPANTS: usize = 16;
/// Longest `participants[].id.value`, in bytes.
pub const MAX_PARTICIPANT_ID_LEN: usize = 512;
/// Largest body the signaling API reads.
pub const MAX_BACKEND_BODY_BYTES: usize = 256 * 1024;

/// Room for everything else in a backend body: type, ids, `callResult`, `renegotiationType`,
/// JSON punctuation and a few unknown fields.
const ENVELOPE_ALLOWANCE: usize = 16 * 1024;
/// One participant entry's JSON apart from its id value (`{"id":{"type":...,"value":""},...}`).
const PARTICIPANT_OVERHEAD: usize = 128;

// A message within the limits, JSON-encoded in the worst case (every SDP and id byte escaped to
// two), fits into the API's body limit.
const _: () = assert!(
    2 * MAX_SDP_BYTES
        + 2 * MAX_SESSION_ID_LEN
        + MAX_PARTICIPANTS * (2 * MAX_PARTICIPANT_ID_LEN + PARTICIPANT_OVERHEAD)
        + ENVELOPE_ALLOWANCE
        <= MAX_BACKEND_BODY_BYTES
);
