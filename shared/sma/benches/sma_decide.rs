//! Parse one SMA event and decide its actions: the CPU work of one SMA invocation apart from
//! the store round trips. Run with `cargo bench -p takeback-sma --bench sma_decide`.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use takeback_pairs::{Claim, ClaimOutcome, PairKey};
use takeback_sma::call_machine::{self, CallAttributes, CallMachineConfig, StoreResults};
use takeback_sma::target::TransferPolicy;
use takeback_sma::{Actions, SmaEvent, SmaResponse, TransactionAttributes};

fn load(name: &str) -> String {
    let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

/// Bytes in, bytes out: parse, plan, decide, build and serialize the response.
fn parse_and_decide(raw: &str, config: &CallMachineConfig, store: &StoreResults) -> String {
    let event: SmaEvent = serde_json::from_str(raw).unwrap();
    let attrs = CallAttributes::from_map(&event.call_details.transaction_attributes);
    let _work = call_machine::store_work(&event, &attrs, config);
    let decision = call_machine::decide(&event, &attrs, config, store);
    let attributes = decision
        .attributes
        .map(|a| TransactionAttributes::new(a.to_map()).unwrap());
    let response = SmaResponse::new(Actions::new(decision.actions).unwrap(), attributes);
    serde_json::to_string(&response).unwrap()
}

fn bench(c: &mut Criterion) {
    let config = CallMachineConfig::default();
    let claimed = StoreResults {
        claim: Some(Ok(ClaimOutcome::Claimed(Claim {
            pair: PairKey {
                sma_number: "+18005557777".into(),
                connect_number: "+18005551111".into(),
            },
            transaction_id: "t".into(),
            lease_expires_at: 0,
        }))),
        ..StoreResults::default()
    };
    let new_call = load("sma-new-inbound-call-basic");
    c.bench_function("new_inbound_call", |b| {
        b.iter(|| parse_and_decide(black_box(&new_call), &config, &claimed))
    });
    let transfer = load("sma-action-successful-hangup-transfer-pending");
    let transfer_config = CallMachineConfig {
        targets: TransferPolicy::with_rules(
            None,
            ["arn:aws:chime:us-east-1:123456789012:vc/abcdefghijklmnopqrstu"],
            None,
        )
        .expect("a valid ARN"),
        ..CallMachineConfig::default()
    };
    c.bench_function("transfer_bridge", |b| {
        b.iter(|| {
            parse_and_decide(
                black_box(&transfer),
                &transfer_config,
                &StoreResults::default(),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
