//! The executor's verifier: the order of checks of the design reference §4.5, failing
//! closed, naming the first check that failed.
//!
//! The parts that need the executor's persistent state (sequence high-water mark, nonce
//! log, last applied manifest, current base state, last seen time) come through the
//! [`ExecutorState`] trait; [`MemoryState`] is an in-memory implementation (empty by
//! default, which is what `provkey-exec verify` uses until the executor keeps state).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::bundle::{self, OpenError, RawBundle};
use crate::manifest::{BaseState, Manifest, ManifestError};
use crate::minisig::{Minisig, Role, StatementKind, TrustedComment};
use crate::sign::verify_signature;
use crate::trust::TrustRoot;

/// The largest plan blob read into memory for the semantic checks.
pub const MAX_PLAN_BLOB: u64 = 256 << 20;
/// The largest blob (artifact) hashed.
pub const MAX_BLOB: u64 = 64 << 30;

/// The checks, in the order they run. Their names are stable (tests and logs use them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Trust root expired, or the clock went back.
    Clock,
    /// The trust root is older than (or forks from) the one the target accepted.
    TrustRoot,
    /// Opening the bundle: layout, links, file types, sizes.
    Open,
    /// Strict `.minisig` parsing.
    MinisigParse,
    /// No signature verifies with a trusted key.
    Signature,
    /// Too few distinct trusted keys signed for a role.
    Threshold,
    /// The manifest is not canonical JSON in the closed subset.
    Canonical,
    /// The manifest's `_type` is not the plan statement's.
    Type,
    /// The manifest does not match the closed schema.
    Schema,
    /// A trusted comment does not echo the manifest, or claims a role its key lacks.
    TrustedComment,
    /// The plan-signer signature is not from `issuer`.
    Issuer,
    /// Wrong target or audience, or signers/trust-root version differ from the executor's.
    Target,
    /// Expired, not yet valid, or valid for too long.
    Freshness,
    /// Sequence not above the high-water mark, nonce seen, or a fork.
    Replay,
    /// The state changed since planning.
    BaseState,
    /// Extra, missing, altered or truncated blobs.
    Blobs,
    /// A policy verdict, a missing required policy, a module not allowed.
    Policy,
    /// The plan is not replace-only, or the engine differs.
    PlanSemantics,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Clock => "clock",
            Check::TrustRoot => "trust-root",
            Check::Open => "open",
            Check::MinisigParse => "minisig-parse",
            Check::Signature => "signature",
            Check::Threshold => "threshold",
            Check::Canonical => "canonical",
            Check::Type => "type",
            Check::Schema => "schema",
            Check::TrustedComment => "trusted-comment",
            Check::Issuer => "issuer",
            Check::Target => "target",
            Check::Freshness => "freshness",
            Check::Replay => "replay",
            Check::BaseState => "base-state",
            Check::Blobs => "blobs",
            Check::Policy => "policy",
            Check::PlanSemantics => "plan-semantics",
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a bundle was refused: the first check that failed, and what it found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused at check `{check}`: {detail}")]
pub struct Refused {
    pub check: Check,
    pub detail: String,
}

fn refuse(check: Check, detail: impl Into<String>) -> Refused {
    Refused {
        check,
        detail: detail.into(),
    }
}

impl From<OpenError> for Refused {
    fn from(err: OpenError) -> Self {
        refuse(Check::Open, err.to_string())
    }
}

