//! The property backend's way in: CallSignaling messages to Alexa.
//!
//! # Design
//!
//! A Lambda function URL with `AuthType: AWS_IAM`: the backend signs its requests with SigV4
//! (any AWS SDK, `awscurl`) using a role that has both `lambda:InvokeFunctionUrl` and
//! `lambda:InvokeFunction` on the function's `live` alias, which owns the URL (URLs created since
//! October 2025 refuse a caller with only the first; `docs/signaling-api-invoke-policy.json`).
//! No API Gateway, no shared secret to rotate, and the caller's IAM identity is in every request
//! (logged as `caller`). Messages from Alexa reach the backend the other way, through the signed
//! webhook of `call-signaling`.
//!
//! `POST <function URL>` (any path) with the flat message as Alexa knows it, plus an optional
//! idempotency key:
//!
//! ```json
//! {"type": "CallAccepted",                       // or "Alexa.Comms.CallSignaling.CallAccepted"
//!  "sessionId": "…",                             // omitted for InitiateInboundCall (generated here)
//!  "messageId": "backend-unique-id",             // optional idempotency key: a retry with the same id is not sent twice
//!  "participants": [{"id": {"type": "RAW_ADDRESS", "value": "…"}, "isOriginator": true}],
//!  "sdpDetails": {"type": "ANSWER", "value": "v=0…"},
//!  "renegotiationType": "CALL_HOLD",
//!  "callResult": {"code": "SUCCESS", "message": "…"},
//!  "apiEndpoint": "https://api.eu.amazonalexa.com"}  // InitiateInboundCall only; official endpoints only
//! ```
//!
//! Idempotency: a `messageId` is remembered in the session. For `InitiateInboundCall` it also
//! fixes the session id (`takeback_alexa::session::inbound_session_id`), so a retry after a
//! timeout (same `messageId`) answers with the session the first attempt created instead of
//! starting a second call; if the first attempt never reached Alexa, the retry sends it.
//! Without a `messageId` every request is new.
//!
//! Accepted types: `InitiateInboundCall` (needs participants and an OFFER), `CallRinging`,
//! `CallInProgress`, `CallAccepted` (ANSWER), `CallUpdate` (OFFER), `CallUpdateResponse`
//! (ANSWER), `CallEnded` (`callResult`, default `SUCCESS`), `CallRingingAck`,
//! `CallInProgressAck`, `CallAcceptedAck`, `CallUpdateAck`. Each is checked against the
//! session's state (see `takeback_alexa::session`), recorded, then sent to
//! `{apiEndpoint}/v1/communications/signaling` with the cached LWA token. The state is recorded
//! *before* sending because Alexa may answer through the skill before this request returns; if
//! Alexa does not take the message the record is rolled back.
//!
//! Answers (JSON):
//!
//! | status | body | when |
//! |---|---|---|
//! | 200 | `{"outcome":"sent","sessionId","state","alexaStatus","attempts"}` | Alexa accepted it |
//! | 200 | `{"outcome":"duplicate"\|"ignored","sessionId","state","reason"?}` | same `messageId` again / a repeat or out-of-date message (not sent) |
//! | 400 | `{"error":"invalid_request","message"}` | malformed body, missing SDP, unknown type, over the size limits (`takeback_alexa::limits`) |
//! | 404 | `{"error":"unknown_session"}` | no live session with that id |
//! | 405 | `{"error":"method_not_allowed"}` | not a POST |
//! | 409 | `{"error":"invalid_state","message","state"}` | the message is impossible in the session's state |
//! | 502 | `{"error":"alexa_rejected"\|"alexa_unavailable","alexaStatus","message"}` | Alexa refused it / kept failing (429, 5xx) |
//! | 503 | `{"error":"account_not_linked","message"}` | no usable LWA token (link the account) |
//! | 500 | `{"error":"store_unavailable"}` | DynamoDB failed |
//! | 504 | `{"error":"timeout","message"}` | the deadline (10 s) came first; the message may or may not have reached Alexa: retry with the same `messageId` |
//!
//! Every refusal (4xx/5xx) is logged with its reason.
//!
//! # Environment
//!
//! | variable | required | default |
//! |---|---|---|
//! | `SIGNALING_SESSIONS_TABLE` | yes | |
//! | `TOKENS_TABLE` | yes | |
//! | `LWA_CLIENT_ID` | yes | |
//! | `ALEXA_SECRET_ARN` | in AWS | | Secrets Manager secret holding `lwa_client_secret`; read at cold start and again after LWA answers `invalid_client` (`takeback-secrets`) |
//! | `LWA_CLIENT_SECRET` | without `ALEXA_SECRET_ARN` (local runs; refused beside it) | |
//! | `LWA_TOKEN_URL` | no | `https://api.amazon.com/auth/o2/token` |
//! | `LWA_TOKEN_ID` | no | `alexa-calling` |
//! | `LWA_TIMEOUT_MS` | no | `3000` |
//! | `TOKEN_REFRESH_MARGIN_SECONDS` | no | `300` |
//! | `ALEXA_API_ENDPOINT` | no | `https://api.amazonalexa.com` |
//! | `SIGNALING_MAX_ATTEMPTS` | no | `3` |
//! | `SIGNALING_TIMEOUT_MS` | no | `2000` |
//! | `RETRY_BASE_DELAY_MS` / `RETRY_MAX_DELAY_MS` | no | `100` / `2000` |
//! | `SESSION_TTL_SECONDS` / `ENDED_SESSION_TTL_SECONDS` | no | `86400` / `3600` |
//! | `RUST_LOG` | no | `info` (the runtime's, the SDK's and the HTTP stack's own output is capped at INFO) |
//!
//! Time: the backend is asked to wait 12 s; the handler answers by its 10 s deadline
//! (`takeback_alexa::budget::SIGNALING_API_DEADLINE`), token refresh, waiting for another
//! environment's refresh and Alexa retries included; the function's timeout is 12 s
//! (`template.yaml`, checked by `functions/call-signaling/tests/template_budget.rs`).

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine;
use http::HeaderValue;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use takeback_alexa::budget::{self, Deadline};
use takeback_alexa::config::{ConfigError, Env, LwaSettings, SessionTtl, SignalingSettings};
use takeback_alexa::model::{
    BackendMessage, BackendRequest, CallResult, CallResultCode, MessageKind, SignalingMessage,
};
use takeback_alexa::now_epoch_seconds;
use takeback_alexa::session::{
    CallSession, IgnoreReason, Incoming, Rejection, SessionState, Side, inbound_session_id,
};
use takeback_alexa::store::TokenStore;
use takeback_alexa::store::{self, Recorded, SessionStore};
use takeback_http::lwa::TokenError;
use takeback_http::signaling::{SignalingClient, SignalingError};
use tracing::{Instrument, error, info, info_span, warn};

