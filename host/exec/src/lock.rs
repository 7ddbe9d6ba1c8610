//! The target's lock: an exclusive `flock` on `DIR/lock`, a stable file that is never
//! renamed or replaced. The holder writes who it is into the file; a process that
//! finds the lock held fails at once with that information. The kernel releases the
//! lock when the holder exits, however it exits.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;

use cap_std::fs::Dir;

use crate::fsio::open_rw;

pub const LOCK_FILE: &str = "lock";

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct TargetLock {
    file: std::fs::File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("target `{}` is locked by {holder}", dir.display())]
    Locked {
        dir: std::path::PathBuf,
        holder: String,
    },
    #[error("cannot lock target `{}`: {source}", dir.display())]
    Io {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Takes the lock of the target directory `root` (shown as `shown`), or fails at once.
pub fn acquire(
    root: &Dir,
    shown: &Path,
    operation: &str,
    now: u64,
) -> Result<TargetLock, LockError> {
    let io = |source| LockError::Io {
        dir: shown.to_path_buf(),
        source,
    };
    let mut file = open_rw(root, LOCK_FILE, false).map_err(io)?.into_std();
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = (&file).take(4096).read_to_string(&mut text);
            let holder = match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) => format!(
                    "process {} ({} since {})",
                    v["pid"],
                    v["operation"].as_str().unwrap_or("?"),
                    v["since"]
                ),
                Err(_) => "another process".to_owned(),
            };
            return Err(LockError::Locked {
                dir: shown.to_path_buf(),
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(source)) => return Err(io(source)),
    }
    let info = serde_json::json!({
        "pid": std::process::id(),
        "operation": operation,
        "since": now,
    });
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    file.write_all(format!("{info}\n").as_bytes()).map_err(io)?;
    Ok(TargetLock { file })
}

impl Drop for TargetLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}
