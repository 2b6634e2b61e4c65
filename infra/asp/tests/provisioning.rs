//! plan → apply → plan against the loopback fake: convergence, drift, prune, partial failure and
//! resume, lost answers, throttling, token expiry, trunk activation.

mod support;

use asp::apply::{WaitError, wait_active};
use asp::auth::Scope;
use asp::client::ApiRequest;
use asp::fake::Fault;
use asp::plan::Action;
use asp::provision::{apply_property, plan_property};
use asp::state::State;
use asp::wire;
use http::Method;
use serde_json::json;
use std::time::Duration;
use support::*;

#[tokio::test]
async fn plan_apply_plan_converges_and_a_second_apply_writes_nothing() {
    let fake = fake().await;
    let dir = TempDir::new();
    // 25 rooms: every list the tool reads spans three pages of 10.
    let desired = load(&dir, &property_toml(25));
    let client = client(&fake);
    let state_path = dir.path("state.json");

    let first = plan_property(&client, &desired, &state_path, false, 8)
        .await
        .unwrap();
    let counts = first.plan.counts();
    // 1 trunk + 25 profiles + 25 PBX skills + 2×2 WebRTC skills + 25 extensions + SP + mapping +
    // 2 account associations + 2 books + 4 contacts + 25 unit associations.
    assert_eq!(counts.created, 1 + 25 + 25 + 4 + 25 + 2 + 2 + 2 + 4 + 25);
    assert_eq!(fake.with(|s| s.writes()), 0, "plan must not write");
    assert!(!state_path.exists(), "plan must not write the state file");

    let (_, report) = apply_property(&client, &desired, false, &options(&state_path))
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.done.created, counts.created);
    fake.with(|s| {
        assert_eq!(s.trunks.len(), 1);
        let trunk = s.trunks.values().next().unwrap();
        assert_eq!(trunk.extensions.len(), 25);
        assert_eq!(
            trunk.extensions["10003"],
            s.profile_of("amzn1.alexa.unit.did.R3").unwrap()
        );
        assert_eq!(s.books.len(), 2);
        assert!(s.books.values().all(|b| b.contacts.len() == 2));
        let provider = s.providers.values().next().unwrap();
        assert_eq!(
            provider.external_users["user-1"],
            s.profile_of("amzn1.alexa.unit.did.R1").unwrap()
        );
        assert!(s.skills.contains(&(
            "amzn1.ask.skill.test-webrtc".into(),
            "amzn1.alexa.unit.did.R0".into()
        )));
    });
    let state = State::load(&state_path).unwrap();
    assert!(
        state.service_provider.is_some()
            && state.trunks.contains_key("main")
            && state.address_books.len() == 2
    );

    let again = plan_property(&client, &desired, &state_path, true, 8)
        .await
        .unwrap();
    assert!(again.plan.changes.is_empty(), "{:?}", again.plan.changes);
    assert_eq!(again.plan.unchanged, counts.created);

    let writes = fake.with(|s| s.writes());
    let (_, report) = apply_property(&client, &desired, true, &options(&state_path))
        .await
        .unwrap();
    assert_eq!(
        (
            report.done.created,
            report.done.updated,
            report.done.deleted
        ),
        (0, 0, 0)
    );
    assert_eq!(
        fake.with(|s| s.writes()),
        writes,
        "a second apply must not write"
    );
}

#[tokio::test]
async fn drift_made_outside_the_tool_shows_in_plan_and_apply_repairs_it() {
    let fake = fake().await;
    let dir = TempDir::new();
    let desired = load(&dir, &property_toml(4));
    let client = client(&fake);
    let state_path = dir.path("state.json");
    apply_property(&client, &desired, false, &options(&state_path))
        .await
        .unwrap();

    fake.with(|s| {
        let trunk = s.trunks.values_mut().next().unwrap();
        trunk.extensions.remove("10002");
        let (_, name) = s.profiles.get_mut("amzn1.alexa.unit.did.R1").unwrap();
        *name = "Renamed in the console".into();
        let guest = s
            .books
            .values_mut()
            .find(|b| b.name == "Guest rooms")
            .unwrap();
        guest.units.remove("amzn1.alexa.unit.did.R3");
        let concierge = guest
            .contacts
            .values_mut()
            .find(|c| c["name"] == "Concierge")
            .unwrap();
        concierge["phoneNumbers"] = json!([{ "number": "2999" }]);
    });

    let planned = plan_property(&client, &desired, &state_path, false, 4)
        .await
        .unwrap();
    let mut seen: Vec<(Action, String)> = planned
        .plan
        .changes
        .iter()
        .map(|c| (c.action, c.item.to_string()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (Action::Create, "extension main/10002".to_owned()),
            (
                Action::Create,
                "unit association guest ↔ amzn1.alexa.unit.did.R3".to_owned()
            ),
            (Action::Update, "contact guest/Concierge".to_owned()),
            (Action::Update, "profile amzn1.alexa.unit.did.R1".to_owned()),
        ]
    );

    let (_, report) = apply_property(&client, &desired, false, &options(&state_path))
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(
        plan_property(&client, &desired, &state_path, false, 4)
            .await
            .unwrap()
            .plan
            .changes
            .is_empty()
    );
    fake.with(|s| assert_eq!(s.profiles["amzn1.alexa.unit.did.R1"].1, "Room 1"));
}

