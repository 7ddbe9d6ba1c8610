//! Content digests: artifact trees and instance configurations.
//!
//! # The artifact tree digest (`provkey-artifact-v1`)
//!
//! An artifact is a file or a directory tree. Its digest is `blake3:` followed by
//! the 64 lowercase hex digits of BLAKE3 over this byte stream:
//!
//! 1. the domain tag `provkey-artifact-v1` followed by one zero byte;
//! 2. for every entry, in ascending byte order of its relative path:
//!    - one kind byte: `d` for a directory, `f` for a regular file;
//!    - the relative path's length in bytes (u64, little-endian), then the path:
//!      UTF-8, components joined by `/`, no leading `./` or `/`;
//!    - for a file only: its mode (u32, little-endian), which is `0o755` when any
//!      execute bit is set and `0o644` otherwise (the executor deploys everything
//!      read-only, so only "executable or not" is meaningful), then its length
//!      (u64, little-endian), then its bytes.
//!
//! When the artifact is a directory, the entries are everything below it (the
//! directory itself is not an entry; an empty subdirectory is). When the artifact
//! is a single regular file, there is one entry: that file, with the empty path.
//! Symbolic links (including the root itself), FIFOs, sockets, devices and names
//! that are not UTF-8 are refused: an artifact is plain files and directories.
//!
//! # The configuration digest
//!
//! An instance's configuration is its `config` table and its `files` table. Its
//! digest is `blake3:` + hex of BLAKE3 over the RFC 8785 (JCS) canonical JSON of
//! `{"config": CONFIG, "files": FILES}` (an absent table is `{}`).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

/// The prefix of every provkey digest.
pub const DIGEST_PREFIX: &str = "blake3:";

const TREE_DOMAIN: &[u8] = b"provkey-artifact-v1\0";

