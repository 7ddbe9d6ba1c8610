//! `apply`: verify a sealed bundle fully, then take the target from its current state
//! to the plan's, create-before-destroy, crash-safe.
//!
//! 1. Open the target directory (one capability), take its lock, read its state and
//!    any unfinished claim.
//! 2. Verify the bundle with `provkey-core` against the persistent state (signatures,
//!    thresholds, manifest, target, freshness, replay, base state, blobs, policies,
//!    replace-only), then check that every change can be deployed exactly (artifacts
//!    in the bundle or the store, configuration digests, a plan that covers the state).
//!    A refusal is appended to the audit log; nothing else is written.
//! 3. Claim: record the bundle in `journal.json` durably.
//! 4. Follow the plan's order: import artifacts into the store; for an instance,
//!    build its new release, switch its live pointer, and only then remove the old
//!    release (or the reverse for `destroy-before-create`); destroys last.
//! 5. Commit: replace `state.json` (serial + 1, the plan's resources, this manifest,
//!    sequence high-water mark and nonce) in one durable rename.
//! 6. Append `applied` to the audit log (once), remove the claim, collect garbage.
//!
//! A crash anywhere leaves the claim (or, after step 5, the new state): re-running the
//! same bundle resumes, every step being idempotent, and ends in the state an
//! uninterrupted run leaves; any other bundle is refused until then.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use provkey_core::bundle::RawBundle;
use provkey_core::trust::TrustRoot;
use provkey_core::verify::{Check, Refused, VerifyOptions, verify_opened};
use provkey_desired::{Kind, State};
use provkey_plan::ReplaceOrder;

use crate::ExecError;
use crate::audit::{self, Record};
use crate::failpoint;
use crate::fsio::DirFs;
use crate::journal::{self, Claim};
use crate::lock;
use crate::release::{self, remove_tree};
use crate::state::{self, Known, TargetState, TrustMark};
use crate::store::{Store, tree_file};
use crate::target::{Layout, Target};
use crate::work::{self, Op, Prepared};

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The environment this executor applies to.
    pub target: String,
    /// This executor's audience id (default: the target).
    pub audience: Option<String>,
    /// The time of this apply (Unix seconds), recorded once.
    pub now: u64,
    /// The longest validity window accepted, in seconds.
    pub max_validity: u64,
    /// Policies that must have run with verdict `allow`.
    pub required_policies: Vec<String>,
    /// The engine version the manifest must name, when set.
    pub engine_version: Option<String>,
}

impl ApplyOptions {
    pub fn new(target: &str, now: u64) -> ApplyOptions {
        ApplyOptions {
            target: target.to_owned(),
            audience: None,
            now,
            max_validity: 7 * 24 * 3600,
            required_policies: Vec::new(),
            engine_version: None,
        }
    }

    fn verify_options(&self) -> VerifyOptions {
        let mut v = VerifyOptions::new(&self.target, self.now);
        if let Some(a) = &self.audience {
            v.audience = a.clone();
        }
        v.max_validity = self.max_validity;
        v.required_policies = self.required_policies.clone();
        v.engine_version = self.engine_version.clone();
        v
    }
}

/// One change as applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedStep {
    pub address: String,
    /// `create`, `replace`, `destroy`, `no-op`.
    pub action: &'static str,
    /// The release now live (instances created or replaced).
    pub release: Option<String>,
    /// The release removed (instances replaced or destroyed).
    pub removed: Option<String>,
}

/// What an apply did.
#[derive(Debug, Clone)]
pub struct ApplyReport {
    pub target_dir: PathBuf,
    /// blake3 of the applied manifest.
    pub manifest: String,
    pub sequence: u64,
    pub lineage: String,
    /// The new state's serial.
    pub serial: u64,
    /// Whether this run finished an apply a crash had interrupted.
    pub resumed: bool,
    /// The changes, in order (empty when only the end of an interrupted apply was left).
    pub steps: Vec<AppliedStep>,
    /// Garbage that could not be collected (harmless; the next apply retries).
    pub warnings: Vec<String>,
    /// The bundle was the last one applied already: nothing was done.
    pub already_applied: bool,
}