#[tokio::test]
async fn prune_deletes_only_when_asked_and_only_what_the_tool_owns() {
    let fake = fake().await;
    let dir = TempDir::new();
    let client = client(&fake);
    let state_path = dir.path("state.json");
    let desired = load(&dir, &property_toml(3));
    apply_property(&client, &desired, false, &options(&state_path))
        .await
        .unwrap();
    // Something the tool never made: it must survive --prune.
    fake.with(|s| {
        s.books.insert(
            "amzn1.alexa.addressbook.did.someone-else".into(),
            asp::fake::FakeBook {
                name: "Spa".into(),
                ..Default::default()
            },
        );
    });

    // Room 1 (with its extension and WebRTC user), the "desk" book and the concierge contact go.
    let smaller = property_toml(3)
        .replace("\n[[rooms]]\nunit_id = \"amzn1.alexa.unit.did.R1\"\nname = \"Room 1\"\nextension = \"10001\"\naddress_books = [\"guest\"]\nexternal_user_id = \"user-1\"\n", "")
        .replace("  { name = \"Concierge\", phone_numbers = [\"2000\"] },\n", "");
    let desk_start = smaller.find("[[address_books]]\nkey = \"desk\"").unwrap();
    let desk_end = smaller[desk_start..].find("\n]\n").unwrap() + desk_start + 3;
    let smaller = format!("{}{}", &smaller[..desk_start], &smaller[desk_end..]);
    let desired = load(&dir, &smaller);

    let kept = plan_property(&client, &desired, &state_path, false, 4)
        .await
        .unwrap()
        .plan;
    assert_eq!(kept.counts().deleted, 0);
    let mut kept_items: Vec<String> = kept.kept.iter().map(|c| c.item.to_string()).collect();
    kept_items.sort();
    assert_eq!(
        kept_items,
        vec![
            "account association user-1",
            "address book desk",
            "contact guest/Concierge",
            "extension main/10001",
            "unit association guest ↔ amzn1.alexa.unit.did.R1",
        ]
    );
    let (_, report) = apply_property(&client, &desired, false, &options(&state_path))
        .await
        .unwrap();
    assert_eq!(report.done.deleted, 0);
    assert_eq!(fake.with(|s| s.books.len()), 3);

    let (_, report) = apply_property(&client, &desired, true, &options(&state_path))
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.done.deleted, 5);
    fake.with(|s| {
        assert!(
            !s.trunks
                .values()
                .next()
                .unwrap()
                .extensions
                .contains_key("10001")
        );
        assert_eq!(s.books.len(), 2, "desk deleted, the spa book kept");
        assert!(s.books.values().any(|b| b.name == "Spa"));
        assert!(
            !s.providers
                .values()
                .next()
                .unwrap()
                .external_users
                .contains_key("user-1")
        );
    });
    let state = State::load(&state_path).unwrap();
    assert!(
        !state.address_books.contains_key("desk")
            && !state.account_associations.contains_key("user-1")
    );
    assert!(
        plan_property(&client, &desired, &state_path, true, 4)
            .await
            .unwrap()
            .plan
            .changes
            .is_empty()
    );
}

