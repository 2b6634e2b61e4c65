//! JSON log set-up of the Alexa functions: the same as every function's
//! ([`takeback_common::telemetry`]), re-exported here so the Alexa crates keep one name for it.
//! That set-up caps what the libraries underneath may log at INFO whatever the level says,
//! because `lambda_runtime`, the AWS SDK and the HTTP/TLS stack print raw events, tokens and
//! whole requests at TRACE (see [`CAPPED_TARGETS`]).

pub use takeback_common::telemetry::{CAPPED_TARGETS, caps, init_json_logs, subscriber};
