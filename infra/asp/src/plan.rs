//! The difference between what the property file wants ([`Desired`]), what the APIs report
//! ([`Observed`]) and what the tool remembers ([`State`]). Pure: `plan` and `apply` both start
//! here; `apply` then carries the changes out in [`Change::phase`] order.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::property::{ContactTarget, Desired, DesiredContact, Peer};
use crate::state::State;
use crate::wire::{self, WireTarget};

/// What the APIs reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Every trunk of the organisation.
    pub trunks: Vec<ObservedTrunk>,
    /// Trunk id → extension → communication profile id (read for the trunks this file manages).
    pub extensions: BTreeMap<String, BTreeMap<String, String>>,
    /// Unit id → its communication profile (absent: the unit has none).
    pub profiles: BTreeMap<String, ObservedProfile>,
    /// Unit id → skill ids enabled on it.
    pub skills: BTreeMap<String, BTreeSet<String>>,
    /// The service provider whose id the state file holds, when the API still has it.
    pub service_provider: Option<ObservedServiceProvider>,
    /// External user id → amazon id (communication profile) of its account association.
    pub account_associations: BTreeMap<String, String>,
    /// Every address book of the organisation; contacts and units read only for managed ones.
    pub books: Vec<ObservedBook>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedTrunk {
    pub id: String,
    pub status: Option<String>,
    pub tls_name: Option<String>,
    pub certificate_chain: Option<Vec<String>>,
    pub peers: Option<Vec<Peer>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedProfile {
    pub id: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedServiceProvider {
    pub id: String,
    pub display_name: Option<String>,
    /// The skill of its network mapping, if it has one.
    pub network_skill: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedBook {
    pub id: String,
    pub name: String,
    pub contacts: Vec<ObservedContact>,
    pub units: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedContact {
    pub id: String,
    pub name: String,
    pub target: Option<WireTarget>,
}

/// Which API object each of the file's named things is, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Trunk key → trunk id.
    pub trunks: BTreeMap<String, String>,
    /// Address-book key → address book id.
    pub books: BTreeMap<String, String>,
    pub service_provider: Option<String>,
}

/// Ids come from the state file when the API still lists them; otherwise an unclaimed object
/// with the same name is adopted (a create whose answer was lost, or a property set up by hand).
pub fn resolve(
    desired: &Desired,
    state: &State,
    observed_trunks: &[ObservedTrunk],
    observed_books: &[ObservedBook],
) -> Resolved {
    let mut resolved = Resolved::default();
    let listed_trunks: BTreeSet<&str> = observed_trunks.iter().map(|t| t.id.as_str()).collect();
    for (key, trunk) in &state.trunks {
        if listed_trunks.contains(trunk.trunk_id.as_str()) {
            resolved.trunks.insert(key.clone(), trunk.trunk_id.clone());
        }
    }
    for trunk in &desired.trunks {
        if resolved.trunks.contains_key(&trunk.key) {
            continue;
        }
        let claimed: BTreeSet<String> = resolved.trunks.values().cloned().collect();
        if let Some(found) = observed_trunks.iter().find(|t| {
            !claimed.contains(&t.id) && t.tls_name.as_deref() == Some(trunk.tls_name.as_str())
        }) {
            resolved.trunks.insert(trunk.key.clone(), found.id.clone());
        }
    }
    let listed_books: BTreeSet<&str> = observed_books.iter().map(|b| b.id.as_str()).collect();
    for (key, id) in &state.address_books {
        if listed_books.contains(id.as_str()) {
            resolved.books.insert(key.clone(), id.clone());
        }
    }
    for book in &desired.address_books {
        if resolved.books.contains_key(&book.key) {
            continue;
        }
        let claimed: BTreeSet<String> = resolved.books.values().cloned().collect();
        if let Some(found) = observed_books
            .iter()
            .find(|b| !claimed.contains(&b.id) && b.name == book.name)
        {
            resolved.books.insert(book.key.clone(), found.id.clone());
        }
    }
    resolved.service_provider = state
        .service_provider
        .as_ref()
        .map(|sp| sp.service_provider_id.clone());
    resolved
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// One API object, named the way the property file names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Item {
    Trunk {
        key: String,
        id: Option<String>,
    },
    Profile {
        unit_id: String,
        id: Option<String>,
    },
    Skill {
        unit_id: String,
        skill_id: String,
        after_subscription: bool,
    },
    ServiceProvider {
        logical_id: String,
        id: Option<String>,
    },
    NetworkMapping {
        logical_id: String,
    },
    AddressBook {
        key: String,
        id: Option<String>,
    },
    Extension {
        trunk_key: String,
        extension: String,
        unit_id: Option<String>,
    },
    AccountAssociation {
        external_user_id: String,
        unit_id: Option<String>,
    },
    Contact {
        book_key: String,
        name: String,
        id: Option<String>,
    },
    UnitAssociation {
        book_key: String,
        unit_id: String,
    },
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Trunk { key, .. } => write!(f, "trunk {key}"),
            Item::Profile { unit_id, .. } => write!(f, "profile {unit_id}"),
            Item::Skill {
                unit_id, skill_id, ..
            } => write!(f, "skill {skill_id} on {unit_id}"),
            Item::ServiceProvider { logical_id, .. } => write!(f, "service provider {logical_id}"),
            Item::NetworkMapping { logical_id } => write!(f, "network mapping of {logical_id}"),
            Item::AddressBook { key, .. } => write!(f, "address book {key}"),
            Item::Extension {
                trunk_key,
                extension,
                ..
            } => write!(f, "extension {trunk_key}/{extension}"),
            Item::AccountAssociation {
                external_user_id, ..
            } => write!(f, "account association {external_user_id}"),
            Item::Contact { book_key, name, .. } => write!(f, "contact {book_key}/{name}"),
            Item::UnitAssociation { book_key, unit_id } => {
                write!(f, "unit association {book_key} ↔ {unit_id}")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub action: Action,
    pub item: Item,
    pub detail: String,
}

impl Change {
    /// Order of execution: what others refer to first, deletes last (and children before
    /// parents). Changes of one phase are independent and run concurrently.
    pub fn phase(&self) -> u8 {
        match (self.action, &self.item) {
            (
                Action::Delete,
                Item::Trunk { .. } | Item::AddressBook { .. } | Item::ServiceProvider { .. },
            ) => 6,
            (Action::Delete, _) => 5,
            (
                _,
                Item::Trunk { .. }
                | Item::Profile { .. }
                | Item::ServiceProvider { .. }
                | Item::AddressBook { .. },
            ) => 0,
            (_, Item::NetworkMapping { .. }) => 1,
            (
                _,
                Item::Skill {
                    after_subscription: false,
                    ..
                },
            ) => 1,
            (
                _,
                Item::Skill {
                    after_subscription: true,
                    ..
                },
            ) => 2,
            _ => 3,
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.action {
            Action::Create => '+',
            Action::Update => '~',
            Action::Delete => '-',
        };
        write!(f, "{sign} {}", self.item)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Objects the tool owns that the file no longer has, left alone without `--prune`.
    pub kept: Vec<Change>,
    pub unchanged: usize,
    pub resolved: Resolved,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
}

impl Plan {
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for change in &self.changes {
            match change.action {
                Action::Create => counts.created += 1,
                Action::Update => counts.updated += 1,
                Action::Delete => counts.deleted += 1,
            }
        }
        counts
    }

    pub fn to_json(&self) -> serde_json::Value {
        let counts = self.counts();
        let list = |changes: &[Change]| {
            changes
                .iter()
                .map(|c| serde_json::json!({ "action": c.action, "item": c.item.to_string(), "detail": c.detail }))
                .collect::<Vec<_>>()
        };
        serde_json::json!({
            "create": counts.created,
            "update": counts.updated,
            "delete": counts.deleted,
            "unchanged": self.unchanged,
            "changes": list(&self.changes),
            "kept_without_prune": list(&self.kept),
        })
    }
}

/// What a desired contact looks like on the wire, once its room's profile id is known.
pub fn wire_target(
    target: &ContactTarget,
    profiles: &BTreeMap<String, String>,
) -> Option<WireTarget> {
    Some(match target {
        ContactTarget::Room(unit) => WireTarget::Profile(profiles.get(unit)?.clone()),
        ContactTarget::PhoneNumbers(numbers) => WireTarget::PhoneNumbers(numbers.clone()),
        ContactTarget::Provider(id) => WireTarget::Provider(id.clone()),
    })
}

fn describe_target(contact: &DesiredContact) -> String {
    match &contact.target {
        ContactTarget::Room(unit) => format!("rings room {unit}"),
        ContactTarget::PhoneNumbers(n) => format!("dials {}", n.join(", ")),
        ContactTarget::Provider(id) => format!("provider contact {id}"),
    }
}

struct Builder {
    plan: Plan,
    prune: bool,
}

impl Builder {
    fn change(&mut self, action: Action, item: Item, detail: impl Into<String>) {
        let change = Change {
            action,
            item,
            detail: detail.into(),
        };
        if action == Action::Delete && !self.prune {
            self.plan.kept.push(change);
        } else {
            self.plan.changes.push(change);
        }
    }
}

fn trunk_differs(
    desired: &crate::property::DesiredTrunk,
    observed: Option<&ObservedTrunk>,
    applied_digest: Option<&str>,
) -> Option<String> {
    let mut reasons = Vec::new();
    // Fields the API does not echo back are checked against the digest of the last apply.
    let mut fully_compared = false;
    if let Some(t) = observed {
        if let Some(name) = &t.tls_name
            && name != &desired.tls_name
        {
            reasons.push(format!("tls name {name} → {}", desired.tls_name));
        }
        if let Some(peers) = &t.peers {
            let have: BTreeSet<&Peer> = peers.iter().collect();
            let want: BTreeSet<&Peer> = desired.peers.iter().collect();
            if have != want {
                reasons.push("peers differ".to_owned());
            }
        }
        if let Some(chain) = &t.certificate_chain {
            let normalise = |c: &String| c.split_whitespace().collect::<String>();
            if chain
                .iter()
                .map(normalise)
                .ne(desired.certificate_chain.iter().map(normalise))
            {
                reasons.push("certificate chain differs".to_owned());
            }
        }
        fully_compared = t.tls_name.is_some() && t.peers.is_some() && t.certificate_chain.is_some();
    }
    if reasons.is_empty()
        && !fully_compared
        && applied_digest != Some(wire::trunk_digest(desired).as_str())
    {
        reasons.push("the file changed since the last apply".to_owned());
    }
    (!reasons.is_empty()).then(|| reasons.join(", "))
}

/// Computes the changes that make the APIs hold what the file says.
pub fn compute(desired: &Desired, state: &State, observed: &Observed, prune: bool) -> Plan {
    let resolved = resolve(desired, state, &observed.trunks, &observed.books);
    let mut b = Builder {
        plan: Plan {
            resolved: resolved.clone(),
            ..Plan::default()
        },
        prune,
    };
    let profiles: BTreeMap<String, String> = observed
        .profiles
        .iter()
        .map(|(unit, p)| (unit.clone(), p.id.clone()))
        .collect();

    // Trunks.
    for trunk in &desired.trunks {
        match resolved.trunks.get(&trunk.key) {
            None => b.change(
                Action::Create,
                Item::Trunk {
                    key: trunk.key.clone(),
                    id: None,
                },
                format!("{} with {} peer(s)", trunk.tls_name, trunk.peers.len()),
            ),
            Some(id) => {
                let seen = observed.trunks.iter().find(|t| &t.id == id);
                let digest = state
                    .trunks
                    .get(&trunk.key)
                    .and_then(|t| t.applied_digest.as_deref());
                match trunk_differs(trunk, seen, digest) {
                    Some(why) => b.change(
                        Action::Update,
                        Item::Trunk {
                            key: trunk.key.clone(),
                            id: Some(id.clone()),
                        },
                        why,
                    ),
                    None => b.plan.unchanged += 1,
                }
            }
        }
    }
    for (key, trunk) in &state.trunks {
        if desired.trunk(key).is_none() && observed.trunks.iter().any(|t| t.id == trunk.trunk_id) {
            b.change(
                Action::Delete,
                Item::Trunk {
                    key: key.clone(),
                    id: Some(trunk.trunk_id.clone()),
                },
                "not in the file",
            );
        }
    }

    // Profiles and skills.
    for room in &desired.rooms {
        match observed.profiles.get(&room.unit_id) {
            None => b.change(
                Action::Create,
                Item::Profile {
                    unit_id: room.unit_id.clone(),
                    id: None,
                },
                format!("name {:?}", room.name),
            ),
            Some(p) if p.name.as_deref() != Some(room.name.as_str()) => b.change(
                Action::Update,
                Item::Profile {
                    unit_id: room.unit_id.clone(),
                    id: Some(p.id.clone()),
                },
                format!(
                    "name {:?} → {:?}",
                    p.name.as_deref().unwrap_or(""),
                    room.name
                ),
            ),
            Some(_) => b.plan.unchanged += 1,
        }
        let enabled = observed.skills.get(&room.unit_id);
        let provider_skill = desired
            .service_provider
            .as_ref()
            .map(|sp| sp.skill_id.as_str());
        for skill in &room.skills {
            if enabled.is_some_and(|s| s.contains(skill)) {
                b.plan.unchanged += 1;
            } else {
                b.change(
                    Action::Create,
                    Item::Skill {
                        unit_id: room.unit_id.clone(),
                        skill_id: skill.clone(),
                        after_subscription: Some(skill.as_str()) == provider_skill,
                    },
                    "enable (live)",
                );
            }
        }
    }

    // Extensions, per trunk of the file.
    for trunk in &desired.trunks {
        let empty = BTreeMap::new();
        let mapped = resolved
            .trunks
            .get(&trunk.key)
            .and_then(|id| observed.extensions.get(id))
            .unwrap_or(&empty);
        let mut wanted = BTreeSet::new();
        for room in &desired.rooms {
            let Some((key, extension)) = &room.extension else {
                continue;
            };
            if key != &trunk.key {
                continue;
            }
            wanted.insert(extension.clone());
            let item = Item::Extension {
                trunk_key: key.clone(),
                extension: extension.clone(),
                unit_id: Some(room.unit_id.clone()),
            };
            match (mapped.get(extension), profiles.get(&room.unit_id)) {
                (None, _) => b.change(Action::Create, item, format!("→ room {}", room.unit_id)),
                (Some(have), Some(want)) if have == want => b.plan.unchanged += 1,
                (Some(have), _) => b.change(
                    Action::Update,
                    item,
                    format!("mapped to {have}; → room {}", room.unit_id),
                ),
            }
        }
        for extension in mapped.keys().filter(|e| !wanted.contains(*e)) {
            b.change(
                Action::Delete,
                Item::Extension {
                    trunk_key: trunk.key.clone(),
                    extension: extension.clone(),
                    unit_id: None,
                },
                "not in the file",
            );
        }
    }

    // WebRTC: service provider, network mapping, account associations.
    if let Some(sp) = &desired.service_provider {
        match &observed.service_provider {
            None => {
                b.change(
                    Action::Create,
                    Item::ServiceProvider {
                        logical_id: sp.logical_id.clone(),
                        id: None,
                    },
                    format!("{:?}", sp.display_name),
                );
                b.change(
                    Action::Create,
                    Item::NetworkMapping {
                        logical_id: sp.logical_id.clone(),
                    },
                    format!("skill {}", sp.skill_id),
                );
            }
            Some(seen) => {
                if seen.display_name.as_deref() == Some(sp.display_name.as_str()) {
                    b.plan.unchanged += 1;
                } else {
                    b.change(
                        Action::Update,
                        Item::ServiceProvider {
                            logical_id: sp.logical_id.clone(),
                            id: Some(seen.id.clone()),
                        },
                        format!("display name → {:?}", sp.display_name),
                    );
                }
                match &seen.network_skill {
                    None => b.change(
                        Action::Create,
                        Item::NetworkMapping {
                            logical_id: sp.logical_id.clone(),
                        },
                        format!("skill {}", sp.skill_id),
                    ),
                    Some(skill) if skill == &sp.skill_id => b.plan.unchanged += 1,
                    Some(skill) => b.change(
                        Action::Update,
                        Item::NetworkMapping {
                            logical_id: sp.logical_id.clone(),
                        },
                        format!("skill {skill} → {}", sp.skill_id),
                    ),
                }
            }
        }
    }
    let mut wanted_users = BTreeSet::new();
    for room in &desired.rooms {
        let Some(user) = &room.external_user_id else {
            continue;
        };
        wanted_users.insert(user.clone());
        let item = Item::AccountAssociation {
            external_user_id: user.clone(),
            unit_id: Some(room.unit_id.clone()),
        };
        match (
            observed.account_associations.get(user),
            profiles.get(&room.unit_id),
        ) {
            (None, _) => b.change(Action::Create, item, format!("→ room {}", room.unit_id)),
            (Some(have), Some(want)) if have == want => b.plan.unchanged += 1,
            (Some(have), _) => b.change(
                Action::Update,
                item,
                format!("associated with {have}; → room {}", room.unit_id),
            ),
        }
    }
    for user in state.account_associations.keys() {
        if !wanted_users.contains(user) && observed.account_associations.contains_key(user) {
            b.change(
                Action::Delete,
                Item::AccountAssociation {
                    external_user_id: user.clone(),
                    unit_id: None,
                },
                "not in the file",
            );
        }
    }
    if desired.service_provider.is_none()
        && let Some(seen) = &observed.service_provider
    {
        let logical_id = state
            .service_provider
            .as_ref()
            .map(|s| s.logical_id.clone())
            .unwrap_or_default();
        b.change(
            Action::Delete,
            Item::ServiceProvider {
                logical_id,
                id: Some(seen.id.clone()),
            },
            "not in the file",
        );
    }

    // Address books, their contacts and unit associations.
    for book in &desired.address_books {
        let seen = resolved
            .books
            .get(&book.key)
            .and_then(|id| observed.books.iter().find(|b| &b.id == id));
        let units: BTreeSet<&str> = desired
            .rooms
            .iter()
            .filter(|r| r.address_books.contains(&book.key))
            .map(|r| r.unit_id.as_str())
            .collect();
        let Some(seen) = seen else {
            b.change(
                Action::Create,
                Item::AddressBook {
                    key: book.key.clone(),
                    id: None,
                },
                format!("{:?}", book.name),
            );
            for contact in &book.contacts {
                b.change(
                    Action::Create,
                    Item::Contact {
                        book_key: book.key.clone(),
                        name: contact.name.clone(),
                        id: None,
                    },
                    describe_target(contact),
                );
            }
            for unit in units {
                b.change(
                    Action::Create,
                    Item::UnitAssociation {
                        book_key: book.key.clone(),
                        unit_id: unit.to_owned(),
                    },
                    "",
                );
            }
            continue;
        };
        if seen.name == book.name {
            b.plan.unchanged += 1;
        } else {
            b.change(
                Action::Update,
                Item::AddressBook {
                    key: book.key.clone(),
                    id: Some(seen.id.clone()),
                },
                format!("name {:?} → {:?}", seen.name, book.name),
            );
        }
        let mut matched = BTreeSet::new();
        for contact in &book.contacts {
            let existing = seen.contacts.iter().find(|c| {
                c.name.trim().to_lowercase() == contact.name.to_lowercase()
                    && !matched.contains(&c.id)
            });
            match existing {
                None => b.change(
                    Action::Create,
                    Item::Contact {
                        book_key: book.key.clone(),
                        name: contact.name.clone(),
                        id: None,
                    },
                    describe_target(contact),
                ),
                Some(c) => {
                    matched.insert(c.id.clone());
                    let want = wire_target(&contact.target, &profiles);
                    if want.is_some() && want == c.target && c.name == contact.name {
                        b.plan.unchanged += 1;
                    } else {
                        b.change(
                            Action::Update,
                            Item::Contact {
                                book_key: book.key.clone(),
                                name: contact.name.clone(),
                                id: Some(c.id.clone()),
                            },
                            describe_target(contact),
                        );
                    }
                }
            }
        }
        for c in seen.contacts.iter().filter(|c| !matched.contains(&c.id)) {
            b.change(
                Action::Delete,
                Item::Contact {
                    book_key: book.key.clone(),
                    name: c.name.clone(),
                    id: Some(c.id.clone()),
                },
                "not in the file",
            );
        }
        for unit in &units {
            if seen.units.contains(*unit) {
                b.plan.unchanged += 1;
            } else {
                b.change(
                    Action::Create,
                    Item::UnitAssociation {
                        book_key: book.key.clone(),
                        unit_id: (*unit).to_owned(),
                    },
                    "",
                );
            }
        }
        for unit in seen.units.iter().filter(|u| !units.contains(u.as_str())) {
            b.change(
                Action::Delete,
                Item::UnitAssociation {
                    book_key: book.key.clone(),
                    unit_id: unit.clone(),
                },
                "not in the file",
            );
        }
    }
    for (key, id) in &state.address_books {
        if desired.book(key).is_none() && observed.books.iter().any(|b| &b.id == id) {
            b.change(
                Action::Delete,
                Item::AddressBook {
                    key: key.clone(),
                    id: Some(id.clone()),
                },
                "not in the file",
            );
        }
    }
    b.plan.changes.sort_by_key(Change::phase);
    b.plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::property::{DesiredBook, DesiredRoom, DesiredTrunk, PeerAddress, Region};
    use crate::state::TrunkState;

    fn desired() -> Desired {
        Desired {
            region: Region::Na,
            trunks: vec![DesiredTrunk {
                key: "main".into(),
                tls_name: "pbx.example.com".into(),
                certificate_chain: vec!["PEM".into()],
                peers: vec![Peer {
                    address: PeerAddress::Ip("192.0.2.1".parse().unwrap()),
                    port: 5061,
                }],
            }],
            rooms: vec![DesiredRoom {
                unit_id: "u1".into(),
                name: "Room 1".into(),
                extension: Some(("main".into(), "101".into())),
                address_books: vec!["b".into()],
                external_user_id: None,
                skills: vec![],
            }],
            service_provider: None,
            address_books: vec![DesiredBook {
                key: "b".into(),
                name: "Book".into(),
                contacts: vec![DesiredContact {
                    name: "Room one".into(),
                    target: ContactTarget::Room("u1".into()),
                }],
            }],
        }
    }

    fn converged() -> Observed {
        Observed {
            trunks: vec![ObservedTrunk {
                id: "t1".into(),
                status: Some("ACTIVE".into()),
                tls_name: Some("pbx.example.com".into()),
                certificate_chain: None,
                peers: None,
            }],
            extensions: [(
                "t1".to_owned(),
                [("101".to_owned(), "p1".to_owned())].into(),
            )]
            .into(),
            profiles: [(
                "u1".to_owned(),
                ObservedProfile {
                    id: "p1".into(),
                    name: Some("Room 1".into()),
                },
            )]
            .into(),
            books: vec![ObservedBook {
                id: "ab1".into(),
                name: "Book".into(),
                contacts: vec![ObservedContact {
                    id: "c1".into(),
                    name: "Room one".into(),
                    target: Some(WireTarget::Profile("p1".into())),
                }],
                units: ["u1".to_owned()].into(),
            }],
            ..Observed::default()
        }
    }

    fn state() -> State {
        let mut state = State::new();
        state.trunks.insert(
            "main".into(),
            TrunkState {
                trunk_id: "t1".into(),
                applied_digest: Some(wire::trunk_digest(&desired().trunks[0])),
            },
        );
        state.address_books.insert("b".into(), "ab1".into());
        state
    }

    #[test]
    fn nothing_to_do_when_everything_matches() {
        let plan = compute(&desired(), &state(), &converged(), true);
        assert!(plan.changes.is_empty(), "{:?}", plan.changes);
        assert_eq!(plan.unchanged, 6);
    }

    #[test]
    fn an_empty_organisation_needs_everything_in_dependency_order() {
        let plan = compute(&desired(), &State::new(), &Observed::default(), false);
        let items: Vec<String> = plan.changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            items,
            [
                "+ trunk main: pbx.example.com with 1 peer(s)",
                "+ profile u1: name \"Room 1\"",
                "+ address book b: \"Book\"",
                "+ extension main/101: → room u1",
                "+ contact b/Room one: rings room u1",
                "+ unit association b ↔ u1",
            ]
        );
    }

    #[test]
    fn objects_without_state_are_adopted_by_name_not_created_again() {
        let plan = compute(&desired(), &State::new(), &converged(), false);
        assert_eq!(plan.resolved.trunks["main"], "t1");
        assert_eq!(plan.resolved.books["b"], "ab1");
        // The trunk answer has no peers and no digest is known yet: one update records it.
        let items: Vec<String> = plan.changes.iter().map(|c| c.item.to_string()).collect();
        assert_eq!(items, ["trunk main"]);
    }

    #[test]
    fn extras_are_kept_without_prune_and_deleted_with_it() {
        let mut observed = converged();
        observed
            .extensions
            .get_mut("t1")
            .unwrap()
            .insert("102".into(), "p9".into());
        observed.books[0].units.insert("u9".into());
        let mut state = state();
        state.address_books.insert("old".into(), "ab2".into());
        observed.books.push(ObservedBook {
            id: "ab2".into(),
            name: "Old".into(),
            contacts: vec![],
            units: BTreeSet::new(),
        });
        let kept = compute(&desired(), &state, &observed, false);
        assert!(kept.changes.is_empty());
        assert_eq!(kept.kept.len(), 3);
        let pruned = compute(&desired(), &state, &observed, true);
        assert_eq!(pruned.counts().deleted, 3);
        // Children before parents: the book goes last.
        assert_eq!(
            pruned.changes.last().map(|c| c.item.to_string()).as_deref(),
            Some("address book old")
        );
    }

    #[test]
    fn drift_is_found_in_what_the_api_echoes_or_in_the_applied_digest() {
        let mut observed = converged();
        observed.trunks[0].peers = Some(vec![Peer {
            address: PeerAddress::Ip("192.0.2.99".parse().unwrap()),
            port: 5061,
        }]);
        observed
            .extensions
            .get_mut("t1")
            .unwrap()
            .insert("101".into(), "p-other".into());
        let plan = compute(&desired(), &state(), &observed, false);
        let items: Vec<String> = plan.changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            items,
            [
                "~ trunk main: peers differ",
                "~ extension main/101: mapped to p-other; → room u1"
            ]
        );

        let mut changed = desired();
        changed.trunks[0].certificate_chain = vec!["NEW PEM".into()];
        let plan = compute(&changed, &state(), &converged(), false);
        assert_eq!(
            plan.changes[0].to_string(),
            "~ trunk main: the file changed since the last apply"
        );
    }
}
