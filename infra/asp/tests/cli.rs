//! The `asp` binary: bad input stops before any API call, dry runs print the request with the
//! token redacted, `--output json`, and no secret on any output.

mod support;

use std::process::Output;
use support::*;

async fn asp(fake: &asp::fake::FakeServer, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_asp"));
    command
        .args(args)
        .env("ASP_API_URL", fake.base_url())
        .env("ASP_LWA_URL", fake.lwa_url())
        .env("ASP_CLIENT_ID", "demo-client")
        .env("ASP_CLIENT_SECRET", "demo-secret")
        .env("ASP_REFRESH_TOKEN", "Atzr|demo-refresh")
        .env("ASP_RETRY_STEP_MS", "1")
        .env_remove("ASP_SP_REFRESH_TOKEN");
    tokio::task::spawn_blocking(move || command.output().expect("run asp"))
        .await
        .expect("join")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_every_error_before_any_api_call() {
    let fake = fake().await;
    let dir = TempDir::new();
    let bad = property_toml(3)
        .replace(
            "{ ip = \"192.0.2.11\", port = 5061 }",
            "{ ip = \"10.0.0.300\", port = 70000 }",
        )
        .replace("extension = \"10002\"", "extension = \"10001\"")
        .replace("extension = \"10000\"", "extension = \"911\"")
        .replace("room = \"Room 0\"", "room = \"Room 404\"");
    let path = write_property(&dir, &bad);
    std::fs::write(
        dir.path("chain.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let out = asp(&fake, &["plan", path.to_str().unwrap()]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for expected in [
        "certificate_chain chain.pem: malformed PEM",
        "ip \"10.0.0.300\" is not an IP address",
        "port 70000 is not 1–65535",
        "duplicate extension 10001",
        "extension 911 has 3 digits",
        "unknown room \"Room 404\"",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(fake.with(|s| s.log.is_empty()), "no API call on bad input");

    std::fs::remove_file(dir.path("chain.pem")).unwrap();
    let out = asp(&fake, &["validate", path.to_str().unwrap()]).await;
    assert!(
        text(&out.stderr).contains("chain.pem cannot be read"),
        "{}",
        text(&out.stderr)
    );

    let out = asp(
        &fake,
        &[
            "--dry-run",
            "extension",
            "map",
            "t1",
            "12a4",
            "--profile",
            "p1",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("digits only"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_request_with_the_token_redacted_and_sends_nothing() {
    let fake = fake().await;
    let dir = TempDir::new();
    std::fs::write(dir.path("chain.pem"), CERT).unwrap();
    let chain = dir.path("chain.pem");
    let out = asp(
        &fake,
        &[
            "--dry-run",
            "trunk",
            "create",
            "--tls-name",
            "pbx.example.com",
            "--certificate-chain",
            chain.to_str().unwrap(),
            "--peer",
            "192.0.2.1:5061",
        ],
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.starts_with(&format!(
            "POST {}/v1/communications/network/siptrunk HTTP/1.1",
            fake.base_url()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("Authorization: Bearer <redacted>"));
    assert!(
        stdout.contains("\"port\": 5061") && stdout.contains("-----BEGIN CERTIFICATE-----"),
        "{stdout}"
    );
    let out = asp(
        &fake,
        &[
            "--dry-run",
            "service-provider",
            "dissociate",
            "sp-1",
            "--external-user",
            "room-9",
        ],
    )
    .await;
    assert!(
        text(&out.stdout).contains("DELETE")
            && text(&out.stdout).contains("\"externalUserId\": \"room-9\"")
    );
    assert!(
        fake.with(|s| s.log.is_empty()),
        "a dry run neither fetches a token nor calls the API"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbs_answer_json_and_no_secret_reaches_any_output() {
    let fake = fake().await;
    let dir = TempDir::new();
    let path = write_property(&dir, &property_toml(2));
    let state = dir.path("s.json");
    let out = asp(
        &fake,
        &[
            "apply",
            path.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--poll-interval",
            "0",
            "--output",
            "json",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["created"], summary["planned"]);

    let out = asp(&fake, &["trunk", "list", "--output", "json"]).await;
    let trunks: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    let trunk_id = trunks[0]["trunkId"].as_str().unwrap().to_owned();
    let out = asp(&fake, &["extension", "list", &trunk_id, "--output", "json"]).await;
    let extensions: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(extensions.as_array().unwrap().len(), 2);

    let out = asp(
        &fake,
        &[
            "trunk",
            "wait",
            &trunk_id,
            "--interval",
            "0",
            "--output",
            "json",
        ],
    )
    .await;
    let settings: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(
        settings["sipServer"],
        format!("{trunk_id}.pbx.us-east1.prod.sbc.amcs-tachyon.com")
    );
    assert_eq!(
        (settings["port"].as_u64(), settings["allowCidr"].as_str()),
        (Some(5061), Some("3.239.178.128/25"))
    );

    let out = asp(&fake, &["extension", "get", &trunk_id, "55555"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!(
            "GET /v1/communications/network/siptrunk/{trunk_id}/extension/55555 answered HTTP 404"
        )),
        "{}",
        text(&out.stderr)
    );

    let out = asp(
        &fake,
        &[
            "plan",
            path.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ],
    )
    .await;
    let plan = text(&out.stdout);
    assert!(
        plan.contains("Plan: 0 to create, 0 to update, 0 to delete"),
        "{plan}"
    );
    let everything = [&plan, &text(&out.stderr)]
        .iter()
        .map(|s| s.as_str())
        .collect::<String>();
    for secret in ["demo-secret", "Atzr|demo-refresh", "Atza|fake"] {
        assert!(!everything.contains(secret));
    }
}
