//! The property backend's way in: CallSignaling messages to Alexa.
//!
//! # Design
//!
//! A Lambda function URL with `AuthType: AWS_IAM`: the backend signs its requests with SigV4
//! (any AWS SDK, `awscurl`) using a role that has `lambda:InvokeFunctionUrl` on this function.
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
//!  "messageId": "backend-unique-id",             // optional; a retry with the same id is not sent twice
//!  "participants": [{"id": {"type": "RAW_ADDRESS", "value": "…"}, "isOriginator": true}],
//!  "sdpDetails": {"type": "ANSWER", "value": "v=0…"},
//!  "renegotiationType": "CALL_HOLD",
//!  "callResult": {"code": "SUCCESS", "message": "…"},
//!  "apiEndpoint": "https://api.eu.amazonalexa.com"}  // InitiateInboundCall only; official endpoints only
//! ```
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
//! | 400 | `{"error":"invalid_request","message"}` | malformed body, missing SDP, unknown type |
//! | 404 | `{"error":"unknown_session"}` | no live session with that id |
//! | 405 | `{"error":"method_not_allowed"}` | not a POST |
//! | 409 | `{"error":"invalid_state","message","state"}` | the message is impossible in the session's state |
//! | 502 | `{"error":"alexa_rejected"\|"alexa_unavailable","alexaStatus","message"}` | Alexa refused it / kept failing (429, 5xx) |
//! | 503 | `{"error":"account_not_linked","message"}` | no usable LWA token (link the account) |
//! | 500 | `{"error":"store_unavailable"}` | DynamoDB failed |
//!
//! # Environment
//!
//! | variable | required | default |
//! |---|---|---|
//! | `SIGNALING_SESSIONS_TABLE` | yes | |
//! | `TOKENS_TABLE` | yes | |
//! | `LWA_CLIENT_ID` | yes | |
//! | `LWA_CLIENT_SECRET` | yes (secret) | |
//! | `LWA_TOKEN_URL` | no | `https://api.amazon.com/auth/o2/token` |
//! | `LWA_TOKEN_ID` | no | `alexa-calling` |
//! | `LWA_TIMEOUT_MS` | no | `3000` |
//! | `TOKEN_REFRESH_MARGIN_SECONDS` | no | `300` |
//! | `ALEXA_API_ENDPOINT` | no | `https://api.amazonalexa.com` |
//! | `SIGNALING_MAX_ATTEMPTS` | no | `3` |
//! | `SIGNALING_TIMEOUT_MS` | no | `2000` |
//! | `RETRY_BASE_DELAY_MS` / `RETRY_MAX_DELAY_MS` | no | `100` / `2000` |
//! | `SESSION_TTL_SECONDS` / `ENDED_SESSION_TTL_SECONDS` | no | `86400` / `3600` |
//! | `RUST_LOG` | no | `info` |
//!
//! Worst case with the defaults: a token refresh (≤ 3 s, one retry) plus three attempts of 2 s
//! with backoff: give the function a timeout of at least 15 s.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine;
use http::HeaderValue;
use serde::Deserialize;
use serde_json::{Value, json};
use takeback_alexa::config::{ConfigError, Env, LwaSettings, SessionTtl, SignalingSettings};
use takeback_alexa::model::{
    CallResult, CallResultCode, InboundSignal, MessageKind, SignalingMessage,
};
use takeback_alexa::now_epoch_seconds;
use takeback_alexa::session::{Incoming, Rejection, Session, Side};
use takeback_alexa::store::TokenStore;
use takeback_alexa::store::{self, Recorded, SessionStore};
use takeback_http::lwa::TokenError;
use takeback_http::signaling::{SignalingClient, SignalingError};
use tracing::{Instrument, error, info, info_span, warn};

/// Bodies above this are refused (a message holds one SDP of a few KB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    pub sessions_table: String,
    pub tokens_table: String,
    pub lwa: LwaSettings,
    pub signaling: SignalingSettings,
    pub ttl: SessionTtl,
}

impl Config {
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

pub struct Deps<S, T> {
    pub sessions: S,
    pub signaling: SignalingClient<T>,
    pub settings: SignalingSettings,
    pub ttl: SessionTtl,
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("not a Lambda function URL event: {0}")]
    NotAFunctionUrlEvent(String),
}

/// An HTTP answer before it is wrapped for the function URL.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

impl ApiResponse {
    fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }

    fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"error": code, "message": message.into()}),
        }
    }

    pub fn into_function_url_response(self) -> LambdaFunctionUrlResponse {
        let mut r = LambdaFunctionUrlResponse::default();
        r.status_code = i64::from(self.status);
        r.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r.body = Some(self.body.to_string());
        r.is_base64_encoded = false;
        r
    }
}

