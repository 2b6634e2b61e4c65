//! A loopback Lambda Runtime API for one execution environment.
//!
//! Lambda runs one invocation at a time per execution environment, and the function's runtime
//! pulls its work: `GET /2018-06-01/runtime/invocation/next` blocks until an event is there and
//! returns it with the invocation's id, deadline, function ARN and trace id in
//! `Lambda-Runtime-*` headers; the runtime answers with `POST .../invocation/{id}/response` or
//! `.../invocation/{id}/error`, and a runtime that cannot start posts `/runtime/init/error`.
//! [`RuntimeApi`] serves exactly that on `127.0.0.1` and records when each thing happened:
//! the first `/next` (the end of the function's init), when each event was handed out and when
//! its answer came back.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Where the Runtime API lives under `AWS_LAMBDA_RUNTIME_API`.
pub const PREFIX: &str = "/2018-06-01/runtime";
/// Lambda's limit on a synchronous invocation's payload (and response).
const MAX_BODY: usize = 6 * 1024 * 1024;

/// How the function ended one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `POST .../{id}/response`: the function's answer.
    Response(Vec<u8>),
    /// `POST .../{id}/error`: an invocation error (`errorType`, `errorMessage`).
    Error(Vec<u8>),
}

/// An invocation the function answered, with its instants.
#[derive(Debug, Clone)]
pub struct Answered {
    pub outcome: Outcome,
    /// When the event was queued (the invoke).
    pub queued_at: Instant,
    /// When `/next` handed it to the function (the deadline runs from here).
    pub delivered_at: Instant,
    /// When the answer arrived.
    pub answered_at: Instant,
}

impl Answered {
    /// Invoke to answer: what the caller of the function waits.
    pub fn latency(&self) -> Duration {
        self.answered_at.saturating_duration_since(self.queued_at)
    }

    /// Hand-out to answer: the function's own time for this event.
    pub fn in_function(&self) -> Duration {
        self.answered_at
            .saturating_duration_since(self.delivered_at)
    }
}

/// What waiting for an invocation produced.
#[derive(Debug, Clone)]
pub enum Waited {
    Answered(Answered),
    /// The runtime reported `/runtime/init/error` (its body) before answering.
    InitFailed(String),
    /// Nothing within the wait's limit.
    TimedOut,
}

struct Queued {
    request_id: String,
    body: Bytes,
    queued_at: Instant,
    done: oneshot::Sender<Answered>,
}

struct InFlight {
    queued_at: Instant,
    delivered_at: Instant,
    done: oneshot::Sender<Answered>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    first_next: OnceLock<Instant>,
    init_error: watch::Sender<Option<String>>,
    function_arn: String,
    timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One execution environment's Runtime API; it serves until dropped.
pub struct RuntimeApi {
    address: SocketAddr,
    shared: Arc<Shared>,
    sender: mpsc::UnboundedSender<Queued>,
    server: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// An event handed to [`RuntimeApi::invoke`]; [`Invocation::wait`] for its answer.
pub struct Invocation {
    pub request_id: String,
    pub queued_at: Instant,
    done: oneshot::Receiver<Answered>,
    init_error: watch::Receiver<Option<String>>,
}

impl Invocation {
    /// The answer, the runtime's init error, or [`Waited::TimedOut`] after `limit`.
    pub async fn wait(mut self, limit: Duration) -> Waited {
        let init_failed = async {
            match self.init_error.wait_for(Option::is_some).await {
                Ok(error) => error.clone().unwrap_or_default(),
                // The API is gone: nothing will ever answer.
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            answered = &mut self.done => match answered {
                Ok(answered) => Waited::Answered(answered),
                Err(_) => Waited::TimedOut,
            },
            error = init_failed => Waited::InitFailed(error),
            () = tokio::time::sleep(limit) => Waited::TimedOut,
        }
    }
}

impl RuntimeApi {
    /// Serves on a free loopback port for the function `function_name`, whose invocations get
    /// `timeout` (the `Lambda-Runtime-Deadline-Ms` header).
    pub async fn start(function_name: &str, timeout: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(receiver),
            in_flight: Mutex::default(),
            first_next: OnceLock::new(),
            init_error: watch::channel(None).0,
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}"),
            timeout,
        });
        let server = tokio::spawn(serve(listener, shared.clone()));
        Ok(Self {
            address,
            shared,
            sender,
            server,
        })
    }

