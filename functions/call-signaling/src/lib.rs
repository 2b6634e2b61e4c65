//! The Alexa skill endpoint for Alexa Smart Properties WebRTC calling.
//!
//! - `Alexa.Comms.CallSignaling.*` requests: the skill id is checked, the message validated,
//!   applied to the call session in DynamoDB (conditional, idempotent per Alexa `requestId`),
//!   forwarded to the property backend's webhook (signed, bounded retries), and answered with
//!   the deferred response `{"version":"1.0","response":{}}` (the SPI's step 1:
//!   <https://developer.amazon.com/docs/alexa/alexa-smart-properties/alexa-callsignaling-spi-for-asp.html>).
//!   When the backend cannot take an `InitiateOutboundCall`, the call is ended toward Alexa
//!   (`CallEnded` with `INTERNAL_ERROR`, or `UNAUTHORIZED` when the backend refused our
//!   signature).
//! - A CallSignaling request the skill cannot take (malformed, or over the size limits of
//!   `takeback_alexa::limits`) is never a Lambda error: it is answered with the deferred
//!   response too, the reason is logged, and when it is an offer or an answer (without which the
//!   media cannot be negotiated) the call is ended: `CallEnded` with `INTERNAL_ERROR` to Alexa,
//!   and the same `CallEnded` to the backend with `"refused": {"type","reason"}`.
//! - Account linking: `Alexa.Authorization.Grant` (custom-skill form) and the smart-home
//!   `AcceptGrant` directive; the code is exchanged with Login with Amazon and the tokens stored.
//!   A re-delivered grant whose code already linked the account is answered as a success.
//! - Launch/intents get a short spoken answer (a custom skill needs a voice interface); any other
//!   request type is logged and answered with an empty response.
//!
//! The deferred response is returned once the webhook delivery finished or its budget
//! (`WEBHOOK_BUDGET_MS`) ran out, and never later than the invocation's deadline
//! (`takeback_alexa::budget::SKILL_DEADLINE`, 6 s, or the Lambda context's deadline less a
//! second if that is earlier); the real answer (ringing, accepted, ...) travels later through
//! `signaling-api`.
//!
//! # Environment
//!
//! | variable | required | default | meaning |
//! |---|---|---|---|
//! | `SKILL_ID` | yes | | the skill's id; requests for another id are refused |
//! | `SIGNALING_SESSIONS_TABLE` | yes | | sessions table name |
//! | `TOKENS_TABLE` | yes | | LWA tokens table name |
//! | `WEBHOOK_URL` | yes | | the property backend's webhook (https; http only to a loopback host) |
//! | `ALEXA_SECRET_ARN` | in AWS | | Secrets Manager secret holding `lwa_client_secret` and `webhook_hmac_secret`; read at cold start and again after LWA answers `invalid_client` or the backend 401 (`takeback-secrets`) |
//! | `WEBHOOK_SECRET` | without `ALEXA_SECRET_ARN` | | HMAC-SHA256 key for `X-Signature` (secret, at least 32 bytes; local runs; refused beside the ARN) |
//! | `LWA_CLIENT_ID` | yes | | the skill's LWA client id |
//! | `LWA_CLIENT_SECRET` | without `ALEXA_SECRET_ARN` | | the skill's LWA client secret (secret; local runs) |
//! | `LWA_TOKEN_URL` | no | `https://api.amazon.com/auth/o2/token` | |
//! | `LWA_TOKEN_ID` | no | `alexa-calling` | key of the token item |
//! | `LWA_TIMEOUT_MS` | no | `3000` | per LWA request |
//! | `TOKEN_REFRESH_MARGIN_SECONDS` | no | `300` | refresh this long before expiry |
//! | `ALEXA_API_ENDPOINT` | no | `https://api.amazonalexa.com` | fallback endpoint; also allowed as a session's `apiEndpoint` |
//! | `SIGNALING_MAX_ATTEMPTS` | no | `2` | attempts for the `CallEnded` this function may send |
//! | `SIGNALING_TIMEOUT_MS` | no | `1500` | per attempt |
//! | `WEBHOOK_MAX_ATTEMPTS` | no | `3` | |
//! | `WEBHOOK_TIMEOUT_MS` | no | `1500` | per attempt |
//! | `WEBHOOK_BUDGET_MS` | no | `3000` | all webhook attempts together; must be below the 6 s deadline |
//! | `RETRY_BASE_DELAY_MS` / `RETRY_MAX_DELAY_MS` | no | `100` / `2000` | backoff |
//! | `SESSION_TTL_SECONDS` / `ENDED_SESSION_TTL_SECONDS` | no | `86400` / `3600` | session expiry |
//! | `RUST_LOG` | no | `info` | log filter (the runtime's, the SDK's and the HTTP stack's own output is capped at INFO: `takeback_http::logging`) |
//!
//! Time: everything runs under one deadline (`takeback_alexa::budget`); the function's timeout
//! is 7 s (Alexa waits 8 s), checked against `template.yaml` by `tests/template_budget.rs`.
//! Configure the Alexa Skills Kit trigger with skill-id verification too (the smart-home
//! `AcceptGrant` directive carries no skill id).

