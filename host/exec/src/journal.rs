//! The claim journal: `journal.json`, present only while an apply is unfinished.
//!
//! Before its first change to the target, an apply records durably (write, fsync,
//! rename, fsync the directory) which bundle it claimed. After a crash, the record
//! stays: re-running the same bundle resumes and finishes it (every step is
//! idempotent), and any other bundle is refused until then. The record is removed,
//! durably, once the new state is committed and the audit log says so.

use serde::{Deserialize, Serialize};

use crate::fsio::{DurableFs, remove_durable, write_atomic};

pub const JOURNAL_FILE: &str = "journal.json";
const MAX_JOURNAL: u64 = 64 << 10;

/// The claim of one bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// Always `claimed`.
    pub state: String,
    /// blake3 of the claimed manifest.
    pub manifest: String,
    pub target: String,
    pub sequence: u64,
    pub nonce: String,
    pub claimed_at: u64,
    /// blake3 of the canonical JSON of the other fields.
    pub checksum: String,
}

#[derive(Serialize)]
struct Unsummed<'a> {
    state: &'a str,
    manifest: &'a str,
    target: &'a str,
    sequence: u64,
    nonce: &'a str,
    claimed_at: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read or write `{JOURNAL_FILE}`: {0}")]
    Io(#[from] std::io::Error),
    #[error("`{JOURNAL_FILE}` is damaged: {0}")]
    Damaged(String),
}

impl Claim {
    pub fn new(
        manifest: &str,
        target: &str,
        sequence: u64,
        nonce: &str,
        now: u64,
    ) -> Result<Claim, JournalError> {
        let mut claim = Claim {
            state: "claimed".into(),
            manifest: manifest.into(),
            target: target.into(),
            sequence,
            nonce: nonce.into(),
            claimed_at: now,
            checksum: String::new(),
        };
        claim.checksum = claim.sum()?;
        Ok(claim)
    }

    fn sum(&self) -> Result<String, JournalError> {
        let bytes = serde_json_canonicalizer::to_vec(&Unsummed {
            state: &self.state,
            manifest: &self.manifest,
            target: &self.target,
            sequence: self.sequence,
            nonce: &self.nonce,
            claimed_at: self.claimed_at,
        })
        .map_err(|e| JournalError::Damaged(e.to_string()))?;
        Ok(blake3::hash(&bytes).to_hex().to_string())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, JournalError> {
        let mut bytes =
            serde_json::to_vec_pretty(self).map_err(|e| JournalError::Damaged(e.to_string()))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Claim, JournalError> {
        let claim: Claim = serde_json::from_slice(bytes)
            .map_err(|e| JournalError::Damaged(format!("not valid JSON: {e}")))?;
        if claim.state != "claimed" || claim.sum()? != claim.checksum {
            return Err(JournalError::Damaged(
                "the checksum does not match the content".into(),
            ));
        }
        Ok(claim)
    }
}

/// The unfinished claim, if any.
pub fn load(fs: &dyn DurableFs) -> Result<Option<Claim>, JournalError> {
    match fs.read(JOURNAL_FILE, MAX_JOURNAL)? {
        None => Ok(None),
        Some(bytes) => Claim::from_bytes(&bytes).map(Some),
    }
}

/// Records the claim durably (failpoints `journal.*`).
pub fn record(fs: &dyn DurableFs, claim: &Claim) -> Result<(), JournalError> {
    write_atomic(fs, JOURNAL_FILE, &claim.to_bytes()?, "journal")?;
    Ok(())
}

/// Removes the claim durably (failpoints `unclaim.*`).
pub fn clear(fs: &dyn DurableFs) -> Result<(), JournalError> {
    remove_durable(fs, JOURNAL_FILE, "unclaim")?;
    Ok(())
}
