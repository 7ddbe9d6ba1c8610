//! Reading `--trust`: a trust root (`trust-root.json` with its `.minisig` files beside
//! it), moved forward one version at a time, or a single minisign public key trusted
//! as the only plan-signer.

use std::path::{Path, PathBuf};

use provkey_core::keys::PublicKey;
use provkey_core::trust::TrustRoot;

#[derive(Debug, thiserror::Error)]
pub enum TrustLoadError {
    /// The file could not be read (a usage error).
    #[error("cannot read {what} `{}`: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The trust root itself is refused.
    #[error("trust root `{}` refused: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TrustLoadError> {
    std::fs::read(path).map_err(|source| TrustLoadError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// `FILE.<KEYID>.minisig` beside `FILE`.
fn signatures_beside(path: &Path) -> Result<Vec<Vec<u8>>, TrustLoadError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(base) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(Vec::new());
    };
    let entries = std::fs::read_dir(dir).map_err(|source| TrustLoadError::Read {
        what: "the directory of",
        path: path.to_path_buf(),
        source,
    })?;
    let mut names: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().map(|n| n.to_string_lossy()).is_some_and(|n| {
                n.strip_prefix(&format!("{base}."))
                    .and_then(|r| r.strip_suffix(".minisig"))
                    .is_some_and(|id| provkey_core::minisig::parse_key_id_hex(id).is_some())
            })
        })
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| read(p, "trust-root signature"))
        .collect()
}

fn refused(path: &Path, err: impl std::fmt::Display) -> TrustLoadError {
    TrustLoadError::Refused {
        path: path.to_path_buf(),
        reason: err.to_string(),
    }
}

/// Loads the trust root at `path` (or a single public key), then each update in order.
pub fn load_trust(path: &Path, updates: &[PathBuf], now: u64) -> Result<TrustRoot, TrustLoadError> {
    let bytes = read(path, "trust root")?;
    let mut trust = if bytes.starts_with(b"untrusted comment:") {
        let text = String::from_utf8_lossy(&bytes);
        TrustRoot::single_key(PublicKey::from_file_text(&text).map_err(|e| refused(path, e))?)
    } else {
        let sigs = signatures_beside(path)?;
        TrustRoot::load(&bytes, &sigs, now).map_err(|e| refused(path, e))?
    };
    for update in updates {
        let bytes = read(update, "trust root")?;
        let sigs = signatures_beside(update)?;
        trust = trust
            .rotate(&bytes, &sigs, now)
            .map_err(|e| refused(update, e))?;
    }
    Ok(trust)
}
