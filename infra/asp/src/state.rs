//! The state file kept next to the property file: the ids of what this tool created or adopted,
//! for the objects the APIs cannot list or find again (service providers, account associations)
//! and to know what it owns (what `--prune` may delete). Written after every create, atomically,
//! so a run that stops half-way loses nothing.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    /// Trunk key → trunk.
    #[serde(default)]
    pub trunks: BTreeMap<String, TrunkState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_provider: Option<ServiceProviderState>,
    /// External user id → unit id of the room it was associated for.
    #[serde(default)]
    pub account_associations: BTreeMap<String, String>,
    /// Address-book key → address book id.
    #[serde(default)]
    pub address_books: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkState {
    pub trunk_id: String,
    /// Digest of the last body sent, for drift detection when the API does not echo it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceProviderState {
    pub logical_id: String,
    pub service_provider_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("state file {path} has version {found}; this tool writes version {STATE_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write state file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `rooms.toml` → `rooms.state.json`, in the same directory.
pub fn default_path(property: &Path) -> PathBuf {
    let stem = property
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "property".to_owned());
    property.with_file_name(format!("{stem}.state.json"))
}

impl State {
    pub fn new() -> Self {
        Self {
            version: STATE_VERSION,
            ..Self::default()
        }
    }

    pub fn from_json(path: &Path, text: &str) -> Result<Self, StateError> {
        let state: State = serde_json::from_str(text).map_err(|source| StateError::Parse {
            path: path.to_owned(),
            source,
        })?;
        if state.version != STATE_VERSION {
            return Err(StateError::Version {
                path: path.to_owned(),
                found: state.version,
            });
        }
        Ok(state)
    }

    /// A missing file is an empty state (first run).
    pub fn load(path: &Path) -> Result<Self, StateError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_json(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::new()),
            Err(source) => Err(StateError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    pub fn to_json(&self) -> String {
        // A map of strings always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Write to a temporary file in the same directory, then rename over the old one: a crash
    /// leaves either the old or the new state, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let write_error = |source| StateError::Write {
            path: path.to_owned(),
            source,
        };
        let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
        std::fs::write(&tmp, self.to_json()).map_err(write_error)?;
        std::fs::rename(&tmp, path).map_err(write_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_path_sits_next_to_the_property_file() {
        assert_eq!(
            default_path(Path::new("/etc/hotel/rooms.toml")),
            PathBuf::from("/etc/hotel/rooms.state.json")
        );
    }

    #[test]
    fn round_trips_and_rejects_other_versions() {
        let mut state = State::new();
        state.address_books.insert("desk".into(), "ab-1".into());
        state
            .account_associations
            .insert("room-101".into(), "unit-101".into());
        let path = Path::new("x.state.json");
        let back = State::from_json(path, &state.to_json()).unwrap();
        assert_eq!(back, state);
        let other = state.to_json().replace("\"version\": 1", "\"version\": 7");
        assert!(matches!(
            State::from_json(path, &other),
            Err(StateError::Version { found: 7, .. })
        ));
    }
}
