//! From a verified plan to the executor's work: what each change means on disk, and
//! the state the apply leaves. Everything is checked here, before the claim; nothing
//! is written.

use std::collections::{BTreeMap, BTreeSet};

use provkey_core::bundle::RawBundle;
use provkey_core::manifest::{BLOB_TREE_PREFIX, Manifest};
use provkey_desired::{Kind, State, StateResource, TreeListing, config_digest, is_digest};
use provkey_plan::{Action, Plan, ReplaceOrder};
use serde_json::Value;

use crate::release::Instance;
use crate::store::Store;

/// The largest tree listing read from a bundle.
const MAX_LISTING: u64 = 64 << 20;

/// One change, resolved.
#[derive(Debug, Clone)]
pub struct Work {
    pub address: String,
    pub kind: Kind,
    pub name: String,
    pub op: Op,
    /// The artifact to have in the store (creates, replaces, no-ops).
    pub listing: Option<TreeListing>,
    /// The instance to deploy (instance creates and replaces).
    pub new: Option<Instance>,
    /// The deployed instance this change removes (instance replaces and destroys).
    pub old: Option<Instance>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Replace(ReplaceOrder),
    Destroy,
    NoOp,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Replace(_) => "replace",
            Op::Destroy => "destroy",
            Op::NoOp => "no-op",
        }
    }
}

/// A resource name as the executor uses it in paths: `[a-z0-9][a-z0-9_-]{0,63}`.
pub fn is_safe_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Checks that every path a plan's instances write is one the executor can write on
/// any target (see [`provkey_desired::desired::check_relative_file_path`]): `provkey
/// plan` and `provkey seal` refuse such a plan, so that it is never signed.
pub fn check_plan_paths(plan: &Plan) -> Result<(), String> {
    for change in &plan.changes {
        if change.resource_type != "instance" {
            continue;
        }
        if let Some(after) = change.after.as_ref().and_then(|a| a.value()) {
            provkey_desired::desired::check_instance_files(after).map_err(|why| {
                format!(
                    "`{}`: {why}: no target could hold it",
                    change.address.escape_default()
                )
            })?;
        }
    }
    Ok(())
}

/// An instance from its recorded attributes (a plan's `after`, a state's `attributes`).
pub fn instance_from(address: &str, name: &str, attributes: &Value) -> Result<Instance, String> {
    let artifact_digest = attributes
        .pointer("/artifact/digest")
        .and_then(Value::as_str)
        .filter(|d| is_digest(d))
        .ok_or_else(|| {
            format!(
                "`{address}` runs an artifact named only by a mutable reference: the executor \
                 deploys content-addressed artifacts only"
            )
        })?
        .to_owned();
    let config = attributes
        .get("config")
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    if !config.is_object() {
        return Err(format!("`{address}`: `config` is not a table"));
    }
    let files_value = attributes
        .get("files")
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let mut files = BTreeMap::new();
    for (path, content) in files_value
        .as_object()
        .ok_or_else(|| format!("`{address}`: `files` is not a table"))?
    {
        if let Err(why) = provkey_desired::desired::check_relative_file_path(path) {
            return Err(format!(
                "`{address}`: file path {why}: it is not a relative path inside the instance \
                 that every target can hold"
            ));
        }
        let text = content
            .as_str()
            .ok_or_else(|| format!("`{address}`: file `{path}` is not a string"))?;
        files.insert(path.clone(), text.to_owned());
    }
    // A path that is both a file and a directory cannot be materialized.
    for path in files.keys() {
        if files.keys().any(|p| p.starts_with(&format!("{path}/"))) {
            return Err(format!(
                "`{address}`: `{path}` is both a file and a directory"
            ));
        }
    }
    let recorded = attributes
        .get("config_digest")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let computed = config_digest(&config, &files_value).map_err(|e| e.to_string())?;
    if recorded != computed {
        return Err(format!(
            "`{address}`: `config_digest` `{recorded}` is not the digest of its configuration (`{computed}`)"
        ));
    }
    Ok(Instance {
        address: address.to_owned(),
        name: name.to_owned(),
        artifact_digest,
        config_digest: computed,
        config,
        files,
    })
}

