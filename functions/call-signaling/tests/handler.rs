//! The skill handler against in-memory stores and loopback fakes of LWA, Alexa's signaling
//! endpoint and the property backend's webhook (which verifies every signature). Driven by the
//! `events/alexa-*.json` fixtures.

use call_signaling::{CallSignalingDeps, CallSignalingError, handle, handle_by};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use takeback_alexa::Secret;
use takeback_alexa::budget::Deadline;
use takeback_alexa::config::{LwaSettings, SessionTtl, SignalingSettings};
use takeback_alexa::model::{AlexaRequestEnvelope, MessageKind, SignalingMessage};
use takeback_alexa::retry::RetryPolicy;
use takeback_alexa::session::{Incoming, SessionState, Side};
use takeback_alexa::store::{self, MemorySessionStore, Recorded, SessionStore};
use takeback_alexa::store::{MemoryTokenStore, StoredTokens, TokenStore};
use takeback_http::client::HttpClient;
use takeback_http::lwa::{AccessTokenProvider, LwaClient};
use takeback_http::signaling::SignalingClient;
use takeback_http::testing::{
    FakeLwa, FakeSignaling, RunningLwa, RunningSignaling, RunningWebhook, WebhookReceiver,
    capture_logs, closed_port_url,
};
use takeback_http::webhook::WebhookClient;

const SKILL_ID: &str = "amzn1.ask.skill.00000000-0000-4000-8000-000000000001";
const CLIENT_ID: &str = "amzn1.application-oa2-client.fixture";
const CLIENT_SECRET: &str = "lwa-client-secret-value-0123456789";
const WEBHOOK_SECRET: &str = "webhook-hmac-secret-value-abcdef";
const S_OUT: &str = "fixture-session-alexa-to-staff-0001";
const S_IN: &str = "fixture-session-staff-to-room-0001";

struct Harness {
    lwa: RunningLwa,
    alexa: RunningSignaling,
    webhook: RunningWebhook,
    token_store: Arc<MemoryTokenStore>,
    deps: CallSignalingDeps<MemorySessionStore, MemoryTokenStore>,
}

async fn harness_with_webhook_url(webhook_url: Option<String>) -> Harness {
    let lwa = FakeLwa::start(CLIENT_ID, CLIENT_SECRET).await;
    let alexa = FakeSignaling::start(&lwa.fake).await;
    let webhook = WebhookReceiver::start(WEBHOOK_SECRET).await;
    let http = HttpClient::new().expect("test set-up");
    let token_store = Arc::new(MemoryTokenStore::new());
    let lwa_settings = LwaSettings {
        token_url: lwa.token_url(),
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(CLIENT_SECRET),
        token_id: "alexa-calling".into(),
        refresh_margin: Duration::from_secs(300),
        timeout: Duration::from_secs(2),
    };
    let tokens = Arc::new(AccessTokenProvider::new(
        token_store.clone(),
        LwaClient::new(http.clone(), lwa_settings),
    ));
    let deps = CallSignalingDeps {
        skill_id: SKILL_ID.into(),
        sessions: MemorySessionStore::new(),
        signaling: SignalingClient::new(http.clone(), tokens.clone(), RetryPolicy::fast(3)),
        tokens,
        signaling_settings: SignalingSettings {
            default_api_endpoint: alexa.api_endpoint(),
            retry: RetryPolicy::fast(3),
        },
        webhook: WebhookClient::new(
            http,
            webhook_url.unwrap_or_else(|| webhook.url()),
            Secret::new(WEBHOOK_SECRET),
            RetryPolicy::fast(3),
            Duration::from_secs(5),
        )
        .expect("test set-up"),
        ttl: SessionTtl::default(),
    };
    Harness {
        lwa,
        alexa,
        webhook,
        token_store,
        deps,
    }
}

async fn harness() -> Harness {
    harness_with_webhook_url(None).await
}

impl Harness {
    /// An Alexa fixture with its `apiEndpoint` pointed at the fake signaling endpoint.
    fn event(&self, name: &str) -> Value {
        let mut v = fixture(name);
        if v.pointer("/context/System").is_some() {
            v["context"]["System"]["apiEndpoint"] = json!(self.alexa.api_endpoint());
        }
        v
    }

    async fn send(&self, name: &str) -> Result<Value, CallSignalingError> {
        call(&self.deps, self.event(name)).await
    }

