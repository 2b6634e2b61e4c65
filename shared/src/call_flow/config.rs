//! Deployment choices the call state machine needs: timeouts, voice, messages, targets.

use crate::error::ActionError;
use crate::sma::{AwsEndpointUri, CallTimeout, SpeakText, Voice, VoiceConnectorArn};

/// A SIP destination behind a Voice Connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferTarget {
    pub uri: AwsEndpointUri,
    pub arn: VoiceConnectorArn,
}

/// Which transfer targets are acceptable. An update or intent naming anything else is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetRules {
    /// Voice Connector (group) ARNs a transfer may use. Empty means "only the default target's".
    pub allowed_arns: Vec<String>,
    /// Used when the request names no target.
    pub default_target: Option<TransferTarget>,
}

impl TargetRules {
    /// Resolves a requested target: a named Uri with an allowed ARN (the default target's ARN
    /// when the request names none), or the default target when the request names nothing.
    pub fn resolve(
        &self,
        uri: Option<&str>,
        arn: Option<&str>,
    ) -> Result<TransferTarget, TargetRejected> {
        let uri = uri.map(str::trim).filter(|s| !s.is_empty());
        let arn = arn.map(str::trim).filter(|s| !s.is_empty());
        let Some(uri) = uri else {
            return self.default_target.clone().ok_or(TargetRejected::NoTarget);
        };
        let uri = AwsEndpointUri::parse(uri).map_err(TargetRejected::Invalid)?;
        let arn = match arn {
            Some(arn) => VoiceConnectorArn::parse(arn).map_err(TargetRejected::Invalid)?,
            None => self
                .default_target
                .as_ref()
                .map(|t| t.arn.clone())
                .ok_or(TargetRejected::NoTarget)?,
        };
        let default_arn = self.default_target.as_ref().map(|t| t.arn.as_str());
        let allowed = self.allowed_arns.iter().any(|a| a == arn.as_str())
            || default_arn == Some(arn.as_str());
        if !allowed {
            return Err(TargetRejected::ArnNotAllowed(arn.as_str().to_owned()));
        }
        Ok(TransferTarget { uri, arn })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetRejected {
    #[error("no transfer target given and no default configured")]
    NoTarget,
    #[error("invalid transfer target")]
    Invalid(#[source] ActionError),
    #[error("Voice Connector ARN {0} is not in the allowed list")]
    ArnNotAllowed(String),
}

/// What the caller hears in each situation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Messages {
    pub busy: SpeakText,
    pub unavailable: SpeakText,
    pub connect_failed: SpeakText,
    pub transfer_hold: SpeakText,
    pub transfer_failed: SpeakText,
}

impl Default for Messages {
    fn default() -> Self {
        let text = |s: &str| SpeakText::parse(s).unwrap_or_else(|_| SpeakText::goodbye());
        Self {
            busy: text(
                "All of our lines are busy right now. Please call again in a few minutes. Goodbye.",
            ),
            unavailable: text(
                "We are sorry, we cannot take your call right now. Please try again later. Goodbye.",
            ),
            connect_failed: text(
                "We are sorry, we could not connect your call. Please try again later. Goodbye.",
            ),
            transfer_hold: text("Please hold while we connect you."),
            transfer_failed: text(
                "We are sorry, we could not complete the transfer. Please try again later. Goodbye.",
            ),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowConfig {
    /// Ring time toward the Connect number.
    pub connect_timeout: CallTimeout,
    /// Ring time toward the SIP transfer target.
    pub transfer_timeout: CallTimeout,
    pub voice: Voice,
    pub messages: Messages,
    pub targets: TargetRules,
    /// Where callers go when no pair is free, the store is down, or Connect cannot be reached,
    /// and once when a transfer target fails. `None`: they hear a message and are hung up.
    pub fallback: Option<TransferTarget>,
}
