//! How the emulator reaches the handlers: in process (the crates' `handle` functions, the
//! default), or through the Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`)
//! that `cargo lambda watch` and `sam local start-lambda` serve.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::model::Function;

/// An in-process handler: the event in, the response (or the function's error) out.
pub type Handler = Arc<dyn Fn(Value) -> BoxFuture<'static, Result<Value, String>> + Send + Sync>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    /// The function ran and failed (an `Err` from the handler, `X-Amz-Function-Error`).
    #[error("function error: {0}")]
    Function(String),
    /// The function could not be reached or answered something unreadable.
    #[error("invoke failed: {0}")]
    Transport(String),
}

#[derive(Clone)]
pub enum Invoker {
    InProcess(Arc<HashMap<Function, Handler>>),
    Lambda(Arc<LambdaApi>),
}

pub struct LambdaApi {
    base: String,
    names: HashMap<Function, String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl LambdaApi {
    /// `base` like `http://127.0.0.1:9000`; `names` overrides the default function names
    /// (`sma-handler`, `connect-lookup`, `connect-transfer`: the binary names `cargo lambda
    /// watch` serves).
    pub fn new(base: &str, names: HashMap<Function, String>) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            names,
            client,
        }
    }

    pub fn name(&self, f: Function) -> String {
        self.names
            .get(&f)
            .cloned()
            .unwrap_or_else(|| f.label().to_owned())
    }

    async fn invoke(&self, f: Function, payload: Value) -> Result<Value, InvokeError> {
        let url = format!(
            "{}/2015-03-31/functions/{}/invocations",
            self.base,
            self.name(f)
        );
        let body =
            serde_json::to_vec(&payload).map_err(|e| InvokeError::Transport(e.to_string()))?;
        let request = http::Request::post(&url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| InvokeError::Transport(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| InvokeError::Transport(format!("{url}: {e}")))?;
        let status = response.status();
        let function_error = response
            .headers()
            .get("x-amz-function-error")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| InvokeError::Transport(e.to_string()))?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(kind) = function_error {
            return Err(InvokeError::Function(format!("{kind}: {text}")));
        }
        if !status.is_success() {
            return Err(InvokeError::Transport(format!(
                "{url} answered {status}: {text}"
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            InvokeError::Transport(format!("unreadable response from {url}: {e}: {text}"))
        })
    }
}

impl Invoker {
    pub async fn invoke(&self, f: Function, payload: Value) -> Result<Value, InvokeError> {
        match self {
            Self::InProcess(handlers) => match handlers.get(&f) {
                Some(h) => h(payload).await.map_err(InvokeError::Function),
                None => Err(InvokeError::Transport(format!(
                    "no in-process handler for {}",
                    f.label()
                ))),
            },
            Self::Lambda(api) => api.invoke(f, payload).await,
        }
    }

    pub fn describe(&self, f: Function) -> String {
        match self {
            Self::InProcess(_) => f.label().to_owned(),
            Self::Lambda(api) => api.name(f),
        }
    }
}
