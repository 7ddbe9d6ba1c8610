//! The audit log: `DIR/audit.log`, append-only JSON lines, hash-chained.
//!
//! Every line is the RFC 8785 canonical JSON of one [`Entry`]; each entry carries
//! `seq` (1, 2, 3, …) and `prev`, the blake3 of the previous line's bytes (64 zeros
//! for the first). Editing, removing, reordering or inserting a line breaks the chain
//! from that line on, which [`verify`] reports with the line number. Every refusal of
//! a bundle and every apply is appended; each line is synced before the executor goes
//! on. A line torn by a crash in the middle of an append (no final newline) is cut off
//! by the next append, which records that it did.

use std::io::{Read as _, Write as _};

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

use crate::fsio::{open_regular, open_rw, sync_dir};

pub const AUDIT_FILE: &str = "audit.log";
const MAX_AUDIT: u64 = 1 << 30;
/// `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub seq: u64,
    /// Unix seconds (the apply's `now`).
    pub time: u64,
    /// `claimed`, `resumed`, `applied`, `failed`, `refused`, `abandoned`, `recovered`.
    pub event: String,
    pub target: String,
    /// blake3 of the bundle's manifest, when it could be read.
    pub manifest: Option<String>,
    /// The bundle's sequence, when known.
    pub sequence: Option<u64>,
    /// The check that refused, for refusals.
    pub check: Option<String>,
    pub detail: String,
    /// blake3 of the previous line.
    pub prev: String,
}

/// What to append (the log fills `seq` and `prev`).
#[derive(Debug, Clone)]
pub struct Record {
    pub time: u64,
    pub event: &'static str,
    pub target: String,
    pub manifest: Option<String>,
    pub sequence: Option<u64>,
    pub check: Option<String>,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot read or append `{AUDIT_FILE}`: {0}")]
    Io(#[from] std::io::Error),
    #[error("`{AUDIT_FILE}` line {line}: {reason}")]
    Broken { line: usize, reason: String },
}

/// A verified log.
#[derive(Debug, Clone)]
pub struct Verified {
    pub entries: Vec<Entry>,
    /// blake3 of the last line (the chain's head), or [`GENESIS`].
    pub head: String,
}

fn encode(entry: &Entry) -> Result<Vec<u8>, AuditError> {
    serde_json_canonicalizer::to_vec(entry).map_err(|e| AuditError::Broken {
        line: 0,
        reason: format!("cannot encode an entry: {e}"),
    })
}

/// Appends one record (after cutting a torn last line), synced before returning.
pub fn append(root: &Dir, record: Record) -> Result<Entry, AuditError> {
    let mut file = open_rw(root, AUDIT_FILE, true)?;
    let mut content = Vec::new();
    (&mut file).take(MAX_AUDIT).read_to_end(&mut content)?;
    let created = content.is_empty();
    let mut torn = None;
    if !content.is_empty() && !content.ends_with(b"\n") {
        let keep = content
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        torn = Some(content.len() - keep);
        file.set_len(keep as u64)?;
        content.truncate(keep);
    }
    let mut lines: Vec<&[u8]> = content.split(|b| *b == b'\n').collect();
    lines.pop(); // after the final newline
    let (mut seq, mut prev) = match lines.last() {
        Some(last) => {
            let n = serde_json::from_slice::<Entry>(last)
                .map(|e| e.seq)
                .unwrap_or(lines.len() as u64);
            (n, blake3::hash(last).to_hex().to_string())
        }
        None => (0, GENESIS.to_owned()),
    };
    let mut out = Vec::new();
    if let Some(bytes) = torn {
        seq += 1;
        let entry = Entry {
            seq,
            time: record.time,
            event: "recovered".into(),
            target: record.target.clone(),
            manifest: None,
            sequence: None,
            check: None,
            detail: format!("cut an incomplete last line of {bytes} bytes (torn by a crash)"),
            prev: prev.clone(),
        };
        let line = encode(&entry)?;
        prev = blake3::hash(&line).to_hex().to_string();
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    let entry = Entry {
        seq: seq + 1,
        time: record.time,
        event: record.event.into(),
        target: record.target,
        manifest: record.manifest,
        sequence: record.sequence,
        check: record.check,
        detail: record.detail,
        prev,
    };
    out.extend_from_slice(&encode(&entry)?);
    out.push(b'\n');
    file.write_all(&out)?;
    file.sync_data()?;
    if created {
        sync_dir(root)?;
    }
    Ok(entry)
}

/// Reads the log without checking it (empty when there is none).
pub fn read(root: &Dir) -> Result<Vec<u8>, AuditError> {
    match open_regular(root, AUDIT_FILE) {
        Ok(file) => Ok(crate::fsio::read_capped(file, AUDIT_FILE, MAX_AUDIT)?),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(err.into()),
    }
}

/// Walks the chain: every line canonical, numbered in order, carrying the blake3 of
/// the line before it.
pub fn verify_bytes(content: &[u8]) -> Result<Verified, AuditError> {
    let mut entries = Vec::new();
    let mut prev = GENESIS.to_owned();
    if content.is_empty() {
        return Ok(Verified {
            entries,
            head: prev,
        });
    }
    let mut lines: Vec<&[u8]> = content.split(|b| *b == b'\n').collect();
    let last = lines.pop().unwrap_or_default();
    if !last.is_empty() {
        return Err(AuditError::Broken {
            line: lines.len() + 1,
            reason: "the line is incomplete (no final newline: torn by a crash, or cut)".into(),
        });
    }
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let broken = |reason: String| AuditError::Broken { line: n, reason };
        let entry: Entry =
            serde_json::from_slice(line).map_err(|e| broken(format!("not an entry: {e}")))?;
        if encode(&entry)?.as_slice() != *line {
            return Err(broken("not in canonical form (edited?)".into()));
        }
        if entry.seq != n as u64 {
            return Err(broken(format!(
                "sequence {} where {n} was expected (a line removed or inserted)",
                entry.seq
            )));
        }
        if entry.prev != prev {
            return Err(broken(
                "`prev` is not the blake3 of the line before: the chain is broken (a line edited, removed or reordered)".into(),
            ));
        }
        prev = blake3::hash(line).to_hex().to_string();
        entries.push(entry);
    }
    Ok(Verified {
        entries,
        head: prev,
    })
}

/// Reads and verifies the target's log.
pub fn verify(root: &Dir) -> Result<Verified, AuditError> {
    verify_bytes(&read(root)?)
}

/// Whether an `applied` entry for `manifest` is in the log (read leniently: used to
/// append it exactly once when an apply resumes).
pub fn has_applied(root: &Dir, manifest: &str) -> Result<bool, AuditError> {
    let content = read(root)?;
    Ok(content.split(|b| *b == b'\n').any(|line| {
        serde_json::from_slice::<Entry>(line)
            .is_ok_and(|e| e.event == "applied" && e.manifest.as_deref() == Some(manifest))
    }))
}

/// The event of the last entry about `manifest`, if any (read leniently: used to
/// append an entry exactly once when an interrupted command runs again).
pub fn last_event_for(root: &Dir, manifest: &str) -> Result<Option<String>, AuditError> {
    let content = read(root)?;
    Ok(content
        .split(|b| *b == b'\n')
        .rev()
        .filter_map(|line| serde_json::from_slice::<Entry>(line).ok())
        .find(|e| e.manifest.as_deref() == Some(manifest))
        .map(|e| e.event))
}

/// A point of the chain: a line's `seq` and the blake3 of its bytes. The state records
/// the head at each commit (the anchor), and an operator can keep one elsewhere
/// (`provkey-exec log --head`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub seq: u64,
    pub blake3: String,
}

