//! `provkey-exec drift`: exit 0 when the deployed target is exactly what the last
//! applied bundle says, 1 with every difference listed otherwise.

use std::path::PathBuf;

use provkey_exec::{Exit, drift};

use super::Failure;
use super::outln;

#[derive(clap::Args)]
pub struct DriftArgs {
    /// The target directory.
    #[arg(long, value_name = "DIR")]
    pub target_dir: PathBuf,
}

pub fn run(args: &DriftArgs) -> Result<Exit, Failure> {
    let report = drift(&args.target_dir, provkey_core::unix_now())?;
    if !report.has_drift() {
        match report.serial {
            Some(serial) => outln!(
                "no drift: `{}` matches state serial {serial} ({} instance(s))",
                args.target_dir.display(),
                report.instances
            ),
            None => outln!(
                "no drift: `{}` was never deployed",
                args.target_dir.display()
            ),
        }
        return Ok(Exit::Ok);
    }
    outln!(
        "drift: {} difference(s) in `{}` from state serial {}:",
        report.drift.len(),
        args.target_dir.display(),
        report.serial.unwrap_or_default()
    );
    for d in &report.drift {
        outln!(
            "  {:<8} {:<20} {}  ({})",
            d.change.as_str(),
            d.address,
            d.path,
            d.detail
        );
    }
    eprintln!(
        "help: deployed files are never repaired in place: apply a new bundle (or roll back) \
         to replace the drifted instances"
    );
    Ok(Exit::Refused)
}
