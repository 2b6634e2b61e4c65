//! Checks a property before any API call and resolves it into [`Desired`]. Every problem is
//! collected (not only the first), each naming the item it is about.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use crate::property::{
    ContactTarget, Desired, DesiredBook, DesiredContact, DesiredRoom, DesiredServiceProvider,
    DesiredTrunk, DialPlan, PBX_COMMUNICATION_SKILL, Peer, PeerAddress, PeerSpec, RawProperty,
    RoomSpec, WEBRTC_SUBSCRIPTION_SKILL,
};

/// Address-book limits of the API (also enforced by the fake).
pub const MAX_CONTACTS_PER_BOOK: usize = 2000;
pub const MAX_BOOKS_PER_UNIT: usize = 10;
pub const MAX_UNITS_PER_BOOK: usize = 2500;
pub const MAX_PHONE_NUMBERS: usize = 3;
pub const MAX_NAME_CHARS: usize = 50;
/// Numbers a room extension must never be: the PBX would route them to emergency services.
pub const EMERGENCY_NUMBERS: &[&str] = &["911", "933", "112", "999", "000", "110", "119"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The item, e.g. `room amzn1.alexa.unit.did.101` or `trunk main, peer 1`.
    pub item: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {}: {}", e.item, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl ValidationErrors {
    fn push(&mut self, item: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationError {
            item: item.into(),
            message: message.into(),
        });
    }

    pub fn mentions(&self, text: &str) -> bool {
        self.0
            .iter()
            .any(|e| e.item.contains(text) || e.message.contains(text))
    }
}

/// Why an extension cannot be dialled by the PBX, or `None` when it can. The rule:
/// digits only; `min_digits..=max_digits` long; not an emergency number; not starting with a
/// prefix the PBX keeps for itself (outside line, operator, feature codes).
pub fn undialable_reason(extension: &str, plan: &DialPlan) -> Option<String> {
    if extension.is_empty() || !extension.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!("extension {extension:?} must contain digits only"));
    }
    let len = extension.len();
    if len < plan.min_digits || len > plan.max_digits {
        return Some(format!(
            "extension {extension} has {len} digits; the dial plan allows {}..={}",
            plan.min_digits, plan.max_digits
        ));
    }
    if EMERGENCY_NUMBERS.contains(&extension) {
        return Some(format!("extension {extension} is an emergency number"));
    }
    if let Some(prefix) = plan
        .reserved_prefixes
        .iter()
        .find(|p| !p.is_empty() && extension.starts_with(p.as_str()))
    {
        return Some(format!(
            "extension {extension} starts with {prefix}, which the dial plan reserves"
        ));
    }
    None
}

/// A DNS name with at least two labels, each 1–63 letters, digits or inner hyphens, and a
/// top-level label that is not all digits.
pub fn is_valid_fqdn(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    labels.iter().all(label_ok)
        && labels
            .last()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()))
}

/// Why an address cannot be a PBX peer: the PBX must have a public static address.
pub fn peer_ip_problem(ip: &IpAddr) -> Option<&'static str> {
    let problem = match ip {
        IpAddr::V4(v4) => {
            if v4.is_loopback() {
                "a loopback address"
            } else if v4.is_private() {
                "a private address"
            } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() {
                "not a host address"
            } else if v4.is_link_local() {
                "a link-local address"
            } else {
                return None;
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                "a loopback address"
            } else if v6.is_unspecified() || v6.is_multicast() {
                "not a host address"
            } else {
                return None;
            }
        }
    };
    Some(problem)
}

/// E.164: `+` then 8–15 digits, the first not 0.
pub fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// Splits a PEM file into its certificates, checking each decodes to DER.
pub fn parse_certificate_chain(pem: &str) -> Result<Vec<String>, String> {
    let mut blocks = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("malformed PEM: {e}"))?;
        // A certificate is a DER SEQUENCE; anything else is not a certificate.
        if cert.first() != Some(&0x30) || cert.len() < 64 {
            return Err("a CERTIFICATE block does not hold a DER certificate".to_owned());
        }
        blocks.push(reencode_pem(cert.as_ref()));
    }
    if blocks.is_empty() {
        return Err("no -----BEGIN CERTIFICATE----- block found".to_owned());
    }
    Ok(blocks)
}