/// Bodies above this are refused: [`takeback_alexa::limits::MAX_BACKEND_BODY_BYTES`], derived
/// from the message limits the skill applies too.
pub const MAX_BODY_BYTES: usize = takeback_alexa::limits::MAX_BACKEND_BODY_BYTES;

#[derive(Debug, Clone)]
pub struct SignalingApiConfig {
    pub sessions_table: String,
    pub tokens_table: String,
    pub lwa: LwaSettings,
    pub signaling: SignalingSettings,
    pub ttl: SessionTtl,
}

impl SignalingApiConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            sessions_table: env.required(takeback_dynamo::tables::SIGNALING_SESSIONS.env_var)?,
            tokens_table: env.required(takeback_dynamo::tables::TOKENS.env_var)?,
            lwa: LwaSettings::from_env(env)?,
            signaling: SignalingSettings::from_env(env)?,
            ttl: SessionTtl::from_env(env)?,
        })
    }
}

pub struct SignalingApiDeps<S, T> {
    pub sessions: S,
    pub signaling: SignalingClient<T>,
    pub settings: SignalingSettings,
    pub ttl: SessionTtl,
}

#[derive(Debug, thiserror::Error)]
pub enum SignalingApiError {
    #[error("not a Lambda function URL event: {0}")]
    NotAFunctionUrlEvent(String),
}

/// The Lambda event: a function URL request, or why the payload is not one (answered with
/// [`SignalingApiError::NotAFunctionUrlEvent`]). Reading it never fails.
#[derive(Debug, Clone)]
pub enum FunctionUrlEvent {
    Request(Box<LambdaFunctionUrlRequest>),
    NotAFunctionUrlEvent(String),
}

impl FunctionUrlEvent {
    pub fn from_value(event: Value) -> Self {
        match serde_json::from_value(event) {
            Ok(request) => Self::Request(Box::new(request)),
            Err(e) => Self::NotAFunctionUrlEvent(e.to_string()),
        }
    }
}

/// Reads any JSON document (the Lambda runtime's payload); never fails on a well-formed one.
impl<'de> Deserialize<'de> for FunctionUrlEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from_value)
    }
}

