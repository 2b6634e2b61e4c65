//! Carries a plan out: phase by phase, the changes of a phase concurrently (bounded), every id
//! the APIs return written to the state file at once. A failed change is reported and the rest
//! goes on; the next run plans again from what the APIs then hold and finishes the job.

use futures::{StreamExt, stream};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::client::{ApiError, ApiRequest, AspClient};
use crate::http::Transport;
use crate::plan::{Action, Change, Counts, Item, Observed, Plan, wire_target};
use crate::property::Desired;
use crate::state::{ServiceProviderState, State, StateError, TrunkState};
use crate::wire::{self, str_at};

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub concurrency: usize,
    pub trunk_timeout: Duration,
    pub poll_interval: Duration,
    pub state_path: PathBuf,
    pub progress: bool,
}

#[derive(Debug, Default)]
pub struct ApplyReport {
    pub done: Counts,
    pub failures: Vec<String>,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Missing(String),
}

/// Ids known so far: from the plan, then from each create.
#[derive(Debug, Default)]
struct Ids {
    trunks: BTreeMap<String, String>,
    books: BTreeMap<String, String>,
    service_provider: Option<String>,
    profiles: BTreeMap<String, String>,
}

struct Run<'a, T> {
    client: &'a AspClient<T>,
    desired: &'a Desired,
    ids: Mutex<Ids>,
    state: Mutex<State>,
    options: &'a ApplyOptions,
}

fn missing(what: impl Into<String>) -> ChangeError {
    ChangeError::Missing(what.into())
}

