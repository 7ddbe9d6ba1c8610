//! `provkey-exec abandon`: drop an unfinished apply's claim and return the target to
//! its last committed state (exit 0, also when there was nothing to abandon).

use std::path::PathBuf;

use provkey_exec::{Exit, abandon};

use super::Failure;
use super::outln;

#[derive(clap::Args)]
pub struct AbandonArgs {
    /// The target directory.
    #[arg(long, value_name = "DIR")]
    pub target_dir: PathBuf,
}

pub fn run(args: &AbandonArgs) -> Result<Exit, Failure> {
    let report = abandon(&args.target_dir, provkey_core::unix_now())?;
    let back_at = match report.serial {
        Some(serial) => format!("state serial {serial}"),
        None => "never deployed".to_owned(),
    };
    match &report.abandoned {
        None => outln!(
            "nothing to abandon: `{}` has no unfinished apply ({back_at})",
            args.target_dir.display()
        ),
        Some((manifest, sequence)) => {
            outln!(
                "abandoned the apply of manifest `{manifest}` (sequence {sequence}): `{}` is \
                 back at {back_at}",
                args.target_dir.display()
            );
            for name in &report.restored {
                outln!("  restored live/{name}");
            }
        }
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    Ok(Exit::Ok)
}
