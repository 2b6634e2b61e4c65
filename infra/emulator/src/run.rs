//! One run of a scenario: what it runs against. The SMA calls, the Connect contacts and the fake
//! Chime API all read the run's setup (the plans, the numbers, the flow, how to reach the
//! handlers) and share its [`World`]; the loop that plays the run is `simulate::simulate`.

use std::collections::{BTreeMap, HashSet};

use crate::contact_flow_interpreter::ParsedFlow;
use crate::invoke::Invoker;
use crate::scenario::{CallPlan, TargetBehaviour};
use crate::world::World;

pub struct Run {
    pub world: World,
    pub invoker: Invoker,
    pub plans: Vec<CallPlan>,
    pub connect_numbers: HashSet<String>,
    pub targets: BTreeMap<String, TargetBehaviour>,
    /// (Uri, ARN) of the configured fallback target.
    pub fallback: Option<(String, String)>,
    pub flow: ParsedFlow,
    /// Real epoch ms of virtual time 0 (for `StartTimeInMilliseconds`).
    pub epoch_ms: i64,
    /// Sample how many pairs are held every virtual second.
    pub sample_pairs: bool,
}
