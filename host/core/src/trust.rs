//! The trust root: the public keys the executor trusts, their roles and thresholds,
//! versioned, expiring, signed by the root role (design reference §4.6).
//!
//! `trust-root.json` (canonical JSON) sits beside one `trust-root.json.<KEYID>.minisig`
//! per root signature. Keys are identified by the 32-byte Ed25519 key: a key listed
//! twice (even under two key ids) is a load error. Version N+1 is accepted only when
//! signed by the root threshold of version N **and** of version N+1.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::canonical::{self, CanonicalError};
use crate::keys::{KeyError, PublicKey};
use crate::minisig::{Minisig, Role, StatementKind, TrustedComment};
use crate::sign::verify_signature;

/// The only `_type` a trust root carries.
pub const TRUST_ROOT_TYPE: &str = "https://provkey/trust-root/v1";
/// The largest trust root read.
pub const MAX_TRUST_ROOT_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustRootDoc {
    #[serde(rename = "_type")]
    pub type_: String,
    pub version: u64,
    pub expires_at: u64,
    /// Sorted by `public_key`.
    pub keys: Vec<TrustedKey>,
    pub roles: BTreeMap<Role, RoleSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    /// The minisign public key, base64 (`RWQ…`).
    pub public_key: String,
    /// Sorted, unique.
    pub roles: Vec<Role>,
    pub comment: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    pub threshold: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrustError {
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    #[error("not a trust root: {0}")]
    Schema(String),
    #[error("trust root key `{key}`: {source}")]
    Key { key: String, source: KeyError },
    #[error("the same public key is listed twice (as `{0}`)")]
    DuplicateKey(String),
    #[error("role `{role}` needs {threshold} signature(s) but only {keys} key(s) hold it")]
    Unsatisfiable {
        role: Role,
        threshold: u64,
        keys: usize,
    },
    #[error("the trust root (version {version}) expired at {expires_at}")]
    Expired { version: u64, expires_at: u64 },
    #[error(
        "version {version} is signed by {found} distinct key(s) of the root role of version {by}, {needed} needed"
    )]
    Threshold {
        version: u64,
        by: u64,
        found: usize,
        needed: u64,
    },
    #[error("cannot move from trust root version {from} to {to}: only {from}+1 is accepted")]
    Version { from: u64, to: u64 },
    #[error("a trust-root signature file does not parse: {0}")]
    Signature(String),
}

/// A trust root that loaded: well-formed, signed by its root threshold.
#[derive(Debug, Clone)]
pub struct TrustRoot {
    pub doc: TrustRootDoc,
    /// The canonical bytes it was read from.
    pub bytes: Vec<u8>,
    pub blake3: String,
    /// The parsed keys, parallel to `doc.keys`.
    pub keys: Vec<(PublicKey, Vec<Role>)>,
}

fn schema(msg: impl Into<String>) -> TrustError {
    TrustError::Schema(msg.into())
}

impl TrustRootDoc {
    /// Checks the rules serde does not: type, sorted unique keys, `Ed` keys, every role
    /// has a threshold that its keys can meet, root and plan-signer thresholds ≥ 1.
    pub fn validate(&self) -> Result<Vec<(PublicKey, Vec<Role>)>, TrustError> {
        if self.type_ != TRUST_ROOT_TYPE {
            return Err(schema(format!(
                "wrong `_type` `{}`: expected `{TRUST_ROOT_TYPE}`",
                self.type_
            )));
        }
        let mut seen = BTreeSet::new();
        let mut keys = Vec::new();
        for pair in self.keys.windows(2) {
            if pair[0].public_key >= pair[1].public_key {
                if pair[0].public_key == pair[1].public_key {
                    return Err(TrustError::DuplicateKey(pair[0].public_key.clone()));
                }
                return Err(schema("`keys` must be sorted by `public_key`"));
            }
        }
        for k in &self.keys {
            let pk = PublicKey::from_base64(&k.public_key).map_err(|source| TrustError::Key {
                key: k.public_key.clone(),
                source,
            })?;
            if !seen.insert(pk.key) {
                return Err(TrustError::DuplicateKey(k.public_key.clone()));
            }
            if k.roles.is_empty() || k.roles.windows(2).any(|w| w[0] >= w[1]) {
                return Err(schema(format!(
                    "key `{}`: `roles` must be non-empty, sorted and unique",
                    k.public_key
                )));
            }
            if k.comment.chars().any(char::is_control) {
                return Err(schema("a key comment holds a control character"));
            }
            keys.push((pk, k.roles.clone()));
        }
        for role in Role::ALL {
            let spec = self
                .roles
                .get(&role)
                .ok_or_else(|| schema(format!("`roles` has no entry for `{role}`")))?;
            if matches!(role, Role::Root | Role::PlanSigner) && spec.threshold == 0 {
                return Err(schema(format!("the `{role}` threshold must be at least 1")));
            }
            let holders = keys.iter().filter(|(_, r)| r.contains(&role)).count();
            if spec.threshold > holders as u64 {
                return Err(TrustError::Unsatisfiable {
                    role,
                    threshold: spec.threshold,
                    keys: holders,
                });
            }
        }
        Ok(keys)
    }

    pub fn threshold(&self, role: Role) -> u64 {
        self.roles.get(&role).map_or(0, |s| s.threshold)
    }

    /// The canonical bytes, after validation.
    pub fn to_bytes(&self) -> Result<Vec<u8>, TrustError> {
        self.validate()?;
        Ok(canonical::to_canonical(self)?)
    }

