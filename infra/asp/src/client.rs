//! The ASP REST client: picks the token for each path, retries what is safe to retry, follows
//! pagination, and in dry-run mode prints each request (token redacted) instead of sending it.

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::auth::{Scope, TokenError, TokenProvider};
use crate::http::{Outgoing, Transport, TransportError};
use crate::retry::{RetryPolicy, retry_after, retry_delay};
use crate::wire::PAGE_SIZE;

/// One API call.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// Path and query, e.g. `/v1/addressBooks?maxResults=10`.
    pub path: String,
    pub body: Option<Value>,
    /// A create that is not idempotent: a 5xx or a lost answer may mean it was applied, so it
    /// is not repeated blindly (the next run reads before writing and adopts what it made).
    pub create_once: bool,
}

impl ApiRequest {
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            body: None,
            create_once: false,
        }
    }
    pub fn post(path: impl Into<String>, body: Value) -> Self {
        Self {
            method: Method::POST,
            path: path.into(),
            body: Some(body),
            create_once: false,
        }
    }
    pub fn create(path: impl Into<String>, body: Value) -> Self {
        Self {
            create_once: true,
            ..Self::post(path, body)
        }
    }
    pub fn put(path: impl Into<String>, body: Value) -> Self {
        Self {
            method: Method::PUT,
            path: path.into(),
            body: Some(body),
            create_once: false,
        }
    }
    pub fn delete(path: impl Into<String>) -> Self {
        Self {
            method: Method::DELETE,
            path: path.into(),
            body: None,
            create_once: false,
        }
    }
    pub fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// `GET /v1/...` — how errors name the request.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Debug, Clone)]
pub struct ApiAnswer {
    pub status: u16,
    pub body: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{request} answered HTTP {status}: {message}{}", request_id.as_deref().map(|r| format!(" (request id {r})")).unwrap_or_default())]
    Status {
        request: String,
        status: u16,
        message: String,
        request_id: Option<String>,
    },
    #[error(
        "{request}: outcome unknown after {reason}; re-run apply — it reads before it writes and adopts what this request may have created"
    )]
    Unknown { request: String, reason: String },
    #[error("{request}: gave up after {attempts} attempts ({last})")]
    Exhausted {
        request: String,
        attempts: u32,
        last: String,
    },
    #[error("{request}: {source}")]
    Transport {
        request: String,
        #[source]
        source: TransportError,
    },
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("{request}: the answer is not JSON")]
    Decode { request: String },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Request counters for the summary and the tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub writes: AtomicU64,
}

pub struct AspClient<T> {
    transport: Arc<T>,
    tokens: TokenProvider<T>,
    api_base: String,
    pbx_base: String,
    policy: RetryPolicy,
    dry_run: bool,
    pub stats: Stats,
}

/// Where requests go: `api_base` for everything, except that the PBX API is served from the
/// North America host only (it is a US feature) unless a base URL was given explicitly.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub api_base: String,
    pub pbx_base: String,
    pub lwa_url: String,
}

impl<T: Transport> AspClient<T> {
    pub fn new(
        transport: Arc<T>,
        endpoints: Endpoints,
        credentials: crate::auth::Credentials,
        policy: RetryPolicy,
        dry_run: bool,
    ) -> Self {
        let tokens = TokenProvider::new(transport.clone(), endpoints.lwa_url, credentials, policy);
        Self {
            transport,
            tokens,
            api_base: endpoints.api_base.trim_end_matches('/').to_owned(),
            pbx_base: endpoints.pbx_base.trim_end_matches('/').to_owned(),
            policy,
            dry_run,
            stats: Stats::default(),
        }
    }

    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    pub fn tokens(&self) -> &TokenProvider<T> {
        &self.tokens
    }

    fn url(&self, path: &str) -> String {
        let base = if Scope::for_path(path) == Scope::SipTrunk {
            &self.pbx_base
        } else {
            &self.api_base
        };
        format!("{base}{path}")
    }

    /// The request as text with the token redacted (for `--dry-run`).
    pub fn render(&self, request: &ApiRequest) -> String {
        let mut out = format!("{} {} HTTP/1.1\n", request.method, self.url(&request.path));
        out.push_str("Authorization: Bearer <redacted>\nAccept: application/json\n");
        if let Some(body) = &request.body {
            out.push_str("Content-Type: application/json\n\n");
            out.push_str(&serde_json::to_string_pretty(body).unwrap_or_default());
            out.push('\n');
        }
        out
    }

