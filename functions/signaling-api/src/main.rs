//! Wiring only: logs, configuration, clients, runtime. See `lib.rs`.
//!
//! A configuration error is one JSON log line (`variable`, `problem`) and exit status 78.

mod metrics;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use signaling_api::{FunctionUrlEvent, SignalingApiConfig, SignalingApiDeps, handle_by};
use std::sync::Arc;
use takeback_alexa::budget::{self, Deadline};
use takeback_common::telemetry;
use takeback_dynamo::alexa::DynamoSessionStore;
use takeback_dynamo::alexa::DynamoTokenStore;
use takeback_http::client::HttpClient;
use takeback_http::lwa::{AccessTokenProvider, LwaClient};
use takeback_http::signaling::SignalingClient;
use takeback_secrets::{Keys, RuntimeSecrets, SecretsManagerClient};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // The project's JSON logs, with the runtime's and the SDK's own output capped (no secrets).
    telemetry::init_json_logs();
    takeback_common::metrics::enable_stdout();
    let env = takeback_common::config::process_env();
    // Without ALEXA_SECRET_ARN (local runs) every setting is checked before the SDK loads, so a
    // bad one is the only log line.
    let secret_arn = telemetry::config_or_exit(takeback_secrets::secret_arn(&env));
    if secret_arn.is_none() {
        telemetry::config_or_exit(SignalingApiConfig::from_env(&env).map(drop));
    }
    let sdk = takeback_sdk::load().await;
    // The secrets: from Secrets Manager when ALEXA_SECRET_ARN is set (read now, again after a
    // refusal), else from the environment.
    let secrets = telemetry::config_or_exit(
        RuntimeSecrets::load(secret_arn, || SecretsManagerClient::new(&sdk), Keys::Lwa).await,
    );
    let config = telemetry::config_or_exit(SignalingApiConfig::from_env(&secrets.overlay(&env)));
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let http = HttpClient::new()?;
    let tokens = Arc::new(AccessTokenProvider::new(
        Arc::new(DynamoTokenStore::new(
            dynamo.clone(),
            config.tokens_table.clone(),
        )),
        LwaClient::new(http.clone(), config.lwa.clone())
            .with_client_secret(secrets.lwa_client_secret(&config.lwa.client_secret)),
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
            let result = Box::pin(handle_by(deps, event.payload, deadline)).await;
            if let Ok(answer) = &result {
                metrics::outcome(answer.status_code, answer.body.as_deref()).emit();
            }
            result.map_err(Error::from)
        },
    ))
    .await
}