/// The Lambda handler: a function URL event in, a function URL response out.
pub async fn handle<S: SessionStore, T: TokenStore>(
    deps: &Deps<S, T>,
    event: Value,
) -> Result<LambdaFunctionUrlResponse, HandlerError> {
    let request: LambdaFunctionUrlRequest = serde_json::from_value(event)
        .map_err(|e| HandlerError::NotAFunctionUrlEvent(e.to_string()))?;
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
        if !method.eq_ignore_ascii_case("POST") {
            return Ok(ApiResponse::error(405, "method_not_allowed", "use POST")
                .into_function_url_response());
        }
        let body = match (request.body, request.is_base64_encoded) {
            (None, _) => Vec::new(),
            (Some(b), false) => b.into_bytes(),
            (Some(b), true) => match base64::engine::general_purpose::STANDARD.decode(b.as_bytes())
            {
                Ok(bytes) => bytes,
                Err(_) => {
                    return Ok(ApiResponse::error(
                        400,
                        "invalid_request",
                        "the body is not valid base64",
                    )
                    .into_function_url_response());
                }
            },
        };
        Ok(process(deps, &body).await.into_function_url_response())
    }
    .instrument(span)
    .await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct BackendFields {
    #[serde(rename = "type", default)]
    message_type: Option<String>,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    api_endpoint: Option<String>,
    #[serde(default)]
    session_id: Option<Value>,
}

/// Validates, records and sends one backend message.
pub async fn process<S: SessionStore, T: TokenStore>(
    deps: &Deps<S, T>,
    body: &[u8],
) -> ApiResponse {
    if body.is_empty() {
        return ApiResponse::error(400, "invalid_request", "the body is empty");
    }
    if body.len() > MAX_BODY_BYTES {
        return ApiResponse::error(400, "invalid_request", "the body is too large");
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return ApiResponse::error(400, "invalid_request", "the body must be a JSON object");
        }
        Err(e) => {
            return ApiResponse::error(
                400,
                "invalid_request",
                format!("the body is not JSON: {e}"),
            );
        }
    };
    let fields = match BackendFields::deserialize(&value) {
        Ok(f) => f,
        Err(e) => return ApiResponse::error(400, "invalid_request", e.to_string()),
    };
    let Some(type_text) = fields.message_type.as_deref() else {
        return ApiResponse::error(400, "invalid_request", "type is missing");
    };
    let Some(kind) = MessageKind::parse(type_text) else {
        return ApiResponse::error(
            400,
            "invalid_request",
            format!("unknown message type {type_text:?}"),
        );
    };
    if kind == MessageKind::InitiateOutboundCall {
        return ApiResponse::error(
            400,
            "invalid_request",
            "InitiateOutboundCall is sent by Alexa, not by the property",
        );
    }
    let mut signal = match InboundSignal::deserialize(&value) {
        Ok(s) => s,
        Err(e) => return ApiResponse::error(400, "invalid_request", e.to_string()),
    };
    if kind == MessageKind::InitiateInboundCall {
        if fields.session_id.is_some() {
            return ApiResponse::error(
                400,
                "invalid_request",
                "sessionId is generated by this API for InitiateInboundCall; omit it",
            );
        }
        signal.session_id = Some(uuid::Uuid::new_v4().to_string());
    }
    let api_endpoint = match (kind, fields.api_endpoint.as_deref()) {
        (MessageKind::InitiateInboundCall, Some(e)) if !deps.settings.is_allowed_endpoint(e) => {
            return ApiResponse::error(
                400,
                "invalid_request",
                "apiEndpoint is not an Alexa API endpoint",
            );
        }
        (MessageKind::InitiateInboundCall, Some(e)) => Some(e.trim_end_matches('/').to_owned()),
        (MessageKind::InitiateInboundCall, None) => {
            Some(deps.settings.default_api_endpoint.clone())
        }
        _ => None,
    };
    let mut message = match signal.validate(kind, kind == MessageKind::InitiateInboundCall) {
        Ok(m) => m,
        Err(e) => return ApiResponse::error(400, "invalid_request", format!("{kind}: {e}")),
    };
    if kind == MessageKind::CallEnded && message.call_result.is_none() {
        message.call_result = Some(CallResult {
            code: CallResultCode::Success,
            message: None,
        });
    }
    let message_id = fields
        .message_id
        .filter(|m| !m.trim().is_empty())
        .map(|m| format!("backend:{m}"))
        .unwrap_or_else(|| format!("backend:{}", uuid::Uuid::new_v4()));

    let span = info_span!("message", kind = kind.name(), session_id = %message.session_id);
    send_recorded(deps, message, &message_id, api_endpoint.as_deref())
        .instrument(span)
        .await
}

