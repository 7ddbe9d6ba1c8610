//! Planners: loading a component once, computing a plan in a fresh store each
//! time, and checking every plan a planner returns before anything else sees it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use provkey_plan::{Action, Plan};
use thiserror::Error;
use wasmtime::Store;

use crate::bindings::{self, planner::PlannerPre};
use crate::cache::CacheOutcome;
use crate::engine::Runtime;
use crate::error::{GuestFailure, RuntimeError};
use crate::guest::GuestState;
use crate::policy::{PolicyOrigin, is_identifier, read_bounded, truncate};

/// What a planner says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannerMetadata {
    pub id: String,
    pub version: String,
    pub description: String,
}

/// A planner ready to run: compiled, linked, its metadata read and checked.
pub struct LoadedPlanner {
    pub origin: PolicyOrigin,
    pub digest: blake3::Hash,
    pub metadata: PlannerMetadata,
    pub cache: CacheOutcome,
    pre: PlannerPre<GuestState>,
}

impl std::fmt::Debug for LoadedPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlanner")
            .field("origin", &self.origin)
            .field("digest", &self.digest.to_hex().as_str())
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

/// Why a planner gave no plan. Either way the planner component failed: nothing
/// is written and nothing downstream runs.
#[derive(Debug, Error)]
pub enum PlannerError {
    #[error("planner `{planner}` {failure}")]
    Failed {
        planner: String,
        failure: GuestFailure,
    },
    #[error("planner `{planner}` returned an invalid plan: {reason}")]
    BadPlan { planner: String, reason: String },
}

/// A plan as a planner computed it, checked.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub elapsed: Duration,
}

