//! Request bodies and paths of the ASP REST APIs, and readers for their answers. Pure: no I/O.
//! Field names follow the API (camelCase); `docs/provisioning.md` says how sure each one is.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::property::{DesiredTrunk, Peer, PeerAddress};

pub const TRUNKS: &str = "/v1/communications/network/siptrunk";
pub const PROFILE: &str = "/v1/communications/profile";
pub const SERVICE_PROVIDERS: &str = "/v1/communications/serviceProviders";
pub const ADDRESS_BOOKS: &str = "/v1/addressBooks";
/// Lists of the ASP APIs accept at most this many results per page.
pub const PAGE_SIZE: usize = 10;

/// Percent-encodes one path segment or query value (ids contain `.` and `|`, which are fine,
/// but a hand-typed extension or unit id could hold anything).
pub fn enc(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~|".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub fn trunk_path(trunk_id: &str) -> String {
    format!("{TRUNKS}/{}", enc(trunk_id))
}

pub fn extension_path(trunk_id: &str, extension: &str) -> String {
    format!("{TRUNKS}/{}/extension/{}", enc(trunk_id), enc(extension))
}

pub fn extensions_path(trunk_id: &str) -> String {
    format!("{TRUNKS}/{}/extensions", enc(trunk_id))
}

pub fn profile_by_unit_path(unit_id: &str) -> String {
    format!("{PROFILE}?entity.type=UNIT&entity.id={}", enc(unit_id))
}

pub fn profile_path(profile_id: &str) -> String {
    format!("{PROFILE}/{}", enc(profile_id))
}

pub fn skill_enablements_path(skill_id: &str) -> String {
    format!("/v1/skills/{}/enablements", enc(skill_id))
}

pub fn unit_skills_path(unit_id: &str) -> String {
    format!("/v1/skills/enablements?unitId={}", enc(unit_id))
}

pub fn service_provider_path(id: &str) -> String {
    format!("{SERVICE_PROVIDERS}/{}", enc(id))
}

pub fn network_path(id: &str) -> String {
    format!("{SERVICE_PROVIDERS}/{}/network", enc(id))
}

pub fn external_users_path(id: &str) -> String {
    format!("{SERVICE_PROVIDERS}/{}/externalUsers", enc(id))
}

pub fn book_path(id: &str) -> String {
    format!("{ADDRESS_BOOKS}/{}", enc(id))
}

pub fn contacts_path(book_id: &str) -> String {
    format!("{ADDRESS_BOOKS}/{}/contacts", enc(book_id))
}

pub fn contact_path(book_id: &str, contact_id: &str) -> String {
    format!(
        "{ADDRESS_BOOKS}/{}/contacts/{}",
        enc(book_id),
        enc(contact_id)
    )
}

pub fn unit_associations_path(book_id: &str) -> String {
    format!("{ADDRESS_BOOKS}/{}/unitAssociations", enc(book_id))
}

pub fn peer_json(peer: &Peer) -> Value {
    match &peer.address {
        PeerAddress::Ip(ip) => json!({ "ip": ip.to_string(), "port": peer.port }),
        PeerAddress::Fqdn(name) => json!({ "fqdn": name, "port": peer.port }),
    }
}

pub fn trunk_body(trunk: &DesiredTrunk) -> Value {
    json!({
        "tls": { "certificateChain": trunk.certificate_chain, "name": trunk.tls_name },
        "peers": trunk.peers.iter().map(peer_json).collect::<Vec<_>>(),
    })
}

/// Fingerprint of what a trunk was last sent, kept in the state file.
pub fn trunk_digest(trunk: &DesiredTrunk) -> String {
    let mut peers: Vec<Value> = trunk.peers.iter().map(peer_json).collect();
    peers.sort_by_key(|p| p.to_string());
    let canonical = json!({ "tls": { "certificateChain": trunk.certificate_chain, "name": trunk.tls_name }, "peers": peers });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

pub fn extension_body(profile_id: &str) -> Value {
    json!({ "routingType": "communication-profile", "commsProfileId": profile_id })
}

pub fn profile_body(unit_id: &str, name: &str) -> Value {
    json!({ "entity": { "type": "UNIT", "id": unit_id }, "name": name })
}

pub fn enable_skill_body(unit_id: &str) -> Value {
    json!({ "unitId": unit_id, "stage": "live" })
}

pub fn service_provider_body(logical_id: &str, locale: &str, display_name: &str) -> Value {
    json!({ "serviceProviderLogicalId": logical_id, "displayName": [ { "locale": locale, "value": display_name } ] })
}

pub fn network_body(skill_id: &str) -> Value {
    json!({ "networkType": "SKILL", "skillConfiguration": { "skillId": skill_id } })
}

pub fn account_association_body(external_user_id: &str, profile_id: &str) -> Value {
    json!({ "externalUserId": external_user_id, "amazonId": profile_id, "amazonIdType": "communication-profile" })
}

/// What a contact points at, in the API's terms (profile ids, not unit ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireTarget {
    Profile(String),
    PhoneNumbers(Vec<String>),
    Provider(String),
}

