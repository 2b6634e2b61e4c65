//! A loopback fake of the Chime SDK Voice API's `UpdateSipMediaApplicationCall`:
//! `POST /sip-media-applications/{id}/calls/{transactionId}` answered with scripted statuses,
//! error bodies the SDK classifies (`x-amzn-errortype` + `{"Message":...}`), and every request
//! recorded so tests can assert what was sent.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
        }
    }

    pub fn slow(status: u16, delay: Duration) -> Self {
        Self { status, delay }
    }
}

#[derive(Debug, Clone)]
pub struct RecordedUpdate {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub signed: bool,
}

#[derive(Debug)]
struct State {
    script: Mutex<VecDeque<Reply>>,
    default: Reply,
    requests: Mutex<Vec<RecordedUpdate>>,
}

pub struct FakeChime {
    pub url: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeChime {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeChime {
    /// Answers every request with `default` unless a scripted reply is queued.
    pub async fn start(default: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("test set-up");
        let url = format!("http://{}", listener.local_addr().expect("test set-up"));
        let state = Arc::new(State {
            script: Mutex::new(VecDeque::new()),
            default,
            requests: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(serve(listener, state.clone()));
        Self { url, state, task }
    }

    /// Replies used, in order, before falling back to the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .script
            .lock()
            .expect("test set-up")
            .extend(replies);
    }

    pub fn requests(&self) -> Vec<RecordedUpdate> {
        self.state.requests.lock().expect("test set-up").clone()
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(state.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let signed = req.headers().contains_key("authorization");
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    state
        .requests
        .lock()
        .expect("test set-up")
        .push(RecordedUpdate {
            method: method.clone(),
            path: path.clone(),
            body,
            signed,
        });
    let reply = state
        .script
        .lock()
        .expect("test set-up")
        .pop_front()
        .unwrap_or(state.default);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }

    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let well_formed = method == "POST"
        && segments.len() == 4
        && segments[0] == "sip-media-applications"
        && segments[2] == "calls";
    let (status, error_type, body) = if !well_formed {
        (
            404,
            Some("NotFoundException"),
            json!({"Message": format!("no route {method} {path}")}),
        )
    } else {
        match reply.status {
            202 => (
                202,
                None,
                json!({"SipMediaApplicationCall": {"TransactionId": segments[3]}}),
            ),
            400 => (
                400,
                Some("BadRequestException"),
                json!({"Message": "Bad request"}),
            ),
            403 => (
                403,
                Some("ForbiddenException"),
                json!({"Message": "Forbidden"}),
            ),
            404 => (
                404,
                Some("NotFoundException"),
                json!({"Message": "Call not found"}),
            ),
            429 => (
                429,
                Some("ThrottledClientException"),
                json!({"Message": "Rate exceeded"}),
            ),
            503 => (
                503,
                Some("ServiceUnavailableException"),
                json!({"Message": "Unavailable"}),
            ),
            other => (
                other,
                Some("ServiceFailureException"),
                json!({"Message": "Internal failure"}),
            ),
        }
    };
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-requestid", "fake-request-id");
    if let Some(error_type) = error_type {
        response = response.header("x-amzn-errortype", error_type);
    }
    Ok(response
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("test set-up"))
}
