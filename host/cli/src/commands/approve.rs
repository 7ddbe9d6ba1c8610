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
    for (label, wanted) in [("replaced", true), ("destroyed", false)] {
        let changes: Vec<&str> = plan
            .changes
            .iter()
            .filter(|c| match c.action {
                provkey_plan::Action::Replace(_) => wanted,
                provkey_plan::Action::Destroy => !wanted,
                _ => false,
            })
            .map(|c| c.address.as_str())
            .collect();
        println!("  {label} ({}):", changes.len());
        for address in changes {
            println!("    {address}");
        }
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
    write_new(&path, sig.to_text().as_bytes(), 0o644)?;
    println!(
        "approved by {}: `{}`",
        key.public().key_id_hex(),
        path.display()
    );
    Ok(Exit::Pass)
}
