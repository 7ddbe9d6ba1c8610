//! `provkey seal`: run the same checks as `check` and, when nothing mandatory remains,
//! write a signed bundle (`manifest.json`, `manifest.json.<KEYID>.minisig`, `blobs/`).
//!
//! The per-target sequence comes from `--sequence N` or from a counter file,
//! `<data dir>/provkey/sequences/<target>` (`$PROVKEY_DATA_DIR/sequences/<target>` when
//! that variable is set), holding the last sequence issued; each seal issues a larger one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use provkey_core::keys::SecretKey;
use provkey_core::manifest::{self, Manifest};
use provkey_core::minisig::{Role, StatementKind, TrustedComment, is_identifier};
use provkey_core::trust::TrustRoot;
use provkey_core::{blake3_hex, bundle};
use sha2::Digest as _;

use super::check::{ReviewArgs, RuntimeArgs, run_check_with};
use super::key::{PasswordArgs, load_secret_key, parse_duration};
use crate::exit::{CliError, CliResult, Exit};

/// The wasmtime the engine is built with, as Cargo.lock resolved it (see build.rs).
pub const WASMTIME_VERSION: &str = env!("PROVKEY_WASMTIME_VERSION");

#[derive(Args)]
pub struct SealArgs {
    /// The plan to check and seal.
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// The plan-signer secret key.
    #[arg(long, value_name = "SECRET_KEY")]
    pub key: PathBuf,
    /// The environment the bundle is for (`[a-z0-9._/-]+`).
    #[arg(long, value_name = "ENV")]
    pub target: String,
    /// The bundle directory to create (must not exist).
    #[arg(long, value_name = "BUNDLE_DIR")]
    pub out: PathBuf,
    /// A policy to run (repeatable); without any, the stock set runs.
    #[arg(long = "policy", value_name = "PATH.wasm|ID")]
    pub policies: Vec<PathBuf>,
    /// A policy's configuration, as `POLICY_ID=FILE.json` (repeatable).
    #[arg(long = "config", value_name = "POLICY_ID=FILE", value_parser = parse_config_arg)]
    pub configs: Vec<(String, PathBuf)>,
    /// How long the bundle stays valid (`90s`, `30m`, `24h`, `7d`).
    #[arg(long, value_parser = parse_duration, default_value = "24h")]
    pub expires_in: u64,
    /// An executor allowed to apply the bundle (repeatable; default: the target).
    #[arg(long = "audience", value_name = "ID")]
    pub audiences: Vec<String>,
    /// The trust root the executor holds (its version and thresholds go in the manifest).
    /// Without it, the executor is expected to trust this key alone (version 0).
    #[arg(long, value_name = "FILE")]
    pub trust: Option<PathBuf>,
    /// The sequence number to use (must be above the last one issued for the target).
    #[arg(long)]
    pub sequence: Option<u64>,
    /// The single immutable artifact the plan deploys; stored as a blob.
    #[arg(long, value_name = "FILE")]
    pub artifact: Option<PathBuf>,
    /// The artifact's URI (default: its file name).
    #[arg(long, value_name = "URI", requires = "artifact")]
    pub artifact_uri: Option<String>,
    /// The desired state the plan was computed from (`provkey plan --desired`): the
    /// file and every artifact tree built from a `path` go into the bundle, so that
    /// `provkey-exec apply` can deploy it and a rollback can recover it.
    #[arg(long, value_name = "FILE", requires = "state")]
    pub desired: Option<PathBuf>,
    /// The state the plan was computed from (`provkey-exec state` output, or `none`
    /// for a target never deployed): the bundle's base state and previous manifest.
    #[arg(long, value_name = "STATE.json|none")]
    pub state: Option<super::plan::StateArg>,
    /// Where the per-target sequence counter lives, for commands that run `seal`
    /// in a directory of their own (`provkey demo`) [default: `PROVKEY_DATA_DIR` or the
    /// user's data directory].
    #[arg(skip)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// The policy set, waivers and overrides (`--trust` also verifies them); the
    /// waivers and overrides that applied are recorded in the manifest.
    #[command(flatten)]
    pub review: ReviewArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

pub fn parse_config_arg(arg: &str) -> Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((id, path)) if !id.is_empty() && !path.is_empty() => {
            Ok((id.to_owned(), PathBuf::from(path)))
        }
        _ => Err(format!("`{arg}` is not `POLICY_ID=FILE`")),
    }
}