impl Runtime {
    /// Reads, compiles (or loads from the cache) and links a planner component from a file.
    pub fn load_planner_file(&self, path: &Path) -> Result<LoadedPlanner, RuntimeError> {
        crate::policy::open_regular(path).map_err(|source| RuntimeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let bytes = read_bounded(path, self.limits.component_bytes)?;
        self.load_planner(
            &path.display().to_string(),
            PolicyOrigin::File(path.to_path_buf()),
            &bytes,
        )
    }

    /// Compiles (or loads from the cache) and links a planner component.
    pub fn load_planner(
        &self,
        name: &str,
        origin: PolicyOrigin,
        bytes: &[u8],
    ) -> Result<LoadedPlanner, RuntimeError> {
        let (digest, cache, pre) = self.prepare(
            name,
            bytes,
            "the `planner` world of provkey:plan@0.1.0",
            PlannerPre::new,
        )?;
        let metadata = self
            .call_planner(&pre, |store, planner| {
                planner.provkey_plan_planner_api().call_metadata(store)
            })
            .map(|m| PlannerMetadata {
                id: m.id,
                version: m.version,
                description: m.description,
            })
            .map_err(|failure| RuntimeError::Metadata {
                name: name.to_string(),
                failure,
            })?;
        if !is_identifier(&metadata.id) {
            return Err(RuntimeError::BadMetadata {
                name: name.to_string(),
                reason: format!(
                    "id `{}` must be 1 to 64 lowercase letters, digits and dashes",
                    truncate(&metadata.id, 100)
                ),
            });
        }
        Ok(LoadedPlanner {
            origin,
            digest,
            metadata,
            cache,
            pre,
        })
    }

    /// Computes a plan in a fresh store, then checks it with [`check_planned`].
    /// Never panics; a failure or an invalid plan is an error naming the planner.
    pub fn compute_plan(
        &self,
        planner: &LoadedPlanner,
        desired: &str,
        current: &str,
    ) -> Result<Planned, PlannerError> {
        let started = Instant::now();
        let id = planner.metadata.id.clone();
        let returned = self
            .call_planner(&planner.pre, |store, instance| {
                instance
                    .provkey_plan_planner_api()
                    .call_compute_plan(store, desired, current)
            })
            .map_err(|failure| PlannerError::Failed {
                planner: id.clone(),
                failure,
            })?;
        let wit_plan = returned.map_err(|err| {
            let (kind, message) = bindings::guest_error_text(&err);
            PlannerError::Failed {
                planner: id.clone(),
                failure: GuestFailure::GuestError {
                    kind: kind.to_string(),
                    message: truncate(message, 1_000),
                },
            }
        })?;
        let bad = |reason: String| PlannerError::BadPlan {
            planner: id.clone(),
            reason,
        };
        let size = wit_size(&wit_plan);
        if size > self.limits.output_bytes {
            return Err(PlannerError::Failed {
                planner: id.clone(),
                failure: GuestFailure::OutputTooLarge {
                    limit_bytes: self.limits.output_bytes,
                },
            });
        }
        let plan = bindings::plan_from_wit(wit_plan).map_err(bad)?;
        check_planned(&plan).map_err(bad)?;
        Ok(Planned {
            plan,
            elapsed: started.elapsed(),
        })
    }

    fn call_planner<R>(
        &self,
        pre: &PlannerPre<GuestState>,
        call: impl FnOnce(&mut Store<GuestState>, &bindings::planner::Planner) -> wasmtime::Result<R>,
    ) -> Result<R, GuestFailure> {
        let mut store = self.new_store();
        let instance = match pre.instantiate(&mut store) {
            Ok(instance) => instance,
            Err(err) => return Err(self.classify(&store, err, true)),
        };
        call(&mut store, &instance).map_err(|err| self.classify(&store, err, false))
    }
}

/// The bytes of text a plan carries, to hold planners to the output limit.
fn wit_size(plan: &bindings::WitPlan) -> usize {
    plan.changes.iter().fold(plan.source.len(), |total, c| {
        let lists = c
            .after_unknown
            .iter()
            .chain(&c.before_sensitive)
            .chain(&c.after_sensitive)
            .chain(&c.depends_on)
            .map(String::len)
            .sum::<usize>();
        total.saturating_add(
            c.address.len()
                + c.type_.len()
                + c.name.len()
                + c.provider.len()
                + c.module_path.len()
                + c.before.as_ref().map_or(0, String::len)
                + c.after.as_ref().map_or(0, String::len)
                + lists,
        )
    })
}

/// What the host requires of every plan a planner returns: a provkey plan, well
/// formed ([`Plan::validate`]: unique, non-empty addresses, JSON Pointers), attribute
/// values that are JSON, no `update` (planners only create, replace and destroy),
/// every `depends_on` naming an address of the plan, and no dependency cycle.
pub fn check_planned(plan: &Plan) -> Result<(), String> {
    if plan.source != provkey_plan::PlanSource::Provkey {
        return Err(format!(
            "the source is `{}`; a planner's plan is a `provkey` plan",
            plan.source.as_str()
        ));
    }
    plan.validate().map_err(|err| err.to_string())?;
    let addresses: HashSet<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
    for change in &plan.changes {
        let address = truncate(&change.address, 200);
        if change.action == Action::Update {
            return Err(format!(
                "resource `{address}` is updated in place; a planner only creates, \
                 replaces and destroys"
            ));
        }
        for (side, text) in [("before", &change.before), ("after", &change.after)] {
            if let Some(text) = text
                && text.value().is_none()
            {
                return Err(format!("resource `{address}`: `{side}` is not JSON"));
            }
        }
        for dep in &change.depends_on {
            if !addresses.contains(dep.as_str()) {
                return Err(format!(
                    "resource `{address}` depends on `{}`, which is not in the plan",
                    truncate(dep, 200)
                ));
            }
            if dep == &change.address {
                return Err(format!("resource `{address}` depends on itself"));
            }
        }
    }
    if let Some(cycle) = cycle(plan) {
        let shown: Vec<String> = cycle
            .iter()
            .take(10)
            .map(|a| format!("`{}`", truncate(a, 200)))
            .collect();
        return Err(format!("dependency cycle among {}", shown.join(", ")));
    }
    Ok(())
}

/// The resources left over by Kahn's algorithm: those on or behind a cycle.
fn cycle(plan: &Plan) -> Option<Vec<String>> {
    let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for change in &plan.changes {
        let deps: BTreeSet<&str> = change.depends_on.iter().map(String::as_str).collect();
        waiting.insert(&change.address, deps.len());
        for dep in deps {
            dependents.entry(dep).or_default().push(&change.address);
        }
    }
    let mut ready: Vec<&str> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(a, _)| *a)
        .collect();
    let mut done = 0usize;
    while let Some(address) = ready.pop() {
        done += 1;
        for dependent in dependents.get(address).into_iter().flatten() {
            if let Some(n) = waiting.get_mut(dependent) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    ready.push(dependent);
                }
            }
        }
    }
    (done < waiting.len()).then(|| {
        waiting
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(a, _)| a.to_string())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use provkey_plan::{PlanSource, ResourceChange, ResourceMode};

    use super::*;

    fn change(address: &str, action: Action, deps: &[&str]) -> ResourceChange {
        ResourceChange {
            address: address.to_string(),
            previous_address: None,
            module_path: String::new(),
            mode: ResourceMode::Managed,
            resource_type: "instance".to_string(),
            name: address.to_string(),
            provider: "provkey".to_string(),
            action,
            before: None,
            after: None,
            after_unknown: Vec::new(),
            before_sensitive: Vec::new(),
            after_sensitive: Vec::new(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn plan(changes: Vec<ResourceChange>) -> Plan {
        let mut plan = Plan::new(PlanSource::Provkey);
        plan.changes = changes;
        plan
    }

    #[test]
    fn a_replace_only_plan_passes() {
        let p = plan(vec![
            change("a", Action::Create, &[]),
            change("b", Action::Create, &["a"]),
            change("c", Action::Destroy, &["a"]),
        ]);
        check_planned(&p).unwrap();
    }

    #[test]
    fn updates_unknown_dependencies_cycles_and_duplicates_are_refused() {
        let err = check_planned(&plan(vec![change("a", Action::Update, &[])])).unwrap_err();
        assert!(err.contains("updated in place"), "{err}");
        let err = check_planned(&plan(vec![change("a", Action::Create, &["x"])])).unwrap_err();
        assert!(err.contains("`x`, which is not in the plan"), "{err}");
        let err = check_planned(&plan(vec![
            change("a", Action::Create, &["b"]),
            change("b", Action::Create, &["c"]),
            change("c", Action::Create, &["a"]),
            change("d", Action::Create, &[]),
        ]))
        .unwrap_err();
        assert!(err.contains("cycle among `a`, `b`, `c`"), "{err}");
        let err = check_planned(&plan(vec![
            change("a", Action::Create, &[]),
            change("a", Action::Create, &[]),
        ]))
        .unwrap_err();
        assert!(err.contains("more than once"), "{err}");
        let err = check_planned(&plan(vec![change("a", Action::Create, &["a"])])).unwrap_err();
        assert!(err.contains("itself"), "{err}");
    }
}
