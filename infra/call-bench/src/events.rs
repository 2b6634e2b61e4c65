//! The SMA events of one benchmark call, built from the project's `events/` fixtures.
//!
//! Every call gets a fresh `TransactionId` and legs that started "now": the handler treats a
//! `NEW_INBOUND_CALL` whose leg is younger than 2 s as a first delivery, and an old fixture
//! timestamp would send every claim down the re-delivery path. The caller's `HANGUP` carries
//! the `TransactionAttributes` of the function's own answer, as the SIP media application
//! echoes them back, and its LEG-B is the bridge the answer asked for.

use std::path::Path;

use serde_json::Value;

/// The fixture of a caller's first event.
pub const NEW_INBOUND_CALL: &str = "sma-new-inbound-call-basic.json";
/// The fixture of the caller hanging up while bridged to Connect.
pub const HANGUP_LEG_A: &str = "sma-hangup-leg-a-caller.json";

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not JSON: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0} has no CallDetails.Participants list")]
    Shape(&'static str),
}

/// The pair a claimed call was bridged over: the SMA number is the caller id toward Connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub sma_number: String,
    pub connect_number: String,
}

/// The two fixtures, checked once.
#[derive(Debug, Clone)]
pub struct Templates {
    new_call: Value,
    hangup: Value,
}

fn has_participants(event: &Value) -> bool {
    event
        .pointer("/CallDetails/Participants")
        .is_some_and(Value::is_array)
}

fn read(dir: &Path, name: &'static str) -> Result<Value, EventError> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|source| EventError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let event: Value = serde_json::from_str(&text).map_err(|source| EventError::Json {
        path: path.display().to_string(),
        source,
    })?;
    if has_participants(&event) {
        Ok(event)
    } else {
        Err(EventError::Shape(name))
    }
}

/// Sets the transaction and restarts every leg at `now_ms`.
fn refresh(event: &mut Value, transaction_id: &str, now_ms: i64) {
    if let Some(details) = event.pointer_mut("/CallDetails") {
        details["TransactionId"] = Value::String(transaction_id.to_owned());
    }
    if let Some(Value::Array(legs)) = event.pointer_mut("/CallDetails/Participants") {
        for leg in legs {
            leg["StartTimeInMilliseconds"] = Value::String(now_ms.to_string());
        }
    }
}

impl Templates {
    /// Reads the fixtures from the project's `events/` directory.
    pub fn load(events_dir: &Path) -> Result<Self, EventError> {
        Self::from_values(
            read(events_dir, NEW_INBOUND_CALL)?,
            read(events_dir, HANGUP_LEG_A)?,
        )
    }

    pub fn from_values(new_call: Value, hangup: Value) -> Result<Self, EventError> {
        if !has_participants(&new_call) {
            return Err(EventError::Shape(NEW_INBOUND_CALL));
        }
        if !has_participants(&hangup) {
            return Err(EventError::Shape(HANGUP_LEG_A));
        }
        Ok(Self { new_call, hangup })
    }

    /// A first delivery of a new call.
    pub fn new_inbound_call(&self, transaction_id: &str, now_ms: i64) -> Value {
        let mut event = self.new_call.clone();
        refresh(&mut event, transaction_id, now_ms);
        event
    }

    /// The caller hangs up: `attributes` are the ones the function's last answer set (none:
    /// no attributes), `bridge` the Connect leg it asked for (none: no LEG-B).
    pub fn hangup_leg_a(
        &self,
        transaction_id: &str,
        now_ms: i64,
        attributes: Option<&Value>,
        bridge: Option<&Bridge>,
    ) -> Value {
        let mut event = self.hangup.clone();
        refresh(&mut event, transaction_id, now_ms);
        if let Some(details) = event
            .pointer_mut("/CallDetails")
            .and_then(Value::as_object_mut)
        {
            match attributes {
                Some(attributes) => {
                    details.insert("TransactionAttributes".into(), attributes.clone());
                }
                None => {
                    details.remove("TransactionAttributes");
                }
            }
        }
        if let Some(Value::Array(legs)) = event.pointer_mut("/CallDetails/Participants") {
            let is_b = |leg: &Value| leg["ParticipantTag"] == "LEG-B";
            match bridge {
                Some(bridge) => {
                    for leg in legs.iter_mut().filter(|l| is_b(l)) {
                        leg["To"] = Value::String(bridge.connect_number.clone());
                        leg["From"] = Value::String(bridge.sma_number.clone());
                    }
                }
                None => legs.retain(|l| !is_b(l)),
            }
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> Templates {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
        Templates::load(&dir).unwrap()
    }

    fn legs(event: &Value) -> &Vec<Value> {
        event["CallDetails"]["Participants"].as_array().unwrap()
    }

    #[test]
    fn a_new_call_has_the_fresh_transaction_and_legs_that_start_now() {
        let t = templates();
        let a = t.new_inbound_call("tx-1", 1_900_000_000_123);
        let b = t.new_inbound_call("tx-2", 1_900_000_000_456);
        assert_eq!(a["InvocationEventType"], "NEW_INBOUND_CALL");
        assert_eq!(a["CallDetails"]["TransactionId"], "tx-1");
        assert_eq!(b["CallDetails"]["TransactionId"], "tx-2");
        assert!(!legs(&a).is_empty());
        for leg in legs(&a) {
            assert_eq!(leg["StartTimeInMilliseconds"], "1900000000123");
        }
        assert_eq!(legs(&b)[0]["StartTimeInMilliseconds"], "1900000000456");
    }

    #[test]
    fn a_hangup_echoes_the_answers_attributes_and_the_bridged_pair() {
        let t = templates();
        let attributes = serde_json::json!({"state": "in_connect", "pair_held": "true"});
        let bridge = Bridge {
            sma_number: "+18005550003".into(),
            connect_number: "+18884440005".into(),
        };
        let h = t.hangup_leg_a("tx-9", 1_900_000_000_000, Some(&attributes), Some(&bridge));
        assert_eq!(h["InvocationEventType"], "HANGUP");
        assert_eq!(h["CallDetails"]["TransactionId"], "tx-9");
        assert_eq!(h["CallDetails"]["TransactionAttributes"], attributes);
        let leg_b = legs(&h)
            .iter()
            .find(|l| l["ParticipantTag"] == "LEG-B")
            .unwrap();
        assert_eq!(leg_b["To"], "+18884440005");
        assert_eq!(leg_b["From"], "+18005550003");
        assert!(
            legs(&h)
                .iter()
                .all(|l| l["StartTimeInMilliseconds"] == "1900000000000")
        );

        let bare = t.hangup_leg_a("tx-10", 1, None, None);
        assert!(bare["CallDetails"].get("TransactionAttributes").is_none());
        assert!(legs(&bare).iter().all(|l| l["ParticipantTag"] != "LEG-B"));
        assert!(legs(&bare).iter().any(|l| l["ParticipantTag"] == "LEG-A"));
    }

    #[test]
    fn a_fixture_without_participants_is_refused() {
        let good = serde_json::json!({"CallDetails": {"Participants": []}});
        let bad = serde_json::json!({"CallDetails": {}});
        assert!(Templates::from_values(good.clone(), good.clone()).is_ok());
        assert!(matches!(
            Templates::from_values(good, bad),
            Err(EventError::Shape(HANGUP_LEG_A))
        ));
    }
}
