//! The highest version seen of each published set, per publisher key and set name:
//! `<state dir>/provkey/policy-set-versions.json` (`$PROVKEY_STATE_DIR/…` when set;
//! the user's state directory, else the cache directory). A set whose version is
//! lower than one already seen is a downgrade and is refused.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::anyhow;

use crate::exit::{CliError, CliResult};

const FILE: &str = "policy-set-versions.json";

fn path() -> CliResult<PathBuf> {
    if let Some(dir) = std::env::var_os("PROVKEY_STATE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join(FILE));
    }
    dirs::state_dir()
        .or_else(dirs::cache_dir)
        .map(|d| d.join("provkey").join(FILE))
        .ok_or_else(|| {
            CliError::bad_input(anyhow!(
                "cannot find the user's state directory for the policy set versions"
            ))
            .with_help("set `PROVKEY_STATE_DIR`")
        })
}

fn key(publisher_pk_blake3: &str, name: &str) -> String {
    format!("{publisher_pk_blake3}/{name}")
}

fn read() -> CliResult<(PathBuf, BTreeMap<String, u64>)> {
    let path = path()?;
    match std::fs::read(&path) {
        Ok(bytes) => {
            let map = serde_json::from_slice(&bytes).map_err(|e| {
                CliError::bad_input(anyhow!(
                    "the policy set versions file `{}` is corrupt: {e}",
                    path.display()
                ))
                .with_help("fix it (a JSON object of versions) or remove it")
            })?;
            Ok((path, map))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok((path, BTreeMap::new())),
        Err(err) => Err(CliError::bad_input(anyhow!(
            "cannot read `{}`: {err}",
            path.display()
        ))),
    }
}

/// The highest version seen of this set from this publisher.
pub fn seen(publisher_pk_blake3: &str, name: &str) -> CliResult<Option<u64>> {
    let (_, map) = read()?;
    Ok(map.get(&key(publisher_pk_blake3, name)).copied())
}

/// Records `version` when it is the highest seen.
pub fn record(publisher_pk_blake3: &str, name: &str, version: u64) -> CliResult<()> {
    let (path, mut map) = read()?;
    let entry = map.entry(key(publisher_pk_blake3, name)).or_insert(0);
    if *entry >= version {
        return Ok(());
    }
    *entry = version;
    let bytes = serde_json::to_vec_pretty(&map)
        .map_err(|e| CliError::bad_input(anyhow!("cannot encode the versions: {e}")))?;
    super::review::write_atomic(&path, &bytes)
}