pub fn contact_body(name: &str, target: &WireTarget) -> Value {
    let contact = match target {
        WireTarget::Profile(id) => json!({ "name": name, "alexaCommunicationProfileId": id }),
        WireTarget::PhoneNumbers(numbers) => json!({
            "name": name,
            "phoneNumbers": numbers.iter().map(|n| json!({ "number": n })).collect::<Vec<_>>(),
        }),
        WireTarget::Provider(id) => json!({ "name": name, "providerContact": { "id": id } }),
    };
    json!({ "contact": contact })
}

pub fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// Reads a contact as the API returns it (`{"contactId", "contact": {...}}`, or flat).
pub fn read_contact(value: &Value) -> Option<(String, String, Option<WireTarget>)> {
    let id = str_at(value, "/contactId")?.to_owned();
    let contact = value.get("contact").unwrap_or(value);
    let name = str_at(contact, "/name")?.to_owned();
    let target = if let Some(p) = str_at(contact, "/alexaCommunicationProfileId") {
        Some(WireTarget::Profile(p.to_owned()))
    } else if let Some(p) = str_at(contact, "/providerContact/id") {
        Some(WireTarget::Provider(p.to_owned()))
    } else {
        contact
            .get("phoneNumbers")
            .and_then(Value::as_array)
            .map(|numbers| {
                WireTarget::PhoneNumbers(
                    numbers
                        .iter()
                        .filter_map(|n| str_at(n, "/number").map(str::to_owned))
                        .collect(),
                )
            })
    };
    Some((id, name, target))
}

/// Reads a peer back from a trunk answer.
pub fn read_peer(value: &Value) -> Option<Peer> {
    let port = value
        .get("port")
        .and_then(|p| {
            p.as_u64()
                .or_else(|| p.as_str().and_then(|s| s.parse().ok()))
        })
        .and_then(|p| u16::try_from(p).ok())?;
    let address = if let Some(ip) = str_at(value, "/ip") {
        PeerAddress::Ip(ip.parse().ok()?)
    } else {
        PeerAddress::Fqdn(str_at(value, "/fqdn")?.to_ascii_lowercase())
    };
    Some(Peer { address, port })
}

/// The profile id in a profile answer (nested as `profileId.profileId`; flat accepted too).
pub fn read_profile_id(value: &Value) -> Option<String> {
    str_at(value, "/profileId/profileId")
        .or_else(|| str_at(value, "/profileId"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_bodies_are_wrapped_and_carry_one_target() {
        let body = contact_body("Front desk", &WireTarget::PhoneNumbers(vec!["0".into()]));
        assert_eq!(body["contact"]["phoneNumbers"][0]["number"], "0");
        let body = contact_body("Room 101", &WireTarget::Profile("p1".into()));
        assert_eq!(body["contact"]["alexaCommunicationProfileId"], "p1");
        assert!(body["contact"].get("phoneNumbers").is_none());
        let (id, name, target) =
            read_contact(&json!({"contactId": "c1", "contact": body["contact"].clone()})).unwrap();
        assert_eq!((id.as_str(), name.as_str()), ("c1", "Room 101"));
        assert_eq!(target, Some(WireTarget::Profile("p1".into())));
    }

    #[test]
    fn profile_ids_are_read_nested_or_flat() {
        assert_eq!(
            read_profile_id(&json!({"profileId": {"profileId": "a"}})).as_deref(),
            Some("a")
        );
        assert_eq!(
            read_profile_id(&json!({"profileId": "b"})).as_deref(),
            Some("b")
        );
        assert_eq!(read_profile_id(&json!({})), None);
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(
            extension_path("t/1", "12 3"),
            format!("{TRUNKS}/t%2F1/extension/12%203")
        );
    }
}
