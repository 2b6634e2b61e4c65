//! Wiring only: logs, configuration, clients, runtime. See `lib.rs`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use signaling_api::{FunctionUrlEvent, SignalingApiConfig, SignalingApiDeps, handle_by};
use std::sync::Arc;
use takeback_alexa::budget::{self, Deadline};
use takeback_dynamo::alexa::DynamoSessionStore;
use takeback_dynamo::alexa::DynamoTokenStore;
use takeback_http::client::HttpClient;
use takeback_http::lwa::{AccessTokenProvider, LwaClient};
use takeback_http::signaling::SignalingClient;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // The project's JSON logs, with the runtime's and the SDK's own output capped (no secrets).
    takeback_http::logging::init_json_logs();
    let config = SignalingApiConfig::from_env(&takeback_common::config::process_env())
        .inspect_err(|e| tracing::error!(error = %e, "configuration"))?;
    let sdk = takeback_sdk::load().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let http = HttpClient::new()?;
    let tokens = Arc::new(AccessTokenProvider::new(
        Arc::new(DynamoTokenStore::new(
            dynamo.clone(),
            config.tokens_table.clone(),
        )),
        LwaClient::new(http.clone(), config.lwa.clone()),
    ));
    let deps = SignalingApiDeps {
        sessions: DynamoSessionStore::new(dynamo, config.sessions_table.clone()),
        signaling: SignalingClient::new(http, tokens, config.signaling.retry),
        settings: config.signaling.clone(),
        ttl: config.ttl,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<FunctionUrlEvent>| async move {
            let deadline = Deadline::for_invocation(
                budget::SIGNALING_API_DEADLINE,
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
