//! `provkey-exec log`: print the audit log; `--verify` checks its hash chain.

use std::path::PathBuf;

use provkey_exec::{Exit, verify_log};

use super::Failure;
use super::outln;

#[derive(clap::Args)]
pub struct LogArgs {
    /// The target directory.
    #[arg(long, value_name = "DIR")]
    pub target_dir: PathBuf,
    /// Check the hash chain (exit 1 when it is broken, naming the first bad line).
    #[arg(long)]
    pub verify: bool,
}

pub fn run(args: &LogArgs) -> Result<Exit, Failure> {
    let log = verify_log(&args.target_dir).map_err(|err| {
        let mut failure = Failure::from(err);
        failure.message = format!(
            "the audit log of `{}` does not verify: {}",
            args.target_dir.display(),
            failure.message
        );
        failure.help = "the log was edited, cut or reordered from that line on: keep the \
                        target out of service and investigate"
            .into();
        failure
    });
    let log = match log {
        Ok(log) => log,
        Err(failure) if args.verify => return Err(failure),
        Err(failure) => {
            eprintln!("warning: {}", failure.message);
            return Ok(Exit::Refused);
        }
    };
    if args.verify {
        outln!(
            "verified: the audit log of `{}` has {} entries, chain head {}",
            args.target_dir.display(),
            log.entries.len(),
            log.head
        );
    } else {
        for e in &log.entries {
            outln!(
                "{:>5} {} {:<9} seq={} manifest={} {}{}",
                e.seq,
                e.time,
                e.event,
                e.sequence
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                e.manifest.as_deref().map_or("-", |m| &m[..m.len().min(16)]),
                e.check
                    .as_deref()
                    .map(|c| format!("[{c}] "))
                    .unwrap_or_default(),
                e.detail
            );
        }
    }
    Ok(Exit::Ok)
}
