//! The contact-flow invocation event, parsed so that no shape of it can fail.
//!
//! Why our own struct and not `aws_lambda_events::connect::ConnectEvent`: that type requires
//! `CustomerEndpoint`/`SystemEndpoint` (and more) to be present objects, so an event with
//! `"SystemEndpoint": null` — which Connect sends for some initiation methods, and which a
//! hand-written test event easily has — fails to deserialize, the Lambda runtime answers with
//! an error, and the contact goes down the flow's Error branch without a `result` to branch on.
//! Here every field is optional and every value is read leniently (a wrong type becomes
//! "absent"), so a malformed event turns into a precise `result=error, reason=missing_...`.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `{"Name": "ContactFlowEvent", "Details": {"ContactData": {...}, "Parameters": {...}}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConnectEvent {
    #[serde(deserialize_with = "lenient_string")]
    pub name: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub details: Details,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Details {
    #[serde(deserialize_with = "lenient")]
    pub contact_data: ContactData,
    /// The invoke block's `LambdaInvocationAttributes` (in the UI: "function input parameters").
    #[serde(deserialize_with = "string_map")]
    pub parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContactData {
    /// User-defined contact attributes (`$.Attributes.*` in the flow).
    #[serde(deserialize_with = "string_map")]
    pub attributes: BTreeMap<String, String>,
    #[serde(deserialize_with = "lenient_string")]
    pub channel: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub contact_id: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub customer_endpoint: Option<Endpoint>,
    #[serde(deserialize_with = "lenient")]
    pub system_endpoint: Option<Endpoint>,
    #[serde(deserialize_with = "lenient_string")]
    pub initial_contact_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub initiation_method: Option<String>,
    #[serde(rename = "InstanceARN", deserialize_with = "lenient_string")]
    pub instance_arn: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub previous_contact_id: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub queue: Option<Queue>,
}

/// `{"Address": "+1...", "Type": "TELEPHONE_NUMBER"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Endpoint {
    #[serde(deserialize_with = "lenient_string")]
    pub address: Option<String>,
    #[serde(rename = "Type", deserialize_with = "lenient_string")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Queue {
    #[serde(rename = "ARN", deserialize_with = "lenient_string")]
    pub arn: Option<String>,
    #[serde(rename = "Name", deserialize_with = "lenient_string")]
    pub name: Option<String>,
}

impl ConnectEvent {
    /// Never fails: anything that is not an object becomes an empty event, whose missing
    /// parameters the handlers then report.
    pub fn from_value(value: Value) -> Self {
        serde_json::from_value(value).unwrap_or_default()
    }

    /// A block parameter by name, trimmed; empty counts as absent. An exact key wins; otherwise
    /// the name is matched ignoring ASCII case (`callingNumber` finds `CallingNumber`).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        lookup(&self.details.parameters, name)
    }

    /// A user-defined contact attribute by name (same matching rules as [`Self::parameter`]).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        lookup(&self.details.contact_data.attributes, name)
    }

    pub fn contact_id(&self) -> Option<&str> {
        non_empty(self.details.contact_data.contact_id.as_deref())
    }

    /// `$.CustomerEndpoint.Address`: for a call bridged by the SMA, the claimed SMA number.
    pub fn customer_address(&self) -> Option<&str> {
        endpoint_address(self.details.contact_data.customer_endpoint.as_ref())
    }

    /// `$.SystemEndpoint.Address`: the Connect number that was dialled.
    pub fn system_address(&self) -> Option<&str> {
        endpoint_address(self.details.contact_data.system_endpoint.as_ref())
    }
}

fn endpoint_address(endpoint: Option<&Endpoint>) -> Option<&str> {
    non_empty(endpoint.and_then(|e| e.address.as_deref()))
}

fn lookup<'a>(map: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    let value = map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    });
    non_empty(value.map(String::as_str))
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Any value → `T`, falling back to `T::default()` when the shape is wrong (including `null`).
fn lenient<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    let value = Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).unwrap_or_default())
}

/// Strings as they are; numbers and booleans as their text; anything else is absent.
fn lenient_string<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(scalar_text(Value::deserialize(deserializer)?))
}

/// A JSON object read as a flat string map: `null` entries are dropped, numbers and booleans
/// become text, nested values are kept as compact JSON text. Not an object → empty map.
fn string_map<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    let Value::Object(entries) = Value::deserialize(deserializer)? else {
        return Ok(BTreeMap::new());
    };
    Ok(entries
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::Null => None,
            nested @ (Value::Array(_) | Value::Object(_)) => Some((k, nested.to_string())),
            scalar => scalar_text(scalar).map(|s| (k, s)),
        })
        .collect())
}

