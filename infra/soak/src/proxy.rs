//! A fault-injecting loopback HTTP proxy for the DynamoDB API.
//!
//! It sits between the handlers' DynamoDB client (`AWS_ENDPOINT_URL_DYNAMODB` points at it) and
//! DynamoDB Local, and for every request draws one [`DdbFault`] by the configured
//! [`DdbFaultRates`]:
//!
//! - `throttled`: `400 ThrottlingException`, the request never reaches DynamoDB;
//! - `error_before`: `500 InternalServerError`, the request never reaches DynamoDB;
//! - `error_after`: the request is forwarded and applied, then the answer is replaced by
//!   `500 InternalServerError` (the write happened, the client does not know);
//! - `latency`: the request is held back for a delay beyond the SDK's attempt timeout
//!   (900 ms), then forwarded (and applied even when the client has given up by then).
//!
//! Faults are only drawn while the proxy is [`FaultProxy::set_enabled`]: the soak sets up
//! tables and reads the final state through the same proxy with faults off. Everything is
//! counted by kind ([`ProxyCounts`]).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use emulator::chaos::ChaosRng;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use tokio::net::TcpListener;

/// Largest request or response body the proxy buffers (DynamoDB's item limit is 400 KB).
const MAX_BODY: usize = 16 * 1024 * 1024;
const JSON_1_0: &str = "application/x-amz-json-1.0";

/// A fault the proxy injects into one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DdbFault {
    Throttled,
    ErrorBefore,
    ErrorAfter,
    Latency,
}

impl DdbFault {
    pub fn label(self) -> &'static str {
        match self {
            Self::Throttled => "throttled_400",
            Self::ErrorBefore => "error_500_before_write",
            Self::ErrorAfter => "error_500_after_write",
            Self::Latency => "latency_beyond_budget",
        }
    }

    /// Whether the request reaches DynamoDB.
    pub fn forwards(self) -> bool {
        matches!(self, Self::ErrorAfter | Self::Latency)
    }
}

/// Probability of each fault per request (their sum ≤ 1), and the injected latency range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DdbFaultRates {
    pub throttled: f64,
    pub error_before: f64,
    pub error_after: f64,
    pub latency: f64,
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
}

impl Default for DdbFaultRates {
    fn default() -> Self {
        Self {
            throttled: 0.0,
            error_before: 0.0,
            error_after: 0.0,
            latency: 0.0,
            latency_min_ms: 1_000,
            latency_max_ms: 2_500,
        }
    }
}

impl DdbFaultRates {
    /// Draws the fault for one request, if any, and its delay (latency faults only).
    pub fn choose(&self, rng: &mut ChaosRng) -> Option<(DdbFault, Duration)> {
        let x = rng.unit();
        let mut edge = 0.0;
        for (rate, fault) in [
            (self.throttled, DdbFault::Throttled),
            (self.error_before, DdbFault::ErrorBefore),
            (self.error_after, DdbFault::ErrorAfter),
            (self.latency, DdbFault::Latency),
        ] {
            edge += rate.max(0.0);
            if x < edge {
                let delay = if fault == DdbFault::Latency {
                    Duration::from_millis(rng.range(self.latency_min_ms, self.latency_max_ms))
                } else {
                    Duration::ZERO
                };
                return Some((fault, delay));
            }
        }
        None
    }
}

/// What went through the proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProxyCounts {
    pub requests: u64,
    /// Requests while faults were enabled.
    pub requests_under_faults: u64,
    pub injected: BTreeMap<&'static str, u64>,
    /// Injected faults by DynamoDB operation (`X-Amz-Target` without its prefix).
    pub injected_by_operation: BTreeMap<String, u64>,
    /// The upstream (DynamoDB Local) could not be reached or answered something unreadable.
    pub upstream_errors: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("upstream {0:?} is not an http://host:port URL")]
    Upstream(String),
    #[error("cannot read the listener's address: {0}")]
    Listener(#[source] std::io::Error),
}

