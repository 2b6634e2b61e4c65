//! `call-bench` (`make bench-calls`): the SMA handler as it runs in Lambda, side by side with a
//! model of the sample it replaces, in one run.
//!
//! Each function is a separate process behind its own loopback Lambda Runtime API
//! ([`runtime_api`]), exactly one invocation at a time as in a Lambda execution environment:
//!
//! - **ours**: the release `sma-handler` binary (the host build of the code `cargo lambda
//!   build` packages as `bootstrap`), with `lambda_runtime` pulling its events;
//! - **sample**: `sample_model/runtime.py` — a minimal custom-runtime loop (next → handler →
//!   response/error) that stands in for the managed Python runtime — importing
//!   `sample_model/sma_handler.py`, a model of the sample's handler written from its published
//!   description: a module-level boto3 DynamoDB client, `Query` of the `in_use` index with
//!   `Limit=1`, a conditional `UpdateItem`, a new query after a lost condition, busy when the
//!   query finds nothing, and on `HANGUP` an unconditional `UpdateItem` back to free, on the
//!   pair named in the call's transaction attributes. It keeps boto3's default retries: legacy
//!   mode, which for DynamoDB is 10 attempts with exponential backoff from 50 ms, no jitter
//!   (botocore's `data/_retry.json`). The managed runtime's own start-up (its bootstrap and
//!   interpreter set-up before the handler module is imported) is not modelled, so the
//!   sample's cold start here is if anything shorter than in Lambda.
//!
//! Both talk to the same DynamoDB Local through one counting proxy (the soak's
//! [`soak::proxy::FaultProxy`]) on fresh tables defined as the project deploys them, seeded
//! with the project's seeder; the sample's model uses only the pairs table and its `in_use`
//! index, with the seed's attribute names. The runs ([`mod@bench`]):
//!
//! - **cold**: N fresh processes per side, alternating, each started with a `NEW_INBOUND_CALL`
//!   already queued: spawn → first `/next` (init) and spawn → first answer (the first claim
//!   included), and the process's peak RSS (`VmHWM`);
//! - **warm**: one process per side, a few untimed calls, then M timed `NEW_INBOUND_CALL`s
//!   (invoke → answer), each followed by the caller's untimed `HANGUP`; DynamoDB requests per
//!   call from the proxy, by operation; the process's peak RSS at the end;
//! - **throttled**: the proxy throttles a share of all requests (`ThrottlingException`, never
//!   forwarded) while K calls run over a few environments; each answer is claimed, busy, or
//!   refused (an invocation error, an answer after the 5 s timeout, or "unavailable").
//!
//! Each run gets fresh tables, with about one pair per call plus spares: the benchmark's calls
//! hang up before Connect looks their pair up, and a pair freed that way rests 15 s before our
//! claims give it to another transaction. Where the time goes: the proxy also sums how long
//! DynamoDB Local took (`dynamodb_mean_ms` per warm call, `first_call_dynamodb_p50_ms` of a
//! cold one) and counts requests by operation. On loopback there is no network; the
//! `--dynamodb-delay-ms` option makes the proxy hold every request that long first, as the way
//! to a regional endpoint would (and the first request of each process would also pay a TLS
//! handshake there, on both sides alike, which this does not model).
//!
//! Progress goes to stderr; the last stdout line is one JSON object with every figure of both
//! sides and `warm_ratio`, `cold_ratio` and `rss_ratio` (ours / sample).

pub mod answer;
pub mod bench;
pub mod events;
pub mod function;
pub mod runtime_api;
pub mod setup;
pub mod stats;
