//! What Alexa sends the skill's Lambda function, tagged by what it asks for:
//!
//! - a custom-skill request `{"version","session","context","request":{"type":...}}`, sorted by
//!   `request.type` into a [`SkillRequest`]: every `Alexa.Comms.CallSignaling.<Name>` (acks
//!   included, names this model does not know as [`SkillRequest::UnknownCallSignaling`]),
//!   `Alexa.Authorization.Grant`, launch, intents, session end, and [`SkillRequest::Unknown`] for
//!   any other type;
//! - a smart-home directive `{"directive":{"header":{"namespace","name",...},"payload":...}}`,
//!   sorted by its header into a [`Directive`] (`Alexa.Authorization` / `AcceptGrant`, or
//!   [`Directive::Unknown`]).
//!
//! Reading an event never fails: [`AlexaRequestEnvelope::from_value`] (and its `Deserialize`)
//! turns whatever arrived into one of the variants, [`AlexaRequestEnvelope::Malformed`] when it
//! is neither shape, and a skill request whose fields cannot be read keeps its
//! [`MalformedRequest`] (the skill id is checked first).

use super::kind::MessageKind;
use super::signal::InboundSignal;
use super::{AUTHORIZATION_GRANT_REQUEST, AUTHORIZATION_NAMESPACE, SIGNALING_PREFIX};
use crate::secret::Secret;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// The Lambda event

/// One event of the skill's Lambda function.
#[derive(Debug, Clone)]
pub enum AlexaRequestEnvelope {
    /// A custom-skill request (everything without a `directive`).
    Skill(Box<SkillRequestEnvelope>),
    /// A smart-home directive: the event has a `directive` member.
    Directive(DirectiveEnvelope),
    /// The event has neither shape (not a JSON object, a member of the wrong type); `reason` is
    /// the answer's error message.
    Malformed { reason: String },
}

impl AlexaRequestEnvelope {
    /// Sorts any JSON value into a variant; never fails.
    pub fn from_value(event: Value) -> Self {
        if matches!(&event, Value::Object(members) if members.contains_key("directive")) {
            return match RawDirectiveEnvelope::deserialize(event) {
                Ok(raw) => Self::Directive(raw.directive.into()),
                Err(e) => Self::Malformed {
                    reason: format!("not a directive: {e}"),
                },
            };
        }
        match RawSkillEnvelope::deserialize(event) {
            Ok(raw) => Self::Skill(Box::new(raw.into())),
            Err(e) => Self::Malformed {
                reason: format!("not an Alexa request envelope: {e}"),
            },
        }
    }
}

/// Reads any JSON document (the Lambda runtime's payload); never fails on a well-formed one.
impl<'de> Deserialize<'de> for AlexaRequestEnvelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from_value)
    }
}