    /// A fixture re-targeted at another session.
    async fn send_for(&self, name: &str, session_id: &str) -> Result<Value, CallSignalingError> {
        let mut v = self.event(name);
        v["request"]["sessionId"] = json!(session_id);
        call(&self.deps, v).await
    }

    /// A fixture as another request (its own `requestId`).
    async fn send_as(&self, name: &str, request_id: &str) -> Result<Value, CallSignalingError> {
        let mut v = self.event(name);
        v["request"]["requestId"] = json!(request_id);
        call(&self.deps, v).await
    }

    /// Tokens as if account linking had happened.
    async fn seed_tokens(&self) {
        self.lwa.fake.add_access_token("Atza|seeded-access");
        self.lwa.fake.add_refresh_token("Atzr|seeded-refresh");
        self.token_store
            .put(
                "alexa-calling",
                &StoredTokens {
                    access_token: Secret::new("Atza|seeded-access"),
                    refresh_token: Some(Secret::new("Atzr|seeded-refresh")),
                    expires_at: takeback_alexa::now_epoch_seconds() + 3600,
                    version: 1,
                    updated_at: 0,
                    grant_digest: None,
                    lease: None,
                },
                None,
            )
            .await
            .expect("test set-up");
    }

    /// What the property backend would do through `signaling-api`, applied to the store.
    async fn provider(&self, kind: MessageKind, session_id: &str, id: &str) -> Recorded {
        let mut m = SignalingMessage::bare(kind, session_id);
        if let Some(t) = kind.required_sdp() {
            m.sdp = Some(takeback_alexa::model::SdpDetails {
                sdp_type: t,
                value: "v=0".into(),
            });
        }
        if kind == MessageKind::InitiateInboundCall {
            m.participants = vec![];
        }
        let inc = Incoming {
            message: &m,
            from: Side::Provider,
            message_id: id,
            api_endpoint: Some("https://api.amazonalexa.com"),
            now: takeback_alexa::now_epoch_seconds(),
            ttl: SessionTtl::default(),
        };
        store::record(&self.deps.sessions, &inc)
            .await
            .expect("test set-up")
    }

    async fn state(&self, session_id: &str) -> Option<SessionState> {
        self.deps
            .sessions
            .get(session_id, takeback_alexa::now_epoch_seconds())
            .await
            .expect("test set-up")
            .map(|s| s.state)
    }
}

/// The handler as the Lambda runtime drives it: the JSON event read into the typed event (which
/// never fails), the typed answer written back as JSON.
async fn call<S: SessionStore, T: TokenStore>(
    deps: &CallSignalingDeps<S, T>,
    event: Value,
) -> Result<Value, CallSignalingError> {
    let event: AlexaRequestEnvelope = serde_json::from_value(event).expect("test set-up");
    let answer = handle(deps, event).await?;
    Ok(serde_json::to_value(answer).expect("test set-up"))
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("test set-up"))
        .expect("test set-up")
}

fn deferred() -> Value {
    json!({"version": "1.0", "response": {}})
}

