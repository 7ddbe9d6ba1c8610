//! `provkey-exec`: the executor. It verifies sealed plan bundles (with `provkey-core`)
//! and applies them to a target directory by destroy-and-replace; it links no
//! wasmtime and holds no secret key.
//!
//! The library API, for the `provkey-exec` binary and for commands built on it:
//!
//! * [`apply::apply`]`(bundle, trust, opts, target_dir) -> ApplyReport`;
//! * [`drift::drift`]`(target_dir, now) -> DriftReport`;
//! * [`read_state`]`(target_dir) -> Option<TargetState>` (the state `provkey plan
//!   --state` reads is its `.state`), [`state_json`] for the file form;
//! * [`audit::verify`] / [`verify_log`]`(target_dir)`;
//! * [`trust_file::load_trust`] to read `--trust` the way the binary does.
//!
//! Modules by concept: [`target`] (the directory layout, one cap-std capability),
//! [`store`] (content-addressed artifacts), [`release`] (read-only releases and
//! atomic live pointers), [`state`] (the persistent state), [`fsio`] (durable
//! writes), [`lock`], [`journal`] (the claim), [`audit`] (the hash-chained log),
//! [`work`] (what a verified plan means on disk), [`apply`], [`drift`],
//! [`failpoint`] (crash injection for tests).

pub mod abandon;
pub mod apply;
pub mod audit;
pub mod drift;
pub mod failpoint;
pub mod fsio;
pub mod journal;
pub mod lock;
pub mod release;
pub mod state;
pub mod store;
pub mod target;
pub mod trust_file;
pub mod work;

use std::path::{Path, PathBuf};

pub use abandon::{AbandonReport, abandon};
pub use apply::{AppliedStep, ApplyOptions, ApplyReport, apply};
pub use drift::{Drift, DriftReport, drift};
pub use state::TargetState;

/// Exit codes of `provkey-exec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Accepted, applied, no drift, the log verifies.
    Ok = 0,
    /// Refused (the check is named), drift found, the log is broken, or an apply step
    /// failed (the claim stays: re-run the same bundle).
    Refused = 1,
    /// Bad usage or unreadable arguments.
    Usage = 2,
    /// The trust root is refused.
    Trust = 3,
    /// Another executor holds the target's lock.
    Locked = 4,
}

