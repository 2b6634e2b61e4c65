//! The SIP media application side, pure: the invocation event (tolerant), actions and the
//! response (strict), the call state machine that decides between them ([`call_machine`]), and
//! the transfer-target policy both the SMA handler and `connect-transfer` apply ([`target`]).
//!
//! No AWS SDK, HTTP stack or async runtime: the store work a decision needs is described by
//! [`call_machine::StoreWork`] and done by the handler through the `takeback-pairs` ports.

pub mod action;
pub mod call_machine;
pub mod error;
pub mod event;
pub mod response;
pub mod target;
pub mod update_args;

pub use error::ActionError;
pub use update_args::update_arguments;

pub use action::{
    Action, AwsEndpointUri, BridgeEndpoint, CallAndBridge, CallTimeout, E164, HangupCode, LegRef,
    SipHeaders, Speak, SpeakText, Voice, VoiceConnectorArn,
};
pub use event::{
    ActionData, ActionType, CallDetails, InvocationEventType, LegTag, NotAnSmaEvent, Participant,
    SmaEvent,
};
pub use response::{Actions, SmaResponse, TransactionAttributes};

#[cfg(test)]
mod tests;
