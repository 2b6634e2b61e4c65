//! A stateful loopback fake of Login with Amazon and the ASP REST APIs this tool calls, for the
//! tests and `make provision-demo` (`asp fake-server`). It checks each token's scope, makes new
//! trunks `ACTIVE` only after some polls, refuses extensions on a trunk that is not active,
//! keeps communication profiles idempotent per unit, enforces the address-book limits, pages
//! every list by at most 10, and answers injected faults (429 with `Retry-After`, 5xx before or
//! after applying a write). Where the real API's behaviour is unknown, the fake's choice is
//! listed in `docs/provisioning.md`.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SCOPE_SIPTRUNK: &str = "amazon_communication::network:siptrunk";
pub const SCOPE_MANAGEMENT: &str = "alexa::enterprise:management";
pub const SCOPE_PROVIDER: &str = "amazon_communication::service_provider";

#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// A new trunk answers `PENDING` to this many GETs, then `ACTIVE`.
    pub polls_until_active: u32,
    pub token_lifetime: Duration,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            client_id: "demo-client".into(),
            client_secret: "demo-secret".into(),
            refresh_token: "Atzr|demo-refresh".into(),
            polls_until_active: 2,
            token_lifetime: Duration::from_secs(3600),
        }
    }
}

/// An injected failure: the next `times` requests whose method matches (if given) and whose
/// path contains `path_contains` get `status`. With `after_apply`, the request takes effect
/// first and only the answer is lost.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Option<Method>,
    pub path_contains: String,
    pub status: u16,
    pub times: u32,
    pub retry_after: Option<u64>,
    pub after_apply: bool,
}