/// Everything that stops the executor.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Target(#[from] target::TargetError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error("bundle `{}` {refused}", bundle.display())]
    Refused {
        bundle: PathBuf,
        refused: provkey_core::verify::Refused,
    },
    #[error("target directory `{}` belongs to target `{owner}`, not `{asked}`", dir.display())]
    WrongTarget {
        dir: PathBuf,
        owner: String,
        asked: String,
    },
    #[error(
        "target `{}` has an unfinished apply of manifest `{manifest}` (sequence {sequence}); \
         another bundle is refused until it is finished",
        dir.display()
    )]
    Unfinished {
        dir: PathBuf,
        manifest: String,
        sequence: u64,
    },
    #[error("apply of manifest `{manifest}` to `{}` failed at step `{step}`: {detail}", dir.display())]
    Failed {
        dir: PathBuf,
        manifest: String,
        step: String,
        detail: String,
    },
    #[error("cannot abandon the unfinished apply of `{}`: {detail}", dir.display())]
    Abandon { dir: PathBuf, detail: String },
    #[error("{error}; and the audit log lost what it was to record: {}", lost.join("; "))]
    AuditLost {
        error: Box<ExecError>,
        lost: Vec<String>,
    },
    #[error("the audit log cannot record `{event}`: no change is made without its record")]
    AuditRequired { event: &'static str },
    #[error(transparent)]
    State(#[from] state::StateFileError),
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    #[error("target directory: {0}")]
    Io(#[from] std::io::Error),
}

impl ExecError {
    pub fn exit(&self) -> Exit {
        match self {
            ExecError::Target(_) | ExecError::WrongTarget { .. } => Exit::Usage,
            ExecError::Lock(lock::LockError::Locked { .. }) => Exit::Locked,
            ExecError::AuditLost { error, .. } => error.exit(),
            _ => Exit::Refused,
        }
    }

    /// What to do about it.
    pub fn help(&self) -> String {
        match self {
            ExecError::Target(_) => {
                "give `--target-dir` a plain directory (not a symbolic link), created by \
                 `provkey-exec apply`"
                    .into()
            }
            ExecError::Lock(lock::LockError::Locked { .. }) => {
                "another executor is applying to this target: wait for it to finish and \
                 retry (the lock is released when its process exits)"
                    .into()
            }
            ExecError::Lock(_) | ExecError::Io(_) => {
                "check the target directory's permissions and free space".into()
            }
            ExecError::Refused { .. } => {
                "do not apply this bundle: plan against the current state (`provkey-exec \
                 state`), then check and seal again with `provkey seal`"
                    .into()
            }
            ExecError::WrongTarget { owner, .. } => format!(
                "apply bundles for `{owner}` to this directory, or use another `--target-dir`"
            ),
            ExecError::Unfinished { .. } => {
                "re-run `provkey-exec apply` with the bundle of that manifest to finish it, \
                 or drop it with `provkey-exec abandon --target-dir DIR`; then apply this one"
                    .into()
            }
            ExecError::Failed { .. } => {
                "fix the cause, then re-run the same bundle: the apply resumes where it \
                 stopped; or return the target to its last committed state with \
                 `provkey-exec abandon --target-dir DIR`"
                    .into()
            }
            ExecError::Abandon { .. } => {
                "the last committed state cannot be rebuilt from the target's store: restore \
                 the target directory from a backup"
                    .into()
            }
            ExecError::State(state::StateFileError::Write(_)) => {
                "the new state could not be committed (the claim stands): free space or fix \
                 the target directory, then re-run the same bundle, or return to the last \
                 committed state with `provkey-exec abandon --target-dir DIR`"
                    .into()
            }
            ExecError::AuditRequired { .. } => {
                "free space or fix `audit.log`, then re-run the same bundle (the claim stands), \
                 or drop it with `provkey-exec abandon --target-dir DIR`"
                    .into()
            }
            ExecError::AuditLost { error, .. } => format!(
                "{}; then free space or fix `audit.log` (a regular file with one link) and \
                 check the log with `provkey-exec log --verify`",
                error.help()
            ),
            ExecError::State(_) => {
                "the state file is damaged: restore `state.json` from a backup of the \
                 target; it is never taken as \"nothing deployed\""
                    .into()
            }
            ExecError::Journal(journal::JournalError::Io(_)) => {
                "free space or fix the target directory's permissions, then re-run; nothing \
                 was changed before the claim"
                    .into()
            }
            ExecError::Journal(_) => {
                "the claim journal is damaged: inspect `journal.json` and the audit log".into()
            }
            ExecError::Audit(_) => "inspect `audit.log` with `provkey-exec log --verify`".into(),
        }
    }
}

/// The executor's state of `target_dir` (`None` for a target never deployed). Reads
/// only; a damaged state file is an error.
pub fn read_state(target_dir: &Path) -> Result<Option<TargetState>, ExecError> {
    let target = target::Target::open(target_dir, false)?;
    Ok(state::load(&fsio::DirFs(&target.root))?)
}

/// The state as `provkey plan --state` and `provkey seal --state` read it.
pub fn state_json(state: &provkey_desired::State) -> String {
    let mut text = state.to_json();
    text.push('\n');
    text
}

/// Reads and verifies the audit log of `target_dir`: its chain, then the anchor the
/// state recorded at its last commit (the anchored line is there, unchanged, and so is
/// the `applied` line of the state's manifest).
pub fn verify_log(target_dir: &Path) -> Result<audit::Verified, ExecError> {
    let target = target::Target::open(target_dir, false)?;
    let log = audit::verify(&target.root)?;
    let fs = fsio::DirFs(&target.root);
    if let Some(current) = state::load(&fs)? {
        let claimed = journal::load(&fs)?.is_some();
        match &current.audit_head {
            Some(anchor) => {
                log.check_anchor(anchor, current.state.applied_manifest.as_deref(), claimed)?
            }
            // A state committed before anchors were recorded: at least not emptied.
            None if current.state.applied_manifest.is_some() && log.entries.is_empty() => {
                return Err(audit::AuditError::Broken {
                    line: 1,
                    reason: "the log is empty, and the state says a bundle was applied".into(),
                }
                .into());
            }
            None => {}
        }
    }
    Ok(log)
}
