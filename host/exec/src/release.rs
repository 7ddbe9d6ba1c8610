//! Releases and live pointers.
//!
//! An instance version is materialized as a new read-only release,
//! `releases/<name>-<id>/` (`artifact/` from the store, `config.json`, `files/`),
//! staged beside it as `releases/.stage-<name>-<id>/`, made read-only (every file and
//! directory, its own mode included) and only then renamed into place whole. Its id is
//! derived from the instance's address, artifact digest and configuration digest, so
//! re-running an interrupted apply finds (and rechecks, directory modes included) the
//! release it already built. The live
//! pointer `live/<name>` is a symbolic link `../releases/<name>-<id>`, replaced
//! atomically by renaming a new link over it. Nothing here follows a link.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write as _};

use cap_fs_ext::DirExt as _;
use cap_std::fs::Dir;
use provkey_desired::{EntryKind, TreeListing};
use serde_json::Value;

use crate::failpoint;
use crate::fsio::{create_new, open_regular, read_capped, remove_entry, sync_dir};
use crate::store::{Store, StoreError, set_mode};
use crate::target::{Layout, RELEASES};

/// An instance as the executor deploys it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub address: String,
    pub name: String,
    /// `blake3:<hex>` of the artifact it runs.
    pub artifact_digest: String,
    /// `blake3:<hex>` of `{"config", "files"}`.
    pub config_digest: String,
    pub config: Value,
    /// Relative path → content.
    pub files: BTreeMap<String, String>,
}

impl Instance {
    /// The release directory's name: `<name>-<24 hex>`.
    pub fn release_id(&self) -> String {
        release_id(
            &self.name,
            &self.address,
            &self.artifact_digest,
            &self.config_digest,
        )
    }

    fn config_bytes(&self) -> Vec<u8> {
        serde_json_canonicalizer::to_vec(&self.config).unwrap_or_default()
    }
}

/// `<name>-<24 hex of blake3(domain, address, artifact digest, config digest)>`.
pub fn release_id(name: &str, address: &str, artifact: &str, config: &str) -> String {
    let mut h = blake3::Hasher::new();
    for part in ["provkey-release-v1", address, artifact, config] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    let hex = h.finalize().to_hex();
    format!("{name}-{}", &hex.as_str()[..24])
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("release `{id}`: {source}")]
    Io {
        id: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("release `{id}` does not match what was built: {detail}")]
    Mismatch { id: String, detail: String },
}

/// What a deployed release differs in from what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Relative to the release directory: `artifact/bin/hello`, `config.json`, …
    pub path: String,
    pub change: Change,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Added,
    Removed,
    Modified,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Modified => "modified",
        }
    }
}

/// The mode of every directory of a release, its own included.
const DIR_MODE: u32 = 0o555;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir { mode: u32 },
    File { blake3: String, mode: u32 },
    Other(&'static str),
}

/// Read-only modes: what a release's files carry.
fn file_mode(listing_mode: u32) -> u32 {
    if listing_mode == 0o755 { 0o555 } else { 0o444 }
}

/// What a release of `inst` holds, path → node.
fn expected(inst: &Instance, listing: &TreeListing) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let single = listing.entries.len() == 1 && listing.entries[0].path.is_empty();
    if !single {
        out.insert("artifact".to_owned(), Node::Dir { mode: DIR_MODE });
    }
    for e in &listing.entries {
        let path = if e.path.is_empty() {
            "artifact".to_owned()
        } else {
            format!("artifact/{}", e.path)
        };
        let node = match (e.kind, e.file()) {
            (EntryKind::File, Some((b3, mode, _))) => Node::File {
                blake3: b3.to_owned(),
                mode: file_mode(mode),
            },
            _ => Node::Dir { mode: DIR_MODE },
        };
        out.insert(path, node);
    }
    out.insert(
        "config.json".to_owned(),
        Node::File {
            blake3: provkey_core::blake3_hex(&inst.config_bytes()),
            mode: 0o444,
        },
    );
    if !inst.files.is_empty() {
        out.insert("files".to_owned(), Node::Dir { mode: DIR_MODE });
    }
    for (path, content) in &inst.files {
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..parts.len() {
            out.insert(
                format!("files/{}", parts[..i].join("/")),
                Node::Dir { mode: DIR_MODE },
            );
        }
        out.insert(
            format!("files/{path}"),
            Node::File {
                blake3: provkey_core::blake3_hex(content.as_bytes()),
                mode: 0o444,
            },
        );
    }
    out
}