fn scalar_text(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn documented_event() -> Value {
        json!({
            "Name": "ContactFlowEvent",
            "Details": {
                "ContactData": {
                    "Attributes": {"transaction_id": "txn-1"},
                    "Channel": "VOICE",
                    "ContactId": "c-1",
                    "CustomerEndpoint": {"Address": "+18005557777", "Type": "TELEPHONE_NUMBER"},
                    "SystemEndpoint": {"Address": "+18005551111", "Type": "TELEPHONE_NUMBER"},
                    "InitialContactId": "c-1",
                    "InitiationMethod": "INBOUND",
                    "InstanceARN": "arn:aws:connect:us-east-1:111122223333:instance/i-1",
                    "PreviousContactId": "c-0",
                    "Queue": {"ARN": "arn:aws:connect:us-east-1:111122223333:instance/i-1/queue/q-1", "Name": "Front desk"}
                },
                "Parameters": {"CallingNumber": "+18005557777", "CalledNumber": "+18005551111"}
            }
        })
    }

    #[test]
    fn documented_event_parses_fully() {
        let e = ConnectEvent::from_value(documented_event());
        assert_eq!(e.name.as_deref(), Some("ContactFlowEvent"));
        assert_eq!(e.contact_id(), Some("c-1"));
        assert_eq!(e.customer_address(), Some("+18005557777"));
        assert_eq!(e.system_address(), Some("+18005551111"));
        assert_eq!(e.parameter("CallingNumber"), Some("+18005557777"));
        assert_eq!(e.attribute("transaction_id"), Some("txn-1"));
        let data = &e.details.contact_data;
        assert_eq!(
            data.instance_arn.as_deref(),
            Some("arn:aws:connect:us-east-1:111122223333:instance/i-1")
        );
        assert_eq!(
            data.queue.as_ref().and_then(|q| q.name.as_deref()),
            Some("Front desk")
        );
        assert_eq!(
            data.customer_endpoint
                .as_ref()
                .and_then(|c| c.kind.as_deref()),
            Some("TELEPHONE_NUMBER")
        );
    }

    #[test]
    fn null_endpoints_and_queue_are_absent_not_errors() {
        let mut v = documented_event();
        v["Details"]["ContactData"]["CustomerEndpoint"] = Value::Null;
        v["Details"]["ContactData"]["SystemEndpoint"] = Value::Null;
        v["Details"]["ContactData"]["Queue"] = Value::Null;
        let e = ConnectEvent::from_value(v);
        assert_eq!(e.customer_address(), None);
        assert_eq!(e.system_address(), None);
        assert_eq!(e.contact_id(), Some("c-1"));
        assert_eq!(e.parameter("CalledNumber"), Some("+18005551111"));
    }

    #[test]
    fn wrong_shapes_become_absent() {
        let e = ConnectEvent::from_value(json!({
            "Details": {
                "ContactData": {"ContactId": 42, "CustomerEndpoint": "nope", "Attributes": ["x"]},
                "Parameters": {"CallingNumber": 18005557777u64, "CalledNumber": null, "Flag": true, "Nested": {"a": 1}}
            }
        }));
        assert_eq!(e.contact_id(), Some("42"));
        assert_eq!(e.customer_address(), None);
        assert!(e.details.contact_data.attributes.is_empty());
        assert_eq!(e.parameter("CallingNumber"), Some("18005557777"));
        assert_eq!(e.parameter("CalledNumber"), None);
        assert_eq!(e.parameter("Flag"), Some("true"));
        assert_eq!(e.parameter("Nested"), Some(r#"{"a":1}"#));
    }

    #[test]
    fn anything_that_is_not_an_object_is_an_empty_event() {
        for v in [
            Value::Null,
            json!("x"),
            json!([1, 2]),
            json!({"Details": 3}),
        ] {
            let e = ConnectEvent::from_value(v);
            assert_eq!(e.contact_id(), None);
            assert!(e.details.parameters.is_empty());
        }
    }

    #[test]
    fn parameters_are_trimmed_and_empty_means_absent() {
        let e = ConnectEvent::from_value(json!({"Details": {"Parameters": {
            "CallingNumber": "  +18005557777 ", "CalledNumber": "   ", "TransferTarget": ""
        }}}));
        assert_eq!(e.parameter("CallingNumber"), Some("+18005557777"));
        assert_eq!(e.parameter("CalledNumber"), None);
        assert_eq!(e.parameter("TransferTarget"), None);
    }

    #[test]
    fn parameter_names_match_ignoring_ascii_case_but_exact_wins() {
        let e = ConnectEvent::from_value(json!({"Details": {"Parameters": {
            "callingnumber": "lower", "CallingNumber": "exact", "calledNumber": "camel"
        }}}));
        assert_eq!(e.parameter("CallingNumber"), Some("exact"));
        assert_eq!(e.parameter("CalledNumber"), Some("camel"));
    }
}