    /// The trusted comment a root signature of these bytes carries.
    pub fn trusted_comment(&self, bytes: &[u8], role: Role) -> TrustedComment {
        TrustedComment {
            kind: StatementKind::TrustRoot,
            manifest: crate::blake3_hex(bytes),
            target: "-".into(),
            seq: self.version,
            exp: self.expires_at,
            role,
        }
    }
}

impl TrustRoot {
    /// Parses and validates a trust root without checking any signature.
    pub fn parse_unsigned(bytes: &[u8]) -> Result<TrustRoot, TrustError> {
        if bytes.len() > MAX_TRUST_ROOT_BYTES {
            return Err(schema("larger than 256 KiB"));
        }
        let value = canonical::parse_canonical(bytes)?;
        let doc: TrustRootDoc = serde_json::from_value(value).map_err(|e| schema(e.to_string()))?;
        let keys = doc.validate()?;
        Ok(TrustRoot {
            doc,
            bytes: bytes.to_vec(),
            blake3: crate::blake3_hex(bytes),
            keys,
        })
    }

    /// A trust root made of one public key: the only plan-signer, threshold 1, version 0.
    pub fn single_key(key: PublicKey) -> TrustRoot {
        let doc = TrustRootDoc {
            type_: TRUST_ROOT_TYPE.into(),
            version: 0,
            expires_at: canonical::MAX_INT,
            keys: vec![TrustedKey {
                public_key: key.to_base64(),
                roles: vec![Role::PlanSigner],
                comment: "single key".into(),
            }],
            roles: BTreeMap::from([
                (Role::Root, RoleSpec { threshold: 0 }),
                (Role::PlanSigner, RoleSpec { threshold: 1 }),
                (Role::Approver, RoleSpec { threshold: 0 }),
                (Role::PolicyPublisher, RoleSpec { threshold: 0 }),
            ]),
        };
        TrustRoot {
            doc,
            bytes: Vec::new(),
            blake3: key.pk_blake3(),
            keys: vec![(key, vec![Role::PlanSigner])],
        }
    }

    /// Distinct public keys holding `role` in `self` whose signature over `bytes`
    /// verifies with a trusted comment for this trust-root statement.
    fn signed_by(&self, doc: &TrustRootDoc, bytes: &[u8], sigs: &[Minisig]) -> BTreeSet<[u8; 32]> {
        let expected = doc.trusted_comment(bytes, Role::Root).to_string();
        let mut found = BTreeSet::new();
        for sig in sigs {
            if sig.trusted_comment != expected {
                continue;
            }
            for (pk, roles) in &self.keys {
                if roles.contains(&Role::Root)
                    && pk.key_id == sig.key_id
                    && verify_signature(pk, bytes, sig).is_ok()
                {
                    found.insert(pk.key);
                }
            }
        }
        found
    }

    /// Loads a pinned trust root: valid, signed by its own root threshold, not expired.
    pub fn load(bytes: &[u8], sigs: &[Vec<u8>], now: u64) -> Result<TrustRoot, TrustError> {
        let root = TrustRoot::parse_unsigned(bytes)?;
        let sigs = parse_sigs(sigs)?;
        let found = root.signed_by(&root.doc, bytes, &sigs).len();
        let needed = root.doc.threshold(Role::Root);
        if (found as u64) < needed {
            return Err(TrustError::Threshold {
                version: root.doc.version,
                by: root.doc.version,
                found,
                needed,
            });
        }
        root.check_expiry(now)?;
        Ok(root)
    }

    pub fn check_expiry(&self, now: u64) -> Result<(), TrustError> {
        if now >= self.doc.expires_at {
            return Err(TrustError::Expired {
                version: self.doc.version,
                expires_at: self.doc.expires_at,
            });
        }
        Ok(())
    }

    /// Moves to the next version: exactly `version + 1`, signed by the root threshold of
    /// both `self` and the new root, not expired.
    pub fn rotate(
        &self,
        bytes: &[u8],
        sigs: &[Vec<u8>],
        now: u64,
    ) -> Result<TrustRoot, TrustError> {
        let next = TrustRoot::parse_unsigned(bytes)?;
        if next.doc.version != self.doc.version.saturating_add(1) {
            return Err(TrustError::Version {
                from: self.doc.version,
                to: next.doc.version,
            });
        }
        let sigs = parse_sigs(sigs)?;
        for (signers, label) in [(self, self.doc.version), (&next, next.doc.version)] {
            let found = signers.signed_by(&next.doc, bytes, &sigs).len();
            let needed = signers.doc.threshold(Role::Root);
            if (found as u64) < needed {
                return Err(TrustError::Threshold {
                    version: next.doc.version,
                    by: label,
                    found,
                    needed,
                });
            }
        }
        next.check_expiry(now)?;
        Ok(next)
    }

    /// Every trusted key whose key id is `key_id` (ids are hints: all are tried).
    pub fn candidates(&self, key_id: &[u8; 8]) -> impl Iterator<Item = &(PublicKey, Vec<Role>)> {
        self.keys.iter().filter(move |(pk, _)| &pk.key_id == key_id)
    }
}

fn parse_sigs(sigs: &[Vec<u8>]) -> Result<Vec<Minisig>, TrustError> {
    sigs.iter()
        .map(|s| Minisig::parse(s).map_err(|e| TrustError::Signature(e.to_string())))
        .collect()
}
