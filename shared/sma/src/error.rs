//! Errors of the outgoing SMA side.

/// An outgoing SMA action or response that would break a documented limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("not an E.164 number: {0:?}")]
    NotE164(String),
    #[error("endpoint Uri must be 1-30 characters of a-zA-Z0-9&=+$/%-_!~*().: {0:?}")]
    InvalidEndpointUri(String),
    #[error("not a Voice Connector or Voice Connector group ARN: {0:?}")]
    InvalidVoiceConnectorArn(String),
    #[error("CallTimeoutSeconds must be 1-120, got {0}")]
    CallTimeoutOutOfRange(u32),
    #[error(
        "SIP header {0:?} is not allowed (only X- custom headers, never X-AMZN, User-to-User, Diversion)"
    )]
    SipHeaderNotAllowed(String),
    #[error("SIP header {0:?} value exceeds 2048 characters")]
    SipHeaderTooLong(String),
    #[error("{0} holds a control character (CR, LF, TAB, ...)")]
    ControlCharacter(String),
    #[error("Speak text must be 1-1000 characters, got {0}")]
    SpeakTextLength(usize),
    #[error("digits must be 1-50 of 0-9*#ABCD, : {0:?}")]
    InvalidDigits(String),
    #[error("tone duration must be 50-24000 ms, got {0}")]
    ToneDurationOutOfRange(u32),
    #[error("a response holds at most 10 actions, got {0}")]
    TooManyActions(usize),
    #[error("transaction attributes hold at most 10 keys, got {0}")]
    TooManyAttributes(usize),
    #[error("an empty transaction attribute map would erase the call's state")]
    EmptyAttributes,
}