/// What the executor remembers between runs. The next issue's executor persists it.
pub trait ExecutorState {
    /// The highest sequence applied for `target`.
    fn high_water_mark(&self, target: &str) -> Option<u64>;
    /// Whether `nonce` was already applied for `target`.
    fn nonce_seen(&self, target: &str, nonce: &str) -> bool;
    /// blake3 of the last manifest applied for `target`.
    fn last_applied(&self, target: &str) -> Option<String>;
    /// The target's current state, when the executor knows it.
    fn base_state(&self, target: &str) -> Option<BaseState>;
    /// The latest time the executor has seen (for clock-rollback detection).
    fn last_seen_time(&self) -> Option<u64>;
    /// Whether `base_state` returning `None` means "this target has no state" (a
    /// persistent executor) rather than "unknown" (a verification without state).
    fn knows_state(&self) -> bool {
        false
    }
    /// The highest trust-root version accepted for `target`, with its blake3: a lower
    /// version is refused (it may still trust a key revoked since), and so is another
    /// trust root of the same version (from version 1 on; version 0 is a single key).
    fn trust_root_mark(&self, _target: &str) -> Option<(u64, String)> {
        None
    }
    /// The lowest `policy_set.version` still accepted for `target`.
    fn min_policy_set_version(&self, _target: &str) -> Option<u64> {
        None
    }
    /// Whether nothing is known of the target (a verification without its state):
    /// the checks that need the state are then reported in
    /// [`Verified::not_checked`], never failed.
    fn stateless(&self) -> bool {
        false
    }
}

/// The [`ExecutorState`] of a verification that has no target state at hand.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoState;

impl ExecutorState for NoState {
    fn high_water_mark(&self, _target: &str) -> Option<u64> {
        None
    }
    fn nonce_seen(&self, _target: &str, _nonce: &str) -> bool {
        false
    }
    fn last_applied(&self, _target: &str) -> Option<String> {
        None
    }
    fn base_state(&self, _target: &str) -> Option<BaseState> {
        None
    }
    fn last_seen_time(&self) -> Option<u64> {
        None
    }
    fn stateless(&self) -> bool {
        true
    }
}

/// What a verification without the target's state leaves unchecked.
pub const STATE_CHECKS: [&str; 4] = [
    "replay: the sequence above the target's high-water mark, a nonce never applied",
    "fork: `previous_manifest` is the manifest the target applied last",
    "base-state: the plan was made against the target's current state",
    "trust-root and policy-set floors: not below what the target accepted",
];

/// Step 0 for a target that remembers its trust root: never an older one.
fn check_trust_mark(
    trust: &TrustRoot,
    opts: &VerifyOptions,
    state: &dyn ExecutorState,
) -> Result<(), Refused> {
    let Some((version, blake3)) = state.trust_root_mark(&opts.target) else {
        return Ok(());
    };
    if trust.doc.version < version {
        return Err(refuse(
            Check::TrustRoot,
            format!(
                "the trust root given is version {}, and this target already accepted \
                 version {version}: an older trust root may trust keys revoked since",
                trust.doc.version
            ),
        ));
    }
    if trust.doc.version == version && version > 0 && trust.blake3 != blake3 {
        return Err(refuse(
            Check::TrustRoot,
            format!(
                "the trust root given is version {version} with digest `{}`, and this target \
                 accepted version {version} with digest `{blake3}`",
                trust.blake3
            ),
        ));
    }
    Ok(())
}

/// An in-memory [`ExecutorState`].
#[derive(Debug, Default, Clone)]
pub struct MemoryState {
    pub high_water: BTreeMap<String, u64>,
    pub nonces: BTreeMap<String, BTreeSet<String>>,
    pub applied: BTreeMap<String, String>,
    pub states: BTreeMap<String, BaseState>,
    pub last_seen: Option<u64>,
}

impl ExecutorState for MemoryState {
    fn high_water_mark(&self, target: &str) -> Option<u64> {
        self.high_water.get(target).copied()
    }
    fn nonce_seen(&self, target: &str, nonce: &str) -> bool {
        self.nonces.get(target).is_some_and(|n| n.contains(nonce))
    }
    fn last_applied(&self, target: &str) -> Option<String> {
        self.applied.get(target).cloned()
    }
    fn base_state(&self, target: &str) -> Option<BaseState> {
        self.states.get(target).cloned()
    }
    fn last_seen_time(&self) -> Option<u64> {
        self.last_seen
    }
}

