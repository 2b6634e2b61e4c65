//! The Secrets Manager adapter against a loopback fake of `GetSecretValue` (the real SDK client,
//! its endpoint set to the fake), and with the real LWA and webhook clients against their fakes.

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use takeback_alexa::Secret;
use takeback_alexa::budget::Deadline;
use takeback_alexa::config::LwaSettings;
use takeback_alexa::model::{MessageKind, SignalingMessage};
use takeback_alexa::retry::RetryPolicy;
use takeback_alexa::session::{CallDirection, SessionState};
use takeback_common::config::map_env;
use takeback_common::telemetry;
use takeback_http::client::HttpClient;
use takeback_http::lwa::LwaClient;
use takeback_http::testing::{FakeLwa, FakeResponse, LoopbackServer, WebhookReceiver};
use takeback_http::webhook::{WebhookClient, WebhookEnvelope, WebhookSession};
use takeback_secrets::{
    Keys, RuntimeSecrets, SECRET_ARN_VAR, SecretsManagerClient, SecretsManagerSecrets,
};

const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:takeback/alexa-AbCdEf";
const LWA_OLD: &str = "lwa-old-client-secret-value";
const LWA_NEW: &str = "lwa-new-client-secret-value";
const HOOK_OLD: &str = "webhook-old-key-0123456789abcdef0123";
const HOOK_NEW: &str = "webhook-new-key-0123456789abcdef0123";

/// `GetSecretValue` answering with whatever `SecretString` the test set (`None`: not found).
struct FakeSecretsManager {
    secret_string: Arc<Mutex<Option<String>>>,
    server: LoopbackServer,
}

impl FakeSecretsManager {
    async fn start(lwa: &str, webhook: &str) -> Self {
        let secret_string = Arc::new(Mutex::new(None));
        let state = secret_string.clone();
        let server = LoopbackServer::start(move |req| {
            let target = req.header("x-amz-target").unwrap_or_default();
            let id = req.json()["SecretId"].as_str().unwrap_or_default().to_owned();
            if target != "secretsmanager.GetSecretValue" || id != ARN {
                return FakeResponse::json(
                    400,
                    json!({"__type": "InvalidRequestException", "message": "unexpected request"}),
                );
            }
            match state.lock().expect("fake state").clone() {
                Some(text) => FakeResponse::json(
                    200,
                    json!({"ARN": ARN, "Name": "takeback/alexa", "SecretString": text, "VersionId": "v"}),
                ),
                None => FakeResponse::json(
                    400,
                    json!({"__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret."}),
                ),
            }
        })
        .await;
        let fake = Self {
            secret_string,
            server,
        };
        fake.set(lwa, webhook);
        fake
    }

    fn set(&self, lwa: &str, webhook: &str) {
        *self.secret_string.lock().expect("fake state") =
            Some(json!({"lwa_client_secret": lwa, "webhook_hmac_secret": webhook}).to_string());
    }

    fn set_raw(&self, text: Option<&str>) {
        *self.secret_string.lock().expect("fake state") = text.map(str::to_owned);
    }

    fn reads(&self) -> usize {
        self.server.request_count()
    }

    fn client(&self) -> SecretsManagerClient {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new(
                "AKIDLOOPBACK",
                "loopback",
                None,
                None,
                "test",
            ))
            .endpoint_url(self.server.url())
            .build();
        SecretsManagerClient::from_conf(config)
    }

    async fn load(&self, keys: Keys, interval: Duration) -> Arc<SecretsManagerSecrets> {
        SecretsManagerSecrets::load(self.client(), ARN, keys, interval)
            .await
            .expect("the secret loads")
    }
}

#[tokio::test]
async fn the_secret_is_read_at_cold_start_and_then_served_from_memory() {
    let sm = FakeSecretsManager::start(LWA_OLD, HOOK_OLD).await;
    let secrets = sm.load(Keys::LwaAndWebhook, Duration::ZERO).await;
    let lwa = secrets.lwa_client_secret();
    let hook = secrets.webhook_secret().expect("asked for the webhook key");
    for _ in 0..5 {
        assert_eq!(lwa.current().expose(), LWA_OLD);
        assert_eq!(hook.current().expose(), HOOK_OLD);
    }
    assert_eq!(sm.reads(), 1);
    // Rotated in Secrets Manager: nothing changes until a far end refuses the old value.
    sm.set(LWA_NEW, HOOK_NEW);
    assert_eq!(lwa.current().expose(), LWA_OLD);
    assert_eq!(sm.reads(), 1);
    let signaling_api = sm.load(Keys::Lwa, Duration::ZERO).await;
    assert!(signaling_api.webhook_secret().is_none());
}