#[tokio::test]
async fn every_alexa_fixture_is_understood() {
    // Each fixture parses into the request kind its name says; none is malformed except the
    // one named so.
    let dir = format!("{}/../../events", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.starts_with("alexa-") || name.contains("acceptgrant-directive") {
            continue;
        }
        seen += 1;
        let v = fixture(name.trim_end_matches(".json"));
        let AlexaRequestEnvelope::Skill(env) = serde_json::from_value(v).unwrap() else {
            panic!("{name} is not a custom-skill request");
        };
        let req = env.request.unwrap();
        let request_name = name.split('-').nth(1).unwrap();
        use takeback_alexa::model::SkillRequest as R;
        match req {
            R::CallSignaling { kind, signal } => {
                assert_eq!(kind.name().to_lowercase(), request_name, "{name}");
                let valid = signal.validate(kind, false);
                assert_eq!(
                    valid.is_err(),
                    name.contains("missing"),
                    "{name}: {valid:?}"
                );
            }
            R::UnknownCallSignaling { name: n } => assert_eq!(n, "CallTransfer"),
            R::AuthorizationGrant(g) => assert!(g.grant.unwrap().code.is_some()),
            R::Launch => assert_eq!(request_name, "launchrequest"),
            other => panic!("{name}: {other:?}"),
        }
    }
    // 11 request types + unknown + grant + launch + the malformed/wrong-skill/unauthorised cases
    assert!(seen >= 17, "only {seen} fixtures");
    for kind in MessageKind::ALL {
        if kind == MessageKind::InitiateInboundCall {
            continue; // only the property sends it
        }
        let lower = kind.name().to_lowercase();
        let found = std::fs::read_dir(format!("{}/../../events", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .any(|e| {
                e.unwrap()
                    .file_name()
                    .into_string()
                    .unwrap()
                    .starts_with(&format!("alexa-{lower}-"))
            });
        assert!(found, "no fixture for {}", kind.name());
    }
}

#[tokio::test]
async fn outbound_call_is_recorded_forwarded_signed_and_answered_deferred() {
    let h = harness().await;
    let answer = h.send("alexa-initiateoutboundcall-basic").await.unwrap();
    assert_eq!(answer, deferred());
    assert_eq!(h.state(S_OUT).await, Some(SessionState::Offered));
    let envs = h.webhook.envelopes();
    assert_eq!(envs.len(), 1);
    assert_eq!(h.webhook.bad_signatures(), 0);
    let e = &envs[0];
    assert_eq!(e["messageId"], "amzn1.echo-api.request.fixture-ioc-1");
    assert_eq!(e["redelivery"], false);
    assert_eq!(e["session"]["state"], "OFFERED");
    assert_eq!(e["session"]["direction"], "ALEXA_TO_PROVIDER");
    assert_eq!(
        e["message"]["type"],
        "Alexa.Comms.CallSignaling.InitiateOutboundCall"
    );
    assert_eq!(e["message"]["sessionId"], S_OUT);
    assert_eq!(e["message"]["sdpDetails"]["type"], "OFFER");
    assert!(
        e["message"]["sdpDetails"]["value"]
            .as_str()
            .unwrap()
            .starts_with("v=0")
    );
    assert_eq!(e["message"]["participants"].as_array().unwrap().len(), 2);
    // the skill's context never reaches the backend
    assert!(!e.to_string().contains("apiAccessToken"));
    let stored = h.deps.sessions.raw(S_OUT).unwrap();
    assert_eq!(
        stored.api_endpoint.as_deref(),
        Some(h.alexa.api_endpoint().as_str())
    );
    assert!(stored.was_delivered("amzn1.echo-api.request.fixture-ioc-1"));
}

#[tokio::test]
async fn redelivered_request_is_answered_but_not_applied_or_forwarded_twice() {
    let h = harness().await;
    h.send("alexa-initiateoutboundcall-basic").await.unwrap();
    let v1 = h.deps.sessions.raw(S_OUT).unwrap().version;
    assert_eq!(
        h.send("alexa-initiateoutboundcall-basic").await.unwrap(),
        deferred()
    );
    assert_eq!(h.webhook.envelopes().len(), 1);
    assert_eq!(h.deps.sessions.raw(S_OUT).unwrap().version, v1);
}

#[tokio::test]
async fn redelivery_after_a_failed_forward_is_forwarded_again_and_marked() {
    let h = harness().await;
    // The first delivery fails for good (retries exhausted); the skill then ends the call.
    // Use an ack instead, whose failure has no side effect: ringing first.
    h.send("alexa-initiateoutboundcall-basic").await.unwrap();
    h.provider(MessageKind::CallRinging, S_OUT, "backend:r1")
        .await;
    h.webhook.receiver.fail_next(503, 3);
    h.send("alexa-callringingack-basic").await.unwrap();
    assert_eq!(h.webhook.envelopes().len(), 1, "the ack was not delivered");
    h.send("alexa-callringingack-basic").await.unwrap();
    let envs = h.webhook.envelopes();
    assert_eq!(envs.len(), 2);
    assert_eq!(
        envs[1]["message"]["type"],
        "Alexa.Comms.CallSignaling.CallRingingAck"
    );
    assert_eq!(envs[1]["redelivery"], true);
    // delivered now: a third copy is not forwarded
    h.send("alexa-callringingack-basic").await.unwrap();
    assert_eq!(h.webhook.envelopes().len(), 2);
}

#[tokio::test]
async fn transient_webhook_failures_are_retried() {
    let h = harness().await;
    h.webhook.receiver.fail_next(503, 1);
    h.webhook.receiver.fail_next(429, 1);
    h.send("alexa-initiateoutboundcall-basic").await.unwrap();
    assert_eq!(h.webhook.envelopes().len(), 1);
    assert_eq!(h.webhook.server.request_count(), 3);
    assert!(
        h.alexa.accepted().is_empty(),
        "no CallEnded when the backend got the offer"
    );
    assert_eq!(h.state(S_OUT).await, Some(SessionState::Offered));
}

#[tokio::test]
async fn unreachable_backend_ends_the_alexa_call_with_internal_error() {
    let h = harness_with_webhook_url(Some(closed_port_url().await)).await;
    h.seed_tokens().await;
    assert_eq!(
        h.send("alexa-initiateoutboundcall-basic").await.unwrap(),
        deferred()
    );
    let sent = h.alexa.accepted();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["type"], "Alexa.Comms.CallSignaling.CallEnded");
    assert_eq!(sent[0]["sessionId"], S_OUT);
    assert_eq!(sent[0]["callResult"]["code"], "INTERNAL_ERROR");
    let s = h.deps.sessions.raw(S_OUT).unwrap();
    assert_eq!(s.state, SessionState::Ended);
    assert_eq!(s.end_code.as_deref(), Some("INTERNAL_ERROR"));
    // Alexa re-delivers the offer: the call stays ended and nothing is forwarded or sent again.
    h.send("alexa-initiateoutboundcall-basic").await.unwrap();
    assert_eq!(h.alexa.accepted().len(), 1);
    assert_eq!(h.state(S_OUT).await, Some(SessionState::Ended));
}

#[tokio::test]
async fn backend_refusing_the_signature_ends_the_call_unauthorized() {
    let h = harness().await;
    h.seed_tokens().await;
    h.webhook.receiver.fail_next(403, 1);
    h.send("alexa-initiateoutboundcall-basic").await.unwrap();
    assert_eq!(h.webhook.server.request_count(), 1, "4xx is final");
    let sent = h.alexa.accepted();
    assert_eq!(sent[0]["callResult"]["code"], "UNAUTHORIZED");
}

#[tokio::test]
async fn provider_originated_call_messages_from_alexa_follow_the_state_machine() {
    let h = harness().await;
    h.provider(MessageKind::InitiateInboundCall, S_IN, "backend:iic")
        .await;
    for (fixture, state) in [
        ("alexa-callringing-basic", SessionState::Ringing),
        ("alexa-callinprogress-basic", SessionState::InProgress),
        ("alexa-callaccepted-basic", SessionState::Accepted),
        ("alexa-callupdate-hold", SessionState::Updating),
    ] {
        assert_eq!(h.send(fixture).await.unwrap(), deferred());
        assert_eq!(h.state(S_IN).await, Some(state), "{fixture}");
    }
    // Alexa's hold is answered by the property; Alexa, the side that re-offered, acknowledges
    // (Amazon's sample: skill/lambda/index.js callUpdateAckInboundHandler).
    h.provider(MessageKind::CallUpdateResponse, S_IN, "backend:uresp")
        .await;
    h.send("alexa-callupdateack-basic").await.unwrap();
    // ...and the same for the resume.
    h.send("alexa-callupdate-resume").await.unwrap();
    assert_eq!(h.state(S_IN).await, Some(SessionState::Updating));
    h.provider(MessageKind::CallUpdateResponse, S_IN, "backend:uresp-2")
        .await;
    h.send_as(
        "alexa-callupdateack-basic",
        "amzn1.echo-api.request.fixture-uack-2",
    )
    .await
    .unwrap();
    assert_eq!(h.state(S_IN).await, Some(SessionState::Accepted));
    h.send("alexa-callended-unauthorised").await.unwrap();
    let s = h.deps.sessions.raw(S_IN).unwrap();
    assert_eq!(s.state, SessionState::Ended);
    assert_eq!(s.end_code.as_deref(), Some("UNAUTHORIZED"));
    assert_eq!(s.ended_by, Some(Side::Alexa));
    assert_eq!(
        h.webhook.message_names(),
        [
            "CallRinging",
            "CallInProgress",
            "CallAccepted",
            "CallUpdate",
            "CallUpdateAck",
            "CallUpdate",
            "CallUpdateAck",
            "CallEnded"
        ]
    );
    let hold = &h.webhook.envelopes()[3];
    assert_eq!(hold["message"]["renegotiationType"], "CALL_HOLD");
    let resume = &h.webhook.envelopes()[5];
    assert_eq!(resume["message"]["renegotiationType"], "CALL_RESUME");
    assert_eq!(h.webhook.bad_signatures(), 0);
}

#[tokio::test]
async fn alexa_to_staff_acks_and_update_response_are_forwarded() {
    let h = harness().await;
    h.send("alexa-initiateoutboundcall-basic").await.unwrap();
    h.provider(MessageKind::CallRinging, S_OUT, "backend:1")
        .await;
    h.send("alexa-callringingack-basic").await.unwrap();
    h.provider(MessageKind::CallInProgress, S_OUT, "backend:2")
        .await;
    h.send("alexa-callinprogressack-basic").await.unwrap();
    h.provider(MessageKind::CallAccepted, S_OUT, "backend:3")
        .await;
    h.send("alexa-callacceptedack-basic").await.unwrap();
    // The property re-offers (hold); Alexa answers; the property, which re-offered,
    // acknowledges (Amazon's sample: server/src/routes.js /reanswer). An ack from Alexa for the
    // property's own re-offer is refused and not forwarded.
    h.provider(MessageKind::CallUpdate, S_OUT, "backend:4")
        .await;
    h.send_for("alexa-callupdateack-basic", S_OUT)
        .await
        .unwrap();
    assert_eq!(h.state(S_OUT).await, Some(SessionState::Updating));
    h.send("alexa-callupdateresponse-basic").await.unwrap();
    assert_eq!(h.state(S_OUT).await, Some(SessionState::Accepted));
    assert!(matches!(
        h.provider(MessageKind::CallUpdateAck, S_OUT, "backend:5")
            .await,
        Recorded::Applied { .. }
    ));
    h.send("alexa-callended-basic").await.unwrap();
    assert_eq!(
        h.webhook.message_names(),
        [
            "InitiateOutboundCall",
            "CallRingingAck",
            "CallInProgressAck",
            "CallAcceptedAck",
            "CallUpdateResponse",
            "CallEnded"
        ]
    );
}

#[tokio::test]
async fn impossible_transition_is_answered_logged_and_changes_nothing() {
    let h = harness().await;
    h.send("alexa-initiateoutboundcall-basic").await.unwrap();
    let before = h.deps.sessions.raw(S_OUT).unwrap();
    // Alexa acknowledging an answer the provider never sent.
    assert_eq!(
        h.send("alexa-callacceptedack-basic").await.unwrap(),
        deferred()
    );
    // A message for a call nobody started.
    assert_eq!(h.send("alexa-callringing-basic").await.unwrap(), deferred());
    assert_eq!(h.deps.sessions.raw(S_OUT).unwrap(), before);
    assert!(h.deps.sessions.raw(S_IN).is_none());
    assert_eq!(h.webhook.message_names(), ["InitiateOutboundCall"]);
}

#[tokio::test]
async fn malformed_offer_is_answered_and_the_call_ended_not_a_lambda_error() {
    let h = harness().await;
    h.seed_tokens().await;
    let (_guard, logs) = capture_logs("info");
    let answer = h
        .send("alexa-initiateoutboundcall-missing-sdp")
        .await
        .unwrap();
    assert_eq!(answer, deferred());
    // Alexa: the call is ended with a result that says it failed.
    let sent = h.alexa.accepted();
    assert_eq!(h.alexa.accepted_names(), ["CallEnded"]);
    const S_BAD: &str = "fixture-session-malformed-0001";
    assert_eq!(sent[0]["sessionId"], S_BAD);
    assert_eq!(sent[0]["callResult"]["code"], "INTERNAL_ERROR");
    // The session is recorded as ended, so a re-delivery changes nothing.
    let s = h.deps.sessions.raw(S_BAD).unwrap();
    assert_eq!(s.state, SessionState::Ended);
    assert_eq!(s.end_code.as_deref(), Some("INTERNAL_ERROR"));
    // The backend: the same CallEnded, with what was refused and why.
    let envs = h.webhook.envelopes();
    assert_eq!(envs.len(), 1);
    assert_eq!(
        envs[0]["message"]["type"],
        "Alexa.Comms.CallSignaling.CallEnded"
    );
    assert_eq!(
        envs[0]["refused"]["type"],
        "Alexa.Comms.CallSignaling.InitiateOutboundCall"
    );
    let reason = envs[0]["refused"]["reason"].as_str().unwrap();
    assert!(reason.contains("OFFER"), "{reason}");
    // The logs say why.
    let text = logs.text();
    assert!(text.contains("refusing a CallSignaling request"), "{text}");
    assert!(text.contains("OFFER"), "{text}");
    // Alexa re-delivers the same request: answered, nothing sent again.
    assert_eq!(
        h.send("alexa-initiateoutboundcall-missing-sdp")
            .await
            .unwrap(),
        deferred()
    );
    assert_eq!(h.alexa.accepted().len(), 1);
    assert_eq!(h.webhook.envelopes().len(), 1);
}

#[tokio::test]
async fn oversized_offer_is_refused_by_the_documented_limit() {
    let h = harness().await;
    h.seed_tokens().await;
    let mut event = h.event("alexa-initiateoutboundcall-basic");
    let sdp = format!(
        "v=0\r\n{}",
        "a".repeat(takeback_alexa::limits::MAX_SDP_BYTES)
    );
    event["request"]["sdpDetails"]["value"] = json!(sdp);
    assert_eq!(call(&h.deps, event).await.unwrap(), deferred());
    let sent = h.alexa.accepted();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["callResult"]["code"], "INTERNAL_ERROR");
    let envs = h.webhook.envelopes();
    assert_eq!(envs.len(), 1);
    let reason = envs[0]["refused"]["reason"].as_str().unwrap();
    assert!(reason.contains("larger than 65536 bytes"), "{reason}");
    assert_eq!(h.state(S_OUT).await, Some(SessionState::Ended));
}

