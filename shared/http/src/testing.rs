//! Loopback fakes for tests (feature `test-support`): Login with Amazon's token endpoint, Alexa's
//! signaling endpoint and a property-backend webhook receiver that verifies signatures. Each
//! binds `127.0.0.1:0`, records what it received, and can be scripted to fail.

use crate::webhook::{self, MESSAGE_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use takeback_alexa::Secret;

/// One request a fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RecordedRequest {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    pub fn form(&self) -> HashMap<String, String> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

/// Holds answers back until opened (to make environments overlap without timing).
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<(tokio::sync::Notify, AtomicBool)>);

impl Gate {
    pub fn open(&self) {
        self.0.1.store(true, Ordering::SeqCst);
        self.0.0.notify_waiters();
    }

    pub fn is_open(&self) -> bool {
        self.0.1.load(Ordering::SeqCst)
    }

    pub async fn wait(&self) {
        loop {
            let notified = self.0.0.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_open() {
                return;
            }
            notified.await;
        }
    }
}

#[derive(Debug, Clone)]
pub struct FakeResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Option<Duration>,
    /// Answer only once this gate is open.
    pub gate: Option<Gate>,
}

impl FakeResponse {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
            delay: None,
            gate: None,
        }
    }

    pub fn gated(mut self, gate: Option<Gate>) -> Self {
        self.gate = gate;
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

type Handler = Arc<dyn Fn(&RecordedRequest) -> FakeResponse + Send + Sync>;

/// A loopback HTTP/1 server calling `handler` for every request.
pub struct LoopbackServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LoopbackServer {
    pub async fn start(
        handler: impl Fn(&RecordedRequest) -> FakeResponse + Send + Sync + 'static,
    ) -> Self {
        let handler: Handler = Arc::new(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let requests: Arc<Mutex<Vec<RecordedRequest>>> = Arc::default();
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = handler.clone();
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let handler = handler.clone();
                        let recorded = recorded.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            let rec = RecordedRequest {
                                method: parts.method.to_string(),
                                path: parts.uri.path().to_owned(),
                                headers: parts.headers,
                                body,
                            };
                            lock(&recorded).push(rec.clone());
                            let answer = handler(&rec);
                            if let Some(d) = answer.delay {
                                tokio::time::sleep(d).await;
                            }
                            if let Some(g) = &answer.gate {
                                g.wait().await;
                            }
                            let mut response = Response::builder().status(
                                StatusCode::from_u16(answer.status)
                                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                            );
                            for (k, v) in &answer.headers {
                                response = response.header(*k, v);
                            }
                            Ok::<_, std::convert::Infallible>(
                                response
                                    .body(Full::new(Bytes::from(answer.body)))
                                    .expect("a valid response"),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            requests,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.requests).len()
    }

    /// Returns once `n` requests have arrived (polls; no time limit of its own).
    pub async fn wait_for_requests(&self, n: usize) {
        while self.request_count() < n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// A URL on which nothing listens (connection refused).
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    drop(listener);
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------
// Login with Amazon

#[derive(Debug, Default)]
struct LwaState {
    codes: HashSet<String>,
    refresh_tokens: HashSet<String>,
    access_tokens: HashSet<String>,
    expires_in: i64,
    rotate_refresh: bool,
    delay: Option<Duration>,
    failures: VecDeque<u16>,
    refresh_gate: Option<Gate>,
}

/// The LWA token endpoint: single-use codes, refresh tokens, `invalid_grant`, `invalid_client`.
/// Access tokens it issued stay valid until [`FakeLwa::revoke_access_tokens`].
#[derive(Clone)]
pub struct FakeLwa {
    state: Arc<Mutex<LwaState>>,
    counter: Arc<AtomicU64>,
    pub client_id: String,
    pub client_secret: Secret,
}

pub struct RunningLwa {
    pub fake: FakeLwa,
    pub server: LoopbackServer,
}

impl RunningLwa {
    /// The token URL (`LWA_TOKEN_URL`).
    pub fn token_url(&self) -> String {
        format!("{}/auth/o2/token", self.server.url())
    }

    /// Returns once `n` refresh requests have arrived.
    pub async fn wait_for_refreshes(&self, n: usize) {
        while self.grant_requests("refresh_token") < n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// How many token requests with this `grant_type` arrived.
    pub fn grant_requests(&self, grant_type: &str) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.form().get("grant_type").map(String::as_str) == Some(grant_type))
            .count()
    }
}

impl FakeLwa {
    pub async fn start(client_id: &str, client_secret: &str) -> RunningLwa {
        let fake = FakeLwa {
            state: Arc::new(Mutex::new(LwaState {
                expires_in: 3600,
                ..LwaState::default()
            })),
            counter: Arc::default(),
            client_id: client_id.to_owned(),
            client_secret: Secret::new(client_secret),
        };
        let handler_fake = fake.clone();
        let server = LoopbackServer::start(move |req| handler_fake.answer(req)).await;
        RunningLwa { fake, server }
    }

    /// A code the next exchange may redeem once.
    pub fn add_code(&self, code: &str) {
        lock(&self.state).codes.insert(code.to_owned());
    }

    /// A refresh token LWA accepts (as if linking happened earlier).
    pub fn add_refresh_token(&self, token: &str) {
        lock(&self.state).refresh_tokens.insert(token.to_owned());
    }

    /// An access token Alexa accepts (as if issued earlier).
    pub fn add_access_token(&self, token: &str) {
        lock(&self.state).access_tokens.insert(token.to_owned());
    }

    pub fn set_expires_in(&self, secs: i64) {
        lock(&self.state).expires_in = secs;
    }

    /// Answer refreshes with a new refresh token (default: none, like LWA usually does).
    pub fn rotate_refresh_tokens(&self, on: bool) {
        lock(&self.state).rotate_refresh = on;
    }

    /// Every answer waits this long (to make concurrent refreshes overlap).
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.state).delay = Some(delay);
    }

    /// Refresh answers wait until the returned gate is opened.
    pub fn hold_refreshes(&self) -> Gate {
        let gate = Gate::default();
        lock(&self.state).refresh_gate = Some(gate.clone());
        gate
    }

    /// The next answers are these HTTP errors (e.g. 500).
    pub fn fail_next(&self, status: u16, times: usize) {
        let mut s = lock(&self.state);
        for _ in 0..times {
            s.failures.push_back(status);
        }
    }

    pub fn revoke_refresh_tokens(&self) {
        lock(&self.state).refresh_tokens.clear();
    }

    /// Makes Alexa (the fake signaling endpoint) answer 401 to every token issued so far.
    pub fn revoke_access_tokens(&self) {
        lock(&self.state).access_tokens.clear();
    }

    pub fn is_valid_access_token(&self, token: &str) -> bool {
        lock(&self.state).access_tokens.contains(token)
    }

    fn issue(&self, state: &mut LwaState, with_refresh: bool) -> Value {
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let access = format!("Atza|fake-access-{n}");
        state.access_tokens.insert(access.clone());
        let mut answer = json!({
            "access_token": access,
            "token_type": "bearer",
            "expires_in": state.expires_in,
        });
        if with_refresh {
            let refresh = format!("Atzr|fake-refresh-{n}");
            state.refresh_tokens.insert(refresh.clone());
            answer["refresh_token"] = json!(refresh);
        }
        answer
    }

    fn answer(&self, req: &RecordedRequest) -> FakeResponse {
        let mut state = lock(&self.state);
        let delay = state.delay;
        let is_refresh = req.form().get("grant_type").map(String::as_str) == Some("refresh_token");
        let gate = state.refresh_gate.clone().filter(|_| is_refresh);
        let respond = |r: FakeResponse| {
            let r = r.gated(gate.clone());
            match delay {
                Some(d) => r.delayed(d),
                None => r,
            }
        };
        if let Some(status) = state.failures.pop_front() {
            return respond(FakeResponse::json(status, json!({"error": "server_error"})));
        }
        let form = req.form();
        let oauth_error = |status, error: &str| {
            FakeResponse::json(
                status,
                json!({"error": error, "error_description": format!("fake LWA: {error}")}),
            )
        };
        if req.method != "POST"
            || !req
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
        {
            return respond(oauth_error(400, "invalid_request"));
        }
        if form.get("client_id") != Some(&self.client_id)
            || form.get("client_secret").map(String::as_str) != Some(self.client_secret.expose())
        {
            return respond(oauth_error(401, "invalid_client"));
        }
        let answer = match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                let code = form.get("code").cloned().unwrap_or_default();
                if state.codes.remove(&code) {
                    FakeResponse::json(200, self.issue(&mut state, true))
                } else {
                    oauth_error(400, "invalid_grant")
                }
            }
            Some("refresh_token") => {
                let token = form.get("refresh_token").cloned().unwrap_or_default();
                if state.refresh_tokens.contains(&token) {
                    let rotate = state.rotate_refresh;
                    FakeResponse::json(200, self.issue(&mut state, rotate))
                } else {
                    oauth_error(400, "invalid_grant")
                }
            }
            _ => oauth_error(400, "unsupported_grant_type"),
        };
        respond(answer)
    }
}

