//! The target directory: one capability (`cap_std::fs::Dir`) opened once; every
//! other access is relative to it and cannot leave it (cap-std refuses `..`, absolute
//! paths and symbolic links that lead outside; we additionally never follow a link
//! at the last component, never use a file with more than one hard link, and never
//! open a FIFO or device blocking).
//!
//! ```text
//! DIR/
//!   lock             the lock file (flock; holds who holds it)
//!   state.json       the executor's state (see `state`)
//!   journal.json     the claim of an unfinished apply (see `journal`)
//!   audit.log        the hash-chained audit log (see `audit`)
//!   store/blobs/<blake3>        artifact files, content addressed, read-only
//!   store/trees/<hex>.json      artifact tree listings, by artifact digest
//!   releases/<name>-<id>/       one read-only release per instance version:
//!     artifact/…                  the artifact tree (a file, for a one-file artifact)
//!     config.json                 the instance's configuration (canonical JSON)
//!     files/…                     the instance's files
//!   releases/.stage-<name>-<id>/  a release being built (made read-only, then renamed)
//!   live/<name> -> ../releases/<name>-<id>   the live pointer of each instance
//!   tmp/             staging (emptied after each apply)
//! ```

use std::io;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;

use crate::fsio::ensure_dir;

pub const STORE: &str = "store";
pub const BLOBS: &str = "blobs";
pub const TREES: &str = "trees";
pub const RELEASES: &str = "releases";
pub const LIVE: &str = "live";
pub const TMP: &str = "tmp";

/// An opened target directory and its subdirectories.
#[derive(Debug)]
pub struct Target {
    pub path: PathBuf,
    pub root: Dir,
}

/// The target directory's subdirectories, opened (created when absent).
#[derive(Debug)]
pub struct Layout {
    pub blobs: Dir,
    pub trees: Dir,
    pub releases: Dir,
    pub live: Dir,
    pub tmp: Dir,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("target directory `{}` is a symbolic link", path.display())]
    Symlink { path: PathBuf },
    #[error("target directory `{}` does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("cannot open target directory `{}`: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("target directory `{}`: `{entry}` is not a plain directory: {source}", path.display())]
    Layout {
        path: PathBuf,
        entry: String,
        #[source]
        source: io::Error,
    },
}

impl Target {
    /// Opens the target directory, creating it when `create` and it is absent. The
    /// path itself must not be a symbolic link.
    pub fn open(path: &Path, create: bool) -> Result<Target, TargetError> {
        let shown = path;
        // `link/` names what the link points to (the kernel follows a link at the last
        // component when a slash comes after it): check and open the name itself.
        let path = &path.components().collect::<PathBuf>();
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(TargetError::Symlink {
                    path: path.to_path_buf(),
                });
            }
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound && create => {
                std::fs::create_dir_all(path).map_err(|source| TargetError::Open {
                    path: path.to_path_buf(),
                    source,
                })?;
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(TargetError::Missing {
                    path: path.to_path_buf(),
                });
            }
            Err(source) => {
                return Err(TargetError::Open {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        // Opened without following a link at the last component, so that one swapped
        // in after the check above is refused too.
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|err| match err {
            rustix::io::Errno::LOOP => TargetError::Symlink {
                path: shown.to_path_buf(),
            },
            other => TargetError::Open {
                path: shown.to_path_buf(),
                source: other.into(),
            },
        })?;
        let root = Dir::from_std_file(std::fs::File::from(fd));
        Ok(Target {
            path: shown.to_path_buf(),
            root,
        })
    }

    /// Opens (creating) the layout's directories, refusing any that is a link.
    pub fn layout(&self) -> Result<Layout, TargetError> {
        let sub = |dir: &Dir, name: &str, shown: &str| {
            ensure_dir(dir, name).map_err(|source| TargetError::Layout {
                path: self.path.clone(),
                entry: shown.to_owned(),
                source,
            })
        };
        let store = sub(&self.root, STORE, STORE)?;
        Ok(Layout {
            blobs: sub(&store, BLOBS, "store/blobs")?,
            trees: sub(&store, TREES, "store/trees")?,
            releases: sub(&self.root, RELEASES, RELEASES)?,
            live: sub(&self.root, LIVE, LIVE)?,
            tmp: sub(&self.root, TMP, TMP)?,
        })
    }
}
