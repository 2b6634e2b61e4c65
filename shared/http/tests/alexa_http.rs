//! The Alexa HTTP clients (LWA, webhook) against loopback fakes.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};
use takeback_alexa::Secret;
use takeback_alexa::budget::Deadline;
use takeback_alexa::config::LwaSettings;
use takeback_alexa::model::{MessageKind, SignalingMessage};
use takeback_alexa::retry::RetryPolicy;
use takeback_alexa::session::{CallDirection, SessionState};
use takeback_alexa::store::{MemoryTokenStore, PutOutcome, StoredTokens, TokenStore};
use takeback_common::StoreError;
use takeback_http::client::HttpClient;
use takeback_http::lwa::{AccessTokenProvider, LinkError, LwaClient, LwaError, TokenError};
use takeback_http::testing::{
    FakeLwa, FakeResponse, LoopbackServer, WebhookReceiver, closed_port_url,
};
use takeback_http::webhook::{self, WebhookClient, WebhookEnvelope, WebhookError, WebhookSession};

/// A deadline no test reaches.
fn far() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

const WHSEC: &str = "whsec-0123456789abcdef0123456789abcdef";

fn settings(token_url: String, secret: &str) -> LwaSettings {
    LwaSettings {
        token_url,
        client_id: "cid".into(),
        client_secret: Secret::new(secret),
        token_id: "alexa-calling".into(),
        refresh_margin: Duration::from_secs(60),
        timeout: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn code_exchange_sends_the_documented_form() {
    let lwa = FakeLwa::start("cid", "csecret").await;
    lwa.fake.add_code("code-1");
    let client = LwaClient::new(
        HttpClient::new().unwrap(),
        settings(lwa.token_url(), "csecret"),
    );
    let grant = client
        .exchange_code(&Secret::new("code-1"), far())
        .await
        .unwrap();
    assert!(grant.access_token.expose().starts_with("Atza|"));
    assert!(grant.refresh_token.is_some());
    assert_eq!(grant.expires_in, 3600);
    let req = &lwa.server.requests()[0];
    assert_eq!(req.method, "POST");
    assert!(
        req.header("content-type")
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    let form = req.form();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "code-1");
    assert_eq!(form["client_id"], "cid");
    assert_eq!(form["client_secret"], "csecret");
    // single use
    let again = client
        .exchange_code(&Secret::new("code-1"), far())
        .await
        .unwrap_err();
    assert!(again.is_invalid_grant(), "{again}");
}

#[tokio::test]
async fn lwa_errors_are_typed_and_code_exchange_is_not_retried() {
    let lwa = FakeLwa::start("cid", "csecret").await;
    let wrong = LwaClient::new(
        HttpClient::new().unwrap(),
        settings(lwa.token_url(), "nope"),
    );
    match wrong.refresh(&Secret::new("x"), far()).await.unwrap_err() {
        LwaError::OAuth { status, error, .. } => {
            assert_eq!((status, error.as_str()), (401, "invalid_client"))
        }
        e => panic!("{e:?}"),
    }
    let client = LwaClient::new(
        HttpClient::new().unwrap(),
        settings(lwa.token_url(), "csecret"),
    );
    lwa.fake.add_code("c");
    lwa.fake.fail_next(500, 1);
    let before = lwa.server.request_count();
    assert!(
        client
            .exchange_code(&Secret::new("c"), far())
            .await
            .is_err()
    );
    assert_eq!(
        lwa.server.request_count() - before,
        1,
        "a code is never sent twice"
    );
    // a refresh rides out one 5xx
    lwa.fake.add_refresh_token("r");
    lwa.fake.fail_next(503, 1);
    assert!(client.refresh(&Secret::new("r"), far()).await.is_ok());
    // unreachable LWA
    let down = LwaClient::new(
        HttpClient::new().unwrap(),
        settings(closed_port_url().await, "csecret"),
    );
    assert!(matches!(
        down.exchange_code(&Secret::new("c"), far()).await,
        Err(LwaError::Http(_))
    ));
}

#[tokio::test]
async fn provider_caches_refreshes_before_expiry_and_links() {
    let lwa = FakeLwa::start("cid", "csecret").await;
    let store = Arc::new(MemoryTokenStore::new());
    let provider = AccessTokenProvider::new(
        store.clone(),
        LwaClient::new(
            HttpClient::new().unwrap(),
            settings(lwa.token_url(), "csecret"),
        ),
    );
    assert!(matches!(
        provider.access_token().await,
        Err(TokenError::NotLinked(_))
    ));
    assert!(matches!(
        provider
            .link(Some("OAuth2.AuthorizationCode"), None, far())
            .await,
        Err(LinkError::MissingCode)
    ));
    assert!(matches!(
        provider
            .link(Some("Implicit"), Some(&Secret::new("c")), far())
            .await,
        Err(LinkError::UnsupportedGrant(_))
    ));
    // tokens that live 30 s, inside the 60 s margin: every use refreshes
    lwa.fake.set_expires_in(30);
    lwa.fake.add_code("c1");
    provider
        .link(
            Some("OAuth2.AuthorizationCode"),
            Some(&Secret::new("c1")),
            far(),
        )
        .await
        .unwrap();
    let t1 = provider.access_token().await.unwrap();
    assert_eq!(lwa.grant_requests("refresh_token"), 1);
    // tokens that live an hour: cached
    lwa.fake.set_expires_in(3600);
    let t2 = provider.access_token().await.unwrap();
    assert_ne!(t1, t2);
    let t3 = provider.access_token().await.unwrap();
    assert_eq!(t2, t3);
    assert_eq!(lwa.grant_requests("refresh_token"), 2);
    // invalidation forces a refresh even though the stored token has not expired
    provider.invalidate(&t3).await;
    let t4 = provider.access_token().await.unwrap();
    assert_ne!(t3, t4);
    assert_eq!(lwa.grant_requests("refresh_token"), 3);
    assert_eq!(
        store
            .get("alexa-calling")
            .await
            .unwrap()
            .unwrap()
            .access_token,
        t4
    );
    // the refresh token is revoked: a clear "re-link" error
    lwa.fake.revoke_refresh_tokens();
    provider.invalidate(&t4).await;
    assert!(matches!(
        provider.access_token().await,
        Err(TokenError::Revoked(_))
    ));
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let lwa = FakeLwa::start("cid", "csecret").await;
    lwa.fake.add_code("c");
    let provider = Arc::new(AccessTokenProvider::new(
        Arc::new(MemoryTokenStore::new()),
        LwaClient::new(
            HttpClient::new().unwrap(),
            settings(lwa.token_url(), "csecret"),
        ),
    ));
    lwa.fake.set_expires_in(10); // inside the margin
    provider
        .link(None, Some(&Secret::new("c")), far())
        .await
        .unwrap();
    lwa.fake.set_expires_in(3600);
    lwa.fake.set_delay(Duration::from_millis(100));
    let calls = (0..10).map(|_| {
        let p = provider.clone();
        async move { p.access_token().await.unwrap() }
    });
    let tokens = futures::future::join_all(calls).await;
    assert!(tokens.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(lwa.grant_requests("refresh_token"), 1);
}

/// `{"type": "Alexa.Comms.CallSignaling.CallRinging", "sessionId": "s"}`.
static RINGING: LazyLock<SignalingMessage> =
    LazyLock::new(|| SignalingMessage::bare(MessageKind::CallRinging, "s"));

fn envelope(id: &str) -> WebhookEnvelope<'static> {
    WebhookEnvelope {
        message_id: id.into(),
        received_at: 1,
        redelivery: false,
        session: WebhookSession {
            session_id: "s".into(),
            state: SessionState::Offered,
            direction: CallDirection::AlexaToProvider,
        },
        message: RINGING.forwarded(),
        refused: None,
    }
}

#[tokio::test]
async fn webhook_is_signed_as_documented() {
    let receiver = WebhookReceiver::start(WHSEC).await;
    let client = WebhookClient::new(
        HttpClient::new().unwrap(),
        receiver.url(),
        Secret::new(WHSEC),
        RetryPolicy::fast(3),
        Duration::from_secs(5),
    )
    .unwrap();
    client.deliver(&envelope("m-1"), far()).await.unwrap();
    assert_eq!(receiver.envelopes().len(), 1);
    assert_eq!(
        receiver.envelopes()[0],
        serde_json::json!({
            "messageId": "m-1", "receivedAt": 1, "redelivery": false,
            "session": {"sessionId": "s", "state": "OFFERED", "direction": "ALEXA_TO_PROVIDER"},
            "message": {"type": "Alexa.Comms.CallSignaling.CallRinging", "sessionId": "s"}
        })
    );
    let req = &receiver.server.requests()[0];
    let ts = req.header("x-signature-timestamp").unwrap();
    let sig = req.header("x-signature").unwrap();
    assert_eq!(req.header("x-message-id").unwrap(), "m-1");
    assert_eq!(req.header("content-type").unwrap(), "application/json");
    // what a backend developer would compute by hand
    let expected = webhook::sign(&Secret::new(WHSEC), ts.parse().unwrap(), "m-1", &req.body);
    assert_eq!(sig, expected);
    assert!(sig.starts_with("v2=") && sig.len() == 3 + 64);
    // a receiver with another secret refuses it, and 4xx is final
    let wrong = WebhookClient::new(
        HttpClient::new().unwrap(),
        receiver.url(),
        Secret::new("not-it-0123456789abcdef0123456789abcdef"),
        RetryPolicy::fast(3),
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(matches!(
        wrong.deliver(&envelope("m-2"), far()).await,
        Err(WebhookError::Rejected { status: 401 })
    ));
    assert_eq!(receiver.bad_signatures(), 1);
}

#[tokio::test]
async fn webhook_retries_stop_at_the_budget() {
    let slow = LoopbackServer::start(|_| {
        FakeResponse::json(503, serde_json::json!({})).delayed(Duration::from_millis(150))
    })
    .await;
    let client = WebhookClient::new(
        HttpClient::new().unwrap(),
        slow.url(),
        Secret::new(WHSEC),
        RetryPolicy {
            max_attempts: 10,
            attempt_timeout: Duration::from_secs(1),
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(50),
        },
        Duration::from_millis(400),
    )
    .unwrap();
    let started = Instant::now();
    let err = client.deliver(&envelope("m"), far()).await.unwrap_err();
    assert!(
        matches!(
            err,
            WebhookError::Unreachable {
                last_status: Some(503),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    assert!(slow.request_count() < 10);
}

#[tokio::test]
async fn webhook_retries_stop_at_the_invocations_deadline() {
    // A backend that never answers in time, and a client whose own limits are far away: the
    // invocation's deadline stops it.
    let receiver = WebhookReceiver::start(WHSEC).await;
    receiver.receiver.delay_all(Duration::from_secs(60));
    let client = WebhookClient::new(
        HttpClient::new().unwrap(),
        receiver.url(),
        Secret::new(WHSEC),
        RetryPolicy {
            max_attempts: 10,
            attempt_timeout: Duration::from_secs(60),
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
        },
        Duration::from_secs(60),
    )
    .unwrap();
    let deadline = Deadline::after(Duration::from_millis(300));
    // The guard is 100 times the deadline: it only catches a client that ignores it.
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        client.deliver(&envelope("m-deadline"), deadline),
    )
    .await
    .expect("the delivery stopped at the invocation's deadline");
    assert!(
        matches!(result, Err(WebhookError::Unreachable { .. })),
        "{result:?}"
    );
}

/// A token store that counts reads, shared by "environments" (providers) like the table.
#[derive(Default)]
struct CountingStore {
    inner: MemoryTokenStore,
    gets: std::sync::atomic::AtomicUsize,
}

impl CountingStore {
    fn gets(&self) -> usize {
        self.gets.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn wait_for_gets(&self, n: usize) {
        while self.gets() < n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl TokenStore for CountingStore {
    async fn get(&self, token_id: &str) -> Result<Option<StoredTokens>, StoreError> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.get(token_id).await
    }

    async fn put(
        &self,
        token_id: &str,
        tokens: &StoredTokens,
        expected_version: Option<u64>,
    ) -> Result<PutOutcome, StoreError> {
        self.inner.put(token_id, tokens, expected_version).await
    }
}

/// Two execution environments: two providers (no shared lock) over one store.
async fn two_environments(
    lwa: &takeback_http::testing::RunningLwa,
    expires_in: i64,
) -> (
    Arc<CountingStore>,
    Arc<AccessTokenProvider<CountingStore>>,
    Arc<AccessTokenProvider<CountingStore>>,
) {
    let store = Arc::new(CountingStore::default());
    lwa.fake.add_access_token("Atza|current");
    lwa.fake.add_refresh_token("Atzr|linked");
    store
        .put(
            "alexa-calling",
            &StoredTokens {
                access_token: Secret::new("Atza|current"),
                refresh_token: Some(Secret::new("Atzr|linked")),
                expires_at: takeback_alexa::now_epoch_seconds() + expires_in,
                version: 1,
                updated_at: 0,
                grant_digest: None,
                lease: None,
            },
            None,
        )
        .await
        .expect("test set-up");
    let env = || {
        Arc::new(AccessTokenProvider::new(
            store.clone(),
            LwaClient::new(
                HttpClient::new().expect("test set-up"),
                settings(lwa.token_url(), "csecret"),
            ),
        ))
    };
    (store.clone(), env(), env())
}

#[tokio::test]
async fn environments_coalesce_a_refresh_and_use_the_current_token_meanwhile() {
    let lwa = FakeLwa::start("cid", "csecret").await;
    // 50 s left: inside the 60 s refresh margin, still valid.
    let (_store, a, b) = two_environments(&lwa, 50).await;
    let gate = lwa.fake.hold_refreshes();
    let ta = tokio::spawn({
        let a = a.clone();
        async move { a.access_token().await }
    });
    lwa.wait_for_refreshes(1).await;
    // A refreshes (held at LWA). B must not refresh too: it uses the current token.
    let mut tb = tokio::spawn({
        let b = b.clone();
        async move { b.access_token().await }
    });
    let b_answered = tokio::select! {
        r = &mut tb => Some(r.unwrap()),
        _ = lwa.wait_for_refreshes(2) => None,
    };
    gate.open();
    let ta = ta.await.unwrap().unwrap();
    let tb = match b_answered {
        Some(t) => t,
        None => tb.await.unwrap(),
    }
    .unwrap();
    assert_eq!(
        lwa.grant_requests("refresh_token"),
        1,
        "one environment refreshed"
    );
    assert_eq!(tb.expose(), "Atza|current", "B kept the still valid token");
    assert_ne!(ta, tb, "A got the refreshed token");
}

#[tokio::test]
async fn an_environment_waits_for_another_environments_refresh_of_an_expired_token() {
    let lwa = FakeLwa::start("cid", "csecret").await;
    let (store, a, b) = two_environments(&lwa, -5).await;
    let gate = lwa.fake.hold_refreshes();
    let ta = tokio::spawn({
        let a = a.clone();
        async move { a.access_token().await }
    });
    lwa.wait_for_refreshes(1).await;
    let reads_before_b = store.gets();
    let tb = tokio::spawn({
        let b = b.clone();
        async move { b.access_token().await }
    });
    // B either re-reads the record (waiting for A's token) or asks LWA itself.
    tokio::select! {
        _ = store.wait_for_gets(reads_before_b + 2) => {}
        _ = lwa.wait_for_refreshes(2) => {}
    }
    gate.open();
    let ta = ta.await.unwrap().unwrap();
    let tb = tb.await.unwrap().unwrap();
    assert_eq!(
        lwa.grant_requests("refresh_token"),
        1,
        "one environment refreshed"
    );
    assert_eq!(ta, tb, "B waited for A's new token");
    assert!(lwa.fake.is_valid_access_token(tb.expose()));
}

#[tokio::test]
async fn a_redelivered_grant_is_answered_as_done_without_a_second_exchange() {
    let lwa = FakeLwa::start("cid", "csecret").await;
    let provider = AccessTokenProvider::new(
        Arc::new(MemoryTokenStore::new()),
        LwaClient::new(
            HttpClient::new().unwrap(),
            settings(lwa.token_url(), "csecret"),
        ),
    );
    lwa.fake.add_code("code-once");
    let code = Secret::new("code-once");
    provider.link(None, Some(&code), far()).await.unwrap();
    provider.link(None, Some(&code), far()).await.unwrap();
    assert_eq!(lwa.grant_requests("authorization_code"), 1);
    // another code that LWA does not know still fails
    assert!(matches!(
        provider
            .link(None, Some(&Secret::new("other")), far())
            .await,
        Err(LinkError::Lwa(_))
    ));
}
