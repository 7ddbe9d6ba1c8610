//! Running a set of policies over one plan, in parallel across cores.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use provkey_plan::{Finding, Plan, PolicyMetadata};
use rayon::prelude::*;

use crate::engine::Runtime;
use crate::error::{GuestFailure, RuntimeError};
use crate::plan_view::GuestPlan;
use crate::policy::{LoadedPolicy, PlanIndex};

/// One policy's part in a check.
#[derive(Debug)]
pub struct PolicyOutcome {
    /// The policy id (from its metadata) or, if it could not be loaded, its name.
    pub id: String,
    pub metadata: Option<PolicyMetadata>,
    pub digest: Option<blake3::Hash>,
    pub origin: Option<crate::PolicyOrigin>,
    pub result: Result<Vec<Finding>, PolicyError>,
    pub elapsed: Duration,
}

/// Why a policy produced no verdict.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(transparent)]
    Load(#[from] RuntimeError),
    #[error("policy `{id}` {failure}")]
    Guest { id: String, failure: GuestFailure },
}

impl PolicyError {
    pub fn kind(&self) -> &'static str {
        match self {
            PolicyError::Load(_) => "load",
            PolicyError::Guest { failure, .. } => failure.kind(),
        }
    }
}

/// Evaluates every loaded policy over `plan`; each with its configuration (`{}` when
/// none). The plan is converted for the guests once and shared by all of them.
pub fn check_plan(
    runtime: &Runtime,
    plan: &Arc<Plan>,
    policies: &[LoadedPolicy],
    configs: &BTreeMap<String, String>,
) -> Vec<PolicyOutcome> {
    let guest_plan = GuestPlan::new(Arc::clone(plan));
    let index = PlanIndex::new(plan);
    policies
        .par_iter()
        .map(|policy| {
            let config = configs
                .get(&policy.metadata.id)
                .map(String::as_str)
                .unwrap_or("{}");
            let evaluation = runtime.evaluate(policy, &guest_plan, &index, config);
            PolicyOutcome {
                id: policy.metadata.id.clone(),
                metadata: Some(policy.metadata.clone()),
                digest: Some(policy.digest),
                origin: Some(policy.origin.clone()),
                result: evaluation.result.map_err(|failure| PolicyError::Guest {
                    id: policy.metadata.id.clone(),
                    failure,
                }),
                elapsed: evaluation.elapsed,
            }
        })
        .collect()
}
