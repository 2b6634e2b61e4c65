//! The property file: what a property wants Alexa Smart Properties to hold. [`PropertyFile`] is
//! the TOML as written (rooms may also come from a CSV); [`Desired`] is the checked, resolved
//! form the planner works on. Reading files happens in [`load`]; everything else is pure.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::validate::{self, ValidationErrors};

/// Amazon's PBX communication skill: enabled on every room that gets an extension.
pub const PBX_COMMUNICATION_SKILL: &str = "amzn1.ask.skill.9bbb90f1-324c-4040-ad03-5cecf0376da3";
/// Amazon's WebRTC add-on subscription skill: enabled before the property's own signaling skill.
pub const WEBRTC_SUBSCRIPTION_SKILL: &str = "amzn1.ask.skill.4f802665-333c-48e7-ada2-b218033d4015";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
pub enum Region {
    #[serde(rename = "NA")]
    #[value(name = "NA")]
    Na,
    #[serde(rename = "EU")]
    #[value(name = "EU")]
    Eu,
    #[serde(rename = "FE")]
    #[value(name = "FE")]
    Fe,
}

impl Region {
    /// The ASP REST host of the region.
    pub fn api_base(self) -> &'static str {
        match self {
            Region::Na => "https://api.amazonalexa.com",
            Region::Eu => "https://api.eu.amazonalexa.com",
            Region::Fe => "https://api.fe.amazonalexa.com",
        }
    }
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyFile {
    pub region: Region,
    #[serde(default)]
    pub dial_plan: DialPlan,
    #[serde(default)]
    pub skills: SkillSettings,
    #[serde(default)]
    pub trunks: Vec<TrunkSpec>,
    /// Extra rooms from a CSV file (path relative to the property file).
    #[serde(default)]
    pub rooms_csv: Option<PathBuf>,
    #[serde(default)]
    pub rooms: Vec<RoomSpec>,
    #[serde(default)]
    pub service_provider: Option<ServiceProviderSpec>,
    #[serde(default)]
    pub address_books: Vec<AddressBookSpec>,
}

/// What the PBX can dial (see `docs/provisioning.md`, "Which extensions the PBX can dial").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialPlan {
    #[serde(default = "DialPlan::default_min_digits")]
    pub min_digits: usize,
    #[serde(default = "DialPlan::default_max_digits")]
    pub max_digits: usize,
    /// Leading digits the PBX keeps for itself (outside line, operator, feature codes).
    #[serde(default)]
    pub reserved_prefixes: Vec<String>,
}

impl DialPlan {
    fn default_min_digits() -> usize {
        2
    }
    fn default_max_digits() -> usize {
        8
    }
}