fn bad(msg: String) -> CliError {
    CliError::bad_input(anyhow!(msg))
}

pub fn execute(args: SealArgs) -> CliResult<Exit> {
    if !is_identifier(&args.target) {
        return Err(bad(format!(
            "target `{}` is not `[a-z0-9._/-]+`",
            args.target.escape_default()
        ))
        .with_help("use a lowercase ASCII environment name such as `prod` or `staging`"));
    }
    for a in &args.audiences {
        if !is_identifier(a) {
            return Err(bad(format!(
                "audience `{}` is not `[a-z0-9._/-]+`",
                a.escape_default()
            )));
        }
    }
    if args.out.exists() || args.out.symlink_metadata().is_ok() {
        return Err(bad(format!("`{}` already exists", args.out.display()))
            .with_help("bundles are immutable: choose a new `--out` directory"));
    }
    let key = load_secret_key(&args.key, &args.password)?;
    let trust = match &args.trust {
        Some(path) => Some(read_trust(path, &key)?),
        None => None,
    };
    let counter = counter_path(&args.target, args.data_dir.as_deref())?;
    let sequence = next_sequence(&counter, args.sequence)?;

    let run = run_check_with(
        &args.plan,
        &args.policies,
        &args.configs,
        &args.runtime,
        &args.review,
        args.trust.as_deref(),
    )?;
    if run.report.exit != Exit::Pass {
        let _ = crate::report::text::print(&run.report, &run.plan);
        let why = match run.report.exit {
            Exit::PolicyFailed => "a policy failed",
            _ => "mandatory findings remain",
        };
        return Err(CliError {
            exit: run.report.exit,
            error: anyhow!(
                "refusing to seal `{}`: {why}; nothing was written",
                args.plan.display()
            ),
            help: Some(
                "fix the plan (or the policy) and run `provkey check` until it passes".into(),
            ),
        });
    }
    if let Err(why) = provkey_exec::work::check_plan_paths(&run.plan) {
        return Err(CliError {
            exit: Exit::BadInput,
            error: anyhow!(
                "refusing to seal `{}`: {why}; nothing was written",
                args.plan.display()
            ),
            help: Some(
                "shorten the instance's file paths (at most 255 bytes a part, 1024 bytes in \
                 all) in the desired state, then plan again"
                    .into(),
            ),
        });
    }
    if let Some(change) = run
        .plan
        .changes
        .iter()
        .find(|c| c.action == provkey_plan::Action::Update)
    {
        return Err(CliError {
            exit: Exit::MandatoryFindings,
            error: anyhow!(
                "refusing to seal `{}`: `{}` is an in-place update; nothing was written",
                args.plan.display(),
                change.address
            ),
            help: Some("plans must be replace-only: replace the resource instead".into()),
        });
    }

    let mut blobs: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
    let mut add_blob = |name: String, bytes: Vec<u8>| -> String {
        let digest = blake3_hex(&bytes);
        blobs.entry(digest.clone()).or_insert((name, bytes));
        digest
    };
    let plan_blake3 = add_blob("plan".into(), run.plan_bytes.clone());
    // The executor's inputs: base state, desired state, artifact trees (`--state`,
    // `--desired`), checked against the plan before anything is signed.
    let mut deploy = match &args.state {
        Some(state) => super::seal_deploy::gather(
            &run.plan,
            &args.plan,
            &args.target,
            state,
            args.desired.as_deref(),
        )?,
        None => super::seal_deploy::DeployInputs::default(),
    };
    for (name, bytes) in std::mem::take(&mut deploy.blobs) {
        add_blob(name, bytes);
    }
    let mut policies = Vec::new();
    for outcome in &run.outcomes {
        let (Some(metadata), Some(digest), Ok(findings)) =
            (&outcome.metadata, &outcome.digest, &outcome.result)
        else {
            return Err(CliError {
                exit: Exit::PolicyFailed,
                error: anyhow!("refusing to seal: policy `{}` has no verdict", outcome.id),
                help: None,
            });
        };
        let config = run
            .configs
            .get(&outcome.id)
            .cloned()
            .unwrap_or_else(|| "{}".to_owned());
        let output = serde_json::to_vec(findings).map_err(|e| {
            bad(format!(
                "cannot serialize the output of `{}`: {e}",
                outcome.id
            ))
        })?;
        policies.push(manifest::PolicyEntry {
            id: outcome.id.clone(),
            policy_version: metadata.version.clone(),
            module_blake3: digest.to_hex().to_string(),
            config_blake3: add_blob(format!("config/{}", outcome.id), config.into_bytes()),
            input_blake3: plan_blake3.clone(),
            output_blake3: add_blob(format!("output/{}", outcome.id), output),
            verdict: "allow".into(),
        });
    }
    policies.sort_by(|a, b| a.id.cmp(&b.id));
    let ids: Vec<&str> = policies.iter().map(|p| p.id.as_str()).collect();
    let configs_json =
        provkey_core::canonical::to_canonical(&run.configs).map_err(|e| bad(e.to_string()))?;

    let mut artifact_file = None;
    let artifact = match &args.artifact {
        Some(path) => {
            let (blake3, sha256, size) = hash_file(path)?;
            let uri = match &args.artifact_uri {
                Some(uri) => uri.clone(),
                None => path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "artifact".into()),
            };
            artifact_file = Some((blake3.clone(), path.clone(), size));
            Some(manifest::Artifact {
                uri,
                digest: manifest::ArtifactDigest { blake3, sha256 },
                size,
            })
        }
        None => None,
    };

    let public = key.public();
    let (trust_version, trust_blake3, threshold) = match &trust {
        Some(t) => (
            t.doc.version,
            t.blake3.clone(),
            t.doc.threshold(Role::PlanSigner),
        ),
        None => (0, public.pk_blake3(), 1),
    };
    let issued_at = provkey_core::unix_now();
    let nonce = provkey_core::hex::random::<16>()
        .map(|b| provkey_core::hex::encode(&b))
        .map_err(|e| bad(format!("the random source failed: {e}")))?;
    let mut blob_refs: Vec<manifest::BlobRef> = blobs
        .iter()
        .map(|(d, (name, bytes))| manifest::BlobRef {
            blake3: d.clone(),
            size: bytes.len() as u64,
            name: name.clone(),
        })
        .collect();
    if let Some((blake3, _, size)) = &artifact_file
        && !blobs.contains_key(blake3)
    {
        blob_refs.push(manifest::BlobRef {
            blake3: blake3.clone(),
            size: *size,
            name: "artifact".into(),
        });
        blob_refs.sort_by(|a, b| a.blake3.cmp(&b.blake3));
    }
    let audience = if args.audiences.is_empty() {
        vec![args.target.clone()]
    } else {
        let mut a = args.audiences.clone();
        a.sort();
        a.dedup();
        a
    };
    let manifest = Manifest {
        type_: manifest::PLAN_STATEMENT_TYPE.into(),
        plan: manifest::PlanRef {
            name: "plan".into(),
            blake3: plan_blake3.clone(),
            size: run.plan_bytes.len() as u64,
            media_type: "application/json".into(),
        },
        artifact,
        base_state: deploy.base_state,
        previous_manifest: deploy.previous_manifest,
        inputs: manifest::Inputs {
            plan_file_blake3: plan_blake3,
            configs_blake3: blake3_hex(&configs_json),
        },
        policy_set: manifest::PolicySet {
            version: 1,
            blake3: blake3_hex(ids.join("\n").as_bytes()),
        },
        policies,
        engine: manifest::Engine {
            id: "provkey".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            wasmtime_version: WASMTIME_VERSION.into(),
        },
        target: manifest::Target {
            environment: args.target.clone(),
            executor_audience: audience,
        },
        mode: manifest::MODE_REPLACE_ONLY.into(),
        issued_at,
        expires_at: issued_at.saturating_add(args.expires_in),
        sequence,
        nonce,
        trust_root: manifest::TrustRootRef {
            version: trust_version,
            blake3: trust_blake3,
        },
        signers_required: manifest::SignersRequired {
            role: Role::PlanSigner,
            threshold,
        },
        issuer: manifest::Issuer {
            role: Role::PlanSigner,
            minisign_keyid: public.key_id_hex(),
            pk_blake3: public.pk_blake3(),
        },
        blobs: blob_refs,
        waivers: run.waivers.clone(),
    };
    let bytes = manifest
        .to_bytes()
        .map_err(|e| bad(format!("cannot write the manifest: {e}")))?;
    // Whatever we write must read back identically.
    if Manifest::from_bytes(&bytes).as_ref() != Ok(&manifest) {
        return Err(bad("the manifest does not read back identically".into()));
    }
    let digest = blake3_hex(&bytes);
    let sig = sign_manifest(&key, &bytes, &manifest, Role::PlanSigner)?;

    write_bundle(
        &args.out,
        &bytes,
        &public.key_id_hex(),
        &sig.to_text(),
        &blobs,
        artifact_file.as_ref(),
    )?;
    if let Err(err) = write_counter(&counter, sequence) {
        let _ = std::fs::remove_dir_all(&args.out);
        return Err(err);
    }
    println!(
        "sealed `{}` for target `{}` (sequence {sequence}) into `{}`: manifest {digest}, signed by {}",
        args.plan.display(),
        args.target,
        args.out.display(),
        public.key_id_hex()
    );
    Ok(Exit::Pass)
}