#[tokio::test]
async fn events_that_are_no_alexa_request_are_errors_and_unreadable_signals_are_answered() {
    let h = harness().await;
    for bad in [
        json!("not an object"),
        json!({"version": "1.0", "context": {"System": {"application": {"applicationId": SKILL_ID}}}}),
    ] {
        let r = call(&h.deps, bad.clone()).await;
        assert!(
            matches!(r, Err(CallSignalingError::Malformed(_))),
            "{bad}: {r:?}"
        );
    }
    // CallSignaling requests whose fields cannot be read: answered, nothing recorded (no
    // usable session id, and not an offer or answer).
    for bad in [
        json!({"version": "1.0", "context": {"System": {"application": {"applicationId": SKILL_ID}}},
               "request": {"type": "Alexa.Comms.CallSignaling.CallRinging", "requestId": "r"}}),
        json!({"version": "1.0", "context": {"System": {"application": {"applicationId": SKILL_ID}}},
               "request": {"type": "Alexa.Comms.CallSignaling.CallRinging", "sessionId": 42}}),
        json!({"version": "1.0", "context": {"System": {"application": {"applicationId": SKILL_ID}}},
               "request": {"type": "Alexa.Comms.CallSignaling.CallAccepted", "requestId": "r2",
                           "sdpDetails": "not an object"}}),
    ] {
        assert_eq!(
            call(&h.deps, bad.clone()).await.unwrap(),
            deferred(),
            "{bad}"
        );
    }
    assert!(h.deps.sessions.is_empty());
    assert_eq!(h.webhook.server.request_count(), 0);
}

