//! The skill's answers to Alexa. Strict: each type serializes to exactly the documented body.

use serde::Serialize;

/// What the skill's Lambda function answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AlexaResponse {
    /// To a custom-skill request: `{"version":"1.0","response":{...}}`.
    Skill(SkillResponse),
    /// To a smart-home directive: `{"event":{...}}`, not wrapped.
    Event(AlexaEvent),
}

impl From<SkillResponse> for AlexaResponse {
    fn from(response: SkillResponse) -> Self {
        Self::Skill(response)
    }
}

impl From<AlexaEvent> for AlexaResponse {
    fn from(event: AlexaEvent) -> Self {
        Self::Event(event)
    }
}

/// `{"version":"1.0","response":{...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkillResponse {
    version: &'static str,
    response: SkillResponseBody,
}

/// The `response` of a [`SkillResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SkillResponseBody {
    /// `{}`: the deferred response, or nothing to say.
    Empty {},
    Speech(SpeechResponse),
    /// `{"event":...}`: an account-linking answer in the custom-skill form.
    Event(AlexaEvent),
}

/// `{"outputSpeech":{"type":"PlainText","text":...},"shouldEndSession":true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpeechResponse {
    pub output_speech: OutputSpeech,
    pub should_end_session: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum OutputSpeech {
    PlainText { text: String },
}

impl SkillResponse {
    pub const VERSION: &'static str = "1.0";

    fn new(response: SkillResponseBody) -> Self {
        Self {
            version: Self::VERSION,
            response,
        }
    }

    /// The deferred response Alexa expects to every CallSignaling request:
    /// `{"version":"1.0","response":{}}`.
    pub fn deferred() -> Self {
        Self::new(SkillResponseBody::Empty {})
    }

    /// An empty answer (same body as [`Self::deferred`]), for requests the skill has nothing to
    /// say to.
    pub fn empty() -> Self {
        Self::new(SkillResponseBody::Empty {})
    }

    /// A plain-text answer that ends the skill session (launch and intents: the calling itself
    /// has no voice interface, but a custom skill must answer them).
    pub fn speech(text: impl Into<String>) -> Self {
        Self::new(SkillResponseBody::Speech(SpeechResponse {
            output_speech: OutputSpeech::PlainText { text: text.into() },
            should_end_session: true,
        }))
    }

    /// The custom-skill form of an event: `{"version":"1.0","response":{"event":...}}`.
    pub fn event(event: AlexaEvent) -> Self {
        Self::new(SkillResponseBody::Event(event))
    }

    pub fn body(&self) -> &SkillResponseBody {
        &self.response
    }
}

// ---------------------------------------------------------------------------------------------
// Events (account linking)

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventNamespace {
    #[serde(rename = "Alexa")]
    Alexa,
    #[serde(rename = "Alexa.Authorization")]
    Authorization,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventName {
    #[serde(rename = "AcceptGrant.Response")]
    AcceptGrantResponse,
    #[serde(rename = "ErrorResponse")]
    ErrorResponse,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventHeader {
    pub namespace: EventNamespace,
    pub name: EventName,
    pub message_id: String,
    pub payload_version: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorType {
    AcceptGrantFailed,
    InvalidDirective,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorPayload {
    #[serde(rename = "type")]
    pub error_type: ErrorType,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EventPayload {
    Empty {},
    Error(ErrorPayload),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventBody {
    pub header: EventHeader,
    pub payload: EventPayload,
}

/// `{"event":{"header":...,"payload":...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlexaEvent {
    pub event: EventBody,
}

impl AlexaEvent {
    pub fn accept_grant_response() -> Self {
        Self::new(
            EventNamespace::Authorization,
            EventName::AcceptGrantResponse,
            EventPayload::Empty {},
        )
    }

    /// `ErrorResponse` with `ACCEPT_GRANT_FAILED`; `message` must hold no secret.
    pub fn accept_grant_failed(message: impl Into<String>) -> Self {
        Self::error(
            EventNamespace::Authorization,
            ErrorType::AcceptGrantFailed,
            message,
        )
    }

    /// `Alexa` `ErrorResponse` with `INVALID_DIRECTIVE`, for a directive this skill does not
    /// handle.
    pub fn invalid_directive(message: impl Into<String>) -> Self {
        Self::error(EventNamespace::Alexa, ErrorType::InvalidDirective, message)
    }

    fn error(namespace: EventNamespace, error_type: ErrorType, message: impl Into<String>) -> Self {
        Self::new(
            namespace,
            EventName::ErrorResponse,
            EventPayload::Error(ErrorPayload {
                error_type,
                message: message.into(),
            }),
        )
    }

    fn new(namespace: EventNamespace, name: EventName, payload: EventPayload) -> Self {
        Self {
            event: EventBody {
                header: EventHeader {
                    namespace,
                    name,
                    message_id: uuid::Uuid::new_v4().to_string(),
                    payload_version: "3",
                },
                payload,
            },
        }
    }
}
