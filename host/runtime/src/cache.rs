//! The compilation cache: compiled components on disk, keyed by the blake3 digest
//! of the component bytes and of the engine's configuration.
//!
//! Deserializing a compiled module runs code it contains, so only files this host
//! wrote are ever loaded: the cache directory must be owned by the current user
//! and closed to others, and so must each file in it.
//!
//! Beside each compiled policy the cache keeps the metadata the policy returned
//! (`<key>.metadata.json`): a guest has no capability that could make its
//! metadata change between two calls, so a cold check need not instantiate every
//! policy a second time just to ask it again (for Python and JavaScript policies,
//! a whole interpreter).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::Engine;
use wasmtime::component::Component;

use provkey_plan::PolicyMetadata;

use crate::error::RuntimeError;

/// Called with the component's name before a cache-miss compilation; what it
/// returns is dropped when the compilation ends. The CLI shows a spinner with it.
pub type CompileHook = fn(&str) -> Box<dyn std::any::Any>;

static COMPILE_HOOK: std::sync::OnceLock<CompileHook> = std::sync::OnceLock::new();

/// Sets the process-wide [`CompileHook`] (the first call wins).
pub fn set_compile_hook(hook: CompileHook) {
    let _ = COMPILE_HOOK.set(hook);
}

/// Where compiled components are kept, and what happened to each lookup.
#[derive(Debug)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: [u8; 32],
    hits: AtomicUsize,
    misses: AtomicUsize,
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from the cache: no compilation.
    Hit,
    /// Compiled, then stored in the cache.
    Compiled,
    /// Compiled; there is no cache (disabled or unusable).
    CompiledUncached,
}

/// Feeds `Hash` output into blake3, so the engine's compatibility hash can be part
/// of the key.
struct Blake3Hasher(blake3::Hasher);

