//! Policy sets: the `provkey.toml` of a repository under review, its lock file
//! `provkey.lock`, organization sets published and signed by a policy publisher
//! (directories or HTTP/HTTPS URLs), enforcement levels, waivers and overrides.
//!
//! `provkey.toml` (paths are relative to it):
//!
//! ```toml
//! trust = "trust-root.json"        # verifies organization sets, waivers, overrides
//! waivers = "waivers.toml"         # optional, signed by an approver
//!
//! [policy.immutable]               # a stock policy, by id
//! stock = "immutable"
//! enforcement = "hard-mandatory"   # advisory | soft-mandatory | hard-mandatory
//!
//! [policy.mine]                    # a local component, by path
//! path = "policies/mine.wasm"
//! rules = { "my-rule" = "advisory" }
//! config = { limit = 3 }
//!
//! [set.acme]                       # an organization set, by reference
//! source = "https://policies.example/acme"   # or a directory
//! [set.acme.policy.no-remote-shell]          # raise its levels (never lower)
//! enforcement = "hard-mandatory"
//! ```

pub mod fetch;
pub mod review;
pub mod state;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use provkey_core::policy_set::{
    COMPONENTS_DIR, MAX_SET_BYTES, PolicySetDoc, SET_FILE, SET_SIGNATURE_FILE,
};
use provkey_core::trust::TrustRoot;
use provkey_plan::Enforcement;
use provkey_runtime::PolicyOrigin;
use serde::{Deserialize, Serialize};

use self::fetch::{ComponentCache, MAX_COMPONENT_BYTES, Source};
use self::review::{Levels, PolicyLevels};
use crate::exit::{CliError, CliResult};

/// The policy set file's name.
pub const SET_FILE_NAME: &str = "provkey.toml";
/// The lock file's name, beside it.
pub const LOCK_FILE_NAME: &str = "provkey.lock";
/// The lock file's format version.
pub const LOCK_VERSION: u32 = 1;
const MAX_FILE_BYTES: usize = 1 << 20;

fn bad(msg: String) -> CliError {
    CliError::bad_input(anyhow!(msg))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySetFile {
    /// The trust root (path) that verifies organization sets, waivers and overrides.
    pub trust: Option<String>,
    /// The waivers file (path).
    pub waivers: Option<String>,
    /// The repository's own policies, by id.
    #[serde(default)]
    pub policy: BTreeMap<String, LocalPolicy>,
    /// Organization sets, by name.
    #[serde(default)]
    pub set: BTreeMap<String, SetRef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalPolicy {
    /// A stock policy's id.
    pub stock: Option<String>,
    /// A component file.
    pub path: Option<String>,
    pub enforcement: Option<Enforcement>,
    #[serde(default)]
    pub rules: BTreeMap<String, Enforcement>,
    pub config: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRef {
    /// A directory (relative to `provkey.toml`) or an `http://` / `https://` URL.
    pub source: String,
    /// Raised levels of the set's policies, by id.
    #[serde(default)]
    pub policy: BTreeMap<String, Levels>,
}

/// `provkey.toml`, read.
#[derive(Debug)]
pub struct PolicySetContext {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub blake3: String,
    pub file: PolicySetFile,
}

impl PolicySetContext {
    pub fn load(path: &Path) -> CliResult<PolicySetContext> {
        let shown = path.display();
        let bytes = provkey_runtime::read_bounded(path, MAX_FILE_BYTES)
            .map_err(|e| bad(format!("cannot read policy set `{shown}`: {e}")))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| bad(format!("policy set `{shown}` is not UTF-8 text")))?;
        let file: PolicySetFile = toml::from_str(text).map_err(|e| {
            bad(format!("policy set `{shown}` is malformed: {e}"))
                .with_help("the README's section `Policy sets` describes provkey.toml")
        })?;
        for (id, p) in &file.policy {
            match (&p.stock, &p.path) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(bad(format!(
                        "policy `{id}` in `{shown}` must have exactly one of `stock` and `path`"
                    )));
                }
            }
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(PolicySetContext {
            path: path.to_path_buf(),
            dir,
            blake3: provkey_core::blake3_hex(&bytes),
            file,
        })
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE_NAME)
    }

    /// The trust root: `--trust`, else `trust = …` of the file.
    pub fn trust_path(&self, cli: Option<&Path>) -> Option<PathBuf> {
        cli.map(Path::to_path_buf)
            .or_else(|| self.file.trust.as_ref().map(|t| self.dir.join(t)))
    }

    pub fn waivers_path(&self) -> Option<PathBuf> {
        self.file.waivers.as_ref().map(|w| self.dir.join(w))
    }
}

