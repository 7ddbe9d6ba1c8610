//! The stock provkey planner: takes a target from its current state to the desired
//! one with creates, replaces and destroys only.
//!
//! Input (both JSON, written by the host, see `provkey-desired`):
//!
//! - `desired`: `{"format": "provkey-desired", "format_version": "0.1", "target": …,
//!   "resources": [{"address", "type", "name", "depends_on", "replace",
//!   "artifact_digest", "config_digest", "attributes"}]}`; `depends_on` already holds
//!   the explicit and the inferred dependencies (an instance depends on its artifact);
//! - `current`: `{"format": "provkey-state", "format_version": "0.1", "lineage",
//!   "serial", "resources": [{"address", "type", "name", "depends_on",
//!   "artifact_digest", "config_digest", "attributes"}]}`.
//!
//! The plan:
//!
//! - a desired resource absent from the current state is a `create`;
//! - a desired resource whose artifact digest or configuration digest differs from
//!   the deployed one is a `replace` (`artifact-changed`, `config-changed` or
//!   `artifact-and-config-changed`), create-before-destroy unless the resource asks
//!   for `destroy-before-create`; a resource whose artifact has no digest (a mutable
//!   name) can never be shown unchanged and is replaced (`artifact-unpinned`);
//! - an unchanged resource is a `no-op`;
//! - a deployed resource absent from the desired state is a `destroy`.
//!
//! Order: the desired resources in dependency order (a resource after everything it
//! depends on; ties broken by address), then the destroys in reverse dependency
//! order (a resource before everything it depends on). Each change's `depends_on`
//! lists its dependencies. A dependency cycle, an unknown dependency or a duplicate
//! address is invalid input.

use std::collections::{BTreeMap, BTreeSet};

use provkey_sdk::prelude::*;
use provkey_sdk::{JsonText, PlanSource};
use serde::Deserialize;

/// The planner.
pub struct StockPlanner;

/// The provider every provkey resource names.
pub const PROVIDER: &str = "provkey";

impl Planner for StockPlanner {
    fn metadata() -> PlannerMetadata {
        PlannerMetadata {
            id: "provkey-planner",
            version: env!("CARGO_PKG_VERSION"),
            description: "Creates, replaces (create-before-destroy by default) and destroys, \
                          ordered by dependencies; never updates in place.",
        }
    }

    fn plan(desired: &str, current: &str) -> Result<Plan, Error> {
        let desired: Desired = serde_json::from_str(desired)
            .map_err(|err| Error::invalid_input(format!("the desired state: {err}")))?;
        let current: Current = serde_json::from_str(current)
            .map_err(|err| Error::invalid_input(format!("the current state: {err}")))?;
        compute(&desired, &current)
    }
}

provkey_sdk::export_planner!(StockPlanner);

/// The desired state as the host hands it over.
#[derive(Debug, Deserialize)]
pub struct Desired {
    /// Every desired resource.
    pub resources: Vec<DesiredResource>,
}

/// One desired resource.
#[derive(Debug, Deserialize)]
pub struct DesiredResource {
    /// `artifact.NAME` or `instance.NAME`.
    pub address: String,
    /// `artifact` or `instance`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The name within its type.
    pub name: String,
    /// Addresses this resource depends on (explicit and inferred).
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// How to order the two halves of a replacement.
    #[serde(default = "default_order")]
    pub replace: ReplaceOrder,
    /// `blake3:<hex>` of the artifact (the resource's own, or the one an instance
    /// runs); absent for an artifact named only by a mutable reference.
    #[serde(default)]
    pub artifact_digest: Option<String>,
    /// `blake3:<hex>` of an instance's configuration.
    #[serde(default)]
    pub config_digest: Option<String>,
    /// The attribute values the plan carries as `after`.
    #[serde(default)]
    pub attributes: Value,
}

fn default_order() -> ReplaceOrder {
    ReplaceOrder::CreateBeforeDestroy
}

/// The current state as the executor records it.
#[derive(Debug, Deserialize)]
pub struct Current {
    /// Every deployed resource.
    #[serde(default)]
    pub resources: Vec<DeployedResource>,
}

