//! Both directions of a WebRTC call, end to end: the skill handler (`call-signaling`) and the
//! backend API (`signaling-api`) on the same DynamoDB Local tables, with loopback fakes of Login
//! with Amazon, Alexa's signaling endpoint and the property backend's webhook (which verifies
//! every signature). The "backend" here reads what the webhook received and answers through the
//! API, as a real property backend would.
//!
//! Needs `AWS_ENDPOINT_URL_DYNAMODB` (+ dummy credentials); without it each test prints a loud
//! SKIP line and returns.

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use takeback_alexa::Secret;
use takeback_alexa::config::{LwaSettings, SessionTtl, SignalingSettings};
use takeback_alexa::now_epoch_seconds;
use takeback_alexa::retry::RetryPolicy;
use takeback_alexa::session::{CallDirection, SessionState, Side};
use takeback_alexa::store::SessionStore;
use takeback_dynamo::alexa::DynamoSessionStore;
use takeback_dynamo::alexa::DynamoTokenStore;
use takeback_dynamo::tables;
use takeback_dynamo::testing;
use takeback_http::client::HttpClient;
use takeback_http::lwa::{AccessTokenProvider, LwaClient};
use takeback_http::signaling::SignalingClient;
use takeback_http::testing::{
    FakeLwa, FakeSignaling, RunningLwa, RunningSignaling, RunningWebhook, WebhookReceiver,
};
use takeback_http::webhook::WebhookClient;

const SKILL_ID: &str = "amzn1.ask.skill.00000000-0000-4000-8000-000000000001";
const CLIENT_ID: &str = "amzn1.application-oa2-client.fixture";
const CLIENT_SECRET: &str = "lwa-client-secret-value-0123456789";
const WEBHOOK_SECRET: &str = "webhook-hmac-secret-value-abcdef-0123";

struct Stack {
    lwa: RunningLwa,
    alexa: RunningSignaling,
    webhook: RunningWebhook,
    skill: call_signaling::CallSignalingDeps<DynamoSessionStore, DynamoTokenStore>,
    api: signaling_api::SignalingApiDeps<DynamoSessionStore, DynamoTokenStore>,
    sessions: DynamoSessionStore,
}

async fn stack(test: &str) -> Option<Stack> {
    let dynamo = testing::local_client(test).await?;
    let sessions_table =
        testing::fresh_table(&dynamo, &tables::SIGNALING_SESSIONS, "e2e-sessions", test).await;
    let tokens_table = testing::fresh_table(&dynamo, &tables::TOKENS, "e2e-tokens", test).await;

    let lwa = FakeLwa::start(CLIENT_ID, CLIENT_SECRET).await;
    let alexa = FakeSignaling::start(&lwa.fake).await;
    let webhook = WebhookReceiver::start(WEBHOOK_SECRET).await;
    let lwa_settings = LwaSettings {
        token_url: lwa.token_url(),
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(CLIENT_SECRET),
        token_id: "alexa-calling".into(),
        refresh_margin: Duration::from_secs(300),
        timeout: Duration::from_secs(2),
    };
    let signaling_settings = SignalingSettings {
        default_api_endpoint: alexa.api_endpoint(),
        retry: RetryPolicy::fast(3),
    };

    // Two functions, two processes: separate HTTP clients and token caches, shared tables.
    let skill = {
        let http = HttpClient::new().expect("test set-up");
        let tokens = Arc::new(AccessTokenProvider::new(
            Arc::new(DynamoTokenStore::new(dynamo.clone(), tokens_table.clone())),
            LwaClient::new(http.clone(), lwa_settings.clone()),
        ));
        call_signaling::CallSignalingDeps {
            skill_id: SKILL_ID.into(),
            sessions: DynamoSessionStore::new(dynamo.clone(), sessions_table.clone()),
            signaling: SignalingClient::new(http.clone(), tokens.clone(), RetryPolicy::fast(2)),
            tokens,
            signaling_settings: signaling_settings.clone(),
            webhook: WebhookClient::new(
                http,
                webhook.url(),
                Secret::new(WEBHOOK_SECRET),
                RetryPolicy::fast(3),
                Duration::from_secs(5),
            )
            .expect("test set-up"),
            ttl: SessionTtl::default(),
        }
    };
    let api = {
        let http = HttpClient::new().expect("test set-up");
        let tokens = Arc::new(AccessTokenProvider::new(
            Arc::new(DynamoTokenStore::new(dynamo.clone(), tokens_table.clone())),
            LwaClient::new(http.clone(), lwa_settings),
        ));
        signaling_api::SignalingApiDeps {
            sessions: DynamoSessionStore::new(dynamo.clone(), sessions_table.clone()),
            signaling: SignalingClient::new(http, tokens, RetryPolicy::fast(3)),
            settings: signaling_settings,
            ttl: SessionTtl::default(),
        }
    };
    Some(Stack {
        lwa,
        alexa,
        webhook,
        skill,
        api,
        sessions: DynamoSessionStore::new(dynamo, sessions_table),
    })
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("test set-up"))
        .expect("test set-up")
}

