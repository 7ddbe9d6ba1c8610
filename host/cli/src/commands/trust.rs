//! `provkey trust`: write and sign the trust root (`trust-root.json` and one
//! `trust-root.json.<KEYID>.minisig` per root signature beside it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{Args, Subcommand};
use provkey_core::keys::PublicKey;
use provkey_core::minisig::Role;
use provkey_core::trust::{RoleSpec, TRUST_ROOT_TYPE, TrustRootDoc, TrustedKey};

use super::key::{PasswordArgs, load_secret_key, parse_duration, parse_role, write_new};
use crate::exit::{CliError, CliResult, Exit};

#[derive(Subcommand)]
pub enum TrustCommand {
    /// Start a trust root at version 1 (root threshold 1, plan-signer 1, others 0).
    Init(InitArgs),
    /// Add a public key with its roles.
    AddKey(AddKeyArgs),
    /// Remove a public key (revocation: do it in a new version, see `next`).
    RemoveKey(RemoveKeyArgs),
    /// Set a role's threshold.
    SetThreshold(ThresholdArgs),
    /// Write version N+1 of a trust root (to rotate or revoke keys).
    Next(NextArgs),
    /// Sign the trust root with a root key.
    Sign(SignArgs),
}

#[derive(Args)]
pub struct InitArgs {
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// How long the trust root stays valid.
    #[arg(long, value_parser = parse_duration, default_value = "365d")]
    pub expires_in: u64,
}

#[derive(Args)]
pub struct AddKeyArgs {
    pub trust_root: PathBuf,
    /// The minisign public key file.
    #[arg(long, value_name = "PUB")]
    pub key: PathBuf,
    /// The key's role (repeatable).
    #[arg(long = "role", value_parser = parse_role, required = true)]
    pub roles: Vec<Role>,
    #[arg(long, default_value = "")]
    pub comment: String,
}

#[derive(Args)]
pub struct RemoveKeyArgs {
    pub trust_root: PathBuf,
    #[arg(long, value_name = "PUB")]
    pub key: PathBuf,
}

#[derive(Args)]
pub struct ThresholdArgs {
    pub trust_root: PathBuf,
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    #[arg(long)]
    pub threshold: u64,
}

#[derive(Args)]
pub struct NextArgs {
    pub trust_root: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[arg(long, value_parser = parse_duration, default_value = "365d")]
    pub expires_in: u64,
}

#[derive(Args)]
pub struct SignArgs {
    pub trust_root: PathBuf,
    /// A root secret key.
    #[arg(long, value_name = "SECRET_KEY")]
    pub key: PathBuf,
    #[command(flatten)]
    pub password: PasswordArgs,
}

fn bad(msg: String) -> CliError {
    CliError::bad_input(anyhow!(msg))
}

