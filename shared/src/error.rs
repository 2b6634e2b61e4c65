//! Crate-wide error types.