/// One deployed resource.
#[derive(Debug, Deserialize)]
pub struct DeployedResource {
    /// Its address.
    pub address: String,
    /// `artifact` or `instance`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The name within its type.
    pub name: String,
    /// What it depended on when it was deployed.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// The deployed artifact's digest.
    #[serde(default)]
    pub artifact_digest: Option<String>,
    /// The deployed configuration's digest.
    #[serde(default)]
    pub config_digest: Option<String>,
    /// The attribute values it was deployed with (the plan's `before`).
    #[serde(default)]
    pub attributes: Value,
}

/// Computes the plan from parsed input.
pub fn compute(desired: &Desired, current: &Current) -> Result<Plan, Error> {
    let wanted = index(
        desired.resources.iter().map(|r| (r.address.as_str(), r)),
        "desired",
    )?;
    let deployed = index(
        current.resources.iter().map(|r| (r.address.as_str(), r)),
        "current",
    )?;
    let wanted_deps: BTreeMap<&str, Vec<&str>> = wanted
        .iter()
        .map(|(a, r)| (*a, r.depends_on.iter().map(String::as_str).collect()))
        .collect();
    let deployed_deps: BTreeMap<&str, Vec<&str>> = deployed
        .iter()
        .map(|(a, r)| (*a, r.depends_on.iter().map(String::as_str).collect()))
        .collect();
    let create_order = topological(&wanted_deps, "desired")?;
    // The deployed graph is ordered whole (so that a cycle in it is found), then
    // only the resources that leave are kept.
    let mut destroy_order = topological(&deployed_deps, "current")?;
    destroy_order.retain(|a| !wanted.contains_key(a));
    destroy_order.reverse();

    let mut plan = Plan::new(PlanSource::Provkey);
    for address in create_order {
        let Some(resource) = wanted.get(address) else {
            continue;
        };
        let old = deployed.get(address);
        let action = match old {
            None => Action::Create,
            Some(old) => diff(resource, old),
        };
        plan.changes.push(ResourceChange {
            address: resource.address.clone(),
            previous_address: None,
            module_path: String::new(),
            mode: ResourceMode::Managed,
            resource_type: resource.kind.clone(),
            name: resource.name.clone(),
            provider: PROVIDER.to_string(),
            action,
            before: old.and_then(|o| attributes(&o.attributes)),
            after: attributes(&resource.attributes),
            after_unknown: Vec::new(),
            before_sensitive: Vec::new(),
            after_sensitive: Vec::new(),
            depends_on: resource.depends_on.clone(),
        });
    }
    for address in destroy_order {
        let Some(old) = deployed.get(address) else {
            continue;
        };
        plan.changes.push(ResourceChange {
            address: old.address.clone(),
            previous_address: None,
            module_path: String::new(),
            mode: ResourceMode::Managed,
            resource_type: old.kind.clone(),
            name: old.name.clone(),
            provider: PROVIDER.to_string(),
            action: Action::Destroy,
            before: attributes(&old.attributes),
            after: None,
            after_unknown: Vec::new(),
            before_sensitive: Vec::new(),
            after_sensitive: Vec::new(),
            depends_on: old.depends_on.clone(),
        });
    }
    Ok(plan)
}

/// What changes between the deployed resource and the desired one.
fn diff(new: &DesiredResource, old: &DeployedResource) -> Action {
    let unpinned = new.artifact_digest.is_none();
    let artifact = unpinned || new.artifact_digest != old.artifact_digest;
    let config = new.config_digest != old.config_digest;
    // An artifact's digest is its own `/digest`; an instance's, `/artifact/digest`.
    let digest = if new.kind == "artifact" {
        "/digest"
    } else {
        "/artifact/digest"
    };
    let (reason, paths): (&str, Vec<&str>) = match (unpinned, artifact, config) {
        (true, _, _) => ("artifact-unpinned", vec![digest]),
        (false, true, true) => (
            "artifact-and-config-changed",
            vec![digest, "/config_digest"],
        ),
        (false, true, false) => ("artifact-changed", vec![digest]),
        (false, false, true) => ("config-changed", vec!["/config_digest"]),
        (false, false, false) => return Action::NoOp,
    };
    Action::Replace(Replacement {
        order: new.replace,
        reason: Some(reason.to_string()),
        paths: paths.into_iter().map(str::to_string).collect(),
    })
}

fn attributes(value: &Value) -> Option<JsonText> {
    (!value.is_null()).then(|| JsonText::from_value(value))
}

