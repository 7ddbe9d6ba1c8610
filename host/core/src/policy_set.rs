//! A published policy set (`policy-set.json`): the components of an organization's
//! rules, with their configuration and enforcement levels, a version that only grows,
//! signed by a policy-publisher key (`policy-set.json.minisig`).
//!
//! The file is RFC 8785 canonical JSON of [`PolicySetDoc`] (closed schema, checked
//! byte for byte on read). Its signature's trusted comment is
//! `v1 type=policy-set manifest=<blake3 of the file> target=<set name> seq=<version>
//! exp=<expires_at> role=policy-publisher`. The components sit beside it as
//! `components/<blake3>.wasm`.

use std::collections::BTreeMap;

use provkey_plan::Enforcement;
use serde::{Deserialize, Serialize};

use crate::canonical::{self, CanonicalError};
use crate::hex::is_lower_hex;
use crate::minisig::{Role, StatementKind, TrustedComment, is_identifier};

/// The only `_type` a published policy set carries.
pub const POLICY_SET_TYPE: &str = "https://provkey/policy-set/v1";
/// The set's file name in a published directory (or under a URL).
pub const SET_FILE: &str = "policy-set.json";
/// The publisher's signature beside it.
pub const SET_SIGNATURE_FILE: &str = "policy-set.json.minisig";
/// The directory of the components, each `<blake3>.wasm`.
pub const COMPONENTS_DIR: &str = "components";
/// The largest set file read.
pub const MAX_SET_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySetDoc {
    #[serde(rename = "_type")]
    pub type_: String,
    /// The set's name (`[a-z0-9._/-]+`); a repository refers to it by this name.
    pub name: String,
    /// Grows with every publication; a lower version than one already seen is refused.
    pub version: u64,
    pub published_at: u64,
    pub expires_at: u64,
    /// Sorted by `id`, unique.
    pub policies: Vec<PublishedPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedPolicy {
    /// The id the component's metadata declares.
    pub id: String,
    /// The version the component's metadata declares.
    pub policy_version: String,
    pub description: String,
    /// blake3 of the component (also its file name under `components/`).
    pub blake3: String,
    pub size: u64,
    /// The policy's enforcement level, for every rule without its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<Enforcement>,
    /// Per-rule enforcement levels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, Enforcement>,
    /// The policy's configuration (a JSON object; integers only, no floats).
    pub config: serde_json::Value,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicySetError {
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    #[error("does not match the policy set schema: {0}")]
    Schema(String),
}

fn schema(msg: impl Into<String>) -> PolicySetError {
    PolicySetError::Schema(msg.into())
}

impl PolicySetDoc {
    /// Parses the set file: canonical form, `_type`, closed schema, field rules.
    pub fn from_bytes(bytes: &[u8]) -> Result<PolicySetDoc, PolicySetError> {
        if bytes.len() > MAX_SET_BYTES {
            return Err(schema(format!(
                "{} bytes is above the 1 MiB limit",
                bytes.len()
            )));
        }
        let value = canonical::parse_canonical(bytes)?;
        let doc: PolicySetDoc = serde_json::from_value(value).map_err(|e| schema(e.to_string()))?;
        doc.validate()?;
        Ok(doc)
    }

    /// The canonical bytes, after checking every field rule.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PolicySetError> {
        self.validate()?;
        Ok(canonical::to_canonical(self)?)
    }

    pub fn validate(&self) -> Result<(), PolicySetError> {
        if self.type_ != POLICY_SET_TYPE {
            return Err(schema(format!(
                "wrong `_type` `{}`: expected `{POLICY_SET_TYPE}`",
                self.type_
            )));
        }
        if !is_identifier(&self.name) {
            return Err(schema(format!(
                "`name` must be `[a-z0-9._/-]+`, found `{}`",
                self.name.escape_default()
            )));
        }
        if self.version == 0 || self.version > canonical::MAX_INT {
            return Err(schema("`version` must be between 1 and 2^53-1"));
        }
        if self.expires_at <= self.published_at {
            return Err(schema("`expires_at` must be after `published_at`"));
        }
        if self.policies.windows(2).any(|w| w[0].id >= w[1].id) {
            return Err(schema(
                "`policies` must be sorted by `id` without duplicates",
            ));
        }
        for p in &self.policies {
            if !is_identifier(&p.id) {
                return Err(schema(format!(
                    "policy id `{}` is not `[a-z0-9._/-]+`",
                    p.id.escape_default()
                )));
            }
            if !is_lower_hex(&p.blake3, 64) {
                return Err(schema(format!(
                    "policy `{}`: `blake3` must be 64 lowercase hex digits",
                    p.id
                )));
            }
            if !p.config.is_object() {
                return Err(schema(format!(
                    "policy `{}`: `config` must be a JSON object",
                    p.id
                )));
            }
        }
        Ok(())
    }

    /// The trusted comment the publisher's signature over `bytes` carries.
    pub fn trusted_comment(&self, bytes: &[u8]) -> TrustedComment {
        crate::statement::trusted_comment(
            StatementKind::PolicySet,
            bytes,
            &self.name,
            self.version,
            self.expires_at,
            Role::PolicyPublisher,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn round_trips_canonically_and_refuses_unsorted_policies() {
        let policy = |id: &str| PublishedPolicy {
            id: id.into(),
            policy_version: "0.1.0".into(),
            description: "d".into(),
            blake3: "a".repeat(64),
            size: 3,
            enforcement: Some(Enforcement::SoftMandatory),
            rules: BTreeMap::from([("r".to_string(), Enforcement::HardMandatory)]),
            config: serde_json::json!({"n": 1}),
        };
        let doc = PolicySetDoc {
            type_: POLICY_SET_TYPE.into(),
            name: "acme".into(),
            version: 2,
            published_at: 1,
            expires_at: 2,
            policies: vec![policy("a"), policy("b")],
        };
        let bytes = doc.to_bytes().unwrap();
        assert_eq!(PolicySetDoc::from_bytes(&bytes).unwrap(), doc);
        let mut bad = doc.clone();
        bad.policies.reverse();
        assert!(bad.to_bytes().is_err());
        let tc = doc.trusted_comment(&bytes).to_string();
        assert!(tc.starts_with("v1 type=policy-set manifest="), "{tc}");
        assert!(
            tc.ends_with(" target=acme seq=2 exp=2 role=policy-publisher"),
            "{tc}"
        );
    }
}
