//! `provkey approve BUNDLE_DIR --key APPROVER_KEY`: show what is approved, then add an
//! approver's signature over the same manifest bytes.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use provkey_core::bundle;
use provkey_core::manifest::Manifest;
use provkey_core::minisig::Role;

use super::key::{PasswordArgs, load_secret_key, write_new};
use crate::exit::{CliError, CliResult, Exit};

#[derive(Args)]
pub struct ApproveArgs {
    /// The bundle directory written by `provkey seal`.
    pub bundle: PathBuf,
    /// The approver's secret key.
    #[arg(long, value_name = "SECRET_KEY")]
    pub key: PathBuf,
    #[command(flatten)]
    pub password: PasswordArgs,
}

fn bad(msg: String) -> CliError {
    CliError::bad_input(anyhow!(msg))
}

pub fn execute(args: ApproveArgs) -> CliResult<Exit> {
    let shown = args.bundle.display();
    let raw = bundle::open(&args.bundle)
        .map_err(|e| bad(format!("cannot open bundle `{shown}`: {e}")))?;
    let manifest = Manifest::from_bytes(&raw.manifest)
        .map_err(|e| bad(format!("bundle `{shown}`: manifest.json: {e}")))?;
    let plan = raw
        .read_blob(&manifest.plan.blake3, manifest.plan.size, true)
        .ok()
        .filter(|b| b.blake3 == manifest.plan.blake3)
        .and_then(|b| b.bytes)
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| provkey_plan::Plan::from_json(&t).ok())
        .ok_or_else(|| {
            bad(format!(
                "bundle `{shown}`: the plan blob is missing or altered"
            ))
        })?;
    let key = load_secret_key(&args.key, &args.password)?;

    println!(
        "approving manifest {}",
        provkey_core::blake3_hex(&raw.manifest)
    );
    println!("  target:    {}", manifest.target.environment);
    println!("  sequence:  {}", manifest.sequence);
    println!("  expires:   {} (unix)", manifest.expires_at);
    match &manifest.artifact {
        Some(a) => println!("  artifact:  {} (blake3 {})", a.uri, a.digest.blake3),
        None => println!("  artifact:  none"),
    }
    // Every change, with what it deploys: the approver signs these digests, not a label.
    println!("  changes ({}):", plan.changes.len());
    for c in &plan.changes {
        let after = c.after.as_ref().and_then(|a| a.value());
        let before = c.before.as_ref().and_then(|b| b.value());
        let digests = |v: Option<&serde_json::Value>| {
            let v = v?;
            let artifact = v
                .pointer("/artifact/digest")
                .or_else(|| v.get("digest"))
                .and_then(|d| d.as_str())
                .unwrap_or("(no digest: a mutable reference)");
            Some(match v.get("config_digest").and_then(|d| d.as_str()) {
                Some(config) => format!("artifact {artifact}, config {config}"),
                None => format!("artifact {artifact}"),
            })
        };
        let action = c.action.name();
        match (&c.action, digests(after), digests(before)) {
            (provkey_plan::Action::Destroy, _, Some(old)) => {
                println!("    {action:<8} {}  removes {old}", c.address)
            }
            (provkey_plan::Action::Replace(_), Some(new), Some(old)) => {
                println!("    {action:<8} {}  deploys {new} (was {old})", c.address)
            }
            (_, Some(new), _) => println!("    {action:<8} {}  deploys {new}", c.address),
            _ => println!("    {action:<8} {}", c.address),
        }
    }
    println!("  policies ({}):", manifest.policies.len());
    for p in &manifest.policies {
        println!(
            "    {} {}: {} (module blake3 {})",
            p.id, p.policy_version, p.verdict, p.module_blake3
        );
    }

    let sig = super::seal::sign_manifest(&key, &raw.manifest, &manifest, Role::Approver)?;
    let path = args
        .bundle
        .join(bundle::signature_file_name(&key.public().key_id_hex()));
    if path.exists() {
        return Err(bad(format!(
            "`{}` already exists: this key already signed",
            path.display()
        )));
    }
    write_new(&path, sig.to_text().as_bytes(), 0o600)?;
    println!(
        "approved by {}: `{}`",
        key.public().key_id_hex(),
        path.display()
    );
    Ok(Exit::Pass)
}
