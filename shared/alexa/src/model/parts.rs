//! The parts of a CallSignaling message: open enums (unknown values kept as `Other`) and the
//! strict structs a validated message is made of.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SdpType {
    #[serde(rename = "OFFER")]
    Offer,
    #[serde(rename = "ANSWER")]
    Answer,
    #[serde(untagged)]
    Other(String),
}

impl SdpType {
    pub fn as_str(&self) -> &str {
        match self {
            SdpType::Offer => "OFFER",
            SdpType::Answer => "ANSWER",
            SdpType::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RenegotiationType {
    #[serde(rename = "CALL_HOLD")]
    CallHold,
    #[serde(rename = "CALL_RESUME")]
    CallResume,
    #[serde(rename = "CALL_UPDATE")]
    CallUpdate,
    #[serde(untagged)]
    Other(String),
}

impl RenegotiationType {
    pub fn as_str(&self) -> &str {
        match self {
            RenegotiationType::CallHold => "CALL_HOLD",
            RenegotiationType::CallResume => "CALL_RESUME",
            RenegotiationType::CallUpdate => "CALL_UPDATE",
            RenegotiationType::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallResultCode {
    #[serde(rename = "SUCCESS")]
    Success,
    #[serde(rename = "INTERNAL_ERROR")]
    InternalError,
    /// Also seen spelled `UNAUTHORISED`; always sent as `UNAUTHORIZED`.
    #[serde(rename = "UNAUTHORIZED", alias = "UNAUTHORISED")]
    Unauthorized,
    #[serde(rename = "DEVICE_BUSY")]
    DeviceBusy,
    #[serde(rename = "SESSION_TIMEOUT")]
    SessionTimeout,
    #[serde(untagged)]
    Other(String),
}

impl CallResultCode {
    pub fn as_str(&self) -> &str {
        match self {
            CallResultCode::Success => "SUCCESS",
            CallResultCode::InternalError => "INTERNAL_ERROR",
            CallResultCode::Unauthorized => "UNAUTHORIZED",
            CallResultCode::DeviceBusy => "DEVICE_BUSY",
            CallResultCode::SessionTimeout => "SESSION_TIMEOUT",
            CallResultCode::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParticipantIdType {
    #[serde(rename = "COMMUNICATION_PROFILE_ID")]
    CommunicationProfileId,
    #[serde(rename = "PHONE_NUMBER")]
    PhoneNumber,
    #[serde(rename = "RAW_ADDRESS")]
    RawAddress,
    #[serde(untagged)]
    Other(String),
}

// ---------------------------------------------------------------------------------------------
// Strict parts

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdpDetails {
    #[serde(rename = "type")]
    pub sdp_type: SdpType,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantId {
    #[serde(rename = "type")]
    pub id_type: ParticipantIdType,
    pub value: String,
}

/// One entry of a message's `participants` (an Alexa device, a property device, a number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallParticipant {
    pub id: ParticipantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_originator: Option<bool>,
}

impl CallParticipant {
    /// For logs: phone numbers masked, other ids as they are (opaque profile ids / addresses).
    pub fn log_label(&self) -> String {
        match self.id.id_type {
            ParticipantIdType::PhoneNumber => {
                format!(
                    "PHONE_NUMBER:{}",
                    takeback_common::mask::mask_number(&self.id.value)
                )
            }
            ParticipantIdType::CommunicationProfileId => "COMMUNICATION_PROFILE_ID".to_owned(),
            ParticipantIdType::RawAddress => "RAW_ADDRESS".to_owned(),
            ParticipantIdType::Other(ref t) => t.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallResult {
    pub code: CallResultCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl CallResult {
    pub fn new(code: CallResultCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: Some(message.into()),
        }
    }
}
