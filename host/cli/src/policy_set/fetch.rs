//! Where organization sets come from: a directory, or an HTTP/HTTPS URL (fetched
//! with `ureq` over rustls, with a global timeout and size limits). Components are
//! cached by blake3 digest under `<cache dir>/components/<blake3>.wasm`; a cached
//! file is used only when its digest is still the one asked for.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest component fetched.
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;
/// The whole time one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A published set's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Dir(PathBuf),
    Url(String),
}

impl Source {
    /// A URL (`http://`, `https://`), else a directory relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Source {
        if text.starts_with("http://") || text.starts_with("https://") {
            Source::Url(text.trim_end_matches('/').to_owned())
        } else {
            Source::Dir(base.join(text))
        }
    }

    pub fn display(&self) -> String {
        match self {
            Source::Dir(dir) => dir.display().to_string(),
            Source::Url(url) => url.clone(),
        }
    }

    /// The bytes of `name` (a relative path) at this source, at most `limit` bytes.
    pub fn get(&self, name: &str, limit: u64) -> Result<Vec<u8>, String> {
        match self {
            Source::Dir(dir) => {
                let path = dir.join(name);
                let max = usize::try_from(limit).unwrap_or(usize::MAX);
                provkey_runtime::read_bounded(&path, max).map_err(|e| e.to_string())
            }
            Source::Url(base) => {
                let url = format!("{base}/{name}");
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(TIMEOUT))
                    .http_status_as_error(true)
                    .build()
                    .into();
                let mut response = agent
                    .get(&url)
                    .call()
                    .map_err(|e| format!("GET `{url}`: {e}"))?;
                response
                    .body_mut()
                    .with_config()
                    .limit(limit)
                    .read_to_vec()
                    .map_err(|e| format!("GET `{url}`: {e}"))
            }
        }
    }
}

/// The component cache: `<cache dir>/components/`.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    pub fn new(cache_dir: Option<PathBuf>) -> Self {
        ComponentCache {
            dir: cache_dir.map(|d| d.join("components")),
        }
    }

    pub fn path(&self, blake3: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{blake3}.wasm")))
    }

    /// The cached component with this digest, if present and intact.
    pub fn get(&self, blake3: &str) -> Option<Vec<u8>> {
        let path = self.path(blake3)?;
        let bytes = std::fs::read(&path).ok()?;
        if provkey_core::blake3_hex(&bytes) == blake3 {
            tracing::info!("component {blake3} from the cache");
            Some(bytes)
        } else {
            tracing::warn!(
                "ignoring `{}`: its content does not match its digest",
                path.display()
            );
            None
        }
    }

    /// `<cache dir>/sets/<blake3>.json`, the signature beside it as `.minisig`.
    fn set_path(&self, blake3: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?.parent()?.join("sets");
        Some(dir.join(format!("{blake3}.json")))
    }

    /// A published set file with this digest and its signature, when both are cached
    /// (the signature is verified by the caller, as for a fetched one).
    pub fn get_set(&self, blake3: &str) -> Option<(Vec<u8>, Vec<u8>)> {
        let path = self.set_path(blake3)?;
        let bytes = std::fs::read(&path).ok()?;
        if provkey_core::blake3_hex(&bytes) != blake3 {
            tracing::warn!(
                "ignoring `{}`: its content does not match its digest",
                path.display()
            );
            return None;
        }
        let sig = std::fs::read(path.with_extension("minisig")).ok()?;
        tracing::info!("set {blake3} from the cache");
        Some((bytes, sig))
    }

    /// Caches a published set file and its signature (best effort).
    pub fn put_set(&self, bytes: &[u8], sig: &[u8]) {
        let Some(path) = self.set_path(&provkey_core::blake3_hex(bytes)) else {
            return;
        };
        if path.exists() && path.with_extension("minisig").exists() {
            return;
        }
        let stored = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| write_new(&path.with_extension("minisig"), sig))
            .and_then(|()| write_new(&path, bytes));
        if let Err(err) = stored {
            tracing::warn!("cannot cache set `{}`: {err}", path.display());
        }
    }

    /// Stores a component under its digest (best effort: a cache that cannot be
    /// written only costs a fetch next time).
    pub fn put(&self, bytes: &[u8]) {
        let Some(path) = self.path(&provkey_core::blake3_hex(bytes)) else {
            return;
        };
        if path.exists() {
            return;
        }
        let Some(dir) = path.parent() else {
            return;
        };
        let stored = std::fs::create_dir_all(dir)
            .and_then(|()| tempfile::NamedTempFile::new_in(dir))
            .and_then(|mut file| {
                std::io::Write::write_all(&mut file, bytes)?;
                file.persist(&path).map_err(|e| e.error)?;
                Ok(())
            });
        if let Err(err) = stored {
            tracing::warn!("cannot cache component `{}`: {err}", path.display());
        }
    }
}

/// Writes `path` whole, by a rename (a reader never sees half of it).
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