// ---- the lock file ---------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub version: u32,
    /// blake3 of the `provkey.toml` it was made from.
    pub policy_set_blake3: String,
    #[serde(default)]
    pub set: Vec<LockedSet>,
    #[serde(default)]
    pub policy: Vec<LockedPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSet {
    pub name: String,
    pub source: String,
    pub version: u64,
    /// blake3 of its `policy-set.json`.
    pub blake3: String,
    /// The publisher key id that signed it.
    pub publisher: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPolicy {
    pub id: String,
    /// `stock`, `path:<path>` or `set:<name>`.
    pub source: String,
    pub blake3: String,
}

impl Lock {
    pub fn read(path: &Path) -> CliResult<Lock> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| {
            bad(format!("cannot read lock file `{shown}`: {e}"))
                .with_help("run `provkey lock` to resolve provkey.toml and write it")
        })?;
        let lock: Lock = toml::from_str(&text).map_err(|e| {
            bad(format!("lock file `{shown}` is malformed: {e}"))
                .with_help("run `provkey lock` to write it again")
        })?;
        if lock.version != LOCK_VERSION {
            return Err(bad(format!(
                "lock file `{shown}` has version {}, this provkey reads version {LOCK_VERSION}",
                lock.version
            ))
            .with_help("run `provkey lock` to write it again"));
        }
        Ok(lock)
    }

    pub fn to_text(&self) -> CliResult<String> {
        let body =
            toml::to_string(self).map_err(|e| bad(format!("cannot encode the lock: {e}")))?;
        Ok(format!(
            "# provkey.lock: written by `provkey lock` from provkey.toml; do not edit.\n{body}"
        ))
    }
}

// ---- resolution ------------------------------------------------------------------

/// One policy to run, with its bytes checked against its digest.
#[derive(Debug)]
pub struct ResolvedPolicy {
    pub id: String,
    /// As in the lock: `stock`, `path:<path>`, `set:<name>`.
    pub source: String,
    pub blake3: String,
    pub bytes: Vec<u8>,
    pub origin: PolicyOrigin,
    /// Configuration (JSON text), when the set gives one.
    pub config: Option<String>,
    pub levels: PolicyLevels,
}

#[derive(Debug)]
pub struct Resolved {
    pub policies: Vec<ResolvedPolicy>,
    pub sets: Vec<LockedSet>,
    pub trust: Option<TrustRoot>,
}

impl Resolved {
    pub fn to_lock(&self, ctx: &PolicySetContext) -> Lock {
        Lock {
            version: LOCK_VERSION,
            policy_set_blake3: ctx.blake3.clone(),
            set: self.sets.clone(),
            policy: self
                .policies
                .iter()
                .map(|p| LockedPolicy {
                    id: p.id.clone(),
                    source: p.source.clone(),
                    blake3: p.blake3.clone(),
                })
                .collect(),
        }
    }
}

enum Bytes {
    Ready(Vec<u8>),
    Fetch(Source, String),
}

struct Pending {
    id: String,
    source: String,
    blake3: String,
    bytes: Bytes,
    origin: PolicyOrigin,
    config: Option<String>,
    levels: PolicyLevels,
}

