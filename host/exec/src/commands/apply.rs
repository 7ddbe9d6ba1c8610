//! `provkey-exec apply`: verify a bundle against the target's state and apply it.

use std::path::PathBuf;

use provkey_exec::{ApplyOptions, Exit, apply};

use super::outln;
use super::{CheckArgs, Failure, TrustArgs, trust};

#[derive(clap::Args)]
pub struct ApplyArgs {
    /// The bundle directory.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub check: CheckArgs,
    /// The target directory (created at the first apply).
    #[arg(long, value_name = "DIR")]
    pub target_dir: PathBuf,
}

pub fn run(args: &ApplyArgs) -> Result<Exit, Failure> {
    let now = args.check.now();
    let trust = trust(&args.trust, now)?;
    let mut opts = ApplyOptions::new(&args.check.target, now);
    opts.audience = args.check.audience.clone();
    opts.max_validity = args.check.max_validity;
    opts.required_policies = args.check.required_policies.clone();
    opts.engine_version = args.check.engine_version.clone();
    let report = apply(&args.bundle, &trust, &opts, &args.target_dir)?;
    if report.already_applied {
        outln!(
            "already applied: bundle `{}` (sequence {}, manifest {}) is the last one applied to `{}`; nothing to do",
            args.bundle.display(),
            report.sequence,
            report.manifest,
            args.target_dir.display()
        );
        return Ok(Exit::Ok);
    }
    outln!(
        "applied: bundle `{}` to `{}` (target `{}`): sequence {}, manifest {}, state lineage {} serial {}{}",
        args.bundle.display(),
        args.target_dir.display(),
        args.check.target,
        report.sequence,
        report.manifest,
        report.lineage,
        report.serial,
        if report.resumed {
            " (resumed after an interruption)"
        } else {
            ""
        }
    );
    for step in &report.steps {
        let detail = match (&step.release, &step.removed) {
            (Some(new), Some(old)) => format!("  live -> {new}, removed {old}"),
            (Some(new), None) => format!("  live -> {new}"),
            (None, Some(old)) => format!("  removed {old}"),
            (None, None) => String::new(),
        };
        outln!("  {:<8} {}{detail}", step.action, step.address);
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    Ok(Exit::Ok)
}