#[tokio::test]
async fn a_failure_half_way_loses_nothing_and_a_rerun_finishes_without_duplicates() {
    let fake = fake().await;
    let dir = TempDir::new();
    let desired = load(&dir, &property_toml(6));
    let client = client(&fake);
    let state_path = dir.path("state.json");
    // Every contact create is refused, and the answer to the first book create is lost after
    // the book was made.
    fake.inject(Fault::new(Some(Method::POST), "/contacts", 400, 1000));
    fake.inject(Fault {
        after_apply: true,
        ..Fault::new(Some(Method::POST), "/v1/addressBooks", 500, 1)
    });

    let (plan, report) = apply_property(&client, &desired, false, &options(&state_path))
        .await
        .unwrap();
    assert!(!report.failures.is_empty());
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.contains("outcome unknown")),
        "{:?}",
        report.failures
    );
    assert!(
        report.failures.iter().any(|f| f.starts_with("contact ")
            && f.contains("POST /v1/addressBooks/")
            && f.contains("HTTP 400")),
        "{:?}",
        report.failures
    );
    assert!(report.done.created < plan.counts().created);
    assert_eq!(
        fake.with(|s| s.trunks.values().next().unwrap().extensions.len()),
        6,
        "the rest went on"
    );
    let state = State::load(&state_path).unwrap();
    assert_eq!(state.trunks.len(), 1, "ids are kept as soon as they exist");

    fake.with(|s| s.faults.clear());
    let (_, report) = apply_property(&client, &desired, false, &options(&state_path))
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    fake.with(|s| {
        assert_eq!(s.trunks.len(), 1);
        assert_eq!(
            s.books.len(),
            2,
            "the book whose answer was lost is adopted, not made twice"
        );
        assert!(s.books.values().all(|b| b.contacts.len() == 2));
        assert_eq!(s.providers.len(), 1);
    });
    assert!(
        plan_property(&client, &desired, &state_path, false, 4)
            .await
            .unwrap()
            .plan
            .changes
            .is_empty()
    );
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_and_expired_tokens_refreshed() {
    let fake = fake().await;
    let dir = TempDir::new();
    let desired = load(&dir, &property_toml(3));
    let client = client(&fake);
    let state_path = dir.path("state.json");
    fake.inject(Fault {
        retry_after: Some(0),
        ..Fault::new(Some(Method::GET), "/v1/communications/profile", 429, 3)
    });
    fake.inject(Fault::new(Some(Method::POST), "/enablements", 503, 2));
    fake.inject(Fault::new(Some(Method::POST), "/auth/o2/token", 500, 1));

    let (_, report) = apply_property(&client, &desired, false, &options(&state_path))
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(
        client
            .stats
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 5
    );
    let tokens_before = client.tokens().fetched();
    assert_eq!(
        tokens_before, 3,
        "one token per scope group, cached for the run"
    );

    fake.with(|s| s.expire_tokens());
    let planned = plan_property(&client, &desired, &state_path, false, 4)
        .await
        .unwrap();
    assert!(planned.plan.changes.is_empty());
    assert_eq!(
        client.tokens().fetched(),
        tokens_before + 3,
        "a 401 fetches a new token once per scope"
    );
}

#[tokio::test]
async fn the_fake_checks_scopes_and_lwa_errors_are_reported_without_secrets() {
    let fake = fake().await;
    let client = client(&fake);
    let pbx_token = client.tokens().token(Scope::SipTrunk).await.unwrap();
    let transport = asp::http::HyperTransport::new().unwrap();
    use asp::http::Transport;
    let wrong = transport
        .send(
            asp::http::Outgoing {
                method: Method::GET,
                url: format!("{}/v1/addressBooks", fake.base_url()),
                headers: vec![(
                    http::header::AUTHORIZATION,
                    format!("Bearer {}", pbx_token.expose()).parse().unwrap(),
                )],
                body: Default::default(),
            },
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(wrong.status, 403);

    let mut credentials = credentials();
    credentials.refresh_token = Some(asp::http::Secret::new("Atzr|stolen-and-revoked"));
    let endpoints = asp::client::Endpoints {
        api_base: fake.base_url(),
        pbx_base: fake.base_url(),
        lwa_url: fake.lwa_url(),
    };
    let bad = asp::client::AspClient::new(
        std::sync::Arc::new(transport),
        endpoints,
        credentials,
        fast_policy(),
        false,
    );
    let error = bad
        .call(&ApiRequest::get(wire::ADDRESS_BOOKS))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("invalid_grant"), "{error}");
    assert!(
        !error.contains("stolen") && !error.contains("demo-secret"),
        "{error}"
    );
    // The PBX scope does not need the refresh token at all.
    assert!(bad.call(&ApiRequest::get(wire::TRUNKS)).await.is_ok());
}

