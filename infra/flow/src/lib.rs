//! `make flow STACK=...`: the contact flow by one command.
//!
//! 1. [`stack_settings`] reads the stack's outputs and parameters (`DescribeStacks`);
//! 2. [`render::render`] fills `infra/contact-flow.json`'s `${Output}` placeholders with them
//!    (pure, unit-tested);
//! 3. [`upsert_flow`] finds the flow by name in the Connect instance (`ListContactFlows`) and
//!    updates its content (`UpdateContactFlowContent`), or creates it (`CreateContactFlow`).
//!
//! The SDK clients are passed in, so the tests point them at a loopback fake.

pub mod render;

use aws_sdk_cloudformation::error::DisplayErrorContext;
use aws_sdk_connect::types::ContactFlowType;
use std::collections::BTreeMap;

/// The stack parameter that names the Connect instance.
pub const INSTANCE_PARAMETER: &str = "ConnectInstanceArn";

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("DescribeStacks {stack}: {message}")]
    Stack { stack: String, message: String },
    #[error("no stack named {0:?}")]
    NoStack(String),
    #[error("{0}")]
    Render(#[from] render::RenderError),
    #[error(
        "no Connect instance: the stack has no {INSTANCE_PARAMETER} parameter; pass --instance-id"
    )]
    NoInstance,
    #[error("{0}")]
    FlowFile(String),
    #[error("{operation}: {message}")]
    Connect {
        operation: &'static str,
        message: String,
    },
}

/// What the stack says: its outputs and parameters by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackSettings {
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
}

impl StackSettings {
    /// The instance id from the `ConnectInstanceArn` parameter (`...:instance/<id>`).
    pub fn instance_id(&self) -> Option<String> {
        let arn = self.parameters.get(INSTANCE_PARAMETER)?;
        arn.rsplit_once("instance/")
            .map(|(_, id)| id.to_owned())
            .filter(|id| !id.is_empty())
    }
}

pub async fn stack_settings(
    cloudformation: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<StackSettings, FlowError> {
    let answer = cloudformation
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| FlowError::Stack {
            stack: stack.to_owned(),
            message: DisplayErrorContext(&e).to_string(),
        })?;
    let found = answer
        .stacks()
        .first()
        .ok_or_else(|| FlowError::NoStack(stack.to_owned()))?;
    let outputs = found
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect();
    let parameters = found
        .parameters()
        .iter()
        .filter_map(|p| {
            Some((
                p.parameter_key()?.to_owned(),
                p.parameter_value()?.to_owned(),
            ))
        })
        .collect();
    Ok(StackSettings {
        outputs,
        parameters,
    })
}

/// What `make flow` is asked to do.
#[derive(Debug, Clone)]
pub struct FlowRequest<'a> {
    pub stack: &'a str,
    /// The flow file's text, with `${Output}` placeholders.
    pub template: &'a str,
    pub name: &'a str,
    /// The instance; `None`: the stack's `ConnectInstanceArn` parameter.
    pub instance_id: Option<&'a str>,
    pub dry_run: bool,
}

/// What `make flow` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowOutcome {
    /// `--dry-run`: the rendered flow; Connect untouched.
    Rendered(String),
    Deployed {
        instance_id: String,
        upserted: Upserted,
    },
}

/// The whole command: the stack's outputs, the rendered flow, and (unless a dry run) the flow
/// created or updated. Nothing reaches Connect unless the flow rendered completely.
pub async fn make_flow(
    cloudformation: &aws_sdk_cloudformation::Client,
    connect: &aws_sdk_connect::Client,
    request: &FlowRequest<'_>,
) -> Result<FlowOutcome, FlowError> {
    let stack = stack_settings(cloudformation, request.stack).await?;
    let content = render::render(request.template, &stack.outputs)?;
    if request.dry_run {
        return Ok(FlowOutcome::Rendered(content));
    }
    let instance_id = request
        .instance_id
        .map(str::to_owned)
        .or_else(|| stack.instance_id())
        .ok_or(FlowError::NoInstance)?;
    let upserted = upsert_flow(connect, &instance_id, request.name, &content).await?;
    Ok(FlowOutcome::Deployed {
        instance_id,
        upserted,
    })
}

/// What [`upsert_flow`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upserted {
    Created { id: String, arn: String },
    Updated { id: String, arn: String },
}

fn connect_error<E>(operation: &'static str) -> impl Fn(E) -> FlowError
where
    E: std::error::Error,
{
    move |e| FlowError::Connect {
        operation,
        message: DisplayErrorContext(&e).to_string(),
    }
}

/// Creates the flow `name` with `content` in the instance, or replaces the content of the flow
/// of that name (type `CONTACT_FLOW`) that is there.
pub async fn upsert_flow(
    connect: &aws_sdk_connect::Client,
    instance_id: &str,
    name: &str,
    content: &str,
) -> Result<Upserted, FlowError> {
    let mut next_token = None;
    let existing = loop {
        let page = connect
            .list_contact_flows()
            .instance_id(instance_id)
            .contact_flow_types(ContactFlowType::ContactFlow)
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(connect_error("ListContactFlows"))?;
        if let Some(flow) = page
            .contact_flow_summary_list()
            .iter()
            .find(|f| f.name() == Some(name))
        {
            break Some((
                flow.id().unwrap_or_default().to_owned(),
                flow.arn().unwrap_or_default().to_owned(),
            ));
        }
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => break None,
        }
    };
    match existing {
        Some((id, arn)) => {
            connect
                .update_contact_flow_content()
                .instance_id(instance_id)
                .contact_flow_id(&id)
                .content(content)
                .send()
                .await
                .map_err(connect_error("UpdateContactFlowContent"))?;
            Ok(Upserted::Updated { id, arn })
        }
        None => {
            let created = connect
                .create_contact_flow()
                .instance_id(instance_id)
                .name(name)
                .r#type(ContactFlowType::ContactFlow)
                .description(
                    "Take back and transfer: lookup, transfer, hold (infra/contact-flow.json)",
                )
                .content(content)
                .send()
                .await
                .map_err(connect_error("CreateContactFlow"))?;
            Ok(Upserted::Created {
                id: created.contact_flow_id().unwrap_or_default().to_owned(),
                arn: created.contact_flow_arn().unwrap_or_default().to_owned(),
            })
        }
    }
}