/// Walks a directory without following links; files are hashed (read through
/// [`open_regular`]: a FIFO, a device or a multiply-linked file is never read).
fn actual(dir: &Dir, prefix: &str, out: &mut BTreeMap<String, Node>) -> io::Result<()> {
    use cap_std::fs::PermissionsExt as _;
    for entry in dir.entries()? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            let sub = dir.open_dir_nofollow(&name)?;
            out.insert(
                path.clone(),
                Node::Dir {
                    mode: dir_mode(&sub)?,
                },
            );
            actual(&sub, &path, out)?;
        } else if kind.is_file() {
            let node = match open_regular(dir, &name) {
                Ok(file) => {
                    let mode = file.metadata()?.permissions().mode() & 0o777;
                    let bytes = read_capped(file, &name, 64 << 30)?;
                    Node::File {
                        blake3: provkey_core::blake3_hex(&bytes),
                        mode,
                    }
                }
                Err(_) => Node::Other("file with more than one hard link"),
            };
            out.insert(path, node);
        } else if kind.is_symlink() {
            out.insert(path, Node::Other("symbolic link"));
        } else {
            out.insert(path, Node::Other("special file (FIFO, socket or device)"));
        }
    }
    Ok(())
}

fn describe(node: &Node) -> String {
    match node {
        Node::Dir { mode } => format!("directory mode {mode:o}"),
        Node::File { blake3, mode } => format!("file blake3 {blake3} mode {mode:o}"),
        Node::Other(what) => (*what).into(),
    }
}

/// Compares release `id` with what `inst` should be: every added, removed and
/// modified path. An absent release is one `Removed` difference at `""`.
pub fn compare(
    layout: &Layout,
    id: &str,
    inst: &Instance,
    listing: &TreeListing,
) -> io::Result<Vec<Difference>> {
    let dir = match layout.releases.open_dir_nofollow(id) {
        Ok(dir) => dir,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Ok(vec![Difference {
                path: String::new(),
                change: Change::Removed,
                detail: "the release directory is missing".into(),
            }]);
        }
        Err(err) => {
            return Ok(vec![Difference {
                path: String::new(),
                change: Change::Modified,
                detail: format!("the release is not a plain directory: {err}"),
            }]);
        }
    };
    let want = expected(inst, listing);
    let mut have = BTreeMap::new();
    actual(&dir, "", &mut have)?;
    let mut out = Vec::new();
    let mode = dir_mode(&dir)?;
    if mode != DIR_MODE {
        out.push(Difference {
            path: String::new(),
            change: Change::Modified,
            detail: format!("expected directory mode {DIR_MODE:o}, found directory mode {mode:o}"),
        });
    }
    let paths: BTreeSet<&String> = want.keys().chain(have.keys()).collect();
    for path in paths {
        match (want.get(path), have.get(path)) {
            (Some(w), None) => out.push(Difference {
                path: path.clone(),
                change: Change::Removed,
                detail: format!("expected {}", describe(w)),
            }),
            (None, Some(h)) => out.push(Difference {
                path: path.clone(),
                change: Change::Added,
                detail: describe(h),
            }),
            (Some(w), Some(h)) if w != h => out.push(Difference {
                path: path.clone(),
                change: Change::Modified,
                detail: format!("expected {}, found {}", describe(w), describe(h)),
            }),
            _ => {}
        }
    }
    Ok(out)
}

fn io_err(id: &str) -> impl Fn(io::Error) -> ReleaseError + use<> {
    let id = id.to_owned();
    move |source| ReleaseError::Io {
        id: id.clone(),
        source,
    }
}

/// Makes every directory under `dir` (opened without following links) writable, so
/// that a read-only release can be removed by a non-root executor.
fn make_writable(dir: &Dir) -> io::Result<()> {
    set_dir_mode(dir, 0o755)?;
    for entry in dir.entries()? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let sub = dir.open_dir_nofollow(entry.file_name())?;
            make_writable(&sub)?;
        }
    }
    Ok(())
}

fn set_dir_mode(dir: &Dir, mode: u32) -> io::Result<()> {
    set_mode(&crate::fsio::dir_handle(dir)?, mode)
}

