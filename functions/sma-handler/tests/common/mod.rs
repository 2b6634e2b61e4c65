//! Shared set-up for the handler tests: the fixture directory, a flow config matching the
//! fixtures, and an in-memory store holding the fixtures' pair.
#![allow(dead_code)]

use std::path::PathBuf;

use takeback_pairs::PairKey;
use takeback_pairs::memory::MemoryStore;
use takeback_sma::call_machine::CallMachineConfig;
use takeback_sma::target::{TransferPolicy, TransferTarget};
use takeback_sma::{AwsEndpointUri, VoiceConnectorArn};

pub const TXN: &str = "6b2a5c1e-3f4d-4e8a-9c1b-2d7e8f9a0b1c";
pub const SMA: &str = "+18005557777";
pub const CONNECT: &str = "+18005551111";
pub const VC: &str = "arn:aws:chime:us-east-1:123456789012:vc/abcdefghijklmnopqrstu";

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

pub fn fixture(name: &str) -> serde_json::Value {
    let path = events_dir().join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("test set-up"))
        .expect("test set-up")
}

pub fn call_machine_config() -> CallMachineConfig {
    CallMachineConfig {
        targets: TransferPolicy::with_rules(
            Some(TransferTarget {
                uri: AwsEndpointUri::parse("2000").expect("test set-up"),
                arn: VoiceConnectorArn::parse(VC).expect("test set-up"),
            }),
            [VC],
            None,
        )
        .expect("test set-up"),
        ..CallMachineConfig::default()
    }
}

pub fn pair() -> PairKey {
    PairKey {
        sma_number: SMA.into(),
        connect_number: CONNECT.into(),
    }
}

pub fn store() -> MemoryStore {
    MemoryStore::new([pair()], 600)
}
