//! `provkey-exec verify`: check a bundle without applying it. With `--target-dir`,
//! against that target's state, exactly as `apply` would; without, the checks that
//! need a target's state are listed as not checked (exit 0 when all others pass).

use std::path::PathBuf;

use provkey_core::verify::{NoState, VerifyOptions, verify_bundle};
use provkey_exec::state::Known;
use provkey_exec::{Exit, read_state};

use super::outln;
use super::{CheckArgs, Failure, TrustArgs, trust};

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The bundle directory.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub check: CheckArgs,
    /// Verify against this target directory's state (read only), as `apply` would.
    #[arg(long, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
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
    let target_state = match &args.target_dir {
        Some(dir) => Some(read_state(dir)?),
        None => None,
    };
    let result = match &target_state {
        Some(state) => verify_bundle(&args.bundle, &trust, &opts, &Known(state.as_ref())),
        None => verify_bundle(&args.bundle, &trust, &opts, &NoState),
    };
    let verified = result.map_err(|refused| Failure {
        code: Exit::Refused,
        message: format!("bundle `{}` {refused}", args.bundle.display()),
        help: "do not apply this bundle; seal the plan again with `provkey seal`".into(),
    })?;
    let m = &verified.manifest;
    outln!(
        "verified: bundle `{}` for target `{}`, sequence {}, manifest {}, {} policy verdict(s) allow",
        args.bundle.display(),
        m.target.environment,
        m.sequence,
        verified.manifest_blake3,
        m.policies.len()
    );
    match (&args.target_dir, &target_state) {
        (Some(dir), Some(state)) => outln!(
            "  against target directory `{}`: {}",
            dir.display(),
            match state {
                Some(s) => format!(
                    "state serial {}, high-water mark {}",
                    s.state.serial, s.high_water
                ),
                None => "never deployed".to_owned(),
            }
        ),
        _ => {
            for check in &verified.not_checked {
                outln!("  not checked (no --target-dir): {check}");
            }
        }
    }
    Ok(Exit::Ok)
}
