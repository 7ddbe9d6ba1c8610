//! The target's current state, as the executor records it after each apply.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use uuid::Uuid;

use crate::desired::Kind;
use crate::digest;

/// The `format` of a state file.
pub const STATE_FORMAT: &str = "provkey-state";
/// The version of the state format this crate reads and writes.
pub const STATE_FORMAT_VERSION: &str = "0.1";
/// State files larger than this are refused.
pub const MAX_STATE_BYTES: u64 = 256 << 20;

/// What is deployed on a target.
///
/// ```json
/// {"format": "provkey-state", "format_version": "0.1",
///  "lineage": "6f1c…-…", "serial": 3,
///  "resources": [{"address": "instance.web", "type": "instance", "name": "web",
///                 "depends_on": ["artifact.app"], "artifact_digest": "blake3:…",
///                 "config_digest": "blake3:…", "attributes": {…}}]}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Always [`STATE_FORMAT`].
    pub format: String,
    /// Always [`STATE_FORMAT_VERSION`].
    pub format_version: String,
    /// The target's identity, chosen at its first apply; `None` only in the empty
    /// state of a target never deployed ([`State::empty`]), never in a file.
    pub lineage: Option<Uuid>,
    /// Incremented by every apply; `0` in the empty state.
    pub serial: u64,
    /// Every deployed resource, in any order (addresses unique).
    pub resources: Vec<StateResource>,
    /// blake3 (64 lowercase hex digits) of the sealed manifest whose apply produced
    /// this state; absent in the empty state. `provkey seal --state` names it as the
    /// bundle's `previous_manifest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_manifest: Option<String>,
}

/// One deployed resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateResource {
    /// `artifact.NAME` or `instance.NAME`.
    pub address: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub name: String,
    /// What the resource depended on when it was deployed (addresses in this state).
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// The deployed artifact's digest (an artifact's own, or an instance's).
    #[serde(default)]
    pub artifact_digest: Option<String>,
    /// The deployed configuration's digest (instances).
    #[serde(default)]
    pub config_digest: Option<String>,
    /// The attribute values it was deployed with (the applied plan's `after`).
    #[serde(default)]
    pub attributes: Value,
}

/// Why a state file was refused.
#[derive(Debug, Error)]
pub enum StateError {
    #[error("state file `{}` does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read state file `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file `{}` is empty", path.display())]
    Empty { path: PathBuf },
    #[error("state file `{}` is larger than {MAX_STATE_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("state file `{}`, line {line}, column {column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("state file `{}`: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl State {
    /// The state of a target never deployed: no lineage, serial 0, nothing deployed.
    pub fn empty() -> State {
        State {
            format: STATE_FORMAT.to_string(),
            format_version: STATE_FORMAT_VERSION.to_string(),
            lineage: None,
            serial: 0,
            resources: Vec::new(),
            applied_manifest: None,
        }
    }

    /// blake3 (64 lowercase hex digits) of the state's RFC 8785 canonical JSON: the
    /// `base_state.blake3` a sealed bundle binds, independent of whitespace and key
    /// order in the file.
    pub fn content_blake3(&self) -> String {
        let bytes = serde_json_canonicalizer::to_vec(self).unwrap_or_default();
        blake3::hash(&bytes).to_hex().to_string()
    }

