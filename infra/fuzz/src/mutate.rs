//! Structure-aware mutation of JSON events: a mutation picks one node of the document (any
//! depth, uniformly) and changes it the way a broken or hostile sender would — deletes or nulls a
//! field, swaps a value's type (numbers as strings and back, objects for lists), puts a huge,
//! odd-Unicode or control-character string in it, a value of the domain (an event type, a leg
//! tag, a phone number) where another was expected, a member under a differently cased name, or
//! a node of another event. Sequences of events get duplicated, dropped and re-ordered.

use emulator::chaos::ChaosRng;
use serde_json::{Map, Number, Value, json};

/// Values of the domain, so mutations reach deep branches rather than failing the first check.
pub const DOMAIN_STRINGS: &[&str] = &[
    // SMA
    "NEW_INBOUND_CALL",
    "NEW_OUTBOUND_CALL",
    "RINGING",
    "CALL_ANSWERED",
    "ACTION_SUCCESSFUL",
    "ACTION_FAILED",
    "ACTION_INTERRUPTED",
    "HANGUP",
    "CALL_UPDATE_REQUESTED",
    "INVALID_LAMBDA_RESPONSE",
    "DIGITS_RECEIVED",
    "CallAndBridge",
    "Hangup",
    "Speak",
    "PlayAudio",
    "Pause",
    "ReceiveDigits",
    "CallUpdateRequest",
    "LEG-A",
    "LEG-B",
    "Leg-A",
    "leg-b",
    "LEG-C",
    "Connected",
    "Disconnected",
    "Inbound",
    "Outbound",
    "CallNotAnswered",
    "InvalidActionParameter",
    "true",
    "TRUE",
    "false",
    "0",
    "480",
    "486",
    "1.0",
    // state names the call machine writes
    "new",
    "connecting",
    "in_connect",
    "transfer_pending",
    "transferring",
    "transferred",
    "ending",
    "ended",
    // numbers: the pool, the caller, invalid ones
    "+18005557777",
    "+18005551111",
    "+18005559999",
    "+18005553333",
    "+12065550123",
    "+1",
    "+0123",
    "18005551111",
    "+1800555111122223333",
    "sip:100@pbx.example.com",
    // Connect
    "100",
    "2042",
    "room 12",
    "*9",
    "arn:aws:chime:us-east-1:123456789012:vc/local-pbx",
    "arn:aws:chime:us-east-1:123456789012:vc/other",
    "arn:aws:lambda:us-east-1:123456789012:function:x",
    "keep",
    "release",
    // Alexa
    "Alexa.Comms.CallSignaling.InitiateOutboundCall",
    "Alexa.Comms.CallSignaling.InitiateInboundCall",
    "Alexa.Comms.CallSignaling.CallRinging",
    "Alexa.Comms.CallSignaling.CallAccepted",
    "Alexa.Comms.CallSignaling.CallInProgress",
    "Alexa.Comms.CallSignaling.CallUpdate",
    "Alexa.Comms.CallSignaling.CallUpdateResponse",
    "Alexa.Comms.CallSignaling.CallEnded",
    "Alexa.Comms.CallSignaling.CallRingingAck",
    "Alexa.Comms.CallSignaling.CallAcceptedAck",
    "Alexa.Comms.CallSignaling.CallInProgressAck",
    "Alexa.Comms.CallSignaling.CallUpdateAck",
    "Alexa.Comms.CallSignaling.Bogus",
    "Alexa.Authorization.Grant",
    "Alexa.Authorization",
    "AcceptGrant",
    "LaunchRequest",
    "IntentRequest",
    "SessionEndedRequest",
    "CallRinging",
    "CallEnded",
    "InitiateInboundCall",
    "OFFER",
    "ANSWER",
    "offer",
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\n",
    "amzn1.ask.skill.00000000-0000-4000-8000-000000000001",
    "fixture-session-staff-to-room-0001",
    "POST",
    "GET",
    "/",
];

/// Strings that break naive code: Unicode edge cases, control characters, numbers that overflow.
pub const ODD_STRINGS: &[&str] = &[
    "",
    " ",
    "\u{0}",
    "\r\n",
    "X-Evil: 1\r\nX-Injected: 2",
    "\u{7}\u{8}\u{1b}[31m",
    "\u{202e}gnp.exe",
    "\u{200b}\u{200d}\u{feff}",
    "e\u{301}\u{301}\u{301}\u{301}",
    "👩‍👩‍👧‍👦🇺🇳",
    "\u{10ffff}\u{fffd}",
    "ǅǈǋ",
    "İı",
    "ß",
    "𝕏-Header",
    "NaN",
    "-0",
    "1e309",
    "18446744073709551616",
    "-9223372036854775809",
    "0x1F",
    "null",
    "{\"nested\":\"json\"}",
    "../../etc/passwd",
    "%00%0d%0a",
    "'; DROP TABLE pairs; --",
    "$.Attributes.transaction_id",
];