fn dir_mode(dir: &Dir) -> io::Result<u32> {
    use cap_std::fs::PermissionsExt as _;
    Ok(dir.dir_metadata()?.permissions().mode() & 0o777)
}

/// Removes `name` under `parent` (a release or a staging directory): links and files
/// are unlinked, never followed; missing is fine.
pub fn remove_tree(parent: &Dir, name: &str) -> io::Result<()> {
    match parent.symlink_metadata(name) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
        Ok(meta) if !meta.is_dir() => return remove_entry(parent, name),
        Ok(_) => {}
    }
    if let Ok(dir) = parent.open_dir_nofollow(name) {
        make_writable(&dir)?;
    }
    parent.remove_dir_all(name)
}

/// Writes a staged file; durable only after [`build`] syncs the filesystem.
fn write_file(dir: &Dir, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut file = create_new(dir, name, 0o600)?;
    file.write_all(bytes)?;
    set_mode(&file, mode)
}

/// Creates every directory of `path`'s parents below `dir`, returning the parent.
fn parent_dir(dir: &Dir, path: &str) -> io::Result<(Dir, String)> {
    let mut current = dir.try_clone()?;
    let mut parts: Vec<&str> = path.split('/').collect();
    let last = parts.pop().unwrap_or_default().to_owned();
    for part in parts {
        current = crate::fsio::ensure_dir(&current, part)?;
    }
    Ok((current, last))
}

/// Fills staging directory `stage` with the release of `inst`.
fn populate(
    stage: &Dir,
    store: &Store<'_>,
    inst: &Instance,
    listing: &TreeListing,
) -> Result<(), ReleaseError> {
    let id = inst.release_id();
    let io = io_err(&id);
    let single = listing.entries.len() == 1 && listing.entries[0].path.is_empty();
    if single {
        if let Some((b3, mode, size)) = listing.entries[0].file() {
            let bytes = store.read_blob(b3, size)?;
            write_file(stage, "artifact", &bytes, file_mode(mode)).map_err(&io)?;
        }
    } else {
        stage.create_dir("artifact").map_err(&io)?;
        let art = stage.open_dir_nofollow("artifact").map_err(&io)?;
        let mut dirs = Vec::new();
        for e in &listing.entries {
            let (parent, last) = parent_dir(&art, &e.path).map_err(&io)?;
            match e.file() {
                Some((b3, mode, size)) => {
                    let bytes = store.read_blob(b3, size)?;
                    write_file(&parent, &last, &bytes, file_mode(mode)).map_err(&io)?;
                }
                None => {
                    parent.create_dir(&last).map_err(&io)?;
                    dirs.push(e.path.clone());
                }
            }
        }
        // Directories read-only, deepest first.
        for path in dirs.iter().rev() {
            let d = art.open_dir_nofollow(path).map_err(&io)?;
            set_dir_mode(&d, 0o555).map_err(&io)?;
        }
        set_dir_mode(&art, 0o555).map_err(&io)?;
    }
    write_file(stage, "config.json", &inst.config_bytes(), 0o444).map_err(&io)?;
    if !inst.files.is_empty() {
        stage.create_dir("files").map_err(&io)?;
        let files = stage.open_dir_nofollow("files").map_err(&io)?;
        let mut dirs = BTreeSet::new();
        for (path, content) in &inst.files {
            let (parent, last) = parent_dir(&files, path).map_err(&io)?;
            write_file(&parent, &last, content.as_bytes(), 0o444).map_err(&io)?;
            let parts: Vec<&str> = path.split('/').collect();
            for i in 1..parts.len() {
                dirs.insert(parts[..i].join("/"));
            }
        }
        for path in dirs.iter().rev() {
            let d = files.open_dir_nofollow(path).map_err(&io)?;
            set_dir_mode(&d, 0o555).map_err(&io)?;
        }
        set_dir_mode(&files, 0o555).map_err(&io)?;
    }
    Ok(())
}

