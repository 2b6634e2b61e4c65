//! `--secret-name`: the LWA credentials come from one Secrets Manager secret (here a loopback
//! fake of `GetSecretValue`), the environment's `ASP_*` values win, and no value is printed.

mod support;

use std::sync::{Arc, Mutex};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers every request with `secret_string` as `GetSecretValue` would, and keeps the
/// `X-Amz-Target` headers it saw.
async fn fake_secrets_manager(secret_string: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("test set-up");
    let url = format!("http://{}", listener.local_addr().expect("test set-up"));
    let targets = Arc::new(Mutex::new(Vec::new()));
    let seen = targets.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then as many body bytes as Content-Length says.
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(target) = text.lines().find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("x-amz-target:")
                        .map(|v| v.trim().to_owned())
                }) {
                    seen.lock().expect("test set-up").push(target);
                }
                let body = serde_json::json!({
                    "ARN": "arn:aws:secretsmanager:us-east-1:111122223333:secret:asp/hotel-AbCdEf",
                    "Name": "asp/hotel",
                    "SecretString": secret_string,
                    "VersionId": "v1",
                })
                .to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, targets)
}

fn asp_with_secret(
    fake: &asp::fake::FakeServer,
    secrets_url: &str,
    extra_env: &[(&str, &str)],
) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_asp"));
    command
        .args(["--output", "json", "trunk", "list"])
        .env("ASP_API_URL", fake.base_url())
        .env("ASP_LWA_URL", fake.lwa_url())
        .env("ASP_SECRET_NAME", "asp/hotel")
        .env("ASP_RETRY_STEP_MS", "1")
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTEST")
        .env("AWS_SECRET_ACCESS_KEY", "test-only-not-a-key")
        .env_remove("AWS_PROFILE")
        .env_remove("ASP_CLIENT_ID")
        .env_remove("ASP_CLIENT_SECRET")
        .env_remove("ASP_REFRESH_TOKEN")
        .env_remove("ASP_SP_REFRESH_TOKEN");
    for (name, value) in extra_env {
        command.env(name, value);
    }
    command
}

async fn output(mut command: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().expect("run asp"))
        .await
        .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_from_the_named_secret_and_are_never_printed() {
    let fake = fake().await;
    let (url, targets) = fake_secrets_manager(
        r#"{"client_id": "demo-client", "client_secret": "demo-secret", "refresh_token": "Atzr|demo-refresh"}"#,
    )
    .await;
    let out = output(asp_with_secret(&fake, &url, &[])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        targets.lock().unwrap().as_slice(),
        ["secretsmanager.getsecretvalue"],
        "one read per run"
    );
    for secret in ["demo-secret", "Atzr|demo-refresh"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} printed"
        );
    }

    // A set variable wins over the secret: a wrong client secret in the environment is refused
    // by Login with Amazon although the secret holds the right one.
    let out = output(asp_with_secret(
        &fake,
        &url,
        &[("ASP_CLIENT_SECRET", "wrong-secret-from-env")],
    ))
    .await;
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wrong-secret-from-env"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_with_a_wrong_key_stops_before_any_api_call() {
    let fake = fake().await;
    let (url, _) = fake_secrets_manager(r#"{"clientSecret": "demo-secret"}"#).await;
    let out = output(asp_with_secret(&fake, &url, &[])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("`clientSecret`"), "{stderr}");
    assert!(!stderr.contains("demo-secret"), "{stderr}");
    assert!(fake.with(|s| s.log.is_empty()), "no API call");
}