// ---------------------------------------------------------------------------------------------
// Custom-skill envelope

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    #[serde(default)]
    pub application_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub access_token: Option<Secret>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unit {
    #[serde(default)]
    pub unit_id: Option<String>,
    #[serde(default)]
    pub persistent_unit_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemContext {
    #[serde(default)]
    pub application: Option<Application>,
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub unit: Option<Unit>,
    #[serde(default)]
    pub api_endpoint: Option<String>,
    #[serde(default)]
    pub api_access_token: Option<Secret>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SkillContext {
    #[serde(rename = "System", default)]
    pub system: Option<SystemContext>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkillSession {
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub application: Option<Application>,
}

/// Fields every custom-skill request carries, read leniently: `type`, `requestId`, `timestamp`
/// and `locale` together (all absent when one of them has the wrong type), `sessionId` on its
/// own (absent unless it is a string). For logs and de-duplication, never validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHeader {
    pub request_type: Option<String>,
    pub request_id: Option<String>,
    pub timestamp: Option<String>,
    pub locale: Option<String>,
    pub session_id: Option<String>,
}

/// `{"version":"1.0","session":...,"context":{"System":...},"request":{...}}`.
#[derive(Debug, Clone)]
pub struct SkillRequestEnvelope {
    pub version: Option<String>,
    pub session: Option<SkillSession>,
    pub context: Option<SkillContext>,
    pub header: RequestHeader,
    /// The request, by its `type`; or why its fields could not be read.
    pub request: Result<SkillRequest, MalformedRequest>,
}

/// What a custom-skill request asks for, by its `type`.
#[derive(Debug, Clone)]
pub enum SkillRequest {
    /// `Alexa.Comms.CallSignaling.<Name>` for a name in [`MessageKind`] (acks included).
    CallSignaling {
        kind: MessageKind,
        signal: InboundSignal,
    },
    /// An `Alexa.Comms.CallSignaling.*` name this model does not know.
    UnknownCallSignaling { name: String },
    /// `Alexa.Authorization.Grant`: account linking, the grant in `request.body`.
    AuthorizationGrant(GrantPayload),
    /// `LaunchRequest`.
    Launch,
    /// `IntentRequest`, with `intent.name` when it can be read.
    Intent { name: Option<String> },
    /// `SessionEndedRequest`.
    SessionEnded,
    /// Any other request type (answered with an empty response).
    Unknown { request_type: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedRequest {
    #[error("the event has no `request` object")]
    NoRequest,
    #[error("request.type is missing")]
    NoType,
    #[error("the {request_type} request is malformed: {reason}")]
    BadFields {
        request_type: String,
        reason: String,
    },
}

impl SkillRequestEnvelope {
    /// The skill id Alexa addressed: `context.System.application.applicationId`, else
    /// `session.application.applicationId`.
    pub fn application_id(&self) -> Option<&str> {
        self.system()
            .and_then(|s| s.application.as_ref())
            .and_then(|a| a.application_id.as_deref())
            .or_else(|| {
                self.session
                    .as_ref()
                    .and_then(|s| s.application.as_ref())
                    .and_then(|a| a.application_id.as_deref())
            })
    }

    pub fn api_endpoint(&self) -> Option<&str> {
        self.system().and_then(|s| s.api_endpoint.as_deref())
    }

    pub fn system(&self) -> Option<&SystemContext> {
        self.context.as_ref().and_then(|c| c.system.as_ref())
    }
}

/// The envelope as it arrives; `request` is buffered because its shape depends on its `type`.
/// (Named as the public type in parse errors.)
#[derive(Deserialize)]
#[serde(expecting = "struct SkillRequestEnvelope")]
struct RawSkillEnvelope {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    session: Option<SkillSession>,
    #[serde(default)]
    context: Option<SkillContext>,
    #[serde(default)]
    request: Option<Value>,
}

impl From<RawSkillEnvelope> for SkillRequestEnvelope {
    fn from(raw: RawSkillEnvelope) -> Self {
        let header = raw.request.as_ref().map(read_header).unwrap_or_default();
        let request = match raw.request {
            Some(request @ Value::Object(_)) => read_request(&request),
            _ => Err(MalformedRequest::NoRequest),
        };
        Self {
            version: raw.version,
            session: raw.session,
            context: raw.context,
            header,
            request,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StrictHeaderFields {
    #[serde(rename = "type", default)]
    request_type: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    locale: Option<String>,
}

#[derive(Deserialize, Default)]
struct LenientFields {
    #[serde(rename = "type", default, deserialize_with = "string_or_none")]
    request_type: Option<String>,
    #[serde(rename = "sessionId", default, deserialize_with = "string_or_none")]
    session_id: Option<String>,
}

/// A string as it is, anything else as absent.
fn string_or_none<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lenient {
        Text(String),
        Other(IgnoredAny),
    }
    Ok(match Lenient::deserialize(deserializer)? {
        Lenient::Text(text) => Some(text),
        Lenient::Other(_) => None,
    })
}

fn read_header(request: &Value) -> RequestHeader {
    let strict = StrictHeaderFields::deserialize(request).ok();
    let lenient = LenientFields::deserialize(request).unwrap_or_default();
    match strict {
        Some(h) => RequestHeader {
            request_type: h.request_type,
            request_id: h.request_id,
            timestamp: h.timestamp,
            locale: h.locale,
            session_id: lenient.session_id,
        },
        None => RequestHeader {
            session_id: lenient.session_id,
            ..RequestHeader::default()
        },
    }
}

#[derive(Deserialize)]
struct GrantRequestFields {
    #[serde(default)]
    body: Option<GrantPayload>,
}

#[derive(Deserialize)]
struct IntentFields {
    #[serde(default)]
    intent: Option<IntentName>,
}

#[derive(Deserialize)]
struct IntentName {
    #[serde(default)]
    name: Option<String>,
}

/// Sorts a request object by its `type` and reads the type's fields.
fn read_request(request: &Value) -> Result<SkillRequest, MalformedRequest> {
    let request_type = LenientFields::deserialize(request)
        .ok()
        .and_then(|f| f.request_type)
        .filter(|t| !t.is_empty())
        .ok_or(MalformedRequest::NoType)?;
    let bad = |e: serde_json::Error| MalformedRequest::BadFields {
        request_type: request_type.clone(),
        reason: e.to_string(),
    };
    if let Some(name) = request_type.strip_prefix(SIGNALING_PREFIX) {
        return Ok(match MessageKind::parse(name) {
            Some(kind) => SkillRequest::CallSignaling {
                kind,
                signal: InboundSignal::deserialize(request).map_err(bad)?,
            },
            None => SkillRequest::UnknownCallSignaling {
                name: name.to_owned(),
            },
        });
    }
    Ok(match request_type.as_str() {
        AUTHORIZATION_GRANT_REQUEST => {
            let fields = GrantRequestFields::deserialize(request).map_err(bad)?;
            SkillRequest::AuthorizationGrant(fields.body.unwrap_or_default())
        }
        "LaunchRequest" => SkillRequest::Launch,
        "IntentRequest" => SkillRequest::Intent {
            name: IntentFields::deserialize(request)
                .ok()
                .and_then(|i| i.intent)
                .and_then(|i| i.name),
        },
        "SessionEndedRequest" => SkillRequest::SessionEnded,
        _ => SkillRequest::Unknown { request_type },
    })
}

// ---------------------------------------------------------------------------------------------
// Account linking grant

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Grant {
    #[serde(rename = "type", default)]
    pub grant_type: Option<String>,
    #[serde(default)]
    pub code: Option<Secret>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Grantee {
    #[serde(rename = "type", default)]
    pub grantee_type: Option<String>,
    #[serde(default)]
    pub token: Option<Secret>,
}

/// The grant in both forms: `request.body` (custom skill) and `directive.payload` (smart home).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GrantPayload {
    #[serde(default)]
    pub grant: Option<Grant>,
    #[serde(default)]
    pub grantee: Option<Grantee>,
}

// ---------------------------------------------------------------------------------------------
// Smart-home directive (AcceptGrant)

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectiveHeader {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub payload_version: Option<String>,
}

impl DirectiveHeader {
    pub fn is_accept_grant(&self) -> bool {
        self.namespace.as_deref() == Some(AUTHORIZATION_NAMESPACE)
            && self.name.as_deref() == Some("AcceptGrant")
    }
}

/// `{"directive":{"header":...,"payload":...}}`.
#[derive(Debug, Clone)]
pub struct DirectiveEnvelope {
    pub header: DirectiveHeader,
    pub directive: Directive,
}

/// What a smart-home directive asks for, by its header's namespace and name.
#[derive(Debug, Clone)]
pub enum Directive {
    /// `Alexa.Authorization` / `AcceptGrant`: account linking, the grant in `payload`.
    AcceptGrant(GrantPayload),
    /// An `AcceptGrant` whose payload could not be read; `reason` is for logs.
    MalformedAcceptGrant { reason: String },
    /// Any other namespace or name (see the header).
    Unknown,
}

#[derive(Deserialize)]
#[serde(expecting = "struct DirectiveEnvelope")]
struct RawDirectiveEnvelope {
    #[serde(default)]
    directive: RawDirective,
}

/// The payload is buffered: it is read only for the directive the header names.
#[derive(Deserialize, Default)]
#[serde(expecting = "struct Directive")]
struct RawDirective {
    #[serde(default)]
    header: DirectiveHeader,
    #[serde(default)]
    payload: Option<Value>,
}

impl From<RawDirective> for DirectiveEnvelope {
    fn from(raw: RawDirective) -> Self {
        let directive = if !raw.header.is_accept_grant() {
            Directive::Unknown
        } else {
            match raw.payload.map(GrantPayload::deserialize).transpose() {
                Ok(payload) => Directive::AcceptGrant(payload.unwrap_or_default()),
                Err(e) => Directive::MalformedAcceptGrant {
                    reason: e.to_string(),
                },
            }
        };
        Self {
            header: raw.header,
            directive,
        }
    }
}