use std::sync::Arc;
use std::time::Duration;
use takeback_alexa::budget::{self, Deadline};
use takeback_alexa::config::{self, ConfigError, Env, LwaSettings, SessionTtl, SignalingSettings};
use takeback_alexa::model::{
    AlexaEvent, AlexaRequestEnvelope, AlexaResponse, CallResult, CallResultCode, Directive,
    DirectiveEnvelope, GrantPayload, MalformedRequest, MessageKind, RequestHeader,
    SIGNALING_PREFIX, SignalingMessage, SkillRequest, SkillRequestEnvelope, SkillResponse,
    check_session_id,
};
use takeback_alexa::retry::RetryPolicy;
use takeback_alexa::session::{CallSession, Incoming, SessionState, Side};
use takeback_alexa::store::TokenStore;
use takeback_alexa::store::{self, Recorded, SessionStore};
use takeback_alexa::{Secret, now_epoch_seconds};
use takeback_common::StoreError;
use takeback_http::lwa::AccessTokenProvider;
use takeback_http::signaling::SignalingClient;
use takeback_http::webhook::{Refused, WebhookClient, WebhookEnvelope, WebhookError};
use tracing::{Instrument, error, info, info_span, warn};

/// Typed configuration (see the module documentation for the variables).
#[derive(Debug, Clone)]
pub struct CallSignalingConfig {
    pub skill_id: String,
    pub sessions_table: String,
    pub tokens_table: String,
    pub webhook_url: String,
    pub webhook_secret: Secret,
    pub webhook_retry: RetryPolicy,
    pub webhook_budget: Duration,
    pub lwa: LwaSettings,
    pub signaling: SignalingSettings,
    pub ttl: SessionTtl,
}

impl CallSignalingConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let mut signaling = SignalingSettings::from_env(env)?;
        signaling.retry = config::retry_policy(
            env,
            "SIGNALING_MAX_ATTEMPTS",
            "SIGNALING_TIMEOUT_MS",
            2,
            budget::DEFAULT_SKILL_SIGNALING_ATTEMPT.as_millis() as u64,
        )?;
        let webhook_budget = Duration::from_millis(env.number_or(
            "WEBHOOK_BUDGET_MS",
            budget::DEFAULT_WEBHOOK_BUDGET.as_millis() as u64,
        )?);
        if webhook_budget >= budget::SKILL_DEADLINE {
            return Err(ConfigError::invalid(
                "WEBHOOK_BUDGET_MS",
                format!(
                    "must be below the skill's deadline of {} ms (Alexa waits 8 s)",
                    budget::SKILL_DEADLINE.as_millis()
                ),
            ));
        }
        Ok(Self {
            skill_id: env.required("SKILL_ID")?,
            sessions_table: env.required(takeback_dynamo::tables::SIGNALING_SESSIONS.env_var)?,
            tokens_table: env.required(takeback_dynamo::tables::TOKENS.env_var)?,
            webhook_url: config::url(env, "WEBHOOK_URL", None)?,
            webhook_secret: config::required_secret_min_len(
                env,
                "WEBHOOK_SECRET",
                config::MIN_WEBHOOK_SECRET_BYTES,
            )?,
            webhook_retry: config::retry_policy(
                env,
                "WEBHOOK_MAX_ATTEMPTS",
                "WEBHOOK_TIMEOUT_MS",
                3,
                budget::DEFAULT_WEBHOOK_ATTEMPT.as_millis() as u64,
            )?,
            webhook_budget,
            lwa: LwaSettings::from_env(env)?,
            signaling,
            ttl: SessionTtl::from_env(env)?,
        })
    }
}

