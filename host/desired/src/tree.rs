//! The tree listing: how a sealed bundle carries an artifact tree to the executor.
//!
//! A bundle holds every file of an artifact as a content-addressed blob, and one
//! listing blob per artifact (canonical JSON):
//!
//! ```json
//! {"format": "provkey-tree", "format_version": "0.1",
//!  "digest": "blake3:…",                       // the provkey-artifact-v1 digest
//!  "entries": [{"path": "bin", "kind": "dir"},
//!              {"path": "bin/hello", "kind": "file", "mode": 493, "size": 12,
//!               "blake3": "…64 hex…"}]}
//! ```
//!
//! Entries are sorted by path bytes, as in the digest stream (see [`crate::digest`]);
//! a single-file artifact has one `file` entry with the empty path. The listing does
//! not authenticate the content by itself: the executor recomputes the
//! `provkey-artifact-v1` digest from the blobs' bytes ([`TreeListing::digest_with`])
//! and compares it with the digest the signed plan names.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::desired::check_relative_file_path;
use crate::digest::{DigestError, format_digest, is_digest};

/// The `format` of a tree listing.
pub const TREE_FORMAT: &str = "provkey-tree";
/// The version of the tree-listing format.
pub const TREE_FORMAT_VERSION: &str = "0.1";
const TREE_DOMAIN: &[u8] = b"provkey-artifact-v1\0";

/// An artifact tree: its digest and its entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeListing {
    pub format: String,
    pub format_version: String,
    /// `blake3:<hex>`, the `provkey-artifact-v1` digest of the tree.
    pub digest: String,
    pub entries: Vec<TreeEntry>,
}

/// A directory or a regular file of an artifact tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeEntry {
    /// Relative, `/`-separated; empty only for a single-file artifact.
    pub path: String,
    pub kind: EntryKind,
    /// Files: `0o755` (executable) or `0o644`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Files: the length in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Files: blake3 of the content, 64 lowercase hex digits (the blob's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Dir,
    File,
}

/// A file of a tree on the host, to be stored as a blob.
#[derive(Debug, Clone)]
pub struct HostFile {
    pub blake3: String,
    pub size: u64,
    pub path: PathBuf,
}

impl TreeEntry {
    /// A file entry's blake3, mode and size (`None` for directories or malformed entries).
    pub fn file(&self) -> Option<(&str, u32, u64)> {
        match (self.kind, &self.blake3, self.mode, self.size) {
            (EntryKind::File, Some(b), Some(m), Some(s)) => Some((b.as_str(), m, s)),
            _ => None,
        }
    }
}

impl TreeListing {
    /// Walks the file or directory at `root` (symbolic links and special files are
    /// refused, as for [`crate::tree_digest`]) and returns its listing and files.
    pub fn from_path(root: &Path) -> Result<(TreeListing, Vec<HostFile>), DigestError> {
        let found = crate::digest::list_tree(root)?;
        let mut entries = Vec::new();
        let mut files = Vec::new();
        for crate::digest::Entry {
            relative,
            path,
            is_dir,
        } in found
        {
            if is_dir {
                entries.push(TreeEntry {
                    path: relative,
                    kind: EntryKind::Dir,
                    mode: None,
                    size: None,
                    blake3: None,
                });
                continue;
            }
            let (blake3, size, mode) = hash_host_file(&path)?;
            entries.push(TreeEntry {
                path: relative,
                kind: EntryKind::File,
                mode: Some(mode),
                size: Some(size),
                blake3: Some(blake3.clone()),
            });
            files.push(HostFile { blake3, size, path });
        }
        let mut listing = TreeListing {
            format: TREE_FORMAT.into(),
            format_version: TREE_FORMAT_VERSION.into(),
            digest: String::new(),
            entries,
        };
        let by_digest: std::collections::BTreeMap<&str, &Path> = files
            .iter()
            .map(|f| (f.blake3.as_str(), f.path.as_path()))
            .collect();
        listing.digest = listing.digest_with(|entry, hasher| {
            let (b3, _, size) = entry.file().ok_or_else(|| changed(root))?;
            let path = by_digest.get(b3).copied().ok_or_else(|| changed(root))?;
            let io = |source| DigestError::Io {
                path: path.to_path_buf(),
                source,
            };
            let file = std::fs::File::open(path).map_err(io)?;
            let mut check = blake3::Hasher::new();
            let mut reader = file.take(size.saturating_add(1));
            let mut buf = vec![0u8; 1 << 16];
            let mut read = 0u64;
            loop {
                let n = reader.read(&mut buf).map_err(io)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                check.update(&buf[..n]);
                read += n as u64;
            }
            if read != size || check.finalize().to_hex().as_str() != b3 {
                return Err(changed(path));
            }
            Ok(())
        })?;
        Ok((listing, files))
    }