/// The tree listings a bundle carries, by artifact digest (each blob read once and
/// checked against its digest).
pub fn bundle_trees(
    manifest: &Manifest,
    raw: &RawBundle,
) -> Result<BTreeMap<String, TreeListing>, String> {
    let mut out = BTreeMap::new();
    for blob in &manifest.blobs {
        if !blob.name.starts_with(BLOB_TREE_PREFIX) {
            continue;
        }
        let read = raw
            .read_blob(&blob.blake3, blob.size.min(MAX_LISTING), true)
            .map_err(|e| format!("blob `{}`: {e}", blob.name))?;
        if read.blake3 != blob.blake3 {
            return Err(format!("blob `{}` does not match its digest", blob.name));
        }
        let listing = TreeListing::from_slice(&read.bytes.unwrap_or_default())
            .map_err(|e| format!("blob `{}` is not a tree listing: {e}", blob.name))?;
        out.insert(listing.digest.clone(), listing);
    }
    Ok(out)
}

/// What an apply will do, and the state it leaves.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub work: Vec<Work>,
    /// The resources of the new state (serial, lineage and manifest filled at commit).
    pub resources: Vec<StateResource>,
}

/// Resolves every change of `plan` against the current state, the store and the
/// bundle's trees; refuses what cannot be deployed exactly.
pub fn prepare(
    plan: &Plan,
    current: &State,
    store: &Store<'_>,
    trees: &BTreeMap<String, TreeListing>,
) -> Result<Prepared, String> {
    let deployed: BTreeMap<&str, &StateResource> = current
        .resources
        .iter()
        .map(|r| (r.address.as_str(), r))
        .collect();
    let listing_for = |digest: &str| -> Result<TreeListing, String> {
        if let Some(l) = trees.get(digest) {
            return Ok(l.clone());
        }
        match store.tree(digest) {
            Some(l) => Ok(l),
            None => Err(format!(
                "artifact `{digest}` is neither in the bundle nor in the target's store \
                 (seal with `--desired` so that the bundle carries it)"
            )),
        }
    };
    let mut seen = BTreeSet::new();
    let mut work = Vec::new();
    let mut resources = Vec::new();
    for change in &plan.changes {
        let address = change.address.as_str();
        if !seen.insert(address) {
            return Err(format!("`{address}` appears twice in the plan"));
        }
        let kind = match change.resource_type.as_str() {
            "artifact" => Kind::Artifact,
            "instance" => Kind::Instance,
            other => {
                return Err(format!(
                    "`{address}` is of type `{other}`: this executor deploys provkey \
                     `artifact` and `instance` resources"
                ));
            }
        };
        if !is_safe_name(&change.name) || kind.address(&change.name) != address {
            return Err(format!(
                "`{}` is not a valid resource address",
                address.escape_default()
            ));
        }
        let op = match &change.action {
            Action::Create => Op::Create,
            Action::Replace(r) => Op::Replace(r.order),
            Action::Destroy => Op::Destroy,
            Action::NoOp => Op::NoOp,
            other => {
                return Err(format!(
                    "`{address}`: action `{}` is not one this executor performs",
                    other.name()
                ));
            }
        };
        let old_resource = deployed.get(address).copied();
        match (op, old_resource) {
            (Op::Create, Some(_)) => {
                return Err(format!("`{address}` is created but is already deployed"));
            }
            (Op::Replace(_) | Op::Destroy | Op::NoOp, None) => {
                return Err(format!("`{address}` is not deployed on this target"));
            }
            _ => {}
        }
        if let Some(old) = old_resource
            && old.kind != kind
        {
            return Err(format!("`{address}` changes type"));
        }
        let after = change.after.as_ref().and_then(|a| a.value().cloned());
        let mut item = Work {
            address: address.to_owned(),
            kind,
            name: change.name.clone(),
            op,
            listing: None,
            new: None,
            old: None,
        };
        if op != Op::Destroy {
            let after = after.ok_or_else(|| format!("`{address}` has no `after` value"))?;
            let (artifact_digest, config) = match kind {
                Kind::Artifact => {
                    let digest = after
                        .get("digest")
                        .and_then(Value::as_str)
                        .filter(|d| is_digest(d))
                        .ok_or_else(|| {
                            format!(
                                "`{address}` is named only by a mutable reference: the \
                                 executor deploys content-addressed artifacts only"
                            )
                        })?
                        .to_owned();
                    item.listing = Some(listing_for(&digest)?);
                    (digest, None)
                }
                Kind::Instance => {
                    let inst = instance_from(address, &change.name, &after)?;
                    item.listing = Some(listing_for(&inst.artifact_digest)?);
                    let pair = (
                        inst.artifact_digest.clone(),
                        Some(inst.config_digest.clone()),
                    );
                    if op != Op::NoOp {
                        item.new = Some(inst);
                    }
                    pair
                }
            };
            resources.push(StateResource {
                address: address.to_owned(),
                kind,
                name: change.name.clone(),
                depends_on: change.depends_on.clone(),
                artifact_digest: Some(artifact_digest),
                config_digest: config,
                attributes: after,
            });
        }
        if kind == Kind::Instance
            && matches!(op, Op::Replace(_) | Op::Destroy)
            && let Some(old) = old_resource
        {
            item.old = Some(instance_from(address, &change.name, &old.attributes)?);
        }
        work.push(item);
    }
    if let Some(missing) = deployed.keys().find(|a| !seen.contains(*a)) {
        return Err(format!(
            "`{missing}` is deployed but the plan does not mention it (a plan made against \
             another state)"
        ));
    }
    Ok(Prepared { work, resources })
}

