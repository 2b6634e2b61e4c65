//! The `Arguments` of `UpdateSipMediaApplicationCall`: `connect-transfer` writes them, the SMA
//! handler reads them back from `CALL_UPDATE_REQUESTED` (`ActionData.Parameters.Arguments`).
//! One set of names for both sides.

use std::collections::BTreeMap;

use crate::target::TransferTarget;

/// Argument names of the `UpdateSipMediaApplicationCall` request the transfer function sends;
/// the SMA handler reads the same names from `CALL_UPDATE_REQUESTED`
/// (`ActionData.Parameters.Arguments`).
pub mod names {
    /// Always `"true"`.
    pub const TRANSFER: &str = "Transfer";
    /// Request-URI user part of the `AWS` bridge endpoint (1–30 chars).
    pub const TRANSFER_TARGET: &str = "TransferTarget";
    /// Voice Connector (group) ARN of the bridge endpoint.
    pub const TRANSFER_TARGET_ARN: &str = "TransferTargetArn";
    /// The Connect contact id, for correlating logs (absent when the event had none).
    pub const CONTACT_ID: &str = "ContactId";
}

/// The `Arguments` map for `UpdateSipMediaApplicationCall` (4 of the 20 entries allowed).
pub fn update_arguments(
    target: &TransferTarget,
    contact_id: Option<&str>,
) -> BTreeMap<String, String> {
    let mut args = BTreeMap::from([
        (names::TRANSFER.to_owned(), "true".to_owned()),
        (
            names::TRANSFER_TARGET.to_owned(),
            target.uri.as_str().to_owned(),
        ),
        (
            names::TRANSFER_TARGET_ARN.to_owned(),
            target.arn.as_str().to_owned(),
        ),
    ]);
    if let Some(contact_id) = contact_id {
        args.insert(names::CONTACT_ID.to_owned(), contact_id.to_owned());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_arguments_use_the_agreed_names() {
        let policy = crate::target::TransferPolicy::new(
            "1234",
            "arn:aws:chime:us-east-1:111122223333:vc/abc",
            Vec::<String>::new(),
            None,
        )
        .unwrap();
        let target = policy.resolve(None, None).unwrap().target;
        let args = update_arguments(&target, Some("contact-1"));
        assert_eq!(args.get("Transfer").map(String::as_str), Some("true"));
        assert_eq!(args.get("TransferTarget").map(String::as_str), Some("1234"));
        assert_eq!(
            args.get("TransferTargetArn").map(String::as_str),
            Some("arn:aws:chime:us-east-1:111122223333:vc/abc")
        );
        assert_eq!(args.get("ContactId").map(String::as_str), Some("contact-1"));
        assert!(!update_arguments(&target, None).contains_key("ContactId"));
    }
}
