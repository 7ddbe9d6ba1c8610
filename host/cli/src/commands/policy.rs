//! `provkey policy publish DIR --key PUBLISHER_KEY --version N --out OUT`: publish an
//! organization's policy set, signed by a policy-publisher key; and
//! `provkey policy override`: an approver's signed override of the soft-mandatory
//! findings of one rule on one plan.
//!
//! `DIR/policyset.toml` describes the set:
//!
//! ```toml
//! name = "acme"
//! [policy.no-remote-shell]
//! component = "no-remote-shell.wasm"     # relative to DIR (or `stock = "ID"`)
//! enforcement = "hard-mandatory"
//! rules = { "remote-shell-undecidable" = "soft-mandatory" }
//! config = { ports = [22, 3389] }
//! ```
//!
//! `OUT/` gets `policy-set.json` (canonical JSON: name, version, publication and
//! expiry times, and per policy its id, version, description, blake3, size, levels
//! and configuration), `policy-set.json.minisig`, and `components/<blake3>.wasm`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{Args, Subcommand};
use provkey_core::policy_set::{
    COMPONENTS_DIR, POLICY_SET_TYPE, PolicySetDoc, PublishedPolicy, SET_FILE, SET_SIGNATURE_FILE,
};
use provkey_plan::Enforcement;
use provkey_runtime::PolicyOrigin;
use serde::Deserialize;

use super::check::RuntimeArgs;
use super::key::{PasswordArgs, load_secret_key, parse_duration};
use crate::exit::{CliError, CliResult, Exit};
use crate::policy_set::review::{self, OVERRIDE_TYPE, OverrideDoc};

/// The description of a set to publish, in its directory.
pub const PUBLISH_FILE: &str = "policyset.toml";

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Publish a signed policy set from a directory holding `policyset.toml`.
    Publish(PublishArgs),
    /// Override the soft-mandatory findings of one rule on one plan (approver).
    Override(OverrideArgs),
}

#[derive(Args)]
pub struct PublishArgs {
    /// The directory with `policyset.toml` and the components it names.
    pub dir: PathBuf,
    /// The policy-publisher's secret key.
    #[arg(long, value_name = "PUBLISHER_KEY")]
    pub key: PathBuf,
    /// The organization's trust root: the key must hold the `policy-publisher` role in
    /// it (a set signed by any other key is refused by every `lock` anyway).
    #[arg(long, value_name = "TRUST_ROOT")]
    pub trust: PathBuf,
    /// The set's version: above every version published before.
    #[arg(long)]
    pub version: u64,
    /// The directory to create with the published set (must not exist).
    #[arg(long, value_name = "OUT")]
    pub out: PathBuf,
    /// How long the publication stays valid (`30d`, `365d`).
    #[arg(long, value_parser = parse_duration, default_value = "365d")]
    pub expires_in: u64,
    #[command(flatten)]
    pub password: PasswordArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Args)]