impl Fault {
    pub fn new(method: Option<Method>, path_contains: &str, status: u16, times: u32) -> Self {
        Self {
            method,
            path_contains: path_contains.into(),
            status,
            times,
            retry_after: None,
            after_apply: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FakeTrunk {
    pub body: Value,
    pub gets_until_active: u32,
    pub extensions: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct FakeProvider {
    pub logical_id: String,
    pub display_name: Value,
    pub network: Option<Value>,
    pub external_users: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct FakeBook {
    pub name: String,
    pub contacts: BTreeMap<String, Value>,
    pub units: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub status: u16,
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub config: FakeConfig,
    pub trunks: BTreeMap<String, FakeTrunk>,
    /// Unit id → (profile id, name).
    pub profiles: BTreeMap<String, (String, String)>,
    /// (skill id, unit id) enabled.
    pub skills: BTreeSet<(String, String)>,
    pub providers: BTreeMap<String, FakeProvider>,
    pub books: BTreeMap<String, FakeBook>,
    pub faults: Vec<Fault>,
    pub log: Vec<Recorded>,
    tokens: HashMap<String, (Vec<String>, Instant)>,
    next_id: u64,
}

impl FakeState {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:06}", self.next_id)
    }

    /// Requests other than token fetches and reads (`GET`, `…/query`).
    pub fn writes(&self) -> usize {
        self.log
            .iter()
            .filter(|r| {
                r.method != Method::GET
                    && !r.path.ends_with("/query")
                    && !r.path.starts_with("/auth")
            })
            .count()
    }

    pub fn count(&self, method: &Method, path_contains: &str) -> usize {
        self.log
            .iter()
            .filter(|r| r.method == *method && r.path.contains(path_contains))
            .count()
    }

    pub fn profile_of(&self, unit: &str) -> Option<String> {
        self.profiles.get(unit).map(|(id, _)| id.clone())
    }

    /// Expires every token it issued (to test refresh on 401).
    pub fn expire_tokens(&mut self) {
        let past = Instant::now();
        for (_, expiry) in self.tokens.values_mut() {
            *expiry = past;
        }
    }
}

type Answer = (u16, Value);

fn err(status: u16, message: impl Into<String>) -> Answer {
    (status, json!({ "message": message.into() }))
}

/// Pages `items` by the request's `maxResults` (1–10) and `nextToken`.
fn page(items: Vec<Value>, query: &HashMap<String, String>, body: Option<&Value>) -> Answer {
    let from_body = |key: &str| body.and_then(|b| b.pointer(&format!("/paginationContext/{key}")));
    let max = query
        .get("maxResults")
        .map(|m| m.parse::<usize>().unwrap_or(0))
        .or_else(|| {
            from_body("maxResults")
                .and_then(Value::as_u64)
                .and_then(|m| usize::try_from(m).ok())
        })
        .unwrap_or(10);
    if max == 0 || max > 10 {
        return err(400, "maxResults must be a positive value of 10 or less");
    }
    let next = query.get("nextToken").cloned().or_else(|| {
        from_body("nextToken")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let start = match next {
        None => 0,
        Some(token) => match token
            .strip_prefix("page-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if n <= items.len() => n,
            _ => return err(400, "invalid nextToken"),
        },
    };
    let end = (start + max).min(items.len());
    let mut answer = json!({ "results": items[start..end].to_vec() });
    if end < items.len() {
        answer["paginationContext"] = json!({ "nextToken": format!("page-{end}") });
    }
    (200, answer)
}

fn required_scope(path: &str) -> &'static str {
    if path.starts_with("/v1/communications/network/siptrunk") {
        SCOPE_SIPTRUNK
    } else if path.starts_with("/v1/communications/serviceProviders") {
        SCOPE_PROVIDER
    } else {
        SCOPE_MANAGEMENT
    }
}

fn token_endpoint(state: &mut FakeState, body: &[u8]) -> Answer {
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != state.config.client_id
        || get("client_secret") != state.config.client_secret
    {
        return (
            401,
            json!({ "error": "invalid_client", "error_description": "Client authentication failed" }),
        );
    }
    let scopes: Vec<String> = get("scope").split_whitespace().map(str::to_owned).collect();
    match get("grant_type") {
        "client_credentials" => {
            if scopes != [SCOPE_SIPTRUNK] {
                return (
                    400,
                    json!({ "error": "invalid_scope", "error_description": "client_credentials is granted for the PBX scope only" }),
                );
            }
        }
        "refresh_token" => {
            if get("refresh_token") != state.config.refresh_token {
                return (
                    400,
                    json!({ "error": "invalid_grant", "error_description": "The request has an invalid grant parameter : refresh_token" }),
                );
            }
            if scopes.is_empty()
                || scopes
                    .iter()
                    .any(|s| s != SCOPE_MANAGEMENT && s != SCOPE_PROVIDER)
            {
                return (
                    400,
                    json!({ "error": "invalid_scope", "error_description": "scope not granted to this consent" }),
                );
            }
        }
        _ => return (400, json!({ "error": "unsupported_grant_type" })),
    }
    let token = format!("Atza|fake-{}", state.id(""));
    let lifetime = state.config.token_lifetime;
    state
        .tokens
        .insert(token.clone(), (scopes.clone(), Instant::now() + lifetime));
    (
        200,
        json!({ "access_token": token, "expires_in": lifetime.as_secs(), "scope": scopes.join(" "), "token_type": "bearer" }),
    )
}

fn check_contact(contact: &Value) -> Result<(), String> {
    let name = contact
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.is_empty() || name.chars().count() > 50 {
        return Err("contact.name must be 1-50 characters".into());
    }
    let kinds = [
        "alexaCommunicationProfileId",
        "phoneNumbers",
        "providerContact",
    ]
    .iter()
    .filter(|k| contact.get(**k).is_some_and(|v| !v.is_null()))
    .count();
    if kinds != 1 {
        return Err("a contact has exactly one of alexaCommunicationProfileId, phoneNumbers, providerContact".into());
    }
    if let Some(numbers) = contact.get("phoneNumbers").and_then(Value::as_array)
        && (numbers.is_empty() || numbers.len() > 3)
    {
        return Err("a contact has 1 to 3 phone numbers".into());
    }
    Ok(())
}

fn route(
    state: &mut FakeState,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    body: &Value,
) -> Answer {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let s = |i: usize| segments.get(i).copied().unwrap_or_default();
    let decoded = |i: usize| -> String {
        form_urlencoded::parse(format!("x={}", s(i).replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let str_field = |pointer: &str| {
        body.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match (method.as_str(), segments.as_slice()) {
        // ---- PBX
        ("POST", ["v1", "communications", "network", "siptrunk"]) => {
            let chain_ok = body
                .pointer("/tls/certificateChain")
                .and_then(Value::as_array)
                .is_some_and(|c| !c.is_empty());
            let peers_ok = body
                .get("peers")
                .and_then(Value::as_array)
                .is_some_and(|p| {
                    !p.is_empty()
                        && p.iter().all(|peer| {
                            peer.get("port").is_some_and(Value::is_u64)
                                && (peer.get("ip").is_some() || peer.get("fqdn").is_some())
                        })
                });
            if str_field("/tls/name").is_none() || !chain_ok || !peers_ok {
                return err(
                    400,
                    "tls.name, tls.certificateChain and peers[{ip|fqdn, port}] are required",
                );
            }
            let id = state.id("amzn1.comms.network.siptrunk.");
            let gets = state.config.polls_until_active;
            state.trunks.insert(
                id.clone(),
                FakeTrunk {
                    body: body.clone(),
                    gets_until_active: gets,
                    extensions: BTreeMap::new(),
                },
            );
            (201, json!({ "trunkId": id }))
        }
        ("GET", ["v1", "communications", "network", "siptrunk"]) => {
            let items = state
                .trunks
                .iter()
                .map(|(id, t)| {
                    let mut v = t.body.clone();
                    v["trunkId"] = json!(id);
                    v["status"] = json!(if t.gets_until_active == 0 {
                        "ACTIVE"
                    } else {
                        "PENDING"
                    });
                    v
                })
                .collect();
            page(items, query, None)
        }
        (_, ["v1", "communications", "network", "siptrunk", _, rest @ ..]) => {
            let id = decoded(4);
            let Some(trunk) = state.trunks.get_mut(&id) else {
                return err(404, format!("trunk {id} not found"));
            };
            match (method.as_str(), rest) {
                ("GET", []) => {
                    trunk.gets_until_active = trunk.gets_until_active.saturating_sub(1);
                    let mut v = trunk.body.clone();
                    v["trunkId"] = json!(id);
                    v["status"] = json!(if trunk.gets_until_active == 0 {
                        "ACTIVE"
                    } else {
                        "PENDING"
                    });
                    (200, v)
                }
                ("PUT", []) => {
                    trunk.body = body.clone();
                    (200, json!({}))
                }
                ("DELETE", []) => {
                    state.trunks.remove(&id);
                    (204, Value::Null)
                }
                ("GET", ["extensions"]) => {
                    let items = trunk.extensions.iter().map(|(e, p)| json!({ "extension": e, "routingType": "communication-profile", "commsProfileId": p })).collect();
                    page(items, query, None)
                }
                (m, ["extension", _]) => {
                    let ext = decoded(6);
                    let active = trunk.gets_until_active == 0;
                    match m {
                        "GET" => match trunk.extensions.get(&ext) {
                            Some(p) => (
                                200,
                                json!({ "extension": ext, "routingType": "communication-profile", "commsProfileId": p }),
                            ),
                            None => err(404, "extension not mapped"),
                        },
                        "DELETE" => match trunk.extensions.remove(&ext) {
                            Some(_) => (204, Value::Null),
                            None => err(404, "extension not mapped"),
                        },
                        "POST" | "PUT" => {
                            if !active {
                                return err(409, "trunk is not ACTIVE");
                            }
                            let Some(profile) = body.get("commsProfileId").and_then(Value::as_str)
                            else {
                                return err(400, "commsProfileId is required");
                            };
                            if body.get("routingType").and_then(Value::as_str)
                                != Some("communication-profile")
                            {
                                return err(400, "routingType must be communication-profile");
                            }
                            let exists = trunk.extensions.contains_key(&ext);
                            if m == "POST" && exists {
                                return err(409, format!("extension {ext} is already mapped"));
                            }
                            if m == "PUT" && !exists {
                                return err(404, "extension not mapped");
                            }
                            trunk.extensions.insert(ext, profile.to_owned());
                            (200, json!({}))
                        }
                        _ => err(405, "method not allowed"),
                    }
                }
                _ => err(404, "no such operation"),
            }
        }
        // ---- communication profiles
        ("POST", ["v1", "communications", "profile"]) => {
            let (Some(kind), Some(unit)) = (str_field("/entity/type"), str_field("/entity/id"))
            else {
                return err(400, "entity.type and entity.id are required");
            };
            if kind != "UNIT" {
                return err(400, "entity.type must be UNIT");
            }
            let name = str_field("/name");
            let id = match state.profiles.get(&unit) {
                Some((id, _)) => id.clone(),
                None => state.id("amzn1.alexa.communications.profile.did."),
            };
            let entry = state
                .profiles
                .entry(unit)
                .or_insert_with(|| (id.clone(), "Guest".into()));
            if let Some(name) = name {
                entry.1 = name;
            }
            (
                201,
                json!({ "profileId": { "profileId": id }, "name": entry.1 }),
            )
        }
        ("GET", ["v1", "communications", "profile"]) => {
            let unit = query.get("entity.id").cloned().unwrap_or_default();
            match state.profiles.get(&unit) {
                Some((id, name)) => (
                    200,
                    json!({ "profileId": { "profileId": id }, "name": name }),
                ),
                None => err(404, "no profile for this entity"),
            }
        }
        (_, ["v1", "communications", "profile", _]) => {
            let id = decoded(3);
            let Some(unit) = state
                .profiles
                .iter()
                .find(|(_, (p, _))| p == &id)
                .map(|(u, _)| u.clone())
            else {
                return err(404, "profile not found");
            };
            match method.as_str() {
                "GET" => {
                    let name = state
                        .profiles
                        .get(&unit)
                        .map(|p| p.1.clone())
                        .unwrap_or_default();
                    (
                        200,
                        json!({ "profileId": { "profileId": id }, "name": name }),
                    )
                }
                "PUT" => match str_field("/name") {
                    Some(name) => {
                        if let Some(p) = state.profiles.get_mut(&unit) {
                            p.1 = name;
                        }
                        (200, json!({}))
                    }
                    None => err(400, "name is required"),
                },
                "DELETE" => {
                    state.profiles.remove(&unit);
                    (204, Value::Null)
                }
                _ => err(405, "method not allowed"),
            }
        }
        // ---- skills
        ("GET", ["v1", "skills", "enablements"]) => {
            let unit = query.get("unitId").cloned().unwrap_or_default();
            let items = state
                .skills
                .iter()
                .filter(|(_, u)| u == &unit)
                .map(|(skill, u)| json!({ "skill": { "id": skill, "stage": "live" }, "unit": { "id": u }, "status": "ENABLED" }))
                .collect();
            page(items, query, None)
        }
        (m, ["v1", "skills", _, "enablements"]) => {
            let skill = decoded(2);
            match m {
                "POST" => {
                    let Some(unit) = str_field("/unitId") else {
                        return err(400, "unitId is required");
                    };
                    if !matches!(str_field("/stage").as_deref(), Some("live" | "development")) {
                        return err(400, "stage must be live or development");
                    }
                    state.skills.insert((skill, unit));
                    (200, json!({}))
                }
                "DELETE" => {
                    let unit = query.get("unitId").cloned().unwrap_or_default();
                    state.skills.remove(&(skill, unit));
                    (204, Value::Null)
                }
                _ => err(405, "method not allowed"),
            }
        }
        // ---- service providers
        ("POST", ["v1", "communications", "serviceProviders"]) => {
            let Some(logical) = str_field("/serviceProviderLogicalId") else {
                return err(400, "serviceProviderLogicalId is required");
            };
            if state.providers.values().any(|p| p.logical_id == logical) {
                return err(
                    409,
                    format!("serviceProviderLogicalId {logical} is already used"),
                );
            }
            let id = state.id("amzn1.comms.csp.id.");
            state.providers.insert(
                id.clone(),
                FakeProvider {
                    logical_id: logical,
                    display_name: body.get("displayName").cloned().unwrap_or(Value::Null),
                    network: None,
                    external_users: BTreeMap::new(),
                },
            );
            (201, json!({ "serviceProviderId": id }))
        }
        (_, ["v1", "communications", "serviceProviders", _, rest @ ..]) => {
            let id = decoded(3);
            let profiles: BTreeSet<String> =
                state.profiles.values().map(|(p, _)| p.clone()).collect();
            let Some(provider) = state.providers.get_mut(&id) else {
                return err(404, "service provider not found");
            };
            match (method.as_str(), rest) {
                ("GET", []) => (
                    200,
                    json!({ "serviceProviderId": id, "serviceProviderLogicalId": provider.logical_id, "displayName": provider.display_name }),
                ),
                ("PUT", []) => {
                    provider.display_name = body.get("displayName").cloned().unwrap_or(Value::Null);
                    (200, json!({}))
                }
                ("DELETE", []) => {
                    state.providers.remove(&id);
                    (204, Value::Null)
                }
                ("GET", ["network"]) => match &provider.network {
                    Some(n) => (200, n.clone()),
                    None => err(404, "no network mapping"),
                },
                ("POST" | "PUT", ["network"]) => {
                    if body.get("networkType").and_then(Value::as_str) != Some("SKILL")
                        || body.pointer("/skillConfiguration/skillId").is_none()
                    {
                        return err(
                            400,
                            "networkType SKILL and skillConfiguration.skillId are required",
                        );
                    }
                    if method == Method::POST && provider.network.is_some() {
                        return err(409, "network mapping exists");
                    }
                    provider.network = Some(body.clone());
                    (200, json!({}))
                }
                ("DELETE", ["network"]) => {
                    provider.network = None;
                    (204, Value::Null)
                }
                ("POST" | "PUT", ["externalUsers"]) => {
                    let (Some(user), Some(amazon)) =
                        (str_field("/externalUserId"), str_field("/amazonId"))
                    else {
                        return err(400, "externalUserId and amazonId are required");
                    };
                    if str_field("/amazonIdType").as_deref() != Some("communication-profile")
                        || !profiles.contains(&amazon)
                    {
                        return err(400, "amazonId must be an existing communication profile");
                    }
                    provider.external_users.insert(user, amazon);
                    (200, json!({}))
                }
                ("DELETE", ["externalUsers"]) => match str_field("/externalUserId") {
                    Some(user) => match provider.external_users.remove(&user) {
                        Some(_) => (204, Value::Null),
                        None => err(404, "no such account association"),
                    },
                    None => err(400, "externalUserId is required"),
                },
                ("POST", ["externalUsers", "query"]) => {
                    let wanted: BTreeSet<String> = body
                        .pointer("/filters/externalUserIds")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default();
                    let items = provider
                        .external_users
                        .iter()
                        .filter(|(u, _)| wanted.is_empty() || wanted.contains(*u))
                        .map(|(u, a)| json!({ "externalUserId": u, "amazonId": a, "amazonIdType": "communication-profile" }))
                        .collect();
                    page(items, &HashMap::new(), Some(body))
                }
                _ => err(404, "no such operation"),
            }
        }
        // ---- address books
        ("POST", ["v1", "addressBooks"]) => {
            let Some(name) =
                str_field("/name").filter(|n| !n.is_empty() && n.chars().count() <= 50)
            else {
                return err(400, "name must be 1-50 characters");
            };
            if state.books.len() >= 35_000 {
                return err(400, "You have reached the maximum number of address books.");
            }
            let id = state.id("amzn1.alexa.addressbook.did.");
            state.books.insert(
                id.clone(),
                FakeBook {
                    name,
                    ..FakeBook::default()
                },
            );
            (201, json!({ "addressBookId": id }))
        }
        ("GET", ["v1", "addressBooks"]) => {
            let items = state
                .books
                .iter()
                .map(|(id, b)| json!({ "addressBookId": id, "name": b.name }))
                .collect();
            page(items, query, None)
        }
        ("GET", ["v1", "addressBooks", "unitAssociations"]) => {
            let unit = query.get("unitId").cloned().unwrap_or_default();
            let items = state
                .books
                .iter()
                .filter(|(_, b)| b.units.contains(&unit))
                .map(|(id, _)| json!({ "addressBookId": id }))
                .collect();
            page(items, query, None)
        }
        (_, ["v1", "addressBooks", _, rest @ ..]) => {
            let id = decoded(2);
            let books_of_unit = |state: &FakeState, unit: &str| {
                state
                    .books
                    .values()
                    .filter(|b| b.units.contains(unit))
                    .count()
            };
            let contact_id = if rest.len() == 2 {
                Some(decoded(4))
            } else {
                None
            };
            if !state.books.contains_key(&id) {
                return err(404, "address book not found");
            }
            match (method.as_str(), rest) {
                ("POST", ["unitAssociations"]) => {
                    let Some(unit) = str_field("/unitId") else {
                        return err(400, "unitId is required");
                    };
                    if books_of_unit(state, &unit) >= 10 && !state.books[&id].units.contains(&unit)
                    {
                        return err(
                            400,
                            "You have reached the maximum number of address books per unit: 10.",
                        );
                    }
                    let Some(book) = state.books.get_mut(&id) else {
                        return err(404, "address book not found");
                    };
                    if book.units.len() >= 2500 {
                        return err(
                            400,
                            "You have reached the maximum number of units per address book: 2500.",
                        );
                    }
                    book.units.insert(unit);
                    (201, json!({}))
                }
                (m, rest) => {
                    let next_contact = state.id("amzn1.alexa.contact.did.");
                    let Some(book) = state.books.get_mut(&id) else {
                        return err(404, "address book not found");
                    };
                    match (m, rest) {
                        ("GET", []) => (200, json!({ "addressBookId": id, "name": book.name })),
                        ("PUT", []) => match str_field("/name") {
                            Some(name) => {
                                book.name = name;
                                (200, json!({}))
                            }
                            None => err(400, "name is required"),
                        },
                        ("DELETE", []) => {
                            state.books.remove(&id);
                            (204, Value::Null)
                        }
                        ("GET", ["unitAssociations"]) => {
                            let items = book.units.iter().map(|u| json!({ "unitId": u })).collect();
                            page(items, query, None)
                        }
                        ("DELETE", ["unitAssociations"]) => {
                            let unit = query.get("unitId").cloned().unwrap_or_default();
                            if book.units.remove(&unit) {
                                (204, Value::Null)
                            } else {
                                err(404, "no such association")
                            }
                        }
                        ("POST", ["contacts"]) => {
                            let Some(contact) = body.get("contact") else {
                                return err(400, "contact is required");
                            };
                            if let Err(e) = check_contact(contact) {
                                return err(400, e);
                            }
                            if book.contacts.len() >= 2000 {
                                return err(
                                    400,
                                    "You have reached the maximum number of contacts that can be created per address book: 2000.",
                                );
                            }
                            book.contacts.insert(next_contact.clone(), contact.clone());
                            (201, json!({ "contactId": next_contact }))
                        }
                        ("GET", ["contacts"]) => {
                            let items = book
                                .contacts
                                .iter()
                                .map(|(cid, c)| json!({ "contactId": cid, "contact": c }))
                                .collect();
                            page(items, query, None)
                        }
                        (m, ["contacts", _]) => {
                            let cid = contact_id.unwrap_or_default();
                            if !book.contacts.contains_key(&cid) {
                                return err(404, "contact not found");
                            }
                            match m {
                                "GET" => (
                                    200,
                                    json!({ "contactId": cid, "contact": book.contacts[&cid] }),
                                ),
                                "PUT" => {
                                    let Some(contact) = body.get("contact") else {
                                        return err(400, "contact is required");
                                    };
                                    if let Err(e) = check_contact(contact) {
                                        return err(400, e);
                                    }
                                    book.contacts.insert(cid, contact.clone());
                                    (200, json!({}))
                                }
                                "DELETE" => {
                                    book.contacts.remove(&cid);
                                    (204, Value::Null)
                                }
                                _ => err(405, "method not allowed"),
                            }
                        }
                        _ => err(404, "no such operation"),
                    }
                }
            }
        }
        _ => err(404, format!("no such operation: {method} {path}")),
    }
}

fn handle(
    state: &Mutex<FakeState>,
    method: Method,
    path: String,
    query: HashMap<String, String>,
    headers: &http::HeaderMap,
    body: Bytes,
) -> (u16, Vec<(&'static str, String)>, Value) {
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    let mut extra = Vec::new();
    let fault = state.faults.iter().position(|f| {
        f.times > 0
            && f.method.as_ref().is_none_or(|m| m == method)
            && path.contains(&f.path_contains)
    });
    let fault = fault.map(|i| {
        state.faults[i].times -= 1;
        state.faults[i].clone()
    });
    let (status, answer) = if let Some(fault) = fault.as_ref().filter(|f| !f.after_apply) {
        if let Some(seconds) = fault.retry_after {
            extra.push(("retry-after", seconds.to_string()));
        }
        err(fault.status, "injected fault")
    } else if path == "/auth/o2/token" && method == Method::POST {
        token_endpoint(&mut state, &body)
    } else {
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let needed = required_scope(&path);
        match state.tokens.get(bearer) {
            None => err(401, "invalid token"),
            Some((_, expiry)) if *expiry <= Instant::now() => err(401, "token expired"),
            Some((scopes, _)) if !scopes.iter().any(|s| s == needed) => {
                err(403, format!("token lacks the scope {needed}"))
            }
            Some(_) => {
                let json_body = if body.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&body).unwrap_or(Value::Null)
                };
                let answer = route(&mut state, &method, &path, &query, &json_body);
                match fault {
                    Some(fault) => err(fault.status, "injected fault after the change was applied"),
                    None => answer,
                }
            }
        }
    };
    state.log.push(Recorded {
        method,
        path,
        status,
    });
    extra.push(("x-amzn-requestid", format!("fake-{}", state.log.len())));
    (status, extra, answer)
}

/// The running fake; stops when dropped.
pub struct FakeServer {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<FakeState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    pub async fn start(config: FakeConfig) -> std::io::Result<Self> {
        Self::bind(
            "127.0.0.1:0".parse().map_err(std::io::Error::other)?,
            config,
        )
        .await
    }

    pub async fn bind(addr: SocketAddr, config: FakeConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(FakeState {
            config,
            ..FakeState::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let state = state.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let path = parts.uri.path().to_owned();
                            let query: HashMap<String, String> = parts
                                .uri
                                .query()
                                .map(|q| {
                                    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
                                })
                                .unwrap_or_default();
                            let (status, headers, answer) =
                                handle(&state, parts.method, path, query, &parts.headers, body);
                            let mut response = Response::builder()
                                .status(
                                    StatusCode::from_u16(status)
                                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                                )
                                .header("content-type", "application/json");
                            for (name, value) in headers {
                                response = response.header(name, value);
                            }
                            let payload = if answer.is_null() {
                                Bytes::new()
                            } else {
                                Bytes::from(answer.to_string())
                            };
                            Ok::<_, std::convert::Infallible>(
                                response.body(Full::new(payload)).unwrap_or_default(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, state, task })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn lwa_url(&self) -> String {
        format!("http://{}/auth/o2/token", self.addr)
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn inject(&self, fault: Fault) {
        self.with(|s| s.faults.push(fault));
    }
}