#[tokio::test]
async fn wrong_skill_id_is_refused() {
    let h = harness().await;
    h.provider(MessageKind::InitiateInboundCall, S_IN, "backend:iic")
        .await;
    let err = h.send("alexa-callringing-wrong-skill").await.unwrap_err();
    assert!(matches!(err, CallSignalingError::WrongSkill { .. }));
    assert_eq!(h.state(S_IN).await, Some(SessionState::Offered));
    assert_eq!(h.webhook.server.request_count(), 0);
}

#[tokio::test]
async fn unknown_request_type_is_answered_and_not_recorded() {
    let h = harness().await;
    h.provider(MessageKind::InitiateInboundCall, S_IN, "backend:iic")
        .await;
    assert_eq!(
        h.send("alexa-unknown-calltransfer").await.unwrap(),
        deferred()
    );
    assert_eq!(h.deps.sessions.raw(S_IN).unwrap().version, 1);
    assert_eq!(h.webhook.server.request_count(), 0);
    let other = json!({"version": "1.0",
        "context": {"System": {"application": {"applicationId": SKILL_ID}}},
        "request": {"type": "Connections.Response", "requestId": "r"}});
    assert_eq!(
        call(&h.deps, other).await.unwrap(),
        json!({"version": "1.0", "response": {}})
    );
}

