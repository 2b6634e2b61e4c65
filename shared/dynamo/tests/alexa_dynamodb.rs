//! The Alexa session and token stores against real Amazon DynamoDB Local
//! (`infra/dynamodb-local.sh`). Needs `AWS_ENDPOINT_URL_DYNAMODB` (+ dummy credentials); without
//! it every test prints a loud SKIP line and returns. Each test creates its own tables.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use std::sync::Arc;
use std::time::Duration;
use takeback_alexa::Secret;
use takeback_alexa::config::{LwaSettings, SessionTtl};
use takeback_alexa::model::{MessageKind, SdpDetails, SignalingMessage};
use takeback_alexa::now_epoch_seconds;
use takeback_alexa::session::{IgnoreReason, Incoming, SessionState, Side};
use takeback_alexa::store::{self, PutOutcome, Recorded, SessionStore};
use takeback_alexa::store::{StoredTokens, TokenStore};
use takeback_dynamo::alexa::{DynamoSessionStore, DynamoTokenStore};
use takeback_dynamo::tables;
use takeback_dynamo::testing;
use takeback_http::client::HttpClient;
use takeback_http::lwa::{AccessTokenProvider, LwaClient};
use takeback_http::testing::FakeLwa;

async fn sessions(test: &str) -> Option<(Client, DynamoSessionStore)> {
    let client = testing::local_client(test).await?;
    let name = testing::fresh_table(&client, &tables::SIGNALING_SESSIONS, "sessions", test).await;
    Some((client.clone(), DynamoSessionStore::new(client, name)))
}

async fn tokens(test: &str) -> Option<DynamoTokenStore> {
    let client = testing::local_client(test).await?;
    let name = testing::fresh_table(&client, &tables::TOKENS, "tokens", test).await;
    Some(DynamoTokenStore::new(client, name))
}

fn message(kind: MessageKind, session_id: &str) -> SignalingMessage {
    let mut m = SignalingMessage::bare(kind, session_id);
    if let Some(t) = kind.required_sdp() {
        m.sdp = Some(SdpDetails {
            sdp_type: t,
            value: "v=0".into(),
        });
    }
    m
}

fn incoming<'a>(m: &'a SignalingMessage, from: Side, id: &'a str, now: i64) -> Incoming<'a> {
    Incoming {
        message: m,
        from,
        message_id: id,
        api_endpoint: Some("https://api.amazonalexa.com"),
        now,
        ttl: SessionTtl::default(),
    }
}

#[tokio::test]
async fn session_item_round_trips_with_ttl() {
    let Some((client, store)) = sessions("roundtrip").await else {
        return;
    };
    let now = now_epoch_seconds();
    let m = message(MessageKind::InitiateOutboundCall, "s-rt");
    let r = store::record(&store, &incoming(&m, Side::Alexa, "r1", now))
        .await
        .unwrap();
    let Recorded::Applied { session, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(store.get("s-rt", now).await.unwrap(), Some(session.clone()));
    let raw = client
        .get_item()
        .table_name(store.table())
        .key("session_id", AttributeValue::S("s-rt".into()))
        .send()
        .await
        .unwrap();
    let item = raw.item().unwrap();
    assert_eq!(item["state"], AttributeValue::S("OFFERED".into()));
    assert_eq!(
        item["expires_at"],
        AttributeValue::N((now + 86_400).to_string()),
        "TTL attribute as the table definition names it"
    );
    assert_eq!(tables::SIGNALING_SESSIONS.ttl_attribute, Some("expires_at"));
}

#[tokio::test]
async fn conditional_writes_refuse_stale_versions_and_live_duplicates() {
    let Some((_, store)) = sessions("conditional").await else {
        return;
    };
    let now = now_epoch_seconds();
    let m = message(MessageKind::InitiateInboundCall, "s-c");
    let Recorded::Applied { session, .. } =
        store::record(&store, &incoming(&m, Side::Provider, "p1", now))
            .await
            .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        store.put(&session, None, now).await.unwrap(),
        PutOutcome::Conflict
    );
    let mut next = session.clone();
    next.version = 2;
    next.state = SessionState::Ringing;
    assert_eq!(
        store.put(&next, Some(7), now).await.unwrap(),
        PutOutcome::Conflict
    );
    assert_eq!(
        store.put(&next, Some(1), now).await.unwrap(),
        PutOutcome::Written
    );
    assert_eq!(
        store.put(&next, Some(1), now).await.unwrap(),
        PutOutcome::Conflict
    );
    // once expired the item counts as absent (TTL deletion is lazy) and may be created again
    let later = session.expires_at;
    assert!(store.get("s-c", later).await.unwrap().is_none());
    let fresh = message(MessageKind::InitiateInboundCall, "s-c");
    let r = store::record(&store, &incoming(&fresh, Side::Provider, "p9", later))
        .await
        .unwrap();
    assert!(
        matches!(r, Recorded::Applied { previous: None, .. }),
        "{r:?}"
    );
}

