//! What `provkey seal --desired FILE --state STATE` adds to a bundle so that the
//! executor can deploy it, and rollback can recover it:
//!
//! * the base state (`lineage`, `serial`, blake3 of the state's canonical JSON) and
//!   `previous_manifest` (the manifest that produced that state), from `--state`;
//! * the desired-state file as given (blob `desired`);
//! * for every artifact built from a `path`: its tree listing (blob
//!   `tree/<artifact name>`) and every file (blobs `file`, content addressed), from
//!   which the executor recomputes the `provkey-artifact-v1` digest.
//!
//! The plan must be the one `provkey plan` computes from exactly this desired state
//! and this state: every change's `after` is the desired resource, every `before` the
//! deployed one, nothing left out. A plan made against another state is refused here
//! rather than sealed with a base state it was not computed from.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::anyhow;
use provkey_core::manifest::{BLOB_DESIRED, BLOB_FILE, BLOB_TREE_PREFIX, BaseState};
use provkey_desired::{Desired, State, TreeListing};
use provkey_plan::{Action, Plan};

use super::plan::StateArg;
use crate::exit::{CliError, CliResult};

/// The blobs and base-state fields of a deployable bundle.
#[derive(Debug, Default)]
pub struct DeployInputs {
    pub base_state: Option<BaseState>,
    pub previous_manifest: Option<String>,
    /// (blob name, bytes), in the order they should be named.
    pub blobs: Vec<(String, Vec<u8>)>,
}

fn bad(msg: String) -> CliError {
    CliError::bad_input(anyhow!(msg))
}

/// Reads `--state` (a file, or `none`).
pub fn read_state(arg: &StateArg) -> CliResult<State> {
    match arg {
        StateArg::None => Ok(State::empty()),
        StateArg::File(path) => State::load(path).map_err(|err| {
            CliError::bad_input(err).with_help(
                "give the state the plan was made against (`provkey-exec state --target-dir \
                 DIR > state.json`), or `none` for a target never deployed",
            )
        }),
    }
}

/// The base state a bundle sealed against `state` names.
pub fn base_state_of(state: &State) -> Option<BaseState> {
    state.lineage.map(|lineage| BaseState {
        lineage: lineage.to_string(),
        serial: state.serial,
        blake3: state.content_blake3(),
    })
}

