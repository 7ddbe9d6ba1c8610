//! Output files are written whole or not at all: to a temporary file beside the
//! destination, synced, then renamed into place. A destination that is not a file
//! (`/dev/null`, `/dev/stdout`, a FIFO) is written in place instead: renaming over
//! it would replace the device with a regular file that every later reader of
//! `/dev/null` would then read.

use std::io::{self, Write as _};
use std::path::Path;

/// Whether `path` is a device, FIFO or socket, itself or through symlinks.
pub fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| {
        let kind = meta.file_type();
        !kind.is_file() && !kind.is_dir()
    })
}

/// An output written but not yet in place (see [`stage`]).
pub enum Staged<'a> {
    Temporary {
        file: tempfile::NamedTempFile,
        path: &'a Path,
    },
    InPlace {
        path: &'a Path,
        bytes: &'a [u8],
    },
}

/// Writes `bytes` to a synced temporary file beside `path`; [`Staged::commit`] puts
/// it in place. Several outputs can be staged first and committed together, so that
/// a failure leaves none of them half-written.
pub fn stage<'a>(path: &'a Path, bytes: &'a [u8]) -> io::Result<Staged<'a>> {
    if is_special(path) {
        return Ok(Staged::InPlace { path, bytes });
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    Ok(Staged::Temporary { file, path })
}

impl Staged<'_> {
    pub fn commit(self) -> io::Result<()> {
        match self {
            Staged::Temporary { file, path } => {
                file.persist(path).map(drop).map_err(|err| err.error)
            }
            Staged::InPlace { path, bytes } => std::fs::OpenOptions::new()
                .write(true)
                .open(path)?
                .write_all(bytes),
        }
    }
}

/// Puts `from` (a finished file beside `to`, holding `bytes`) in place of `to`: a
/// rename, or for a device or FIFO a write of `bytes` in place; `from` is removed
/// either way.
pub fn move_into_place(from: &Path, to: &Path, bytes: &[u8]) -> io::Result<()> {
    if !is_special(to) {
        return std::fs::rename(from, to);
    }
    let written = Staged::InPlace { path: to, bytes }.commit();
    let _ = std::fs::remove_file(from);
    written
}

/// [`stage`] then [`Staged::commit`].
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    stage(path, bytes)?.commit()
}
