//! `soak`: thousands of calls through the real handlers and DynamoDB Local, under faults.
//!
//! The emulator ([`emulator`]) plays the SIP media application, Amazon Connect (running
//! `infra/contact-flow.json`) and the Chime SDK Voice API; the three call-path handlers run in
//! process against DynamoDB Local reached through [`proxy::FaultProxy`], which throttles, fails
//! before or after a write, and delays requests beyond the SDK's budgets. The fake Chime API
//! answers 429/5xx or times out ([`emulator::chaos::ChimeChaos`]); each call re-delivers events,
//! reports LEG-B hangups in any order and races Connect's and the caller's hangups against the
//! transfer ([`plan`]). The calls run in batches on a small pool of pairs (fresh tables per
//! batch, `LOOKUP_MODE` alternating `keep` / `release`), and after each batch the
//! [`invariants`] are checked on the emulator's records and the pairs table.
//!
//! `make soak` (`infra/soak.sh`) starts DynamoDB Local, runs the binary and stops the server by
//! PID; the binary prints its figures as one JSON line, last, and exits 1 when an invariant
//! failed.

pub mod invariants;
pub mod plan;
pub mod proxy;
pub mod run;