/// Signs the manifest bytes with a trusted comment echoing digest, target, sequence and
/// expiry; the signature is verified before it is returned.
pub fn sign_manifest(
    key: &SecretKey,
    bytes: &[u8],
    manifest: &Manifest,
    role: Role,
) -> CliResult<provkey_core::minisig::Minisig> {
    let tc = TrustedComment {
        kind: StatementKind::PlanStatement,
        manifest: blake3_hex(bytes),
        target: manifest.target.environment.clone(),
        seq: manifest.sequence,
        exp: manifest.expires_at,
        role,
    };
    provkey_core::sign::sign(key, bytes, &tc).map_err(|e| bad(e.to_string()))
}

fn read_trust(path: &Path, key: &SecretKey) -> CliResult<TrustRoot> {
    let bytes = std::fs::read(path)
        .map_err(|e| bad(format!("cannot read trust root `{}`: {e}", path.display())))?;
    let trust = TrustRoot::parse_unsigned(&bytes)
        .map_err(|e| bad(format!("trust root `{}`: {e}", path.display())))?;
    let holds = trust
        .keys
        .iter()
        .any(|(pk, roles)| pk.key == key.public().key && roles.contains(&Role::PlanSigner));
    if !holds {
        return Err(bad(format!(
            "key {} is not a plan-signer in trust root `{}`",
            key.public().key_id_hex(),
            path.display()
        ))
        .with_help(
            "add it with `provkey trust add-key … --role plan-signer` and sign the trust root",
        ));
    }
    Ok(trust)
}