/// An answer of the API (the JSON body); its variant fixes the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ApiResponse {
    /// 200: `{"outcome":...}`.
    Done(ApiOutcome),
    /// 4xx/5xx: `{"error":...}`.
    Failed(ApiFailure),
}

/// What happened to a message that was not refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "outcome",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum ApiOutcome {
    /// Alexa accepted it.
    Sent {
        session_id: String,
        state: SessionState,
        alexa_status: u16,
        attempts: u32,
    },
    /// The same `messageId` again: already handled, not sent.
    Duplicate {
        session_id: String,
        state: SessionState,
    },
    /// A repeat or out-of-date message: not sent.
    Ignored {
        session_id: String,
        state: SessionState,
        reason: IgnoreReason,
    },
}

/// Why a message was refused or not delivered (see the table in the crate docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "error",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ApiFailure {
    /// 400.
    InvalidRequest { message: String },
    /// 404.
    UnknownSession { message: String },
    /// 405.
    MethodNotAllowed { message: String },
    /// 409; `state` is `null` when the session could not be read again.
    InvalidState {
        message: String,
        state: Option<SessionState>,
    },
    /// 502: Alexa refused the message.
    AlexaRejected {
        alexa_status: u16,
        message: Option<String>,
    },
    /// 502: Alexa kept failing (429, 5xx, no answer).
    AlexaUnavailable {
        alexa_status: Option<u16>,
        message: String,
    },
    /// 503: no usable LWA token (link the account).
    AccountNotLinked { message: String },
    /// 503: Login with Amazon failed.
    TokenUnavailable { message: String },
    /// 500: DynamoDB failed.
    StoreUnavailable { message: String },
    /// 500.
    Internal { message: String },
    /// 504: the deadline came first.
    Timeout { message: String },
}

impl ApiFailure {
    /// The `error` code and message, for the log line that says why a request was refused.
    fn describe(&self) -> (&'static str, String) {
        match self {
            ApiFailure::InvalidRequest { message } => ("invalid_request", message.clone()),
            ApiFailure::UnknownSession { message } => ("unknown_session", message.clone()),
            ApiFailure::MethodNotAllowed { message } => ("method_not_allowed", message.clone()),
            ApiFailure::InvalidState { message, .. } => ("invalid_state", message.clone()),
            ApiFailure::AlexaRejected {
                alexa_status,
                message,
            } => (
                "alexa_rejected",
                format!(
                    "HTTP {alexa_status}{}",
                    message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            ),
            ApiFailure::AlexaUnavailable { message, .. } => ("alexa_unavailable", message.clone()),
            ApiFailure::AccountNotLinked { message } => ("account_not_linked", message.clone()),
            ApiFailure::TokenUnavailable { message } => ("token_unavailable", message.clone()),
            ApiFailure::StoreUnavailable { message } => ("store_unavailable", message.clone()),
            ApiFailure::Internal { message } => ("internal", message.clone()),
            ApiFailure::Timeout { message } => ("timeout", message.clone()),
        }
    }
}

impl From<ApiOutcome> for ApiResponse {
    fn from(outcome: ApiOutcome) -> Self {
        Self::Done(outcome)
    }
}

impl From<ApiFailure> for ApiResponse {
    fn from(failure: ApiFailure) -> Self {
        Self::Failed(failure)
    }
}

impl ApiResponse {
    fn invalid(message: impl Into<String>) -> Self {
        ApiFailure::InvalidRequest {
            message: message.into(),
        }
        .into()
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiResponse::Done(_) => 200,
            ApiResponse::Failed(f) => match f {
                ApiFailure::InvalidRequest { .. } => 400,
                ApiFailure::UnknownSession { .. } => 404,
                ApiFailure::MethodNotAllowed { .. } => 405,
                ApiFailure::InvalidState { .. } => 409,
                ApiFailure::AlexaRejected { .. } | ApiFailure::AlexaUnavailable { .. } => 502,
                ApiFailure::AccountNotLinked { .. } | ApiFailure::TokenUnavailable { .. } => 503,
                ApiFailure::StoreUnavailable { .. } | ApiFailure::Internal { .. } => 500,
                ApiFailure::Timeout { .. } => 504,
            },
        }
    }

    pub fn into_function_url_response(self) -> LambdaFunctionUrlResponse {
        let mut r = LambdaFunctionUrlResponse::default();
        r.status_code = i64::from(self.status());
        r.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r.body = Some(serde_json::to_string(&self).unwrap_or_default());
        r.is_base64_encoded = false;
        r
    }
}

