//! The backend-facing API against in-memory stores and loopback fakes of LWA and Alexa's
//! signaling endpoint (401 → refresh, 429/5xx → backoff, token expiry, invalid_grant).

use serde_json::{Value, json};
use signaling_api::{SignalingApiDeps, handle};
use std::sync::Arc;
use std::time::Duration;
use takeback_alexa::Secret;
use takeback_alexa::config::{LwaSettings, SessionTtl, SignalingSettings};
use takeback_alexa::model::{MessageKind, SignalingMessage};
use takeback_alexa::now_epoch_seconds;
use takeback_alexa::retry::RetryPolicy;
use takeback_alexa::session::{Incoming, SessionState, Side};
use takeback_alexa::store::{self, MemorySessionStore, SessionStore};
use takeback_alexa::store::{MemoryTokenStore, StoredTokens, TokenStore};
use takeback_http::client::HttpClient;
use takeback_http::lwa::{AccessTokenProvider, LwaClient};
use takeback_http::signaling::SignalingClient;
use takeback_http::testing::{FakeLwa, FakeSignaling, RunningLwa, RunningSignaling, capture_logs};

const CLIENT_ID: &str = "amzn1.application-oa2-client.fixture";
const CLIENT_SECRET: &str = "lwa-client-secret-value-0123456789";
const S_OUT: &str = "fixture-session-alexa-to-staff-0001";

struct Harness {
    lwa: RunningLwa,
    alexa: RunningSignaling,
    token_store: Arc<MemoryTokenStore>,
    deps: SignalingApiDeps<MemorySessionStore, MemoryTokenStore>,
}

async fn harness_with(max_attempts: u32, margin_secs: u64) -> Harness {
    let lwa = FakeLwa::start(CLIENT_ID, CLIENT_SECRET).await;
    let alexa = FakeSignaling::start(&lwa.fake).await;
    let http = HttpClient::new().expect("test set-up");
    let token_store = Arc::new(MemoryTokenStore::new());
    let tokens = Arc::new(AccessTokenProvider::new(
        token_store.clone(),
        LwaClient::new(
            http.clone(),
            LwaSettings {
                token_url: lwa.token_url(),
                client_id: CLIENT_ID.into(),
                client_secret: Secret::new(CLIENT_SECRET),
                token_id: "alexa-calling".into(),
                refresh_margin: Duration::from_secs(margin_secs),
                timeout: Duration::from_secs(2),
            },
        ),
    ));
    let retry = RetryPolicy::fast(max_attempts);
    let deps = SignalingApiDeps {
        sessions: MemorySessionStore::new(),
        signaling: SignalingClient::new(http, tokens, retry),
        settings: SignalingSettings {
            default_api_endpoint: alexa.api_endpoint(),
            retry,
        },
        ttl: SessionTtl::default(),
    };
    Harness {
        lwa,
        alexa,
        token_store,
        deps,
    }
}

async fn harness() -> Harness {
    let h = harness_with(3, 300).await;
    h.link("Atza|linked-access", 3600).await;
    h
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("test set-up"))
        .expect("test set-up")
}

impl Harness {
    /// Tokens as account linking leaves them; `access` is accepted by the fake Alexa.
    async fn link(&self, access: &str, expires_in: i64) {
        self.lwa.fake.add_access_token(access);
        self.lwa.fake.add_refresh_token("Atzr|linked-refresh");
        self.token_store
            .put(
                "alexa-calling",
                &StoredTokens {
                    access_token: Secret::new(access),
                    refresh_token: Some(Secret::new("Atzr|linked-refresh")),
                    expires_at: now_epoch_seconds() + expires_in,
                    version: 1,
                    updated_at: now_epoch_seconds(),
                    grant_digest: None,
                    lease: None,
                },
                None,
            )
            .await
            .expect("test set-up");
    }

    /// POSTs `body` through a function URL event; answers (status, JSON body).
    async fn post(&self, body: Value) -> (i64, Value) {
        let mut event = fixture("backend-callringing-basic");
        event["body"] = json!(body.to_string());
        self.invoke(event).await
    }