/// Builds the release of `inst` unless an identical one is already in place (an
/// interrupted apply's). A release that differs is removed and rebuilt.
pub fn build(
    layout: &Layout,
    store: &Store<'_>,
    inst: &Instance,
    listing: &TreeListing,
) -> Result<String, ReleaseError> {
    let id = inst.release_id();
    let io = io_err(&id);
    if layout.releases.symlink_metadata(&id).is_ok() {
        if compare(layout, &id, inst, listing).map_err(&io)?.is_empty() {
            return Ok(id);
        }
        remove_tree(&layout.releases, &id).map_err(&io)?;
    }
    // Staged beside the releases, so that the rename into place keeps its parent:
    // renaming a directory to another parent needs it writable (to update its `..`),
    // and the stage is read-only, its own mode included, before it is renamed.
    let staged = format!(".stage-{id}");
    remove_tree(&layout.releases, &staged).map_err(&io)?;
    layout.releases.create_dir(&staged).map_err(&io)?;
    let stage = layout.releases.open_dir_nofollow(&staged).map_err(&io)?;
    populate(&stage, store, inst, listing)?;
    let built = compare_dir(&stage, inst, listing).map_err(&io)?;
    if let Some(d) = built.first() {
        return Err(ReleaseError::Mismatch {
            id,
            detail: format!("{} {}: {}", d.change.as_str(), d.path, d.detail),
        });
    }
    set_dir_mode(&stage, DIR_MODE).map_err(&io)?;
    // Every file and directory of the stage, their modes included, durable at once,
    // before the stage is renamed into place.
    crate::fsio::sync_filesystem(&stage).map_err(&io)?;
    failpoint::hit(&format!("staged:{}", inst.address));
    layout
        .releases
        .rename(&staged, &layout.releases, &id)
        .map_err(&io)?;
    sync_dir(&layout.releases).map_err(&io)?;
    Ok(id)
}

fn compare_dir(dir: &Dir, inst: &Instance, listing: &TreeListing) -> io::Result<Vec<Difference>> {
    let want = expected(inst, listing);
    let mut have = BTreeMap::new();
    actual(dir, "", &mut have)?;
    let mut out = Vec::new();
    for (path, w) in &want {
        // Staging directories are still writable: compare files only, by content.
        if let (Node::File { blake3, .. }, Some(Node::File { blake3: b, .. })) = (w, have.get(path))
            && blake3 == b
        {
            continue;
        }
        if matches!(w, Node::Dir { .. }) && matches!(have.get(path), Some(Node::Dir { .. })) {
            continue;
        }
        out.push(Difference {
            path: path.clone(),
            change: Change::Modified,
            detail: format!("expected {}", describe(w)),
        });
    }
    for path in have.keys().filter(|p| !want.contains_key(*p)) {
        out.push(Difference {
            path: path.clone(),
            change: Change::Added,
            detail: String::new(),
        });
    }
    Ok(out)
}

/// The text of live pointer `name`'s link: `../releases/<id>`.
pub fn pointer_text(id: &str) -> String {
    format!("../{RELEASES}/{id}")
}

/// Points `live/<name>` at release `id` atomically (a new link renamed over the old).
pub fn switch_live(layout: &Layout, name: &str, id: &str) -> io::Result<()> {
    let tmp = format!(".{name}.new");
    remove_entry(&layout.live, &tmp)?;
    layout.live.symlink(pointer_text(id), &tmp)?;
    layout.live.rename(&tmp, &layout.live, name)?;
    sync_dir(&layout.live)
}

/// Removes `live/<name>` (a link; never followed).
pub fn remove_live(layout: &Layout, name: &str) -> io::Result<()> {
    remove_entry(&layout.live, name)?;
    sync_dir(&layout.live)
}

/// Where `live/<name>` points: `Ok(None)` when absent; `Err` text when it is not a
/// link of the form `../releases/<id>`.
pub fn read_live(layout: &Layout, name: &str) -> io::Result<Result<Option<String>, String>> {
    match layout.live.symlink_metadata(name) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Ok(None)),
        Err(err) => return Err(err),
        Ok(meta) if !meta.file_type().is_symlink() => {
            return Ok(Err("not a symbolic link".into()));
        }
        Ok(_) => {}
    }
    let text = layout.live.read_link_contents(name)?;
    let text = text.to_string_lossy().into_owned();
    let prefix = format!("../{RELEASES}/");
    Ok(match text.strip_prefix(&prefix) {
        Some(id) if !id.is_empty() && !id.contains('/') && id != ".." && id != "." => {
            Ok(Some(id.to_owned()))
        }
        _ => Err(format!("points to `{}`", text.escape_default())),
    })
}