/// A string of `len` characters cycling through `unit`.
fn repeated(unit: &str, len: usize) -> String {
    unit.chars().cycle().take(len).collect()
}

/// A random nasty string: from the lists above, or long (up to ~100 k characters).
pub fn nasty_string(rng: &mut ChaosRng) -> String {
    match rng.below(10) {
        0..=3 => rng.pick(ODD_STRINGS).copied().unwrap_or("").to_owned(),
        4..=6 => rng.pick(DOMAIN_STRINGS).copied().unwrap_or("").to_owned(),
        7 => {
            // Long: just over the limits that matter (1,000-char Speak text, 2,048-char SIP
            // header, 64 KB SDP), or much longer.
            let len = *rng
                .pick(&[1_001usize, 2_049, 4_097, 65_537, 100_000])
                .unwrap_or(&1_001);
            let unit = *rng
                .pick(&["a", "é", "\u{1F600}", "\r\n", "+1"])
                .unwrap_or(&"a");
            repeated(unit, len)
        }
        8 => {
            // Random code points, controls included.
            let n = rng.range(1, 40) as usize;
            (0..n)
                .filter_map(|_| char::from_u32(rng.below(0x11_0000) as u32))
                .collect()
        }
        _ => {
            // A domain value with something glued on.
            let base = rng.pick(DOMAIN_STRINGS).copied().unwrap_or("");
            let odd = rng.pick(ODD_STRINGS).copied().unwrap_or("");
            if rng.chance(0.5) {
                format!("{base}{odd}")
            } else {
                format!("{odd}{base}")
            }
        }
    }
}

fn nasty_number(rng: &mut ChaosRng) -> Value {
    match rng.below(8) {
        0 => json!(u64::MAX),
        1 => json!(i64::MIN),
        2 => json!(-1),
        3 => json!(0),
        4 => json!(1.5),
        5 => json!(1e308),
        6 => json!(rng.next_u64() % 100_000),
        _ => Number::from_f64(-1e-300)
            .map(Value::Number)
            .unwrap_or(Value::Null),
    }
}

/// A value of a different JSON type than `v`, built from it where that makes sense.
pub fn swap_type(v: &Value, rng: &mut ChaosRng) -> Value {
    match v {
        Value::String(s) => match rng.below(4) {
            0 => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .unwrap_or_else(|| json!(s.len())),
            1 => json!([s]),
            2 => json!({ "value": s }),
            _ => json!(!s.is_empty()),
        },
        Value::Number(n) => match rng.below(3) {
            0 => Value::String(n.to_string()),
            1 => json!([n]),
            _ => json!(true),
        },
        Value::Bool(b) => match rng.below(2) {
            0 => Value::String(b.to_string()),
            _ => json!(u8::from(*b)),
        },
        Value::Null => match rng.below(3) {
            0 => json!(""),
            1 => json!({}),
            _ => json!([]),
        },
        // Objects for lists and lists for objects.
        Value::Array(items) => match rng.below(3) {
            0 => Value::Object(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| (i.to_string(), x.clone()))
                    .collect(),
            ),
            1 => items.first().cloned().unwrap_or(Value::Null),
            _ => Value::String(Value::Array(items.clone()).to_string()),
        },
        Value::Object(map) => match rng.below(3) {
            0 => Value::Array(map.values().cloned().collect()),
            1 => Value::String(Value::Object(map.clone()).to_string()),
            _ => json!(map.len()),
        },
    }
}

/// Number of nodes (the root included).
pub fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(m) => m.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The `index`-th node in pre-order (0: the root).
pub fn node_mut(v: &mut Value, index: usize) -> Option<&mut Value> {
    fn walk<'a>(v: &'a mut Value, left: &mut usize) -> Option<&'a mut Value> {
        if *left == 0 {
            return Some(v);
        }
        *left -= 1;
        match v {
            Value::Array(a) => {
                for x in a.iter_mut() {
                    let n = count_nodes(x);
                    if *left < n {
                        return walk(x, left);
                    }
                    *left -= n;
                }
                None
            }
            Value::Object(m) => {
                for x in m.values_mut() {
                    let n = count_nodes(x);
                    if *left < n {
                        return walk(x, left);
                    }
                    *left -= n;
                }
                None
            }
            _ => None,
        }
    }
    let mut left = index;
    walk(v, &mut left)
}

