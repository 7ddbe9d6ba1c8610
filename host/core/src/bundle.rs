//! The bundle layout, and reading it without following links.
//!
//! ```text
//! bundle/
//!   manifest.json                     canonical JSON (RFC 8785), the signed statement
//!   manifest.json.<KEYID>.minisig     one per signer; KEYID = minisign display id
//!   blobs/<blake3>                    the plan body, configurations, policy outputs, artifact
//! ```
//!
//! Every open is relative to the bundle's directory descriptor with `O_NOFOLLOW`; only
//! regular files with one link are read, each at most once, with a size cap.

use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Dir, FileType, Mode, OFlags};

use crate::minisig::{MAX_MINISIG_BYTES, parse_key_id_hex};

pub const MANIFEST: &str = "manifest.json";
pub const BLOBS: &str = "blobs";
/// The most signature files a bundle may hold: each is capped in size, and their
/// number is capped before any is read.
pub const MAX_SIGNATURE_FILES: usize = 64;

/// `manifest.json.<KEYID>.minisig`.
pub fn signature_file_name(key_id_hex: &str) -> String {
    format!("{MANIFEST}.{key_id_hex}.minisig")
}

/// The key id a signature file name carries, if the name is one.
pub fn signature_key_id(name: &str) -> Option<[u8; 8]> {
    name.strip_prefix("manifest.json.")
        .and_then(|rest| rest.strip_suffix(".minisig"))
        .and_then(parse_key_id_hex)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error(
        "`{path}` is not a directory (bundles are directories; archives are refused): {reason}"
    )]
    NotDirectory { path: String, reason: String },
    #[error("`{0}` is a symbolic link")]
    Symlink(String),
    #[error("`{0}` is not a regular file")]
    NotRegular(String),
    #[error("`{0}` has more than one hard link")]
    HardLink(String),
    #[error("`{name}` is {size} bytes, above the limit of {max}")]
    TooLarge { name: String, size: u64, max: u64 },
    #[error("unexpected entry `{0}` in the bundle")]
    Unexpected(String),
    #[error("blob name `{0}` is not 64 lowercase hex digits")]
    BlobName(String),
    #[error("the bundle has no `manifest.json`")]
    NoManifest,
    #[error("the bundle has no signature file")]
    NoSignature,
    #[error("the bundle has {count} signature files, more than the {MAX_SIGNATURE_FILES} accepted")]
    TooManySignatures { count: usize },
    #[error("cannot read `{name}`: {reason}")]
    Io { name: String, reason: String },
}

fn io(name: &str, err: impl std::fmt::Display) -> OpenError {
    OpenError::Io {
        name: name.to_owned(),
        reason: err.to_string(),
    }
}

/// A bundle directory, opened: the manifest and signatures read, blobs listed.
#[derive(Debug)]
pub struct RawBundle {
    pub manifest: Vec<u8>,
    /// (file name, bytes), sorted by name.
    pub signatures: Vec<(String, Vec<u8>)>,
    /// Names under `blobs/`, sorted.
    pub blob_names: Vec<String>,
    blobs: Option<OwnedFd>,
}

fn open_dir(at: Option<&OwnedFd>, path: &Path, shown: &str) -> Result<OwnedFd, OpenError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let opened = match at {
        Some(dir) => rustix::fs::openat(dir, path, flags, Mode::empty()),
        None => rustix::fs::openat(rustix::fs::CWD, path, flags, Mode::empty()),
    };
    opened.map_err(|err| match err {
        rustix::io::Errno::LOOP => OpenError::Symlink(shown.to_owned()),
        rustix::io::Errno::NOTDIR => OpenError::NotDirectory {
            path: shown.to_owned(),
            reason: "not a directory".into(),
        },
        other => io(shown, other),
    })
}

/// Opens `name` under `dir` as a regular file with one link and at most `max` bytes.
fn open_file(dir: &OwnedFd, name: &str, max: u64) -> Result<(std::fs::File, u64), OpenError> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|err| match err {
        rustix::io::Errno::LOOP => OpenError::Symlink(name.to_owned()),
        other => io(name, other),
    })?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| io(name, e))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(OpenError::NotRegular(name.to_owned()));
    }
    if stat.st_nlink != 1 {
        return Err(OpenError::HardLink(name.to_owned()));
    }
    let size = u64::try_from(stat.st_size).unwrap_or(u64::MAX);
    if size > max {
        return Err(OpenError::TooLarge {
            name: name.to_owned(),
            size,
            max,
        });
    }
    Ok((std::fs::File::from(fd), size))
}

