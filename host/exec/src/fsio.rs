//! Durable small-file writes, and safe opens under a capability directory.
//!
//! The state file and the claim journal are replaced with the POSIX protocol (write a
//! temporary file in the same directory, fsync it, rename it over the name, fsync the
//! directory), written against the small [`DurableFs`] trait so that the same code
//! runs on the real target directory ([`DirFs`], through cap-std) and on the
//! simulated filesystem of the crash-consistency test, which drops, keeps or garbles
//! every write not yet synced at each crash point.
//!
//! An fsync error is fatal for that write (never retried: after a failed writeback
//! Linux reports success on the next fsync although the data is gone).

use std::io::{self, Read as _, Write as _};

use cap_fs_ext::{DirExt as _, FollowSymlinks, OpenOptionsFollowExt as _};
use cap_std::fs::{Dir, File, OpenOptions, OpenOptionsExt as _};

use crate::failpoint;

/// The few operations a durable replace needs.
pub trait DurableFs {
    /// Creates `name` (which must not exist) with `bytes`, not yet synced.
    fn create_file(&self, name: &str, bytes: &[u8]) -> io::Result<()>;
    /// Makes `name`'s data durable.
    fn sync_file(&self, name: &str) -> io::Result<()>;
    /// Renames `from` over `to` (atomic for the name, durable only after `sync_dir`).
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Makes the directory's names durable.
    fn sync_dir(&self) -> io::Result<()>;
    /// Removes `name`; a missing name is not an error.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// The content of `name`, or `None` when it does not exist.
    fn read(&self, name: &str, max: u64) -> io::Result<Option<Vec<u8>>>;
}

/// The temporary name `write_atomic` uses for `name`.
pub fn temp_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// Replaces `name` with `bytes` durably: a crash at any point leaves the old content
/// or the new, never a mix, never an empty file. `step` names the failpoints
/// (`<step>.write`, `<step>.fsync`, `<step>.rename`, `<step>.dirsync`).
pub fn write_atomic(fs: &dyn DurableFs, name: &str, bytes: &[u8], step: &str) -> io::Result<()> {
    let tmp = temp_name(name);
    fs.remove(&tmp)?;
    fs.create_file(&tmp, bytes)?;
    failpoint::hit(&format!("{step}.write"));
    fs.sync_file(&tmp)?;
    failpoint::hit(&format!("{step}.fsync"));
    fs.rename(&tmp, name)?;
    failpoint::hit(&format!("{step}.rename"));
    fs.sync_dir()?;
    failpoint::hit(&format!("{step}.dirsync"));
    Ok(())
}

/// Removes `name` durably.
pub fn remove_durable(fs: &dyn DurableFs, name: &str, step: &str) -> io::Result<()> {
    fs.remove(name)?;
    failpoint::hit(&format!("{step}.remove"));
    fs.sync_dir()?;
    failpoint::hit(&format!("{step}.dirsync"));
    Ok(())
}

/// [`DurableFs`] over a cap-std directory: nothing it does can leave the directory.
#[derive(Debug)]
pub struct DirFs<'a>(pub &'a Dir);

impl DurableFs for DirFs<'_> {
    fn create_file(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut file = create_new(self.0, name, 0o600)?;
        file.write_all(bytes)
    }
    fn sync_file(&self, name: &str) -> io::Result<()> {
        open_regular(self.0, name)?.sync_all()
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.0.rename(from, self.0, to)
    }
    fn sync_dir(&self) -> io::Result<()> {
        sync_dir(self.0)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        remove_entry(self.0, name)
    }
    fn read(&self, name: &str, max: u64) -> io::Result<Option<Vec<u8>>> {
        match open_regular(self.0, name) {
            Ok(file) => read_capped(file, name, max).map(Some),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// A readable descriptor of `dir` itself (cap-std holds directories as `O_PATH`
/// descriptors, on which fsync and fchmod fail).
pub fn dir_handle(dir: &Dir) -> io::Result<File> {
    use cap_fs_ext::OpenOptionsMaybeDirExt as _;
    let mut opts = OpenOptions::new();
    opts.read(true).maybe_dir(true).follow(FollowSymlinks::No);
    dir.open_with(".", &opts)
}

/// fsync of a directory.
pub fn sync_dir(dir: &Dir) -> io::Result<()> {
    dir_handle(dir)?.sync_all()
}

/// Makes everything written so far on `dir`'s filesystem durable, in one call
/// (`syncfs`). A release is dozens of small files and directories: one syncfs after
/// staging it costs about what one fsync does, where an fsync of each file and
/// directory cost ~10 per instance (2.7 ms each here). Errors of any writeback since
/// the descriptor was opened are reported (Linux 5.8+).
#[cfg(target_os = "linux")]
pub fn sync_filesystem(dir: &Dir) -> io::Result<()> {
    Ok(rustix::fs::syncfs(dir_handle(dir)?)?)
}

/// Elsewhere there is no syncfs: `sync_tree` callers fall back to fsyncing the
/// directory itself, which is not enough for its files; the executor targets Linux.
#[cfg(not(target_os = "linux"))]
pub fn sync_filesystem(dir: &Dir) -> io::Result<()> {
    sync_dir(dir)
}

/// Opens `name` under `dir` for reading: no symbolic link followed at the last
/// component (cap-std already refuses any that leaves `dir`), non-blocking (a FIFO
/// never stalls), and only a regular file with one link is accepted (a hard link to
/// an inode outside the root is refused, not read).
pub fn open_regular(dir: &Dir, name: &str) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true)
        .follow(FollowSymlinks::No)
        .custom_flags(nonblock());
    let file = dir.open_with(name, &opts)?;
    check_regular(&file, name)?;
    Ok(file)
}

fn check_regular(file: &File, name: &str) -> io::Result<()> {
    use cap_std::fs::MetadataExt as _;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{name}` is not a regular file"),
        ));
    }
    if meta.nlink() != 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "`{name}` has {} hard links (an inode shared with another path is never used)",
                meta.nlink()
            ),
        ));
    }
    Ok(())
}

/// Creates `name` under `dir`, failing if anything (file, link, FIFO) is there.
pub fn create_new(dir: &Dir, name: &str, mode: u32) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true)
        .create_new(true)
        .follow(FollowSymlinks::No)
        .mode(mode);
    dir.open_with(name, &opts)
}

/// Opens (creating it when absent) a file for appending or locking: no link followed,
/// non-blocking, a regular file with one link only.
pub fn open_rw(dir: &Dir, name: &str, append: bool) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true)
        .create(true)
        .follow(FollowSymlinks::No)
        .custom_flags(nonblock())
        .mode(0o600);
    if append {
        opts.append(true);
    } else {
        opts.write(true);
    }
    let file = dir.open_with(name, &opts)?;
    check_regular(&file, name)?;
    Ok(file)
}

/// Removes a file or a symbolic link (never what it points to); missing is fine.
pub fn remove_entry(dir: &Dir, name: &str) -> io::Result<()> {
    match dir.remove_file_or_symlink(name) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Reads at most `max` bytes.
pub fn read_capped(file: File, name: &str, max: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("`{name}` is larger than {max} bytes"),
        ));
    }
    Ok(bytes)
}

/// Opens a subdirectory without following a symbolic link, creating it when absent.
pub fn ensure_dir(dir: &Dir, name: &str) -> io::Result<Dir> {
    match dir.create_dir(name) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    dir.open_dir_nofollow(name)
}

fn nonblock() -> i32 {
    // The bits fit in an i32 on every platform rustix supports.
    i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap_or(0)
}