#[tokio::test]
async fn launch_request_gets_speech() {
    let h = harness().await;
    let r = h.send("alexa-launchrequest-basic").await.unwrap();
    assert_eq!(r["response"]["outputSpeech"]["type"], "PlainText");
    assert_eq!(r["response"]["shouldEndSession"], true);
}

#[tokio::test]
async fn custom_skill_grant_links_the_account() {
    let h = harness().await;
    h.lwa.fake.add_code("fixture-authorization-code-1");
    let r = h.send("alexa-authorizationgrant-basic").await.unwrap();
    assert_eq!(r["version"], "1.0");
    assert_eq!(
        r["response"]["event"]["header"]["name"],
        "AcceptGrant.Response"
    );
    assert_eq!(
        r["response"]["event"]["header"]["namespace"],
        "Alexa.Authorization"
    );
    let stored = h.token_store.get("alexa-calling").await.unwrap().unwrap();
    assert!(
        stored
            .access_token
            .expose()
            .starts_with("Atza|fake-access-")
    );
    assert!(stored.refresh_token.is_some());
    assert_eq!(h.lwa.grant_requests("authorization_code"), 1);
    // The stored token is what the signaling client now uses, without a refresh.
    let token = h.deps.tokens.access_token().await.unwrap();
    assert_eq!(token, stored.access_token);
    assert_eq!(h.lwa.grant_requests("refresh_token"), 0);
}

