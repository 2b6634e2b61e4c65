//! Wiring only: logs, configuration, clients, runtime. See `lib.rs`.

use call_signaling::{Config, Deps, handle};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;
use takeback_core::alexa::config::ProcessEnv;
use takeback_core::alexa::http::HttpClient;
use takeback_core::alexa::lwa::{AccessTokenProvider, LwaClient};
use takeback_core::alexa::session_store::DynamoSessionStore;
use takeback_core::alexa::signaling::SignalingClient;
use takeback_core::alexa::token_store::DynamoTokenStore;
use takeback_core::alexa::webhook::WebhookClient;

#[tokio::main]
async fn main() -> Result<(), Error> {
    takeback_core::telemetry::init_json_logs();
    let config = Config::from_env(&ProcessEnv)
        .inspect_err(|e| tracing::error!(error = %e, "configuration"))?;
    let sdk = takeback_core::sdk::load().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let http = HttpClient::new()?;
    let token_store = Arc::new(DynamoTokenStore::new(
        dynamo.clone(),
        config.tokens_table.clone(),
    ));
    let tokens = Arc::new(AccessTokenProvider::new(
        token_store,
        LwaClient::new(http.clone(), config.lwa.clone()),
    ));
    let deps = Deps {
        skill_id: config.skill_id.clone(),
        sessions: DynamoSessionStore::new(dynamo, config.sessions_table.clone()),
        signaling: SignalingClient::new(http.clone(), tokens.clone(), config.signaling.retry),
        tokens,
        signaling_settings: config.signaling.clone(),
        webhook: WebhookClient::new(
            http,
            config.webhook_url.clone(),
            config.webhook_secret.clone(),
            config.webhook_retry,
            config.webhook_budget,
        ),
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