impl std::hash::Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.as_bytes()[..8]);
        u64::from_le_bytes(first)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl CompileCache {
    /// The default location: `$PROVKEY_CACHE_DIR`, else the user's cache directory.
    pub fn default_dir() -> Option<PathBuf> {
        match std::env::var_os("PROVKEY_CACHE_DIR") {
            Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
            _ => dirs::cache_dir().map(|d| d.join("provkey")),
        }
    }

    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        use std::hash::Hash;
        let mut hasher = Blake3Hasher(blake3::Hasher::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hasher.0.update(env!("CARGO_PKG_VERSION").as_bytes());
        CompileCache {
            dir: dir.map(|d| d.join("compiled")),
            engine_key: *hasher.0.finalize().as_bytes(),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn misses(&self) -> usize {
        self.misses.load(Ordering::Relaxed)
    }

    fn path_for(&self, digest: &blake3::Hash) -> Option<PathBuf> {
        self.entry_path(digest, "cwasm")
    }

    /// `<key>.<extension>` in the cache directory, where the key covers the engine's
    /// configuration, this provkey's version and the component's digest.
    fn entry_path(&self, digest: &blake3::Hash, extension: &str) -> Option<PathBuf> {
        let mut key = blake3::Hasher::new();
        key.update(&self.engine_key);
        key.update(digest.as_bytes());
        let name = format!("{}.{extension}", key.finalize().to_hex());
        self.dir.as_ref().map(|d| d.join(name))
    }

    /// The metadata a policy returned when this cache last loaded it, if the entry is
    /// there, private and readable. Anything else is ignored (with a warning when the
    /// entry exists), and the caller asks the policy again.
    pub(crate) fn policy_metadata(&self, digest: &blake3::Hash) -> Option<PolicyMetadata> {
        let path = self.entry_path(digest, "metadata.json")?;
        if !path.exists() {
            return None;
        }
        let read = check_entry(&path)
            .and_then(|()| fs::read(&path).map_err(|err| err.to_string()))
            .and_then(|bytes| {
                serde_json::from_slice::<PolicyMetadata>(&bytes).map_err(|err| err.to_string())
            });
        match read {
            Ok(metadata) => Some(metadata),
            Err(why) => {
                tracing::warn!(
                    "ignoring the compilation cache entry `{}`: {why}",
                    path.display()
                );
                None
            }
        }
    }

    /// Keeps a policy's metadata beside its compiled form. A failure only costs the
    /// next run one instantiation, so it is logged, not returned.
    pub(crate) fn store_policy_metadata(&self, digest: &blake3::Hash, metadata: &PolicyMetadata) {
        let Some(path) = self.entry_path(digest, "metadata.json") else {
            return;
        };
        let written = serde_json::to_vec(metadata)
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_private(&path, &bytes));
        if let Err(err) = written {
            tracing::warn!(
                "cannot write the compilation cache `{}`: {err}",
                path.display()
            );
        }
    }

    /// The compiled form of the component whose digest is `digest`, if the cache
    /// holds it: no compilation, and the component's bytes are not needed.
    pub fn load(&self, engine: &Engine, name: &str, digest: &blake3::Hash) -> Option<Component> {
        let path = self.path_for(digest)?;
        let component = self.try_load(engine, name, &path)?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(component)
    }

    /// Loads the compiled form of `bytes` from the cache, or compiles and stores it.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        name: &str,
        bytes: &[u8],
        digest: &blake3::Hash,
    ) -> Result<(Component, CacheOutcome), RuntimeError> {
        if let Some(component) = self.load(engine, name, digest) {
            return Ok((component, CacheOutcome::Hit));
        }
        let path = self.path_for(digest);
        self.misses.fetch_add(1, Ordering::Relaxed);
        // A progress indicator, if the embedder set one, lives while compiling.
        let _progress = COMPILE_HOOK.get().map(|hook| hook(name));
        let started = std::time::Instant::now();
        let component = Component::new(engine, bytes).map_err(|source| RuntimeError::Compile {
            name: name.to_string(),
            source,
        })?;
        tracing::info!(
            policy = name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled component `{name}` (not in the compilation cache)"
        );
        let Some(path) = path else {
            return Ok((component, CacheOutcome::CompiledUncached));
        };
        match self.store(&component, &path) {
            Ok(()) => Ok((component, CacheOutcome::Compiled)),
            Err(err) => {
                tracing::warn!(
                    "cannot write the compilation cache `{}`: {err}",
                    path.display()
                );
                Ok((component, CacheOutcome::CompiledUncached))
            }
        }
    }

    fn try_load(&self, engine: &Engine, name: &str, path: &Path) -> Option<Component> {
        if !path.exists() {
            return None;
        }
        if let Err(why) = check_entry(path) {
            tracing::warn!(
                "ignoring the compilation cache entry `{}`: {why}",
                path.display()
            );
            return None;
        }
        match deserialize(engine, path) {
            Ok(component) => {
                tracing::info!(
                    policy = name,
                    "loaded component `{name}` from the compilation cache"
                );
                Some(component)
            }
            Err(err) => {
                tracing::warn!(
                    "ignoring the compilation cache entry `{}`: {err}",
                    path.display()
                );
                None
            }
        }
    }

    fn store(&self, component: &Component, path: &Path) -> std::io::Result<()> {
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        write_private(path, &bytes)
    }
}

/// Writes a cache entry readable and writable by this user only. Write, sync,
/// rename: a crash leaves the old entry or the new one, never half of one.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("cache path has no parent"))?;
    create_private_dir(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[expect(
    unsafe_code,
    reason = "deserializing a compiled component we wrote ourselves"
)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `try_load` checked that the file and its directory belong to this
    // user and are closed to others; only this host writes there.
    unsafe { Component::deserialize_file(engine, path) }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new().recursive(true).create(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A cache entry is trusted only if it and its directory are private to this user.
fn check_entry(path: &Path) -> Result<(), String> {
    let dir = path
        .parent()
        .ok_or_else(|| "the cache path has no parent".to_string())?;
    check_private(dir).and_then(|()| check_private(path))
}

/// The file must belong to this user and be writable by nobody else.
fn check_private(path: &Path) -> Result<(), String> {
    let meta = fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if meta.file_type().is_symlink() {
        return Err("it is a symbolic link".to_string());
    }
    let uid = rustix::process::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(format!("it is owned by uid {}, not {uid}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "its mode {:o} lets others write to it",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}
