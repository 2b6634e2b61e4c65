//! The DynamoDB adapter: table definitions ([`tables`]), the rolling-DNIS pair store and call
//! records ([`pairs`], implementing the `takeback-pairs` ports with the pure claim strategy),
//! pair seeding ([`seed`]) and, with the `alexa` feature, the Alexa session and token stores
//! (`alexa`).
//!
//! The same code runs in AWS and against DynamoDB Local: clients find the local server through
//! `AWS_ENDPOINT_URL_DYNAMODB`, never through a code path here.

#[cfg(feature = "alexa")]
pub mod alexa;
pub mod error;
mod item;
pub mod pairs;
pub mod seed;
pub mod tables;
#[cfg(feature = "test-support")]
pub mod testing;

pub use error::map_sdk_error;