#[tokio::test]
async fn a_refusal_reads_again_and_offers_the_rotated_value_once() {
    let sm = FakeSecretsManager::start(LWA_OLD, HOOK_OLD).await;
    let secrets = sm.load(Keys::LwaAndWebhook, Duration::ZERO).await;
    let lwa = secrets.lwa_client_secret();
    let hook = secrets.webhook_secret().expect("webhook key");
    sm.set(LWA_NEW, HOOK_NEW);
    let old = Secret::new(LWA_OLD);
    assert_eq!(lwa.refused(&old).await, Some(Secret::new(LWA_NEW)));
    assert_eq!(sm.reads(), 2);
    assert_eq!(lwa.current().expose(), LWA_NEW);
    // The same read refreshed the other value: a refusal of the old webhook key needs no read.
    assert_eq!(
        hook.refused(&Secret::new(HOOK_OLD)).await,
        Some(Secret::new(HOOK_NEW))
    );
    assert_eq!(sm.reads(), 2);
    // The new value refused too: a read that finds nothing different offers nothing.
    assert_eq!(lwa.refused(&Secret::new(LWA_NEW)).await, None);
    assert_eq!(sm.reads(), 3);
}

#[tokio::test]
async fn a_wrong_secret_costs_one_read_per_interval_not_one_per_request() {
    let sm = FakeSecretsManager::start(LWA_OLD, HOOK_OLD).await;
    let secrets = sm.load(Keys::Lwa, Duration::from_secs(3600)).await;
    let lwa = secrets.lwa_client_secret();
    sm.set(LWA_NEW, HOOK_NEW);
    let old = Secret::new(LWA_OLD);
    let refusals: Vec<_> = (0..20).map(|_| lwa.refused(&old)).collect();
    for offered in futures::future::join_all(refusals).await {
        assert_eq!(offered, None);
    }
    assert_eq!(sm.reads(), 1, "the cold-start read was moments ago");

    // With the interval passed, concurrent refusals share one read.
    let secrets = sm.load(Keys::Lwa, Duration::ZERO).await;
    sm.set(LWA_OLD, HOOK_OLD);
    let lwa = secrets.lwa_client_secret();
    let before = sm.reads();
    let new = Secret::new(LWA_NEW);
    let refusals: Vec<_> = (0..10).map(|_| lwa.refused(&new)).collect();
    for offered in futures::future::join_all(refusals).await {
        assert_eq!(offered, Some(Secret::new(LWA_OLD)));
    }
    assert_eq!(sm.reads(), before + 1);
}

#[tokio::test]
async fn the_lwa_client_recovers_from_invalid_client_with_the_rotated_secret() {
    let sm = FakeSecretsManager::start(LWA_OLD, HOOK_OLD).await;
    let secrets = sm.load(Keys::LwaAndWebhook, Duration::ZERO).await;
    // LWA already has the new secret; the function still holds the old one.
    let lwa = FakeLwa::start("client-id", LWA_NEW).await;
    lwa.fake.add_code("code-1");
    sm.set(LWA_NEW, HOOK_OLD);
    let settings = LwaSettings {
        token_url: lwa.token_url(),
        client_id: "client-id".into(),
        client_secret: Secret::new("unused"),
        token_id: "t".into(),
        refresh_margin: Duration::from_secs(300),
        timeout: Duration::from_secs(2),
    };
    let client = LwaClient::new(HttpClient::new().unwrap(), settings)
        .with_client_secret(secrets.lwa_client_secret());
    let grant = client
        .exchange_code(
            &Secret::new("code-1"),
            Deadline::after(Duration::from_secs(5)),
        )
        .await
        .expect("the exchange succeeds with the rotated secret");
    assert!(!grant.access_token.is_empty());
    assert_eq!(lwa.server.request_count(), 2, "refused once, then accepted");
    assert_eq!(sm.reads(), 2);
}

#[tokio::test]
async fn the_webhook_client_re_signs_with_the_rotated_key_after_a_401() {
    let sm = FakeSecretsManager::start(LWA_OLD, HOOK_OLD).await;
    let secrets = sm.load(Keys::LwaAndWebhook, Duration::ZERO).await;
    let backend = WebhookReceiver::start(HOOK_NEW).await;
    sm.set(LWA_OLD, HOOK_NEW);
    let client = WebhookClient::new(
        HttpClient::new().unwrap(),
        backend.url(),
        Secret::new(HOOK_OLD),
        RetryPolicy::fast(1),
        Duration::from_secs(3),
    )
    .unwrap()
    .with_secret_source(secrets.webhook_secret().expect("webhook key"));
    let message = SignalingMessage::bare(MessageKind::CallRinging, "s-1");
    let envelope = WebhookEnvelope {
        message_id: "m-1".into(),
        received_at: 1,
        redelivery: false,
        session: WebhookSession {
            session_id: "s-1".into(),
            state: SessionState::Offered,
            direction: CallDirection::AlexaToProvider,
        },
        message: message.forwarded(),
        refused: None,
    };
    client
        .deliver(&envelope, Deadline::after(Duration::from_secs(3)))
        .await
        .expect("delivered with the rotated key");
    assert_eq!(backend.bad_signatures(), 1);
    assert_eq!(backend.envelopes().len(), 1);
}