/// One certificate as a canonical PEM block (64-character lines), so the same certificate
/// always yields the same request body whatever the file's line endings.
fn reencode_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----");
    out
}

fn check_name(errors: &mut ValidationErrors, item: &str, what: &str, name: &str) {
    let chars = name.trim().chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        errors.push(
            item,
            format!("{what} must be 1–{MAX_NAME_CHARS} characters"),
        );
    }
}

fn check_peer(errors: &mut ValidationErrors, item: &str, peer: &PeerSpec) -> Option<Peer> {
    let port = match u16::try_from(peer.port) {
        Ok(p) if p > 0 => Some(p),
        _ => {
            errors.push(item, format!("port {} is not 1–65535", peer.port));
            None
        }
    };
    let address = match (&peer.ip, &peer.fqdn) {
        (Some(ip), None) => match ip.trim().parse::<IpAddr>() {
            Ok(addr) => match peer_ip_problem(&addr) {
                Some(problem) => {
                    errors.push(
                        item,
                        format!("ip {ip} is {problem}; the PBX needs a public static address"),
                    );
                    None
                }
                None => Some(PeerAddress::Ip(addr)),
            },
            Err(_) => {
                errors.push(item, format!("ip {ip:?} is not an IP address"));
                None
            }
        },
        (None, Some(fqdn)) => {
            if is_valid_fqdn(fqdn) {
                Some(PeerAddress::Fqdn(
                    fqdn.trim_end_matches('.').to_ascii_lowercase(),
                ))
            } else {
                errors.push(
                    item,
                    format!("fqdn {fqdn:?} is not a fully qualified domain name"),
                );
                None
            }
        }
        _ => {
            errors.push(item, "give exactly one of ip or fqdn");
            None
        }
    };
    Some(Peer {
        address: address?,
        port: port?,
    })
}

fn check_trunks(raw: &RawProperty, errors: &mut ValidationErrors) -> Vec<DesiredTrunk> {
    let mut trunks = Vec::new();
    let mut keys = BTreeSet::new();
    for spec in &raw.file.trunks {
        let item = format!("trunk {}", spec.key);
        if spec.key.trim().is_empty() {
            errors.push("trunk", "key must not be empty");
        } else if !keys.insert(spec.key.clone()) {
            errors.push(&item, "duplicate trunk key");
        }
        if !is_valid_fqdn(&spec.tls_name) {
            errors.push(
                &item,
                format!(
                    "tls_name {:?} is not a fully qualified domain name",
                    spec.tls_name
                ),
            );
        }
        let chain = match raw.certificates.get(&spec.certificate_chain) {
            Some(Ok(pem)) => match parse_certificate_chain(pem) {
                Ok(chain) => Some(chain),
                Err(e) => {
                    errors.push(
                        &item,
                        format!(
                            "certificate_chain {}: {e}",
                            spec.certificate_chain.display()
                        ),
                    );
                    None
                }
            },
            Some(Err(e)) => {
                errors.push(
                    &item,
                    format!(
                        "certificate_chain {} cannot be read: {e}",
                        spec.certificate_chain.display()
                    ),
                );
                None
            }
            None => {
                errors.push(
                    &item,
                    format!(
                        "certificate_chain {} was not read",
                        spec.certificate_chain.display()
                    ),
                );
                None
            }
        };
        if spec.peers.is_empty() {
            errors.push(&item, "needs at least one peer");
        }
        let peers: Vec<Option<Peer>> = spec
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| check_peer(errors, &format!("{item}, peer {}", i + 1), p))
            .collect();
        let peers: Option<Vec<Peer>> = peers.into_iter().collect();
        if let Some(peers) = &peers {
            let ip = peers
                .iter()
                .filter(|p| matches!(p.address, PeerAddress::Ip(_)))
                .count();
            if ip != 0 && ip != peers.len() {
                errors.push(&item, "peers must be all IP or all FQDN, not both");
            }
            let distinct: BTreeSet<&Peer> = peers.iter().collect();
            if distinct.len() != peers.len() {
                errors.push(&item, "duplicate peer");
            }
        }
        if let (Some(chain), Some(peers)) = (chain, peers) {
            trunks.push(DesiredTrunk {
                key: spec.key.clone(),
                tls_name: spec.tls_name.trim_end_matches('.').to_ascii_lowercase(),
                certificate_chain: chain,
                peers,
            });
        }
    }
    trunks
}