/// Applies the bundle at `bundle` to the target directory `target_dir`.
pub fn apply(
    bundle: &Path,
    trust: &TrustRoot,
    opts: &ApplyOptions,
    target_dir: &Path,
) -> Result<ApplyReport, ExecError> {
    let target = Target::open(target_dir, true)?;
    let _lock = lock::acquire(&target.root, target_dir, "apply", opts.now)?;
    let layout = target.layout()?;
    let run = Run {
        target: &target,
        layout: &layout,
        opts,
        bundle,
        lost: RefCell::default(),
    };
    let result = apply_locked(&run, trust, target_dir);
    // An audit line that could not be written is never dropped silently: it is named
    // with the outcome (an error, or a warning of the report).
    let lost = run.lost.take();
    match result {
        Err(error) if !lost.is_empty() => Err(ExecError::AuditLost {
            error: Box::new(error),
            lost,
        }),
        Ok(mut report) => {
            report
                .warnings
                .extend(lost.into_iter().map(|l| format!("the audit log lost {l}")));
            Ok(report)
        }
        other => other,
    }
}

fn apply_locked(
    run: &Run<'_>,
    trust: &TrustRoot,
    target_dir: &Path,
) -> Result<ApplyReport, ExecError> {
    let (target, layout, opts, bundle) = (run.target, run.layout, run.opts, run.bundle);
    let fs = DirFs(&target.root);
    let current = match state::load(&fs) {
        Ok(c) => c,
        Err(err) => {
            run.refused(None, None, "state", &err.to_string());
            return Err(err.into());
        }
    };
    if let Some(cur) = &current
        && cur.target != opts.target
    {
        let err = ExecError::WrongTarget {
            dir: target_dir.to_path_buf(),
            owner: cur.target.clone(),
            asked: opts.target.clone(),
        };
        run.refused(None, None, "target", &err.to_string());
        return Err(err);
    }
    let claim = match journal::load(&fs) {
        Ok(c) => c,
        Err(err) => {
            run.refused(None, None, "journal", &err.to_string());
            return Err(err.into());
        }
    };
    // The audit log must be appendable (a regular file with one link) before any
    // change: an apply is never left without its record.
    audit::read(&target.root)?;
    failpoint::hit("locked");
    // The bundle is opened once, through one directory handle: the claim match, the
    // verification and the blobs the apply deploys are all read through it, so that
    // swapping the directory under the executor's feet changes nothing.
    let opened = provkey_core::bundle::open(bundle);
    failpoint::hit("opened");
    let digest = opened
        .as_ref()
        .ok()
        .map(|raw| provkey_core::blake3_hex(&raw.manifest));
    let refused_at = |check: Check, detail: String, digest: Option<String>| {
        run.refused(digest, None, check.name(), &detail);
        ExecError::Refused {
            bundle: bundle.to_path_buf(),
            refused: Refused { check, detail },
        }
    };
    // Answering "already applied" (or finishing a committed apply) needs the bundle to
    // be the authentic manifest, signed as the trust root requires: a copy with a
    // garbage signature is refused like any other bundle.
    let authentic = |raw: &RawBundle| {
        provkey_core::verify::authenticate(raw, trust, &opts.verify_options())
            .map(|_| ())
            .map_err(|r| refused_at(r.check, r.detail, digest.clone()))
    };
    if claim.is_none()
        && let (Some(cur), Some(d), Ok(raw)) = (&current, &digest, &opened)
        && cur.state.applied_manifest.as_deref() == Some(d.as_str())
    {
        authentic(raw)?;
        // The last applied bundle again: nothing to do (its apply finished).
        let _ = run.record(
            "already-applied",
            d,
            cur.high_water,
            "the bundle is the last one applied: nothing to do",
        );
        let mut report = run.finish(cur, cur.high_water, false, Vec::new())?;
        report.already_applied = true;
        return Ok(report);
    }
    if let Some(claim) = &claim {
        if digest.as_deref() != Some(claim.manifest.as_str()) {
            let err = ExecError::Unfinished {
                dir: target_dir.to_path_buf(),
                manifest: claim.manifest.clone(),
                sequence: claim.sequence,
            };
            run.refused(digest.clone(), None, "journal", &err.to_string());
            return Err(err);
        }
        if let Some(cur) = &current
            && cur.state.applied_manifest.as_deref() == Some(claim.manifest.as_str())
            && let Ok(raw) = &opened
        {
            authentic(raw)?;
            // Crashed after the commit: only the end is left.
            return run.finish(cur, claim.sequence, true, Vec::new());
        }
    }
    let raw = opened.map_err(|err| refused_at(Check::Open, err.to_string(), None))?;
    let mut verify_options = opts.verify_options();
    if let Some(claim) = &claim {
        // Resuming the claimed bundle (the digest matched above): it was fresh when it
        // was claimed, and refusing it now because it expired since would leave the
        // target blocked for good. Everything else is verified again in full.
        verify_options.now = claim
            .claimed_at
            .max(current.as_ref().map_or(0, |c| c.last_seen));
    }
    let verified = match verify_opened(&raw, trust, &verify_options, &Known(current.as_ref())) {
        Ok(v) => v,
        Err(refused) => {
            run.refused(digest, None, refused.check.name(), &refused.detail);
            return Err(ExecError::Refused {
                bundle: bundle.to_path_buf(),
                refused,
            });
        }
    };
    let manifest = &verified.manifest;
    let refuse = |check: Check, detail: String| {
        run.refused(
            Some(verified.manifest_blake3.clone()),
            Some(manifest.sequence),
            check.name(),
            &detail,
        );
        ExecError::Refused {
            bundle: bundle.to_path_buf(),
            refused: Refused { check, detail },
        }
    };
    let store = Store {
        blobs: &layout.blobs,
        trees: &layout.trees,
    };
    let plan = provkey_plan::Plan::from_json(&String::from_utf8_lossy(&verified.plan_bytes))
        .map_err(|e| refuse(Check::PlanSemantics, e.to_string()))?;
    let prepared = work::bundle_trees(manifest, &raw)
        .and_then(|trees| {
            let empty = State::empty();
            let base = current.as_ref().map_or(&empty, |c| &c.state);
            work::prepare(&plan, base, &store, &trees)
        })
        .map_err(|e| refuse(Check::PlanSemantics, format!("cannot be deployed: {e}")))?;
    let prefix_len = std::path::absolute(target_dir)
        .map_or(target_dir.as_os_str().len(), |p| p.as_os_str().len());
    work::check_fits(&prepared, prefix_len)
        .map_err(|e| refuse(Check::PlanSemantics, format!("cannot be deployed: {e}")))?;
    work::check_manifest_artifact(manifest, &prepared)
        .map_err(|e| refuse(Check::PlanSemantics, e))?;
    let next = next_state(
        current.as_ref(),
        trust,
        opts,
        &verified.manifest_blake3,
        manifest,
        &prepared,
    )
    .map_err(|e| refuse(Check::PlanSemantics, format!("cannot be deployed: {e}")))?;

    let resumed = claim.is_some();
    if resumed {
        // No change without its audit line: an apply that cannot record it stops here.
        run.record(
            "resumed",
            &verified.manifest_blake3,
            manifest.sequence,
            "resuming an interrupted apply",
        )
        .map_err(|_| ExecError::AuditRequired { event: "resumed" })?;
    } else {
        let claim = Claim::new(
            &verified.manifest_blake3,
            &opts.target,
            manifest.sequence,
            &manifest.nonce,
            opts.now,
        )?;
        journal::record(&fs, &claim)?;
        failpoint::hit("claimed");
        run.record(
            "claimed",
            &verified.manifest_blake3,
            manifest.sequence,
            "claimed before the first change",
        )
        .map_err(|_| ExecError::AuditRequired { event: "claimed" })?;
    }
    let steps = execute(layout, &store, &raw, &prepared).map_err(|(step, detail)| {
        let _ = run.record(
            "failed",
            &verified.manifest_blake3,
            manifest.sequence,
            &format!("step `{step}`: {detail}"),
        );
        ExecError::Failed {
            dir: target_dir.to_path_buf(),
            manifest: verified.manifest_blake3.clone(),
            step,
            detail,
        }
    })?;
    // The anchor: the log as it is at the commit (through this apply's `claimed` or
    // `resumed` line). A log cut or rewritten below it no longer verifies.
    let mut next = next;
    next.audit_head = audit::head(&target.root)?;
    state::store(&fs, &next)?;
    failpoint::hit("committed");
    run.finish(&next, manifest.sequence, resumed, steps)
}

