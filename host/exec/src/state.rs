//! The executor's persistent state: `state.json` in the target directory.
//!
//! ```json
//! {"format": "provkey-executor-state", "format_version": "0.1",
//!  "target": "prod", "high_water": 7, "last_seen": 1790000000,
//!  "nonces": ["…32 hex…", …],
//!  "trust_root": {"version": 3, "blake3": "…"}, "policy_set_version": 2,
//!  "audit_head": {"seq": 12, "blake3": "…"},
//!  "state": {"format": "provkey-state", "lineage": "…", "serial": 3,
//!            "applied_manifest": "…", "resources": […]},
//!  "checksum": "…64 hex…"}
//! ```
//!
//! `state` is the target's state as `provkey plan --state` reads it (`provkey-exec
//! state` prints it); the rest is what only the executor needs (the target this
//! directory belongs to, the sequence high-water mark, every nonce applied, the latest
//! time seen, the highest trust-root version accepted with its digest, the highest
//! policy-set version applied, the audit log's head at the commit). `checksum` is blake3 over the RFC 8785 canonical JSON
//! of the object without it: a damaged file is refused, never read as "nothing
//! deployed". The whole file is replaced at once ([`crate::fsio::write_atomic`]), so
//! the state, the high-water mark, the nonce log and the trust marks move together.

use std::collections::BTreeSet;

use provkey_core::manifest::BaseState;
use provkey_core::verify::ExecutorState;
use provkey_desired::State;
use serde::{Deserialize, Serialize};

use crate::fsio::{DurableFs, write_atomic};

/// The state file's name in the target directory.
pub const STATE_FILE: &str = "state.json";
/// The `format` of the state file.
pub const FORMAT: &str = "provkey-executor-state";
pub const FORMAT_VERSION: &str = "0.1";
/// The largest state file read.
pub const MAX_STATE_FILE: u64 = 256 << 20;

/// What the executor remembers about its target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetState {
    /// The environment this directory belongs to (fixed at the first apply).
    pub target: String,
    /// The highest sequence applied.
    pub high_water: u64,
    /// Every nonce applied.
    pub nonces: BTreeSet<String>,
    /// The latest `now` an apply ran at (clock-rollback detection).
    pub last_seen: u64,
    /// What is deployed (lineage, serial, resources, the last manifest applied).
    pub state: State,
    /// The highest trust-root version accepted here, with its digest: a lower version
    /// (an old file that still trusts a revoked key) is refused.
    pub trust_root: Option<TrustMark>,
    /// The highest policy-set version applied here: a bundle checked under a lower
    /// one is refused.
    pub policy_set_version: Option<u64>,
    /// The audit log's head when this state was committed: `log --verify` checks that
    /// the log still holds that line (not cut, not rewritten).
    pub audit_head: Option<crate::audit::Head>,
}

/// A trust root as a target remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustMark {
    pub version: u64,
    pub blake3: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    format: String,
    format_version: String,
    target: String,
    high_water: u64,
    last_seen: u64,
    nonces: Vec<String>,
    state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trust_root: Option<TrustMark>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    policy_set_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audit_head: Option<crate::audit::Head>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    format: String,
    format_version: String,
    target: String,
    high_water: u64,
    last_seen: u64,
    nonces: Vec<String>,
    state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trust_root: Option<TrustMark>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    policy_set_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audit_head: Option<crate::audit::Head>,
    checksum: String,
}

/// Why the state file was refused.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot read `{STATE_FILE}`: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot write `{STATE_FILE}`: {0}")]
    Write(#[source] std::io::Error),
    #[error("`{STATE_FILE}` is damaged: {0}")]
    Damaged(String),
}

fn checksum(body: &Body) -> Result<String, StateFileError> {
    let bytes = serde_json_canonicalizer::to_vec(body)
        .map_err(|e| StateFileError::Damaged(format!("cannot canonicalize: {e}")))?;
    Ok(blake3::hash(&bytes).to_hex().to_string())
}

impl TargetState {
    fn body(&self) -> Body {
        Body {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION.into(),
            target: self.target.clone(),
            high_water: self.high_water,
            last_seen: self.last_seen,
            nonces: self.nonces.iter().cloned().collect(),
            state: self.state.clone(),
            trust_root: self.trust_root.clone(),
            policy_set_version: self.policy_set_version,
            audit_head: self.audit_head.clone(),
        }
    }

