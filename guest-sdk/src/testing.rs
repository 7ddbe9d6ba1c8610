//! Helpers for unit-testing a policy natively, with plain `cargo test`: no Wasm is
//! built, the policy's functions are called directly, through the same path the
//! exported component takes.
//!
//! ```
//! use provkey_sdk::prelude::*;
//! use provkey_sdk::testing;
//!
//! struct NoDestroy;
//! const RULE: Rule = Rule::new("no-destroy", "Nothing is destroyed.");
//! impl Policy for NoDestroy {
//!     fn metadata() -> Metadata {
//!         Metadata::new("no-destroy", "0.1.0", "Refuses destroys.").rules(&[RULE])
//!     }
//!     fn evaluate(plan: &Plan, _config: &Config) -> Result<Vec<Finding>, Error> {
//!         Ok(plan.changes_where(|c| c.action.destroys()).map(|c| Finding::new(&RULE, c)).collect())
//!     }
//! }
//!
//! testing::check_metadata::<NoDestroy>();
//! let plan = testing::plan_of([
//!     testing::change("aws_instance.a", Action::Destroy),
//!     testing::change("aws_instance.b", Action::Create).after(json!({"ami": "ami-1"})),
//! ]);
//! let findings = testing::evaluate::<NoDestroy>(&plan, "{}").unwrap();
//! assert_eq!(testing::addresses(&findings), ["aws_instance.a"]);
//! ```

#![allow(
    clippy::panic,
    reason = "test helpers report failures by panicking, like `assert!`"
)]

use provkey_plan::{Action, JsonText, Plan, PlanSource, ResourceChange, ResourceMode};
use serde_json::Value;

use crate::{Error, Finding, Metadata, Policy};

/// Reads a plan from provkey plan JSON or `terraform show -json` output (a test
/// fixture, typically `include_str!`'d). Panics with the reason if it is not a plan.
pub fn plan(json: &str) -> Plan {
    match Plan::from_json(json) {
        Ok(plan) => plan,
        Err(err) => panic!("the test plan is not a plan: {err}"),
    }
}

/// A provkey plan holding these changes, in order.
pub fn plan_of<I>(changes: I) -> Plan
where
    I: IntoIterator,
    I::Item: Into<ResourceChange>,
{
    let mut plan = Plan::new(PlanSource::Provkey);
    plan.changes = changes.into_iter().map(Into::into).collect();
    if let Err(err) = plan.validate() {
        panic!("the test plan is not valid: {err}");
    }
    plan
}

/// Runs the policy as the component would: parses `config` (JSON text), evaluates,
/// and checks that every finding names a rule declared in the metadata.
pub fn evaluate<P: Policy>(plan: &Plan, config: &str) -> Result<Vec<Finding>, Error> {
    crate::run_policy::<P>(plan, config)
}

/// The addresses of the findings, in order (`"-"` for a finding about the whole plan).
pub fn addresses(findings: &[Finding]) -> Vec<&str> {
    findings
        .iter()
        .map(|f| f.address.as_deref().unwrap_or("-"))
        .collect()
}

/// Panics, listing every problem, unless the policy's metadata is well formed:
/// kebab-case ids, a semver version, a description, at least one rule, unique rule
/// ids, and a configuration schema that is a JSON object.
pub fn check_metadata<P: Policy>() {
    let problems = metadata_problems(&P::metadata());
    if !problems.is_empty() {
        panic!("invalid policy metadata:\n  {}", problems.join("\n  "));
    }
}

/// The problems [`check_metadata`] reports, without panicking.
pub fn metadata_problems(metadata: &Metadata) -> Vec<String> {
    let mut problems = Vec::new();
    if !is_kebab_case(metadata.id) {
        problems.push(format!("the id `{}` is not kebab-case", metadata.id));
    }
    if !is_semver(metadata.version) {
        problems.push(format!("the version `{}` is not semver", metadata.version));
    }
    if metadata.description.trim().is_empty() {
        problems.push("the description is empty".to_string());
    }
    if metadata.rules.is_empty() {
        problems.push("no rules are declared".to_string());
    }
    for (i, rule) in metadata.rules.iter().enumerate() {
        if !is_kebab_case(rule.id) {
            problems.push(format!("the rule id `{}` is not kebab-case", rule.id));
        }
        if metadata.rules[..i].iter().any(|r| r.id == rule.id) {
            problems.push(format!("the rule id `{}` is declared twice", rule.id));
        }
        if rule.description.trim().is_empty() {
            problems.push(format!("the rule `{}` has no description", rule.id));
        }
    }
    if let Some(schema) = metadata.config_schema {
        match serde_json::from_str::<Value>(schema) {
            Ok(Value::Object(_)) => {}
            Ok(_) => problems.push("the configuration schema is not a JSON object".to_string()),
            Err(err) => problems.push(format!("the configuration schema is not JSON: {err}")),
        }
    }
    problems
}

