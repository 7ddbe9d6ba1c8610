//! The compilation cache: compiled components on disk, keyed by the blake3 digest
//! of the component bytes and of the engine's configuration.
//!
//! Deserializing a compiled module runs code it contains, so only what this host
//! wrote for exactly that component is ever loaded. Every entry starts with a line
//! holding a keyed blake3 MAC over the entry's kind, the engine's configuration, the
//! component's digest and the entry's content, keyed by a secret of this user's
//! (`entry-key`, created on the first write, private). An entry copied from another
//! component, flipped, truncated or written by anyone without the key fails the
//! MAC and is never deserialized: the component is compiled again. The directory
//! must also be owned by the current user and closed to others, and so must each
//! entry; an entry is opened without blocking and without following a link, and
//! anything but a regular file is refused.
//!
//! Beside each compiled policy the cache keeps the metadata the policy returned
//! (`<key>.metadata.json`): a guest has no capability that could make its
//! metadata change between two calls, so a cold check need not instantiate every
//! policy a second time just to ask it again (for Python and JavaScript policies,
//! a whole interpreter).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::Engine;
use wasmtime::component::Component;

use provkey_plan::PolicyMetadata;

use crate::error::RuntimeError;

/// Called with the component's name before a cache-miss compilation; what it
/// returns is dropped when the compilation ends. The CLI shows a spinner with it.
pub type CompileHook = fn(&str) -> Box<dyn std::any::Any>;

static COMPILE_HOOK: OnceLock<CompileHook> = OnceLock::new();

/// Sets the process-wide [`CompileHook`] (the first call wins).
pub fn set_compile_hook(hook: CompileHook) {
    let _ = COMPILE_HOOK.set(hook);
}

/// Where compiled components are kept, and what happened to each lookup.
#[derive(Debug)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: [u8; 32],
    /// This user's entry key, once read or created.
    secret: OnceLock<[u8; 32]>,
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
            secret: OnceLock::new(),
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
        self.entry_path(digest, COMPILED)
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
        let path = self.entry_path(digest, METADATA)?;
        let read = self
            .read_entry(&path, METADATA, digest)
            .and_then(|bytes| match bytes {
                Some(bytes) => serde_json::from_slice::<PolicyMetadata>(&bytes)
                    .map(Some)
                    .map_err(|err| err.to_string()),
                None => Ok(None),
            });
        match read {
            Ok(metadata) => metadata,
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
        let Some(path) = self.entry_path(digest, METADATA) else {
            return;
        };
        let written = serde_json::to_vec(metadata)
            .map_err(std::io::Error::other)
            .and_then(|bytes| self.write_entry(&path, METADATA, digest, &bytes));
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
        let component = self.try_load(engine, name, &path, digest)?;
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
        match self.store(&component, &path, digest) {
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

    fn try_load(
        &self,
        engine: &Engine,
        name: &str,
        path: &Path,
        digest: &blake3::Hash,
    ) -> Option<Component> {
        let loaded = self
            .read_entry(path, COMPILED, digest)
            .and_then(|bytes| match bytes {
                Some(bytes) => deserialize(engine, &bytes)
                    .map(Some)
                    .map_err(|err| format!("{err:#}")),
                None => Ok(None),
            });
        match loaded {
            Ok(Some(component)) => {
                tracing::info!(
                    policy = name,
                    "loaded component `{name}` from the compilation cache"
                );
                Some(component)
            }
            Ok(None) => None,
            Err(why) => {
                tracing::warn!(
                    "ignoring the compilation cache entry `{}`: {why}",
                    path.display()
                );
                None
            }
        }
    }

    fn store(
        &self,
        component: &Component,
        path: &Path,
        digest: &blake3::Hash,
    ) -> std::io::Result<()> {
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        self.write_entry(path, COMPILED, digest, &bytes)
    }

    /// This user's entry key: read from the cache directory, or (with `create`)
    /// made there if there is none yet. `None` when there is no usable key.
    fn secret(&self, create: bool) -> Result<Option<&[u8; 32]>, String> {
        if let Some(secret) = self.secret.get() {
            return Ok(Some(secret));
        }
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let path = dir.join(KEY_FILE);
        let read = |path: &Path| -> Result<Option<[u8; 32]>, String> {
            let Some(bytes) = read_private_file(path, 64)? else {
                return Ok(None);
            };
            <[u8; 32]>::try_from(bytes.as_slice())
                .map(Some)
                .map_err(|_| format!("the key `{}` is not 32 bytes", path.display()))
        };
        if !dir.exists() {
            if !create {
                return Ok(None);
            }
            create_private_dir(dir).map_err(|err| err.to_string())?;
        }
        check_private(dir)?;
        let secret = match read(&path)? {
            Some(secret) => secret,
            None if create => {
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret).map_err(|err| err.to_string())?;
                // Another process may be making it at the same time: the first wins.
                match write_private_new(&path, &secret) {
                    Ok(()) => secret,
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => read(&path)?
                        .ok_or_else(|| format!("the key `{}` vanished", path.display()))?,
                    Err(err) => return Err(err.to_string()),
                }
            }
            None => return Ok(None),
        };
        Ok(Some(self.secret.get_or_init(|| secret)))
    }

    /// The MAC binding `content` to this user's key, the entry's kind, the engine
    /// and the component's digest.
    fn mac(&self, secret: &[u8; 32], kind: &str, digest: &blake3::Hash, content: &[u8]) -> String {
        let mut mac = blake3::Hasher::new_keyed(secret);
        mac.update(ENTRY_MAGIC.as_bytes())
            .update(kind.as_bytes())
            .update(&[0])
            .update(&self.engine_key)
            .update(digest.as_bytes())
            .update(&(content.len() as u64).to_le_bytes())
            .update_rayon(content);
        mac.finalize().to_hex().to_string()
    }

    /// The authenticated content of an entry: `None` when there is no entry (or no
    /// key, so no entry could be ours); an error, never content, for anything that
    /// fails a check.
    fn read_entry(
        &self,
        path: &Path,
        kind: &str,
        digest: &blake3::Hash,
    ) -> Result<Option<Vec<u8>>, String> {
        if !path.exists() {
            return Ok(None);
        }
        let dir = path
            .parent()
            .ok_or_else(|| "the cache path has no parent".to_string())?;
        check_private(dir)?;
        let Some(secret) = self.secret(false)? else {
            return Err("there is no entry key to check it with".to_string());
        };
        let Some(mut bytes) = read_private_file(path, MAX_ENTRY_BYTES)? else {
            return Ok(None);
        };
        let header_len = ENTRY_MAGIC.len() + 1 + 64 + 1;
        let header = bytes
            .get(..header_len)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| h.strip_prefix(ENTRY_MAGIC))
            .and_then(|h| h.strip_prefix(' '))
            .and_then(|h| h.strip_suffix('\n'))
            .ok_or_else(|| "it has no entry header (written by another program?)".to_string())?;
        let expected = self.mac(secret, kind, digest, &bytes[header_len..]);
        // Both are hex of a blake3 output: compared as hashes, in constant time.
        let matches = blake3::Hash::from_hex(header)
            .ok()
            .zip(blake3::Hash::from_hex(&expected).ok())
            .is_some_and(|(a, b)| a == b);
        if !matches {
            return Err(
                "its MAC does not match: it was not written by this host for this component"
                    .to_string(),
            );
        }
        bytes.drain(..header_len);
        Ok(Some(bytes))
    }

    /// Writes an entry with its MAC line in front (creating the key if needed).
    fn write_entry(
        &self,
        path: &Path,
        kind: &str,
        digest: &blake3::Hash,
        content: &[u8],
    ) -> std::io::Result<()> {
        let secret = self
            .secret(true)
            .map_err(std::io::Error::other)?
            .ok_or_else(|| std::io::Error::other("no cache directory"))?;
        let mac = self.mac(secret, kind, digest, content);
        let mut bytes = Vec::with_capacity(ENTRY_MAGIC.len() + 66 + content.len());
        bytes.extend_from_slice(ENTRY_MAGIC.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(mac.as_bytes());
        bytes.push(b'\n');
        bytes.extend_from_slice(content);
        write_private(path, &bytes)
    }
}