    async fn invoke(&self, event: Value) -> (i64, Value) {
        let r = handle(
            &self.deps,
            serde_json::from_value(event).expect("test set-up"),
        )
        .await
        .expect("test set-up");
        assert_eq!(
            r.headers.get("content-type").expect("test set-up"),
            "application/json"
        );
        (
            r.status_code,
            serde_json::from_str(r.body.as_deref().expect("test set-up")).expect("test set-up"),
        )
    }

    /// An Alexa-originated call as the skill records it.
    async fn alexa_offer(&self, session_id: &str) {
        let mut m = SignalingMessage::bare(MessageKind::InitiateOutboundCall, session_id);
        m.sdp = Some(takeback_alexa::model::SdpDetails {
            sdp_type: takeback_alexa::model::SdpType::Offer,
            value: "v=0".into(),
        });
        let endpoint = self.alexa.api_endpoint();
        let inc = Incoming {
            message: &m,
            from: Side::Alexa,
            message_id: "alexa:offer",
            api_endpoint: Some(&endpoint),
            now: now_epoch_seconds(),
            ttl: SessionTtl::default(),
        };
        store::record(&self.deps.sessions, &inc)
            .await
            .expect("test set-up");
    }

    async fn alexa_says(&self, kind: MessageKind, session_id: &str, id: &str) {
        let mut m = SignalingMessage::bare(kind, session_id);
        if let Some(t) = kind.required_sdp() {
            m.sdp = Some(takeback_alexa::model::SdpDetails {
                sdp_type: t,
                value: "v=0".into(),
            });
        }
        let inc = Incoming {
            message: &m,
            from: Side::Alexa,
            message_id: id,
            api_endpoint: None,
            now: now_epoch_seconds(),
            ttl: SessionTtl::default(),
        };
        store::record(&self.deps.sessions, &inc)
            .await
            .expect("test set-up");
    }

    async fn state(&self, session_id: &str) -> Option<SessionState> {
        self.deps
            .sessions
            .get(session_id, now_epoch_seconds())
            .await
            .expect("test set-up")
            .map(|s| s.state)
    }
}

#[tokio::test]
async fn initiate_inbound_call_generates_the_session_and_reaches_alexa() {
    let h = harness().await;
    let (status, body) = h.invoke(fixture("backend-initiateinboundcall-basic")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "sent");
    assert_eq!(body["state"], "OFFERED");
    let session_id = body["sessionId"].as_str().unwrap().to_owned();
    assert_eq!(session_id.len(), 36, "a generated UUID");
    let sent = h.alexa.accepted();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["type"],
        "Alexa.Comms.CallSignaling.InitiateInboundCall"
    );
    assert_eq!(sent[0]["sessionId"], session_id.as_str());
    assert_eq!(sent[0]["sdpDetails"]["type"], "OFFER");
    assert_eq!(sent[0]["participants"][0]["isOriginator"], true);
    assert!(
        sent[0].get("messageId").is_none(),
        "backend-only fields are not sent to Alexa"
    );
    let s = h.deps.sessions.raw(&session_id).unwrap();
    assert_eq!(s.state, SessionState::Offered);
    assert_eq!(
        s.api_endpoint.as_deref(),
        Some(h.alexa.api_endpoint().as_str())
    );
    assert!(s.was_delivered("backend:fixture-backend-iic-1"));
    let auth = h.alexa.server.requests()[0]
        .header("authorization")
        .unwrap();
    assert_eq!(auth, "Bearer Atza|linked-access");
}

