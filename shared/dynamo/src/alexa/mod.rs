//! The Alexa calling stores on DynamoDB: call sessions and the Login with Amazon tokens.

pub mod session;
pub mod token;

pub use session::DynamoSessionStore;
pub use token::DynamoTokenStore;