    /// `127.0.0.1:PORT`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Queues `event` for the function's next `/next`.
    pub fn invoke(&self, event: &serde_json::Value) -> Invocation {
        let (done, receiver) = oneshot::channel();
        let queued = Queued {
            request_id: uuid::Uuid::new_v4().to_string(),
            body: Bytes::from(event.to_string()),
            queued_at: Instant::now(),
            done,
        };
        let invocation = Invocation {
            request_id: queued.request_id.clone(),
            queued_at: queued.queued_at,
            done: receiver,
            init_error: self.shared.init_error.subscribe(),
        };
        // The receiver lives in `shared` as long as `self` does.
        let _ = self.sender.send(queued);
        invocation
    }

    /// When the function first asked for work: the end of its init.
    pub fn first_next(&self) -> Option<Instant> {
        self.shared.first_next.get().copied()
    }

    /// The body of the runtime's `/runtime/init/error`, if it posted one.
    pub fn init_error(&self) -> Option<String> {
        self.shared.init_error.borrow().clone()
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(route(req, &shared).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

fn api_error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    json(
        status,
        serde_json::json!({"errorType": kind, "errorMessage": message}),
    )
}

fn accepted() -> Response<Full<Bytes>> {
    json(StatusCode::ACCEPTED, serde_json::json!({"status": "OK"}))
}

async fn route(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return api_error(StatusCode::NOT_FOUND, "NotFound", &path);
    };
    let method = req.method().clone();
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (Method::GET, ["invocation", "next"]) => next(shared).await,
        (Method::POST, ["invocation", id, kind @ ("response" | "error")]) => {
            let body = match read_body(req).await {
                Ok(body) => body,
                Err(e) => return api_error(StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLarge", &e),
            };
            let outcome = if *kind == "response" {
                Outcome::Response(body)
            } else {
                Outcome::Error(body)
            };
            answer(shared, id, outcome)
        }
        (Method::POST, ["init", "error"]) => {
            let body = read_body(req).await.unwrap_or_default();
            shared
                .init_error
                .send_replace(Some(String::from_utf8_lossy(&body).into_owned()));
            accepted()
        }
        _ => api_error(StatusCode::NOT_FOUND, "NotFound", &path),
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Vec<u8>, String> {
    Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .map_err(|e| e.to_string())
}

/// Long-polls for the next event. Cancel-safe: a runtime that goes away while waiting loses
/// nothing (the queue's `recv` is).
async fn next(shared: &Shared) -> Response<Full<Bytes>> {
    let _ = shared.first_next.set(Instant::now());
    let queued = {
        let mut queue = shared.queue.lock().await;
        queue.recv().await
    };
    let Some(queued) = queued else {
        return api_error(StatusCode::GONE, "ShuttingDown", "no more events");
    };
    let delivered_at = Instant::now();
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(shared.timeout)
        .as_millis();
    lock(&shared.in_flight).insert(
        queued.request_id.clone(),
        InFlight {
            queued_at: queued.queued_at,
            delivered_at,
            done: queued.done,
        },
    );
    let trace = uuid::Uuid::new_v4().simple().to_string();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &queued.request_id)
        .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
        .header("lambda-runtime-invoked-function-arn", &shared.function_arn)
        .header(
            "lambda-runtime-trace-id",
            format!(
                "Root=1-{}-{};Parent={};Sampled=0",
                &trace[..8],
                &trace[8..],
                &trace[..16]
            ),
        )
        .body(Full::new(queued.body))
        .unwrap_or_default()
}

fn answer(shared: &Shared, id: &str, outcome: Outcome) -> Response<Full<Bytes>> {
    let answered_at = Instant::now();
    let Some(in_flight) = lock(&shared.in_flight).remove(id) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "no invocation in flight with this id",
        );
    };
    // The waiter may have given up (a wait past its limit); the answer is then only late.
    let _ = in_flight.done.send(Answered {
        outcome,
        queued_at: in_flight.queued_at,
        delivered_at: in_flight.delivered_at,
        answered_at,
    });
    accepted()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;

    type TestClient = Client<HttpConnector, Full<Bytes>>;

    fn client() -> TestClient {
        Client::builder(TokioExecutor::new()).build_http()
    }