pub struct OverrideArgs {
    /// The plan the override is for (its blake3 is what is signed).
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// The policy id.
    #[arg(long)]
    pub policy: String,
    /// The rule id.
    #[arg(long)]
    pub rule: String,
    /// The resource address or pattern (`*` any characters, `?` one).
    #[arg(long, default_value = "*")]
    pub address: String,
    /// Why the finding is accepted.
    #[arg(long)]
    pub reason: String,
    /// The last day it applies (`YYYY-MM-DD`, UTC).
    #[arg(long)]
    pub expires: String,
    /// The approver's secret key.
    #[arg(long, value_name = "APPROVER_KEY")]
    pub key: PathBuf,
    /// The override file to write (its signature goes to `FILE.minisig`).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishFile {
    name: String,
    #[serde(default)]
    policy: BTreeMap<String, PublishPolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishPolicy {
    /// A component file, relative to the directory.
    component: Option<String>,
    /// Or a stock policy of this binary, by id.
    stock: Option<String>,
    enforcement: Option<Enforcement>,
    #[serde(default)]
    rules: BTreeMap<String, Enforcement>,
    config: Option<toml::Table>,
}

fn bad(msg: String) -> CliError {
    CliError::bad_input(anyhow!(msg))
}

pub fn execute(command: PolicyCommand) -> CliResult<Exit> {
    match command {
        PolicyCommand::Publish(args) => publish(&args),
        PolicyCommand::Override(args) => write_override(&args),
    }
}

/// Refuses a key that does not hold the `policy-publisher` role in `trust`.
fn check_publisher(trust: &Path, key: &provkey_core::keys::SecretKey) -> CliResult<()> {
    let bytes = std::fs::read(trust)
        .map_err(|e| bad(format!("cannot read trust root `{}`: {e}", trust.display())))?;
    let root = provkey_core::trust::TrustRoot::parse_unsigned(&bytes)
        .map_err(|e| bad(format!("trust root `{}`: {e}", trust.display())))?;
    let holds = root.keys.iter().any(|(pk, roles)| {
        pk.key == key.public().key && roles.contains(&provkey_core::minisig::Role::PolicyPublisher)
    });
    if !holds {
        return Err(bad(format!(
            "key {} does not hold the `policy-publisher` role in trust root `{}`; nothing \
             was written",
            key.public().key_id_hex(),
            trust.display()
        ))
        .with_help(
            "publish with a policy-publisher key, or add this one with `provkey trust \
             add-key … --role policy-publisher` and sign the trust root",
        ));
    }
    Ok(())
}

fn publish(args: &PublishArgs) -> CliResult<Exit> {
    if args.out.exists() || args.out.symlink_metadata().is_ok() {
        return Err(bad(format!("`{}` already exists", args.out.display()))
            .with_help("publications are immutable: choose a new `--out` directory"));
    }
    if args.version == 0 || args.version > provkey_core::canonical::MAX_INT {
        return Err(bad(format!(
            "version {} is not between 1 and 2^53-1",
            args.version
        )));
    }
    let desc_path = args.dir.join(PUBLISH_FILE);
    let text = std::fs::read_to_string(&desc_path).map_err(|e| {
        bad(format!("cannot read `{}`: {e}", desc_path.display())).with_help(format!(
            "a set to publish is a directory with `{PUBLISH_FILE}`"
        ))
    })?;
    let file: PublishFile = toml::from_str(&text)
        .map_err(|e| bad(format!("`{}` is malformed: {e}", desc_path.display())))?;
    if file.policy.is_empty() {
        return Err(bad(format!("`{}` lists no policy", desc_path.display())));
    }
    let key = load_secret_key(&args.key, &args.password)?;
    check_publisher(&args.trust, &key)?;
    let runtime = args.runtime.build()?;
    let mut policies = Vec::new();
    let mut components = Vec::new();
    for (id, p) in &file.policy {
        let (path, bytes) = match (&p.component, &p.stock) {
            (Some(component), None) => {
                let path = args.dir.join(component);
                let bytes = std::fs::read(&path).map_err(|e| {
                    bad(format!(
                        "policy `{id}`: cannot read `{}`: {e}",
                        path.display()
                    ))
                })?;
                (path, bytes)
            }
            (None, Some(stock)) => {
                let found = provkey_stock::find(stock).ok_or_else(|| {
                    bad(format!("policy `{id}`: `{stock}` is not a stock policy"))
                })?;
                (PathBuf::from(stock), found.bytes.to_vec())
            }
            _ => {
                return Err(bad(format!(
                    "policy `{id}` in `{}` must have exactly one of `component` and `stock`",
                    desc_path.display()
                )));
            }
        };
        let loaded = runtime
            .load_policy(id, PolicyOrigin::File(path.clone()), &bytes)
            .map_err(|e| {
                CliError::bad_input(anyhow::Error::new(e).context(format!(
                    "policy `{id}`: `{}` is not a loadable policy component",
                    path.display()
                )))
            })?;
        if loaded.metadata.id != *id {
            return Err(bad(format!(
                "policy `{id}`: `{}` declares the id `{}`",
                path.display(),
                loaded.metadata.id
            ))
            .with_help("name each policy by the id its component declares"));
        }
        let config = match &p.config {
            Some(table) => serde_json::to_value(table)
                .map_err(|e| bad(format!("policy `{id}`: cannot encode its config: {e}")))?,
            None => serde_json::json!({}),
        };
        let config_text = config.to_string();
        if let Some(schema) = &loaded.metadata.config_schema {
            super::check::validate_config(id, schema, &config_text)?;
        }
        let blake3 = provkey_core::blake3_hex(&bytes);
        policies.push(PublishedPolicy {
            id: id.clone(),
            policy_version: loaded.metadata.version.clone(),
            description: loaded.metadata.description.clone(),
            blake3: blake3.clone(),
            size: bytes.len() as u64,
            enforcement: p.enforcement,
            rules: p.rules.clone(),
            config,
        });
        components.push((blake3, bytes));
    }
    let now = provkey_core::unix_now();
    let doc = PolicySetDoc {
        type_: POLICY_SET_TYPE.into(),
        name: file.name.clone(),
        version: args.version,
        published_at: now,
        expires_at: now
            .saturating_add(args.expires_in)
            .min(provkey_core::canonical::MAX_INT),
        policies,
    };
    let bytes = doc.to_bytes().map_err(|e| {
        bad(format!("cannot publish `{}`: {e}", desc_path.display())).with_help(
            "configurations in a published set are canonical JSON: integers only, no floats",
        )
    })?;
    let sig = provkey_core::statement::sign_statement(&key, &bytes, &doc.trusted_comment(&bytes))
        .map_err(|e| bad(e.to_string()))?;
    write_publication(&args.out, &bytes, &sig.to_text(), &components)?;
    println!(
        "published set `{}` version {} ({} polic{}) into `{}`, signed by {}: blake3 {}",
        doc.name,
        doc.version,
        doc.policies.len(),
        if doc.policies.len() == 1 { "y" } else { "ies" },
        args.out.display(),
        key.public().key_id_hex(),
        provkey_core::blake3_hex(&bytes)
    );
    Ok(Exit::Pass)
}

/// Writes the publication into a temporary directory and renames it into place.
fn write_publication(
    out: &Path,
    set: &[u8],
    sig: &str,
    components: &[(String, Vec<u8>)],
) -> CliResult<()> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(parent)?;
        let tmp = tempfile::Builder::new()
            .prefix(".publish-")
            .tempdir_in(parent)?;
        std::fs::create_dir(tmp.path().join(COMPONENTS_DIR))?;
        std::fs::write(tmp.path().join(SET_FILE), set)?;
        std::fs::write(tmp.path().join(SET_SIGNATURE_FILE), sig)?;
        for (blake3, bytes) in components {
            std::fs::write(
                tmp.path()
                    .join(COMPONENTS_DIR)
                    .join(format!("{blake3}.wasm")),
                bytes,
            )?;
        }
        let kept = tmp.keep();
        std::fs::rename(&kept, out).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&kept);
        })
    };
    write().map_err(|e| bad(format!("cannot write `{}`: {e}", out.display())))
}