impl MemoryState {
    /// Records an applied manifest (what the executor does after a successful apply).
    pub fn record(&mut self, verified: &Verified) {
        let target = verified.manifest.target.environment.clone();
        self.high_water
            .insert(target.clone(), verified.manifest.sequence);
        self.nonces
            .entry(target.clone())
            .or_default()
            .insert(verified.manifest.nonce.clone());
        self.applied
            .insert(target, verified.manifest_blake3.clone());
    }
}

/// The executor's configuration for one verification.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The environment this executor applies to.
    pub target: String,
    /// This executor's audience id (must be in `executor_audience`).
    pub audience: String,
    /// The time of this verification, recorded once.
    pub now: u64,
    /// Accepted clock skew for `issued_at`.
    pub skew: u64,
    /// The longest validity window accepted.
    pub max_validity: u64,
    /// Policies that must be present with verdict `allow`.
    pub required_policies: Vec<String>,
    /// When set, the only module digests accepted.
    pub allowed_modules: Option<BTreeSet<String>>,
    /// When set, the engine version the manifest must name.
    pub engine_version: Option<String>,
}

impl VerifyOptions {
    pub fn new(target: &str, now: u64) -> VerifyOptions {
        VerifyOptions {
            target: target.to_owned(),
            audience: target.to_owned(),
            now,
            skew: 300,
            max_validity: 7 * 24 * 3600,
            required_policies: Vec::new(),
            allowed_modules: None,
            engine_version: None,
        }
    }
}

/// A bundle that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    /// The exact bytes verified.
    pub manifest_bytes: Vec<u8>,
    pub manifest_blake3: String,
    /// Distinct public keys counted per role.
    pub signers: BTreeMap<Role, BTreeSet<[u8; 32]>>,
    /// The plan body, from the verified in-memory bytes.
    pub plan_bytes: Vec<u8>,
    /// The checks that could not run (no target state: [`STATE_CHECKS`]).
    pub not_checked: Vec<&'static str>,
}

/// Verifies the bundle at `path` (design reference §4.5, steps 0–13).
pub fn verify_bundle(
    path: &Path,
    trust: &TrustRoot,
    opts: &VerifyOptions,
    state: &dyn ExecutorState,
) -> Result<Verified, Refused> {
    // 0. Time and trust root.
    trust
        .check_expiry(opts.now)
        .map_err(|e| refuse(Check::Clock, e.to_string()))?;
    if let Some(seen) = state.last_seen_time()
        && opts.now < seen
    {
        return Err(refuse(
            Check::Clock,
            format!(
                "the clock ({}) is before the last seen time ({seen})",
                opts.now
            ),
        ));
    }
    check_trust_mark(trust, opts, state)?;
    // 1. Open safely.
    let raw = bundle::open(path)?;
    verify_raw(&raw, trust, opts, state)
}

/// Verifies a bundle already opened (once, through its directory handle: everything
/// it holds is read from that handle, never by path again), as [`verify_bundle`].
pub fn verify_opened(
    raw: &RawBundle,
    trust: &TrustRoot,
    opts: &VerifyOptions,
    state: &dyn ExecutorState,
) -> Result<Verified, Refused> {
    trust
        .check_expiry(opts.now)
        .map_err(|e| refuse(Check::Clock, e.to_string()))?;
    if let Some(seen) = state.last_seen_time()
        && opts.now < seen
    {
        return Err(refuse(
            Check::Clock,
            format!(
                "the clock ({}) is before the last seen time ({seen})",
                opts.now
            ),
        ));
    }
    check_trust_mark(trust, opts, state)?;
    verify_raw(raw, trust, opts, state)
}

