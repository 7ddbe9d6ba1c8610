//! `abandon`: the operator's way back from an apply that cannot finish (a disk that
//! stays full, an I/O error, a bundle that is gone). It drops the claim and returns
//! the target to its last committed state: every instance that state names gets its
//! release back (rebuilt from the store if the apply touched it) and its live pointer
//! back; what the apply added is collected; an `abandoned` line goes to the audit log.
//!
//! This is possible because an apply removes nothing the committed state names before
//! the new state commits (old releases and store entries are collected only after).
//! Every step is idempotent: a crash during `abandon` is finished by running it again.
//! The abandoned bundle's sequence is not consumed: it can be applied again later.

use std::path::{Path, PathBuf};

use provkey_desired::{Kind, State};

use crate::ExecError;
use crate::apply::collect_garbage;
use crate::audit::{self, Record};
use crate::failpoint;
use crate::fsio::DirFs;
use crate::journal;
use crate::lock;
use crate::release;
use crate::state;
use crate::store::Store;
use crate::target::Target;
use crate::work;

/// What `abandon` did.
#[derive(Debug, Clone)]
pub struct AbandonReport {
    pub target_dir: PathBuf,
    /// The claim dropped (manifest blake3, sequence); `None` when there was none.
    pub abandoned: Option<(String, u64)>,
    /// The serial of the state the target is back at (`None`: never deployed).
    pub serial: Option<u64>,
    /// Instances whose live pointer was set back.
    pub restored: Vec<String>,
    /// Garbage that could not be collected (harmless; the next apply retries).
    pub warnings: Vec<String>,
}

/// Abandons the unfinished apply of `target_dir`, if there is one.
pub fn abandon(target_dir: &Path, now: u64) -> Result<AbandonReport, ExecError> {
    let target = Target::open(target_dir, false)?;
    let _lock = lock::acquire(&target.root, target_dir, "abandon", now)?;
    let fs = DirFs(&target.root);
    let current = state::load(&fs)?;
    let claim = journal::load(&fs)?;
    audit::read(&target.root)?;
    let serial = current.as_ref().map(|c| c.state.serial);
    let layout = target.layout()?;
    let empty = State::empty();
    let committed = current.as_ref().map_or(&empty, |c| &c.state);
    let Some(claim) = claim else {
        // No claim: at most the garbage of an apply that crashed after its end.
        return Ok(AbandonReport {
            target_dir: target_dir.to_path_buf(),
            abandoned: None,
            serial,
            restored: Vec::new(),
            warnings: collect_garbage(&layout, committed),
        });
    };
    let store = Store {
        blobs: &layout.blobs,
        trees: &layout.trees,
    };
    let failed = |detail: String| ExecError::Abandon {
        dir: target_dir.to_path_buf(),
        detail,
    };
    let mut restored = Vec::new();
    for r in committed
        .resources
        .iter()
        .filter(|r| r.kind == Kind::Instance)
    {
        let inst = work::instance_from(&r.address, &r.name, &r.attributes).map_err(&failed)?;
        let listing = store.tree(&inst.artifact_digest).ok_or_else(|| {
            failed(format!(
                "the store lost artifact `{}` of `{}`",
                inst.artifact_digest, r.address
            ))
        })?;
        let id = release::build(&layout, &store, &inst, &listing)
            .map_err(|e| failed(format!("`{}`: {e}", r.address)))?;
        failpoint::hit(&format!("abandon:release:{}", r.address));
        if release::read_live(&layout, &r.name)? != Ok(Some(id.clone())) {
            release::switch_live(&layout, &r.name, &id)?;
            restored.push(r.name.clone());
        }
        failpoint::hit(&format!("abandon:switch:{}", r.address));
    }
    // Live pointers, releases and store entries the committed state does not name.
    let warnings = collect_garbage(&layout, committed);
    failpoint::hit("abandon:collected");
    let target_name = current
        .as_ref()
        .map_or_else(|| claim.target.clone(), |c| c.target.clone());
    if committed.applied_manifest.as_deref() == Some(claim.manifest.as_str()) {
        // The apply had committed: the target is at its new state, whose `applied`
        // entry may be all that was left to write.
        if !audit::has_applied(&target.root, &claim.manifest)? {
            audit::append(
                &target.root,
                Record {
                    time: now,
                    event: "applied",
                    target: target_name,
                    manifest: Some(claim.manifest.clone()),
                    sequence: Some(claim.sequence),
                    check: None,
                    detail: format!(
                        "state serial {} (the apply had committed when it was abandoned)",
                        committed.serial
                    ),
                },
            )?;
        }
    } else if audit::last_event_for(&target.root, &claim.manifest)?.as_deref() != Some("abandoned")
    {
        audit::append(
            &target.root,
            Record {
                time: now,
                event: "abandoned",
                target: target_name,
                manifest: Some(claim.manifest.clone()),
                sequence: Some(claim.sequence),
                check: None,
                detail: match serial {
                    Some(s) => format!("claim dropped; the target is back at state serial {s}"),
                    None => "claim dropped; the target is back to never deployed".into(),
                },
            },
        )?;
    }
    failpoint::hit("abandon:audited");
    journal::clear(&fs)?;
    Ok(AbandonReport {
        target_dir: target_dir.to_path_buf(),
        abandoned: Some((claim.manifest, claim.sequence)),
        serial,
        restored,
        warnings,
    })
}