/// A random node of `donor` (another event), for cross-over.
fn donor_node(donor: &Value, rng: &mut ChaosRng) -> Value {
    let mut copy = donor.clone();
    let n = count_nodes(&copy);
    let i = rng.below(n as u64) as usize;
    node_mut(&mut copy, i)
        .map(|v| v.take())
        .unwrap_or(Value::Null)
}

/// The kinds of mutation, for the report.
pub const MUTATIONS: &[&str] = &[
    "delete_field",
    "null_value",
    "swap_type",
    "nasty_string",
    "nasty_number",
    "domain_value",
    "recase_key",
    "add_field",
    "array_edit",
    "splice_donor",
    "empty_container",
];

/// Applies one mutation to a random node of `doc`; returns which.
pub fn mutate_once(doc: &mut Value, donors: &[&Value], rng: &mut ChaosRng) -> &'static str {
    let n = count_nodes(doc);
    let index = rng.below(n as u64) as usize;
    let which = rng.below(MUTATIONS.len() as u64) as usize;
    let name = MUTATIONS.get(which).copied().unwrap_or("null_value");
    let donor = if name == "splice_donor" {
        rng.pick(donors).map(|d| donor_node(d, rng))
    } else {
        None
    };
    let Some(node) = node_mut(doc, index) else {
        return name;
    };
    match name {
        "delete_field" | "recase_key" | "add_field" => {
            // Needs an object: the node itself, else replace the node.
            let Value::Object(map) = node else {
                *node = Value::Null;
                return name;
            };
            edit_object(map, name, rng);
        }
        "null_value" => *node = Value::Null,
        "swap_type" => *node = swap_type(node, rng),
        "nasty_string" => *node = Value::String(nasty_string(rng)),
        "nasty_number" => *node = nasty_number(rng),
        "domain_value" => {
            *node = Value::String(rng.pick(DOMAIN_STRINGS).copied().unwrap_or("").to_owned())
        }
        "array_edit" => match node {
            Value::Array(items) => edit_array(items, rng),
            other => *other = json!([other.take()]),
        },
        "splice_donor" => *node = donor.unwrap_or(Value::Null),
        _ => {
            *node = match node {
                Value::Array(_) => json!([]),
                Value::Object(_) => json!({}),
                _ => json!(""),
            }
        }
    }
    name
}

fn edit_object(map: &mut Map<String, Value>, how: &str, rng: &mut ChaosRng) {
    let keys: Vec<String> = map.keys().cloned().collect();
    let key = rng.pick(&keys).cloned();
    match (how, key) {
        ("delete_field", Some(k)) => {
            map.remove(&k);
        }
        ("recase_key", Some(k)) => {
            if let Some(v) = map.remove(&k) {
                let flipped: String = match rng.below(3) {
                    0 => k.to_lowercase(),
                    1 => k.to_uppercase(),
                    _ => {
                        let mut c = k.chars();
                        match c.next() {
                            Some(f) if f.is_uppercase() => f.to_lowercase().chain(c).collect(),
                            Some(f) => f.to_uppercase().chain(c).collect(),
                            None => String::new(),
                        }
                    }
                };
                // Sometimes keep both spellings (a duplicate under another case).
                if rng.chance(0.5) {
                    map.insert(k, v.clone());
                }
                map.insert(flipped, v);
            }
        }
        _ => {
            let name = if rng.chance(0.5) {
                nasty_string(rng)
            } else {
                rng.pick(DOMAIN_STRINGS).copied().unwrap_or("x").to_owned()
            };
            let value = match rng.below(3) {
                0 => Value::String(nasty_string(rng)),
                1 => nasty_number(rng),
                _ => json!({}),
            };
            map.insert(name, value);
        }
    }
}

fn edit_array(items: &mut Vec<Value>, rng: &mut ChaosRng) {
    let len = items.len();
    match rng.below(5) {
        0 if len > 0 => {
            let i = rng.below(len as u64) as usize;
            let copy = items[i].clone();
            for _ in 0..rng.range(1, 20) {
                items.push(copy.clone());
            }
        }
        1 if len > 0 => {
            let i = rng.below(len as u64) as usize;
            items.remove(i);
        }
        2 if len > 1 => {
            let i = rng.below(len as u64) as usize;
            let j = rng.below(len as u64) as usize;
            items.swap(i, j);
        }
        3 => items.clear(),
        _ => items.push(Value::String(nasty_string(rng))),
    }
}

/// Applies 1..=`max` mutations; returns their names.
pub fn mutate(
    doc: &mut Value,
    donors: &[&Value],
    max: u64,
    rng: &mut ChaosRng,
) -> Vec<&'static str> {
    (0..rng.range(1, max.max(1)))
        .map(|_| mutate_once(doc, donors, rng))
        .collect()
}

