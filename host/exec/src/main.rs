//! `provkey-exec`: the executor's own binary. It verifies sealed plan bundles; it links
//! no wasmtime and holds no secret key.
//!
//! Exit codes: 0 the bundle is accepted; 1 the bundle is refused (the first failed check
//! is named); 2 bad usage or unreadable arguments; 3 the trust root is refused.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use provkey_core::keys::PublicKey;
use provkey_core::trust::TrustRoot;
use provkey_core::verify::{MemoryState, VerifyOptions, verify_bundle};

#[derive(Parser)]
#[command(
    name = "provkey-exec",
    version,
    about = "Verify sealed provkey plan bundles."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify a bundle: signatures, thresholds, manifest, target, freshness, blobs.
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The bundle directory.
    bundle: PathBuf,
    /// The trust root (`trust-root.json`, its `.minisig` files beside it), or one
    /// minisign public key file trusted as the only plan-signer.
    #[arg(long, value_name = "FILE")]
    trust: PathBuf,
    /// Newer trust-root versions to move to, one version at a time (repeatable, in order).
    #[arg(long = "trust-update", value_name = "FILE")]
    trust_updates: Vec<PathBuf>,
    /// The environment this executor applies to.
    #[arg(long, value_name = "ENV")]
    target: String,
    /// This executor's audience id (default: the target).
    #[arg(long, value_name = "ID")]
    audience: Option<String>,
    /// The time to verify at, in Unix seconds (default: now).
    #[arg(long, value_name = "UNIX")]
    now: Option<u64>,
    /// The longest validity window accepted, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 7 * 24 * 3600)]
    max_validity: u64,
    /// A policy that must have run with verdict `allow` (repeatable).
    #[arg(long = "require-policy", value_name = "ID")]
    required_policies: Vec<String>,
    /// The engine version the manifest must name.
    #[arg(long, value_name = "VERSION")]
    engine_version: Option<String>,
}

const EXIT_REFUSED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_TRUST: u8 = 3;

struct Failure {
    code: u8,
    message: String,
    help: &'static str,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let Command::Verify(args) = cli.command;
    match verify(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("error: {}\nhelp: {}", failure.message, failure.help);
            ExitCode::from(failure.code)
        }
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|err| Failure {
        code: EXIT_USAGE,
        message: format!("cannot read {what} `{}`: {err}", path.display()),
        help: "check the path",
    })
}

/// `FILE.<KEYID>.minisig` beside `FILE`.
fn signatures_beside(path: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(base) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(Vec::new());
    };
    let entries = std::fs::read_dir(dir).map_err(|err| Failure {
        code: EXIT_USAGE,
        message: format!("cannot list `{}`: {err}", dir.display()),
        help: "check the path given to `--trust`",
    })?;
    let mut names: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().map(|n| n.to_string_lossy()).is_some_and(|n| {
                n.strip_prefix(&format!("{base}."))
                    .and_then(|r| r.strip_suffix(".minisig"))
                    .is_some_and(|id| provkey_core::minisig::parse_key_id_hex(id).is_some())
            })
        })
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| read(p, "trust-root signature"))
        .collect()
}

fn trust_failure(path: &Path, err: impl std::fmt::Display) -> Failure {
    Failure {
        code: EXIT_TRUST,
        message: format!("trust root `{}` refused: {err}", path.display()),
        help: "pin a valid trust root signed by its root keys; move versions one at a time with `--trust-update`",
    }
}

fn load_trust(args: &VerifyArgs, now: u64) -> Result<TrustRoot, Failure> {
    let bytes = read(&args.trust, "trust root")?;
    let mut trust = if bytes.starts_with(b"untrusted comment:") {
        let text = String::from_utf8_lossy(&bytes);
        TrustRoot::single_key(
            PublicKey::from_file_text(&text).map_err(|e| trust_failure(&args.trust, e))?,
        )
    } else {
        let sigs = signatures_beside(&args.trust)?;
        TrustRoot::load(&bytes, &sigs, now).map_err(|e| trust_failure(&args.trust, e))?
    };
    for update in &args.trust_updates {
        let bytes = read(update, "trust root")?;
        let sigs = signatures_beside(update)?;
        trust = trust
            .rotate(&bytes, &sigs, now)
            .map_err(|e| trust_failure(update, e))?;
    }
    Ok(trust)
}

fn verify(args: &VerifyArgs) -> Result<String, Failure> {
    let now = args.now.unwrap_or_else(provkey_core::unix_now);
    let trust = load_trust(args, now)?;
    let mut opts = VerifyOptions::new(&args.target, now);
    if let Some(audience) = &args.audience {
        opts.audience = audience.clone();
    }
    opts.max_validity = args.max_validity;
    opts.required_policies = args.required_policies.clone();
    opts.engine_version = args.engine_version.clone();
    let state = MemoryState::default();
    let verified =
        verify_bundle(&args.bundle, &trust, &opts, &state).map_err(|refused| Failure {
            code: EXIT_REFUSED,
            message: format!("bundle `{}` {refused}", args.bundle.display()),
            help: "do not apply this bundle; seal the plan again with `provkey seal`",
        })?;
    let m = &verified.manifest;
    Ok(format!(
        "verified: bundle `{}` for target `{}`, sequence {}, manifest {}, {} policy verdict(s) allow",
        args.bundle.display(),
        m.target.environment,
        m.sequence,
        verified.manifest_blake3,
        m.policies.len()
    ))
}
