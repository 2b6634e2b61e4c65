//! `flow`: see the crate documentation (`lib.rs`). `make flow STACK=...` runs it.

use clap::Parser;
use flow::{FlowError, FlowOutcome, FlowRequest, Upserted, make_flow};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "flow",
    about = "Renders infra/contact-flow.json with the stack's function ARNs and creates or updates the flow in the Connect instance",
    after_help = "The AWS SDK's usual configuration applies (AWS_PROFILE, AWS_REGION, ...). Prints one \
                  JSON line: what was done, the flow's id and ARN. EXIT STATUS: 0 done; 1 an AWS or \
                  render error; 2 a usage error."
)]
struct Args {
    /// The deployed stack whose outputs name the functions
    #[arg(long, env = "STACK")]
    stack: String,
    /// The flow's name in Connect: updated when it exists, created otherwise
    #[arg(long, env = "FLOW_NAME", default_value = "Take back and transfer")]
    name: String,
    /// Connect instance id [default: from the stack's ConnectInstanceArn parameter]
    #[arg(long, env = "CONNECT_INSTANCE_ID")]
    instance_id: Option<String>,
    /// The flow file with ${Output} placeholders
    #[arg(long, value_name = "FILE", default_value = "infra/contact-flow.json")]
    flow_file: PathBuf,
    /// Print the rendered flow and change nothing in Connect
    #[arg(long)]
    dry_run: bool,
}

async fn run(args: &Args) -> Result<FlowOutcome, FlowError> {
    let template = std::fs::read_to_string(&args.flow_file)
        .map_err(|e| FlowError::FlowFile(format!("{}: {e}", args.flow_file.display())))?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let request = FlowRequest {
        stack: &args.stack,
        template: &template,
        name: &args.name,
        instance_id: args.instance_id.as_deref(),
        dry_run: args.dry_run,
    };
    make_flow(
        &aws_sdk_cloudformation::Client::new(&sdk),
        &aws_sdk_connect::Client::new(&sdk),
        &request,
    )
    .await
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(FlowOutcome::Rendered(content)) => {
            println!("{content}");
            ExitCode::SUCCESS
        }
        Ok(FlowOutcome::Deployed {
            instance_id,
            upserted,
        }) => {
            let (action, id, arn) = match upserted {
                Upserted::Created { id, arn } => ("created", id, arn),
                Upserted::Updated { id, arn } => ("updated", id, arn),
            };
            let report = serde_json::json!({
                "flow": action, "name": args.name, "instance_id": instance_id, "id": id, "arn": arn,
            });
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("flow: {}", takeback_common::error::chain(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_consistent_and_make_flow_parses() {
        Args::command().debug_assert();
        let a = Args::try_parse_from(["flow", "--stack", "takeback", "--dry-run"]).unwrap();
        assert!(a.dry_run && a.stack == "takeback" && a.instance_id.is_none());
    }
}
