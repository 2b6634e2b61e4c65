//! A loopback fake of the Chime SDK Voice API's `UpdateSipMediaApplicationCall`:
//! `POST /sip-media-applications/{sipMediaApplicationId}/calls/{transactionId}` with
//! `{"Arguments": {string: string}}` (0–20 entries).
//!
//! Answers like the real API (restJson1: the error type in `x-amzn-ErrorType` and the body):
//! `202 {"SipMediaApplicationCall":{"TransactionId":"…"}}`; `404 NotFoundException` for an unknown
//! SIP media application or a call that has ended; `400 BadRequestException` for a malformed
//! body; scripted faults (`ThrottledClientException`, ...) when the scenario asks for them, and
//! random ones (429, 5xx, answers later than the client waits) when a soak installed
//! [`crate::chaos::ChimeChaos`] on the run. An accepted update raises `CALL_UPDATE_REQUESTED` on
//! the SMA side after the scenario's delay, asynchronously, as the real service does.
//!
//! The transfer function's real `aws-sdk-chimesdkvoice` client reaches this server through
//! `AWS_ENDPOINT_URL_CHIME_SDK_VOICE` (see `main.rs`).

use std::convert::Infallible;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::chaos::{CHIME_TIMEOUT_DELAY, ChimeChaos, ChimeFault};
use crate::model::{Actor, CallEvent, Stamp, UpdateRecord, lock};
use crate::run::Run;

/// The run the server answers for (one scenario at a time).
#[derive(Default)]
pub struct ChimeApi {
    current: RwLock<Option<Arc<Run>>>,
}

impl ChimeApi {
    pub fn set(&self, run: Option<Arc<Run>>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = run;
    }

