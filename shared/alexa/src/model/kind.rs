//! Every CallSignaling message name.

use super::SIGNALING_PREFIX;
use super::parts::SdpType;
use std::fmt;

/// Every CallSignaling message name, in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Alexa → skill: an Alexa device calls out (SDP offer).
    InitiateOutboundCall,
    /// Cloud → Alexa: a property device calls an Alexa device (SDP offer).
    InitiateInboundCall,
    CallRinging,
    CallInProgress,
    /// The callee answered (SDP answer).
    CallAccepted,
    /// Re-negotiation offer (hold, resume, update).
    CallUpdate,
    /// Re-negotiation answer.
    CallUpdateResponse,
    CallEnded,
    CallRingingAck,
    CallInProgressAck,
    CallAcceptedAck,
    CallUpdateAck,
}

impl MessageKind {
    pub const ALL: [MessageKind; 12] = [
        MessageKind::InitiateOutboundCall,
        MessageKind::InitiateInboundCall,
        MessageKind::CallRinging,
        MessageKind::CallInProgress,
        MessageKind::CallAccepted,
        MessageKind::CallUpdate,
        MessageKind::CallUpdateResponse,
        MessageKind::CallEnded,
        MessageKind::CallRingingAck,
        MessageKind::CallInProgressAck,
        MessageKind::CallAcceptedAck,
        MessageKind::CallUpdateAck,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MessageKind::InitiateOutboundCall => "InitiateOutboundCall",
            MessageKind::InitiateInboundCall => "InitiateInboundCall",
            MessageKind::CallRinging => "CallRinging",
            MessageKind::CallInProgress => "CallInProgress",
            MessageKind::CallAccepted => "CallAccepted",
            MessageKind::CallUpdate => "CallUpdate",
            MessageKind::CallUpdateResponse => "CallUpdateResponse",
            MessageKind::CallEnded => "CallEnded",
            MessageKind::CallRingingAck => "CallRingingAck",
            MessageKind::CallInProgressAck => "CallInProgressAck",
            MessageKind::CallAcceptedAck => "CallAcceptedAck",
            MessageKind::CallUpdateAck => "CallUpdateAck",
        }
    }

    /// `Alexa.Comms.CallSignaling.<Name>`.
    pub fn full_type(self) -> String {
        format!("{SIGNALING_PREFIX}{}", self.name())
    }

    /// Accepts the full type or the bare name.
    pub fn parse(value: &str) -> Option<Self> {
        let name = value.strip_prefix(SIGNALING_PREFIX).unwrap_or(value);
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn is_ack(self) -> bool {
        matches!(
            self,
            MessageKind::CallRingingAck
                | MessageKind::CallInProgressAck
                | MessageKind::CallAcceptedAck
                | MessageKind::CallUpdateAck
        )
    }

    /// The SDP this message must carry, if any.
    pub fn required_sdp(self) -> Option<SdpType> {
        match self {
            MessageKind::InitiateOutboundCall
            | MessageKind::InitiateInboundCall
            | MessageKind::CallUpdate => Some(SdpType::Offer),
            MessageKind::CallAccepted | MessageKind::CallUpdateResponse => Some(SdpType::Answer),
            _ => None,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
