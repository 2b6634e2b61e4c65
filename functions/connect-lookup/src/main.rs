//! `connect-lookup` Lambda: wiring only (see `lib.rs` for the contract).
//!
//! Environment:
//! - `PAIRS_TABLE` (required): the rolling-DNIS pairs table;
//! - `CALLS_TABLE` (optional; the lookup never touches it);
//! - `LOOKUP_MODE` (optional): `keep` (default; the pair stays held until the SMA releases it)
//!   or `release` (the lookup frees the pair at once; the flow must keep `transaction_id` in a
//!   contact attribute and pass it to the transfer function);
//! - `RUST_LOG` (optional, default `info`);
//! - the standard AWS variables (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL_DYNAMODB` for
//!   DynamoDB Local).
//!
//! IAM: `dynamodb:UpdateItem` on the pairs table.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use takeback_connect::config::LookupConfig;
use takeback_dynamo::pairs::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    takeback_common::telemetry::init_json_logs();
    let config = LookupConfig::from_env(&takeback_common::config::process_env())?;
    let sdk_config = takeback_sdk::load().await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk_config),
        config.pairs_table,
        config.calls_table.unwrap_or_default(),
    );
    let deps = connect_lookup::LookupDeps::new(store, config.lookup_mode);
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, std::convert::Infallible>(connect_lookup::handle(deps, event.payload).await)
    }))
    .await
}