    /// The file's bytes (pretty JSON with its checksum, newline-terminated).
    pub fn to_bytes(&self) -> Result<Vec<u8>, StateFileError> {
        let body = self.body();
        let sum = checksum(&body)?;
        let form = FileForm {
            format: body.format,
            format_version: body.format_version,
            target: body.target,
            high_water: body.high_water,
            last_seen: body.last_seen,
            nonces: body.nonces,
            state: body.state,
            trust_root: body.trust_root,
            policy_set_version: body.policy_set_version,
            audit_head: body.audit_head,
            checksum: sum,
        };
        let mut bytes = serde_json::to_vec_pretty(&form)
            .map_err(|e| StateFileError::Damaged(format!("cannot serialize: {e}")))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Parses and checks the file's bytes: format, checksum, the state's own rules.
    pub fn from_bytes(bytes: &[u8]) -> Result<TargetState, StateFileError> {
        let damaged = |m: String| StateFileError::Damaged(m);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(damaged("the file is empty".into()));
        }
        let form: FileForm =
            serde_json::from_slice(bytes).map_err(|e| damaged(format!("not valid JSON: {e}")))?;
        if form.format != FORMAT || form.format_version != FORMAT_VERSION {
            return Err(damaged(format!(
                "format `{}` `{}`, expected `{FORMAT}` `{FORMAT_VERSION}`",
                form.format, form.format_version
            )));
        }
        let body = Body {
            format: form.format,
            format_version: form.format_version,
            target: form.target,
            high_water: form.high_water,
            last_seen: form.last_seen,
            nonces: form.nonces,
            state: form.state,
            trust_root: form.trust_root,
            policy_set_version: form.policy_set_version,
            audit_head: form.audit_head,
        };
        if checksum(&body)? != form.checksum {
            return Err(damaged("the checksum does not match the content".into()));
        }
        body.state.validate().map_err(damaged)?;
        Ok(TargetState {
            target: body.target,
            high_water: body.high_water,
            nonces: body.nonces.into_iter().collect(),
            last_seen: body.last_seen,
            state: body.state,
            trust_root: body.trust_root,
            policy_set_version: body.policy_set_version,
            audit_head: body.audit_head,
        })
    }

    /// The base state a bundle must name to apply on top of this one.
    pub fn base_state(&self) -> Option<BaseState> {
        base_state_of(&self.state)
    }
}

/// The `base_state` of a state: lineage, serial, blake3 of its canonical JSON.
/// `None` for a state with no lineage (a target never deployed).
pub fn base_state_of(state: &State) -> Option<BaseState> {
    state.lineage.map(|lineage| BaseState {
        lineage: lineage.to_string(),
        serial: state.serial,
        blake3: state.content_blake3(),
    })
}

/// Reads the state file: `None` when the target was never deployed, an error when it
/// is damaged (never taken as "nothing deployed").
pub fn load(fs: &dyn DurableFs) -> Result<Option<TargetState>, StateFileError> {
    match fs.read(STATE_FILE, MAX_STATE_FILE)? {
        None => Ok(None),
        Some(bytes) => TargetState::from_bytes(&bytes).map(Some),
    }
}

/// Replaces the state file durably (failpoints `state.*`).
pub fn store(fs: &dyn DurableFs, state: &TargetState) -> Result<(), StateFileError> {
    let bytes = state.to_bytes()?;
    write_atomic(fs, STATE_FILE, &bytes, "state").map_err(StateFileError::Write)?;
    Ok(())
}

/// The persistent state as the verifier sees it.
#[derive(Debug)]
pub struct Known<'a>(pub Option<&'a TargetState>);

impl ExecutorState for Known<'_> {
    fn high_water_mark(&self, target: &str) -> Option<u64> {
        self.0.filter(|s| s.target == target).map(|s| s.high_water)
    }
    fn nonce_seen(&self, target: &str, nonce: &str) -> bool {
        self.0
            .is_some_and(|s| s.target == target && s.nonces.contains(nonce))
    }
    fn last_applied(&self, target: &str) -> Option<String> {
        self.0
            .filter(|s| s.target == target)
            .and_then(|s| s.state.applied_manifest.clone())
    }
    fn base_state(&self, target: &str) -> Option<BaseState> {
        self.0
            .filter(|s| s.target == target)
            .and_then(TargetState::base_state)
    }
    fn last_seen_time(&self) -> Option<u64> {
        self.0.map(|s| s.last_seen)
    }
    fn knows_state(&self) -> bool {
        true
    }
    fn trust_root_mark(&self, target: &str) -> Option<(u64, String)> {
        self.0
            .filter(|s| s.target == target)
            .and_then(|s| s.trust_root.as_ref())
            .map(|m| (m.version, m.blake3.clone()))
    }
    fn min_policy_set_version(&self, target: &str) -> Option<u64> {
        self.0
            .filter(|s| s.target == target)
            .and_then(|s| s.policy_set_version)
    }
}