impl Stack {
    /// Account linking through the skill, as Alexa does when the skill is enabled.
    async fn link_account(&self) {
        self.lwa.fake.add_code("fixture-authorization-code-1");
        let answer = self
            .skill_answer(self.alexa_event("alexa-authorizationgrant-basic", None))
            .await;
        assert_eq!(
            answer["response"]["event"]["header"]["name"],
            "AcceptGrant.Response"
        );
    }

    /// The skill's JSON answer to a JSON event, as the Lambda runtime drives the handler.
    async fn skill_answer(&self, event: Value) -> Value {
        let answer = call_signaling::handle(
            &self.skill,
            serde_json::from_value(event).expect("test set-up"),
        )
        .await
        .expect("test set-up");
        serde_json::to_value(answer).expect("test set-up")
    }

    /// An Alexa request fixture aimed at this stack (and at `session_id` if given).
    fn alexa_event(&self, name: &str, session_id: Option<&str>) -> Value {
        let mut v = fixture(name);
        v["context"]["System"]["apiEndpoint"] = json!(self.alexa.api_endpoint());
        if let Some(s) = session_id {
            v["request"]["sessionId"] = json!(s);
        }
        v
    }

    /// Alexa sends the skill a request; the skill must answer with the deferred response.
    async fn alexa(&self, name: &str, session_id: &str) {
        let answer = self
            .skill_answer(self.alexa_event(name, Some(session_id)))
            .await;
        assert_eq!(answer, json!({"version": "1.0", "response": {}}), "{name}");
    }

    /// [`Self::alexa`] with another `requestId` (a second message of the same kind).
    async fn alexa_again(&self, name: &str, session_id: &str, request_id: &str) {
        let mut event = self.alexa_event(name, Some(session_id));
        event["request"]["requestId"] = json!(request_id);
        let answer = self.skill_answer(event).await;
        assert_eq!(answer, json!({"version": "1.0", "response": {}}), "{name}");
    }

    /// The property backend calls the API.
    async fn backend(&self, body: Value) -> Value {
        let mut event = fixture("backend-callringing-basic");
        event["body"] = json!(body.to_string());
        let r = signaling_api::handle(
            &self.api,
            serde_json::from_value(event).expect("test set-up"),
        )
        .await
        .expect("test set-up");
        let answer: Value =
            serde_json::from_str(r.body.as_deref().expect("test set-up")).expect("test set-up");
        assert_eq!(r.status_code, 200, "{body} -> {answer}");
        answer
    }

    async fn state(&self, session_id: &str) -> SessionState {
        self.sessions
            .get(session_id, now_epoch_seconds())
            .await
            .expect("test set-up")
            .expect("test set-up")
            .state
    }

    /// The last webhook envelope, with its signature already verified by the receiver.
    fn last_webhook(&self) -> Value {
        self.webhook
            .envelopes()
            .last()
            .cloned()
            .expect("test set-up")
    }
}