/// The kinds of entry, each its file extension.
const COMPILED: &str = "cwasm";
const METADATA: &str = "metadata.json";

/// The first word of every entry, and the MAC's domain.
const ENTRY_MAGIC: &str = "provkey-cache-entry-v1";

/// The file holding this user's entry key, in the cache directory.
const KEY_FILE: &str = "entry-key";

/// No compiled component comes near this; a larger file is not read.
const MAX_ENTRY_BYTES: u64 = 1 << 30;

/// Reads a cache file that must be a regular file of this user's, closed to others:
/// opened without following a link and without blocking (a FIFO never holds the
/// check up), then checked through the open descriptor. `None` if there is none.
fn read_private_file(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, String> {
    use rustix::fs::{Mode, OFlags};
    let fd = match rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP) => return Err("it is a symbolic link".to_string()),
        Err(err) => return Err(err.to_string()),
    };
    let file = fs::File::from(fd);
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.file_type().is_file() {
        return Err("it is not a regular file".to_string());
    }
    check_owner_and_mode(&meta)?;
    if meta.len() > limit {
        return Err(format!("it is {} bytes, over {limit}", meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("it grew past {limit} bytes while read"));
    }
    Ok(Some(bytes))
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

/// Writes a file readable and writable by this user only, failing with
/// `AlreadyExists` if there is one.
fn write_private_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("cache path has no parent"))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[expect(
    unsafe_code,
    reason = "deserializing a compiled component this host wrote and authenticated"
)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `read_entry` checked the bytes' MAC under this user's private key,
    // over this engine's configuration and this component's digest: they are what
    // this host serialized for exactly this component.
    unsafe { Component::deserialize(engine, bytes) }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new().recursive(true).create(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The directory must belong to this user and be writable by nobody else.
fn check_private(path: &Path) -> Result<(), String> {
    let meta = fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if meta.file_type().is_symlink() {
        return Err("it is a symbolic link".to_string());
    }
    check_owner_and_mode(&meta)
}

fn check_owner_and_mode(meta: &fs::Metadata) -> Result<(), String> {
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
