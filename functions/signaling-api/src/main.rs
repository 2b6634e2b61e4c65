//! Wiring only: logs, configuration, clients, runtime. See `lib.rs`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use signaling_api::{Config, Deps, handle};
use std::sync::Arc;
use takeback_core::alexa::config::ProcessEnv;
use takeback_core::alexa::http::HttpClient;
use takeback_core::alexa::lwa::{AccessTokenProvider, LwaClient};
use takeback_core::alexa::session_store::DynamoSessionStore;
use takeback_core::alexa::signaling::SignalingClient;
use takeback_core::alexa::token_store::DynamoTokenStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    takeback_core::telemetry::init_json_logs();
    let config = Config::from_env(&ProcessEnv)
        .inspect_err(|e| tracing::error!(error = %e, "configuration"))?;
    let sdk = takeback_core::sdk::load().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let http = HttpClient::new()?;
    let tokens = Arc::new(AccessTokenProvider::new(
        Arc::new(DynamoTokenStore::new(
            dynamo.clone(),
            config.tokens_table.clone(),
        )),
        LwaClient::new(http.clone(), config.lwa.clone()),
    ));
    let deps = Deps {
        sessions: DynamoSessionStore::new(dynamo, config.sessions_table.clone()),
        signaling: SignalingClient::new(http, tokens, config.signaling.retry),
        settings: config.signaling.clone(),
        ttl: config.ttl,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Boxed: the handler future is deep and would make the runtime future's layout overflow
        // the compiler's query depth.
        Box::pin(handle(deps, event.payload))
            .await
            .map_err(Error::from)
    }))
    .await
}
