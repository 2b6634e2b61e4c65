//! SIP media application wire models: the invocation event (tolerant), actions and the
//! response (strict).

pub mod action;
pub mod event;
pub mod response;

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