pub fn execute(command: TrustCommand) -> CliResult<Exit> {
    match command {
        TrustCommand::Init(args) => {
            if args.out.exists() {
                return Err(bad(format!("`{}` already exists", args.out.display())));
            }
            let doc = TrustRootDoc {
                type_: TRUST_ROOT_TYPE.into(),
                version: 1,
                expires_at: provkey_core::unix_now().saturating_add(args.expires_in),
                keys: Vec::new(),
                roles: BTreeMap::from([
                    (Role::Root, RoleSpec { threshold: 1 }),
                    (Role::PlanSigner, RoleSpec { threshold: 1 }),
                    (Role::Approver, RoleSpec { threshold: 0 }),
                    (Role::PolicyPublisher, RoleSpec { threshold: 0 }),
                ]),
            };
            save(&args.out, &doc, false)?;
            println!("wrote trust root version 1 to `{}`", args.out.display());
        }
        TrustCommand::AddKey(args) => {
            let mut doc = load(&args.trust_root)?;
            let pk = read_public(&args.key)?;
            for k in &doc.keys {
                if PublicKey::from_base64(&k.public_key).is_ok_and(|other| other.key == pk.key) {
                    return Err(bad(format!(
                        "the key in `{}` is already in the trust root",
                        args.key.display()
                    ))
                    .with_help("a key is listed once, with all its roles"));
                }
            }
            let mut roles = args.roles.clone();
            roles.sort();
            roles.dedup();
            doc.keys.push(TrustedKey {
                public_key: pk.to_base64(),
                roles,
                comment: args.comment.clone(),
            });
            doc.keys.sort_by(|a, b| a.public_key.cmp(&b.public_key));
            save(&args.trust_root, &doc, true)?;
            println!(
                "added key {} to `{}`",
                pk.key_id_hex(),
                args.trust_root.display()
            );
        }
        TrustCommand::RemoveKey(args) => {
            let mut doc = load(&args.trust_root)?;
            let pk = read_public(&args.key)?;
            let before = doc.keys.len();
            doc.keys.retain(|k| {
                PublicKey::from_base64(&k.public_key).map_or(true, |other| other.key != pk.key)
            });
            if doc.keys.len() == before {
                return Err(bad(format!(
                    "key {} is not in the trust root",
                    pk.key_id_hex()
                )));
            }
            save(&args.trust_root, &doc, true)?;
            println!("removed key {}", pk.key_id_hex());
        }
        TrustCommand::SetThreshold(args) => {
            let mut doc = load(&args.trust_root)?;
            doc.roles.insert(
                args.role,
                RoleSpec {
                    threshold: args.threshold,
                },
            );
            save(&args.trust_root, &doc, true)?;
            println!("role `{}` threshold is now {}", args.role, args.threshold);
        }
        TrustCommand::Next(args) => {
            let mut doc = load(&args.trust_root)?;
            if args.out.exists() {
                return Err(bad(format!("`{}` already exists", args.out.display())));
            }
            doc.version += 1;
            doc.expires_at = provkey_core::unix_now().saturating_add(args.expires_in);
            save(&args.out, &doc, false)?;
            println!(
                "wrote trust root version {} to `{}`",
                doc.version,
                args.out.display()
            );
        }
        TrustCommand::Sign(args) => sign(&args)?,
    }
    Ok(Exit::Pass)
}

fn sign(args: &SignArgs) -> CliResult<()> {
    let doc = load(&args.trust_root)?;
    doc.validate().map_err(|e| {
        bad(format!(
            "trust root `{}` is not complete: {e}",
            args.trust_root.display()
        ))
        .with_help("add keys for every role whose threshold is above 0, then sign")
    })?;
    let bytes = std::fs::read(&args.trust_root)
        .map_err(|e| bad(format!("cannot read `{}`: {e}", args.trust_root.display())))?;
    let key = load_secret_key(&args.key, &args.password)?;
    let tc = doc.trusted_comment(&bytes, Role::Root);
    let sig = provkey_core::sign::sign(&key, &bytes, &tc).map_err(|e| bad(e.to_string()))?;
    let path = sig_path(&args.trust_root, &key.public().key_id_hex());
    let _ = std::fs::remove_file(&path);
    write_new(&path, sig.to_text().as_bytes(), 0o644)?;
    println!(
        "signed trust root version {} with key {}: `{}`",
        doc.version,
        key.public().key_id_hex(),
        path.display()
    );
    Ok(())
}

fn sig_path(path: &Path, key_id: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{name}.{key_id}.minisig"))
}

fn read_public(path: &Path) -> CliResult<PublicKey> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(format!("cannot read public key `{}`: {e}", path.display())))?;
    PublicKey::from_file_text(&text).map_err(|e| {
        bad(format!(
            "`{}` is not a usable public key: {e}",
            path.display()
        ))
        .with_help("give a `.pub` file written by `provkey key generate` or `minisign -G`")
    })
}

fn load(path: &Path) -> CliResult<TrustRootDoc> {
    let bytes = std::fs::read(path)
        .map_err(|e| bad(format!("cannot read trust root `{}`: {e}", path.display())))?;
    let value = provkey_core::canonical::parse_canonical(&bytes)
        .map_err(|e| bad(format!("trust root `{}`: {e}", path.display())))?;
    serde_json::from_value(value).map_err(|e| bad(format!("trust root `{}`: {e}", path.display())))
}

/// Writes the document (canonical JSON) and removes signatures of the old bytes.
fn save(path: &Path, doc: &TrustRootDoc, replace: bool) -> CliResult<()> {
    let bytes = provkey_core::canonical::to_canonical(doc).map_err(|e| bad(e.to_string()))?;
    if replace {
        remove_signatures(path);
        let _ = std::fs::remove_file(path);
    }
    write_new(path, &bytes, 0o644)
}

fn remove_signatures(path: &Path) {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let other = entry.file_name().to_string_lossy().into_owned();
            if other.starts_with(&format!("{name}.")) && other.ends_with(".minisig") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