/// Checks a property and resolves it. Pure: the files were read by the caller.
pub fn validate(raw: &RawProperty) -> Result<Desired, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let file = &raw.file;
    let plan = &file.dial_plan;
    if plan.min_digits == 0 || plan.min_digits > plan.max_digits || plan.max_digits > 15 {
        errors.push("dial_plan", "needs 1 <= min_digits <= max_digits <= 15");
    }
    let trunks = check_trunks(raw, &mut errors);
    let trunk_keys: BTreeSet<&str> = file.trunks.iter().map(|t| t.key.as_str()).collect();
    let book_keys: BTreeSet<&str> = file.address_books.iter().map(|b| b.key.as_str()).collect();

    let all_rooms: Vec<&RoomSpec> = file.rooms.iter().chain(raw.csv_rooms.iter()).collect();
    let mut units = BTreeSet::new();
    let mut extensions: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut external_users = BTreeSet::new();
    let mut rooms = Vec::new();
    for spec in &all_rooms {
        let item = format!("room {}", spec.unit_id);
        if spec.unit_id.trim().is_empty() {
            errors.push(format!("room {:?}", spec.name), "unit_id must not be empty");
        } else if !units.insert(spec.unit_id.clone()) {
            errors.push(&item, "duplicate unit (the same unit_id appears twice)");
        }
        check_name(&mut errors, &item, "name", &spec.name);
        let extension = match &spec.extension {
            None => None,
            Some(ext) => {
                if let Some(reason) = undialable_reason(ext, plan) {
                    errors.push(&item, format!("{reason}: the PBX cannot dial it"));
                }
                let trunk = match &spec.trunk {
                    Some(t) if trunk_keys.contains(t.as_str()) => Some(t.clone()),
                    Some(t) => {
                        errors.push(&item, format!("unknown trunk {t:?}"));
                        None
                    }
                    None if file.trunks.len() == 1 => Some(file.trunks[0].key.clone()),
                    None if file.trunks.is_empty() => {
                        errors.push(&item, "has an extension but the file has no trunk");
                        None
                    }
                    None => {
                        errors.push(
                            &item,
                            "has an extension; name its trunk (the file has several)",
                        );
                        None
                    }
                };
                trunk.map(|trunk| {
                    if let Some(other) =
                        extensions.insert((trunk.clone(), ext.clone()), spec.unit_id.clone())
                    {
                        errors.push(
                            &item,
                            format!("duplicate extension {ext} (also room {other})"),
                        );
                    }
                    (trunk, ext.clone())
                })
            }
        };
        for book in &spec.address_books {
            if !book_keys.contains(book.as_str()) {
                errors.push(&item, format!("unknown address book {book:?}"));
            }
        }
        let distinct_books: BTreeSet<&String> = spec.address_books.iter().collect();
        if distinct_books.len() > MAX_BOOKS_PER_UNIT {
            errors.push(
                &item,
                format!("more than {MAX_BOOKS_PER_UNIT} address books"),
            );
        }
        if let Some(user) = &spec.external_user_id {
            if file.service_provider.is_none() {
                errors.push(&item, "external_user_id needs a [service_provider]");
            }
            if !external_users.insert(user.clone()) {
                errors.push(&item, format!("duplicate external_user_id {user:?}"));
            }
        }
        let mut skills = Vec::new();
        if extension.is_some() && file.skills.pbx_communication {
            skills.push(PBX_COMMUNICATION_SKILL.to_owned());
        }
        if let (Some(_), Some(sp), true) = (
            &spec.external_user_id,
            &file.service_provider,
            file.skills.webrtc,
        ) {
            skills.push(WEBRTC_SUBSCRIPTION_SKILL.to_owned());
            skills.push(sp.skill_id.clone());
        }
        rooms.push(DesiredRoom {
            unit_id: spec.unit_id.clone(),
            name: spec.name.trim().to_owned(),
            extension,
            address_books: distinct_books.into_iter().cloned().collect(),
            external_user_id: spec.external_user_id.clone(),
            skills,
        });
    }
    // Overlap dialling: a PBX that sees "110" dials it before "1101" can be completed.
    let mut by_trunk: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (trunk, ext) in extensions.keys() {
        by_trunk
            .entry(trunk.as_str())
            .or_default()
            .push(ext.as_str());
    }
    for (trunk, exts) in &by_trunk {
        for short in exts {
            if let Some(long) = exts
                .iter()
                .find(|l| l.len() > short.len() && l.starts_with(short))
            {
                errors.push(
                    format!("trunk {trunk}"),
                    format!("extension {short} is a prefix of {long}: the PBX cannot dial {long}"),
                );
            }
        }
    }

    let service_provider = file.service_provider.as_ref().map(|sp| {
        let item = format!("service_provider {}", sp.logical_id);
        if sp.logical_id.trim().is_empty() {
            errors.push("service_provider", "logical_id must not be empty");
        }
        check_name(&mut errors, &item, "display_name", &sp.display_name);
        if !sp.skill_id.starts_with("amzn1.ask.skill.") {
            errors.push(
                &item,
                format!(
                    "skill_id {:?} is not a skill id (amzn1.ask.skill.…)",
                    sp.skill_id
                ),
            );
        }
        DesiredServiceProvider {
            logical_id: sp.logical_id.clone(),
            display_name: sp.display_name.trim().to_owned(),
            locale: sp.locale.clone(),
            skill_id: sp.skill_id.clone(),
        }
    });

    let by_room_name: BTreeMap<&str, &str> = all_rooms
        .iter()
        .map(|r| (r.name.trim(), r.unit_id.as_str()))
        .collect();
    let mut books = Vec::new();
    let mut seen_books = BTreeSet::new();
    for spec in &file.address_books {
        let item = format!("address book {}", spec.key);
        if !seen_books.insert(spec.key.clone()) {
            errors.push(&item, "duplicate address book key");
        }
        check_name(&mut errors, &item, "name", &spec.name);
        if spec.contacts.len() > MAX_CONTACTS_PER_BOOK {
            errors.push(&item, format!("more than {MAX_CONTACTS_PER_BOOK} contacts"));
        }
        let units_in_book = rooms
            .iter()
            .filter(|r| r.address_books.contains(&spec.key))
            .count();
        if units_in_book > MAX_UNITS_PER_BOOK {
            errors.push(
                &item,
                format!("associated with more than {MAX_UNITS_PER_BOOK} units"),
            );
        }
        let mut names = BTreeSet::new();
        let mut contacts = Vec::new();
        for contact in &spec.contacts {
            let citem = format!("{item}, contact {:?}", contact.name);
            check_name(&mut errors, &citem, "name", &contact.name);
            // The name is what a guest says; two contacts that sound the same cannot both work.
            if !names.insert(contact.name.trim().to_lowercase()) {
                errors.push(&citem, "duplicate contact name in this book");
            }
            let kinds = usize::from(contact.room.is_some())
                + usize::from(!contact.phone_numbers.is_empty())
                + usize::from(contact.provider_contact.is_some());
            if kinds != 1 {
                errors.push(
                    &citem,
                    "give exactly one of room, phone_numbers or provider_contact",
                );
                continue;
            }
            let target = if let Some(room) = &contact.room {
                let unit = if units.contains(room) {
                    Some(room.clone())
                } else {
                    by_room_name.get(room.trim()).map(|u| (*u).to_owned())
                };
                match unit {
                    Some(unit) => ContactTarget::Room(unit),
                    None => {
                        errors.push(
                            &citem,
                            format!(
                                "unknown room {room:?} (not a unit_id or room name of this file)"
                            ),
                        );
                        continue;
                    }
                }
            } else if let Some(provider) = &contact.provider_contact {
                if provider.trim().is_empty() {
                    errors.push(&citem, "provider_contact must not be empty");
                }
                ContactTarget::Provider(provider.trim().to_owned())
            } else {
                if contact.phone_numbers.len() > MAX_PHONE_NUMBERS {
                    errors.push(&citem, format!("at most {MAX_PHONE_NUMBERS} phone numbers"));
                }
                for number in &contact.phone_numbers {
                    if !is_e164(number) && undialable_reason(number, plan).is_some() {
                        errors.push(&citem, format!("phone number {number:?} is neither E.164 (+…) nor an extension the PBX can dial"));
                    }
                }
                ContactTarget::PhoneNumbers(contact.phone_numbers.clone())
            };
            contacts.push(DesiredContact {
                name: contact.name.trim().to_owned(),
                target,
            });
        }
        books.push(DesiredBook {
            key: spec.key.clone(),
            name: spec.name.trim().to_owned(),
            contacts,
        });
    }

    if errors.0.is_empty() {
        Ok(Desired {
            region: file.region,
            trunks,
            rooms,
            service_provider,
            address_books: books,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::property::{PropertyFile, parse_property, parse_rooms_csv};

    const CERT: &str = include_str!("../../property.example.pem");

    fn raw(toml: &str, cert: Result<&str, &str>) -> RawProperty {
        let file: PropertyFile = parse_property(toml).unwrap();
        let certificates = file
            .trunks
            .iter()
            .map(|t| {
                (
                    t.certificate_chain.clone(),
                    cert.map(str::to_owned).map_err(str::to_owned),
                )
            })
            .collect();
        RawProperty {
            file,
            csv_rooms: Vec::new(),
            certificates,
        }
    }

    const BASE: &str = r#"
region = "EU"
[dial_plan]
min_digits = 3
max_digits = 4
reserved_prefixes = ["9"]
[[trunks]]
key = "main"
tls_name = "pbx.example.com"
certificate_chain = "c.pem"
peers = [{ fqdn = "sip.example.com", port = 5061 }]
[[rooms]]
unit_id = "u1"
name = "Room 1"
extension = "101"
address_books = ["b"]
[[address_books]]
key = "b"
name = "Book"
contacts = [{ name = "Room one", room = "Room 1" }]
"#;

    #[test]
    fn a_good_property_resolves_rooms_trunks_skills_and_contacts() {
        let desired = validate(&raw(BASE, Ok(CERT))).unwrap();
        let room = &desired.rooms[0];
        assert_eq!(room.extension, Some(("main".into(), "101".into())));
        assert_eq!(
            room.skills,
            vec![crate::property::PBX_COMMUNICATION_SKILL.to_owned()]
        );
        assert_eq!(desired.trunks[0].certificate_chain.len(), 1);
        assert_eq!(
            desired.trunks[0].peers[0].address,
            PeerAddress::Fqdn("sip.example.com".into())
        );
        assert_eq!(
            desired.address_books[0].contacts[0].target,
            ContactTarget::Room("u1".into())
        );
    }

    #[test]
    fn the_dial_plan_rule() {
        let plan = DialPlan {
            min_digits: 3,
            max_digits: 5,
            reserved_prefixes: vec!["9".into(), "0".into()],
        };
        assert_eq!(undialable_reason("1101", &plan), None);
        assert!(
            undialable_reason("11a1", &plan)
                .unwrap()
                .contains("digits only")
        );
        assert!(undialable_reason("11", &plan).unwrap().contains("3..=5"));
        assert!(
            undialable_reason("123456", &plan)
                .unwrap()
                .contains("3..=5")
        );
        assert!(
            undialable_reason("911", &plan)
                .unwrap()
                .contains("emergency")
        );
        assert!(
            undialable_reason("9123", &plan)
                .unwrap()
                .contains("reserves")
        );
        assert!(
            undialable_reason("0123", &plan)
                .unwrap()
                .contains("reserves")
        );
        assert!(undialable_reason("", &plan).is_some());
    }

    #[test]
    fn addresses_names_and_numbers() {
        assert!(is_valid_fqdn("pbx.example.com") && is_valid_fqdn("a-b.example.co.uk."));
        for bad in [
            "localhost",
            "-a.example.com",
            "a..example.com",
            "pbx.example.123",
            "pbx_1.example.com",
            "",
        ] {
            assert!(!is_valid_fqdn(bad), "{bad}");
        }
        assert_eq!(peer_ip_problem(&"192.0.2.1".parse().unwrap()), None);
        assert_eq!(
            peer_ip_problem(&"10.1.2.3".parse().unwrap()),
            Some("a private address")
        );
        assert_eq!(
            peer_ip_problem(&"127.0.0.1".parse().unwrap()),
            Some("a loopback address")
        );
        assert!(is_e164("+12065550100") && !is_e164("12065550100") && !is_e164("+0123456789"));
    }

    #[test]
    fn certificates_must_be_pem_certificates() {
        assert_eq!(
            parse_certificate_chain(&format!("{CERT}\n{CERT}"))
                .unwrap()
                .len(),
            2
        );
        assert!(
            parse_certificate_chain("hello")
                .unwrap_err()
                .contains("no -----BEGIN CERTIFICATE")
        );
        let broken = "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n";
        assert!(
            parse_certificate_chain(broken)
                .unwrap_err()
                .contains("malformed PEM")
        );
        let short = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        assert!(
            parse_certificate_chain(short)
                .unwrap_err()
                .contains("does not hold a DER certificate")
        );
        // Re-encoding gives the same text whatever the file's line endings.
        let crlf = CERT.replace('\n', "\r\n");
        assert_eq!(
            parse_certificate_chain(&crlf).unwrap(),
            parse_certificate_chain(CERT).unwrap()
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_item() {
        let toml = BASE.replace("peers = [{ fqdn = \"sip.example.com\", port = 5061 }]", "peers = [{ fqdn = \"sip.example.com\", port = 5061 }, { ip = \"192.0.2.1\", port = 0 }]")
            + r#"
[[rooms]]
unit_id = "u1"
name = "Room 1 again"
extension = "1010"
address_books = ["nope"]
external_user_id = "x"
[[rooms]]
unit_id = "u3"
name = "Room 3"
extension = "9100"
"#;
        let errors = validate(&raw(&toml, Err("No such file"))).unwrap_err();
        for expected in [
            "cannot be read: No such file",
            "port 0 is not 1–65535",
            "duplicate unit",
            "unknown address book \"nope\"",
            "external_user_id needs a [service_provider]",
            "starts with 9, which the dial plan reserves",
            "extension 101 is a prefix of 1010",
        ] {
            assert!(
                errors.mentions(expected),
                "missing {expected:?} in\n{errors}"
            );
        }
        let mixed = BASE.replace("peers = [{ fqdn = \"sip.example.com\", port = 5061 }]", "peers = [{ fqdn = \"sip.example.com\", port = 5061 }, { ip = \"192.0.2.1\", port = 5061 }]");
        assert!(
            validate(&raw(&mixed, Ok(CERT)))
                .unwrap_err()
                .mentions("all IP or all FQDN")
        );
        let contact = BASE.replace("contacts = [{ name = \"Room one\", room = \"Room 1\" }]", "contacts = [{ name = \"A\", room = \"Room 1\", phone_numbers = [\"101\"] }, { name = \"B\", phone_numbers = [\"1\", \"+12065550100\"] }]");
        let errors = validate(&raw(&contact, Ok(CERT))).unwrap_err();
        assert!(errors.mentions("exactly one of room, phone_numbers or provider_contact"));
        assert!(errors.mentions("phone number \"1\" is neither E.164"));
    }

    #[test]
    fn rooms_from_csv_join_the_file_rooms() {
        let rooms = parse_rooms_csv("unit_id,name,extension,trunk,address_books,external_user_id\nu2, Room 2 ,102,,b; c ,\nu3,Lobby,,,,\n").unwrap();
        assert_eq!(rooms[0].address_books, vec!["b".to_owned(), "c".to_owned()]);
        assert_eq!(
            (
                rooms[0].name.as_str(),
                rooms[0].trunk.as_deref(),
                rooms[1].extension.as_deref()
            ),
            ("Room 2", None, None)
        );
        let mut input = raw(BASE, Ok(CERT));
        input.csv_rooms = rooms;
        let errors = validate(&input).unwrap_err();
        assert!(
            errors.mentions("unknown address book \"c\"") && errors.0.len() == 1,
            "{errors}"
        );
        assert!(
            parse_rooms_csv("unit_id,name\nu1\n")
                .unwrap_err()
                .contains("row 2")
        );
    }
}