/// What the handler needs; built once per process in `main`, directly in tests.
pub struct CallSignalingDeps<S, T> {
    pub skill_id: String,
    pub sessions: S,
    pub tokens: Arc<AccessTokenProvider<T>>,
    pub signaling: SignalingClient<T>,
    pub signaling_settings: SignalingSettings,
    pub webhook: WebhookClient,
    pub ttl: SessionTtl,
}

#[derive(Debug, thiserror::Error)]
pub enum CallSignalingError {
    #[error("request refused: it is addressed to skill {received:?}, not to this skill")]
    WrongSkill { received: Option<String> },
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("the session store failed")]
    Store(#[source] StoreError),
    #[error("the deadline passed before the request was handled")]
    Deadline,
}

/// Handles one Lambda event (a custom-skill request or a smart-home directive) by
/// [`budget::SKILL_DEADLINE`] from now. An event that is no Alexa request at all is an error
/// ([`CallSignalingError::Malformed`]), as is a request for another skill; a CallSignaling
/// request the skill cannot take is answered (see the crate docs).
pub async fn handle<S: SessionStore, T: TokenStore>(
    deps: &CallSignalingDeps<S, T>,
    event: AlexaRequestEnvelope,
) -> Result<AlexaResponse, CallSignalingError> {
    handle_by(deps, event, Deadline::after(budget::SKILL_DEADLINE)).await
}

/// [`handle`] with the invocation's deadline: every retry and wait inside stops in time, and
/// if the deadline comes anyway the answer Alexa expects for the request goes out unfinished
/// work or not (the deferred response for CallSignaling, `ACCEPT_GRANT_FAILED` for a grant).
pub async fn handle_by<S: SessionStore, T: TokenStore>(
    deps: &CallSignalingDeps<S, T>,
    event: AlexaRequestEnvelope,
    deadline: Deadline,
) -> Result<AlexaResponse, CallSignalingError> {
    let fallback = answer_at_deadline(&event);
    let work = async {
        match event {
            AlexaRequestEnvelope::Skill(envelope) => {
                handle_skill_request(deps, *envelope, deadline).await
            }
            AlexaRequestEnvelope::Directive(directive) => {
                Ok(handle_directive(deps, directive, deadline).await)
            }
            AlexaRequestEnvelope::Malformed { reason } => {
                warn!(reason = %reason, "refusing an event that is no Alexa request");
                Err(CallSignalingError::Malformed(reason))
            }
        }
    };
    match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline.instant()), work).await {
        Ok(answer) => answer,
        Err(_) => {
            error!("the deadline came before the request was handled; answering now");
            fallback.ok_or(CallSignalingError::Deadline)
        }
    }
}

/// What Alexa gets if the deadline comes first.
fn answer_at_deadline(event: &AlexaRequestEnvelope) -> Option<AlexaResponse> {
    let failed = || AlexaEvent::accept_grant_failed("Account linking did not finish in time");
    match event {
        AlexaRequestEnvelope::Skill(envelope) => Some(match &envelope.request {
            Ok(SkillRequest::AuthorizationGrant(_)) => SkillResponse::event(failed()).into(),
            _ => SkillResponse::deferred().into(),
        }),
        AlexaRequestEnvelope::Directive(d) => Some(match d.directive {
            Directive::Unknown => AlexaEvent::invalid_directive("unsupported directive").into(),
            _ => failed().into(),
        }),
        AlexaRequestEnvelope::Malformed { .. } => None,
    }
}

/// The CallSignaling message kind of a request whose fields could not be read.
fn unreadable_signal(error: &MalformedRequest) -> Option<MessageKind> {
    match error {
        MalformedRequest::BadFields { request_type, .. } => request_type
            .strip_prefix(SIGNALING_PREFIX)
            .and_then(MessageKind::parse),
        _ => None,
    }
}

