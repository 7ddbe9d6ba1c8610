//! The signed plan statement (`manifest.json`), design reference §4.2.

use serde::{Deserialize, Serialize};

use crate::canonical::{self, CanonicalError};
use crate::hex::is_lower_hex;
use crate::minisig::{Role, is_identifier};

/// The only `_type` a plan statement carries (domain separation).
pub const PLAN_STATEMENT_TYPE: &str = "https://provkey/plan-statement/v1";
/// The only `mode` the executor applies.
pub const MODE_REPLACE_ONLY: &str = "replace-only";
/// The largest manifest read.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// Blob names of what the executor deploys (`provkey seal --desired`): the desired-state
/// file as given, one tree listing per artifact (`tree/<artifact name>`, see
/// `provkey_desired::tree`), and the artifacts' files (`file`, content addressed).
pub const BLOB_DESIRED: &str = "desired";
pub const BLOB_TREE_PREFIX: &str = "tree/";
pub const BLOB_FILE: &str = "file";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(rename = "_type")]
    pub type_: String,
    pub plan: PlanRef,
    /// The single immutable artifact the plan deploys, where there is one.
    pub artifact: Option<Artifact>,
    /// The state the plan was made against (filled by the executor's planner; null here).
    pub base_state: Option<BaseState>,
    /// blake3 of the manifest whose apply produced `base_state`; null for genesis.
    pub previous_manifest: Option<String>,
    pub inputs: Inputs,
    /// Sorted by `id`, unique.
    pub policies: Vec<PolicyEntry>,
    pub policy_set: PolicySet,
    pub engine: Engine,
    pub target: Target,
    pub mode: String,
    pub issued_at: u64,
    pub expires_at: u64,
    pub sequence: u64,
    /// 32 lowercase hex digits (128 random bits).
    pub nonce: String,
    pub trust_root: TrustRootRef,
    pub signers_required: SignersRequired,
    pub issuer: Issuer,
    /// Every blob of the bundle, sorted by `blake3`: the executor accepts no other file.
    pub blobs: Vec<BlobRef>,
    /// The signed exceptions that applied when the plan was checked (waivers and
    /// approver overrides); absent when none did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waivers: Vec<WaiverRef>,
}