    /// Sends `request`; any 2xx is `Ok`, anything else an error naming the request.
    pub async fn call(&self, request: &ApiRequest) -> Result<ApiAnswer, ApiError> {
        if self.dry_run {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{}", self.render(request));
            return Ok(ApiAnswer {
                status: 0,
                body: Value::Null,
            });
        }
        let describe = request.describe();
        let scope = Scope::for_path(&request.path);
        let body = request
            .body
            .as_ref()
            .map(|b| Bytes::from(b.to_string()))
            .unwrap_or_default();
        let deadline = Instant::now() + self.policy.deadline;
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let token = self.tokens.token(scope).await?;
            let bearer =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    ApiError::Decode {
                        request: describe.clone(),
                    }
                })?;
            let mut headers = vec![
                (AUTHORIZATION, bearer),
                (ACCEPT, HeaderValue::from_static("application/json")),
            ];
            if request.body.is_some() {
                headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
            }
            let outgoing = Outgoing {
                method: request.method.clone(),
                url: self.url(&request.path),
                headers,
                body: body.clone(),
            };
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            if request.method != Method::GET && !request.path.ends_with("/query") {
                self.stats.writes.fetch_add(1, Ordering::Relaxed);
            }
            let answer = self
                .transport
                .send(outgoing, self.policy.request_timeout)
                .await;
            let answer = match answer {
                Ok(answer) => answer,
                Err(source) => {
                    if request.create_once {
                        return Err(ApiError::Unknown {
                            request: describe,
                            reason: source.to_string(),
                        });
                    }
                    if let Some(pause) = retry_delay(&self.policy, attempt, None, deadline) {
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                    return Err(ApiError::Transport {
                        request: describe,
                        source,
                    });
                }
            };
            let status = answer.status;
            if status == 401 && !refreshed {
                // Expired or revoked early: fetch a new token once.
                refreshed = true;
                self.tokens.invalidate(scope, &token).await;
                continue;
            }
            if status == 429 || status >= 500 {
                if status >= 500 && request.create_once {
                    return Err(ApiError::Unknown {
                        request: describe,
                        reason: format!("HTTP {status}"),
                    });
                }
                if let Some(pause) = retry_delay(
                    &self.policy,
                    attempt,
                    retry_after(&answer.headers),
                    deadline,
                ) {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(pause).await;
                    continue;
                }
                return Err(ApiError::Exhausted {
                    request: describe,
                    attempts: attempt,
                    last: format!("HTTP {status}"),
                });
            }
            let parsed: Value = if answer.body.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                serde_json::from_slice(&answer.body).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&answer.body).into_owned())
                })
            };
            if (200..300).contains(&status) {
                return Ok(ApiAnswer {
                    status,
                    body: parsed,
                });
            }
            let message = parsed
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| parsed.to_string().chars().take(300).collect());
            let request_id = answer
                .headers
                .get("x-amzn-requestid")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            return Err(ApiError::Status {
                request: describe,
                status,
                message,
                request_id,
            });
        }
    }

    /// `GET`, with 404 meaning "absent".
    pub async fn get_optional(&self, path: &str) -> Result<Option<Value>, ApiError> {
        match self.call(&ApiRequest::get(path)).await {
            Ok(answer) => Ok(Some(answer.body)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every result of a paginated `GET` list (`results` or `items`, following `nextToken`).
    pub async fn list_all(&self, path: &str) -> Result<Vec<Value>, ApiError> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut next: Option<String> = None;
        let mut all = Vec::new();
        loop {
            let mut page_path = format!("{path}{separator}maxResults={PAGE_SIZE}");
            if let Some(token) = &next {
                page_path.push_str(&format!("&nextToken={}", crate::wire::enc(token)));
            }
            let answer = self.call(&ApiRequest::get(page_path)).await?;
            let token = take_page(&answer.body, &mut all);
            if token.is_none() || token == next {
                return Ok(all);
            }
            next = token;
        }
    }

    /// Every result of a paginated `POST …/query` (pagination in the body).
    pub async fn query_all(&self, path: &str, filters: Value) -> Result<Vec<Value>, ApiError> {
        let mut next: Option<String> = None;
        let mut all = Vec::new();
        loop {
            let mut pagination = json!({ "maxResults": PAGE_SIZE });
            if let Some(token) = &next {
                pagination["nextToken"] = json!(token);
            }
            let body = json!({ "filters": filters, "paginationContext": pagination });
            let answer = self.call(&ApiRequest::post(path, body)).await?;
            let token = take_page(&answer.body, &mut all);
            if token.is_none() || token == next {
                return Ok(all);
            }
            next = token;
        }
    }
}

fn take_page(body: &Value, into: &mut Vec<Value>) -> Option<String> {
    for key in ["results", "items"] {
        if let Some(list) = body.get(key).and_then(Value::as_array) {
            into.extend(list.iter().cloned());
            break;
        }
    }
    body.pointer("/paginationContext/nextToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}