async fn handle_skill_request<S: SessionStore, T: TokenStore>(
    deps: &CallSignalingDeps<S, T>,
    envelope: SkillRequestEnvelope,
    deadline: Deadline,
) -> Result<AlexaResponse, CallSignalingError> {
    let header = &envelope.header;
    let span = info_span!(
        "alexa_request",
        request_type = header.request_type.as_deref().unwrap_or_default(),
        request_id = header.request_id.as_deref().unwrap_or_default(),
        session_id = header.session_id.as_deref().unwrap_or_default(),
    );
    async move {
        let received = envelope.application_id();
        if received != Some(deps.skill_id.as_str()) {
            warn!(received_skill_id = ?received, "refusing a request for another skill");
            return Err(CallSignalingError::WrongSkill {
                received: received.map(str::to_owned),
            });
        }
        let api_endpoint = envelope.api_endpoint().map(str::to_owned);
        let SkillRequestEnvelope {
            header, request, ..
        } = envelope;
        let api_endpoint = vetted_endpoint(deps, api_endpoint.as_deref());
        let request = match request {
            Ok(r) => r,
            Err(e) => match unreadable_signal(&e) {
                Some(kind) => {
                    let session_id = header.session_id.clone();
                    let refusal = Refusal {
                        kind,
                        session_id: session_id.as_deref(),
                        reason: e.to_string(),
                    };
                    refuse(deps, api_endpoint, &header, refusal, deadline).await;
                    return Ok(SkillResponse::deferred().into());
                }
                None => {
                    warn!(error = %e, "malformed request");
                    return Err(CallSignalingError::Malformed(e.to_string()));
                }
            },
        };
        match request {
            SkillRequest::CallSignaling { kind, signal } => {
                let session_id = signal.session_id.clone();
                match signal.validate(kind, false) {
                    Ok(message) => {
                        on_signal(deps, api_endpoint, &header, message, deadline).await?;
                    }
                    Err(e) => {
                        let refusal = Refusal {
                            kind,
                            session_id: session_id.as_deref(),
                            reason: e.to_string(),
                        };
                        refuse(deps, api_endpoint, &header, refusal, deadline).await;
                    }
                }
                Ok(SkillResponse::deferred().into())
            }
            SkillRequest::UnknownCallSignaling { name } => {
                warn!(name = %name, "unknown CallSignaling request type: answered, not recorded");
                Ok(SkillResponse::deferred().into())
            }
            SkillRequest::AuthorizationGrant(payload) => Ok(SkillResponse::event(
                accept_grant(deps, payload, deadline).await,
            )
            .into()),
            SkillRequest::Launch | SkillRequest::Intent { .. } => Ok(SkillResponse::speech(
                "This skill connects calls between Alexa and the property's devices. \
                 Ask Alexa to call a contact to start a call.",
            )
            .into()),
            SkillRequest::SessionEnded => Ok(SkillResponse::empty().into()),
            SkillRequest::Unknown { request_type } => {
                info!(request_type = %request_type, "request type not handled by this skill: empty answer");
                Ok(SkillResponse::empty().into())
            }
        }
    }
    .instrument(span)
    .await
}

/// Smart-home directives are always answered with an event, an error event included.
async fn handle_directive<S: SessionStore, T: TokenStore>(
    deps: &CallSignalingDeps<S, T>,
    envelope: DirectiveEnvelope,
    deadline: Deadline,
) -> AlexaResponse {
    let span = info_span!(
        "alexa_directive",
        namespace = envelope.header.namespace.as_deref().unwrap_or_default(),
        name = envelope.header.name.as_deref().unwrap_or_default(),
    );
    async move {
        match envelope.directive {
            Directive::AcceptGrant(payload) => accept_grant(deps, payload, deadline).await.into(),
            Directive::MalformedAcceptGrant { reason } => {
                warn!(error = %reason, "malformed AcceptGrant payload");
                AlexaEvent::accept_grant_failed("malformed AcceptGrant payload").into()
            }
            Directive::Unknown => {
                warn!("unsupported directive: answered with INVALID_DIRECTIVE");
                AlexaEvent::invalid_directive("unsupported directive").into()
            }
        }
    }
    .instrument(span)
    .await
}

