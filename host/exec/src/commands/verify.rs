//! `provkey-exec verify`: check a bundle without applying it (no target state).

use std::path::PathBuf;

use provkey_core::verify::{MemoryState, VerifyOptions, verify_bundle};
use provkey_exec::Exit;

use super::{CheckArgs, Failure, TrustArgs, trust};

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The bundle directory.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub check: CheckArgs,
}

pub fn run(args: &VerifyArgs) -> Result<Exit, Failure> {
    let now = args.check.now();
    let trust = trust(&args.trust, now)?;
    let mut opts = VerifyOptions::new(&args.check.target, now);
    if let Some(audience) = &args.check.audience {
        opts.audience = audience.clone();
    }
    opts.max_validity = args.check.max_validity;
    opts.required_policies = args.check.required_policies.clone();
    opts.engine_version = args.check.engine_version.clone();
    let state = MemoryState::default();
    let verified =
        verify_bundle(&args.bundle, &trust, &opts, &state).map_err(|refused| Failure {
            code: Exit::Refused,
            message: format!("bundle `{}` {refused}", args.bundle.display()),
            help: "do not apply this bundle; seal the plan again with `provkey seal`".into(),
        })?;
    let m = &verified.manifest;
    println!(
        "verified: bundle `{}` for target `{}`, sequence {}, manifest {}, {} policy verdict(s) allow",
        args.bundle.display(),
        m.target.environment,
        m.sequence,
        verified.manifest_blake3,
        m.policies.len()
    );
    Ok(Exit::Ok)
}