fn is_kebab_case(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn is_semver(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A resource change for a test plan, from its address and action:
/// `testing::change("module.net.aws_instance.web[0]", Action::Update)`.
///
/// The type, name, module path and mode are read from the address, the provider
/// from the type. `before` and `after` default to `{}` on the sides the action has
/// (no `before` for a create or a read, no `after` for a destroy or a forget).
pub fn change(address: &str, action: Action) -> TestChange {
    let (module_path, mode, resource_type, name) = parse_address(address);
    let (has_before, has_after) = match action {
        Action::Create | Action::Read => (false, true),
        Action::Destroy | Action::Forget => (true, false),
        Action::Replace(_) | Action::Update | Action::NoOp => (true, true),
    };
    let empty = || Some(JsonText::new("{}"));
    let provider = match resource_type.split_once('_') {
        Some((prefix, _)) => format!("registry.terraform.io/hashicorp/{prefix}"),
        None => String::new(),
    };
    TestChange(ResourceChange {
        address: address.to_string(),
        previous_address: None,
        module_path,
        mode,
        resource_type,
        name,
        provider,
        action,
        before: if has_before { empty() } else { None },
        after: if has_after { empty() } else { None },
        after_unknown: Vec::new(),
        before_sensitive: Vec::new(),
        after_sensitive: Vec::new(),
        depends_on: Vec::new(),
    })
}

/// A resource change being built by [`change`]; a plan takes it as is.
#[derive(Debug, Clone)]
pub struct TestChange(pub ResourceChange);

impl TestChange {
    /// Sets the value before the change (`Value::Null` for none).
    #[must_use]
    pub fn before(mut self, value: Value) -> Self {
        self.0.before = (!value.is_null()).then(|| JsonText::from_value(&value));
        self
    }

    /// Sets the value after the change (`Value::Null` for none).
    #[must_use]
    pub fn after(mut self, value: Value) -> Self {
        self.0.after = (!value.is_null()).then(|| JsonText::from_value(&value));
        self
    }

    /// Sets the resource type, for addresses that do not spell it (a Kubernetes
    /// object's `Deployment/prod/web` is of type `k8s_deployment`).
    #[must_use]
    pub fn resource_type(mut self, resource_type: &str) -> Self {
        self.0.resource_type = resource_type.to_string();
        self
    }

    /// Marks `path` (a JSON Pointer) as known only after apply.
    #[must_use]
    pub fn unknown(mut self, path: &str) -> Self {
        self.0.after_unknown.push(path.to_string());
        self
    }

    /// Marks `path` as sensitive, before and after the change.
    #[must_use]
    pub fn sensitive(mut self, path: &str) -> Self {
        self.0.before_sensitive.push(path.to_string());
        self.0.after_sensitive.push(path.to_string());
        self
    }

    /// Adds a dependency on another resource's address.
    #[must_use]
    pub fn depends_on(mut self, address: &str) -> Self {
        self.0.depends_on.push(address.to_string());
        self
    }

    /// The resource change.
    pub fn build(self) -> ResourceChange {
        self.0
    }
}

impl From<TestChange> for ResourceChange {
    fn from(change: TestChange) -> Self {
        change.0
    }
}

/// Splits `module.a.data.aws_ami.x["k"]` into module path, mode, type and name.
fn parse_address(address: &str) -> (String, ResourceMode, String, String) {
    let base = match address
        .strip_suffix(']')
        .and_then(|a| a.rfind('[').map(|i| &address[..i]))
    {
        Some(base) => base,
        None => address,
    };
    let parts: Vec<&str> = base.split('.').collect();
    let mut i = 0;
    let mut modules = Vec::new();
    while parts.get(i) == Some(&"module") && i + 2 < parts.len() {
        modules.push(format!("module.{}", parts[i + 1]));
        i += 2;
    }
    let mut mode = ResourceMode::Managed;
    if parts.get(i) == Some(&"data") && i + 2 < parts.len() {
        mode = ResourceMode::Data;
        i += 1;
    }
    let resource_type = parts.get(i).copied().unwrap_or_default().to_string();
    let name = parts
        .get(i + 1..)
        .map(|rest| rest.join("."))
        .unwrap_or_default();
    (modules.join("."), mode, resource_type, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_parsed() {
        let c = change("module.a.module.b[0].data.aws_ami.x[\"k\"]", Action::Read).build();
        assert_eq!(c.module_path, "module.a.module.b[0]");
        assert_eq!(c.mode, ResourceMode::Data);
        assert_eq!(
            (c.resource_type.as_str(), c.name.as_str()),
            ("aws_ami", "x")
        );
        assert_eq!(c.provider, "registry.terraform.io/hashicorp/aws");
        assert!(c.before.is_none() && c.after.is_some());
        let c = change("aws_instance.web", Action::Destroy).build();
        assert_eq!((c.module_path.as_str(), c.name.as_str()), ("", "web"));
        assert!(c.before.is_some() && c.after.is_none());
    }

    #[test]
    fn metadata_is_checked() {
        const A: crate::Rule = crate::Rule::new("Bad_Id", "");
        let metadata = Metadata::new("x y", "1.0", " ")
            .rules(&[A, A])
            .config_schema("[]");
        assert_eq!(
            metadata_problems(&metadata),
            [
                "the id `x y` is not kebab-case",
                "the version `1.0` is not semver",
                "the description is empty",
                "the rule id `Bad_Id` is not kebab-case",
                "the rule `Bad_Id` has no description",
                "the rule id `Bad_Id` is not kebab-case",
                "the rule id `Bad_Id` is declared twice",
                "the rule `Bad_Id` has no description",
                "the configuration schema is not a JSON object",
            ]
        );
        assert!(is_semver("0.1.0-rc.1+build.5"));
    }
}