// ---------------------------------------------------------------------------------------------
// Alexa signaling endpoint

#[derive(Debug, Default)]
struct SignalingState {
    failures: VecDeque<(u16, Option<String>)>,
    accepted: Vec<Value>,
}

/// `POST /v1/communications/signaling`: 401 unless the bearer token is one the fake LWA issued
/// and has not revoked; scripted failures (429 with `Retry-After`, 5xx, 400); records accepted
/// messages.
#[derive(Clone)]
pub struct FakeSignaling {
    state: Arc<Mutex<SignalingState>>,
}

pub struct RunningSignaling {
    pub fake: FakeSignaling,
    pub server: LoopbackServer,
}

impl RunningSignaling {
    /// The `apiEndpoint` to use.
    pub fn api_endpoint(&self) -> String {
        self.server.url()
    }

    pub fn accepted(&self) -> Vec<Value> {
        lock(&self.fake.state).accepted.clone()
    }

    /// `type` of each accepted message, without the namespace prefix.
    pub fn accepted_names(&self) -> Vec<String> {
        self.accepted()
            .iter()
            .map(|m| {
                m["type"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches(takeback_alexa::model::SIGNALING_PREFIX)
                    .to_owned()
            })
            .collect()
    }

    pub fn statuses(&self) -> usize {
        self.server.request_count()
    }
}

impl FakeSignaling {
    pub async fn start(lwa: &FakeLwa) -> RunningSignaling {
        let fake = FakeSignaling {
            state: Arc::default(),
        };
        let handler_fake = fake.clone();
        let lwa = lwa.clone();
        let server = LoopbackServer::start(move |req| handler_fake.answer(req, &lwa)).await;
        RunningSignaling { fake, server }
    }

