//! Wiring only: logs, configuration, clients, runtime. See `lib.rs`.

use call_signaling::{CallSignalingConfig, CallSignalingDeps, handle_by};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;
use takeback_alexa::budget::{self, Deadline};
use takeback_alexa::model::AlexaRequestEnvelope;
use takeback_dynamo::alexa::DynamoSessionStore;
use takeback_dynamo::alexa::DynamoTokenStore;
use takeback_http::client::HttpClient;
use takeback_http::lwa::{AccessTokenProvider, LwaClient};
use takeback_http::signaling::SignalingClient;
use takeback_http::webhook::WebhookClient;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // The project's JSON logs, with the runtime's and the SDK's own output capped (no secrets).
    takeback_http::logging::init_json_logs();
    let config = CallSignalingConfig::from_env(&takeback_common::config::process_env())
        .inspect_err(|e| tracing::error!(error = %e, "configuration"))?;
    let sdk = takeback_sdk::load().await;
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
    let deps = CallSignalingDeps {
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
        )
        .inspect_err(|e| tracing::error!(error = %e, "configuration"))?,
        ttl: config.ttl,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<AlexaRequestEnvelope>| async move {
            let deadline = Deadline::for_invocation(
                budget::SKILL_DEADLINE,
                event.context.deadline,
                budget::MIN_LAMBDA_MARGIN,
            );
            // Boxed: the handler future is deep and would make the runtime future's layout overflow
            // the compiler's query depth.
            Box::pin(handle_by(deps, event.payload, deadline))
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