#[tokio::test]
async fn messages_are_validated_against_the_session_state() {
    let h = harness().await;
    // unknown session
    let (status, body) = h.invoke(fixture("backend-callringing-basic")).await;
    assert_eq!(status, 404, "{body}");
    h.alexa_offer(S_OUT).await;
    // accepted before ringing is fine; ringing after accepted is ignored, not sent
    let (status, body) = h.invoke(fixture("backend-callaccepted-basic")).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("ACCEPTED")),
        "{body}"
    );
    let (status, body) = h.invoke(fixture("backend-callringing-basic")).await;
    assert_eq!(status, 200);
    assert_eq!(body["outcome"], "ignored");
    assert_eq!(body["reason"], "superseded");
    // the property is the callee: it cannot acknowledge its own answer
    let (status, body) = h
        .post(json!({"type": "CallAcceptedAck", "sessionId": S_OUT}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "invalid_state");
    assert_eq!(body["state"], "ACCEPTED");
    assert_eq!(h.alexa.accepted_names(), ["CallAccepted"]);
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_is_sent() {
    let h = harness().await;
    h.alexa_offer(S_OUT).await;
    let (status, body) = h.invoke(fixture("backend-callaccepted-missing-sdp")).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("ANSWER"),
        "{body}"
    );
    for (body, needle) in [
        (json!({"sessionId": S_OUT}), "type is missing"),
        (
            json!({"type": "CallTeleport", "sessionId": S_OUT}),
            "unknown message type",
        ),
        (
            json!({"type": "InitiateOutboundCall", "sessionId": S_OUT}),
            "sent by Alexa",
        ),
        (
            json!({"type": "InitiateInboundCall", "sessionId": "mine",
                "sdpDetails": {"type": "OFFER", "value": "v=0"},
                "participants": [{"id": {"type": "RAW_ADDRESS", "value": "a"}}]}),
            "generated",
        ),
        (
            json!({"type": "InitiateInboundCall", "sdpDetails": {"type": "OFFER", "value": "v=0"}}),
            "participant",
        ),
        (
            json!({"type": "InitiateInboundCall", "apiEndpoint": "https://attacker.example",
                "sdpDetails": {"type": "OFFER", "value": "v=0"},
                "participants": [{"id": {"type": "RAW_ADDRESS", "value": "a"}}]}),
            "apiEndpoint",
        ),
        (
            json!({"type": "CallUpdate", "sessionId": S_OUT, "sdpDetails": {"type": "ANSWER", "value": "v=0"}}),
            "OFFER",
        ),
        (json!([1, 2]), "JSON object"),
    ] {
        let (status, answer) = h.post(body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(needle),
            "{body}: {answer}"
        );
    }
    let mut event = fixture("backend-callringing-basic");
    event["body"] = json!("{not json");
    assert_eq!(h.invoke(event).await.0, 400);
    assert_eq!(h.invoke(fixture("backend-method-get")).await.0, 405);
    assert_eq!(h.alexa.server.request_count(), 0);
    assert_eq!(h.deps.sessions.raw(S_OUT).unwrap().version, 1);
    assert!(
        handle(
            &h.deps,
            serde_json::from_value(json!({"not": "a function url event"})).unwrap()
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn base64_bodies_are_decoded() {
    let h = harness().await;
    h.alexa_offer(S_OUT).await;
    let (status, body) = h.invoke(fixture("backend-callringing-base64")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(h.alexa.accepted_names(), ["CallRinging"]);
}

#[tokio::test]
async fn alexa_401_refreshes_the_token_once_and_retries() {
    let h = harness().await;
    h.alexa_offer(S_OUT).await;
    h.lwa.fake.revoke_access_tokens(); // the stored token is no longer valid at Alexa
    let (status, body) = h.invoke(fixture("backend-callringing-basic")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(h.lwa.grant_requests("refresh_token"), 1);
    let auths: Vec<String> = h
        .alexa
        .server
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap())
        .collect();
    assert_eq!(auths.len(), 2);
    assert_eq!(auths[0], "Bearer Atza|linked-access");
    assert!(auths[1].starts_with("Bearer Atza|fake-access-"));
    // the refreshed token is stored (old refresh token kept: LWA sent none) and reused
    let stored = h.token_store.get("alexa-calling").await.unwrap().unwrap();
    assert_eq!(format!("Bearer {}", stored.access_token.expose()), auths[1]);
    assert_eq!(
        stored.refresh_token.unwrap().expose(),
        "Atzr|linked-refresh"
    );
    assert_eq!(
        stored.version, 3,
        "the refresh lease, then the refreshed tokens"
    );
    h.alexa_says(MessageKind::CallRingingAck, S_OUT, "alexa:rack")
        .await;
    let (status, _) = h.invoke(fixture("backend-callaccepted-basic")).await;
    assert_eq!(status, 200);
    assert_eq!(
        h.lwa.grant_requests("refresh_token"),
        1,
        "cached, not refreshed again"
    );
}

#[tokio::test]
async fn persistent_401_is_reported_not_looped() {
    let h = harness().await;
    h.alexa_offer(S_OUT).await;
    h.lwa.fake.revoke_access_tokens();
    // LWA refreshes, but Alexa refuses even the fresh token.
    h.alexa.fake.fail_next(401, 5, None);
    let (status, body) = h.invoke(fixture("backend-callringing-basic")).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["alexaStatus"], 401);
    assert_eq!(h.alexa.server.request_count(), 2);
    assert_eq!(
        h.state(S_OUT).await,
        Some(SessionState::Offered),
        "rolled back"
    );
}

#[tokio::test]
async fn alexa_429_and_5xx_are_retried_with_backoff() {
    let h = harness().await;
    h.alexa_offer(S_OUT).await;
    h.alexa.fake.fail_next(429, 1, Some("0"));
    h.alexa.fake.fail_next(503, 1, None);
    let started = std::time::Instant::now();
    let (status, body) = h.invoke(fixture("backend-callringing-basic")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["attempts"], 3);
    assert_eq!(h.alexa.accepted_names(), ["CallRinging"]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "fast test backoff"
    );
}

#[tokio::test]
async fn exhausted_retries_roll_the_state_back_and_report_502() {
    let h = harness().await;
    h.alexa_offer(S_OUT).await;
    h.alexa.fake.fail_next(429, 3, Some("0"));
    let (status, body) = h.invoke(fixture("backend-callringing-basic")).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "alexa_unavailable");
    assert_eq!(body["alexaStatus"], 429);
    assert_eq!(h.alexa.server.request_count(), 3);
    let s = h.deps.sessions.raw(S_OUT).unwrap();
    assert_eq!(s.state, SessionState::Offered);
    assert!(!s.has_applied("backend:fixture-backend-ring-1"));
    // the backend retries with the same messageId and it goes through
    let (status, _) = h.invoke(fixture("backend-callringing-basic")).await;
    assert_eq!(status, 200);
    assert_eq!(h.state(S_OUT).await, Some(SessionState::Ringing));
}

#[tokio::test]
async fn alexa_4xx_is_returned_with_its_message() {
    let h = harness().await;
    h.alexa.fake.fail_next(400, 1, None);
    let (status, body) = h.invoke(fixture("backend-initiateinboundcall-basic")).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"], "alexa_rejected");
    assert_eq!(body["alexaStatus"], 400);
    assert_eq!(body["message"], "fake failure 400");
    assert_eq!(h.alexa.server.request_count(), 1, "4xx is not retried");
    // the session the failed InitiateInboundCall created is ended, not left dangling
    let sessions: Vec<_> = h
        .alexa
        .server
        .requests()
        .iter()
        .map(|r| r.json()["sessionId"].clone())
        .collect();
    let id = sessions[0].as_str().unwrap();
    let s = h.deps.sessions.raw(id).unwrap();
    assert_eq!(s.state, SessionState::Ended);
    assert_eq!(s.end_code.as_deref(), Some("NOT_DELIVERED"));
}

#[tokio::test]
async fn duplicate_message_id_is_not_sent_twice() {
    let h = harness().await;
    h.alexa_offer(S_OUT).await;
    assert_eq!(h.invoke(fixture("backend-callringing-basic")).await.0, 200);
    let (status, body) = h.invoke(fixture("backend-callringing-basic")).await;
    assert_eq!(status, 200);
    assert_eq!(body["outcome"], "duplicate");
    assert_eq!(h.alexa.accepted_names(), ["CallRinging"]);
}

#[tokio::test]
async fn token_close_to_expiry_is_refreshed_before_sending() {
    let h = harness_with(3, 300).await;
    h.link("Atza|about-to-expire", 120).await; // inside the 300 s margin
    h.alexa_offer(S_OUT).await;
    let (status, _) = h.invoke(fixture("backend-callringing-basic")).await;
    assert_eq!(status, 200);
    assert_eq!(h.lwa.grant_requests("refresh_token"), 1);
    let auth = h.alexa.server.requests()[0]
        .header("authorization")
        .unwrap();
    assert_ne!(
        auth, "Bearer Atza|about-to-expire",
        "refreshed before, not after a 401"
    );
    assert_eq!(h.alexa.server.request_count(), 1);
}

#[tokio::test]
async fn revoked_refresh_token_answers_503_account_not_linked() {
    let h = harness_with(3, 300).await;
    h.link("Atza|expired", -10).await;
    h.lwa.fake.revoke_refresh_tokens();
    h.alexa_offer(S_OUT).await;
    let (status, body) = h.invoke(fixture("backend-callringing-basic")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "account_not_linked");
    assert!(
        body["message"].as_str().unwrap().contains("invalid_grant"),
        "{body}"
    );
    assert_eq!(h.alexa.server.request_count(), 0);
    assert_eq!(h.state(S_OUT).await, Some(SessionState::Offered));
}

#[tokio::test]
async fn no_linked_account_answers_503() {
    let h = harness_with(3, 300).await;
    h.alexa_offer(S_OUT).await;
    let (status, body) = h.invoke(fixture("backend-callringing-basic")).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "account_not_linked");
}

#[tokio::test]
async fn concurrent_sends_share_one_refresh() {
    let h = harness_with(3, 300).await;
    h.link("Atza|expired", -10).await;
    h.lwa.fake.set_delay(Duration::from_millis(100));
    let sessions: Vec<String> = (0..8).map(|i| format!("concurrent-{i}")).collect();
    for s in &sessions {
        h.alexa_offer(s).await;
    }
    let answers = futures_join(&h, &sessions).await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    assert_eq!(
        h.lwa.grant_requests("refresh_token"),
        1,
        "refreshes were coalesced"
    );
    assert_eq!(h.alexa.accepted().len(), 8);
}

async fn futures_join(h: &Harness, sessions: &[String]) -> Vec<i64> {
    let posts = sessions
        .iter()
        .map(|s| h.post(json!({"type": "CallRinging", "sessionId": s})));
    futures::future::join_all(posts)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect()
}

#[tokio::test]
async fn initiate_inbound_call_retried_with_the_same_message_id_returns_the_same_session() {
    let h = harness().await;
    let (status, first) = h.invoke(fixture("backend-initiateinboundcall-basic")).await;
    assert_eq!(
        (status, first["outcome"].as_str()),
        (200, Some("sent")),
        "{first}"
    );
    // The backend timed out waiting and retries with the same messageId.
    let (status, retry) = h.invoke(fixture("backend-initiateinboundcall-basic")).await;
    assert_eq!(status, 200, "{retry}");
    assert_eq!(retry["outcome"], "duplicate");
    assert_eq!(retry["sessionId"], first["sessionId"], "the same session");
    assert_eq!(
        h.alexa.accepted_names(),
        ["InitiateInboundCall"],
        "one call"
    );
    assert_eq!(h.deps.sessions.len(), 1);
}

#[tokio::test]
async fn initiate_inbound_call_that_never_reached_alexa_is_sent_by_the_retry() {
    let h = harness().await;
    h.alexa.fake.fail_next(503, 3, None);
    let (status, first) = h.invoke(fixture("backend-initiateinboundcall-basic")).await;
    assert_eq!(status, 502, "{first}");
    let (status, retry) = h.invoke(fixture("backend-initiateinboundcall-basic")).await;
    assert_eq!(
        (status, retry["outcome"].as_str()),
        (200, Some("sent")),
        "{retry}"
    );
    let ids: Vec<Value> = h
        .alexa
        .server
        .requests()
        .iter()
        .map(|r| r.json()["sessionId"].clone())
        .collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.iter().all(|id| *id == retry["sessionId"]), "{ids:?}");
    assert_eq!(h.deps.sessions.len(), 1);
    assert_eq!(
        h.state(retry["sessionId"].as_str().unwrap()).await,
        Some(SessionState::Offered)
    );
}