/// The Lambda handler: a function URL event in, a function URL response out, by
/// [`budget::SIGNALING_API_DEADLINE`] from now.
pub async fn handle<S: SessionStore, T: TokenStore>(
    deps: &SignalingApiDeps<S, T>,
    event: FunctionUrlEvent,
) -> Result<LambdaFunctionUrlResponse, SignalingApiError> {
    handle_by(deps, event, Deadline::after(budget::SIGNALING_API_DEADLINE)).await
}

/// [`handle`] with the invocation's deadline.
pub async fn handle_by<S: SessionStore, T: TokenStore>(
    deps: &SignalingApiDeps<S, T>,
    event: FunctionUrlEvent,
    deadline: Deadline,
) -> Result<LambdaFunctionUrlResponse, SignalingApiError> {
    let request = match event {
        FunctionUrlEvent::Request(request) => *request,
        FunctionUrlEvent::NotAFunctionUrlEvent(reason) => {
            return Err(SignalingApiError::NotAFunctionUrlEvent(reason));
        }
    };
    let method = request
        .request_context
        .http
        .method
        .clone()
        .unwrap_or_default();
    let caller = request
        .request_context
        .authorizer
        .as_ref()
        .and_then(|a| a.iam.as_ref())
        .and_then(|i| i.user_arn.clone())
        .unwrap_or_default();
    let span = info_span!(
        "signaling_api",
        request_id = request.request_context.request_id.as_deref().unwrap_or_default(),
        caller = %caller,
    );
    async move {
        let answer = if !method.eq_ignore_ascii_case("POST") {
            ApiResponse::from(ApiFailure::MethodNotAllowed {
                message: format!("use POST, not {method}"),
            })
        } else {
            match (request.body, request.is_base64_encoded) {
                (None, _) => process(deps, &[], deadline).await,
                (Some(b), false) => process(deps, b.as_bytes(), deadline).await,
                (Some(b), true) => {
                    match base64::engine::general_purpose::STANDARD.decode(b.as_bytes()) {
                        Ok(bytes) => process(deps, &bytes, deadline).await,
                        Err(_) => ApiResponse::invalid("the body is not valid base64"),
                    }
                }
            }
        };
        if let ApiResponse::Failed(failure) = &answer {
            let (error, reason) = failure.describe();
            warn!(status = answer.status(), error, reason = %reason, "request refused");
        }
        Ok(answer.into_function_url_response())
    }
    .instrument(span)
    .await
}

/// Validates, records and sends one backend message by `deadline` (504 if it comes first).
pub async fn process<S: SessionStore, T: TokenStore>(
    deps: &SignalingApiDeps<S, T>,
    body: &[u8],
    deadline: Deadline,
) -> ApiResponse {
    let work = process_by(deps, body, deadline);
    match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline.instant()), work).await {
        Ok(answer) => answer,
        Err(_) => ApiFailure::Timeout {
            message: "the request did not finish in time; retry with the same messageId".into(),
        }
        .into(),
    }
}

async fn process_by<S: SessionStore, T: TokenStore>(
    deps: &SignalingApiDeps<S, T>,
    body: &[u8],
    deadline: Deadline,
) -> ApiResponse {
    if body.is_empty() {
        return ApiResponse::invalid("the body is empty");
    }
    if body.len() > MAX_BODY_BYTES {
        return ApiResponse::invalid(format!(
            "the body is larger than {MAX_BODY_BYTES} bytes ({} bytes)",
            body.len()
        ));
    }
    let request = match BackendRequest::from_slice(body) {
        Ok(r) => r,
        Err(e) => return ApiResponse::invalid(e.to_string()),
    };
    let kind = request.message.kind();
    let client_key = request
        .message_id
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    let (signal, api_endpoint) = match request.message {
        BackendMessage::InitiateInboundCall(mut signal) => {
            // Same idempotency key, same session: a retry finds the first attempt's call.
            signal.session_id = Some(match client_key.as_deref() {
                Some(key) => inbound_session_id(key),
                None => uuid::Uuid::new_v4().to_string(),
            });
            let api_endpoint = match request.api_endpoint.as_deref() {
                Some(e) if !deps.settings.is_allowed_endpoint(e) => {
                    return ApiResponse::invalid("apiEndpoint is not an Alexa API endpoint");
                }
                Some(e) => e.trim_end_matches('/').to_owned(),
                None => deps.settings.default_api_endpoint.clone(),
            };
            (signal, Some(api_endpoint))
        }
        BackendMessage::Signal { signal, .. } => (signal, None),
    };
    let mut message = match signal.validate(kind, kind == MessageKind::InitiateInboundCall) {
        Ok(m) => m,
        Err(e) => return ApiResponse::invalid(format!("{kind}: {e}")),
    };
    if kind == MessageKind::CallEnded && message.call_result.is_none() {
        message.call_result = Some(CallResult {
            code: CallResultCode::Success,
            message: None,
        });
    }
    let message_id = match client_key {
        Some(m) => format!("backend:{m}"),
        None => format!("backend:{}", uuid::Uuid::new_v4()),
    };

    let span = info_span!("message", kind = kind.name(), session_id = %message.session_id);
    send_recorded(
        deps,
        message,
        &message_id,
        api_endpoint.as_deref(),
        deadline,
    )
    .instrument(span)
    .await
}