    fn run(&self) -> Option<Arc<Run>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Serves until the process exits.
pub async fn serve(listener: TcpListener, api: Arc<ChimeApi>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let api = api.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, Infallible>(handle(req, &api).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    let body = json!({"Code": kind.trim_end_matches("Exception"), "Message": message}).to_string();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-ErrorType", kind)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

fn fault_response(kind: &str) -> Response<Full<Bytes>> {
    let status = match kind {
        "ThrottledClientException" => StatusCode::TOO_MANY_REQUESTS,
        "ServiceUnavailableException" => StatusCode::SERVICE_UNAVAILABLE,
        "ServiceFailureException" => StatusCode::INTERNAL_SERVER_ERROR,
        "ForbiddenException" => StatusCode::FORBIDDEN,
        "UnauthorizedClientException" => StatusCode::UNAUTHORIZED,
        "BadRequestException" => StatusCode::BAD_REQUEST,
        "NotFoundException" => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, kind, "injected by the scenario")
}

async fn handle(req: Request<Incoming>, api: &ChimeApi) -> Response<Full<Bytes>> {
    let Some(run) = api.run() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "no scenario is running",
        );
    };
    let path: Vec<String> = req
        .uri()
        .path()
        .trim_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect();
    let method = req.method().clone();
    let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                "unreadable body",
            );
        }
    };
    let (sma_id, txn) = match (method, path.as_slice()) {
        (Method::POST, [a, sma, c, txn]) if a == "sip-media-applications" && c == "calls" => {
            (sma.clone(), txn.clone())
        }
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "NotFoundException",
                "the emulator serves only UpdateSipMediaApplicationCall",
            );
        }
    };
    let arguments = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => match v.get("Arguments") {
            None => serde_json::Map::new(),
            Some(Value::Object(m)) if m.len() <= 20 && m.values().all(Value::is_string) => {
                m.clone()
            }
            Some(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BadRequestException",
                    "Arguments must map at most 20 strings to strings",
                );
            }
        },
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                "the body is not JSON",
            );
        }
    };
    let world = &run.world;
    let at = world.now();
    let contact = arguments
        .get("ContactId")
        .and_then(Value::as_str)
        .and_then(|id| lock(&world.contacts).get(id).copied());
    let live = lock(&world.live).get(&txn).cloned();
    let call_for_log = live.as_ref().map(|l| l.call).or(contact.map(|c| c.call));
    let stamp = |call: usize| Stamp {
        call,
        at,
        seq: contact.map(|c| c.seq).unwrap_or(u64::MAX),
    };
    let args_text = arguments
        .iter()
        .filter(|(k, _)| k.as_str() != "ContactId")
        .map(|(k, v)| {
            let v = v.as_str().unwrap_or_default();
            format!(
                "{k}={}",
                if v.starts_with("arn:") {
                    v.rsplit(':').next().unwrap_or(v)
                } else {
                    v
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");

    if let Some(kind) = lock(&world.chime_faults).pop_front() {
        if let Some(call) = call_for_log {
            let mut e = stamp(call).entry(
                Actor::ChimeApi,
                format!("UpdateSipMediaApplicationCall → {kind} (scripted fault)"),
            );
            e.problem = true;
            world.log(e);
        }
        return fault_response(&kind);
    }
    let chaos = lock(&world.chime_chaos)
        .as_mut()
        .and_then(ChimeChaos::next_fault);
    if let Some(fault) = chaos {
        if let Some(call) = call_for_log {
            let mut e = stamp(call).entry(
                Actor::ChimeApi,
                format!(
                    "UpdateSipMediaApplicationCall → {} (random fault)",
                    fault.label()
                ),
            );
            e.problem = true;
            world.log(e);
        }
        if let Some(kind) = fault.error_kind() {
            if fault == ChimeFault::TimeoutBeforeApply {
                tokio::time::sleep(CHIME_TIMEOUT_DELAY).await;
            }
            return fault_response(kind);
        }
    }
    let late_answer = chaos == Some(ChimeFault::TimeoutAfterApply);
    if sma_id != world.sma_id {
        if let Some(call) = call_for_log {
            let mut e = stamp(call).entry(Actor::ChimeApi, format!("UpdateSipMediaApplicationCall for unknown SIP media application {sma_id:?} → 404"));
            e.problem = true;
            world.log(e);
        }
        return error(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            "SIP media application not found",
        );
    }
    let Some(live) = live.filter(|l| !l.ended) else {
        if let Some(call) = call_for_log {
            world.log(stamp(call).entry(
                Actor::ChimeApi,
                format!("UpdateSipMediaApplicationCall({args_text}) → 404: the call has ended"),
            ));
        }
        return error(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            "the SIP media application call was not found",
        );
    };
    let from_call = contact.map(|c| c.call);
    if let Some(from) = from_call.filter(|c| *c != live.call) {
        world.finding(
            Some(live.call),
            at,
            "transfer.wrong_caller",
            format!(
                "contact of call {} updated the transaction of call {}",
                from + 1,
                live.call + 1
            ),
        );
        let mut e = stamp(from).entry(
            Actor::ChimeApi,
            format!(
                "UpdateSipMediaApplicationCall targets the transaction of ANOTHER call ({})",
                live.call + 1
            ),
        );
        e.problem = true;
        world.log(e);
    }
    lock(&world.updates).push(UpdateRecord {
        t_ms: at,
        transaction_id: txn.clone(),
        call: live.call,
        contact_id: arguments
            .get("ContactId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        from_call,
        arguments: arguments.clone(),
    });
    world.log(stamp(live.call).entry(
        Actor::ChimeApi,
        format!(
            "UpdateSipMediaApplicationCall({args_text}) → 202; CALL_UPDATE_REQUESTED in {} ms",
            live.update_delay_ms
        ),
    ));
    world.call_event(
        at + live.update_delay_ms,
        live.call,
        CallEvent::UpdateRequested { arguments },
    );
    if late_answer {
        // Applied; the client has given up by the time the answer comes.
        tokio::time::sleep(CHIME_TIMEOUT_DELAY).await;
    }
    let body = json!({"SipMediaApplicationCall": {"TransactionId": txn}}).to_string();
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}