fn read_capped(file: std::fs::File, name: &str, max: u64) -> Result<Vec<u8>, OpenError> {
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io(name, e))?;
    if bytes.len() as u64 > max {
        return Err(OpenError::TooLarge {
            name: name.to_owned(),
            size: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

fn list(dir: &OwnedFd, shown: &str) -> Result<Vec<(String, FileType)>, OpenError> {
    let mut out = Vec::new();
    let entries = Dir::read_from(dir).map_err(|e| io(shown, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io(shown, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "." || name == ".." {
            continue;
        }
        out.push((name, entry.file_type()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Opens a bundle directory and reads its manifest and signatures.
pub fn open(path: &Path) -> Result<RawBundle, OpenError> {
    let shown = path.display().to_string();
    // `link/` (or `link/.`) names what the link points to: the kernel follows a link
    // at the last component when a slash comes after it, `O_NOFOLLOW` included. The
    // path's components, rejoined, end at the name itself.
    let path = &path.components().collect::<std::path::PathBuf>();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => return Err(OpenError::Symlink(shown)),
        Ok(meta) if !meta.is_dir() => {
            return Err(OpenError::NotDirectory {
                path: shown,
                reason: "a file".into(),
            });
        }
        Ok(_) => {}
        Err(err) => return Err(io(&shown, err)),
    }
    let dir = open_dir(None, path, &shown)?;
    let mut manifest = None;
    let mut signatures = Vec::new();
    let mut blobs = None;
    let entries = list(&dir, &shown)?;
    let count = entries
        .iter()
        .filter(|(name, _)| signature_key_id(name).is_some())
        .count();
    if count > MAX_SIGNATURE_FILES {
        return Err(OpenError::TooManySignatures { count });
    }
    for (name, kind) in entries {
        if name == MANIFEST {
            let max = crate::manifest::MAX_MANIFEST_BYTES as u64;
            let (file, _) = open_file(&dir, &name, max)?;
            manifest = Some(read_capped(file, &name, max)?);
        } else if signature_key_id(&name).is_some() {
            let max = MAX_MINISIG_BYTES as u64;
            let (file, _) = open_file(&dir, &name, max)?;
            signatures.push((name.clone(), read_capped(file, &name, max)?));
        } else if name == BLOBS {
            if kind == FileType::Symlink {
                return Err(OpenError::Symlink(name));
            }
            blobs = Some(open_dir(Some(&dir), Path::new(BLOBS), BLOBS)?);
        } else {
            return Err(OpenError::Unexpected(name.escape_debug().to_string()));
        }
    }
    let manifest = manifest.ok_or(OpenError::NoManifest)?;
    if signatures.is_empty() {
        return Err(OpenError::NoSignature);
    }
    let mut blob_names = Vec::new();
    if let Some(blobs) = &blobs {
        for (name, _) in list(blobs, BLOBS)? {
            if !crate::hex::is_lower_hex(&name, 64) {
                return Err(OpenError::BlobName(name.escape_debug().to_string()));
            }
            blob_names.push(name);
        }
    }
    Ok(RawBundle {
        manifest,
        signatures,
        blob_names,
        blobs,
    })
}

/// A blob read and hashed.
#[derive(Debug)]
pub struct Blob {
    pub blake3: String,
    pub size: u64,
    /// The bytes, when asked for (`keep`).
    pub bytes: Option<Vec<u8>>,
}

impl RawBundle {
    /// Reads `blobs/<name>` once (at most `max` bytes), hashing it as it streams; keeps
    /// the bytes when `keep`.
    pub fn read_blob(&self, name: &str, max: u64, keep: bool) -> Result<Blob, OpenError> {
        let shown = format!("{BLOBS}/{name}");
        let dir = self
            .blobs
            .as_ref()
            .ok_or_else(|| io(&shown, "no `blobs/` directory"))?;
        let (file, _) = open_file(dir, name, max).map_err(|e| match e {
            OpenError::Symlink(_) => OpenError::Symlink(shown.clone()),
            OpenError::NotRegular(_) => OpenError::NotRegular(shown.clone()),
            OpenError::HardLink(_) => OpenError::HardLink(shown.clone()),
            other => other,
        })?;
        let mut kept = keep.then(Vec::new);
        let streamed = crate::digest::hash_stream(file, max, |chunk| {
            if let Some(kept) = kept.as_mut() {
                kept.extend_from_slice(chunk);
            }
        })
        .map_err(|e| io(&shown, e))?;
        let size = streamed.size;
        if size > max {
            return Err(OpenError::TooLarge {
                name: shown,
                size,
                max,
            });
        }
        Ok(Blob {
            blake3: streamed.blake3.to_hex().to_string(),
            size,
            bytes: kept,
        })
    }
}
