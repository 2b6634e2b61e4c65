//! Reads what the APIs hold for the objects a property file is about: the input of the plan.
//! Only reads; rooms are read with bounded concurrency.

use futures::{StreamExt, TryStreamExt, stream};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

use crate::client::{ApiError, AspClient};
use crate::http::Transport;
use crate::plan::{
    Observed, ObservedBook, ObservedContact, ObservedProfile, ObservedServiceProvider,
    ObservedTrunk, resolve,
};
use crate::property::Desired;
use crate::state::State;
use crate::wire::{self, str_at};

pub fn read_trunk(value: &Value) -> Option<ObservedTrunk> {
    let id = str_at(value, "/trunkId")
        .or_else(|| str_at(value, "/id"))?
        .to_owned();
    Some(ObservedTrunk {
        id,
        status: str_at(value, "/status").map(str::to_owned),
        tls_name: str_at(value, "/tls/name").map(str::to_ascii_lowercase),
        certificate_chain: value
            .pointer("/tls/certificateChain")
            .and_then(Value::as_array)
            .map(|chain| {
                chain
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            }),
        peers: value
            .get("peers")
            .and_then(Value::as_array)
            .map(|peers| peers.iter().filter_map(wire::read_peer).collect()),
    })
}

/// Reads everything the plan compares. `concurrency` bounds the per-room reads.
pub async fn observe<T: Transport>(
    client: &AspClient<T>,
    desired: &Desired,
    state: &State,
    concurrency: usize,
) -> Result<Observed, ApiError> {
    let concurrency = concurrency.max(1);
    let mut observed = Observed::default();
    if !desired.trunks.is_empty() || !state.trunks.is_empty() {
        observed.trunks = client
            .list_all(wire::TRUNKS)
            .await?
            .iter()
            .filter_map(read_trunk)
            .collect();
    }
    if !desired.address_books.is_empty() || !state.address_books.is_empty() {
        observed.books = client
            .list_all(wire::ADDRESS_BOOKS)
            .await?
            .iter()
            .filter_map(|b| {
                Some(ObservedBook {
                    id: str_at(b, "/addressBookId")?.to_owned(),
                    name: str_at(b, "/name").unwrap_or_default().to_owned(),
                    contacts: Vec::new(),
                    units: BTreeSet::new(),
                })
            })
            .collect();
    }
    let resolved = resolve(desired, state, &observed.trunks, &observed.books);

    observed.profiles = stream::iter(desired.rooms.iter())
        .map(|room| async move {
            let answer = client
                .get_optional(&wire::profile_by_unit_path(&room.unit_id))
                .await?;
            Ok::<_, ApiError>(answer.and_then(|body| {
                let id = wire::read_profile_id(&body)?;
                Some((
                    room.unit_id.clone(),
                    ObservedProfile {
                        id,
                        name: str_at(&body, "/name").map(str::to_owned),
                    },
                ))
            }))
        })
        .buffer_unordered(concurrency)
        .try_filter_map(|found| async move { Ok(found) })
        .try_collect()
        .await?;

    observed.skills = stream::iter(desired.rooms.iter().filter(|r| !r.skills.is_empty()))
        .map(|room| async move {
            let items = client
                .list_all(&wire::unit_skills_path(&room.unit_id))
                .await?;
            let skills: BTreeSet<String> = items
                .iter()
                .filter_map(|i| {
                    str_at(i, "/skill/id")
                        .or_else(|| str_at(i, "/skillId"))
                        .map(str::to_owned)
                })
                .collect();
            Ok::<_, ApiError>((room.unit_id.clone(), skills))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;

    let mut trunk_ids: BTreeSet<&String> = resolved.trunks.values().collect();
    trunk_ids.extend(
        state
            .trunks
            .values()
            .map(|t| &t.trunk_id)
            .filter(|id| observed.trunks.iter().any(|t| &t.id == *id)),
    );
    for trunk_id in trunk_ids {
        let mapped: BTreeMap<String, String> = client
            .list_all(&wire::extensions_path(trunk_id))
            .await?
            .iter()
            .filter_map(|e| {
                Some((
                    str_at(e, "/extension")?.to_owned(),
                    str_at(e, "/commsProfileId").unwrap_or_default().to_owned(),
                ))
            })
            .collect();
        observed.extensions.insert(trunk_id.clone(), mapped);
    }

    if let Some(sp) = &state.service_provider {
        if let Some(body) = client
            .get_optional(&wire::service_provider_path(&sp.service_provider_id))
            .await?
        {
            let network = client
                .get_optional(&wire::network_path(&sp.service_provider_id))
                .await?;
            observed.service_provider = Some(ObservedServiceProvider {
                id: sp.service_provider_id.clone(),
                display_name: str_at(&body, "/displayName/0/value").map(str::to_owned),
                network_skill: network
                    .as_ref()
                    .and_then(|n| str_at(n, "/skillConfiguration/skillId"))
                    .map(str::to_owned),
            });
        }
        let users: BTreeSet<&String> = desired
            .rooms
            .iter()
            .filter_map(|r| r.external_user_id.as_ref())
            .chain(state.account_associations.keys())
            .collect();
        if observed.service_provider.is_some() && !users.is_empty() {
            let users: Vec<&String> = users.into_iter().collect();
            let path = format!(
                "{}/query",
                wire::external_users_path(&sp.service_provider_id)
            );
            for chunk in users.chunks(wire::PAGE_SIZE) {
                for found in client
                    .query_all(&path, json!({ "externalUserIds": chunk }))
                    .await?
                {
                    if let (Some(user), Some(amazon)) = (
                        str_at(&found, "/externalUserId"),
                        str_at(&found, "/amazonId"),
                    ) {
                        observed
                            .account_associations
                            .insert(user.to_owned(), amazon.to_owned());
                    }
                }
            }
        }
    }

    let managed: BTreeSet<String> = resolved.books.values().cloned().collect();
    let details: Vec<(String, Vec<ObservedContact>, BTreeSet<String>)> = stream::iter(managed)
        .map(|id| async move {
            let mut contacts = Vec::new();
            for listed in client.list_all(&wire::contacts_path(&id)).await? {
                let read = match wire::read_contact(&listed) {
                    Some(read) if read.2.is_some() => Some(read),
                    // Lists may carry ids only: read the contact itself.
                    _ => match str_at(&listed, "/contactId") {
                        Some(cid) => client
                            .get_optional(&wire::contact_path(&id, cid))
                            .await?
                            .and_then(|mut body| {
                                if body.get("contactId").is_none() {
                                    body["contactId"] = json!(cid);
                                }
                                wire::read_contact(&body)
                            }),
                        None => None,
                    },
                };
                if let Some((cid, name, target)) = read {
                    contacts.push(ObservedContact {
                        id: cid,
                        name,
                        target,
                    });
                }
            }
            let units = client
                .list_all(&wire::unit_associations_path(&id))
                .await?
                .iter()
                .filter_map(|u| str_at(u, "/unitId").map(str::to_owned))
                .collect();
            Ok::<_, ApiError>((id, contacts, units))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    for (id, contacts, units) in details {
        if let Some(book) = observed.books.iter_mut().find(|b| b.id == id) {
            book.contacts = contacts;
            book.units = units;
        }
    }
    Ok(observed)
}