async fn send_recorded<S: SessionStore, T: TokenStore>(
    deps: &SignalingApiDeps<S, T>,
    message: SignalingMessage,
    message_id: &str,
    api_endpoint: Option<&str>,
    deadline: Deadline,
) -> ApiResponse {
    info!(
        participants = ?message.participants.iter().map(|p| p.log_label()).collect::<Vec<_>>(),
        sdp_bytes = message.sdp_len(),
        "backend message"
    );
    let now = now_epoch_seconds();
    let incoming = Incoming {
        message: &message,
        from: Side::Provider,
        message_id,
        api_endpoint,
        now,
        ttl: deps.ttl,
    };
    let recorded = match store::record(&deps.sessions, &incoming).await {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "session store failed; nothing sent");
            return ApiFailure::StoreUnavailable {
                message: "the session store failed".into(),
            }
            .into();
        }
    };
    let session_id = message.session_id.clone();
    match recorded {
        Recorded::Rejected(Rejection::UnknownSession) => {
            warn!("no live session");
            ApiFailure::UnknownSession {
                message: "no live session with this sessionId".into(),
            }
            .into()
        }
        Recorded::Rejected(r @ Rejection::NotFromThisSide { .. }) => {
            ApiResponse::invalid(r.to_string())
        }
        Recorded::Rejected(r) => {
            warn!(reason = %r, "impossible transition rejected; nothing sent");
            let state = deps
                .sessions
                .get(&session_id, now)
                .await
                .ok()
                .flatten()
                .map(|s| s.state);
            ApiFailure::InvalidState {
                message: r.to_string(),
                state,
            }
            .into()
        }
        Recorded::Ignored { state, reason } => {
            info!(
                state = state.as_str(),
                reason = reason.as_str(),
                "not sent (repeat or out of date)"
            );
            ApiOutcome::Ignored {
                session_id,
                state,
                reason,
            }
            .into()
        }
        Recorded::Duplicate { session, delivered } => {
            let latest = session.applied.last().map(String::as_str) == Some(message_id);
            if delivered || !latest {
                info!("duplicate messageId: already handled");
                return ApiOutcome::Duplicate {
                    session_id,
                    state: session.state,
                }
                .into();
            }
            info!("duplicate messageId never delivered: sending again");
            deliver(deps, &message, &session, None, message_id, false, deadline).await
        }
        Recorded::Applied { previous, session } => {
            deliver(
                deps,
                &message,
                &session,
                previous.as_ref(),
                message_id,
                true,
                deadline,
            )
            .await
        }
    }
}

async fn deliver<S: SessionStore, T: TokenStore>(
    deps: &SignalingApiDeps<S, T>,
    message: &SignalingMessage,
    session: &CallSession,
    previous: Option<&CallSession>,
    message_id: &str,
    roll_back_on_failure: bool,
    deadline: Deadline,
) -> ApiResponse {
    let endpoint = deps.settings.endpoint_for(session.api_endpoint.as_deref());
    match deps.signaling.send(endpoint, message, deadline).await {
        Ok(d) => {
            if let Err(e) = store::mark_delivered(
                &deps.sessions,
                &session.session_id,
                message_id,
                now_epoch_seconds(),
            )
            .await
            {
                warn!(error = %e, "could not mark the message delivered");
            }
            ApiOutcome::Sent {
                session_id: session.session_id.clone(),
                state: session.state,
                alexa_status: d.status,
                attempts: d.attempts,
            }
            .into()
        }
        Err(e) => {
            error!(error = %e, source = ?std::error::Error::source(&e).map(|s| s.to_string()), "Alexa did not take the message");
            if roll_back_on_failure {
                match store::roll_back(
                    &deps.sessions,
                    session,
                    previous,
                    message_id,
                    now_epoch_seconds(),
                )
                .await
                {
                    Ok(true) => info!("session record rolled back"),
                    Ok(false) => warn!("session changed meanwhile; record not rolled back"),
                    Err(e) => error!(error = %e, "rolling back the session record failed"),
                }
            }
            failure_response(&e).into()
        }
    }
}