fn write_override(args: &OverrideArgs) -> CliResult<Exit> {
    if chrono::NaiveDate::parse_from_str(&args.expires, "%Y-%m-%d").is_err() {
        return Err(bad(format!("`--expires {}` is not a date", args.expires))
            .with_help("give the last day it applies: `--expires 2026-12-31`"));
    }
    let plan = std::fs::read(&args.plan)
        .map_err(|e| bad(format!("cannot read plan `{}`: {e}", args.plan.display())))?;
    let key = load_secret_key(&args.key, &args.password)?;
    let doc = OverrideDoc {
        type_: OVERRIDE_TYPE.into(),
        plan_blake3: provkey_core::blake3_hex(&plan),
        policy: args.policy.clone(),
        rule: args.rule.clone(),
        address: args.address.clone(),
        reason: args.reason.clone(),
        expires: args.expires.clone(),
    };
    let sig = review::write_override(&args.out, &doc, &key)?;
    println!(
        "override of {}/{} on `{}` for plan {} until {}, signed by approver {}: `{}` and `{}`",
        doc.policy,
        doc.rule,
        doc.address,
        doc.plan_blake3,
        doc.expires,
        key.public().key_id_hex(),
        args.out.display(),
        sig.display()
    );
    Ok(Exit::Pass)
}