#[tokio::test]
async fn without_an_arn_the_environment_is_used_and_aws_is_never_asked() {
    let env = map_env([
        ("LWA_CLIENT_SECRET", "local-lwa"),
        ("WEBHOOK_SECRET", HOOK_OLD),
    ]);
    let secrets = RuntimeSecrets::from_env(
        &env,
        || panic!("no Secrets Manager client without an ARN"),
        Keys::LwaAndWebhook,
    )
    .await
    .unwrap();
    assert!(matches!(secrets, RuntimeSecrets::Environment));
    let overlay = secrets.overlay(&env);
    assert_eq!(overlay.required("LWA_CLIENT_SECRET").unwrap(), "local-lwa");
    let source = secrets.lwa_client_secret(&Secret::new("local-lwa"));
    assert_eq!(source.current().expose(), "local-lwa");
    assert_eq!(source.refused(&source.current()).await, None);
}

#[tokio::test]
async fn with_an_arn_the_secret_fills_the_configuration_and_bad_settings_name_the_variable() {
    let sm = FakeSecretsManager::start(LWA_OLD, HOOK_OLD).await;
    let env = map_env([(SECRET_ARN_VAR, ARN), ("LWA_CLIENT_ID", "client-id")]);
    let secrets = RuntimeSecrets::from_env(&env, || sm.client(), Keys::LwaAndWebhook)
        .await
        .unwrap();
    let overlay = secrets.overlay(&env);
    assert_eq!(overlay.required("LWA_CLIENT_SECRET").unwrap(), LWA_OLD);
    assert_eq!(overlay.required("WEBHOOK_SECRET").unwrap(), HOOK_OLD);
    assert_eq!(overlay.required("LWA_CLIENT_ID").unwrap(), "client-id");

    let both = map_env([(SECRET_ARN_VAR, ARN), ("WEBHOOK_SECRET", HOOK_OLD)]);
    let err = RuntimeSecrets::from_env(&both, || sm.client(), Keys::LwaAndWebhook)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("WEBHOOK_SECRET"), "{err}");
    assert!(!err.to_string().contains(HOOK_OLD));

    let name_only = map_env([(SECRET_ARN_VAR, "takeback/alexa")]);
    let err = RuntimeSecrets::from_env(&name_only, || sm.client(), Keys::Lwa)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(SECRET_ARN_VAR), "{err}");

    sm.set_raw(None);
    let err = RuntimeSecrets::from_env(&env, || sm.client(), Keys::Lwa)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("ResourceNotFoundException"),
        "{err}"
    );
}

#[tokio::test]
async fn no_secret_value_reaches_the_logs_at_any_level() {
    let captured = telemetry::capture::CapturedLogs::default();
    let writer = captured.clone();
    let _guard =
        telemetry::capture::set_thread_default(telemetry::subscriber("trace", move || {
            writer.clone()
        }));
    let sm = FakeSecretsManager::start(LWA_OLD, HOOK_OLD).await;
    let secrets = sm.load(Keys::LwaAndWebhook, Duration::ZERO).await;
    let lwa = secrets.lwa_client_secret();
    sm.set(LWA_NEW, HOOK_NEW);
    assert!(lwa.refused(&Secret::new(LWA_OLD)).await.is_some());
    // A failed read and a malformed secret are logged by their shape, not their content.
    sm.set_raw(None);
    assert_eq!(lwa.refused(&Secret::new(LWA_NEW)).await, None);
    sm.set_raw(Some(r#""a-plain-string-secret-value""#));
    assert_eq!(lwa.refused(&Secret::new(LWA_NEW)).await, None);
    let debug = format!(
        "{:?} {:?}",
        RuntimeSecrets::SecretsManager(secrets.clone()),
        lwa
    );
    let logs = captured.text();
    assert!(logs.contains("read the Alexa secrets again"), "{logs}");
    assert!(
        logs.contains("could not read the Alexa secrets again"),
        "{logs}"
    );
    for value in [
        LWA_OLD,
        LWA_NEW,
        HOOK_OLD,
        HOOK_NEW,
        "a-plain-string-secret-value",
    ] {
        assert!(!logs.contains(value), "{value} reached the logs");
        assert!(!debug.contains(value), "{value} in a Debug output");
    }
}