#[tokio::test]
async fn trunk_wait_polls_until_active_and_times_out_clearly() {
    let fake = asp::fake::FakeServer::start(asp::fake::FakeConfig {
        polls_until_active: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let client = client(&fake);
    let dir = TempDir::new();
    let desired = load(&dir, &property_toml(1));
    let body = wire::trunk_body(&desired.trunks[0]);
    let created = client
        .call(&ApiRequest::create(wire::TRUNKS, body.clone()))
        .await
        .unwrap();
    let id = created.body["trunkId"].as_str().unwrap().to_owned();

    let mut statuses = Vec::new();
    let active = wait_active(
        &client,
        &id,
        Duration::from_secs(5),
        Duration::from_millis(1),
        |_, s| statuses.push(s.to_owned()),
    )
    .await
    .unwrap();
    assert_eq!(active["status"], "ACTIVE");
    assert_eq!(statuses, ["PENDING", "PENDING", "ACTIVE"]);

    let slow = asp::fake::FakeServer::start(asp::fake::FakeConfig {
        polls_until_active: 1000,
        ..Default::default()
    })
    .await
    .unwrap();
    let client = support::client(&slow);
    let created = client
        .call(&ApiRequest::create(wire::TRUNKS, body))
        .await
        .unwrap();
    let id = created.body["trunkId"].as_str().unwrap().to_owned();
    let error = wait_active(
        &client,
        &id,
        Duration::from_millis(30),
        Duration::from_millis(5),
        |_, _| {},
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, WaitError::Timeout { ref status, .. } if status == "PENDING"),
        "{error}"
    );
    assert!(error.to_string().contains("asp trunk wait"));
    let missing = wait_active(
        &client,
        "amzn1.comms.network.siptrunk.nope",
        Duration::from_secs(1),
        Duration::from_millis(1),
        |_, _| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(missing, WaitError::NotFound(_)));
}

#[tokio::test]
async fn extensions_wait_for_the_trunk_and_fail_clearly_if_it_never_activates() {
    let fake = asp::fake::FakeServer::start(asp::fake::FakeConfig {
        polls_until_active: 1000,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = TempDir::new();
    let desired = load(&dir, &property_toml(2));
    let client = client(&fake);
    let state_path = dir.path("state.json");
    let mut opts = options(&state_path);
    opts.trunk_timeout = Duration::from_millis(20);
    let (_, report) = apply_property(&client, &desired, false, &opts)
        .await
        .unwrap();
    assert_eq!(report.failures.len(), 2, "{:?}", report.failures);
    assert!(
        report
            .failures
            .iter()
            .all(|f| f.starts_with("extension main/") && f.contains("not ACTIVE"))
    );
    fake.with(|s| s.trunks.values_mut().for_each(|t| t.gets_until_active = 0));
    let (_, report) = apply_property(&client, &desired, false, &options(&state_path))
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!((report.done.created, fake.with(|s| s.trunks.len())), (2, 1));
}

/// `cargo test -p asp --release -- --ignored --nocapture apply_500_rooms`: the time `apply`
/// takes for 500 rooms against the fake (measured, not asserted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run by hand"]
async fn apply_500_rooms() {
    let fake = fake().await;
    let dir = TempDir::new();
    let desired = load(&dir, &property_toml(500));
    let client = client(&fake);
    let state_path = dir.path("state.json");
    for concurrency in [8, 32] {
        let _ = std::fs::remove_file(&state_path);
        fake.with(|s| {
            s.trunks.clear();
            s.books.clear();
            s.providers.clear();
            s.skills.clear();
            s.profiles.clear();
        });
        let mut opts = options(&state_path);
        opts.concurrency = concurrency;
        let started = std::time::Instant::now();
        let (plan, report) = apply_property(&client, &desired, false, &opts)
            .await
            .unwrap();
        let apply_seconds = started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();
        let second = plan_property(&client, &desired, &state_path, false, concurrency)
            .await
            .unwrap();
        println!(
            "{{\"rooms\":500,\"concurrency\":{concurrency},\"changes\":{},\"failed\":{},\"apply_seconds\":{apply_seconds:.3},\"second_plan_seconds\":{:.3},\"second_plan_changes\":{}}}",
            plan.changes.len(),
            report.failures.len(),
            started.elapsed().as_secs_f64(),
            second.plan.changes.len()
        );
    }
}