#[tokio::test]
async fn smart_home_accept_grant_directive_links_the_account() {
    let h = harness().await;
    h.lwa.fake.add_code("fixture-authorization-code-2");
    let r = h.send("alexa-acceptgrant-directive").await.unwrap();
    assert!(
        r.get("version").is_none(),
        "directive answers are not wrapped"
    );
    assert_eq!(r["event"]["header"]["name"], "AcceptGrant.Response");
    assert_eq!(r["event"]["header"]["payloadVersion"], "3");
    assert_eq!(r["event"]["payload"], json!({}));
    assert!(h.token_store.get("alexa-calling").await.unwrap().is_some());
}

#[tokio::test]
async fn invalid_code_answers_accept_grant_failed_and_stores_nothing() {
    let h = harness().await;
    // no code registered with the fake LWA: invalid_grant
    let r = h.send("alexa-acceptgrant-directive").await.unwrap();
    assert_eq!(r["event"]["header"]["name"], "ErrorResponse");
    assert_eq!(r["event"]["payload"]["type"], "ACCEPT_GRANT_FAILED");
    assert!(
        r["event"]["payload"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid_grant")
    );
    assert!(h.token_store.get("alexa-calling").await.unwrap().is_none());
}

#[tokio::test]
async fn a_redelivered_grant_that_succeeded_answers_success() {
    let h = harness().await;
    h.lwa.fake.add_code("fixture-authorization-code-1");
    let first = h.send("alexa-authorizationgrant-basic").await.unwrap();
    assert_eq!(
        first["response"]["event"]["header"]["name"],
        "AcceptGrant.Response"
    );
    let stored = h.token_store.get("alexa-calling").await.unwrap().unwrap();
    // Alexa re-delivers the grant (the code is single-use at LWA): still a success, and the
    // tokens are not touched.
    let again = h.send("alexa-authorizationgrant-basic").await.unwrap();
    assert_eq!(
        again["response"]["event"]["header"]["name"],
        "AcceptGrant.Response"
    );
    assert_eq!(h.lwa.grant_requests("authorization_code"), 1);
    assert_eq!(
        h.token_store.get("alexa-calling").await.unwrap().unwrap(),
        stored
    );
    // The smart-home form of the same kind of re-delivery.
    h.lwa.fake.add_code("fixture-authorization-code-2");
    h.send("alexa-acceptgrant-directive").await.unwrap();
    let again = h.send("alexa-acceptgrant-directive").await.unwrap();
    assert_eq!(again["event"]["header"]["name"], "AcceptGrant.Response");
    assert_eq!(h.lwa.grant_requests("authorization_code"), 2);
}

#[tokio::test]
async fn a_hanging_backend_does_not_keep_alexa_waiting_past_the_deadline() {
    let mut h = harness().await;
    h.webhook.receiver.delay_all(Duration::from_secs(60));
    // Webhook limits far beyond the deadline: only the deadline can stop it.
    h.deps.webhook = WebhookClient::new(
        HttpClient::new().unwrap(),
        h.webhook.url(),
        Secret::new(WEBHOOK_SECRET),
        RetryPolicy {
            max_attempts: 10,
            attempt_timeout: Duration::from_secs(60),
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
        },
        Duration::from_secs(60),
    )
    .unwrap();
    let event: AlexaRequestEnvelope =
        serde_json::from_value(h.event("alexa-initiateoutboundcall-basic")).unwrap();
    let deadline = Deadline::after(Duration::from_millis(500));
    // The guard is 60 times the deadline: it only catches a handler that ignores it.
    let answer = tokio::time::timeout(Duration::from_secs(30), handle_by(&h.deps, event, deadline))
        .await
        .expect("the skill answered by its deadline")
        .unwrap();
    assert_eq!(serde_json::to_value(answer).unwrap(), deferred());
}

#[tokio::test]
async fn every_log_line_has_at_most_one_message_field() {
    let (_guard, logs) = capture_logs("trace");
    let h = harness_with_webhook_url(Some(closed_port_url().await)).await;
    h.seed_tokens().await;
    // An offer the backend cannot take (webhook + CallEnded through the signaling client), a
    // refused offer, a grant.
    h.send("alexa-initiateoutboundcall-basic").await.unwrap();
    h.send_for("alexa-initiateoutboundcall-missing-sdp", "another-session")
        .await
        .unwrap();
    h.lwa.fake.add_code("fixture-authorization-code-1");
    h.send("alexa-authorizationgrant-basic").await.unwrap();
    let text = logs.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 5, "{text}");
    for line in lines {
        let fields = line.matches("\"message\":").count();
        assert!(fields <= 1, "{fields} message fields: {line}");
        serde_json::from_str::<Value>(line).expect("each line is one JSON object");
    }
}

