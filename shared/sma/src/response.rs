//! The Lambda's answer to the SIP media application.

use std::collections::BTreeMap;

use serde::Serialize;

use super::action::Action;
use crate::ActionError;

/// At most 10 actions per response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Actions(Vec<Action>);

impl Actions {
    pub const MAX: usize = 10;

    pub fn new(actions: Vec<Action>) -> Result<Self, ActionError> {
        if actions.len() > Self::MAX {
            return Err(ActionError::TooManyActions(actions.len()));
        }
        Ok(Self(actions))
    }

    pub fn none() -> Self {
        Self(Vec::new())
    }

    pub fn as_slice(&self) -> &[Action] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Transaction attributes to store for the call: never empty (an empty map erases the call's
/// state) and at most 10 keys (the documented limits contradict each other; 10 is safe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TransactionAttributes(BTreeMap<String, String>);

impl TransactionAttributes {
    pub const MAX_KEYS: usize = 10;

    pub fn new(map: BTreeMap<String, String>) -> Result<Self, ActionError> {
        if map.is_empty() {
            return Err(ActionError::EmptyAttributes);
        }
        if map.len() > Self::MAX_KEYS {
            return Err(ActionError::TooManyAttributes(map.len()));
        }
        Ok(Self(map))
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SmaResponse {
    schema_version: &'static str,
    actions: Actions,
    /// Omitted (not `{}`) when the call's state is unchanged, so the service keeps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_attributes: Option<TransactionAttributes>,
}

impl SmaResponse {
    pub fn new(actions: Actions, transaction_attributes: Option<TransactionAttributes>) -> Self {
        Self {
            schema_version: "1.0",
            actions,
            transaction_attributes,
        }
    }

    pub fn actions(&self) -> &[Action] {
        self.actions.as_slice()
    }

    pub fn transaction_attributes(&self) -> Option<&TransactionAttributes> {
        self.transaction_attributes.as_ref()
    }
}