struct Run<'a> {
    target: &'a Target,
    layout: &'a Layout,
    opts: &'a ApplyOptions,
    bundle: &'a Path,
    /// Audit lines that could not be appended, with the reason.
    lost: RefCell<Vec<String>>,
}

impl Run<'_> {
    fn lose(&self, event: &str, err: &audit::AuditError) {
        self.lost
            .borrow_mut()
            .push(format!("its `{event}` line ({err})"));
    }

    fn refused(&self, manifest: Option<String>, sequence: Option<u64>, check: &str, detail: &str) {
        let appended = audit::append(
            &self.target.root,
            Record {
                time: self.opts.now,
                event: "refused",
                target: self.opts.target.clone(),
                manifest,
                sequence,
                check: Some(check.to_owned()),
                detail: format!("bundle `{}`: {detail}", self.bundle.display()),
            },
        );
        if let Err(err) = appended {
            self.lose("refused", &err);
        }
    }

    /// Appends an event; an error is kept in `lost` (see [`apply`]) and returned.
    fn record(
        &self,
        event: &'static str,
        manifest: &str,
        sequence: u64,
        detail: &str,
    ) -> Result<(), audit::AuditError> {
        audit::append(
            &self.target.root,
            Record {
                time: self.opts.now,
                event,
                target: self.opts.target.clone(),
                manifest: Some(manifest.to_owned()),
                sequence: Some(sequence),
                check: None,
                detail: detail.to_owned(),
            },
        )
        .map(|_| ())
        .inspect_err(|err| self.lose(event, err))
    }

    /// After the commit: the audit entry (once), the claim removed, garbage collected.
    fn finish(
        &self,
        next: &TargetState,
        sequence: u64,
        resumed: bool,
        steps: Vec<AppliedStep>,
    ) -> Result<ApplyReport, ExecError> {
        let manifest = next.state.applied_manifest.clone().unwrap_or_default();
        if !audit::has_applied(&self.target.root, &manifest)? {
            let count = |a: &str| steps.iter().filter(|s| s.action == a).count();
            let detail = if steps.is_empty() {
                format!("state serial {}", next.state.serial)
            } else {
                format!(
                    "{} created, {} replaced, {} destroyed, {} unchanged; state serial {}",
                    count("create"),
                    count("replace"),
                    count("destroy"),
                    count("no-op"),
                    next.state.serial
                )
            };
            audit::append(
                &self.target.root,
                Record {
                    time: self.opts.now,
                    event: "applied",
                    target: self.opts.target.clone(),
                    manifest: Some(manifest.clone()),
                    sequence: Some(sequence),
                    check: None,
                    detail,
                },
            )?;
        }
        failpoint::hit("audited");
        journal::clear(&DirFs(&self.target.root))?;
        let warnings = collect_garbage(self.layout, &next.state);
        failpoint::hit("collected");
        Ok(ApplyReport {
            target_dir: self.target.path.clone(),
            manifest,
            sequence,
            lineage: next
                .state
                .lineage
                .map(|l| l.to_string())
                .unwrap_or_default(),
            serial: next.state.serial,
            resumed,
            steps,
            warnings,
            already_applied: false,
        })
    }
}

