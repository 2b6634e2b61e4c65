//! The HTTP seam: a [`Transport`] sends one request; [`HyperTransport`] is the real one (hyper +
//! rustls on the aws-lc-rs stack the workspace already links). The shared `takeback-http`
//! client only POSTs, so this crate keeps its own small client behind this trait.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Lists of hundreds of rooms stay far below this.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;

/// A value that must never reach a log, an error or the terminal.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

#[derive(Debug, Clone)]
pub struct Incoming {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("could not build the request: {0}")]
    Request(#[source] http::Error),
    #[error("request failed: {0}")]
    Send(#[source] hyper_util::client::legacy::Error),
    #[error("reading the answer failed: {0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("TLS setup failed: {0}")]
    Tls(#[source] std::io::Error),
}

pub trait Transport: Send + Sync + 'static {
    fn send(
        &self,
        request: Outgoing,
        timeout: Duration,
    ) -> impl Future<Output = Result<Incoming, TransportError>> + Send;
}

impl<T: Transport> Transport for Arc<T> {
    fn send(
        &self,
        request: Outgoing,
        timeout: Duration,
    ) -> impl Future<Output = Result<Incoming, TransportError>> + Send {
        (**self).send(request, timeout)
    }
}

#[derive(Clone)]
pub struct HyperTransport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HyperTransport {
    pub fn new() -> Result<Self, TransportError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(TransportError::Tls)?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(Self { client })
    }
}

impl Transport for HyperTransport {
    async fn send(&self, request: Outgoing, timeout: Duration) -> Result<Incoming, TransportError> {
        let mut builder = Request::builder().method(request.method).uri(&request.url);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(Full::new(request.body))
            .map_err(TransportError::Request)?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(TransportError::Send)?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(TransportError::Body)?
                .to_bytes();
            Ok(Incoming {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| TransportError::Timeout(timeout))?
    }
}