#[tokio::test]
async fn hold_and_resume_re_offers_complete_with_the_updaters_ack() {
    let h = harness().await;
    h.alexa_offer(S_OUT).await;
    assert_eq!(h.invoke(fixture("backend-callaccepted-basic")).await.0, 200);
    h.alexa_says(MessageKind::CallAcceptedAck, S_OUT, "alexa:aack")
        .await;
    // The property holds: it re-offers, Alexa answers, the property acknowledges.
    let (status, body) = h.invoke(fixture("backend-callupdate-hold")).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("UPDATING")),
        "{body}"
    );
    // no ack before the answer
    let (status, body) = h.invoke(fixture("backend-callupdateack-basic")).await;
    assert_eq!(status, 409, "{body}");
    h.alexa_says(MessageKind::CallUpdateResponse, S_OUT, "alexa:uresp")
        .await;
    let (status, body) = h.invoke(fixture("backend-callupdateack-basic")).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("sent")),
        "{body}"
    );
    assert_eq!(body["state"], "ACCEPTED");
    // Alexa resumes: the property answers, and may not acknowledge Alexa's re-offer.
    h.alexa_says(MessageKind::CallUpdate, S_OUT, "alexa:resume")
        .await;
    let (status, _) = h
        .post(
            json!({"type": "CallUpdateResponse", "sessionId": S_OUT, "messageId": "resp-2",
                     "renegotiationType": "CALL_RESUME",
                     "sdpDetails": {"type": "ANSWER", "value": "v=0\r\n"}}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = h
        .post(json!({"type": "CallUpdateAck", "sessionId": S_OUT, "messageId": "ack-2"}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("ALEXA"),
        "{body}"
    );
    assert_eq!(
        h.alexa.accepted_names(),
        [
            "CallAccepted",
            "CallUpdate",
            "CallUpdateAck",
            "CallUpdateResponse"
        ]
    );
}

#[tokio::test]
async fn refused_requests_are_logged_with_their_reason() {
    let h = harness().await;
    let (_guard, logs) = capture_logs("info");
    let (status, _) = h
        .post(json!({"type": "CallTeleport", "sessionId": S_OUT}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(h.invoke(fixture("backend-method-get")).await.0, 405);
    let (status, _) = h.invoke(fixture("backend-callringing-basic")).await;
    assert_eq!(status, 404);
    let text = logs.text();
    for needle in [
        "request refused",
        "unknown message type",
        "use POST, not GET",
        "no live session",
    ] {
        assert!(text.contains(needle), "{needle} not logged: {text}");
    }
}

#[tokio::test]
async fn size_limits_are_the_ones_the_skill_applies() {
    use takeback_alexa::limits::{MAX_PARTICIPANT_ID_LEN, MAX_PARTICIPANTS, MAX_SDP_BYTES};
    let h = harness().await;
    // The largest message the limits allow, with every character escaped in JSON, fits in the
    // body limit and is taken.
    let sdp = format!("v=0\r\n{}", "\"".repeat(MAX_SDP_BYTES - 5));
    assert_eq!(sdp.len(), MAX_SDP_BYTES);
    let participants: Vec<Value> = (0..MAX_PARTICIPANTS)
        .map(|i| {
            json!({"id": {"type": "RAW_ADDRESS",
                          "value": format!("{i:02}{}", "\\".repeat(MAX_PARTICIPANT_ID_LEN - 2))},
                   "isOriginator": i == 0})
        })
        .collect();
    let largest = json!({"type": "InitiateInboundCall", "messageId": "largest",
                         "participants": participants,
                         "sdpDetails": {"type": "OFFER", "value": sdp}});
    assert!(largest.to_string().len() <= signaling_api::MAX_BODY_BYTES);
    let (status, body) = h.post(largest).await;
    assert_eq!(status, 200, "{body}");
    // One byte more SDP is refused with the limit named.
    let (status, body) = h
        .post(
            json!({"type": "InitiateInboundCall", "messageId": "too-large",
                     "participants": [{"id": {"type": "RAW_ADDRESS", "value": "a"}}],
                     "sdpDetails": {"type": "OFFER", "value": format!("{sdp}x")}}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("larger than 65536 bytes"),
        "{body}"
    );
}
