//! What the two Connect functions need from the event, or the precise reason it is missing.

use crate::event::ConnectEvent;
use takeback_pairs::PairKey;

/// Block parameter names (`LambdaInvocationAttributes` keys) the functions read.
pub mod param {
    /// The SMA number that called Connect: `$.CustomerEndpoint.Address`.
    pub const CALLING_NUMBER: &str = "CallingNumber";
    /// The Connect number that was dialled: `$.SystemEndpoint.Address`.
    pub const CALLED_NUMBER: &str = "CalledNumber";
    /// The SMA transaction id, usually `$.Attributes.transaction_id`.
    pub const TRANSACTION_ID: &str = "TransactionId";
    /// Optional per-call target Uri (e.g. a room extension the caller keyed in).
    pub const TRANSFER_TARGET: &str = "TransferTarget";
    /// Optional per-call Voice Connector (group) ARN.
    pub const TRANSFER_TARGET_ARN: &str = "TransferTargetArn";
}

/// The contact attribute our flow stores the lookup's transaction id in; the transfer function
/// falls back to it when the block passes no `TransactionId` parameter.
pub const TRANSACTION_ID_ATTRIBUTE: &str = "transaction_id";

/// Why an event cannot be served. `reason()` is the `reason` value returned to the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("no CallingNumber parameter and no CustomerEndpoint.Address")]
    MissingCallingNumber,
    #[error("no CalledNumber parameter and no SystemEndpoint.Address")]
    MissingCalledNumber,
    #[error("the event has no ContactData.ContactId")]
    MissingContactId,
    #[error("no TransactionId parameter, no transaction_id attribute and no number pair")]
    MissingTransaction,
    #[error("TransactionId is not 1-256 characters of A-Za-z0-9-_.:")]
    InvalidTransactionId,
}

impl RequestError {
    pub fn reason(self) -> &'static str {
        match self {
            Self::MissingCallingNumber => "missing_calling_number",
            Self::MissingCalledNumber => "missing_called_number",
            Self::MissingContactId => "missing_contact_id",
            Self::MissingTransaction => "missing_transaction",
            Self::InvalidTransactionId => "invalid_transaction_id",
        }
    }
}

/// Where a number came from; logged so a flow author sees when the fallback was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberSource {
    Parameter,
    /// The block did not pass the parameter; the event's endpoint address was used instead
    /// (it is what the parameter is documented to hold).
    Endpoint,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairRequest {
    pub pair: PairKey,
    pub calling_source: NumberSource,
    pub called_source: NumberSource,
}

/// The rolling-DNIS pair: `CallingNumber` (else `$.CustomerEndpoint.Address`) is the SMA
/// number, `CalledNumber` (else `$.SystemEndpoint.Address`) the Connect number.
pub fn pair_request(event: &ConnectEvent) -> Result<PairRequest, RequestError> {
    let (sma_number, calling_source) = with_fallback(
        event.parameter(param::CALLING_NUMBER),
        event.customer_address(),
    )
    .ok_or(RequestError::MissingCallingNumber)?;
    let (connect_number, called_source) = with_fallback(
        event.parameter(param::CALLED_NUMBER),
        event.system_address(),
    )
    .ok_or(RequestError::MissingCalledNumber)?;
    Ok(PairRequest {
        pair: PairKey {
            sma_number: sma_number.to_owned(),
            connect_number: connect_number.to_owned(),
        },
        calling_source,
        called_source,
    })
}

fn with_fallback<'a>(
    parameter: Option<&'a str>,
    endpoint: Option<&'a str>,
) -> Option<(&'a str, NumberSource)> {
    parameter
        .map(|p| (p, NumberSource::Parameter))
        .or_else(|| endpoint.map(|e| (e, NumberSource::Endpoint)))
}

/// Everything the lookup needs: the pair and the contact to bind to the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupRequest {
    pub pair: PairRequest,
    pub contact_id: String,
}

pub fn lookup_request(event: &ConnectEvent) -> Result<LookupRequest, RequestError> {
    let pair = pair_request(event)?;
    let contact_id = event
        .contact_id()
        .ok_or(RequestError::MissingContactId)?
        .to_owned();
    Ok(LookupRequest { pair, contact_id })
}

/// How the transfer identifies the SMA call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallRef {
    /// From the `TransactionId` parameter or the `transaction_id` contact attribute.
    Transaction(String),
    /// Found through the live claim on this pair (the seed's way). Needs the contact id, which
    /// the lookup binds to the claim.
    Pair {
        pair: PairRequest,
        contact_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    pub call: CallRef,
    pub contact_id: Option<String>,
    /// Per-call `TransferTarget`, not yet validated.
    pub target: Option<String>,
    /// Per-call `TransferTargetArn`, not yet validated.
    pub target_arn: Option<String>,
}

