//! What every layer of the project shares and nothing else: configuration read from the
//! environment ([`config`]), the storage error kinds and cause-chain rendering ([`error`]),
//! phone-number masking for logs ([`mask`]), outcome metrics in CloudWatch embedded metric
//! format ([`metrics`]) and the JSON log set-up ([`telemetry`]).
//!
//! No AWS SDK, HTTP stack or async runtime: the pure protocol crates depend on this one.

pub mod config;
pub mod error;
pub mod mask;
pub mod metrics;
pub mod telemetry;

pub use config::{ConfigError, Env};
pub use error::{StoreError, chain};