impl<T: Transport> Run<'_, T> {
    fn save_state(&self, update: impl FnOnce(&mut State)) -> Result<(), StateError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        update(&mut state);
        state.save(&self.options.state_path)
    }

    fn id<V: Clone>(&self, pick: impl FnOnce(&Ids) -> Option<V>) -> Option<V> {
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        pick(&ids)
    }

    fn trunk_id(&self, key: &str) -> Result<String, ChangeError> {
        self.id(|i| i.trunks.get(key).cloned())
            .ok_or_else(|| missing(format!("trunk {key} has no id (its create failed)")))
    }

    fn book_id(&self, key: &str) -> Result<String, ChangeError> {
        self.id(|i| i.books.get(key).cloned())
            .ok_or_else(|| missing(format!("address book {key} has no id (its create failed)")))
    }

    fn profile_id(&self, unit: &str) -> Result<String, ChangeError> {
        self.id(|i| i.profiles.get(unit).cloned()).ok_or_else(|| {
            missing(format!(
                "room {unit} has no communication profile (its create failed)"
            ))
        })
    }

    fn provider_id(&self) -> Result<String, ChangeError> {
        self.id(|i| i.service_provider.clone())
            .ok_or_else(|| missing("the service provider has no id (its create failed)"))
    }

    async fn execute(&self, change: &Change) -> Result<(), ChangeError> {
        let client = self.client;
        let desired = self.desired;
        match (&change.action, &change.item) {
            (Action::Create | Action::Update, Item::Trunk { key, .. }) => {
                let trunk = desired
                    .trunk(key)
                    .ok_or_else(|| missing(format!("trunk {key} is not in the file")))?;
                let body = wire::trunk_body(trunk);
                let trunk_id = if change.action == Action::Create {
                    let answer = client.call(&ApiRequest::create(wire::TRUNKS, body)).await?;
                    str_at(&answer.body, "/trunkId")
                        .ok_or_else(|| missing("the trunk create answer has no trunkId"))?
                        .to_owned()
                } else {
                    let id = self.trunk_id(key)?;
                    client
                        .call(&ApiRequest::put(wire::trunk_path(&id), body))
                        .await?;
                    id
                };
                self.ids
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .trunks
                    .insert(key.clone(), trunk_id.clone());
                let digest = wire::trunk_digest(trunk);
                self.save_state(|s| {
                    s.trunks.insert(
                        key.clone(),
                        TrunkState {
                            trunk_id,
                            applied_digest: Some(digest),
                        },
                    );
                })?;
            }
            (Action::Delete, Item::Trunk { key, id }) => {
                let id = id.clone().ok_or_else(|| missing("no trunk id"))?;
                client
                    .call(&ApiRequest::delete(wire::trunk_path(&id)))
                    .await?;
                self.save_state(|s| {
                    s.trunks.remove(key);
                })?;
            }
            (Action::Create, Item::Profile { unit_id, .. }) => {
                let room = desired
                    .room(unit_id)
                    .ok_or_else(|| missing(format!("room {unit_id} is not in the file")))?;
                // Idempotent per unit: an existing profile comes back with its id.
                let answer = client
                    .call(&ApiRequest::post(
                        wire::PROFILE,
                        wire::profile_body(unit_id, &room.name),
                    ))
                    .await?;
                let id = wire::read_profile_id(&answer.body)
                    .ok_or_else(|| missing("the profile answer has no profileId"))?;
                self.ids
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .profiles
                    .insert(unit_id.clone(), id);
            }
            (Action::Update, Item::Profile { unit_id, id }) => {
                let room = desired
                    .room(unit_id)
                    .ok_or_else(|| missing(format!("room {unit_id} is not in the file")))?;
                let id = id.clone().ok_or_else(|| missing("no profile id"))?;
                client
                    .call(&ApiRequest::put(
                        wire::profile_path(&id),
                        json!({ "name": room.name }),
                    ))
                    .await?;
            }
            (
                Action::Create,
                Item::Skill {
                    unit_id, skill_id, ..
                },
            ) => {
                client
                    .call(&ApiRequest::post(
                        wire::skill_enablements_path(skill_id),
                        wire::enable_skill_body(unit_id),
                    ))
                    .await?;
            }
            (Action::Create, Item::ServiceProvider { logical_id, .. }) => {
                let sp = desired
                    .service_provider
                    .as_ref()
                    .ok_or_else(|| missing("no service provider in the file"))?;
                let answer = client
                    .call(&ApiRequest::create(
                        wire::SERVICE_PROVIDERS,
                        wire::service_provider_body(logical_id, &sp.locale, &sp.display_name),
                    ))
                    .await?;
                let id = str_at(&answer.body, "/serviceProviderId")
                    .ok_or_else(|| missing("the answer has no serviceProviderId"))?
                    .to_owned();
                self.ids
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .service_provider = Some(id.clone());
                self.save_state(|s| {
                    s.service_provider = Some(ServiceProviderState {
                        logical_id: logical_id.clone(),
                        service_provider_id: id,
                    });
                })?;
            }
            (Action::Update, Item::ServiceProvider { .. }) => {
                let sp = desired
                    .service_provider
                    .as_ref()
                    .ok_or_else(|| missing("no service provider in the file"))?;
                let id = self.provider_id()?;
                let body =
                    json!({ "displayName": [ { "locale": sp.locale, "value": sp.display_name } ] });
                client
                    .call(&ApiRequest::put(wire::service_provider_path(&id), body))
                    .await?;
            }
            (Action::Delete, Item::ServiceProvider { id, .. }) => {
                let id = id
                    .clone()
                    .ok_or_else(|| missing("no service provider id"))?;
                client
                    .call(&ApiRequest::delete(wire::service_provider_path(&id)))
                    .await?;
                self.save_state(|s| s.service_provider = None)?;
            }
            (Action::Create | Action::Update, Item::NetworkMapping { .. }) => {
                let sp = desired
                    .service_provider
                    .as_ref()
                    .ok_or_else(|| missing("no service provider in the file"))?;
                let path = wire::network_path(&self.provider_id()?);
                let body = wire::network_body(&sp.skill_id);
                let request = if change.action == Action::Create {
                    ApiRequest::post(path, body)
                } else {
                    ApiRequest::put(path, body)
                };
                client.call(&request).await?;
            }
            (Action::Create, Item::AddressBook { key, .. }) => {
                let book = desired
                    .book(key)
                    .ok_or_else(|| missing(format!("address book {key} is not in the file")))?;
                let answer = client
                    .call(&ApiRequest::create(
                        wire::ADDRESS_BOOKS,
                        json!({ "name": book.name }),
                    ))
                    .await?;
                let id = str_at(&answer.body, "/addressBookId")
                    .ok_or_else(|| missing("the answer has no addressBookId"))?
                    .to_owned();
                self.ids
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .books
                    .insert(key.clone(), id.clone());
                self.save_state(|s| {
                    s.address_books.insert(key.clone(), id);
                })?;
            }
            (Action::Update, Item::AddressBook { key, .. }) => {
                let book = desired
                    .book(key)
                    .ok_or_else(|| missing(format!("address book {key} is not in the file")))?;
                client
                    .call(&ApiRequest::put(
                        wire::book_path(&self.book_id(key)?),
                        json!({ "name": book.name }),
                    ))
                    .await?;
            }
            (Action::Delete, Item::AddressBook { key, id }) => {
                let id = id.clone().ok_or_else(|| missing("no address book id"))?;
                client
                    .call(&ApiRequest::delete(wire::book_path(&id)))
                    .await?;
                self.save_state(|s| {
                    s.address_books.remove(key);
                })?;
            }
            (
                Action::Create | Action::Update,
                Item::Extension {
                    trunk_key,
                    extension,
                    unit_id,
                },
            ) => {
                let unit = unit_id.as_deref().ok_or_else(|| missing("no room"))?;
                let path = wire::extension_path(&self.trunk_id(trunk_key)?, extension);
                let body = wire::extension_body(&self.profile_id(unit)?);
                let request = if change.action == Action::Create {
                    ApiRequest::post(path, body)
                } else {
                    ApiRequest::put(path, body)
                };
                client.call(&request).await?;
            }
            (
                Action::Delete,
                Item::Extension {
                    trunk_key,
                    extension,
                    ..
                },
            ) => {
                client
                    .call(&ApiRequest::delete(wire::extension_path(
                        &self.trunk_id(trunk_key)?,
                        extension,
                    )))
                    .await?;
            }
            (
                Action::Create | Action::Update,
                Item::AccountAssociation {
                    external_user_id,
                    unit_id,
                },
            ) => {
                let unit = unit_id.as_deref().ok_or_else(|| missing("no room"))?;
                let path = wire::external_users_path(&self.provider_id()?);
                let body =
                    wire::account_association_body(external_user_id, &self.profile_id(unit)?);
                let request = if change.action == Action::Create {
                    ApiRequest::post(path, body)
                } else {
                    ApiRequest::put(path, body)
                };
                client.call(&request).await?;
                self.save_state(|s| {
                    s.account_associations
                        .insert(external_user_id.clone(), unit.to_owned());
                })?;
            }
            (
                Action::Delete,
                Item::AccountAssociation {
                    external_user_id, ..
                },
            ) => {
                let path = wire::external_users_path(&self.provider_id()?);
                client
                    .call(
                        &ApiRequest::delete(path)
                            .with_body(json!({ "externalUserId": external_user_id })),
                    )
                    .await?;
                self.save_state(|s| {
                    s.account_associations.remove(external_user_id);
                })?;
            }
            (Action::Create | Action::Update, Item::Contact { book_key, name, id }) => {
                let book = desired.book(book_key).ok_or_else(|| {
                    missing(format!("address book {book_key} is not in the file"))
                })?;
                let contact = book
                    .contacts
                    .iter()
                    .find(|c| &c.name == name)
                    .ok_or_else(|| missing(format!("contact {name} is not in the file")))?;
                let profiles = self.id(|i| Some(i.profiles.clone())).unwrap_or_default();
                let target = wire_target(&contact.target, &profiles).ok_or_else(|| {
                    missing(format!(
                        "contact {name}: its room has no communication profile"
                    ))
                })?;
                let book_id = self.book_id(book_key)?;
                let body = wire::contact_body(name, &target);
                let request = match id {
                    Some(contact_id) if change.action == Action::Update => {
                        ApiRequest::put(wire::contact_path(&book_id, contact_id), body)
                    }
                    _ => ApiRequest::create(wire::contacts_path(&book_id), body),
                };
                client.call(&request).await?;
            }
            (Action::Delete, Item::Contact { book_key, id, .. }) => {
                let contact_id = id.clone().ok_or_else(|| missing("no contact id"))?;
                client
                    .call(&ApiRequest::delete(wire::contact_path(
                        &self.book_id(book_key)?,
                        &contact_id,
                    )))
                    .await?;
            }
            (Action::Create, Item::UnitAssociation { book_key, unit_id }) => {
                client
                    .call(&ApiRequest::post(
                        wire::unit_associations_path(&self.book_id(book_key)?),
                        json!({ "unitId": unit_id }),
                    ))
                    .await?;
            }
            (Action::Delete, Item::UnitAssociation { book_key, unit_id }) => {
                let path = format!(
                    "{}?unitId={}",
                    wire::unit_associations_path(&self.book_id(book_key)?),
                    wire::enc(unit_id)
                );
                client.call(&ApiRequest::delete(path)).await?;
            }
            (action, item) => return Err(missing(format!("no way to {action:?} {item}"))),
        }
        Ok(())
    }
}