#[tokio::test]
async fn alexa_device_calls_a_staff_device() {
    let Some(s) = stack("alexa-to-staff").await else {
        return;
    };
    s.link_account().await;

    // The resident says "Alexa, call the nurse station": Alexa sends the offer to the skill.
    let answer = s
        .skill_answer(s.alexa_event("alexa-initiateoutboundcall-basic", None))
        .await;
    assert_eq!(answer, json!({"version": "1.0", "response": {}}));
    let offer = s.last_webhook();
    assert_eq!(
        offer["message"]["type"],
        "Alexa.Comms.CallSignaling.InitiateOutboundCall"
    );
    let session_id = offer["message"]["sessionId"].as_str().unwrap().to_owned();
    assert_eq!(s.state(&session_id).await, SessionState::Offered);

    // The staff device rings; Alexa acknowledges.
    s.backend(json!({"type": "CallRinging", "sessionId": session_id, "messageId": "b-1"}))
        .await;
    s.alexa("alexa-callringingack-basic", &session_id).await;
    assert_eq!(s.state(&session_id).await, SessionState::Ringing);

    // Staff answers with an SDP answer; Alexa acknowledges.
    let r = s
        .backend(json!({"type": "CallAccepted", "sessionId": session_id, "messageId": "b-2",
                        "sdpDetails": {"type": "ANSWER", "value": "v=0\r\no=- 1 2 IN IP4 198.51.100.20\r\n"}}))
        .await;
    assert_eq!(r["state"], "ACCEPTED");
    s.alexa("alexa-callacceptedack-basic", &session_id).await;

    // The resident puts the call on hold: Alexa re-offers, the backend answers, Alexa (which
    // re-offered) acknowledges the answer; then the same for the resume.
    s.alexa("alexa-callupdate-hold", &session_id).await;
    assert_eq!(s.state(&session_id).await, SessionState::Updating);
    s.backend(
        json!({"type": "CallUpdateResponse", "sessionId": session_id, "messageId": "b-4",
                     "renegotiationType": "CALL_HOLD",
                     "sdpDetails": {"type": "ANSWER", "value": "v=0\r\n"}}),
    )
    .await;
    s.alexa("alexa-callupdateack-basic", &session_id).await;
    assert_eq!(s.state(&session_id).await, SessionState::Accepted);
    s.alexa("alexa-callupdate-resume", &session_id).await;
    s.backend(
        json!({"type": "CallUpdateResponse", "sessionId": session_id, "messageId": "b-4r",
                     "renegotiationType": "CALL_RESUME",
                     "sdpDetails": {"type": "ANSWER", "value": "v=0\r\n"}}),
    )
    .await;
    s.alexa_again(
        "alexa-callupdateack-basic",
        &session_id,
        "fixture-uack-resume",
    )
    .await;
    assert_eq!(s.state(&session_id).await, SessionState::Accepted);

    // Staff hangs up; Alexa's own CallEnded arriving afterwards changes nothing.
    s.backend(
        json!({"type": "CallEnded", "sessionId": session_id, "messageId": "b-5",
                     "callResult": {"code": "SUCCESS", "message": "Staff hung up"}}),
    )
    .await;
    s.alexa("alexa-callended-basic", &session_id).await;

    assert_eq!(
        s.webhook.message_names(),
        [
            "InitiateOutboundCall",
            "CallRingingAck",
            "CallAcceptedAck",
            "CallUpdate",
            "CallUpdateAck",
            "CallUpdate",
            "CallUpdateAck"
        ]
    );
    assert_eq!(s.webhook.bad_signatures(), 0);
    assert_eq!(
        s.alexa.accepted_names(),
        [
            "CallRinging",
            "CallAccepted",
            "CallUpdateResponse",
            "CallUpdateResponse",
            "CallEnded"
        ]
    );
    assert!(
        s.alexa
            .accepted()
            .iter()
            .all(|m| m["sessionId"] == session_id.as_str())
    );
    let session = s
        .sessions
        .get(&session_id, now_epoch_seconds())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.state, SessionState::Ended);
    assert_eq!(session.direction, CallDirection::AlexaToProvider);
    assert_eq!(session.ended_by, Some(Side::Provider));
    assert_eq!(session.end_code.as_deref(), Some("SUCCESS"));
    assert!(
        session.expires_at <= now_epoch_seconds() + 3600,
        "ended sessions expire soon"
    );
    // One linked token served both functions: no refresh was needed.
    assert_eq!(s.lwa.grant_requests("authorization_code"), 1);
    assert_eq!(s.lwa.grant_requests("refresh_token"), 0);
}