/// Why an artifact tree could not be hashed.
#[derive(Debug, Error)]
pub enum DigestError {
    #[error("cannot read `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is a {kind}: an artifact holds only regular files and directories")]
    Unsupported { path: PathBuf, kind: &'static str },
    #[error("`{path}` has a name that is not UTF-8")]
    NotUtf8 { path: PathBuf },
    #[error("`{}` cannot be deployed: {why}", path.display())]
    PathTooLong { path: Box<Path>, why: Box<str> },
    #[error("`{path}` changed while it was being hashed")]
    Changed { path: PathBuf },
    #[error("cannot canonicalize the configuration: {0}")]
    Canonical(String),
}

/// Formats a BLAKE3 hash as a provkey digest: `blake3:<64 hex>`.
pub fn format_digest(hash: &blake3::Hash) -> String {
    format!("{DIGEST_PREFIX}{}", hash.to_hex())
}

/// Whether `text` is a well-formed provkey digest: `blake3:` and 64 lowercase hex digits.
pub fn is_digest(text: &str) -> bool {
    text.strip_prefix(DIGEST_PREFIX).is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The `provkey-artifact-v1` digest of the file or directory tree at `root`.
pub fn tree_digest(root: &Path) -> Result<String, DigestError> {
    let entries = list_tree(root)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(TREE_DOMAIN);
    for entry in &entries {
        hasher.update(if entry.is_dir { b"d" } else { b"f" });
        hasher.update(&(entry.relative.len() as u64).to_le_bytes());
        hasher.update(entry.relative.as_bytes());
        if !entry.is_dir {
            hash_file(&mut hasher, &entry.path)?;
        }
    }
    Ok(format_digest(&hasher.finalize()))
}

/// The digest of an instance's configuration (see the module documentation).
pub fn config_digest(config: &Value, files: &Value) -> Result<String, DigestError> {
    let empty = Value::Object(serde_json::Map::new());
    let config = if config.is_null() { &empty } else { config };
    let files = if files.is_null() { &empty } else { files };
    let both = serde_json::json!({"config": config, "files": files});
    let canonical = serde_json_canonicalizer::to_vec(&both)
        .map_err(|err| DigestError::Canonical(err.to_string()))?;
    Ok(format_digest(&blake3::hash(&canonical)))
}

/// A directory or regular file of an artifact tree on the host.
pub(crate) struct Entry {
    /// Relative, `/`-separated; empty for a single-file artifact.
    pub(crate) relative: String,
    pub(crate) path: PathBuf,
    pub(crate) is_dir: bool,
}

/// Every directory and regular file of the file or tree at `root`, sorted by path
/// bytes (the order of the digest stream); symbolic links and special files are
/// refused.
pub(crate) fn list_tree(root: &Path) -> Result<Vec<Entry>, DigestError> {
    let mut entries = Vec::new();
    let meta = symlink_metadata(root)?;
    if meta.is_file() {
        entries.push(Entry {
            relative: String::new(),
            path: root.to_path_buf(),
            is_dir: false,
        });
    } else if meta.is_dir() {
        walk(root, "", &mut entries)?;
    } else {
        return Err(unsupported(root, &meta));
    }
    entries.sort_by(|a, b| a.relative.as_bytes().cmp(b.relative.as_bytes()));
    Ok(entries)
}

fn walk(dir: &Path, prefix: &str, entries: &mut Vec<Entry>) -> Result<(), DigestError> {
    let io = |source| DigestError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for item in std::fs::read_dir(dir).map_err(io)? {
        let item = item.map_err(io)?;
        let path = item.path();
        let name = item
            .file_name()
            .into_string()
            .map_err(|_| DigestError::NotUtf8 { path: path.clone() })?;
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        // Bounded here, where the tree is read, so that a plan naming it is never
        // signed: the executor could not write such a path under its target.
        crate::desired::check_relative_file_path(&relative).map_err(|why| {
            DigestError::PathTooLong {
                path: path.clone().into_boxed_path(),
                why: why.into_boxed_str(),
            }
        })?;
        let meta = symlink_metadata(&path)?;
        if meta.is_dir() {
            entries.push(Entry {
                relative: relative.clone(),
                path: path.clone(),
                is_dir: true,
            });
            walk(&path, &relative, entries)?;
        } else if meta.is_file() {
            entries.push(Entry {
                relative,
                path,
                is_dir: false,
            });
        } else {
            return Err(unsupported(&path, &meta));
        }
    }
    Ok(())
}

fn hash_file(hasher: &mut blake3::Hasher, path: &Path) -> Result<(), DigestError> {
    let io = |source| DigestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(DigestError::Changed {
            path: path.to_path_buf(),
        });
    }
    let len = meta.len();
    hasher.update(&file_mode(&meta).to_le_bytes());
    hasher.update(&len.to_le_bytes());
    // Never more than the length already hashed, and exactly that much.
    let copied = std::io::copy(&mut file.take(len.saturating_add(1)), hasher).map_err(io)?;
    if copied != len {
        return Err(DigestError::Changed {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(unix)]
fn file_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    if meta.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

#[cfg(not(unix))]
fn file_mode(_meta: &std::fs::Metadata) -> u32 {
    0o644
}

fn symlink_metadata(path: &Path) -> Result<std::fs::Metadata, DigestError> {
    std::fs::symlink_metadata(path).map_err(|source| DigestError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn unsupported(path: &Path, meta: &std::fs::Metadata) -> DigestError {
    let kind = if meta.file_type().is_symlink() {
        "symbolic link"
    } else {
        special_kind(meta)
    };
    DigestError::Unsupported {
        path: path.to_path_buf(),
        kind,
    }
}

#[cfg(unix)]
fn special_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let t = meta.file_type();
    if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() || t.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_meta: &std::fs::Metadata) -> &'static str {
    "special file"
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn write(root: &Path, rel: &str, body: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }

    #[test]
    fn the_digest_follows_the_documented_stream() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "b.txt", "bee");
        write(dir.path(), "a/x", "ex");
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        // Sorted by path bytes: `a`, `a/x`, `b.txt`, `empty`.
        let mut s = Vec::new();
        s.extend_from_slice(b"provkey-artifact-v1\0");
        s.push(b'd');
        s.extend_from_slice(&1u64.to_le_bytes());
        s.extend_from_slice(b"a");
        for (rel, body) in [("a/x", "ex"), ("b.txt", "bee")] {
            s.push(b'f');
            s.extend_from_slice(&(rel.len() as u64).to_le_bytes());
            s.extend_from_slice(rel.as_bytes());
            s.extend_from_slice(&0o644u32.to_le_bytes());
            s.extend_from_slice(&(body.len() as u64).to_le_bytes());
            s.extend_from_slice(body.as_bytes());
        }
        s.push(b'd');
        s.extend_from_slice(&5u64.to_le_bytes());
        s.extend_from_slice(b"empty");
        let got = tree_digest(dir.path()).unwrap();
        assert_eq!(got, format_digest(&blake3::hash(&s)));
        assert!(is_digest(&got));
    }

    #[test]
    fn content_names_and_modes_change_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "bin/app", "v1");
        let first = tree_digest(dir.path()).unwrap();
        assert_eq!(first, tree_digest(dir.path()).unwrap());
        write(dir.path(), "bin/app", "v2");
        let second = tree_digest(dir.path()).unwrap();
        assert_ne!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let perms = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(dir.path().join("bin/app"), perms).unwrap();
            assert_ne!(second, tree_digest(dir.path()).unwrap());
        }
        std::fs::rename(dir.path().join("bin"), dir.path().join("sbin")).unwrap();
        assert_ne!(second, tree_digest(dir.path()).unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a", "x");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let err = tree_digest(dir.path()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }

    #[test]
    fn a_single_file_is_one_entry_with_the_empty_path() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "f", "abc");
        let mut s = Vec::new();
        s.extend_from_slice(b"provkey-artifact-v1\0f");
        s.extend_from_slice(&0u64.to_le_bytes());
        s.extend_from_slice(&0o644u32.to_le_bytes());
        s.extend_from_slice(&3u64.to_le_bytes());
        s.extend_from_slice(b"abc");
        assert_eq!(
            tree_digest(&dir.path().join("f")).unwrap(),
            format_digest(&blake3::hash(&s))
        );
    }

    #[test]
    fn the_config_digest_ignores_key_order() {
        let a = serde_json::json!({"b": 1, "a": {"y": 2, "x": 3}});
        let b = serde_json::json!({"a": {"x": 3, "y": 2}, "b": 1});
        let files = serde_json::json!({});
        assert_eq!(
            config_digest(&a, &files).unwrap(),
            config_digest(&b, &Value::Null).unwrap()
        );
        assert_ne!(
            config_digest(&a, &files).unwrap(),
            config_digest(&a, &serde_json::json!({"f": "x"})).unwrap()
        );
    }
}
