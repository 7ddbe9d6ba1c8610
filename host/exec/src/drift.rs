//! Drift: what is deployed, compared with what the last applied bundle says.
//!
//! For every instance of the state: its live pointer must point at its release, and
//! the release must hold exactly the artifact tree (every file's blake3 and mode),
//! `config.json` and `files/` it was built with. Live pointers the state does not
//! know, and artifacts whose stored files no longer hash to their digest, are drift
//! too. Nothing is repaired: differences are reported, and a new apply (or a
//! rollback) replaces the instance.

use std::path::{Path, PathBuf};

use provkey_desired::Kind;

use crate::ExecError;
use crate::fsio::DirFs;
use crate::lock;
use crate::release::{self, Change};
use crate::state;
use crate::store::Store;
use crate::target::Target;
use crate::work;

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The resource (`instance.web`), or `live` / `store` for what no resource owns.
    pub address: String,
    /// Relative to the target directory.
    pub path: String,
    pub change: Change,
    pub detail: String,
}

/// The drift of one target.
#[derive(Debug, Clone)]
pub struct DriftReport {
    pub target_dir: PathBuf,
    /// `None` for a target never deployed.
    pub serial: Option<u64>,
    pub manifest: Option<String>,
    pub instances: usize,
    pub drift: Vec<Drift>,
}

impl DriftReport {
    pub fn has_drift(&self) -> bool {
        !self.drift.is_empty()
    }
}

/// Compares the target directory with its state. Takes the lock (so it never sees an
/// apply half-way) and writes nothing else.
pub fn drift(target_dir: &Path, now: u64) -> Result<DriftReport, ExecError> {
    let target = Target::open(target_dir, false)?;
    let _lock = lock::acquire(&target.root, target_dir, "drift", now)?;
    let fs = DirFs(&target.root);
    let Some(current) = state::load(&fs)? else {
        return Ok(DriftReport {
            target_dir: target_dir.to_path_buf(),
            serial: None,
            manifest: None,
            instances: 0,
            drift: Vec::new(),
        });
    };
    let layout = target.layout()?;
    let store = Store {
        blobs: &layout.blobs,
        trees: &layout.trees,
    };
    let mut out = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    let mut instances = 0;
    for r in &current.state.resources {
        if r.kind != Kind::Instance {
            continue;
        }
        instances += 1;
        names.insert(r.name.clone());
        let inst = match work::instance_from(&r.address, &r.name, &r.attributes) {
            Ok(i) => i,
            Err(e) => {
                out.push(Drift {
                    address: r.address.clone(),
                    path: state::STATE_FILE.into(),
                    change: Change::Modified,
                    detail: e,
                });
                continue;
            }
        };
        let id = inst.release_id();
        let live_path = format!("live/{}", r.name);
        match release::read_live(&layout, &r.name)? {
            Ok(Some(found)) if found == id => {}
            Ok(Some(found)) => out.push(Drift {
                address: r.address.clone(),
                path: live_path,
                change: Change::Modified,
                detail: format!("points to release `{found}`, expected `{id}`"),
            }),
            Ok(None) => out.push(Drift {
                address: r.address.clone(),
                path: live_path,
                change: Change::Removed,
                detail: format!("the live pointer is missing (expected `{id}`)"),
            }),
            Err(what) => out.push(Drift {
                address: r.address.clone(),
                path: live_path,
                change: Change::Modified,
                detail: format!("the live pointer {what}"),
            }),
        }
        let Some(listing) = store.tree(&inst.artifact_digest) else {
            out.push(Drift {
                address: r.address.clone(),
                path: format!(
                    "store/trees/{}",
                    crate::store::tree_file(&inst.artifact_digest)
                ),
                change: Change::Removed,
                detail: format!("the store lost artifact `{}`", inst.artifact_digest),
            });
            continue;
        };
        for d in release::compare(&layout, &id, &inst, &listing)? {
            out.push(Drift {
                address: r.address.clone(),
                path: if d.path.is_empty() {
                    format!("releases/{id}")
                } else {
                    format!("releases/{id}/{}", d.path)
                },
                change: d.change,
                detail: d.detail,
            });
        }
    }
    for r in &current.state.resources {
        if let Some(digest) = &r.artifact_digest
            && r.kind == Kind::Artifact
        {
            match store.tree(digest) {
                Some(listing) => {
                    if let Err(e) = store.verify_tree(&listing) {
                        out.push(Drift {
                            address: r.address.clone(),
                            path: "store".into(),
                            change: Change::Modified,
                            detail: e.to_string(),
                        });
                    }
                }
                None => out.push(Drift {
                    address: r.address.clone(),
                    path: format!("store/trees/{}", crate::store::tree_file(digest)),
                    change: Change::Removed,
                    detail: format!("the store lost artifact `{digest}`"),
                }),
            }
        }
    }
    for entry in layout.live.entries()? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !names.contains(&name) {
            out.push(Drift {
                address: "live".into(),
                path: format!("live/{name}"),
                change: Change::Added,
                detail: "a live pointer the state does not know".into(),
            });
        }
    }
    Ok(DriftReport {
        target_dir: target_dir.to_path_buf(),
        serial: Some(current.state.serial),
        manifest: current.state.applied_manifest.clone(),
        instances,
        drift: out,
    })
}