fn hash_file(path: &Path) -> CliResult<(String, String, u64)> {
    let file = std::fs::File::open(path)
        .map_err(|e| bad(format!("cannot read artifact `{}`: {e}", path.display())))?;
    let mut sha = sha2::Sha256::new();
    let streamed = provkey_core::digest::hash_stream(file, u64::MAX - 1, |chunk| sha.update(chunk))
        .map_err(|e| bad(format!("cannot read artifact `{}`: {e}", path.display())))?;
    Ok((
        streamed.blake3.to_hex().to_string(),
        provkey_core::hex::encode(&sha.finalize()),
        streamed.size,
    ))
}

fn write_bundle(
    out: &Path,
    manifest: &[u8],
    key_id: &str,
    sig: &str,
    blobs: &BTreeMap<String, (String, Vec<u8>)>,
    artifact: Option<&(String, PathBuf, u64)>,
) -> CliResult<()> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    // The plan's blobs hold its values in clear, sensitive ones included: the
    // bundle is readable by its owner only (directories 0700, files 0600).
    let result = (|| -> std::io::Result<()> {
        private_dir(&tmp)?;
        private_dir(&tmp.join(bundle::BLOBS))?;
        private_file(&tmp.join(bundle::MANIFEST), manifest)?;
        private_file(
            &tmp.join(bundle::signature_file_name(key_id)),
            sig.as_bytes(),
        )?;
        for (digest, (_, bytes)) in blobs {
            private_file(&tmp.join(bundle::BLOBS).join(digest), bytes)?;
        }
        if let Some((digest, path, _)) = artifact
            && !blobs.contains_key(digest)
        {
            let copy = tmp.join(bundle::BLOBS).join(digest);
            std::fs::copy(path, &copy)?;
            set_private(&copy)?;
        }
        std::fs::rename(&tmp, out)
    })();
    if let Err(err) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(bad(format!(
            "cannot write bundle `{}`: {err}",
            out.display()
        )));
    }
    Ok(())
}