/// Order of preference for the call: `TransactionId` parameter, `transaction_id` attribute,
/// then the number pair (parameters, else endpoints).
pub fn transfer_request(event: &ConnectEvent) -> Result<TransferRequest, RequestError> {
    let contact_id = event.contact_id().map(str::to_owned);
    let direct = event
        .parameter(param::TRANSACTION_ID)
        .or_else(|| event.attribute(TRANSACTION_ID_ATTRIBUTE));
    let call = match direct {
        Some(txn) if is_plausible_transaction_id(txn) => CallRef::Transaction(txn.to_owned()),
        Some(_) => return Err(RequestError::InvalidTransactionId),
        None => {
            let pair = pair_request(event).map_err(|_| RequestError::MissingTransaction)?;
            let contact_id = contact_id.clone().ok_or(RequestError::MissingContactId)?;
            CallRef::Pair { pair, contact_id }
        }
    };
    Ok(TransferRequest {
        call,
        contact_id,
        target: event.parameter(param::TRANSFER_TARGET).map(str::to_owned),
        target_arn: event
            .parameter(param::TRANSFER_TARGET_ARN)
            .map(str::to_owned),
    })
}

/// SMA transaction ids are UUIDs; accept a little more, but nothing that could smuggle
/// whitespace, path separators or control characters into the API request.
pub fn is_plausible_transaction_id(value: &str) -> bool {
    (1..=256).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn event(parameters: Value, attributes: Value, endpoints: bool) -> ConnectEvent {
        let endpoint = |n: &str| {
            if endpoints {
                json!({"Address": n, "Type": "TELEPHONE_NUMBER"})
            } else {
                Value::Null
            }
        };
        ConnectEvent::from_value(json!({"Details": {
            "ContactData": {
                "ContactId": "contact-1",
                "Attributes": attributes,
                "CustomerEndpoint": endpoint("+18005557777"),
                "SystemEndpoint": endpoint("+18005551111"),
            },
            "Parameters": parameters,
        }}))
    }

    #[test]
    fn lookup_uses_parameters() {
        let e = event(
            json!({"CallingNumber": "+18005550001", "CalledNumber": "+18005550002"}),
            json!({}),
            true,
        );
        let r = lookup_request(&e).unwrap();
        assert_eq!(r.pair.pair.sma_number, "+18005550001");
        assert_eq!(r.pair.pair.connect_number, "+18005550002");
        assert_eq!(r.pair.calling_source, NumberSource::Parameter);
        assert_eq!(r.contact_id, "contact-1");
    }

    #[test]
    fn lookup_falls_back_to_endpoints() {
        let r = lookup_request(&event(json!({}), json!({}), true)).unwrap();
        assert_eq!(r.pair.pair.sma_number, "+18005557777");
        assert_eq!(r.pair.pair.connect_number, "+18005551111");
        assert_eq!(r.pair.called_source, NumberSource::Endpoint);
    }

    #[test]
    fn lookup_without_parameters_or_endpoints_names_what_is_missing() {
        assert_eq!(
            lookup_request(&event(json!({}), json!({}), false)),
            Err(RequestError::MissingCallingNumber)
        );
        assert_eq!(
            lookup_request(&event(json!({"CallingNumber": "+1800"}), json!({}), false)),
            Err(RequestError::MissingCalledNumber)
        );
    }

    #[test]
    fn lookup_needs_a_contact_id() {
        let e = ConnectEvent::from_value(json!({"Details": {"Parameters": {
            "CallingNumber": "+18005557777", "CalledNumber": "+18005551111"}}}));
        assert_eq!(lookup_request(&e), Err(RequestError::MissingContactId));
    }

    #[test]
    fn transfer_prefers_parameter_then_attribute_then_pair() {
        let p = event(
            json!({"TransactionId": "from-param"}),
            json!({"transaction_id": "from-attr"}),
            true,
        );
        assert_eq!(
            transfer_request(&p).unwrap().call,
            CallRef::Transaction("from-param".into())
        );
        let a = event(json!({}), json!({"transaction_id": "from-attr"}), true);
        assert_eq!(
            transfer_request(&a).unwrap().call,
            CallRef::Transaction("from-attr".into())
        );
        let pair = event(json!({}), json!({}), true);
        match transfer_request(&pair).unwrap().call {
            CallRef::Pair { pair, contact_id } => {
                assert_eq!(pair.pair.sma_number, "+18005557777");
                assert_eq!(contact_id, "contact-1");
            }
            other => panic!("expected a pair, got {other:?}"),
        }
    }

    #[test]
    fn transfer_without_any_call_reference_is_missing_transaction() {
        assert_eq!(
            transfer_request(&event(json!({}), json!({}), false)),
            Err(RequestError::MissingTransaction)
        );
    }

    #[test]
    fn transfer_rejects_implausible_transaction_ids() {
        for bad in ["a b", "../x", "x/y", &"a".repeat(257)] {
            let e = event(json!({"TransactionId": bad}), json!({}), true);
            assert_eq!(
                transfer_request(&e),
                Err(RequestError::InvalidTransactionId),
                "{bad}"
            );
        }
        assert!(is_plausible_transaction_id(
            "8b1a2c3d-0000-4e5f-9a8b-7c6d5e4f3a2b"
        ));
    }

    #[test]
    fn transfer_reads_optional_target_parameters() {
        let e = event(
            json!({"TransactionId": "t", "TransferTarget": " 1234 ", "TransferTargetArn": ""}),
            json!({}),
            true,
        );
        let r = transfer_request(&e).unwrap();
        assert_eq!(r.target.as_deref(), Some("1234"));
        assert_eq!(r.target_arn, None);
        assert_eq!(r.contact_id.as_deref(), Some("contact-1"));
    }
}
