//! Storage ports of Alexa calling, with in-memory implementations (unit tests, the emulator);
//! `takeback-dynamo` implements the same traits on DynamoDB.

pub mod session;
pub mod token;

pub use session::{
    MAX_WRITE_ATTEMPTS, MemorySessionStore, PutOutcome, Recorded, SessionStore, mark_delivered,
    record, record_refusal, roll_back,
};
pub use token::{MemoryTokenStore, RefreshLease, StoredTokens, TokenPlan, TokenStore};
