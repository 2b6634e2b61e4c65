//! Core of the Amazon Chime SDK SIP media application / Amazon Connect "take back and transfer"
//! pattern, plus the Alexa Smart Properties calling pieces.
//!
//! Everything here is free of `lambda_runtime`: wire models, pure decisions, and storage behind
//! small traits (`store`) so handlers can be tested with the in-memory stores or DynamoDB Local.

pub mod alexa;
pub mod call_flow;
pub mod config;
pub mod connect;
pub mod error;
pub mod mask;
pub mod sdk;
pub mod sma;
pub mod store;
pub mod tables;
pub mod telemetry;