#[tokio::test]
async fn concurrent_deliveries_apply_exactly_once() {
    let Some((_, store)) = sessions("concurrent").await else {
        return;
    };
    let store = Arc::new(store);
    let now = now_epoch_seconds();
    let m = message(MessageKind::InitiateOutboundCall, "s-x");
    store::record(&*store, &incoming(&m, Side::Alexa, "offer", now))
        .await
        .unwrap();

    // Ten different CallAccepted at once (the backend retrying without an id): one applies,
    // the others see ACCEPTED and are ignored as repeats.
    let mut handles = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let m = message(MessageKind::CallAccepted, "s-x");
            let id = format!("acc-{i}");
            store::record(&*store, &incoming(&m, Side::Provider, &id, now))
                .await
                .unwrap()
        }));
    }
    let mut applied = 0;
    for h in handles {
        match h.await.unwrap() {
            Recorded::Applied { .. } => applied += 1,
            Recorded::Ignored {
                state: SessionState::Accepted,
                reason: IgnoreReason::Repeat,
            } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(applied, 1);

    // The same Alexa request delivered ten times at once: one applies, nine are duplicates.
    let mut handles = Vec::new();
    for _ in 0..10 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let m = message(MessageKind::CallAcceptedAck, "s-x");
            store::record(&*store, &incoming(&m, Side::Alexa, "ack-1", now))
                .await
                .unwrap()
        }));
    }
    let mut applied = 0;
    for h in handles {
        match h.await.unwrap() {
            Recorded::Applied { .. } => applied += 1,
            Recorded::Duplicate { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(applied, 1);
    let s = store.get("s-x", now).await.unwrap().unwrap();
    assert_eq!(s.state, SessionState::Accepted);
    assert_eq!(s.version, 3);
}

#[tokio::test]
async fn delivery_marks_and_rollbacks() {
    let Some((_, store)) = sessions("rollback").await else {
        return;
    };
    let now = now_epoch_seconds();
    let offer = message(MessageKind::InitiateOutboundCall, "s-r");
    store::record(&store, &incoming(&offer, Side::Alexa, "offer", now))
        .await
        .unwrap();
    store::mark_delivered(&store, "s-r", "offer", now)
        .await
        .unwrap();
    assert!(
        store
            .get("s-r", now)
            .await
            .unwrap()
            .unwrap()
            .was_delivered("offer")
    );

    let ring = message(MessageKind::CallRinging, "s-r");
    let Recorded::Applied { previous, session } =
        store::record(&store, &incoming(&ring, Side::Provider, "ring", now))
            .await
            .unwrap()
    else {
        panic!()
    };
    assert!(
        store::roll_back(&store, &session, previous.as_ref(), "ring", now)
            .await
            .unwrap()
    );
    let s = store.get("s-r", now).await.unwrap().unwrap();
    assert_eq!(s.state, SessionState::Offered);
    assert!(!s.has_applied("ring"));
    // a rollback of a version that is no longer current does nothing
    assert!(
        !store::roll_back(&store, &session, previous.as_ref(), "ring", now)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn token_store_round_trip_and_conditional_refresh_write() {
    let Some(store) = tokens("tokens").await else {
        return;
    };
    assert!(store.get("alexa-calling").await.unwrap().is_none());
    let t = StoredTokens {
        access_token: Secret::new("Atza|a"),
        refresh_token: Some(Secret::new("Atzr|r")),
        expires_at: 123,
        version: 1,
        updated_at: 100,
        grant_digest: Some("ab12".into()),
        lease: None,
    };
    assert_eq!(
        store.put("alexa-calling", &t, None).await.unwrap(),
        PutOutcome::Written
    );
    assert_eq!(store.get("alexa-calling").await.unwrap(), Some(t.clone()));
    let next = StoredTokens {
        version: 2,
        ..t.clone()
    };
    assert_eq!(
        store.put("alexa-calling", &next, Some(5)).await.unwrap(),
        PutOutcome::Conflict
    );
    assert_eq!(
        store.put("alexa-calling", &next, Some(1)).await.unwrap(),
        PutOutcome::Written
    );
}

#[tokio::test]
async fn two_instances_refreshing_at_once_end_with_one_stored_token() {
    let Some(store) = tokens("instances").await else {
        return;
    };
    let store = Arc::new(store);
    let lwa = FakeLwa::start("cid", "csecret").await;
    lwa.fake.add_refresh_token("Atzr|linked");
    lwa.fake.set_delay(Duration::from_millis(100));
    store
        .put(
            "alexa-calling",
            &StoredTokens {
                access_token: Secret::new("Atza|expired"),
                refresh_token: Some(Secret::new("Atzr|linked")),
                expires_at: now_epoch_seconds() - 1,
                version: 1,
                updated_at: 0,
                grant_digest: None,
                lease: None,
            },
            None,
        )
        .await
        .unwrap();
    let settings = LwaSettings {
        token_url: lwa.token_url(),
        client_id: "cid".into(),
        client_secret: Secret::new("csecret"),
        token_id: "alexa-calling".into(),
        refresh_margin: Duration::from_secs(60),
        timeout: Duration::from_secs(2),
    };
    let http = HttpClient::new().unwrap();
    // Two Lambda instances: separate providers (no shared in-memory lock), one table.
    let a = AccessTokenProvider::new(
        store.clone(),
        LwaClient::new(http.clone(), settings.clone()),
    );
    let b = AccessTokenProvider::new(store.clone(), LwaClient::new(http, settings));
    let (ta, tb) = tokio::join!(a.access_token(), b.access_token());
    let (ta, tb) = (ta.unwrap(), tb.unwrap());
    let stored = store.get("alexa-calling").await.unwrap().unwrap();
    // The conditional lease on the record let one environment refresh; the other waited for
    // its token (the old one had expired).
    assert_eq!(
        lwa.grant_requests("refresh_token"),
        1,
        "one refresh for both environments"
    );
    assert_eq!(stored.version, 3, "the lease, then the refreshed tokens");
    assert_eq!(
        stored.lease, None,
        "the lease is cleared with the new tokens"
    );
    assert_eq!(ta, stored.access_token);
    assert_eq!(tb, stored.access_token);
    assert!(lwa.fake.is_valid_access_token(ta.expose()));
    assert_eq!(stored.refresh_token.unwrap().expose(), "Atzr|linked");
}

#[tokio::test]
async fn token_lease_and_grant_digest_round_trip_and_only_one_lease_wins() {
    let Some(store) = tokens("lease").await else {
        return;
    };
    let t = StoredTokens {
        access_token: Secret::new("Atza|a"),
        refresh_token: Some(Secret::new("Atzr|r")),
        expires_at: 1_000,
        version: 1,
        updated_at: 100,
        grant_digest: Some("00ff".into()),
        lease: None,
    };
    store.put("alexa-calling", &t, None).await.unwrap();
    let mine = t.leased("env-a", 2_000);
    let theirs = t.leased("env-b", 2_000);
    assert_eq!(
        store.put("alexa-calling", &mine, Some(1)).await.unwrap(),
        PutOutcome::Written
    );
    assert_eq!(
        store.put("alexa-calling", &theirs, Some(1)).await.unwrap(),
        PutOutcome::Conflict,
        "a second environment cannot take the lease on the same version"
    );
    assert_eq!(store.get("alexa-calling").await.unwrap(), Some(mine));
}

#[tokio::test]
async fn an_undone_creation_can_be_recreated_under_the_same_session_id() {
    let Some((_, store)) = sessions("recreate").await else {
        return;
    };
    let now = now_epoch_seconds();
    let mut offer = message(MessageKind::InitiateInboundCall, "s-iic");
    offer.participants = Vec::new();
    let Recorded::Applied { previous, session } =
        store::record(&store, &incoming(&offer, Side::Provider, "backend:k", now))
            .await
            .unwrap()
    else {
        panic!("created")
    };
    assert!(
        store::roll_back(&store, &session, previous.as_ref(), "backend:k", now)
            .await
            .unwrap()
    );
    // Undone: readers see no session, and the backend's retry (same key, same session id)
    // creates it again.
    assert!(store.get("s-iic", now).await.unwrap().is_none());
    assert!(matches!(
        store::record(&store, &incoming(&offer, Side::Provider, "backend:k", now))
            .await
            .unwrap(),
        Recorded::Applied { previous: None, .. }
    ));
}