fn index<'a, T>(
    items: impl Iterator<Item = (&'a str, &'a T)>,
    which: &str,
) -> Result<BTreeMap<&'a str, &'a T>, Error> {
    let mut map = BTreeMap::new();
    for (address, item) in items {
        if map.insert(address, item).is_some() {
            return Err(Error::invalid_input(format!(
                "the {which} state lists `{address}` twice"
            )));
        }
    }
    Ok(map)
}

/// Kahn's algorithm; among the resources ready at once, the smallest address first.
fn topological<'a>(
    deps: &BTreeMap<&'a str, Vec<&'a str>>,
    which: &str,
) -> Result<Vec<&'a str>, Error> {
    let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (address, on) in deps {
        let on: BTreeSet<&str> = on.iter().copied().collect();
        for dep in &on {
            if !deps.contains_key(dep) {
                return Err(Error::invalid_input(format!(
                    "in the {which} state, `{address}` depends on `{dep}`, which is not there"
                )));
            }
            dependents.entry(dep).or_default().push(address);
        }
        waiting.insert(address, on.len());
    }
    let mut ready: BTreeSet<&str> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(a, _)| *a)
        .collect();
    let mut order = Vec::with_capacity(deps.len());
    while let Some(address) = ready.pop_first() {
        order.push(address);
        for dependent in dependents.get(address).into_iter().flatten() {
            if let Some(n) = waiting.get_mut(dependent) {
                *n -= 1;
                if *n == 0 {
                    ready.insert(dependent);
                }
            }
        }
    }
    if order.len() < deps.len() {
        let stuck: Vec<String> = waiting
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(a, _)| format!("`{a}`"))
            .collect();
        return Err(Error::invalid_input(format!(
            "the {which} state has a dependency cycle among {}",
            stuck.join(", ")
        )));
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(resources: Value) -> String {
        json!({"format": "provkey-desired", "format_version": "0.1", "target": "t", "resources": resources}).to_string()
    }

    fn current(resources: Value) -> String {
        json!({"format": "provkey-state", "format_version": "0.1", "lineage": "00000000-0000-4000-8000-000000000000", "serial": 1, "resources": resources}).to_string()
    }

    fn artifact(name: &str, digest: &str) -> Value {
        json!({"address": format!("artifact.{name}"), "type": "artifact", "name": name,
               "artifact_digest": digest, "attributes": {"name": name, "digest": digest}})
    }

    fn instance(name: &str, digest: &str, config: &str, deps: &[&str]) -> Value {
        json!({"address": format!("instance.{name}"), "type": "instance", "name": name,
               "depends_on": deps, "artifact_digest": digest, "config_digest": config,
               "attributes": {"config_digest": config}})
    }

    fn app(digest: &str, config: &str) -> Value {
        json!([
            instance("web", digest, config, &["artifact.app", "instance.db"]),
            instance("db", digest, "blake3:db", &["artifact.app"]),
            artifact("app", digest),
        ])
    }

    fn summary(plan: &Plan) -> Vec<(String, String)> {
        plan.changes
            .iter()
            .map(|c| {
                let action = match &c.action {
                    Action::Replace(r) => format!(
                        "replace:{}:{}",
                        r.reason.clone().unwrap_or_default(),
                        match r.order {
                            ReplaceOrder::CreateBeforeDestroy => "cbd",
                            ReplaceOrder::DestroyBeforeCreate => "dbc",
                        }
                    ),
                    other => other.name().to_string(),
                };
                (c.address.clone(), action)
            })
            .collect()
    }

    fn plan(d: Value, c: Value) -> Result<Plan, Error> {
        StockPlanner::plan(&desired(d), &current(c))
    }

    #[test]
    fn from_nothing_everything_is_created_in_dependency_order() {
        let plan = plan(app("blake3:a1", "blake3:c1"), json!([])).unwrap();
        let expected = [
            ("artifact.app", "create"),
            ("instance.db", "create"),
            ("instance.web", "create"),
        ];
        let got = summary(&plan);
        assert_eq!(
            got,
            expected
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .to_vec()
        );
        assert_eq!(
            plan.change("instance.web").unwrap().depends_on,
            ["artifact.app", "instance.db"]
        );
        assert!(plan.changes.iter().all(|c| c.before.is_none()));
        plan.validate().unwrap();
    }

    #[test]
    fn the_same_state_is_all_no_ops() {
        let plan = plan(app("blake3:a1", "blake3:c1"), app("blake3:a1", "blake3:c1")).unwrap();
        assert!(plan.changes.iter().all(|c| c.action == Action::NoOp));
        assert_eq!(plan.changes.len(), 3);
    }

    #[test]
    fn a_new_artifact_replaces_create_before_destroy() {
        let plan = plan(app("blake3:a2", "blake3:c1"), app("blake3:a1", "blake3:c1")).unwrap();
        let got = summary(&plan);
        assert!(
            got.iter().all(|(_, a)| a == "replace:artifact-changed:cbd"),
            "{got:?}"
        );
        let Action::Replace(r) = &plan.change("instance.web").unwrap().action else {
            panic!("not a replace");
        };
        assert_eq!(r.paths, ["/artifact/digest"]);
        assert!(plan.change("instance.web").unwrap().before.is_some());
    }

    #[test]
    fn a_new_configuration_replaces_only_that_instance() {
        let plan = plan(app("blake3:a1", "blake3:c2"), app("blake3:a1", "blake3:c1")).unwrap();
        let got = summary(&plan);
        assert_eq!(
            got[2],
            ("instance.web".into(), "replace:config-changed:cbd".into())
        );
        assert_eq!(got[0].1, "no-op");
        assert_eq!(got[1].1, "no-op");
    }

    #[test]
    fn destroy_before_create_only_when_asked() {
        let mut d = app("blake3:a2", "blake3:c1");
        d[0]["replace"] = json!("destroy-before-create");
        let plan = plan(d, app("blake3:a1", "blake3:c1")).unwrap();
        assert_eq!(
            summary(&plan)[2],
            ("instance.web".into(), "replace:artifact-changed:dbc".into())
        );
    }

    #[test]
    fn an_unpinned_artifact_is_never_unchanged() {
        let mut d = json!([artifact("app", "x")]);
        d[0]["artifact_digest"] = Value::Null;
        let mut c = json!([artifact("app", "x")]);
        c[0]["artifact_digest"] = Value::Null;
        let plan = plan(d, c).unwrap();
        assert_eq!(summary(&plan)[0].1, "replace:artifact-unpinned:cbd");
    }

    #[test]
    fn resources_that_leave_are_destroyed_in_reverse_dependency_order() {
        let plan = plan(json!([]), app("blake3:a1", "blake3:c1")).unwrap();
        let got: Vec<String> = summary(&plan)
            .into_iter()
            .map(|(a, b)| format!("{a} {b}"))
            .collect();
        assert_eq!(
            got,
            [
                "instance.web destroy",
                "instance.db destroy",
                "artifact.app destroy"
            ]
        );
        assert!(
            plan.changes
                .iter()
                .all(|c| c.after.is_none() && c.before.is_some())
        );
    }

    #[test]
    fn creates_come_before_destroys() {
        let plan = plan(
            json!([artifact("new", "blake3:n")]),
            json!([artifact("old", "blake3:o")]),
        )
        .unwrap();
        assert_eq!(
            summary(&plan),
            [
                ("artifact.new".into(), "create".into()),
                ("artifact.old".into(), "destroy".into())
            ]
        );
    }

    #[test]
    fn a_cycle_is_invalid_input() {
        let d = json!([
            instance("a", "blake3:x", "blake3:c", &["instance.b"]),
            instance("b", "blake3:x", "blake3:c", &["instance.a"]),
        ]);
        let err = plan(d, json!([])).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
        assert!(err.message().contains("cycle"), "{err:?}");
        assert!(err.message().contains("`instance.a`"), "{err:?}");
    }

    #[test]
    fn an_unknown_dependency_or_duplicate_is_invalid_input() {
        let d = json!([instance("a", "blake3:x", "blake3:c", &["instance.nope"])]);
        let err = plan(d, json!([])).unwrap_err();
        assert!(err.message().contains("`instance.nope`"), "{err:?}");
        let d = json!([artifact("a", "blake3:x"), artifact("a", "blake3:x")]);
        let err = plan(d, json!([])).unwrap_err();
        assert!(err.message().contains("twice"), "{err:?}");
        let err = StockPlanner::plan("{", &current(json!([]))).unwrap_err();
        assert!(err.message().starts_with("the desired state"), "{err:?}");
    }
}