/// The PBX-side status of a trunk: polled until `ACTIVE`.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(
        "trunk {trunk_id} is not ACTIVE after {waited:?} (last status {status}); it usually takes 5–10 minutes — run `asp trunk wait {trunk_id}` again, or check the certificate chain and peers"
    )]
    Timeout {
        trunk_id: String,
        waited: Duration,
        status: String,
    },
    #[error(
        "trunk {trunk_id} reports status {status}: provisioning failed; check the certificate chain, TLS name and peers, then delete and create it again"
    )]
    Failed { trunk_id: String, status: String },
    #[error("trunk {0} does not exist")]
    NotFound(String),
}

pub async fn wait_active<T: Transport>(
    client: &AspClient<T>,
    trunk_id: &str,
    timeout: Duration,
    interval: Duration,
    mut on_poll: impl FnMut(u32, &str),
) -> Result<Value, WaitError> {
    let started = Instant::now();
    let mut polls = 0;
    loop {
        polls += 1;
        let body = client
            .get_optional(&wire::trunk_path(trunk_id))
            .await?
            .ok_or_else(|| WaitError::NotFound(trunk_id.to_owned()))?;
        let status = str_at(&body, "/status").unwrap_or("UNKNOWN").to_owned();
        on_poll(polls, &status);
        if status.eq_ignore_ascii_case("ACTIVE") {
            return Ok(body);
        }
        let upper = status.to_ascii_uppercase();
        if upper.contains("FAIL") || upper.contains("ERROR") {
            return Err(WaitError::Failed {
                trunk_id: trunk_id.to_owned(),
                status,
            });
        }
        if started.elapsed() + interval > timeout {
            return Err(WaitError::Timeout {
                trunk_id: trunk_id.to_owned(),
                waited: started.elapsed(),
                status,
            });
        }
        tokio::time::sleep(interval).await;
    }
}