async fn send_recorded<S: SessionStore, T: TokenStore>(
    deps: &Deps<S, T>,
    message: SignalingMessage,
    message_id: &str,
    api_endpoint: Option<&str>,
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
            return ApiResponse::error(500, "store_unavailable", "the session store failed");
        }
    };
    let session_id = message.session_id.clone();
    match recorded {
        Recorded::Rejected(Rejection::UnknownSession) => {
            warn!("no live session");
            ApiResponse::error(
                404,
                "unknown_session",
                "no live session with this sessionId",
            )
        }
        Recorded::Rejected(r @ Rejection::NotFromThisSide { .. }) => {
            ApiResponse::error(400, "invalid_request", r.to_string())
        }
        Recorded::Rejected(r) => {
            warn!(reason = %r, "impossible transition rejected; nothing sent");
            let state = deps
                .sessions
                .get(&session_id, now)
                .await
                .ok()
                .flatten()
                .map(|s| s.state.as_str());
            ApiResponse {
                status: 409,
                body: json!({"error": "invalid_state", "message": r.to_string(), "state": state}),
            }
        }
        Recorded::Ignored { state, reason } => {
            info!(
                state = state.as_str(),
                reason = reason.as_str(),
                "not sent (repeat or out of date)"
            );
            ApiResponse::ok(json!({
                "outcome": "ignored", "sessionId": session_id, "state": state.as_str(), "reason": reason.as_str()
            }))
        }
        Recorded::Duplicate { session, delivered } => {
            let latest = session.applied.last().map(String::as_str) == Some(message_id);
            if delivered || !latest {
                info!("duplicate messageId: already handled");
                return ApiResponse::ok(json!({
                    "outcome": "duplicate", "sessionId": session_id, "state": session.state.as_str()
                }));
            }
            info!("duplicate messageId never delivered: sending again");
            deliver(deps, &message, &session, None, message_id, false).await
        }
        Recorded::Applied { previous, session } => {
            deliver(
                deps,
                &message,
                &session,
                previous.as_ref(),
                message_id,
                true,
            )
            .await
        }
    }
}

async fn deliver<S: SessionStore, T: TokenStore>(
    deps: &Deps<S, T>,
    message: &SignalingMessage,
    session: &Session,
    previous: Option<&Session>,
    message_id: &str,
    roll_back_on_failure: bool,
) -> ApiResponse {
    let endpoint = deps.settings.endpoint_for(session.api_endpoint.as_deref());
    match deps.signaling.send(endpoint, message).await {
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
            ApiResponse::ok(json!({
                "outcome": "sent",
                "sessionId": session.session_id,
                "state": session.state.as_str(),
                "alexaStatus": d.status,
                "attempts": d.attempts,
            }))
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
                    deps.ttl.ended.as_secs() as i64,
                )
                .await
                {
                    Ok(true) => info!("session record rolled back"),
                    Ok(false) => warn!("session changed meanwhile; record not rolled back"),
                    Err(e) => error!(error = %e, "rolling back the session record failed"),
                }
            }
            failure_response(&e)
        }
    }
}

fn failure_response(e: &SignalingError) -> ApiResponse {
    match e {
        SignalingError::Token(t) => match t {
            TokenError::NotLinked(_) | TokenError::Revoked(_) | TokenError::NoRefreshToken => {
                ApiResponse::error(503, "account_not_linked", t.to_string())
            }
            TokenError::Lwa(_) => ApiResponse::error(503, "token_unavailable", t.to_string()),
            TokenError::Store(_) => ApiResponse::error(500, "store_unavailable", t.to_string()),
        },
        SignalingError::Rejected { status, message } => ApiResponse {
            status: 502,
            body: json!({"error": "alexa_rejected", "alexaStatus": status, "message": message}),
        },
        SignalingError::Exhausted { last_status, .. } => ApiResponse {
            status: 502,
            body: json!({"error": "alexa_unavailable", "alexaStatus": last_status, "message": e.to_string()}),
        },
        SignalingError::Request(_) => ApiResponse::error(500, "internal", e.to_string()),
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
                Config::from_env(&env(&rest)).unwrap_err(),
                ConfigError::Missing(n) if n == *name
            ));
        }
        let c = Config::from_env(&env(ALL)).unwrap();
        assert_eq!(c.signaling.retry.max_attempts, 3);
        assert!(!format!("{c:?}").contains("csecret-value"));
    }

    #[test]
    fn responses_are_json_function_url_answers() {
        let r = ApiResponse::error(404, "unknown_session", "x").into_function_url_response();
        assert_eq!(r.status_code, 404);
        assert_eq!(r.headers["content-type"], "application/json");
        let body: Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["error"], "unknown_session");
    }
}
