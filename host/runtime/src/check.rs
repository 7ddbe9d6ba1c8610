//! Running a set of policies over one plan, in parallel across cores.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use provkey_plan::{Finding, Plan, PolicyMetadata};

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
///
/// The policies wait in one queue, in the order given, and each of the pool's
/// threads takes the next one when it is free. Rayon's `par_iter` splits the list
/// in halves instead: with the six stock policies, whose costs differ by five
/// times, one core finished its half about a tenth of the check before the other
/// (1,000 to 100,000 changes, measured with the bench's `timeline` of this change).
/// The outcomes come back in the order of `policies`.
pub fn check_plan(
    runtime: &Runtime,
    plan: &Arc<Plan>,
    policies: &[LoadedPolicy],
    configs: &BTreeMap<String, String>,
) -> Vec<PolicyOutcome> {
    let guest_plan = GuestPlan::new(Arc::clone(plan));
    let index = PlanIndex::new(plan);
    let evaluate = |policy: &LoadedPolicy| {
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
    };
    let workers = rayon::current_num_threads().min(policies.len());
    if workers <= 1 {
        return policies.iter().map(evaluate).collect();
    }
    let next = AtomicUsize::new(0);
    let outcomes: Vec<OnceLock<PolicyOutcome>> = policies.iter().map(|_| OnceLock::new()).collect();
    rayon::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|_| {
                loop {
                    let taken = next.fetch_add(1, Ordering::Relaxed);
                    let (Some(policy), Some(slot)) = (policies.get(taken), outcomes.get(taken))
                    else {
                        break;
                    };
                    let _ = slot.set(evaluate(policy));
                }
            });
        }
    });
    // Every slot is filled: a worker that panicked took the whole scope down with it.
    outcomes
        .into_iter()
        .filter_map(OnceLock::into_inner)
        .collect()
}