struct Progress {
    total: usize,
    done: AtomicUsize,
    failed: AtomicUsize,
    enabled: bool,
    tty: bool,
}

impl Progress {
    fn tick(&self, ok: bool) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        if !self.enabled {
            return;
        }
        let failed = self.failed.load(Ordering::Relaxed);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let width = 30;
            let filled = done * width / self.total.max(1);
            let _ = write!(
                err,
                "\r[{}{}] {done}/{} changes, {failed} failed",
                "#".repeat(filled),
                ".".repeat(width - filled),
                self.total
            );
            if done == self.total {
                let _ = writeln!(err);
            }
        } else if done == self.total || done.is_multiple_of((self.total / 10).max(1)) {
            let _ = writeln!(err, "apply: {done}/{} changes, {failed} failed", self.total);
        }
    }
}

/// Applies `plan`, which was computed from `observed` and `state`.
pub async fn apply<T: Transport>(
    client: &AspClient<T>,
    desired: &Desired,
    mut state: State,
    observed: &Observed,
    plan: &Plan,
    options: &ApplyOptions,
) -> ApplyReport {
    let started = Instant::now();
    let mut report = ApplyReport::default();
    // Record what the plan adopted, so `--prune` knows it owns it from now on.
    for (key, id) in &plan.resolved.trunks {
        state
            .trunks
            .entry(key.clone())
            .or_insert_with(|| TrunkState {
                trunk_id: id.clone(),
                applied_digest: None,
            });
    }
    for (key, id) in &plan.resolved.books {
        state
            .address_books
            .entry(key.clone())
            .or_insert_with(|| id.clone());
    }
    for room in &desired.rooms {
        if let Some(user) = &room.external_user_id
            && observed.account_associations.contains_key(user)
        {
            state
                .account_associations
                .entry(user.clone())
                .or_insert_with(|| room.unit_id.clone());
        }
    }
    if let Err(e) = state.save(&options.state_path) {
        report.failures.push(e.to_string());
        return report;
    }
    let run = Run {
        client,
        desired,
        ids: Mutex::new(Ids {
            trunks: plan.resolved.trunks.clone(),
            books: plan.resolved.books.clone(),
            service_provider: plan.resolved.service_provider.clone(),
            profiles: observed
                .profiles
                .iter()
                .map(|(u, p)| (u.clone(), p.id.clone()))
                .collect(),
        }),
        state: Mutex::new(state),
        options,
    };
    let progress = Progress {
        total: plan.changes.len(),
        done: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        enabled: options.progress,
        tty: std::io::stderr().is_terminal(),
    };
    let done = Mutex::new(Counts::default());
    let failures = Mutex::new(Vec::new());
    let phases: std::collections::BTreeSet<u8> = plan.changes.iter().map(Change::phase).collect();
    for phase in phases {
        let changes: Vec<&Change> = plan.changes.iter().filter(|c| c.phase() == phase).collect();
        // Extensions go on a trunk only once it is ACTIVE.
        let mut inactive: BTreeMap<String, String> = BTreeMap::new();
        if phase == 3 {
            let keys: std::collections::BTreeSet<&String> = changes
                .iter()
                .filter_map(|c| match &c.item {
                    Item::Extension { trunk_key, .. } => Some(trunk_key),
                    _ => None,
                })
                .collect();
            for key in keys {
                let Some(id) = run.id(|i| i.trunks.get(key).cloned()) else {
                    continue;
                };
                let active = observed
                    .trunks
                    .iter()
                    .any(|t| t.id == id && t.status.as_deref() == Some("ACTIVE"));
                if active {
                    continue;
                }
                if options.progress {
                    eprintln!(
                        "apply: waiting for trunk {key} ({id}) to become ACTIVE (up to {:?})",
                        options.trunk_timeout
                    );
                }
                if let Err(e) = wait_active(
                    client,
                    &id,
                    options.trunk_timeout,
                    options.poll_interval,
                    |_, _| {},
                )
                .await
                {
                    inactive.insert(key.clone(), e.to_string());
                }
            }
        }
        stream::iter(changes)
            .for_each_concurrent(options.concurrency.max(1), |change| {
                let run = &run;
                let inactive = &inactive;
                let done = &done;
                let failures = &failures;
                let progress = &progress;
                async move {
                    let blocked = match &change.item {
                        Item::Extension { trunk_key, .. } => inactive.get(trunk_key).cloned(),
                        _ => None,
                    };
                    let result = match blocked {
                        Some(why) => Err(missing(why)),
                        None => run.execute(change).await,
                    };
                    progress.tick(result.is_ok());
                    match result {
                        Ok(()) => {
                            let mut done = done.lock().unwrap_or_else(|p| p.into_inner());
                            match change.action {
                                Action::Create => done.created += 1,
                                Action::Update => done.updated += 1,
                                Action::Delete => done.deleted += 1,
                            }
                        }
                        Err(e) => failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!("{}: {e}", change.item)),
                    }
                }
            })
            .await;
    }
    report.done = done.into_inner().unwrap_or_else(|p| p.into_inner());
    report.failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    report.seconds = started.elapsed().as_secs_f64();
    report
}
