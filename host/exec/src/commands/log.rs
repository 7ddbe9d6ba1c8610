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
    /// Check the hash chain and the state's anchor (exit 1 when it is broken, naming
    /// the first bad line).
    #[arg(long)]
    pub verify: bool,
    /// Print the log's head, `{"seq": N, "blake3": "…"}`, to keep outside the target.
    #[arg(long, conflicts_with = "verify")]
    pub head: bool,
    /// With `--verify`: the log must still hold this head (`SEQ:BLAKE3`, from `--head`
    /// kept elsewhere): detects a log rewritten whole, state included.
    #[arg(long, value_name = "SEQ:BLAKE3", requires = "verify")]
    pub expect_head: Option<String>,
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
    if args.head {
        let text = match log.head() {
            Some(head) => serde_json::to_string(&head).unwrap_or_default(),
            None => "null".to_owned(),
        };
        outln!("{text}");
        return Ok(Exit::Ok);
    }
    if let Some(expected) = &args.expect_head {
        let point = expected
            .split_once(':')
            .and_then(|(seq, b3)| {
                Some(provkey_exec::audit::Head {
                    seq: seq.parse().ok()?,
                    blake3: b3.to_owned(),
                })
            })
            .ok_or_else(|| Failure {
                code: Exit::Usage,
                message: format!("`--expect-head {expected}` is not `SEQ:BLAKE3`"),
                help: "give the `seq` and `blake3` that `provkey-exec log --head` printed".into(),
            })?;
        if let Err(err) = log.holds(&point, "the head kept outside") {
            return Err(Failure {
                code: Exit::Refused,
                message: format!(
                    "the audit log of `{}` does not verify: {err}",
                    args.target_dir.display()
                ),
                help: "the log was rewritten or cut after that head was kept: keep the \
                       target out of service and investigate"
                    .into(),
            });
        }
    }
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
