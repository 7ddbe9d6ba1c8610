//! The content-addressed artifact store: `store/blobs/<blake3>` (read-only files) and
//! `store/trees/<hex>.json` (the tree listing of each artifact, by its digest).
//!
//! A blob is only ever read back through [`Store::read_blob`], which checks its
//! digest: a store edited by hand is detected, never deployed.

use std::io::{self, Write as _};

use cap_std::fs::Dir;
use provkey_core::bundle::RawBundle;
use provkey_desired::TreeListing;

use crate::fsio::{create_new, open_regular, read_capped, remove_entry, sync_dir};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the artifact store: {0}")]
    Io(#[from] io::Error),
    #[error("store blob `{0}` does not match its digest")]
    Corrupt(String),
    #[error("blob `{name}` of the bundle: {reason}")]
    Bundle { name: String, reason: String },
    #[error("artifact `{digest}`: {reason}")]
    Tree { digest: String, reason: String },
}

/// The store's two directories.
#[derive(Debug, Clone, Copy)]
pub struct Store<'a> {
    pub blobs: &'a Dir,
    pub trees: &'a Dir,
}

/// `store/trees/<hex>.json` for `blake3:<hex>`.
pub fn tree_file(digest: &str) -> String {
    format!(
        "{}.json",
        digest
            .strip_prefix(provkey_desired::digest::DIGEST_PREFIX)
            .unwrap_or(digest)
    )
}

/// Writes `name` in `dir` through a temporary file, synced, made read-only, renamed.
/// (The caller syncs the directory.)
pub fn put_file(dir: &Dir, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = format!(".{name}.tmp");
    remove_entry(dir, &tmp)?;
    let mut file = create_new(dir, &tmp, 0o600)?;
    file.write_all(bytes)?;
    set_mode(&file, mode)?;
    file.sync_all()?;
    dir.rename(&tmp, dir, name)
}

/// fchmod on an open file (never a path: a link is never followed).
pub fn set_mode(file: &cap_std::fs::File, mode: u32) -> io::Result<()> {
    use cap_std::fs::PermissionsExt as _;
    file.set_permissions(cap_std::fs::Permissions::from_mode(mode))
}

impl Store<'_> {
    /// The blob's bytes, checked against its digest and size.
    pub fn read_blob(&self, blake3: &str, size: u64) -> Result<Vec<u8>, StoreError> {
        let file = open_regular(self.blobs, blake3)?;
        let bytes = read_capped(file, blake3, size)?;
        if bytes.len() as u64 != size || provkey_core::blake3_hex(&bytes) != blake3 {
            return Err(StoreError::Corrupt(blake3.to_owned()));
        }
        Ok(bytes)
    }

    /// The listing of artifact `digest`, when the store has it (and it is well formed).
    pub fn tree(&self, digest: &str) -> Option<TreeListing> {
        let file = open_regular(self.trees, &tree_file(digest)).ok()?;
        let bytes = read_capped(file, digest, 64 << 20).ok()?;
        TreeListing::from_slice(&bytes)
            .ok()
            .filter(|l| l.digest == digest)
    }

    /// Whether every file of `listing` is in the store and the artifact digest
    /// recomputed from their bytes is `listing.digest`.
    pub fn verify_tree(&self, listing: &TreeListing) -> Result<(), StoreError> {
        let recomputed = listing.digest_with(|entry, hasher| {
            let (b3, _, size) = entry.file().ok_or_else(|| StoreError::Tree {
                digest: listing.digest.clone(),
                reason: "malformed entry".into(),
            })?;
            hasher.update(&self.read_blob(b3, size)?);
            Ok::<(), StoreError>(())
        })?;
        if recomputed != listing.digest {
            return Err(StoreError::Tree {
                digest: listing.digest.clone(),
                reason: format!("its files hash to `{recomputed}`"),
            });
        }
        Ok(())
    }

    /// Imports artifact `listing` (from the bundle's blobs where the store lacks or
    /// has a damaged copy), checks the recomputed artifact digest, records the listing.
    pub fn import(&self, listing: &TreeListing, bundle: &RawBundle) -> Result<(), StoreError> {
        for entry in &listing.entries {
            let Some((b3, _, size)) = entry.file() else {
                continue;
            };
            if self.read_blob(b3, size).is_ok() {
                continue;
            }
            let blob = bundle
                .read_blob(b3, size, true)
                .map_err(|e| StoreError::Bundle {
                    name: b3.to_owned(),
                    reason: e.to_string(),
                })?;
            let bytes = blob.bytes.unwrap_or_default();
            if blob.blake3 != b3 || bytes.len() as u64 != size {
                return Err(StoreError::Bundle {
                    name: b3.to_owned(),
                    reason: "does not match its digest or size".into(),
                });
            }
            put_file(self.blobs, b3, &bytes, 0o444)?;
        }
        sync_dir(self.blobs)?;
        self.verify_tree(listing)?;
        let bytes = listing.to_canonical().map_err(|reason| StoreError::Tree {
            digest: listing.digest.clone(),
            reason,
        })?;
        put_file(self.trees, &tree_file(&listing.digest), &bytes, 0o444)?;
        sync_dir(self.trees)?;
        Ok(())
    }
}