    /// Reads a state file. A missing, empty, truncated or invalid file is an error:
    /// only [`State::empty`], asked for explicitly, means "nothing deployed".
    pub fn load(path: &Path) -> Result<State, StateError> {
        use std::io::Read as _;
        let file = open_without_blocking(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                StateError::Missing {
                    path: path.to_path_buf(),
                }
            } else {
                StateError::Read {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let mut bytes = Vec::new();
        file.take(MAX_STATE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| StateError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        if bytes.len() as u64 > MAX_STATE_BYTES {
            return Err(StateError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        State::from_slice(&bytes, path)
    }

    /// Parses and checks state JSON; `path` is only used in errors.
    pub fn from_slice(bytes: &[u8], path: &Path) -> Result<State, StateError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(StateError::Empty {
                path: path.to_path_buf(),
            });
        }
        let state: State = serde_json::from_slice(bytes).map_err(|err| StateError::Syntax {
            path: path.to_path_buf(),
            line: err.line(),
            column: err.column(),
            message: strip_position(&err.to_string()),
        })?;
        state.validate().map_err(|message| StateError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(state)
    }

    /// Checks what a planner and the executor rely on: the format, a lineage,
    /// unique and well-formed addresses, digests, and dependencies that name
    /// resources of this state.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != STATE_FORMAT {
            return Err(format!(
                "`format` is `{}`, expected `{STATE_FORMAT}`",
                self.format
            ));
        }
        if self.format_version != STATE_FORMAT_VERSION {
            return Err(format!(
                "unsupported `format_version` `{}` (supported: `{STATE_FORMAT_VERSION}`)",
                self.format_version
            ));
        }
        if let Some(m) = &self.applied_manifest
            && !(m.len() == 64
                && m.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        {
            return Err(format!(
                "`applied_manifest` `{m}` is not 64 lowercase hex digits"
            ));
        }
        if self.lineage.is_none() {
            return Err("`lineage` is missing: every recorded state has one".to_string());
        }
        let addresses: BTreeSet<&str> = self.resources.iter().map(|r| r.address.as_str()).collect();
        if addresses.len() != self.resources.len() {
            let mut seen = BTreeSet::new();
            let dup = self
                .resources
                .iter()
                .find(|r| !seen.insert(r.address.as_str()))
                .map(|r| r.address.clone())
                .unwrap_or_default();
            return Err(format!("resource `{dup}` appears more than once"));
        }
        for r in &self.resources {
            if r.address != r.kind.address(&r.name) {
                return Err(format!(
                    "resource `{}` of type `{}` and name `{}`: the address must be `{}`",
                    r.address,
                    r.kind.as_str(),
                    r.name,
                    r.kind.address(&r.name)
                ));
            }
            for d in [&r.artifact_digest, &r.config_digest].into_iter().flatten() {
                if !digest::is_digest(d) {
                    return Err(format!("resource `{}`: `{d}` is not a digest", r.address));
                }
            }
            for dep in &r.depends_on {
                if !addresses.contains(dep.as_str()) {
                    return Err(format!(
                        "resource `{}` depends on `{dep}`, which is not in the state",
                        r.address
                    ));
                }
            }
        }
        Ok(())
    }

    /// The planner's `current` input, and the state file's content.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Opens a state file without ever blocking in `open` (a FIFO with no writer would
/// hold `provkey plan` forever): a regular file or a pipe, nothing else.
fn open_without_blocking(path: &Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{FileType, Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    match FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) {
        FileType::RegularFile | FileType::Fifo => {
            rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
            Ok(std::fs::File::from(fd))
        }
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is not a regular file or a pipe",
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    const GOOD: &str = r#"{"format": "provkey-state", "format_version": "0.1",
        "lineage": "6f1c2a4e-8d0b-4c3e-9a55-0123456789ab", "serial": 2,
        "resources": [{"address": "artifact.app", "type": "artifact", "name": "app",
                       "artifact_digest": "blake3:0000000000000000000000000000000000000000000000000000000000000000"}]}"#;

    #[test]
    fn a_recorded_state_round_trips() {
        let state = State::from_slice(GOOD.as_bytes(), Path::new("s.json")).unwrap();
        assert_eq!(state.serial, 2);
        let again = State::from_slice(state.to_json().as_bytes(), Path::new("s.json")).unwrap();
        assert_eq!(state, again);
    }

    #[test]
    fn empty_truncated_and_lineage_less_files_are_refused() {
        let p = Path::new("s.json");
        assert!(matches!(
            State::from_slice(b"  \n", p),
            Err(StateError::Empty { .. })
        ));
        let err = State::from_slice(&GOOD.as_bytes()[..40], p).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        let err = State::from_slice(State::empty().to_json().as_bytes(), p).unwrap_err();
        assert!(err.to_string().contains("lineage"), "{err}");
        let bad = GOOD.replace("\"name\": \"app\"", "\"name\": \"web\"");
        let err = State::from_slice(bad.as_bytes(), p).unwrap_err();
        assert!(err.to_string().contains("must be `artifact.web`"), "{err}");
        let err = State::load(Path::new("/nonexistent/state.json")).unwrap_err();
        assert!(matches!(err, StateError::Missing { .. }));
    }
}