/// A manifest whose signatures, thresholds, trusted comments, issuer, target and
/// trust-root version verified (steps 2–7), before any check that depends on the
/// executor's state.
#[derive(Debug, Clone)]
pub struct Authentic {
    pub manifest: Manifest,
    pub manifest_blake3: String,
    /// Distinct public keys counted per role.
    pub signers: BTreeMap<Role, BTreeSet<[u8; 32]>>,
}

fn verify_raw(
    raw: &RawBundle,
    trust: &TrustRoot,
    opts: &VerifyOptions,
    state: &dyn ExecutorState,
) -> Result<Verified, Refused> {
    let Authentic {
        manifest,
        manifest_blake3,
        signers,
    } = authenticate(raw, trust, opts)?;
    verify_state_and_content(raw, opts, state, manifest, manifest_blake3, signers)
}

/// Steps 2–7: who signed what, for which target, under which trust root. Enough to
/// know that a manifest is authentic (for example the one a target last applied),
/// not that it may be applied now.
pub fn authenticate(
    raw: &RawBundle,
    trust: &TrustRoot,
    opts: &VerifyOptions,
) -> Result<Authentic, Refused> {
    // 2. Parse every .minisig strictly.
    let mut sigs = Vec::new();
    for (name, bytes) in &raw.signatures {
        let sig = Minisig::parse(bytes)
            .map_err(|e| refuse(Check::MinisigParse, format!("`{name}`: {e}")))?;
        if bundle::signature_key_id(name) != Some(sig.key_id) {
            return Err(refuse(
                Check::MinisigParse,
                format!("`{name}` holds a signature by key id {}", sig.key_id_hex()),
            ));
        }
        let tc = TrustedComment::parse(&sig.trusted_comment).map_err(|e| {
            refuse(
                Check::MinisigParse,
                format!("`{name}`: bad trusted comment: {e}"),
            )
        })?;
        sigs.push((name.as_str(), sig, tc));
    }
    // 3. Verify signatures over the raw bytes; every key with a matching id is tried.
    let manifest_bytes = &raw.manifest;
    let mut verified: Vec<(&str, &[u8; 32], &Vec<Role>, &TrustedComment)> = Vec::new();
    for (name, sig, tc) in &sigs {
        for (pk, roles) in trust.candidates(&sig.key_id) {
            if verify_signature(pk, manifest_bytes, sig).is_ok() {
                verified.push((name, &pk.key, roles, tc));
            }
        }
    }
    if verified.is_empty() {
        return Err(refuse(
            Check::Signature,
            "no signature verifies over `manifest.json` with a key of the trust root",
        ));
    }
    // 4. Thresholds: distinct public keys per role, with the role echoed in the comment.
    let mut signers: BTreeMap<Role, BTreeSet<[u8; 32]>> = BTreeMap::new();
    for (_, pk, roles, tc) in &verified {
        if roles.contains(&tc.role) {
            signers.entry(tc.role).or_default().insert(**pk);
        }
    }
    for role in [Role::PlanSigner, Role::Approver] {
        let needed = trust.doc.threshold(role);
        let found = signers.get(&role).map_or(0, BTreeSet::len);
        if (found as u64) < needed {
            return Err(refuse(
                Check::Threshold,
                format!("role `{role}` needs {needed} distinct trusted key(s), found {found}"),
            ));
        }
    }
    // 5. Parse the manifest: canonical form, type, closed schema.
    let manifest = Manifest::from_bytes(manifest_bytes).map_err(|e| match e {
        ManifestError::Canonical(_) => refuse(Check::Canonical, e.to_string()),
        ManifestError::Type(_) => refuse(Check::Type, e.to_string()),
        ManifestError::Schema(_) => refuse(Check::Schema, e.to_string()),
    })?;
    let manifest_blake3 = crate::blake3_hex(manifest_bytes);
    // 6. Trusted-comment consistency, and the issuer.
    for (name, _, roles, tc) in &verified {
        let expected_target = &manifest.target.environment;
        let problem = if tc.kind != StatementKind::PlanStatement {
            Some("it is not for a plan statement".to_owned())
        } else if tc.manifest != manifest_blake3 {
            Some(format!("it names manifest `{}`", tc.manifest))
        } else if &tc.target != expected_target {
            Some(format!("it names target `{}`", tc.target))
        } else if tc.seq != manifest.sequence {
            Some(format!("it names sequence {}", tc.seq))
        } else if tc.exp != manifest.expires_at {
            Some(format!("it names expiry {}", tc.exp))
        } else if !roles.contains(&tc.role) {
            Some(format!(
                "it claims role `{}`, which its key does not hold",
                tc.role
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(refuse(
                Check::TrustedComment,
                format!("the trusted comment of `{name}` does not echo the manifest: {problem}"),
            ));
        }
    }
    let issuer_signed = verified.iter().any(|(_, pk, roles, tc)| {
        tc.role == Role::PlanSigner
            && roles.contains(&Role::PlanSigner)
            && crate::blake3_hex(&pk[..]) == manifest.issuer.pk_blake3
    });
    if !issuer_signed {
        return Err(refuse(
            Check::Issuer,
            format!(
                "no plan-signer signature from the issuer key (pk blake3 `{}`)",
                manifest.issuer.pk_blake3
            ),
        ));
    }
    // 7. Target, signers and trust-root version.
    if manifest.target.environment != opts.target {
        return Err(refuse(
            Check::Target,
            format!(
                "the bundle is for target `{}`, this executor is `{}`",
                manifest.target.environment, opts.target
            ),
        ));
    }
    if !manifest.target.executor_audience.contains(&opts.audience) {
        return Err(refuse(
            Check::Target,
            format!("audience `{}` is not in `executor_audience`", opts.audience),
        ));
    }
    if manifest.trust_root.version < trust.doc.version {
        return Err(refuse(
            Check::Target,
            format!(
                "signed under trust root version {}, this executor holds version {}",
                manifest.trust_root.version, trust.doc.version
            ),
        ));
    }
    if manifest.trust_root.version > trust.doc.version {
        return Err(refuse(
            Check::Target,
            format!(
                "signed under trust root version {}, newer than this executor's {}: update the trust root first",
                manifest.trust_root.version, trust.doc.version
            ),
        ));
    }
    if manifest.signers_required.threshold != trust.doc.threshold(Role::PlanSigner) {
        return Err(refuse(
            Check::Target,
            "`signers_required` differs from the executor's trust root",
        ));
    }
    if manifest.trust_root.blake3 != trust.blake3 {
        return Err(refuse(
            Check::Target,
            format!(
                "signed under trust root `{}`, this executor holds `{}` (same version {}, \
                 another trust root)",
                manifest.trust_root.blake3, trust.blake3, trust.doc.version
            ),
        ));
    }
    let issuer_key_id_signed = verified.iter().any(|(_, pk, _, tc)| {
        tc.role == Role::PlanSigner
            && crate::blake3_hex(&pk[..]) == manifest.issuer.pk_blake3
            && trust
                .keys
                .iter()
                .any(|(k, _)| &k.key == *pk && k.key_id_hex() == manifest.issuer.minisign_keyid)
    });
    if !issuer_key_id_signed {
        return Err(refuse(
            Check::Issuer,
            format!(
                "`issuer.minisign_keyid` `{}` is not the key id of the issuer key",
                manifest.issuer.minisign_keyid
            ),
        ));
    }
    Ok(Authentic {
        manifest,
        manifest_blake3,
        signers,
    })
}

/// Steps 8–13: freshness, replay, base state, blobs, policies, plan semantics.
fn verify_state_and_content(
    raw: &RawBundle,
    opts: &VerifyOptions,
    state: &dyn ExecutorState,
    manifest: Manifest,
    manifest_blake3: String,
    signers: BTreeMap<Role, BTreeSet<[u8; 32]>>,
) -> Result<Verified, Refused> {
    // 8. Freshness.
    if opts.now >= manifest.expires_at {
        return Err(refuse(
            Check::Freshness,
            format!("expired at {} (now {})", manifest.expires_at, opts.now),
        ));
    }
    if manifest.issued_at > opts.now.saturating_add(opts.skew) {
        return Err(refuse(
            Check::Freshness,
            format!("not valid before {} (now {})", manifest.issued_at, opts.now),
        ));
    }
    if manifest.expires_at - manifest.issued_at > opts.max_validity {
        return Err(refuse(
            Check::Freshness,
            format!(
                "valid for {} s, longer than the maximum of {} s",
                manifest.expires_at - manifest.issued_at,
                opts.max_validity
            ),
        ));
    }
    // 9. Rollback and replay.
    let target = manifest.target.environment.as_str();
    if let Some(mark) = state.high_water_mark(target)
        && manifest.sequence <= mark
    {
        return Err(refuse(
            Check::Replay,
            format!(
                "rollback: sequence {} is not above the high-water mark {mark}",
                manifest.sequence
            ),
        ));
    }
    if state.nonce_seen(target, &manifest.nonce) {
        return Err(refuse(Check::Replay, "the nonce was already applied"));
    }
    // 10. Base state. Checked before the fork check below: a bundle sealed against an
    // older state names both an old base state and an old `previous_manifest`, and
    // "stale plan" is the diagnosis that tells the operator what to do.
    if let Some(current) = state.base_state(target) {
        match &manifest.base_state {
            Some(base) if base.lineage != current.lineage => {
                return Err(refuse(Check::BaseState, "wrong state: the lineage differs"));
            }
            Some(base) if base != &current => {
                return Err(refuse(Check::BaseState, "stale plan: the state changed"));
            }
            Some(_) => {}
            None => return Err(refuse(Check::BaseState, "the manifest names no base state")),
        }
    } else if state.knows_state()
        && let Some(base) = &manifest.base_state
    {
        return Err(refuse(
            Check::BaseState,
            format!(
                "wrong state: the plan was made against lineage {} serial {}, and this \
                 target has no state",
                base.lineage, base.serial
            ),
        ));
    }
    if !state.stateless() && state.last_applied(target) != manifest.previous_manifest {
        return Err(refuse(
            Check::Replay,
            "fork: `previous_manifest` is not the last applied manifest",
        ));
    }
    // 11. Blobs: exactly the listed set, each with its digest and size.
    let listed: BTreeSet<&str> = manifest.blobs.iter().map(|b| b.blake3.as_str()).collect();
    let present: BTreeSet<&str> = raw.blob_names.iter().map(String::as_str).collect();
    if let Some(extra) = present.difference(&listed).next() {
        return Err(refuse(
            Check::Blobs,
            format!("extra blob `{extra}` is not in the manifest"),
        ));
    }
    if let Some(missing) = listed.difference(&present).next() {
        return Err(refuse(Check::Blobs, format!("blob `{missing}` is missing")));
    }
    let mut plan_bytes = Vec::new();
    for blob in &manifest.blobs {
        let is_plan = blob.blake3 == manifest.plan.blake3;
        let max = if is_plan { MAX_PLAN_BLOB } else { MAX_BLOB }.min(blob.size);
        let read = raw
            .read_blob(&blob.blake3, max, is_plan)
            .map_err(|e| match e {
                OpenError::TooLarge { name, .. } => refuse(
                    Check::Blobs,
                    format!(
                        "blob `{name}` is larger than the {} bytes the manifest says",
                        blob.size
                    ),
                ),
                OpenError::Symlink(_) | OpenError::NotRegular(_) | OpenError::HardLink(_) => {
                    refuse(Check::Open, e.to_string())
                }
                other => refuse(Check::Blobs, other.to_string()),
            })?;
        if read.size != blob.size {
            return Err(refuse(
                Check::Blobs,
                format!(
                    "blob `{}` is {} bytes, the manifest says {}",
                    blob.blake3, read.size, blob.size
                ),
            ));
        }
        if read.blake3 != blob.blake3 {
            return Err(refuse(
                Check::Blobs,
                format!(
                    "blob `{}` does not match its digest (found `{}`)",
                    blob.blake3, read.blake3
                ),
            ));
        }
        if let Some(bytes) = read.bytes {
            plan_bytes = bytes;
        }
    }
    if manifest.plan.size != plan_bytes.len() as u64 {
        return Err(refuse(
            Check::Blobs,
            "the plan blob's size differs from `plan.size`",
        ));
    }
    // 12. Policy gate.
    if manifest.policies.is_empty() {
        return Err(refuse(Check::Policy, "no policy ran"));
    }
    if let Some(min) = state.min_policy_set_version(target)
        && manifest.policy_set.version < min
    {
        return Err(refuse(
            Check::Policy,
            format!(
                "policy set version {} is below version {min}, which this target already \
                 applied (a policy downgrade)",
                manifest.policy_set.version
            ),
        ));
    }
    let ids: Vec<&str> = manifest.policies.iter().map(|p| p.id.as_str()).collect();
    if crate::blake3_hex(ids.join("\n").as_bytes()) != manifest.policy_set.blake3 {
        return Err(refuse(
            Check::Policy,
            "`policy_set.blake3` is not the digest of the policies that ran",
        ));
    }
    if manifest.inputs.plan_file_blake3 != manifest.plan.blake3 {
        return Err(refuse(
            Check::Blobs,
            "`inputs.plan_file_blake3` is not the plan blob's digest",
        ));
    }
    for p in &manifest.policies {
        if p.verdict != "allow" {
            return Err(refuse(
                Check::Policy,
                format!("policy `{}` has verdict `{}`", p.id, p.verdict),
            ));
        }
        if p.input_blake3 != manifest.plan.blake3 {
            return Err(refuse(
                Check::Policy,
                format!("policy `{}` ran on an input that is not the plan", p.id),
            ));
        }
        if let Some(allowed) = &opts.allowed_modules
            && !allowed.contains(&p.module_blake3)
        {
            return Err(refuse(
                Check::Policy,
                format!(
                    "policy `{}` module `{}` is not allowed",
                    p.id, p.module_blake3
                ),
            ));
        }
    }
    for required in &opts.required_policies {
        if !manifest.policies.iter().any(|p| &p.id == required) {
            return Err(refuse(
                Check::Policy,
                format!("required policy `{required}` did not run"),
            ));
        }
    }
    // 13. Plan semantics: replace-only; engine equality.
    let text = std::str::from_utf8(&plan_bytes)
        .map_err(|_| refuse(Check::PlanSemantics, "the plan blob is not UTF-8"))?;
    let plan = provkey_plan::Plan::from_json(text).map_err(|e| {
        refuse(
            Check::PlanSemantics,
            format!("the plan blob does not parse: {e}"),
        )
    })?;
    if let Some(change) = plan
        .changes
        .iter()
        .find(|c| c.action == provkey_plan::Action::Update)
    {
        return Err(refuse(
            Check::PlanSemantics,
            format!(
                "`{}` is an in-place update; only replace-only plans apply",
                change.address
            ),
        ));
    }
    if let Some(version) = &opts.engine_version
        && &manifest.engine.version != version
    {
        return Err(refuse(
            Check::PlanSemantics,
            format!(
                "engine version `{}` differs from the executor's `{version}`",
                manifest.engine.version
            ),
        ));
    }
    Ok(Verified {
        manifest_bytes: raw.manifest.clone(),
        manifest,
        manifest_blake3,
        signers,
        plan_bytes,
        not_checked: if state.stateless() {
            STATE_CHECKS.to_vec()
        } else {
            Vec::new()
        },
    })
}