#[tokio::test]
async fn staff_device_calls_a_room() {
    let Some(s) = stack("staff-to-room").await else {
        return;
    };
    s.link_account().await;

    // The nurse station calls room 101.
    let r = signaling_api::handle(
        &s.api,
        serde_json::from_value(fixture("backend-initiateinboundcall-basic")).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status_code, 200);
    let answer: Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
    let session_id = answer["sessionId"].as_str().unwrap().to_owned();
    assert_eq!(s.alexa.accepted_names(), ["InitiateInboundCall"]);

    // The room's Echo rings: Alexa tells the skill, the skill tells the backend, which acks.
    s.alexa("alexa-callringing-basic", &session_id).await;
    let ringing = s.last_webhook();
    assert_eq!(
        ringing["message"]["type"],
        "Alexa.Comms.CallSignaling.CallRinging"
    );
    assert_eq!(ringing["session"]["direction"], "PROVIDER_TO_ALEXA");
    assert_eq!(ringing["session"]["state"], "RINGING");
    s.backend(json!({"type": "CallRingingAck", "sessionId": session_id}))
        .await;

    // The resident answers.
    s.alexa("alexa-callaccepted-basic", &session_id).await;
    let accepted = s.last_webhook();
    assert_eq!(accepted["message"]["sdpDetails"]["type"], "ANSWER");
    s.backend(json!({"type": "CallAcceptedAck", "sessionId": session_id}))
        .await;
    assert_eq!(s.state(&session_id).await, SessionState::Accepted);

    // Alexa re-delivers the CallAccepted (same requestId): answered, not forwarded again.
    s.alexa("alexa-callaccepted-basic", &session_id).await;

    // The staff device puts the room on hold: the backend re-offers, Alexa answers through the
    // skill, and the backend, which re-offered, acknowledges.
    s.backend(
        json!({"type": "CallUpdate", "sessionId": session_id, "messageId": "b-hold",
                     "renegotiationType": "CALL_HOLD",
                     "sdpDetails": {"type": "OFFER", "value": "v=0\r\na=sendonly\r\n"}}),
    )
    .await;
    s.alexa("alexa-callupdateresponse-basic", &session_id).await;
    s.backend(json!({"type": "CallUpdateAck", "sessionId": session_id, "messageId": "b-hold-ack"}))
        .await;
    assert_eq!(s.state(&session_id).await, SessionState::Accepted);

    // The resident hangs up.
    s.alexa("alexa-callended-basic", &session_id).await;
    assert_eq!(s.state(&session_id).await, SessionState::Ended);
    // The backend's late hang-up is answered, not sent.
    let late = s
        .backend(json!({"type": "CallEnded", "sessionId": session_id, "callResult": {"code": "SUCCESS"}}))
        .await;
    assert_eq!(late["outcome"], "ignored");

    assert_eq!(
        s.webhook.message_names(),
        [
            "CallRinging",
            "CallAccepted",
            "CallUpdateResponse",
            "CallEnded"
        ]
    );
    assert_eq!(s.webhook.bad_signatures(), 0);
    assert_eq!(
        s.alexa.accepted_names(),
        [
            "InitiateInboundCall",
            "CallRingingAck",
            "CallAcceptedAck",
            "CallUpdate",
            "CallUpdateAck"
        ]
    );
    let session = s
        .sessions
        .get(&session_id, now_epoch_seconds())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.direction, CallDirection::ProviderToAlexa);
    assert_eq!(session.ended_by, Some(Side::Alexa));
}