/// Resolves `provkey.toml`: verifies every organization set (signature, role,
/// version, expiry) before any of its components is fetched; with `lock`, refuses
/// anything whose digest differs from the locked one, also before fetching.
pub fn resolve(
    ctx: &PolicySetContext,
    trust_cli: Option<&Path>,
    cache: &ComponentCache,
    lock: Option<&Lock>,
) -> CliResult<Resolved> {
    if let Some(lock) = lock
        && lock.policy_set_blake3 != ctx.blake3
    {
        return Err(bad(format!(
            "`{}` changed since `{}` was written (blake3 `{}`, locked `{}`)",
            ctx.path.display(),
            ctx.lock_path().display(),
            ctx.blake3,
            lock.policy_set_blake3
        ))
        .with_help("run `provkey lock` to resolve it again, and review the new lock file"));
    }
    let trust = match ctx.trust_path(trust_cli) {
        Some(path) => Some(review::load_trust_root(&path)?),
        None => None,
    };
    let mut pending: Vec<Pending> = Vec::new();
    for (id, p) in &ctx.file.policy {
        let config = match &p.config {
            Some(table) => Some(
                serde_json::to_string(table)
                    .map_err(|e| bad(format!("policy `{id}`: cannot encode its config: {e}")))?,
            ),
            None => None,
        };
        let levels = PolicyLevels {
            base: Levels {
                enforcement: p.enforcement,
                rules: p.rules.clone(),
            },
            raise: Levels::default(),
        };
        let (source, bytes, origin) = match (&p.stock, &p.path) {
            (Some(stock), _) => {
                let found = provkey_stock::find(stock).ok_or_else(|| {
                    let suggestion = crate::commands::policies::closest_stock_id(stock)
                        .map(|close| format!("did you mean `{close}`? "))
                        .unwrap_or_default();
                    bad(format!("policy `{id}`: `{stock}` is not a stock policy")).with_help(
                        format!(
                            "{suggestion}the stock policies are {} (`provkey policies` \
                             describes them)",
                            crate::commands::policies::stock_id_list()
                        ),
                    )
                })?;
                (
                    "stock".to_string(),
                    found.bytes.to_vec(),
                    PolicyOrigin::Stock,
                )
            }
            (None, Some(path)) => {
                let full = ctx.dir.join(path);
                let bytes = std::fs::read(&full).map_err(|e| {
                    bad(format!(
                        "policy `{id}`: cannot read `{}`: {e}",
                        full.display()
                    ))
                })?;
                (format!("path:{path}"), bytes, PolicyOrigin::File(full))
            }
            (None, None) => return Err(bad(format!("policy `{id}` has no `stock` or `path`"))),
        };
        pending.push(Pending {
            id: id.clone(),
            source,
            blake3: provkey_core::blake3_hex(&bytes),
            bytes: Bytes::Ready(bytes),
            origin,
            config,
            levels,
        });
    }
    let mut sets = Vec::new();
    for (name, set) in &ctx.file.set {
        let source = Source::parse(&set.source, &ctx.dir);
        let Some(trust) = &trust else {
            return Err(bad(format!(
                "set `{name}` cannot be verified: no trust root is given"
            ))
            .with_help(
                "give `--trust TRUST_ROOT` or `trust = \"trust-root.json\"` in provkey.toml",
            ));
        };
        let pinned = lock.and_then(|l| l.set.iter().find(|s| &s.name == name));
        let (doc, locked) = verify_set(name, &source, trust, cache, pinned)?;
        for id in set.policy.keys() {
            if !doc.policies.iter().any(|p| &p.id == id) {
                return Err(bad(format!(
                    "`[set.{name}.policy.{id}]`: set `{name}` has no policy `{id}`"
                )));
            }
        }
        for p in &doc.policies {
            let levels = PolicyLevels {
                base: Levels {
                    enforcement: p.enforcement,
                    rules: p.rules.clone(),
                },
                raise: set.policy.get(&p.id).cloned().unwrap_or_default(),
            };
            levels.check_upward(name, &p.id)?;
            let component = format!("{COMPONENTS_DIR}/{}.wasm", p.blake3);
            pending.push(Pending {
                id: p.id.clone(),
                source: format!("set:{name}"),
                blake3: p.blake3.clone(),
                origin: PolicyOrigin::File(PathBuf::from(format!(
                    "{}/{component}",
                    source.display()
                ))),
                bytes: Bytes::Fetch(source.clone(), component),
                config: Some(p.config.to_string()),
                levels,
            });
        }
        sets.push(locked);
    }
    pending.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(pair) = pending.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(bad(format!(
            "two policies have the id `{}`: from `{}` and `{}`",
            pair[0].id, pair[0].source, pair[1].source
        ))
        .with_help("remove one of them from provkey.toml"));
    }
    if let Some(lock) = lock {
        compare_with_lock(ctx, lock, &sets, &pending)?;
    }
    let mut policies = Vec::new();
    for p in pending {
        let bytes = match p.bytes {
            Bytes::Ready(bytes) => bytes,
            Bytes::Fetch(source, component) => match cache.get(&p.blake3) {
                Some(bytes) => bytes,
                None => {
                    let bytes = source.get(&component, MAX_COMPONENT_BYTES).map_err(|e| {
                        bad(format!(
                            "policy `{}`: cannot fetch its component from `{}`: {e}",
                            p.id,
                            source.display()
                        ))
                    })?;
                    let got = provkey_core::blake3_hex(&bytes);
                    if got != p.blake3 {
                        return Err(bad(format!(
                            "policy `{}` from `{}`: the component fetched has blake3 `{got}`, \
                             the signed set lists `{}`",
                            p.id,
                            source.display(),
                            p.blake3
                        ))
                        .with_help("the server does not serve what the publisher signed: ask the publisher to publish again"));
                    }
                    cache.put(&bytes);
                    bytes
                }
            },
        };
        policies.push(ResolvedPolicy {
            id: p.id,
            source: p.source,
            blake3: p.blake3,
            bytes,
            origin: p.origin,
            config: p.config,
            levels: p.levels,
        });
    }
    Ok(Resolved {
        policies,
        sets,
        trust,
    })
}