    /// The next answers are `status` (`retry_after` seconds for a 429).
    pub fn fail_next(&self, status: u16, times: usize, retry_after: Option<&str>) {
        let mut s = lock(&self.state);
        for _ in 0..times {
            s.failures
                .push_back((status, retry_after.map(str::to_owned)));
        }
    }

    fn answer(&self, req: &RecordedRequest, lwa: &FakeLwa) -> FakeResponse {
        if req.method != "POST" || req.path != crate::signaling::SIGNALING_PATH {
            return FakeResponse::json(404, json!({"message": "Not found"}));
        }
        let token = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer ").map(str::to_owned))
            .unwrap_or_default();
        if !lwa.is_valid_access_token(&token) {
            return FakeResponse::json(401, json!({"message": "Invalid access token"}));
        }
        let mut state = lock(&self.state);
        if let Some((status, retry_after)) = state.failures.pop_front() {
            let mut r =
                FakeResponse::json(status, json!({"message": format!("fake failure {status}")}));
            if let Some(ra) = retry_after {
                r = r.with_header("retry-after", ra);
            }
            return r;
        }
        let body = req.json();
        let valid = body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with(takeback_alexa::model::SIGNALING_PREFIX))
            && body["sessionId"].as_str().is_some_and(|s| !s.is_empty());
        if !valid {
            return FakeResponse::json(400, json!({"message": "Invalid request"}));
        }
        state.accepted.push(body);
        FakeResponse::json(200, json!({}))
    }
}