impl Default for DialPlan {
    fn default() -> Self {
        Self {
            min_digits: Self::default_min_digits(),
            max_digits: Self::default_max_digits(),
            reserved_prefixes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillSettings {
    /// Enable the PBX communication skill on every room with an extension.
    #[serde(default = "yes")]
    pub pbx_communication: bool,
    /// Enable the WebRTC subscription skill and the provider's skill on rooms with an external user.
    #[serde(default = "yes")]
    pub webrtc: bool,
}

fn yes() -> bool {
    true
}

impl Default for SkillSettings {
    fn default() -> Self {
        Self {
            pbx_communication: true,
            webrtc: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkSpec {
    /// The file's name for the trunk (rooms refer to it; the state file maps it to a trunk id).
    pub key: String,
    /// The name the PBX certificate answers to (CN or a SAN).
    pub tls_name: String,
    /// PEM file with the PBX certificate chain (relative to the property file).
    pub certificate_chain: PathBuf,
    pub peers: Vec<PeerSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSpec {
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub fqdn: Option<String>,
    pub port: i64,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoomSpec {
    pub unit_id: String,
    pub name: String,
    #[serde(default)]
    pub extension: Option<String>,
    /// Trunk key; may be left out when the file has exactly one trunk.
    #[serde(default)]
    pub trunk: Option<String>,
    #[serde(default)]
    pub address_books: Vec<String>,
    /// The room's id in the property's WebRTC system (account association).
    #[serde(default)]
    pub external_user_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceProviderSpec {
    pub logical_id: String,
    pub display_name: String,
    #[serde(default = "default_locale")]
    pub locale: String,
    /// The property's WebRTC signaling skill, mapped to the provider and enabled on rooms.
    pub skill_id: String,
}

fn default_locale() -> String {
    "en-US".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressBookSpec {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub contacts: Vec<ContactSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactSpec {
    pub name: String,
    /// A room of this file (unit id or room name): the contact rings its Alexa device.
    #[serde(default)]
    pub room: Option<String>,
    #[serde(default)]
    pub phone_numbers: Vec<String>,
    /// A device address in the property's WebRTC system.
    #[serde(default)]
    pub provider_contact: Option<String>,
}

/// One CSV row: `unit_id,name,extension,trunk,address_books,external_user_id`
/// (`address_books` separated by `;`; empty cells mean "none").
#[derive(Debug, Clone, Deserialize)]
struct CsvRoom {
    unit_id: String,
    name: String,
    #[serde(default)]
    extension: Option<String>,
    #[serde(default)]
    trunk: Option<String>,
    #[serde(default)]
    address_books: Option<String>,
    #[serde(default)]
    external_user_id: Option<String>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl From<CsvRoom> for RoomSpec {
    fn from(row: CsvRoom) -> Self {
        RoomSpec {
            unit_id: row.unit_id.trim().to_owned(),
            name: row.name.trim().to_owned(),
            extension: non_empty(row.extension),
            trunk: non_empty(row.trunk),
            address_books: non_empty(row.address_books)
                .map(|books| {
                    books
                        .split(';')
                        .map(|b| b.trim().to_owned())
                        .filter(|b| !b.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            external_user_id: non_empty(row.external_user_id),
        }
    }
}

/// Parses rooms from CSV text (with a header row).
pub fn parse_rooms_csv(text: &str) -> Result<Vec<RoomSpec>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rooms = Vec::new();
    for (index, row) in reader.deserialize::<CsvRoom>().enumerate() {
        // Row 1 is the header.
        let row = row.map_err(|e| format!("row {}: {e}", index + 2))?;
        rooms.push(row.into());
    }
    Ok(rooms)
}

/// Everything read from disk, before any check: the file, its CSV rooms and its certificate
/// files (or why they could not be read).
#[derive(Debug, Clone)]
pub struct RawProperty {
    pub file: PropertyFile,
    pub csv_rooms: Vec<RoomSpec>,
    pub certificates: BTreeMap<PathBuf, Result<String, String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid property file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: rooms CSV {csv}: {message}")]
    Csv {
        path: PathBuf,
        csv: PathBuf,
        message: String,
    },
    #[error("{path} has errors:\n{errors}")]
    Invalid {
        path: PathBuf,
        errors: ValidationErrors,
    },
}

/// Reads the property file, its rooms CSV and certificate files, then checks everything.
pub fn load(path: &Path) -> Result<Desired, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file = parse_property(&text).map_err(|message| LoadError::Parse {
        path: path.to_owned(),
        message,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let csv_rooms = match &file.rooms_csv {
        None => Vec::new(),
        Some(csv) => {
            let csv_path = base.join(csv);
            let text = std::fs::read_to_string(&csv_path).map_err(|e| LoadError::Csv {
                path: path.to_owned(),
                csv: csv_path.clone(),
                message: e.to_string(),
            })?;
            parse_rooms_csv(&text).map_err(|message| LoadError::Csv {
                path: path.to_owned(),
                csv: csv_path.clone(),
                message,
            })?
        }
    };
    let certificates = file
        .trunks
        .iter()
        .map(|t| {
            let read =
                std::fs::read_to_string(base.join(&t.certificate_chain)).map_err(|e| e.to_string());
            (t.certificate_chain.clone(), read)
        })
        .collect();
    validate::validate(&RawProperty {
        file,
        csv_rooms,
        certificates,
    })
    .map_err(|errors| LoadError::Invalid {
        path: path.to_owned(),
        errors,
    })
}

pub fn parse_property(text: &str) -> Result<PropertyFile, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

// ---- the checked form --------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub region: Region,
    pub trunks: Vec<DesiredTrunk>,
    pub rooms: Vec<DesiredRoom>,
    pub service_provider: Option<DesiredServiceProvider>,
    pub address_books: Vec<DesiredBook>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTrunk {
    pub key: String,
    pub tls_name: String,
    /// One PEM block per certificate, in file order.
    pub certificate_chain: Vec<String>,
    pub peers: Vec<Peer>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerAddress {
    Ip(IpAddr),
    Fqdn(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Peer {
    pub address: PeerAddress,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRoom {
    pub unit_id: String,
    pub name: String,
    /// (trunk key, extension)
    pub extension: Option<(String, String)>,
    pub address_books: Vec<String>,
    pub external_user_id: Option<String>,
    /// Skills to enable on the unit, in order (the WebRTC subscription before the provider's).
    pub skills: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredServiceProvider {
    pub logical_id: String,
    pub display_name: String,
    pub locale: String,
    pub skill_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredBook {
    pub key: String,
    pub name: String,
    pub contacts: Vec<DesiredContact>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredContact {
    pub name: String,
    pub target: ContactTarget,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ContactTarget {
    /// The unit id of a room of the file; the API gets its communication profile id.
    Room(String),
    PhoneNumbers(Vec<String>),
    Provider(String),
}

impl Desired {
    pub fn room(&self, unit_id: &str) -> Option<&DesiredRoom> {
        self.rooms.iter().find(|r| r.unit_id == unit_id)
    }

    pub fn trunk(&self, key: &str) -> Option<&DesiredTrunk> {
        self.trunks.iter().find(|t| t.key == key)
    }

    pub fn book(&self, key: &str) -> Option<&DesiredBook> {
        self.address_books.iter().find(|b| b.key == key)
    }
}
