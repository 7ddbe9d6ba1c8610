//! `provkey rollback --to BUNDLE_DIR`: redeploy the desired state an earlier bundle
//! recorded, as an ordinary, fresh, signed deployment.
//!
//! Nothing of the old bundle is reused as is: its signature is verified, its desired
//! state and artifact trees are rebuilt from its blobs (each checked against its
//! digest), then the plan is computed against the target's *current* state, checked
//! with the *current* policies and sealed with a new sequence, nonce and expiry. The
//! executor sees one more bundle; its replay and stale checks apply as to any other.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use provkey_core::bundle::{self, RawBundle};
use provkey_core::manifest::{BLOB_DESIRED, BLOB_TREE_PREFIX, Manifest};
use provkey_core::minisig::{Minisig, Role};
use provkey_core::sign::verify_signature;
use provkey_core::trust::TrustRoot;
use provkey_desired::tree::{EntryKind, TreeListing};

use super::check::{ReviewArgs, RuntimeArgs};
use super::key::{PasswordArgs, load_secret_key, parse_duration};
use super::plan::{PlanArgs, StateArg};
use super::seal::SealArgs;
use crate::exit::{CliError, CliResult, Exit};

/// The largest desired-state or tree-listing blob read.
const MAX_SMALL_BLOB: u64 = 16 << 20;

#[derive(Args)]
pub struct RollbackArgs {
    /// The earlier bundle whose desired state is redeployed (sealed with `--desired`).
    #[arg(long = "to", value_name = "BUNDLE_DIR")]
    pub to: PathBuf,
    /// The target's current state (`provkey-exec state` output, or `none`).
    #[arg(long, value_name = "STATE.json|none")]
    pub state: StateArg,
    /// The plan-signer secret key that seals the new bundle.
    #[arg(long, value_name = "SECRET_KEY")]
    pub key: PathBuf,
    /// The new bundle directory (must not exist).
    #[arg(long, value_name = "BUNDLE_DIR")]
    pub out: PathBuf,
    /// The environment [default: the earlier bundle's].
    #[arg(long, value_name = "ENV")]
    pub target: Option<String>,
    /// The trust root (or one trusted public key): verifies the earlier bundle's
    /// signature; a trust root also goes in the new manifest. Without it, the earlier
    /// bundle must be signed by `--key` itself.
    #[arg(long, value_name = "FILE")]
    pub trust: Option<PathBuf>,
    /// Where to write the new plan [default: `plan.json` inside `--out`'s parent,
    /// named after the bundle].
    #[arg(long, value_name = "FILE")]
    pub plan_out: Option<PathBuf>,
    /// The sequence number to use [default: the next one for the target].
    #[arg(long)]
    pub sequence: Option<u64>,
    /// How long the new bundle stays valid (`90s`, `30m`, `24h`, `7d`).
    #[arg(long, value_parser = parse_duration, default_value = "24h")]
    pub expires_in: u64,
    /// A policy to run (repeatable); without any, the stock set runs.
    #[arg(long = "policy", value_name = "PATH.wasm|ID")]
    pub policies: Vec<PathBuf>,
    /// A policy's configuration, as `POLICY_ID=FILE.json` (repeatable).
    #[arg(long = "config", value_name = "POLICY_ID=FILE", value_parser = super::seal::parse_config_arg)]
    pub configs: Vec<(String, PathBuf)>,
    /// Where the sequence counter lives (see `SealArgs::data_dir`).
    #[arg(skip)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub password: PasswordArgs,
    #[command(flatten)]
    pub review: ReviewArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

fn bad(msg: String) -> CliError {
    CliError::bad_input(anyhow!(msg))
}

pub fn execute(args: RollbackArgs) -> CliResult<Exit> {
    if args.out.symlink_metadata().is_ok() {
        return Err(bad(format!("`{}` already exists", args.out.display()))
            .with_help("bundles are immutable: choose a new `--out` directory"));
    }
    let old = OldBundle::open(&args.to, args.trust.as_deref(), &args)?;
    println!(
        "rolling back to manifest {} (target `{}`, sequence {}): a fresh plan, check and seal",
        short(&old.digest),
        old.manifest.target.environment,
        old.manifest.sequence
    );
    let work = tempfile::Builder::new()
        .prefix(".provkey-rollback-")
        .tempdir()
        .map_err(|e| bad(format!("cannot create a working directory: {e}")))?;
    let desired = old.rebuild_desired(work.path())?;

    let plan_out = match &args.plan_out {
        Some(p) => p.clone(),
        None => default_plan_path(&args.out),
    };
    let planned = super::plan::execute(PlanArgs {
        desired: desired.clone(),
        state: args.state.clone(),
        out: plan_out.clone(),
        planner: None,
        runtime: args.runtime.clone(),
    })?;
    if planned != Exit::Pass {
        return Ok(planned);
    }
    let target = args
        .target
        .clone()
        .unwrap_or_else(|| old.manifest.target.environment.clone());
    super::seal::execute(SealArgs {
        plan: plan_out,
        key: args.key,
        target,
        out: args.out,
        policies: args.policies,
        configs: args.configs,
        expires_in: args.expires_in,
        audiences: Vec::new(),
        trust: args.trust.filter(|t| !is_public_key_file(t)),
        sequence: args.sequence,
        artifact: None,
        artifact_uri: None,
        desired: Some(desired),
        state: Some(args.state),
        data_dir: args.data_dir,
        password: args.password,
        review: args.review,
        runtime: args.runtime,
    })
}

/// `--trust` may name one public key (as for `provkey-exec`): that verifies the
/// earlier bundle, and the new one is sealed for an executor trusting that key alone.
fn is_public_key_file(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .is_ok_and(|text| provkey_core::keys::PublicKey::from_file_text(&text).is_ok())
}

/// `PLAN` beside the new bundle: `<out>.plan.json`.
fn default_plan_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "rollback".into());
    name.push(".plan.json");
    out.with_file_name(name)
}