async fn accept_grant<S: SessionStore, T: TokenStore>(
    deps: &CallSignalingDeps<S, T>,
    payload: GrantPayload,
    deadline: Deadline,
) -> AlexaEvent {
    let grant = payload.grant.unwrap_or_default();
    match deps
        .tokens
        .link(grant.grant_type.as_deref(), grant.code.as_ref(), deadline)
        .await
    {
        Ok(()) => AlexaEvent::accept_grant_response(),
        Err(e) => {
            error!(error = %e, source = ?std::error::Error::source(&e).map(|s| s.to_string()), "account linking failed");
            AlexaEvent::accept_grant_failed(format!("Account linking failed: {e}"))
        }
    }
}

/// A stable id for a request that lacks `requestId`, so a re-delivery still deduplicates.
fn message_id(header: &RequestHeader, kind: MessageKind, session_id: &str) -> String {
    match header.request_id.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => r.to_owned(),
        None => format!(
            "{}:{}:{}",
            kind.name(),
            session_id,
            header.timestamp.as_deref().unwrap_or_default()
        ),
    }
}

/// The request's `apiEndpoint` if it is an Alexa endpoint (the bearer token goes there).
fn vetted_endpoint<'a, S, T>(
    deps: &CallSignalingDeps<S, T>,
    api_endpoint: Option<&'a str>,
) -> Option<&'a str> {
    match api_endpoint {
        Some(e) if deps.signaling_settings.is_allowed_endpoint(e) => Some(e.trim_end_matches('/')),
        Some(e) => {
            warn!(api_endpoint = %e, "apiEndpoint is not an Alexa endpoint; using the configured one");
            None
        }
        None => None,
    }
}

/// A CallSignaling request the skill cannot take.
struct Refusal<'a> {
    kind: MessageKind,
    session_id: Option<&'a str>,
    reason: String,
}

/// Answers a request the skill cannot take without failing the invocation: logs why, and for
/// an offer or answer ends the call toward Alexa (`CallEnded`, `INTERNAL_ERROR`: the call could
/// not be set up; the codes are those of the CallSignaling `callResult`) and tells the backend.
async fn refuse<S: SessionStore, T: TokenStore>(
    deps: &CallSignalingDeps<S, T>,
    api_endpoint: Option<&str>,
    header: &RequestHeader,
    refusal: Refusal<'_>,
    deadline: Deadline,
) {
    let Refusal {
        kind,
        session_id,
        reason,
    } = refusal;
    warn!(kind = kind.name(), reason = %reason, "refusing a CallSignaling request it cannot take; answered with the deferred response");
    if kind.required_sdp().is_none() {
        info!(
            kind = kind.name(),
            "not an offer or answer: nothing recorded, the call goes on"
        );
        return;
    }
    let session_id = match check_session_id(session_id) {
        Ok(id) => id,
        Err(e) => {
            warn!(error = %e, "no usable sessionId: there is no call to end");
            return;
        }
    };
    let ended = SignalingMessage::call_ended(
        session_id.clone(),
        CallResult::new(
            CallResultCode::InternalError,
            format!("The calling service could not take the {}", kind.name()),
        ),
    );
    let id = format!("{}#refused", message_id(header, kind, &session_id));
    let incoming = Incoming {
        message: &ended,
        from: Side::Provider,
        message_id: &id,
        api_endpoint,
        now: now_epoch_seconds(),
        ttl: deps.ttl,
    };
    let session = match store::record_refusal(&deps.sessions, &incoming).await {
        Ok(Recorded::Applied { session, .. }) => Some(session),
        Ok(Recorded::Duplicate {
            session,
            delivered: false,
        }) if session.applied.last() == Some(&id) => {
            info!(
                "re-delivered refused request whose CallEnded never reached Alexa: sending it again"
            );
            Some(session)
        }
        Ok(other) => {
            info!(outcome = ?other, "the call is already ended; no CallEnded sent");
            return;
        }
        Err(e) => {
            // Still tell Alexa: a stale session is better than a hanging call.
            error!(error = %e, "could not record the refusal; sending the CallEnded anyway");
            None
        }
    };
    let recorded_endpoint = session.as_ref().and_then(|s| s.api_endpoint.as_deref());
    let endpoint = deps
        .signaling_settings
        .endpoint_for(recorded_endpoint.or(api_endpoint));
    match deps.signaling.send(endpoint, &ended, deadline).await {
        Ok(d) => {
            info!(
                status = d.status,
                "ended the Alexa call after refusing the request"
            );
            if let Err(e) =
                store::mark_delivered(&deps.sessions, &session_id, &id, now_epoch_seconds()).await
            {
                warn!(error = %e, "could not mark the CallEnded delivered");
            }
        }
        Err(e) => error!(error = %e, "could not end the Alexa call"),
    }
    let Some(session) = session else {
        return;
    };
    let envelope = WebhookEnvelope::refusal(
        id.as_str(),
        now_epoch_seconds() * 1000,
        &session,
        &ended,
        Refused::new(kind, reason),
    );
    match deps.webhook.deliver(&envelope, deadline).await {
        Ok(_) => info!("told the property backend about the refused request"),
        Err(e) => {
            error!(error = %e, "could not tell the property backend about the refused request")
        }
    }
}

