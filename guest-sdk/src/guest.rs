use provkey_plan::Plan;

use crate::{Config, Error, Finding, Metadata, PlannerMetadata};

/// A policy: reads a plan, returns findings.
///
/// Implement it on a unit struct and export it with [`export_policy!`](crate::export_policy).
/// Both functions must be deterministic: the same plan and configuration always
/// give the same findings, in the same order.
pub trait Policy {
    /// The policy's id, version, description, rules and configuration schema.
    fn metadata() -> Metadata;

    /// Checks a plan. Return [`Error::invalid_config`] when the configuration is
    /// wrong; every finding's rule must be one of [`Metadata::rules`].
    fn evaluate(plan: &Plan, config: &Config) -> Result<Vec<Finding>, Error>;
}

/// A planner: computes the plan that takes the current state to the desired one.
///
/// Implement it on a unit struct and export it with
/// [`export_planner!`](crate::export_planner) (feature `planner`).
pub trait Planner {
    /// The planner's id, version and description.
    fn metadata() -> PlannerMetadata;

    /// Computes the plan. `desired` and `current` are JSON text. The plan only
    /// creates, replaces and destroys.
    fn plan(desired: &str, current: &str) -> Result<Plan, Error>;
}

/// Runs a policy as the host would: parses the configuration text, evaluates, and
/// checks that every finding names a declared rule.
pub(crate) fn run_policy<P: Policy>(plan: &Plan, config: &str) -> Result<Vec<Finding>, Error> {
    let config = Config::from_json(config)?;
    let findings = P::evaluate(plan, &config)?;
    let metadata = P::metadata();
    if let Some(finding) = findings.iter().find(|f| metadata.rule(&f.rule).is_none()) {
        return Err(Error::failed(format!(
            "policy `{}` reported a finding of rule `{}`, which its metadata does not declare",
            metadata.id, finding.rule
        )));
    }
    Ok(findings)
}