fn short(digest: &str) -> &str {
    digest.get(..16).unwrap_or(digest)
}

/// An earlier bundle, its signature verified.
struct OldBundle {
    path: PathBuf,
    raw: RawBundle,
    manifest: Manifest,
    digest: String,
}

impl OldBundle {
    fn open(path: &Path, trust_path: Option<&Path>, args: &RollbackArgs) -> CliResult<OldBundle> {
        let shown = path.display();
        let raw = bundle::open(path).map_err(|e| {
            CliError::bad_input(
                anyhow::Error::new(e).context(format!("cannot open bundle `{shown}`")),
            )
            .with_help("`--to` takes a bundle directory written by `provkey seal`")
        })?;
        let manifest = Manifest::from_bytes(&raw.manifest).map_err(|e| {
            CliError::bad_input(
                anyhow::Error::new(e).context(format!("bundle `{shown}` has a malformed manifest")),
            )
        })?;
        let trust = match trust_path {
            Some(t) => provkey_exec::trust_file::load_trust(t, &[], provkey_core::unix_now())
                .map_err(|e| {
                    CliError::bad_input(e).with_help("give the trust root the executor holds")
                })?,
            None => TrustRoot::single_key(load_secret_key(&args.key, &args.password)?.public()),
        };
        let signed = raw.signatures.iter().any(|(_, bytes)| {
            let Ok(sig) = Minisig::parse(bytes) else {
                return false;
            };
            trust.candidates(&sig.key_id).any(|(pk, roles)| {
                roles.contains(&Role::PlanSigner)
                    && verify_signature(pk, &raw.manifest, &sig).is_ok()
            })
        });
        if !signed {
            return Err(bad(format!(
                "bundle `{shown}` is not signed by a trusted plan-signer"
            ))
            .with_help(
                "roll back only to a bundle this trust root accepted: pass `--trust` with the \
                 trust root that listed its signer",
            ));
        }
        let digest = Manifest::digest(&raw.manifest);
        Ok(OldBundle {
            path: path.to_path_buf(),
            raw,
            manifest,
            digest,
        })
    }

    /// Reads the blob the manifest names `name`, checking its digest.
    fn named_blob(&self, name: &str) -> CliResult<Vec<u8>> {
        let entry = self.manifest.blob_named(name).ok_or_else(|| {
            bad(format!(
                "bundle `{}` records no `{name}` blob",
                self.path.display()
            ))
            .with_help(
                "only bundles sealed with `provkey seal --desired` can be rolled back to; \
                 plan the old desired state again with `provkey plan`",
            )
        })?;
        self.blob(&entry.blake3, MAX_SMALL_BLOB)
    }

    /// Reads `blobs/<blake3>` and checks that it hashes to its name.
    fn blob(&self, blake3: &str, max: u64) -> CliResult<Vec<u8>> {
        let blob = self.raw.read_blob(blake3, max, true).map_err(|e| {
            CliError::bad_input(anyhow::Error::new(e).context(format!(
                "cannot read a blob of bundle `{}`",
                self.path.display()
            )))
        })?;
        if blob.blake3 != blake3 {
            return Err(bad(format!(
                "blob `{blake3}` of bundle `{}` was altered (its content hashes to `{}`)",
                self.path.display(),
                blob.blake3
            ))
            .with_help("the bundle was tampered with: do not roll back to it"));
        }
        Ok(blob.bytes.unwrap_or_default())
    }