async fn on_signal<S: SessionStore, T: TokenStore>(
    deps: &CallSignalingDeps<S, T>,
    api_endpoint: Option<&str>,
    header: &RequestHeader,
    message: SignalingMessage,
    deadline: Deadline,
) -> Result<(), CallSignalingError> {
    let id = message_id(header, message.kind, &message.session_id);
    info!(
        kind = message.kind.name(),
        participants = ?message.participants.iter().map(|p| p.log_label()).collect::<Vec<_>>(),
        sdp_bytes = message.sdp_len(),
        result = message.call_result.as_ref().map(|r| r.code.as_str()),
        "CallSignaling request"
    );
    let now = now_epoch_seconds();
    let incoming = Incoming {
        message: &message,
        from: Side::Alexa,
        message_id: &id,
        api_endpoint,
        now,
        ttl: deps.ttl,
    };
    let recorded = store::record(&deps.sessions, &incoming)
        .await
        .map_err(|e| {
            error!(error = %e, "session store failed; nothing forwarded");
            CallSignalingError::Store(e)
        })?;
    match recorded {
        Recorded::Applied { previous, session } => {
            info!(
                from = previous.as_ref().map(|p| p.state.as_str()),
                to = session.state.as_str(),
                version = session.version,
                "session updated"
            );
            forward(deps, &message, &session, &id, false, deadline).await;
        }
        Recorded::Duplicate { session, delivered } => {
            let latest = session.applied.last().map(String::as_str) == Some(id.as_str());
            if !delivered && latest {
                info!(
                    state = session.state.as_str(),
                    "re-delivered request never forwarded: forwarding again"
                );
                forward(deps, &message, &session, &id, true, deadline).await;
            } else {
                info!(
                    state = session.state.as_str(),
                    delivered, "re-delivered request: already handled"
                );
            }
        }
        Recorded::Ignored { state, reason } => {
            info!(
                state = state.as_str(),
                reason = reason.as_str(),
                "message not applied (repeat or out of date)"
            );
        }
        Recorded::Rejected(rejection) => {
            warn!(reason = %rejection, "impossible transition rejected; state unchanged, nothing forwarded");
        }
    }
    Ok(())
}

async fn forward<S: SessionStore, T: TokenStore>(
    deps: &CallSignalingDeps<S, T>,
    message: &SignalingMessage,
    session: &CallSession,
    id: &str,
    redelivery: bool,
    deadline: Deadline,
) {
    let envelope =
        WebhookEnvelope::new(id, now_epoch_seconds() * 1000, redelivery, session, message);
    match deps.webhook.deliver(&envelope, deadline).await {
        Ok(_) => {
            if let Err(e) =
                store::mark_delivered(&deps.sessions, &session.session_id, id, now_epoch_seconds())
                    .await
            {
                warn!(error = %e, "could not mark the message delivered (a re-delivery would forward it again)");
            }
        }
        Err(e) => {
            error!(error = %e, "forwarding to the property backend failed");
            if message.kind == MessageKind::InitiateOutboundCall
                && session.state == SessionState::Offered
            {
                end_call_after_failed_offer(deps, session, id, &e, deadline).await;
            }
        }
    }
}