/// The longest path the executor creates under a target, in bytes: Linux's
/// `PATH_MAX` (4096) less its NUL.
pub const MAX_TARGET_PATH: usize = 4095;

/// Checks that every path the releases of `prepared` hold fits under a target
/// directory whose absolute path is `prefix_len` bytes long, so that a plan fails
/// here, before the claim, rather than half-way through its apply.
pub fn check_fits(prepared: &Prepared, prefix_len: usize) -> Result<(), String> {
    for w in &prepared.work {
        let (Some(new), Some(listing)) = (&w.new, &w.listing) else {
            continue;
        };
        let release = prefix_len + "/releases/".len() + new.release_id().len();
        let files = new.files.keys().map(|p| ("/files/".len() + p.len(), p));
        let artifact = listing
            .entries
            .iter()
            .map(|e| ("/artifact/".len() + e.path.len(), &e.path));
        if let Some((longest, path)) = files.chain(artifact).max_by_key(|(len, _)| *len)
            && release + longest > MAX_TARGET_PATH
        {
            return Err(format!(
                "`{}` would write a path of {} bytes (`{}…` under this target directory), \
                 more than the {MAX_TARGET_PATH} the system allows",
                w.address,
                release + longest,
                path.chars().take(40).collect::<String>().escape_default()
            ));
        }
    }
    Ok(())
}

/// Checks the manifest's `artifact` (what `provkey approve` shows as the artifact of
/// the release) against what the plan deploys: every artifact the plan creates or
/// replaces, or starts an instance on, must be that one (by its tree digest, or, for
/// a one-file artifact, by the file's blake3). A plan that deploys anything else under
/// that label is refused.
pub fn check_manifest_artifact(manifest: &Manifest, prepared: &Prepared) -> Result<(), String> {
    let Some(named) = &manifest.artifact else {
        return Ok(());
    };
    let b3 = &named.digest.blake3;
    for w in &prepared.work {
        if !matches!(w.op, Op::Create | Op::Replace(_)) {
            continue;
        }
        let Some(listing) = &w.listing else {
            continue;
        };
        let single = match listing.entries.as_slice() {
            [only] if only.path.is_empty() => only.file().map(|(f, _, _)| f),
            _ => None,
        };
        let matches = listing.digest.strip_prefix("blake3:") == Some(b3.as_str())
            || single == Some(b3.as_str());
        if !matches {
            return Err(format!(
                "`{}` deploys artifact `{}`, but the manifest's `artifact` is `{}` (blake3 {b3}): \
                 the approved artifact is not what the plan deploys",
                w.address, listing.digest, named.uri
            ));
        }
    }
    Ok(())
}