/// Gathers what the bundle needs from `--state` and (optionally) `--desired`, after
/// checking that `plan` goes from that state to that desired state.
pub fn gather(
    plan: &Plan,
    plan_path: &Path,
    target: &str,
    state_arg: &StateArg,
    desired_path: Option<&Path>,
) -> CliResult<DeployInputs> {
    let state = read_state(state_arg)?;
    let mut out = DeployInputs {
        base_state: base_state_of(&state),
        previous_manifest: state.applied_manifest.clone(),
        blobs: Vec::new(),
    };
    let mismatch = |what: String| {
        bad(format!(
            "plan `{}` was not computed from this state{}: {what}; nothing was written",
            plan_path.display(),
            if desired_path.is_some() {
                " and desired state"
            } else {
                ""
            }
        ))
        .with_help(
            "run `provkey plan --desired FILE --state STATE --out PLAN` again and seal that \
             plan with the same `--desired` and `--state`",
        )
    };
    check_against_state(plan, &state).map_err(mismatch)?;
    let Some(desired_path) = desired_path else {
        return Ok(out);
    };
    let desired = Desired::load(desired_path).map_err(|err| {
        let help = err.help().map(str::to_string);
        let mut cli = CliError::bad_input(err);
        cli.help = help;
        cli
    })?;
    if desired.target != target {
        return Err(bad(format!(
            "desired state `{}` is for target `{}`, not `{target}`",
            desired_path.display(),
            desired.target
        ))
        .with_help("seal for the target the desired state names (`--target`)"));
    }
    check_against_desired(plan, &desired).map_err(mismatch)?;
    let bytes = std::fs::read(desired_path).map_err(|e| {
        bad(format!(
            "cannot read desired state `{}`: {e}",
            desired_path.display()
        ))
    })?;
    out.blobs.push((BLOB_DESIRED.to_owned(), bytes));
    let base = desired_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for r in &desired.resources {
        let Some(path) = r.attributes.get("path").and_then(|p| p.as_str()) else {
            continue;
        };
        let root = base.join(path);
        let (listing, host_files) = TreeListing::from_path(&root).map_err(|e| {
            CliError::bad_input(anyhow::Error::new(e).context(format!(
                "artifact `{}` at `{}`",
                r.name,
                root.display()
            )))
        })?;
        if Some(&listing.digest) != r.artifact_digest.as_ref() {
            return Err(bad(format!(
                "artifact `{}` at `{}` changed while sealing (its digest is now `{}`)",
                r.name,
                root.display(),
                listing.digest
            ))
            .with_help("artifacts are immutable build outputs: plan again after the build"));
        }
        let json = listing
            .to_canonical()
            .map_err(|e| bad(format!("cannot encode the tree of `{}`: {e}", r.name)))?;
        out.blobs
            .push((format!("{BLOB_TREE_PREFIX}{}", r.name), json));
        files.extend(host_files);
    }
    for f in files {
        let bytes = std::fs::read(&f.path)
            .map_err(|e| bad(format!("cannot read `{}`: {e}", f.path.display())))?;
        if provkey_core::blake3_hex(&bytes) != f.blake3 {
            return Err(bad(format!("`{}` changed while sealing", f.path.display())));
        }
        out.blobs.push((BLOB_FILE.to_owned(), bytes));
    }
    Ok(out)
}

/// Every change that is not a create names a deployed resource with the `before` the
/// state records; every deployed resource is in the plan; creates are new.
fn check_against_state(plan: &Plan, state: &State) -> Result<(), String> {
    let deployed: BTreeMap<&str, &provkey_desired::StateResource> = state
        .resources
        .iter()
        .map(|r| (r.address.as_str(), r))
        .collect();
    for change in &plan.changes {
        let address = change.address.as_str();
        match (&change.action, deployed.get(address)) {
            (Action::Create, Some(_)) => {
                return Err(format!("`{address}` is created but already deployed"));
            }
            (Action::Create, None) => {}
            (_, None) => return Err(format!("`{address}` is not in the state")),
            (_, Some(r)) => {
                let before = change.before.as_ref().and_then(|b| b.value());
                if before != Some(&r.attributes) {
                    return Err(format!(
                        "the `before` of `{address}` is not what the state records"
                    ));
                }
            }
        }
    }
    if let Some(missing) = deployed
        .keys()
        .find(|a| !plan.changes.iter().any(|c| c.address == **a))
    {
        return Err(format!("deployed `{missing}` is missing from the plan"));
    }
    Ok(())
}

/// Every desired resource is a change whose `after` is its attributes; nothing else
/// but destroys.
fn check_against_desired(plan: &Plan, desired: &Desired) -> Result<(), String> {
    for change in &plan.changes {
        if change.action == Action::Destroy {
            if desired.resource(&change.address).is_some() {
                return Err(format!("`{}` is desired but destroyed", change.address));
            }
            continue;
        }
        let Some(r) = desired.resource(&change.address) else {
            return Err(format!("`{}` is not in the desired state", change.address));
        };
        if change.after.as_ref().and_then(|a| a.value()) != Some(&r.attributes) {
            return Err(format!(
                "the `after` of `{}` is not the desired resource",
                change.address
            ));
        }
    }
    if let Some(missing) = desired.resources.iter().find(|r| {
        !plan
            .changes
            .iter()
            .any(|c| c.address == r.address && c.action != Action::Destroy)
    }) {
        return Err(format!(
            "desired `{}` is missing from the plan",
            missing.address
        ));
    }
    Ok(())
}