/// Fetches and verifies a published set: its publisher's signature (a
/// policy-publisher key of the trust root, trusted comment echoing digest, name,
/// version and expiry), its name, expiry, and that its version is not lower than
/// one already seen from that publisher. Records the version as seen.
///
/// With a lock (`pinned`), the set is read from the cache by its locked digest when it
/// is there: a locked, cached set needs no network (only `provkey lock` goes to the
/// source for a newer publication). It is verified the same way either way.
fn verify_set(
    name: &str,
    source: &Source,
    trust: &TrustRoot,
    cache: &ComponentCache,
    pinned: Option<&LockedSet>,
) -> CliResult<(PolicySetDoc, LockedSet)> {
    let at = source.display();
    let fetch = |file: &str| {
        source.get(file, MAX_SET_BYTES as u64).map_err(|e| {
            bad(format!("set `{name}`: cannot read `{file}` from `{at}`: {e}"))
                .with_help("publish the set with `provkey policy publish DIR --key PUBLISHER_KEY --trust TRUST_ROOT --version N --out OUT`")
        })
    };
    let cached = pinned
        .filter(|p| p.source == at)
        .and_then(|p| cache.get_set(&p.blake3));
    let (bytes, sig) = match cached {
        Some(pair) => pair,
        None => {
            let bytes = fetch(SET_FILE)?;
            let sig = fetch(SET_SIGNATURE_FILE)?;
            (bytes, sig)
        }
    };
    let doc = PolicySetDoc::from_bytes(&bytes)
        .map_err(|e| bad(format!("set `{name}` at `{at}`: `{SET_FILE}` {e}")))?;
    let publisher = provkey_core::statement::verify_statement(
        trust,
        &bytes,
        &sig,
        &doc.trusted_comment(&bytes),
    )
    .map_err(|e| {
        bad(format!("set `{name}` at `{at}` is refused: {e}")).with_help(
            "a policy set is accepted only when signed, as published, by a policy-publisher key of the trust root",
        )
    })?;
    if doc.name != name {
        return Err(
            bad(format!("set `{name}` at `{at}` is the set `{}`", doc.name)).with_help(format!(
                "name it `[set.{}]` in provkey.toml, or fix `source`",
                doc.name
            )),
        );
    }
    if provkey_core::unix_now() >= doc.expires_at {
        return Err(bad(format!(
            "set `{name}` version {} at `{at}` expired at {} (unix)",
            doc.version, doc.expires_at
        ))
        .with_help("ask the publisher to publish a new version"));
    }
    let pk = publisher.pk_blake3();
    if let Some(seen) = state::seen(&pk, name)?
        && doc.version < seen
    {
        return Err(bad(format!(
            "set `{name}` at `{at}` is version {}, lower than version {seen} already seen from publisher {}: refusing a downgrade",
            doc.version,
            publisher.key_id_hex()
        ))
        .with_help("a published set's version only grows: ask the publisher for the current version"));
    }
    state::record(&pk, name, doc.version)?;
    cache.put_set(&bytes, &sig);
    let locked = LockedSet {
        name: name.to_string(),
        source: at,
        version: doc.version,
        blake3: provkey_core::blake3_hex(&bytes),
        publisher: publisher.key_id_hex(),
    };
    Ok((doc, locked))
}

