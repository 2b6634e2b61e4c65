//! Each store operation has its own budget: a release that never answers (an injected fault)
//! cannot cancel a transfer the recorded intent already decided. Tokio's paused clock lets the
//! budget run out without the test waiting for it.

mod common;

use common::*;
use serde_json::Value;
use sma_handler::{SmaDeps, handle};
use takeback_pairs::memory::MemoryStore;
use takeback_pairs::{
    CallStore, ClaimOutcome, ClaimRequest, LiveClaim, LookupMode, PairKey, PairStore,
    ReleaseOutcome, StoreError, TransferIntent,
};

/// The in-memory store with one fault: a release never completes.
struct ReleaseNeverAnswers(MemoryStore);

impl PairStore for ReleaseNeverAnswers {
    async fn claim(&self, request: &ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        self.0.claim(request).await
    }

    async fn release(&self, _: &PairKey, _: &str) -> Result<ReleaseOutcome, StoreError> {
        std::future::pending().await
    }

    async fn lookup(
        &self,
        pair: &PairKey,
        contact_id: &str,
        mode: LookupMode,
    ) -> Result<Option<LiveClaim>, StoreError> {
        self.0.lookup(pair, contact_id, mode).await
    }
}

impl CallStore for ReleaseNeverAnswers {
    async fn record_transfer_intent(
        &self,
        transaction_id: &str,
        intent: &TransferIntent,
    ) -> Result<(), StoreError> {
        self.0.record_transfer_intent(transaction_id, intent).await
    }

    async fn transfer_intent(
        &self,
        transaction_id: &str,
    ) -> Result<Option<TransferIntent>, StoreError> {
        self.0.transfer_intent(transaction_id).await
    }
}

fn action_types(response: &Value) -> Vec<String> {
    response["Actions"]
        .as_array()
        .expect("test set-up")
        .iter()
        .map(|a| a["Type"].as_str().expect("test set-up").to_owned())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_release_that_never_answers_cannot_cancel_a_recorded_transfer() {
    let deps = SmaDeps {
        store: ReleaseNeverAnswers(store()),
        call_machine: call_machine_config(),
    };
    deps.store
        .claim(&ClaimRequest {
            transaction_id: TXN.into(),
            original_calling_number: "+12065550123".into(),
            original_called_number: "+18005550100".into(),
        })
        .await
        .unwrap();
    deps.store
        .record_transfer_intent(
            TXN,
            &TransferIntent {
                target_uri: "2042".into(),
                target_arn: VC.into(),
                contact_id: None,
            },
        )
        .await
        .unwrap();
    let response = serde_json::to_value(
        handle(&deps, fixture("sma-hangup-leg-b-connect-before-update"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(action_types(&response), ["Speak", "CallAndBridge"]);
    assert_eq!(
        response["Actions"][1]["Parameters"]["Endpoints"][0]["Uri"],
        "2042"
    );
    // The release's outcome is unknown: the attributes keep the pair for the next event.
    assert_eq!(response["TransactionAttributes"]["pair_held"], "true");
}