    /// Checks the listing's shape: format, digest spelling, sorted unique safe paths,
    /// file fields present exactly on files.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != TREE_FORMAT || self.format_version != TREE_FORMAT_VERSION {
            return Err(format!(
                "not a `{TREE_FORMAT}` `{TREE_FORMAT_VERSION}` listing"
            ));
        }
        if !is_digest(&self.digest) {
            return Err(format!("`{}` is not a digest", self.digest));
        }
        for pair in self.entries.windows(2) {
            if pair[0].path.as_bytes() >= pair[1].path.as_bytes() {
                return Err("entries must be sorted by path without duplicates".into());
            }
        }
        let single_file = self.entries.len() == 1 && self.entries[0].path.is_empty();
        for e in &self.entries {
            if !(single_file && e.path.is_empty())
                && let Err(why) = check_relative_file_path(&e.path)
            {
                return Err(format!("entry path {why} inside the artifact"));
            }
            match e.kind {
                EntryKind::Dir if e.mode.is_some() || e.size.is_some() || e.blake3.is_some() => {
                    return Err(format!(
                        "directory `{}` has file fields",
                        e.path.escape_default()
                    ));
                }
                EntryKind::Dir if single_file => {
                    return Err("a single-file artifact is one file".into());
                }
                EntryKind::File => {
                    let Some((b3, mode, _)) = e.file() else {
                        return Err(format!(
                            "file `{}` lacks `mode`, `size` or `blake3`",
                            e.path.escape_default()
                        ));
                    };
                    if !(mode == 0o644 || mode == 0o755)
                        || b3.len() != 64
                        || !b3
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    {
                        return Err(format!(
                            "file `{}` has a bad mode or blake3",
                            e.path.escape_default()
                        ));
                    }
                }
                EntryKind::Dir => {}
            }
        }
        // Every parent directory is listed before its children.
        let dirs: std::collections::BTreeSet<&str> = self
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Dir)
            .map(|e| e.path.as_str())
            .collect();
        for e in &self.entries {
            if let Some((parent, _)) = e.path.rsplit_once('/')
                && !dirs.contains(parent)
            {
                return Err(format!(
                    "`{}` is listed without its directory `{parent}`",
                    e.path.escape_default()
                ));
            }
        }
        Ok(())
    }

    /// Recomputes the `provkey-artifact-v1` digest: `content` feeds each file's bytes
    /// (exactly its `size`) into the hasher, in entry order.
    pub fn digest_with<E>(
        &self,
        mut content: impl FnMut(&TreeEntry, &mut blake3::Hasher) -> Result<(), E>,
    ) -> Result<String, E> {
        let mut hasher = blake3::Hasher::new();
        hasher.update(TREE_DOMAIN);
        for entry in &self.entries {
            match entry.kind {
                EntryKind::Dir => {
                    hasher.update(b"d");
                    hasher.update(&(entry.path.len() as u64).to_le_bytes());
                    hasher.update(entry.path.as_bytes());
                }
                EntryKind::File => {
                    hasher.update(b"f");
                    hasher.update(&(entry.path.len() as u64).to_le_bytes());
                    hasher.update(entry.path.as_bytes());
                    hasher.update(&entry.mode.unwrap_or(0o644).to_le_bytes());
                    hasher.update(&entry.size.unwrap_or(0).to_le_bytes());
                    content(entry, &mut hasher)?;
                }
            }
        }
        Ok(format_digest(&hasher.finalize()))
    }

    /// The canonical JSON bytes (RFC 8785) of the listing: what the bundle stores.
    pub fn to_canonical(&self) -> Result<Vec<u8>, String> {
        serde_json_canonicalizer::to_vec(self).map_err(|e| e.to_string())
    }

    /// Parses and validates listing bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<TreeListing, String> {
        let listing: TreeListing = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        listing.validate()?;
        Ok(listing)
    }
}

fn changed(path: &Path) -> DigestError {
    DigestError::Changed {
        path: path.to_path_buf(),
    }
}

fn hash_host_file(path: &Path) -> Result<(String, u64, u32), DigestError> {
    let io = |source| DigestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(changed(path));
    }
    let mut hasher = blake3::Hasher::new();
    let size =
        std::io::copy(&mut file.take(meta.len().saturating_add(1)), &mut hasher).map_err(io)?;
    if size != meta.len() {
        return Err(changed(path));
    }
    Ok((hasher.finalize().to_hex().to_string(), size, mode_of(&meta)))
}

/// `0o755` when any execute bit is set, else `0o644` (as the digest stream records it).
#[cfg(unix)]
pub fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    if meta.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

#[cfg(not(unix))]
pub fn mode_of(_meta: &std::fs::Metadata) -> u32 {
    0o644
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn the_listing_reproduces_the_tree_digest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/empty")).unwrap();
        std::fs::write(dir.path().join("a/x"), "ex").unwrap();
        std::fs::write(dir.path().join("b"), "bee").unwrap();
        std::fs::write(dir.path().join("dup"), "bee").unwrap();
        let (listing, files) = TreeListing::from_path(dir.path()).unwrap();
        assert_eq!(listing.digest, crate::tree_digest(dir.path()).unwrap());
        listing.validate().unwrap();
        assert_eq!(files.len(), 3);
        let again = TreeListing::from_slice(&listing.to_canonical().unwrap()).unwrap();
        assert_eq!(again, listing);
        let single = dir.path().join("b");
        let (one, _) = TreeListing::from_path(&single).unwrap();
        assert_eq!(one.digest, crate::tree_digest(&single).unwrap());
        one.validate().unwrap();
    }

    #[test]
    fn unsafe_paths_and_orphans_are_refused() {
        let entry = |path: &str| TreeEntry {
            path: path.into(),
            kind: EntryKind::File,
            mode: Some(0o644),
            size: Some(0),
            blake3: Some("0".repeat(64)),
        };
        let long_name = "n".repeat(256);
        let long_path = ["d"; 600].join("/");
        let deep = ["d"; 65].join("/");
        for bad in [
            "../x",
            "/etc/passwd",
            "a/../../x",
            "a//b",
            "a/b",
            &long_name,
            &long_path,
            &deep,
        ] {
            let listing = TreeListing {
                format: TREE_FORMAT.into(),
                format_version: TREE_FORMAT_VERSION.into(),
                digest: format!("blake3:{}", "0".repeat(64)),
                entries: vec![entry(bad)],
            };
            assert!(listing.validate().is_err(), "{bad}");
        }
    }
}