/// The lineage of a target's first state: derived from the genesis manifest, so that
/// an interrupted first apply resumes into the same lineage.
fn genesis_lineage(manifest_blake3: &str) -> uuid::Uuid {
    let hash = blake3::hash(format!("provkey-lineage-v1\0{manifest_blake3}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_bytes()[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn next_state(
    current: Option<&TargetState>,
    trust: &TrustRoot,
    opts: &ApplyOptions,
    manifest_blake3: &str,
    manifest: &provkey_core::manifest::Manifest,
    prepared: &Prepared,
) -> Result<TargetState, String> {
    let (lineage, serial) = match current.and_then(|c| c.state.lineage.map(|l| (l, c.state.serial)))
    {
        Some((l, s)) => (l, s + 1),
        None => (genesis_lineage(manifest_blake3), 1),
    };
    let mut state = State::empty();
    state.lineage = Some(lineage);
    state.serial = serial;
    state.resources = prepared.resources.clone();
    state.applied_manifest = Some(manifest_blake3.to_owned());
    state.validate()?;
    let mut nonces = current.map(|c| c.nonces.clone()).unwrap_or_default();
    nonces.insert(manifest.nonce.clone());
    // The trust root that verified this bundle (never older than the mark: checked
    // before) and the policy-set version become the target's floor.
    let policy_set_version = current
        .and_then(|c| c.policy_set_version)
        .map_or(manifest.policy_set.version, |v| {
            v.max(manifest.policy_set.version)
        });
    Ok(TargetState {
        target: opts.target.clone(),
        high_water: manifest.sequence,
        nonces,
        last_seen: current.map_or(opts.now, |c| c.last_seen.max(opts.now)),
        state,
        trust_root: Some(TrustMark {
            version: trust.doc.version,
            blake3: trust.blake3.clone(),
        }),
        policy_set_version: Some(policy_set_version),
        audit_head: None,
    })
}

type StepError = (String, String);

fn step_err(step: &str) -> impl Fn(String) -> StepError + '_ {
    move |detail| (step.to_owned(), detail)
}

/// Performs the changes in plan order. Every step is idempotent.
fn execute(
    layout: &Layout,
    store: &Store<'_>,
    raw: &RawBundle,
    prepared: &Prepared,
) -> Result<Vec<AppliedStep>, StepError> {
    let mut steps = Vec::new();
    let mut checked = BTreeSet::new();
    for w in &prepared.work {
        let mut done = AppliedStep {
            address: w.address.clone(),
            action: w.op.name(),
            release: None,
            removed: None,
        };
        if let Some(listing) = &w.listing
            && w.op != Op::Destroy
            && !checked.contains(&listing.digest)
        {
            let present = store.tree(&listing.digest).as_ref() == Some(listing)
                && store.verify_tree(listing).is_ok();
            if !present {
                let step = format!("artifact:{}", w.address);
                store
                    .import(listing, raw)
                    .map_err(|e| (step.clone(), e.to_string()))?;
                failpoint::hit(&step);
            }
            checked.insert(listing.digest.clone());
        }
        if w.kind == Kind::Instance {
            // The old release stays on disk until the new state commits (garbage
            // collection removes it then): until that moment the last committed state
            // must stay restorable, by a re-run or by `provkey-exec abandon`.
            let remove_old = |done: &mut AppliedStep| -> Result<(), StepError> {
                if let Some(old) = &w.old {
                    failpoint::hit(&format!("destroy:{}", w.address));
                    done.removed = Some(old.release_id());
                }
                Ok(())
            };
            let create_new = |done: &mut AppliedStep| -> Result<(), StepError> {
                if let (Some(new), Some(listing)) = (&w.new, &w.listing) {
                    let step = format!("release:{}", w.address);
                    let id = release::build(layout, store, new, listing)
                        .map_err(|e| step_err(&step)(e.to_string()))?;
                    failpoint::hit(&step);
                    let step = format!("switch:{}", w.address);
                    release::switch_live(layout, &w.name, &id)
                        .map_err(|e| step_err(&step)(e.to_string()))?;
                    failpoint::hit(&step);
                    done.release = Some(id);
                }
                Ok(())
            };
            match w.op {
                Op::Create | Op::Replace(ReplaceOrder::CreateBeforeDestroy) => {
                    create_new(&mut done)?;
                    remove_old(&mut done)?;
                }
                Op::Replace(ReplaceOrder::DestroyBeforeCreate) => {
                    let step = format!("unlink:{}", w.address);
                    release::remove_live(layout, &w.name)
                        .map_err(|e| step_err(&step)(e.to_string()))?;
                    failpoint::hit(&step);
                    remove_old(&mut done)?;
                    create_new(&mut done)?;
                }
                Op::Destroy => {
                    let step = format!("unlink:{}", w.address);
                    release::remove_live(layout, &w.name)
                        .map_err(|e| step_err(&step)(e.to_string()))?;
                    failpoint::hit(&step);
                    remove_old(&mut done)?;
                }
                Op::NoOp => {}
            }
        }
        steps.push(done);
    }
    Ok(steps)
}

/// Removes what the state no longer references: releases, live pointers, store
/// trees and blobs, staging. Best effort: what fails is reported and retried by the
/// next apply.
pub fn collect_garbage(layout: &Layout, state: &State) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut releases = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut digests = BTreeSet::new();
    for r in &state.resources {
        if let Some(d) = &r.artifact_digest {
            digests.insert(d.clone());
        }
        if r.kind == Kind::Instance
            && let Ok(inst) = work::instance_from(&r.address, &r.name, &r.attributes)
        {
            releases.insert(inst.release_id());
            names.insert(r.name.clone());
        }
    }
    let store = Store {
        blobs: &layout.blobs,
        trees: &layout.trees,
    };
    let mut tree_files = BTreeSet::new();
    let mut blobs = BTreeSet::new();
    for d in &digests {
        tree_files.insert(tree_file(d));
        if let Some(listing) = store.tree(d) {
            for e in &listing.entries {
                if let Some((b3, _, _)) = e.file() {
                    blobs.insert(b3.to_owned());
                }
            }
        }
    }
    let mut sweep = |dir: &cap_std::fs::Dir, keep: &BTreeSet<String>, what: &str| {
        let entries = match dir.entries() {
            Ok(e) => e,
            Err(err) => {
                warnings.push(format!("cannot list {what}: {err}"));
                return;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name)
                && let Err(err) = remove_tree(dir, &name)
            {
                warnings.push(format!("cannot remove {what}/{name}: {err}"));
            }
        }
        let _ = crate::fsio::sync_dir(dir);
    };
    sweep(&layout.releases, &releases, "releases");
    sweep(&layout.live, &names, "live");
    sweep(&layout.trees, &tree_files, "store/trees");
    sweep(&layout.blobs, &blobs, "store/blobs");
    sweep(&layout.tmp, &BTreeSet::new(), "tmp");
    warnings
}