/// Duplicates, drops and re-orders the events of a sequence.
pub fn shuffle_sequence<T: Clone>(events: &mut Vec<T>, rng: &mut ChaosRng) {
    for _ in 0..rng.range(0, 3) {
        let len = events.len();
        if len == 0 {
            return;
        }
        match rng.below(3) {
            0 => {
                let i = rng.below(len as u64) as usize;
                let copy = events[i].clone();
                let at = rng.below(len as u64 + 1) as usize;
                events.insert(at, copy);
            }
            1 if len > 1 => {
                let i = rng.below(len as u64) as usize;
                let j = rng.below(len as u64) as usize;
                events.swap(i, j);
            }
            _ if len > 2 => {
                let i = rng.below(len as u64) as usize;
                events.remove(i);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({"A": {"B": [1, "two", {"C": null}]}, "D": "text", "E": true})
    }

    #[test]
    fn nodes_are_counted_and_addressed_in_pre_order() {
        let mut d = doc();
        // root, A, B, 1, "two", {C}, null, "text", true
        assert_eq!(count_nodes(&d), 9);
        assert_eq!(node_mut(&mut d, 0).cloned(), Some(doc()));
        assert_eq!(node_mut(&mut d, 3).cloned(), Some(json!(1)));
        assert_eq!(node_mut(&mut d, 6).cloned(), Some(Value::Null));
        assert_eq!(node_mut(&mut d, 8).cloned(), Some(json!(true)));
        assert_eq!(node_mut(&mut d, 9), None);
    }

    #[test]
    fn swapped_types_really_differ() {
        let mut rng = ChaosRng::new(4);
        let kind = |v: &Value| std::mem::discriminant(v);
        for v in [
            json!("12"),
            json!(12),
            json!(true),
            json!(null),
            json!([1]),
            json!({"a": 1}),
        ] {
            for _ in 0..50 {
                let s = swap_type(&v, &mut rng);
                assert_ne!(kind(&s), kind(&v), "{v} -> {s}");
            }
        }
        // Lists become objects and objects lists (among other things).
        let mut seen_object = false;
        for _ in 0..50 {
            seen_object |= swap_type(&json!([1, 2]), &mut rng).is_object();
        }
        assert!(seen_object);
    }

    #[test]
    fn every_mutation_changes_the_document_or_says_why() {
        let mut rng = ChaosRng::new(11);
        let donor = json!({"X": "donor"});
        let mut changed = 0;
        for _ in 0..2_000 {
            let mut d = doc();
            let name = mutate_once(&mut d, &[&donor], &mut rng);
            assert!(MUTATIONS.contains(&name));
            if d != doc() {
                changed += 1;
            }
        }
        // A few are no-ops (a null nulled, an empty list cleared); most are not.
        assert!(changed > 1_700, "{changed}");
    }

    #[test]
    fn mutations_are_deterministic_per_seed() {
        let run = |seed| {
            let mut rng = ChaosRng::new(seed);
            let mut d = doc();
            mutate(&mut d, &[], 6, &mut rng);
            d
        };
        assert_eq!(run(5), run(5));
        assert!((0..20).any(|s| run(s) != run(s + 100)));
    }

    #[test]
    fn nasty_strings_include_long_and_control_characters() {
        let mut rng = ChaosRng::new(2);
        let all: Vec<String> = (0..3_000).map(|_| nasty_string(&mut rng)).collect();
        assert!(all.iter().any(|s| s.chars().count() > 1_000));
        assert!(all.iter().any(|s| s.contains('\r') || s.contains('\n')));
        assert!(
            all.iter()
                .any(|s| s.chars().any(|c| c.is_control() && c != '\r' && c != '\n'))
        );
        assert!(all.iter().all(|s| s.chars().count() <= 100_000));
    }

    #[test]
    fn sequences_get_duplicates_drops_and_reorders() {
        let mut rng = ChaosRng::new(3);
        let base: Vec<u32> = (0..6).collect();
        let mut dup = false;
        let mut reordered = false;
        let mut dropped = false;
        for _ in 0..500 {
            let mut s = base.clone();
            shuffle_sequence(&mut s, &mut rng);
            let mut sorted = s.clone();
            sorted.sort_unstable();
            sorted.dedup();
            dup |= sorted.len() < s.len();
            reordered |= s.windows(2).any(|w| w[0] > w[1]);
            dropped |= sorted.len() < base.len();
        }
        assert!(dup && reordered && dropped);
    }
}