fn compare_with_lock(
    ctx: &PolicySetContext,
    lock: &Lock,
    sets: &[LockedSet],
    pending: &[Pending],
) -> CliResult<()> {
    let relock = "review the change, then run `provkey lock` to accept it";
    for p in pending {
        let Some(locked) = lock.policy.iter().find(|l| l.id == p.id) else {
            return Err(bad(format!(
                "policy `{}` ({}) is not in `{}`",
                p.id,
                p.source,
                ctx.lock_path().display()
            ))
            .with_help("run `provkey lock`"));
        };
        if locked.blake3 != p.blake3 || locked.source != p.source {
            return Err(bad(format!(
                "policy `{}` ({}) has blake3 `{}`, but `{}` locked `{}` ({})",
                p.id,
                p.source,
                p.blake3,
                ctx.lock_path().display(),
                locked.blake3,
                locked.source
            ))
            .with_help(relock));
        }
    }
    if let Some(extra) = lock
        .policy
        .iter()
        .find(|l| !pending.iter().any(|p| p.id == l.id))
    {
        return Err(bad(format!(
            "locked policy `{}` ({}) is no longer resolved from provkey.toml",
            extra.id, extra.source
        ))
        .with_help("run `provkey lock`"));
    }
    for set in sets {
        match lock.set.iter().find(|l| l.name == set.name) {
            Some(locked) if locked == set => {}
            Some(locked) if locked.blake3 != set.blake3 => {
                return Err(bad(format!(
                    "set `{}` at `{}` is version {} with blake3 `{}`, but the lock has version {} with blake3 `{}`",
                    set.name, set.source, set.version, set.blake3, locked.version, locked.blake3
                ))
                .with_help(relock));
            }
            Some(locked) => {
                return Err(bad(format!(
                    "set `{}`: resolved from `{}` signed by {}, locked from `{}` signed by {}",
                    set.name, set.source, set.publisher, locked.source, locked.publisher
                ))
                .with_help(relock));
            }
            None => {
                return Err(bad(format!("set `{}` is not in the lock file", set.name))
                    .with_help("run `provkey lock`"));
            }
        }
    }
    Ok(())
}