/// One signed exception that applied to a finding of the sealed plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaiverRef {
    /// `waiver` (from a waivers file) or `override` (an approver's override).
    pub kind: String,
    pub policy: String,
    pub rule: String,
    /// The resource address or pattern (`*` any characters, `?` one) it is scoped to.
    pub address: String,
    pub owner: String,
    pub reason: String,
    /// The last day it applies (`YYYY-MM-DD`).
    pub expires: String,
    /// blake3 of the signed file it comes from.
    pub source_blake3: String,
    /// The approver key that signed it.
    pub approver_keyid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRef {
    pub name: String,
    pub blake3: String,
    pub size: u64,
    pub media_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub uri: String,
    pub digest: ArtifactDigest,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactDigest {
    pub blake3: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseState {
    pub lineage: String,
    pub serial: u64,
    pub blake3: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// blake3 of the plan file as given to `seal` (also the plan blob).
    pub plan_file_blake3: String,
    /// blake3 of the canonical JSON object `{policy id: configuration}`.
    pub configs_blake3: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    pub id: String,
    pub policy_version: String,
    pub module_blake3: String,
    pub config_blake3: String,
    pub input_blake3: String,
    pub output_blake3: String,
    pub verdict: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySet {
    pub version: u64,
    /// blake3 of the newline-joined sorted policy ids.
    pub blake3: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Engine {
    pub id: String,
    pub version: String,
    pub wasmtime_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub environment: String,
    pub executor_audience: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustRootRef {
    pub version: u64,
    pub blake3: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignersRequired {
    pub role: Role,
    pub threshold: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    pub role: Role,
    pub minisign_keyid: String,
    pub pk_blake3: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobRef {
    pub blake3: String,
    pub size: u64,
    /// What the blob is: `plan`, `artifact`, `config/<id>`, `output/<id>`.
    pub name: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    #[error("wrong `_type` `{0}`: expected `{PLAN_STATEMENT_TYPE}`")]
    Type(String),
    #[error("does not match the manifest schema: {0}")]
    Schema(String),
}

fn schema(msg: impl Into<String>) -> ManifestError {
    ManifestError::Schema(msg.into())
}

fn digest(field: &str, value: &str) -> Result<(), ManifestError> {
    if is_lower_hex(value, 64) {
        Ok(())
    } else {
        Err(schema(format!(
            "`{field}` must be 64 lowercase hex digits (blake3/sha256), found `{value}`"
        )))
    }
}

fn ident(field: &str, value: &str) -> Result<(), ManifestError> {
    if is_identifier(value) {
        Ok(())
    } else {
        Err(schema(format!(
            "`{field}` must be ASCII `[a-z0-9._/-]+`, found `{}`",
            value.escape_default()
        )))
    }
}

impl Manifest {
    /// Parses manifest bytes: canonical form, `_type`, closed schema, field rules.
    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(schema(format!(
                "{} bytes is above the 1 MiB limit",
                bytes.len()
            )));
        }
        let value = canonical::parse_canonical(bytes)?;
        match value.get("_type").and_then(|t| t.as_str()) {
            Some(PLAN_STATEMENT_TYPE) => {}
            Some(other) => return Err(ManifestError::Type(other.to_owned())),
            None => return Err(ManifestError::Type(String::new())),
        }
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| schema(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// The canonical bytes, after checking every field rule.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ManifestError> {
        self.validate()?;
        let bytes = canonical::to_canonical(self)?;
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(schema(format!(
                "{} bytes is above the 1 MiB limit",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// The field rules of §4.2/§4.3 that serde's types do not express.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.type_ != PLAN_STATEMENT_TYPE {
            return Err(ManifestError::Type(self.type_.clone()));
        }
        if self.plan.name != "plan" {
            return Err(schema("`plan.name` must be `plan`"));
        }
        digest("plan.blake3", &self.plan.blake3)?;
        if let Some(artifact) = &self.artifact {
            digest("artifact.digest.blake3", &artifact.digest.blake3)?;
            digest("artifact.digest.sha256", &artifact.digest.sha256)?;
            if artifact.uri.is_empty() || !artifact.uri.bytes().all(|b| (0x21..=0x7e).contains(&b))
            {
                return Err(schema(
                    "`artifact.uri` must be printable ASCII without spaces",
                ));
            }
        }
        if let Some(base) = &self.base_state {
            digest("base_state.blake3", &base.blake3)?;
        }
        if let Some(previous) = &self.previous_manifest {
            digest("previous_manifest", previous)?;
        }
        digest("inputs.plan_file_blake3", &self.inputs.plan_file_blake3)?;
        digest("inputs.configs_blake3", &self.inputs.configs_blake3)?;
        for pair in self.policies.windows(2) {
            if pair[0].id >= pair[1].id {
                return Err(schema(
                    "`policies` must be sorted by `id` without duplicates",
                ));
            }
        }
        for p in &self.policies {
            ident("policies[].id", &p.id)?;
            digest("policies[].module_blake3", &p.module_blake3)?;
            digest("policies[].config_blake3", &p.config_blake3)?;
            digest("policies[].input_blake3", &p.input_blake3)?;
            digest("policies[].output_blake3", &p.output_blake3)?;
            ident("policies[].verdict", &p.verdict)?;
        }
        digest("policy_set.blake3", &self.policy_set.blake3)?;
        ident("engine.id", &self.engine.id)?;
        ident("target.environment", &self.target.environment)?;
        if self.target.executor_audience.is_empty() {
            return Err(schema(
                "`target.executor_audience` must name at least one executor",
            ));
        }
        for a in &self.target.executor_audience {
            ident("target.executor_audience[]", a)?;
        }
        if self.mode != MODE_REPLACE_ONLY {
            return Err(schema(format!("`mode` must be `{MODE_REPLACE_ONLY}`")));
        }
        if self.expires_at <= self.issued_at {
            return Err(schema("`expires_at` must be after `issued_at`"));
        }
        if !is_lower_hex(&self.nonce, 32) {
            return Err(schema("`nonce` must be 32 lowercase hex digits"));
        }
        digest("trust_root.blake3", &self.trust_root.blake3)?;
        if self.signers_required.role != Role::PlanSigner || self.issuer.role != Role::PlanSigner {
            return Err(schema(
                "`signers_required.role` and `issuer.role` must be `plan-signer`",
            ));
        }
        if crate::minisig::parse_key_id_hex(&self.issuer.minisign_keyid).is_none() {
            return Err(schema(
                "`issuer.minisign_keyid` must be 16 uppercase hex digits",
            ));
        }
        digest("issuer.pk_blake3", &self.issuer.pk_blake3)?;
        for pair in self.blobs.windows(2) {
            if pair[0].blake3 >= pair[1].blake3 {
                return Err(schema(
                    "`blobs` must be sorted by `blake3` without duplicates",
                ));
            }
        }
        for b in &self.blobs {
            digest("blobs[].blake3", &b.blake3)?;
            ident("blobs[].name", &b.name)?;
        }
        for w in &self.waivers {
            if w.kind != "waiver" && w.kind != "override" {
                return Err(schema("`waivers[].kind` must be `waiver` or `override`"));
            }
            ident("waivers[].policy", &w.policy)?;
            digest("waivers[].source_blake3", &w.source_blake3)?;
            if crate::minisig::parse_key_id_hex(&w.approver_keyid).is_none() {
                return Err(schema(
                    "`waivers[].approver_keyid` must be 16 uppercase hex digits",
                ));
            }
        }
        let listed = |d: &str| self.blobs.iter().any(|b| b.blake3 == d);
        let mut named = vec![self.plan.blake3.as_str()];
        if let Some(a) = &self.artifact {
            named.push(&a.digest.blake3);
        }
        for p in &self.policies {
            named.extend([p.config_blake3.as_str(), p.output_blake3.as_str()]);
        }
        if let Some(missing) = named.into_iter().find(|d| !listed(d)) {
            return Err(schema(format!(
                "digest `{missing}` is not listed in `blobs`"
            )));
        }
        Ok(())
    }

    /// blake3 of the manifest's canonical bytes.
    pub fn digest(bytes: &[u8]) -> String {
        crate::blake3_hex(bytes)
    }

    /// The blob named `name` (names are not unique for content-addressed files; the
    /// names below are).
    pub fn blob_named(&self, name: &str) -> Option<&BlobRef> {
        self.blobs.iter().find(|b| b.name == name)
    }
}
