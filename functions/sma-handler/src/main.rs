//! `sma-handler` Lambda: wiring only (see `lib.rs` and `config.rs` for the contract).
//!
//! A configuration error is one JSON log line (`variable`, `problem`) and exit status 78.

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::Value;
use sma_handler::config::SmaHandlerConfig;
use sma_handler::{SmaDeps, handle};
use takeback_common::config::process_env;
use takeback_common::{metrics, telemetry};
use takeback_dynamo::pairs::{ClaimConfig, DynamoStore};
use takeback_pairs::strategy::ClaimRules;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_json_logs();
    metrics::enable_stdout();
    let config = telemetry::config_or_exit(SmaHandlerConfig::from_env(&process_env()));
    let sdk = takeback_sdk::load().await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.pairs_table,
        config.calls_table,
    )
    .with_config(ClaimConfig {
        rules: ClaimRules {
            lease_seconds: config.lease_seconds,
            ..ClaimRules::default()
        },
        retry_budget: takeback_sdk::SMA_STORE_RETRY_BUDGET,
        ..ClaimConfig::default()
    });
    // The first caller's claim is then one write: the pool read overlaps the runtime's start.
    tokio::spawn({
        let store = store.clone();
        async move {
            if let Err(e) = store.prime_view().await {
                tracing::warn!(error = %takeback_common::chain(&e), "pool view not primed; the first claim reads it");
            }
        }
    });
    let deps = SmaDeps {
        store,
        call_machine: config.call_machine,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async {
        // A stable errorType ("NotAnSmaEvent") for alarms, not a Rust type path.
        handle(&deps, event.payload).await.map_err(Diagnostic::from)
    }))
    .await
}