/// The backend never took the offer: end the call toward Alexa so the caller is not left
/// listening to nothing.
async fn end_call_after_failed_offer<S: SessionStore, T: TokenStore>(
    deps: &CallSignalingDeps<S, T>,
    session: &CallSession,
    offer_id: &str,
    failure: &WebhookError,
    deadline: Deadline,
) {
    let result = match failure {
        WebhookError::Rejected { status: 401 | 403 } => CallResult::new(
            CallResultCode::Unauthorized,
            "The calling service refused the request",
        ),
        WebhookError::Rejected { status: 409 | 486 } => {
            CallResult::new(CallResultCode::DeviceBusy, "The called device is busy")
        }
        _ => CallResult::new(
            CallResultCode::InternalError,
            "The calling service is unavailable",
        ),
    };
    let ended = SignalingMessage::call_ended(session.session_id.clone(), result);
    let ended_id = format!("{offer_id}#ended");
    let incoming = Incoming {
        message: &ended,
        from: Side::Provider,
        message_id: &ended_id,
        api_endpoint: None,
        now: now_epoch_seconds(),
        ttl: deps.ttl,
    };
    match store::record(&deps.sessions, &incoming).await {
        Ok(Recorded::Applied { .. }) => {}
        Ok(other) => {
            info!(outcome = ?other, "the call was already ending; no CallEnded sent");
            return;
        }
        Err(e) => {
            // Still tell Alexa: a stale session is better than a hanging caller.
            error!(error = %e, "could not record the CallEnded; sending it anyway");
        }
    }
    let endpoint = deps
        .signaling_settings
        .endpoint_for(session.api_endpoint.as_deref());
    match deps.signaling.send(endpoint, &ended, deadline).await {
        Ok(d) => {
            info!(status = d.status, code = ?ended.call_result.as_ref().map(|r| r.code.as_str()), "ended the Alexa call after the backend failed");
            let _ = store::mark_delivered(
                &deps.sessions,
                &session.session_id,
                &ended_id,
                now_epoch_seconds(),
            )
            .await;
        }
        Err(e) => error!(error = %e, "could not end the Alexa call"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        takeback_common::config::map_env(pairs.iter().copied())
    }

    const ALL: &[(&str, &str)] = &[
        ("SKILL_ID", "amzn1.ask.skill.x"),
        ("SIGNALING_SESSIONS_TABLE", "sessions"),
        ("TOKENS_TABLE", "tokens"),
        ("WEBHOOK_URL", "https://backend.example.com/alexa"),
        ("WEBHOOK_SECRET", "whsec-value-0123456789abcdef01234567"),
        ("LWA_CLIENT_ID", "cid"),
        ("LWA_CLIENT_SECRET", "csecret-value"),
    ];

    #[test]
    fn every_required_variable_is_named_when_missing() {
        for (name, _) in ALL {
            let rest: Vec<_> = ALL.iter().copied().filter(|(n, _)| n != name).collect();
            let err = CallSignalingConfig::from_env(&env(&rest)).unwrap_err();
            assert!(
                matches!(err, ConfigError::Missing(n) if n == *name),
                "{name}"
            );
        }
    }

    #[test]
    fn defaults_and_redacted_debug() {
        let c = CallSignalingConfig::from_env(&env(ALL)).unwrap();
        assert_eq!(c.signaling.retry.max_attempts, 2);
        assert_eq!(c.webhook_retry.max_attempts, 3);
        assert_eq!(c.webhook_budget, Duration::from_secs(3));
        assert_eq!(
            c.signaling.default_api_endpoint,
            "https://api.amazonalexa.com"
        );
        let debug = format!("{c:?}");
        assert!(!debug.contains("whsec-value") && !debug.contains("csecret-value"));
        // A webhook budget the deadline cannot hold, plain http and a short secret are refused
        // at start-up.
        for (name, value) in [
            ("WEBHOOK_BUDGET_MS", "6000"),
            ("WEBHOOK_URL", "http://backend.example.com/alexa"),
            ("WEBHOOK_SECRET", "too-short"),
        ] {
            let mut bad = ALL.to_vec();
            bad.push((name, value));
            assert!(
                matches!(
                    CallSignalingConfig::from_env(&env(&bad)),
                    Err(ConfigError::Invalid { name: n, .. }) if n == name
                ),
                "{name}={value}"
            );
        }
        let mut bad = ALL.to_vec();
        bad.push(("WEBHOOK_URL", "not a url"));
        // later pairs win in the test map
        assert!(matches!(
            CallSignalingConfig::from_env(&env(&bad)),
            Err(ConfigError::Invalid {
                name: "WEBHOOK_URL",
                ..
            })
        ));
    }
}
