//! `connect-transfer` Lambda: wiring only (see `lib.rs` for the contract).
//!
//! Environment:
//! - `PAIRS_TABLE` (required): the rolling-DNIS pairs table (finding the call by number pair);
//! - `CALLS_TABLE` (required): call records, where the transfer intent is stored;
//! - `SIP_MEDIA_APPLICATION_ID` (required): the SMA whose call is updated;
//! - `DEFAULT_TRANSFER_TARGET` (required): Uri used when the flow passes no `TransferTarget`
//!   (1–30 chars of `a-zA-Z0-9&=+$/%-_!~*().`, e.g. the front desk `+18005550100` or `100`);
//! - `DEFAULT_TRANSFER_TARGET_ARN` (required): Voice Connector (group) ARN used when the flow
//!   passes no `TransferTargetArn`; always allowed;
//! - `ALLOWED_VOICE_CONNECTOR_ARNS` (optional): comma-separated further ARNs a flow may pass;
//! - `TRANSFER_TARGET_PATTERN` (optional): regular expression a per-call `TransferTarget` must
//!   match as a whole (anchored for you); default `[0-9]{1,6}`;
//! - `ROOM_EXTENSIONS` (optional): the property's room extensions (`1101-1130,1201`, printed by
//!   `asp room-extensions`); a per-call target that is no room is `invalid_target`;
//! - `AWS_LAMBDA_LOG_LEVEL` (set by Lambda from the log level of `LoggingConfig`), else
//!   `RUST_LOG` (optional, default `info`);
//! - the standard AWS variables (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL_DYNAMODB`,
//!   `AWS_ENDPOINT_URL_CHIME_SDK_VOICE` for the local stack).
//!
//! IAM: `dynamodb:UpdateItem` on both tables, `chime:UpdateSipMediaApplicationCall` on the SMA.

mod metrics;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use takeback_common::telemetry;
use takeback_connect::config::TransferConfig;
use takeback_dynamo::pairs::{ClaimConfig, DynamoStore};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init_json_logs();
    takeback_common::metrics::enable_stdout();
    let config = telemetry::config_or_exit(TransferConfig::from_env(
        &takeback_common::config::process_env(),
    ));
    let sdk_config = takeback_sdk::load().await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk_config),
        config.pairs_table,
        config.calls_table,
    )
    .with_config(ClaimConfig {
        retry_budget: takeback_sdk::CONNECT_TRANSFER_STORE_RETRY_BUDGET,
        ..ClaimConfig::default()
    });
    let deps = connect_transfer::TransferDeps::new(
        store,
        takeback_chime::client(&sdk_config),
        config.sip_media_application_id,
        config.policy,
    );
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let answer = connect_transfer::handle(deps, event.payload).await;
        metrics::outcome(&answer).emit();
        Ok::<_, std::convert::Infallible>(answer)
    }))
    .await
}
