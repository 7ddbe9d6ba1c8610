//! `provkey:plan/plan-view@0.2.0`: the plan a 0.2.0 policy evaluates, as the host
//! shows it. The policy receives every change without its attribute values and
//! asks for the values it reads; the host answers from the one parsed plan that
//! every policy of the check shares, so a member that several policies read is
//! found once.

use std::sync::{Arc, OnceLock};

use provkey_plan::{JsonText, Plan};

use crate::bindings::policy::provkey::plan::types as wit;
use crate::bindings::policy_0_2::provkey::plan::plan_view as view;
use crate::bindings::{action_to_wit, mode_to_wit};
use crate::guest::GuestState;

/// A plan ready for guests of either contract, each form built on first need and
/// shared by every policy of a check.
#[derive(Debug)]
pub struct GuestPlan {
    plan: Arc<Plan>,
    full: OnceLock<wit::Plan>,
    summary: OnceLock<view::PlanSummary>,
}

impl GuestPlan {
    pub fn new(plan: Arc<Plan>) -> Self {
        GuestPlan {
            plan,
            full: OnceLock::new(),
            summary: OnceLock::new(),
        }
    }

    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// The whole plan, attribute values included, for `provkey:plan@0.1.0` policies.
    pub fn full(&self) -> &wit::Plan {
        self.full
            .get_or_init(|| crate::bindings::plan_to_wit(&self.plan))
    }

    /// The plan without attribute values, for `provkey:plan@0.2.0` policies.
    pub fn summary(&self) -> &view::PlanSummary {
        self.summary.get_or_init(|| summary_to_wit(&self.plan))
    }
}

fn summary_to_wit(plan: &Plan) -> view::PlanSummary {
    view::PlanSummary {
        source: plan.source.as_str().to_string(),
        format_version: plan.source_version.clone(),
        changes: plan
            .changes
            .iter()
            .map(|change| view::ChangeSummary {
                address: change.address.clone(),
                previous_address: change.previous_address.clone(),
                module_path: change.module_path.clone(),
                mode: mode_to_wit(change.mode),
                type_: change.resource_type.clone(),
                name: change.name.clone(),
                provider: change.provider.clone(),
                action: action_to_wit(&change.action),
                has_before: change.before.is_some(),
                has_after: change.after.is_some(),
                after_unknown: change.after_unknown.clone(),
                before_sensitive: change.before_sensitive.clone(),
                after_sensitive: change.after_sensitive.clone(),
                depends_on: change.depends_on.clone(),
            })
            .collect(),
    }
}

impl GuestState {
    fn plan_value(&self, change: u32, side: view::Side) -> Option<&JsonText> {
        let change = self
            .plan
            .as_ref()?
            .changes
            .get(usize::try_from(change).ok()?)?;
        match side {
            view::Side::Before => change.before.as_ref(),
            view::Side::After => change.after.as_ref(),
        }
    }
}

/// What a guest may read is bounded by the plan itself; what it may keep, by its
/// memory limit; how often it may ask, by its deadline.
impl view::Host for GuestState {
    fn value(&mut self, change: u32, side: view::Side, pointer: String) -> Option<String> {
        let value = self.plan_value(change, side)?;
        if pointer.is_empty() {
            return Some(value.as_str().to_string());
        }
        // A top-level member is sent as written: nothing is parsed for it.
        if let Some(text) = value.member_text(&pointer) {
            return Some(text.to_string());
        }
        value.pointer(&pointer).map(ToString::to_string)
    }
}
