//! A local emulator of the three AWS services around the take-back-and-transfer call flow, so
//! the whole call runs on one machine through the real handlers:
//!
//! - the **SIP media application** ([`sma`]): takes inbound calls, invokes the SMA handler with
//!   the events the service sends, executes the returned actions, keeps `TransactionAttributes`
//!   as the service does, and rejects (with `INVALID_LAMBDA_RESPONSE`, and a scenario failure)
//!   any response the service would refuse ([`rules`]);
//! - **Amazon Connect** ([`connect`], [`contact_flow_interpreter`]): a contact per answered
//!   bridge to a Connect number, running `infra/contact-flow.json` — the file users import into
//!   Connect — block by block, invoking the lookup and transfer Lambdas with the block's
//!   invocation attributes;
//! - the **Chime SDK Voice API** ([`chime_api`]): a loopback HTTP server answering
//!   `UpdateSipMediaApplicationCall` (202, or 404 once the call has ended), reached by the
//!   transfer function's real `aws-sdk-chimesdkvoice` client through
//!   `AWS_ENDPOINT_URL_CHIME_SDK_VOICE`; an accepted update raises `CALL_UPDATE_REQUESTED`.
//!
//! Handlers run in process ([`backend`]: the crates' `handle` functions, configured by the same
//! `Config::from_env` code as their `main.rs`, from an environment the emulator composes), or
//! behind the Lambda Invoke API of `cargo lambda watch` / `sam local start-lambda`
//! ([`invoke`]). The store is in memory, or DynamoDB (Local) with tables created from the shared
//! definitions (`takeback_dynamo::tables`) and seeded by the shared seeding code.
//!
//! # Time: what is simulated and what is real
//!
//! The emulator keeps a **virtual clock** ([`simulate`]): ring times, prompts, the caller's talk time,
//! the delay before `CALL_UPDATE_REQUESTED` and `CallTimeoutSeconds` are events on a queue, and
//! the clock jumps from one instant to the next, so a 30 s ring costs nothing. It is not tokio's
//! paused time: the handlers talk to a real DynamoDB Local over TCP and the SDK's own timeouts
//! must keep running on the real clock, which paused time would break. The in-process stores
//! keep the *virtual* time, though ([`backend::VirtualClock`]): claims, leases and the rest of a
//! pair after an unbound release are stamped with the instant the loop is at, as are the events'
//! `StartTimeInMilliseconds`. On the wall clock they would see a run's minutes as seconds, and
//! the 15 s rest would keep a pair from the next callers for many virtual minutes. (Functions
//! behind `--lambda-url` keep their own clocks.)
//!
//! **Handler invocations take no virtual time** — the clock stands still while they run — and
//! their latency is measured on the real clock: held against the SMA's 5 s Lambda timeout and
//! the flow block's `InvocationTimeLimitSeconds`, and reported as p50/p99. All events due at the
//! same instant run concurrently (one future per call or contact), so simultaneous callers
//! really race for pairs in the store. The real service's retry after a 5 s timeout is not
//! triggered by slow handlers (that is only flagged); it is played on purpose by the scenario
//! knob `redeliver`, which delivers an event twice to test idempotency. The first answer is
//! discarded and the retry follows 5 s later; events that happen in between (a hangup, an
//! update, a finished action) wait for the retry's answer and then go out in order, because the
//! service invokes the handler for one transaction at a time (see below).
//!
//! Prompt lengths are modelled at ~16 characters a second; answer/ring times come from the
//! scenario. Audio, DTMF signalling, SIP and media are not emulated.
//!
//! # What the service leaves undocumented
//!
//! - Whether invocations of one transaction can overlap. The emulator assumes they cannot: the
//!   service waits for the answer to one event (retrying it after a timeout) before it sends the
//!   next, since each answer carries the `TransactionAttributes` the next event must see. A
//!   retried event therefore never arrives after a later one.
//! - Whether a `Hangup` of a bridged LEG-B produces `HANGUP` (LEG-B), `ACTION_SUCCESSFUL`
//!   (Hangup), or both, and in which order: the scenario knob `sma.hangup_events`
//!   (`hangup`, `hangup_then_success` — the default, `success_then_hangup`, `success`).
//! - The participants of events: legs are listed with their `Status`; a ringing leg is not
//!   listed; a leg that failed to answer disappears (as in the documented failure example).
//! - A `Hangup` of a leg that is no longer connected answers `ACTION_FAILED`
//!   (`InvalidActionParameter`).
//! - After an invalid response the service sends `INVALID_LAMBDA_RESPONSE` (error at the top
//!   level); a second invalid response ends the call.
//!
//! # Scenarios
//!
//! Files in `events/scenarios/` ([`scenario`]): the calls, how the caller, Connect and the SIP
//! target behave, the knobs above, and what must happen (where each caller ended up, pairs all
//! free at the end, no wrong-caller transfer, no invalid response). The binary exits non-zero
//! when any expectation fails. A load mode plays N copies of a scenario's first call at a given
//! arrival rate and prints a summary ([`report::LoadSummary`]).
//!
//! A wrong-caller transfer is an accepted `UpdateSipMediaApplicationCall` whose `ContactId`
//! belongs to a contact of another call than the transaction it updates: the emulator knows
//! which call each contact was bridged from.
//!
//! # Running it
//!
//! ```text
//! infra/demo.sh                       # make demo: DynamoDB Local, seeded tables, timelines
//! infra/scenarios.sh                  # make scenarios: every scenario, DynamoDB Local + memory
//! cargo run -p emulator -- events/scenarios/happy-path.json          # one scenario, in memory
//! cargo run -p emulator -- --json events/scenarios                   # for machines
//! cargo run --release -p emulator -- --store dynamodb --lookup-mode release \
//!     --load 300 --rate 2,2.2,2.4 events/scenarios/happy-path.json   # load mode
//! ```
//!
//! The functions' environment comes from `infra/local.env` (`--env-file`), the file `make
//! watch` gives `cargo lambda watch`, plus each scenario's `env`; in process the emulator uses
//! per-run tables (or `--pairs-table`/`--calls-table`).
//!
//! Against `cargo lambda watch` (or `sam local start-lambda`), the functions and the emulator
//! must agree on the fake Chime API's address and the tables; with `infra/local.env` they do:
//!
//! ```text
//! eval "$(infra/dynamodb-local.sh env)"; make seed
//! cargo lambda watch -P 9000 --env-file infra/local.env \
//!   --env-var AWS_ENDPOINT_URL_CHIME_SDK_VOICE=http://127.0.0.1:9200 &
//! AWS_ENDPOINT_URL_CHIME_SDK_VOICE=http://127.0.0.1:9200 \
//!   cargo run -p emulator -- --lambda-url http://127.0.0.1:9000 events/scenarios
//! ```
//!
//! (When `infra/local.env` itself sets `AWS_ENDPOINT_URL_CHIME_SDK_VOICE`, both sides take it
//! from there.) The tables are the env file's `PAIRS_TABLE`/`CALLS_TABLE`; the emulator seeds the
//! scenario's pairs into them and checks them for leaks. Scenarios whose `env` differs from the
//! env file are skipped in this mode (the functions' environment belongs to their server).
//! `cargo lambda watch` compiles and starts function processes on first use: the first
//! invocations can exceed the SMA's 5 s and are flagged; run once to warm up.
//!
//! # Modules
//!
//! The modules form no cycle (`tests/module_graph.rs` checks it), bottom up:
//!
//! - [`model`] (the shared vocabulary: constants, ids, timeline lines, the events the SMA and
//!   Connect sides schedule), [`chaos`] (seeded randomness, random Chime API faults), [`rules`],
//!   [`scenario`] — they import nothing or only each other downwards;
//! - [`world`] (queue, index, timeline), [`invoke`], [`contact_flow_interpreter`], [`backend`];
//! - [`run`] (what one run runs against), then [`sma`], [`connect`], [`chime_api`] (which each
//!   see the run, never each other);
//! - [`simulate`] (the event loop over SMA calls and contacts), then [`report`].

pub mod backend;
pub mod chaos;
pub mod chime_api;
pub mod connect;
pub mod contact_flow_interpreter;
pub mod invoke;
pub mod model;
pub mod report;
pub mod rules;
pub mod run;
pub mod scenario;
pub mod simulate;
pub mod sma;
pub mod world;