/// Creates `dir` readable by its owner only.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes a new file readable by its owner only.
fn private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, bytes)
}

/// Makes an existing file readable by its owner only.
fn set_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn counter_path(target: &str, data_dir: Option<&Path>) -> CliResult<PathBuf> {
    let base = match data_dir
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("PROVKEY_DATA_DIR").map(PathBuf::from))
    {
        Some(dir) => dir,
        None => dirs::data_dir().map(|d| d.join("provkey")).ok_or_else(|| {
            bad("cannot find the user's data directory for the sequence counter".into())
                .with_help("set `PROVKEY_DATA_DIR` or give `--sequence N`")
        })?,
    };
    Ok(base.join("sequences").join(target.replace('/', "%2F")))
}

fn next_sequence(counter: &Path, explicit: Option<u64>) -> CliResult<u64> {
    let last = match std::fs::read_to_string(counter) {
        Ok(text) => text.trim().parse::<u64>().map_err(|_| {
            bad(format!(
                "sequence counter `{}` is corrupt",
                counter.display()
            ))
            .with_help("fix the file (one integer) or remove it and give `--sequence N`")
        })?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
        Err(err) => return Err(bad(format!("cannot read `{}`: {err}", counter.display()))),
    };
    let next = match explicit {
        Some(n) if n <= last => {
            return Err(bad(format!(
                "sequence {n} is not above {last}, the last one issued for this target"
            ))
            .with_help("sequences only grow per target; omit `--sequence` to take the next"));
        }
        Some(n) => n,
        None => last + 1,
    };
    if next > provkey_core::canonical::MAX_INT {
        return Err(bad(format!("sequence {next} is above 2^53-1")));
    }
    Ok(next)
}

fn write_counter(counter: &Path, sequence: u64) -> CliResult<()> {
    let write = || -> std::io::Result<()> {
        if let Some(dir) = counter.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = counter.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, format!("{sequence}\n"))?;
        std::fs::rename(&tmp, counter)
    };
    write().map_err(|e| {
        bad(format!(
            "cannot update sequence counter `{}`: {e}",
            counter.display()
        ))
    })
}