impl Verified {
    /// The head of the verified log (`None` for an empty log).
    pub fn head(&self) -> Option<Head> {
        self.entries.last().map(|e| Head {
            seq: e.seq,
            blake3: self.head.clone(),
        })
    }

    /// The blake3 of line `seq`, when the log has it.
    fn line_blake3(&self, seq: u64) -> Option<&str> {
        let n = usize::try_from(seq).ok()?;
        if n == 0 || n > self.entries.len() {
            None
        } else if n == self.entries.len() {
            Some(&self.head)
        } else {
            Some(&self.entries[n].prev)
        }
    }

    /// Checks that the log still holds `point` (the same line at the same place).
    pub fn holds(&self, point: &Head, whose: &str) -> Result<(), AuditError> {
        let line = usize::try_from(point.seq).unwrap_or(usize::MAX);
        match self.line_blake3(point.seq) {
            None => Err(AuditError::Broken {
                line: self.entries.len() + 1,
                reason: format!(
                    "the log ends at line {}, and {whose} names line {} (blake3 {}): lines \
                     were cut from the end",
                    self.entries.len(),
                    point.seq,
                    point.blake3
                ),
            }),
            Some(b3) if b3 != point.blake3 => Err(AuditError::Broken {
                line,
                reason: format!(
                    "line {} is not the line {whose} names (blake3 {}, found {b3}): the log \
                     was rewritten",
                    point.seq, point.blake3
                ),
            }),
            Some(_) => Ok(()),
        }
    }

    /// Checks the log against the state's anchor: the anchored line is there, and so is
    /// the `applied` line of the state's manifest after it (unless an apply is still
    /// claimed: a crash may come between the commit and that line).
    pub fn check_anchor(
        &self,
        anchor: &Head,
        applied: Option<&str>,
        claimed: bool,
    ) -> Result<(), AuditError> {
        self.holds(anchor, "the state's anchor")?;
        if let Some(manifest) = applied
            && !claimed
            && !self.entries.iter().any(|e| {
                e.seq > anchor.seq
                    && e.event == "applied"
                    && e.manifest.as_deref() == Some(manifest)
            })
        {
            return Err(AuditError::Broken {
                line: self.entries.len() + 1,
                reason: format!(
                    "the state says manifest `{manifest}` was applied, and the log has no \
                     `applied` line for it after line {}: the end of the log was cut",
                    anchor.seq
                ),
            });
        }
        Ok(())
    }
}

/// The log's current head, read leniently (at commit: the chain is what `verify`
/// checks).
pub fn head(root: &Dir) -> Result<Option<Head>, AuditError> {
    let content = read(root)?;
    let Some(end) = content.iter().rposition(|b| *b == b'\n') else {
        return Ok(None);
    };
    let complete = &content[..end];
    let last = complete.rsplit(|b| *b == b'\n').next().unwrap_or_default();
    let entry: Entry = serde_json::from_slice(last).map_err(|e| AuditError::Broken {
        line: 0,
        reason: format!("the last line is not an entry: {e}"),
    })?;
    Ok(Some(Head {
        seq: entry.seq,
        blake3: blake3::hash(last).to_hex().to_string(),
    }))
}