// ---------------------------------------------------------------------------------------------
// Property backend webhook

#[derive(Debug, Default)]
struct WebhookState {
    failures: VecDeque<u16>,
    envelopes: Vec<Value>,
    bad_signatures: usize,
    delay: Option<Duration>,
}

/// The property backend's webhook: verifies `X-Signature` with the shared secret (401 when it
/// does not match), records verified envelopes, can be scripted to fail.
#[derive(Clone)]
pub struct WebhookReceiver {
    state: Arc<Mutex<WebhookState>>,
    secret: Secret,
}

pub struct RunningWebhook {
    pub receiver: WebhookReceiver,
    pub server: LoopbackServer,
}

impl RunningWebhook {
    pub fn url(&self) -> String {
        format!("{}/alexa/webhook", self.server.url())
    }

    /// Verified envelopes, in arrival order.
    pub fn envelopes(&self) -> Vec<Value> {
        lock(&self.receiver.state).envelopes.clone()
    }

    /// `message.type` names of the verified envelopes, without the namespace prefix.
    pub fn message_names(&self) -> Vec<String> {
        self.envelopes()
            .iter()
            .map(|e| {
                e["message"]["type"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches(takeback_alexa::model::SIGNALING_PREFIX)
                    .to_owned()
            })
            .collect()
    }

    pub fn bad_signatures(&self) -> usize {
        lock(&self.receiver.state).bad_signatures
    }
}

impl WebhookReceiver {
    pub async fn start(secret: &str) -> RunningWebhook {
        let receiver = WebhookReceiver {
            state: Arc::default(),
            secret: Secret::new(secret),
        };
        let handler = receiver.clone();
        let server = LoopbackServer::start(move |req| handler.answer(req)).await;
        RunningWebhook { receiver, server }
    }

    pub fn fail_next(&self, status: u16, times: usize) {
        let mut s = lock(&self.state);
        for _ in 0..times {
            s.failures.push_back(status);
        }
    }

    /// Every answer from now on waits this long (a backend that hangs).
    pub fn delay_all(&self, delay: Duration) {
        lock(&self.state).delay = Some(delay);
    }

    fn answer(&self, req: &RecordedRequest) -> FakeResponse {
        let delay = lock(&self.state).delay;
        let answer = self.verify_and_record(req);
        match delay {
            Some(d) => answer.delayed(d),
            None => answer,
        }
    }

    fn verify_and_record(&self, req: &RecordedRequest) -> FakeResponse {
        let mut state = lock(&self.state);
        let ts = req.header(TIMESTAMP_HEADER).unwrap_or_default();
        let id = req.header(MESSAGE_ID_HEADER).unwrap_or_default();
        let sig = req.header(SIGNATURE_HEADER).unwrap_or_default();
        let now = takeback_alexa::now_epoch_seconds();
        if webhook::verify(
            &self.secret,
            &ts,
            &id,
            &sig,
            &req.body,
            now,
            webhook::DEFAULT_TOLERANCE_SECS,
        )
        .is_err()
        {
            state.bad_signatures += 1;
            return FakeResponse::json(401, json!({"error": "bad signature"}));
        }
        if let Some(status) = state.failures.pop_front() {
            return FakeResponse::json(status, json!({"error": "scripted failure"}));
        }
        state.envelopes.push(req.json());
        FakeResponse::json(200, json!({"ok": true}))
    }
}

// ---------------------------------------------------------------------------------------------
// Logs

/// Everything logged through [`capture_logs`], as text.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.0)).into_owned()
    }
}

/// Routes this thread's logs through the Alexa functions' own subscriber
/// ([`crate::logging::subscriber`], `RUST_LOG` = `directives`) into the returned capture until
/// the guard is dropped.
pub fn capture_logs(directives: &str) -> (tracing::subscriber::DefaultGuard, CapturedLogs) {
    let captured = CapturedLogs::default();
    let writer = captured.clone();
    let subscriber = crate::logging::subscriber(directives, move || writer.clone());
    (
        takeback_common::telemetry::capture::set_thread_default(subscriber),
        captured,
    )
}

/// A poisoned lock only means another test thread panicked; the fakes' state is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