    async fn call(
        client: &TestClient,
        method: Method,
        url: String,
        body: &str,
    ) -> (StatusCode, http::HeaderMap, String) {
        let req = Request::builder()
            .method(method)
            .uri(url)
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let r = client.request(req).await.unwrap();
        let (parts, body) = r.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    fn header(headers: &http::HeaderMap, name: &str) -> String {
        headers.get(name).unwrap().to_str().unwrap().to_owned()
    }

    /// The loop of a runtime, once: next → answer with `kind` ("response" or "error").
    async fn one_round(address: String, kind: &'static str) -> (http::HeaderMap, String) {
        let c = client();
        let base = format!("http://{address}{PREFIX}");
        let (status, headers, event) =
            call(&c, Method::GET, format!("{base}/invocation/next"), "").await;
        assert_eq!(status, StatusCode::OK);
        let id = header(&headers, "lambda-runtime-aws-request-id");
        let (status, _, _) = call(
            &c,
            Method::POST,
            format!("{base}/invocation/{id}/{kind}"),
            &format!("{{\"seen\":{event}}}"),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        (headers, event)
    }

    #[tokio::test]
    async fn next_then_response_is_recorded_with_its_instants() {
        let api = RuntimeApi::start("fn-under-test", Duration::from_secs(5))
            .await
            .unwrap();
        assert!(api.first_next().is_none());
        let invocation = api.invoke(&serde_json::json!({"InvocationEventType": "HANGUP"}));
        let request_id = invocation.request_id.clone();
        let runtime = tokio::spawn(one_round(api.address(), "response"));
        let Waited::Answered(answered) = invocation.wait(Duration::from_secs(30)).await else {
            panic!("no answer");
        };
        let (headers, event) = runtime.await.unwrap();
        assert_eq!(event, r#"{"InvocationEventType":"HANGUP"}"#);
        assert_eq!(
            header(&headers, "lambda-runtime-aws-request-id"),
            request_id
        );
        assert_eq!(
            header(&headers, "lambda-runtime-invoked-function-arn"),
            "arn:aws:lambda:us-east-1:123456789012:function:fn-under-test"
        );
        assert!(header(&headers, "lambda-runtime-trace-id").starts_with("Root=1-"));
        let deadline: u128 = header(&headers, "lambda-runtime-deadline-ms")
            .parse()
            .unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        assert!(
            deadline > now && deadline <= now + 5_000,
            "{deadline} vs {now}"
        );
        assert_eq!(
            answered.outcome,
            Outcome::Response(br#"{"seen":{"InvocationEventType":"HANGUP"}}"#.to_vec())
        );
        let first_next = api.first_next().unwrap();
        assert!(first_next <= answered.delivered_at);
        assert!(answered.queued_at <= answered.delivered_at);
        assert!(answered.delivered_at <= answered.answered_at);
    }

    #[tokio::test]
    async fn an_error_post_and_an_init_error_are_told_apart() {
        let api = RuntimeApi::start("f", Duration::from_secs(5))
            .await
            .unwrap();
        let invocation = api.invoke(&serde_json::json!({}));
        tokio::spawn(one_round(api.address(), "error"));
        let Waited::Answered(answered) = invocation.wait(Duration::from_secs(30)).await else {
            panic!("no answer");
        };
        assert!(matches!(answered.outcome, Outcome::Error(ref b) if b.starts_with(b"{\"seen\"")));

        let waiting = api.invoke(&serde_json::json!({}));
        let c = client();
        let (status, _, _) = call(
            &c,
            Method::POST,
            format!("http://{}{PREFIX}/init/error", api.address()),
            r#"{"errorType":"Runtime.ImportModuleError"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let Waited::InitFailed(body) = waiting.wait(Duration::from_secs(30)).await else {
            panic!("init error not seen");
        };
        assert!(body.contains("ImportModuleError"), "{body}");
        assert_eq!(api.init_error().as_deref(), Some(body.as_str()));
    }

    #[tokio::test]
    async fn unknown_ids_and_paths_are_refused_and_an_unanswered_wait_ends() {
        let api = RuntimeApi::start("f", Duration::from_secs(5))
            .await
            .unwrap();
        let c = client();
        let base = format!("http://{}{PREFIX}", api.address());
        let (status, _, body) = call(
            &c,
            Method::POST,
            format!("{base}/invocation/nope/response"),
            "{}",
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("InvalidRequestID"), "{body}");
        let (status, _, _) = call(&c, Method::GET, format!("{base}/elsewhere"), "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Nobody asks for the event: the wait gives up instead of hanging.
        let unanswered = api.invoke(&serde_json::json!({}));
        assert!(matches!(
            unanswered.wait(Duration::from_millis(20)).await,
            Waited::TimedOut
        ));
    }
}
