//! Shared set-up of the integration tests: a property written to a temporary directory, a
//! client pointed at the in-process fake, and fast retry settings.
#![allow(dead_code, clippy::unwrap_used)] // test set-up: a failure here is a broken test machine

use asp::apply::ApplyOptions;
use asp::auth::Credentials;
use asp::client::{AspClient, Endpoints};
use asp::fake::{FakeConfig, FakeServer};
use asp::http::{HyperTransport, Secret};
use asp::property::Desired;
use asp::retry::RetryPolicy;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const CERT: &str = include_str!("../../../property.example.pem");

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "asp-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A property with `rooms` rooms (extensions 1000+i on one trunk), every room in the "guest"
/// book, rooms 0 and 1 with WebRTC users, and a "desk" book whose contacts ring room 0.
pub fn property_toml(rooms: usize) -> String {
    let mut toml = String::from(
        r#"region = "NA"
[dial_plan]
min_digits = 4
max_digits = 5
reserved_prefixes = ["9"]

[[trunks]]
key = "main"
tls_name = "pbx.example.com"
certificate_chain = "chain.pem"
peers = [{ ip = "192.0.2.10", port = 5061 }, { ip = "192.0.2.11", port = 5061 }]

[service_provider]
logical_id = "com.example.test"
display_name = "Test hotel"
skill_id = "amzn1.ask.skill.test-webrtc"

[[address_books]]
key = "guest"
name = "Guest rooms"
contacts = [
  { name = "Front desk", room = "Room 0" },
  { name = "Concierge", phone_numbers = ["2000"] },
]

[[address_books]]
key = "desk"
name = "Desk"
contacts = [
  { name = "Lobby tablet", provider_contact = "tablet-1" },
  { name = "Manager", phone_numbers = ["+12065550100"] },
]
"#,
    );
    for i in 0..rooms {
        let user = if i < 2 {
            format!("external_user_id = \"user-{i}\"\n")
        } else {
            String::new()
        };
        toml.push_str(&format!(
            "\n[[rooms]]\nunit_id = \"amzn1.alexa.unit.did.R{i}\"\nname = \"Room {i}\"\nextension = \"{}\"\naddress_books = [\"guest\"]\n{user}",
            10000 + i
        ));
    }
    toml
}

pub fn write_property(dir: &TempDir, toml: &str) -> PathBuf {
    std::fs::write(dir.path("chain.pem"), CERT).unwrap();
    let path = dir.path("property.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

pub fn load(dir: &TempDir, toml: &str) -> Desired {
    asp::property::load(&write_property(dir, toml)).unwrap()
}

pub fn credentials() -> Credentials {
    let config = FakeConfig::default();
    Credentials {
        client_id: Some(config.client_id),
        client_secret: Some(Secret::new(config.client_secret)),
        refresh_token: Some(Secret::new(config.refresh_token)),
        service_provider_refresh_token: None,
    }
}

pub fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        deadline: Duration::from_secs(10),
        step: Duration::from_millis(1),
        max_pause: Duration::from_millis(50),
        request_timeout: Duration::from_secs(5),
    }
}

pub fn client(fake: &FakeServer) -> AspClient<HyperTransport> {
    let endpoints = Endpoints {
        api_base: fake.base_url(),
        pbx_base: fake.base_url(),
        lwa_url: fake.lwa_url(),
    };
    AspClient::new(
        Arc::new(HyperTransport::new().unwrap()),
        endpoints,
        credentials(),
        fast_policy(),
        false,
    )
}

pub fn options(state: &Path) -> ApplyOptions {
    ApplyOptions {
        concurrency: 8,
        trunk_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(1),
        state_path: state.to_owned(),
        progress: false,
    }
}

pub async fn fake() -> FakeServer {
    FakeServer::start(FakeConfig::default()).await.unwrap()
}