    /// Writes the desired-state file and its artifact trees under `work`, with every
    /// artifact's `path` pointing at its rebuilt tree; returns the desired file.
    fn rebuild_desired(&self, work: &Path) -> CliResult<PathBuf> {
        let bytes = self.named_blob(BLOB_DESIRED)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            bad(format!(
                "the desired state of bundle `{}` is not UTF-8",
                self.path.display()
            ))
        })?;
        let mut doc: toml::Table = toml::from_str(&text).map_err(|e| {
            bad(format!(
                "the desired state of bundle `{}` is not TOML: {e}",
                self.path.display()
            ))
        })?;
        let mut rebuilt = BTreeMap::new();
        if let Some(toml::Value::Table(artifacts)) = doc.get_mut("artifact") {
            for (name, spec) in artifacts.iter_mut() {
                let Some(spec) = spec.as_table_mut() else {
                    continue;
                };
                if !spec.contains_key("path") {
                    continue; // named by digest and URI only: nothing to rebuild
                }
                let relative = format!("artifacts/{name}");
                let listing = self.rebuild_tree(name, &work.join(&relative))?;
                spec.insert("path".into(), toml::Value::String(relative));
                rebuilt.insert(name.clone(), listing.digest);
            }
        }
        let out = work.join("desired.toml");
        let body = toml::to_string(&doc)
            .map_err(|e| bad(format!("cannot write the rebuilt desired state: {e}")))?;
        let mut file = std::fs::File::create(&out)
            .map_err(|e| bad(format!("cannot write `{}`: {e}", out.display())))?;
        writeln!(
            file,
            "# Rebuilt by `provkey rollback` from manifest {} of bundle `{}`.\n{body}",
            self.digest,
            self.path.display()
        )
        .map_err(|e| bad(format!("cannot write `{}`: {e}", out.display())))?;
        // The rebuilt trees must hash to what the earlier plan deployed.
        let desired = provkey_desired::Desired::load(&out).map_err(|e| {
            CliError::bad_input(anyhow::Error::new(e).context(format!(
                "the desired state of bundle `{}` does not load",
                self.path.display()
            )))
        })?;
        for (name, digest) in rebuilt {
            let got = desired
                .resource(&format!("artifact.{name}"))
                .and_then(|r| r.artifact_digest.clone());
            if got.as_deref() != Some(digest.as_str()) {
                return Err(bad(format!(
                    "artifact `{name}` rebuilt from bundle `{}` hashes to `{}`, not `{digest}`",
                    self.path.display(),
                    got.unwrap_or_default()
                ))
                .with_help("the bundle was tampered with: do not roll back to it"));
            }
        }
        Ok(out)
    }

    /// Materializes artifact `name` from its tree listing and file blobs at `dest`.
    fn rebuild_tree(&self, name: &str, dest: &Path) -> CliResult<TreeListing> {
        let bytes = self.named_blob(&format!("{BLOB_TREE_PREFIX}{name}"))?;
        let listing: TreeListing = serde_json::from_slice(&bytes).map_err(|e| {
            bad(format!(
                "the tree listing of artifact `{name}` in bundle `{}` is malformed: {e}",
                self.path.display()
            ))
        })?;
        listing.validate().map_err(|e| {
            bad(format!(
                "the tree listing of artifact `{name}` in bundle `{}` is invalid: {e}",
                self.path.display()
            ))
        })?;
        let write_err =
            |p: &Path, e: std::io::Error| bad(format!("cannot write `{}`: {e}", p.display()));
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| write_err(parent, e))?;
        }
        for entry in &listing.entries {
            // `validate` refused absolute paths, `..` and empty components.
            let path = if entry.path.is_empty() {
                dest.to_path_buf()
            } else {
                dest.join(&entry.path)
            };
            match entry.kind {
                EntryKind::Dir => {
                    std::fs::create_dir_all(&path).map_err(|e| write_err(&path, e))?
                }
                EntryKind::File => {
                    let Some((blake3, mode, size)) = entry.file() else {
                        continue;
                    };
                    let content = self.blob(blake3, size)?;
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| write_err(parent, e))?;
                    }
                    std::fs::write(&path, &content).map_err(|e| write_err(&path, e))?;
                    set_mode(&path, mode).map_err(|e| write_err(&path, e))?;
                }
            }
        }
        if listing
            .entries
            .iter()
            .all(|e| !e.path.is_empty() || e.kind == EntryKind::Dir)
        {
            std::fs::create_dir_all(dest).map_err(|e| write_err(dest, e))?;
        }
        Ok(listing)
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}