struct Shared {
    upstream: String,
    rates: DdbFaultRates,
    rng: Mutex<ChaosRng>,
    enabled: AtomicBool,
    counts: Mutex<ProxyCounts>,
    /// Every request by DynamoDB operation, faults or not (kept out of [`ProxyCounts`] so the
    /// soak's figures stay as they are).
    by_operation: Mutex<BTreeMap<String, u64>>,
    /// Time spent waiting for the upstream, over all forwarded requests.
    upstream_micros: AtomicU64,
    /// A delay every request waits before it is answered or forwarded (0: none), standing in
    /// for the network between a function and DynamoDB.
    fixed_delay_micros: AtomicU64,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A running proxy; it serves until the process exits.
#[derive(Clone)]
pub struct FaultProxy {
    shared: Arc<Shared>,
    endpoint: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FaultProxy {
    /// Serves on `listener`, forwarding to `upstream` (`http://127.0.0.1:PORT`). Faults start
    /// disabled.
    pub fn start(
        listener: TcpListener,
        upstream: &str,
        rates: DdbFaultRates,
        seed: u64,
    ) -> Result<Self, ProxyError> {
        let upstream = upstream.trim_end_matches('/').to_owned();
        if !upstream.starts_with("http://") || upstream.len() <= "http://".len() {
            return Err(ProxyError::Upstream(upstream));
        }
        let addr = listener.local_addr().map_err(ProxyError::Listener)?;
        let shared = Arc::new(Shared {
            upstream,
            rates,
            rng: Mutex::new(ChaosRng::new(seed)),
            enabled: AtomicBool::new(false),
            counts: Mutex::default(),
            by_operation: Mutex::default(),
            upstream_micros: AtomicU64::new(0),
            fixed_delay_micros: AtomicU64::new(0),
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        tokio::spawn(serve(listener, shared.clone()));
        Ok(Self {
            shared,
            endpoint: format!("http://{addr}"),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn set_enabled(&self, on: bool) {
        self.shared.enabled.store(on, Ordering::SeqCst);
    }

    pub fn counts(&self) -> ProxyCounts {
        lock(&self.shared.counts).clone()
    }

    /// Requests by DynamoDB operation (`X-Amz-Target` without its prefix), faults or not.
    pub fn requests_by_operation(&self) -> BTreeMap<String, u64> {
        lock(&self.shared.by_operation).clone()
    }

    /// Makes every request wait `delay` first, faults or not (`Duration::ZERO`: no delay, the
    /// default).
    pub fn set_fixed_delay(&self, delay: Duration) {
        self.shared.fixed_delay_micros.store(
            u64::try_from(delay.as_micros()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Total time forwarded requests spent upstream (DynamoDB Local's share of a call).
    pub fn upstream_time(&self) -> Duration {
        Duration::from_micros(self.shared.upstream_micros.load(Ordering::SeqCst))
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
                async move { Ok::<_, Infallible>(handle(req, &shared).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A DynamoDB error answer (awsJson1.0: the type in `__type`).
pub fn ddb_error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
        "message": message,
    })
    .to_string();
    Response::builder()
        .status(status)
        .header("content-type", JSON_1_0)
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string())
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

fn throttled() -> Response<Full<Bytes>> {
    ddb_error(
        StatusCode::BAD_REQUEST,
        "ThrottlingException",
        "Rate of requests exceeds the allowed throughput. (injected by the soak proxy)",
    )
}

fn internal_error() -> Response<Full<Bytes>> {
    ddb_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerError",
        "Internal server error (injected by the soak proxy)",
    )
}

async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let operation = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(|t| t.rsplit('.').next().unwrap_or(t).to_owned())
        .unwrap_or_else(|| "-".into());
    *lock(&shared.by_operation)
        .entry(operation.clone())
        .or_default() += 1;
    let fixed_delay = shared.fixed_delay_micros.load(Ordering::SeqCst);
    if fixed_delay > 0 {
        tokio::time::sleep(Duration::from_micros(fixed_delay)).await;
    }
    let enabled = shared.enabled.load(Ordering::SeqCst);
    let fault = if enabled {
        shared.rates.choose(&mut lock(&shared.rng))
    } else {
        None
    };
    {
        let mut c = lock(&shared.counts);
        c.requests += 1;
        if enabled {
            c.requests_under_faults += 1;
        }
        if let Some((f, _)) = fault {
            *c.injected.entry(f.label()).or_default() += 1;
            *c.injected_by_operation.entry(operation).or_default() += 1;
        }
    }
    match fault {
        Some((DdbFault::Throttled, _)) => return throttled(),
        Some((DdbFault::ErrorBefore, _)) => return internal_error(),
        Some((DdbFault::Latency, delay)) => tokio::time::sleep(delay).await,
        Some((DdbFault::ErrorAfter, _)) | None => {}
    }
    let forwarded_at = std::time::Instant::now();
    let answer = forward(req, shared).await;
    shared.upstream_micros.fetch_add(
        u64::try_from(forwarded_at.elapsed().as_micros()).unwrap_or(u64::MAX),
        Ordering::SeqCst,
    );
    match (answer, fault) {
        (Ok(_), Some((DdbFault::ErrorAfter, _))) => internal_error(),
        (Ok(r), _) => r,
        (Err(e), _) => {
            lock(&shared.counts).upstream_errors += 1;
            ddb_error(
                StatusCode::BAD_GATEWAY,
                "ServiceUnavailable",
                &format!("soak proxy: upstream failed: {e}"),
            )
        }
    }
}

/// Hop-by-hop headers (and the length, which the buffered body sets again).
fn passes(name: &http::HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "content-length" | "upgrade"
    )
}

async fn forward(req: Request<Incoming>, shared: &Shared) -> Result<Response<Full<Bytes>>, String> {
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("request body: {e}"))?
        .to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut up = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{}{path}", shared.upstream));
    for (name, value) in parts.headers.iter().filter(|(n, _)| passes(n)) {
        up = up.header(name, value);
    }
    let up = up
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    let response = shared
        .client
        .request(up)
        .await
        .map_err(|e| format!("{}: {e}", shared.upstream))?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("response body: {e}"))?
        .to_bytes();
    let mut down = Response::builder().status(parts.status);
    for (name, value) in parts.headers.iter().filter(|(n, _)| passes(n)) {
        down = down.header(name, value);
    }
    down.body(Full::new(body))
        .map_err(|e| format!("response: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::time::Instant;

    /// An upstream that counts requests and answers `{"ok":true}` with the request's target.
    async fn upstream() -> (String, Arc<AtomicU64>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let counter = counter.clone();
                        async move {
                            counter.fetch_add(1, Ordering::SeqCst);
                            let target = req
                                .headers()
                                .get("x-amz-target")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let text = format!(
                                "{{\"ok\":true,\"target\":\"{target}\",\"echo\":{}}}",
                                String::from_utf8_lossy(&body)
                            );
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (format!("http://{addr}"), hits)
    }

    async fn proxy(upstream: &str, rates: DdbFaultRates) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = FaultProxy::start(listener, upstream, rates, 1).unwrap();
        p.set_enabled(true);
        p
    }

    async fn post(endpoint: &str) -> (StatusCode, String) {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let req = Request::post(format!("{endpoint}/"))
            .header("x-amz-target", "DynamoDB_20120810.UpdateItem")
            .header("content-type", JSON_1_0)
            .body(Full::new(Bytes::from_static(b"{\"TableName\":\"t\"}")))
            .unwrap();
        let r = client.request(req).await.unwrap();
        let status = r.status();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn only(f: impl Fn(&mut DdbFaultRates)) -> DdbFaultRates {
        let mut r = DdbFaultRates {
            latency_min_ms: 300,
            latency_max_ms: 300,
            ..DdbFaultRates::default()
        };
        f(&mut r);
        r
    }

    #[tokio::test]
    async fn without_faults_requests_pass_through() {
        let (up, hits) = upstream().await;
        let p = proxy(&up, DdbFaultRates::default()).await;
        let (status, body) = post(p.endpoint()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("\"target\":\"DynamoDB_20120810.UpdateItem\""),
            "{body}"
        );
        assert!(body.contains("\"echo\":{\"TableName\":\"t\"}"), "{body}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(p.counts().requests, 1);
        assert!(p.counts().injected.is_empty());
    }

    #[tokio::test]
    async fn throttling_never_reaches_the_upstream() {
        let (up, hits) = upstream().await;
        let p = proxy(&up, only(|r| r.throttled = 1.0)).await;
        let (status, body) = post(p.endpoint()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body.contains("com.amazonaws.dynamodb.v20120810#ThrottlingException"),
            "{body}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        assert_eq!(p.counts().injected.get("throttled_400"), Some(&1));
        assert_eq!(p.counts().injected_by_operation.get("UpdateItem"), Some(&1));
    }

    #[tokio::test]
    async fn error_before_write_never_reaches_the_upstream() {
        let (up, hits) = upstream().await;
        let p = proxy(&up, only(|r| r.error_before = 1.0)).await;
        let (status, body) = post(p.endpoint()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("InternalServerError"), "{body}");
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn error_after_write_applies_it_and_loses_the_answer() {
        let (up, hits) = upstream().await;
        let p = proxy(&up, only(|r| r.error_after = 1.0)).await;
        let (status, body) = post(p.endpoint()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.contains("\"ok\":true"), "{body}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(p.counts().injected.get("error_500_after_write"), Some(&1));
    }

    #[tokio::test]
    async fn latency_delays_then_forwards() {
        let (up, hits) = upstream().await;
        let p = proxy(&up, only(|r| r.latency = 1.0)).await;
        let started = Instant::now();
        let (status, _) = post(p.endpoint()).await;
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn requests_are_counted_by_operation() {
        let (up, _) = upstream().await;
        let p = proxy(&up, only(|r| r.throttled = 1.0)).await;
        post(p.endpoint()).await;
        p.set_enabled(false);
        post(p.endpoint()).await;
        assert_eq!(p.requests_by_operation().get("UpdateItem"), Some(&2));
        assert_eq!(p.requests_by_operation().len(), 1);
        // Only the second request was forwarded; the throttled one never waited upstream.
        assert!(p.upstream_time() > Duration::ZERO);
    }

    #[tokio::test]
    async fn a_fixed_delay_holds_every_request() {
        let (up, hits) = upstream().await;
        let p = proxy(&up, DdbFaultRates::default()).await;
        p.set_fixed_delay(Duration::from_millis(150));
        let started = Instant::now();
        let (status, _) = post(p.endpoint()).await;
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn disabled_faults_are_not_drawn() {
        let (up, hits) = upstream().await;
        let p = proxy(&up, only(|r| r.throttled = 1.0)).await;
        p.set_enabled(false);
        let (status, _) = post(p.endpoint()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(p.counts().requests_under_faults, 0);
    }

    #[test]
    fn rates_pick_each_fault_in_proportion() {
        let rates = DdbFaultRates {
            throttled: 0.1,
            error_before: 0.05,
            error_after: 0.05,
            latency: 0.02,
            latency_min_ms: 1000,
            latency_max_ms: 1200,
        };
        let mut rng = ChaosRng::new(3);
        let mut n: BTreeMap<DdbFault, u32> = BTreeMap::new();
        for _ in 0..50_000 {
            if let Some((f, d)) = rates.choose(&mut rng) {
                *n.entry(f).or_default() += 1;
                if f == DdbFault::Latency {
                    assert!((1000..=1200).contains(&(d.as_millis() as u64)));
                } else {
                    assert_eq!(d, Duration::ZERO);
                }
            }
        }
        let get = |f| n.get(&f).copied().unwrap_or(0);
        assert!((4_500..5_500).contains(&get(DdbFault::Throttled)), "{n:?}");
        assert!(
            (2_200..2_800).contains(&get(DdbFault::ErrorBefore)),
            "{n:?}"
        );
        assert!((2_200..2_800).contains(&get(DdbFault::ErrorAfter)), "{n:?}");
        assert!((800..1_200).contains(&get(DdbFault::Latency)), "{n:?}");
        assert!(DdbFault::ErrorAfter.forwards() && !DdbFault::Throttled.forwards());
    }

    #[test]
    fn a_bad_upstream_is_refused() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            assert!(
                FaultProxy::start(
                    listener,
                    "https://dynamodb.amazonaws.com",
                    DdbFaultRates::default(),
                    1
                )
                .is_err()
            );
        });
    }
}
