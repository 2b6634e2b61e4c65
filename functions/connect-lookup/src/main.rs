//! `connect-lookup` Lambda: wiring only (see `lib.rs` for the contract).
//!
//! Environment:
//! - `PAIRS_TABLE` (required): the rolling-DNIS pairs table;
//! - `CALLS_TABLE` (optional; the lookup never touches it);
//! - `LOOKUP_MODE` (optional): `keep` (default; the pair stays held until the SMA releases it)
//!   or `release` (the lookup frees the pair at once; the flow must keep `transaction_id` in a
//!   contact attribute and pass it to the transfer function);
//! - `AWS_LAMBDA_LOG_LEVEL` (set by Lambda from the log level of `LoggingConfig`), else
//!   `RUST_LOG` (optional, default `info`);
//! - the standard AWS variables (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL_DYNAMODB` for
//!   DynamoDB Local).
//!
//! IAM: `dynamodb:UpdateItem` on the pairs table.

mod metrics;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use takeback_common::telemetry;
use takeback_connect::config::LookupConfig;
use takeback_dynamo::pairs::{ClaimConfig, DynamoStore};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init_json_logs();
    takeback_common::metrics::enable_stdout();
    let config = telemetry::config_or_exit(LookupConfig::from_env(
        &takeback_common::config::process_env(),
    ));
    let sdk_config = takeback_sdk::load().await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk_config),
        config.pairs_table,
        config.calls_table.unwrap_or_default(),
    )
    .with_config(ClaimConfig {
        retry_budget: takeback_sdk::CONNECT_LOOKUP_STORE_RETRY_BUDGET,
        ..ClaimConfig::default()
    });
    let deps = connect_lookup::LookupDeps::new(store, config.lookup_mode);
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let answer = connect_lookup::handle(deps, event.payload).await;
        metrics::outcome(&answer).emit();
        Ok::<_, std::convert::Infallible>(answer)
    }))
    .await
}