#[tokio::test]
async fn secrets_and_tokens_never_reach_the_logs() {
    let (_guard, capture) = capture_logs("trace");

    let h = harness_with_webhook_url(Some(closed_port_url().await)).await;
    h.lwa.fake.add_code("fixture-authorization-code-1");
    h.send("alexa-authorizationgrant-basic").await.unwrap();
    // Alexa no longer accepts the linked token: the CallEnded below gets a 401 and refreshes.
    let stored = h.token_store.get("alexa-calling").await.unwrap().unwrap();
    h.lwa.fake.revoke_access_tokens();
    h.send("alexa-initiateoutboundcall-basic").await.unwrap();
    assert_eq!(h.alexa.accepted_names(), ["CallEnded"]);
    // a failed grant too
    h.send("alexa-acceptgrant-directive").await.unwrap();

    let logs = capture.text();
    assert!(
        logs.contains("account linked"),
        "logs were captured: {logs}"
    );
    assert!(logs.contains("refresh"), "the 401 refresh path ran");
    for secret in [
        CLIENT_SECRET,
        WEBHOOK_SECRET,
        "fixture-authorization-code-1",
        "fixture-authorization-code-2",
        "fixture-grantee-token-not-a-secret",
        "fixture-api-access-token-not-a-secret",
        "Atza|",
        "Atzr|",
        stored.access_token.expose(),
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
    // Debug of the dependencies (as a panic message might print them) is redacted too.
    let debug = format!("{:?} {:?}", h.deps.webhook, h.deps.tokens);
    assert!(!debug.contains(WEBHOOK_SECRET) && !debug.contains(CLIENT_SECRET));
    drop(h);
}

#[tokio::test]
async fn session_store_failure_is_an_error_not_a_silent_answer() {
    // A store whose every call fails.
    struct Broken;
    #[derive(Debug, thiserror::Error)]
    #[error("down")]
    struct Down;
    impl SessionStore for Broken {
        async fn get(
            &self,
            _: &str,
            _: i64,
        ) -> Result<Option<takeback_alexa::session::CallSession>, takeback_common::StoreError>
        {
            Err(takeback_common::StoreError::Unavailable(Box::new(Down)))
        }
        async fn put(
            &self,
            _: &takeback_alexa::session::CallSession,
            _: Option<u64>,
            _: i64,
        ) -> Result<store::PutOutcome, takeback_common::StoreError> {
            Err(takeback_common::StoreError::Unavailable(Box::new(Down)))
        }
    }
    let h = harness().await;
    let deps = CallSignalingDeps {
        skill_id: h.deps.skill_id.clone(),
        sessions: Broken,
        tokens: h.deps.tokens.clone(),
        signaling: SignalingClient::new(
            HttpClient::new().unwrap(),
            h.deps.tokens.clone(),
            RetryPolicy::fast(1),
        ),
        signaling_settings: h.deps.signaling_settings.clone(),
        webhook: h.deps.webhook.clone(),
        ttl: SessionTtl::default(),
    };
    let r = call(&deps, h.event("alexa-initiateoutboundcall-basic")).await;
    assert!(matches!(r, Err(CallSignalingError::Store(_))));
    assert_eq!(h.webhook.server.request_count(), 0);
}
