//! Shared by the transfer tests: fixtures, the transfer policy they assume, a store wrapper
//! that fakes can look into, and a loopback fake of the Chime SDK Voice API.

#![allow(dead_code)] // each test binary uses a different part

pub mod fake_chime;

use std::sync::Arc;

use aws_sdk_chimesdkvoice::config::{Credentials, Region};
use fake_chime::FakeChime;
use serde_json::Value;
use takeback_chime as chime;
use takeback_pairs::memory::MemoryStore;
use takeback_pairs::{ClaimOutcome, ClaimRequest, PairKey, PairStore};
use takeback_sma::target::TransferPolicy;

pub const TXN: &str = "5d5c8c2e-4f3a-4a55-9f0e-2b9d3c1a7e01";
pub const CONTACT: &str = "7c0e5f3a-91d2-4b8e-a6f4-3d2c1b0a9e8f";
pub const SMA_ID: &str = "sma-0a1b2c3d";
pub const DEFAULT_TARGET: &str = "+18005550100";
pub const VC: &str = "arn:aws:chime:us-east-1:111122223333:vc/abcdefghijklmnopqrst";
pub const VCG: &str = "arn:aws:chime:us-east-1:111122223333:vcg/frontdeskgroup";

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("test set-up")
}

pub fn fixture_names(prefix: &str) -> Vec<String> {
    let dir = format!("{}/../../events", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("test set-up")
        .map(|e| {
            e.expect("test set-up")
                .file_name()
                .into_string()
                .expect("test set-up")
        })
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// Default target `+18005550100` on `VC`; `VCG` also allowed; default pattern (1–6 digits).
pub fn policy() -> TransferPolicy {
    TransferPolicy::new(DEFAULT_TARGET, VC, [VCG], None).expect("test set-up")
}

pub fn fixture_pair() -> PairKey {
    PairKey {
        sma_number: "+18005557777".into(),
        connect_number: "+18005551111".into(),
    }
}

/// A memory store that the test and a fake updater can both hold.
pub type SharedStore = Arc<MemoryStore>;

/// A shared store holding the fixtures' pair, free.
pub fn shared_store() -> SharedStore {
    Arc::new(MemoryStore::new([fixture_pair()], 300))
}

/// The fixtures' pair held by `TXN`.
pub async fn store_with_live_claim() -> SharedStore {
    let store = shared_store();
    let outcome = store
        .claim(&ClaimRequest {
            transaction_id: TXN.into(),
            original_calling_number: "+13125550142".into(),
            original_called_number: "+18005550000".into(),
        })
        .await
        .expect("test set-up");
    assert!(matches!(outcome, ClaimOutcome::Claimed(_)));
    store
}

/// The production client configuration (`chime::client_config` over `sdk::loader`), pointed at
/// the fake with an explicit endpoint and dummy credentials.
pub async fn chime_client(fake: &FakeChime) -> chime::SdkCallUpdater {
    let sdk_config = takeback_sdk::loader()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "test"))
        .load()
        .await;
    chime::SdkCallUpdater::from(aws_sdk_chimesdkvoice::Client::from_conf(
        chime::client_config(&sdk_config)
            .endpoint_url(&fake.url)
            .build(),
    ))
}

/// Every value a string (Connect's STRING_MAP validation).
pub fn flat(response: &impl serde::Serialize) -> Value {
    let v = serde_json::to_value(response).expect("test set-up");
    for (k, val) in v.as_object().expect("test set-up") {
        assert!(val.is_string(), "{k} must be a string: {val}");
    }
    v
}
