//! `plan` and `apply` of a property: read the state file, read the APIs, compute the plan, and
//! (for apply) carry it out.

use std::path::Path;

use crate::apply::{ApplyOptions, ApplyReport, apply};
use crate::client::{ApiError, AspClient};
use crate::http::Transport;
use crate::observe::observe;
use crate::plan::{Observed, Plan, compute};
use crate::property::Desired;
use crate::state::{State, StateError};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("reading what the APIs hold failed: {0}")]
    Read(#[source] ApiError),
}

pub struct Planned {
    pub plan: Plan,
    pub state: State,
    pub observed: Observed,
}

pub async fn plan_property<T: Transport>(
    client: &AspClient<T>,
    desired: &Desired,
    state_path: &Path,
    prune: bool,
    concurrency: usize,
) -> Result<Planned, ProvisionError> {
    let state = State::load(state_path)?;
    let observed = observe(client, desired, &state, concurrency)
        .await
        .map_err(ProvisionError::Read)?;
    let plan = compute(desired, &state, &observed, prune);
    Ok(Planned {
        plan,
        state,
        observed,
    })
}

pub async fn apply_property<T: Transport>(
    client: &AspClient<T>,
    desired: &Desired,
    prune: bool,
    options: &ApplyOptions,
) -> Result<(Plan, ApplyReport), ProvisionError> {
    let planned = plan_property(
        client,
        desired,
        &options.state_path,
        prune,
        options.concurrency,
    )
    .await?;
    let report = apply(
        client,
        desired,
        planned.state,
        &planned.observed,
        &planned.plan,
        options,
    )
    .await;
    Ok((planned.plan, report))
}