fn failure_response(e: &SignalingError) -> ApiFailure {
    match e {
        SignalingError::Token(t) => {
            let message = t.to_string();
            match t {
                TokenError::NotLinked(_) | TokenError::Revoked(_) | TokenError::NoRefreshToken => {
                    ApiFailure::AccountNotLinked { message }
                }
                TokenError::Lwa(_) | TokenError::RefreshInProgress => {
                    ApiFailure::TokenUnavailable { message }
                }
                TokenError::Store(_) => ApiFailure::StoreUnavailable { message },
            }
        }
        SignalingError::Rejected { status, message } => ApiFailure::AlexaRejected {
            alexa_status: *status,
            message: message.clone(),
        },
        SignalingError::Exhausted { last_status, .. } => ApiFailure::AlexaUnavailable {
            alexa_status: *last_status,
            message: e.to_string(),
        },
        SignalingError::Request(_) => ApiFailure::Internal {
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        takeback_common::config::map_env(pairs.iter().copied())
    }

    const ALL: &[(&str, &str)] = &[
        ("SIGNALING_SESSIONS_TABLE", "sessions"),
        ("TOKENS_TABLE", "tokens"),
        ("LWA_CLIENT_ID", "cid"),
        ("LWA_CLIENT_SECRET", "csecret-value"),
    ];

    #[test]
    fn every_required_variable_is_named_when_missing() {
        for (name, _) in ALL {
            let rest: Vec<_> = ALL.iter().copied().filter(|(n, _)| n != name).collect();
            assert!(matches!(
                SignalingApiConfig::from_env(&env(&rest)).unwrap_err(),
                ConfigError::Missing(n) if n == *name
            ));
        }
        let c = SignalingApiConfig::from_env(&env(ALL)).unwrap();
        assert_eq!(c.signaling.retry.max_attempts, 3);
        assert!(!format!("{c:?}").contains("csecret-value"));
    }

    #[test]
    fn responses_are_json_function_url_answers() {
        let r = ApiResponse::from(ApiFailure::UnknownSession {
            message: "x".into(),
        })
        .into_function_url_response();
        assert_eq!(r.status_code, 404);
        assert_eq!(r.headers["content-type"], "application/json");
        let body: Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["error"], "unknown_session");
        // The typed answers serialize to the documented bodies, `null`s included.
        let as_json = |r: ApiResponse| serde_json::to_value(r).unwrap();
        assert_eq!(
            as_json(
                ApiOutcome::Sent {
                    session_id: "s".into(),
                    state: SessionState::Ringing,
                    alexa_status: 200,
                    attempts: 1,
                }
                .into()
            ),
            serde_json::json!({"outcome": "sent", "sessionId": "s", "state": "RINGING",
                               "alexaStatus": 200, "attempts": 1})
        );
        assert_eq!(
            as_json(
                ApiOutcome::Ignored {
                    session_id: "s".into(),
                    state: SessionState::Accepted,
                    reason: IgnoreReason::Superseded,
                }
                .into()
            ),
            serde_json::json!({"outcome": "ignored", "sessionId": "s", "state": "ACCEPTED",
                               "reason": "superseded"})
        );
        assert_eq!(
            as_json(
                ApiFailure::InvalidState {
                    message: "m".into(),
                    state: None,
                }
                .into()
            ),
            serde_json::json!({"error": "invalid_state", "message": "m", "state": null})
        );
        assert_eq!(
            as_json(
                ApiFailure::AlexaRejected {
                    alexa_status: 400,
                    message: None,
                }
                .into()
            ),
            serde_json::json!({"error": "alexa_rejected", "alexaStatus": 400, "message": null})
        );
        assert_eq!(
            as_json(
                ApiFailure::AlexaUnavailable {
                    alexa_status: None,
                    message: "m".into(),
                }
                .into()
            ),
            serde_json::json!({"error": "alexa_unavailable", "alexaStatus": null, "message": "m"})
        );
    }
}
