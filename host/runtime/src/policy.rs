//! Policies: loading a component once, evaluating it in a fresh store each time.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use provkey_plan::{Finding, Plan, PolicyMetadata};
use wasmtime::Store;

use crate::bindings::{
    self, policy::PolicyPre, policy_0_2::PolicyPre as PolicyPre0_2,
    policy_0_3::PolicyPre as PolicyPre0_3, policy_0_4::PolicyPre as PolicyPre0_4,
    policy_0_5::PolicyPre as PolicyPre0_5, policy_0_6::PolicyPre as PolicyPre0_6,
};
use crate::cache::CacheOutcome;
use crate::engine::Runtime;
use crate::error::{GuestFailure, RuntimeError};
use crate::guest::GuestState;
use crate::plan_view::GuestPlan;

/// Where a policy's bytes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOrigin {
    /// Embedded in the binary.
    Stock,
    /// A component file given on the command line.
    File(std::path::PathBuf),
}

/// A policy ready to evaluate: compiled, linked, its metadata read and checked.
pub struct LoadedPolicy {
    pub name: String,
    pub origin: PolicyOrigin,
    pub digest: blake3::Hash,
    pub metadata: PolicyMetadata,
    pub cache: CacheOutcome,
    pre: Contract,
    /// The ids of the rules the metadata declares, for checking each finding in
    /// constant time.
    rule_ids: HashSet<String, foldhash::fast::RandomState>,
}

/// An instance of one of the contracts.
enum Instance {
    V0_1(bindings::policy::Policy),
    V0_2(bindings::policy_0_2::Policy),
    V0_3(bindings::policy_0_3::Policy),
    V0_4(bindings::policy_0_4::Policy),
    V0_5(bindings::policy_0_5::Policy),
    V0_6(bindings::policy_0_6::Policy),
}

/// The contract a policy component implements, and its prepared instance.
enum Contract {
    /// `provkey:plan/policy@0.1.0`: the plan crosses whole, attribute values included.
    V0_1(PolicyPre<GuestState>),
    /// `provkey:plan/policy@0.2.0`: the policy reads attribute values through `plan-view`.
    V0_2(PolicyPre0_2<GuestState>),
    /// `provkey:plan/policy@0.3.0`: the plan summary crosses as JSON text, values
    /// are read one member of every change at a time.
    V0_3(PolicyPre0_3<GuestState>),
    /// `provkey:plan@0.4.0`: 0.2.0's summary with every string in one text.
    V0_4(PolicyPre0_4<GuestState>),
    /// `provkey:plan@0.5.0`: 0.3.0 with the findings returned as UTF-8 bytes.
    V0_5(PolicyPre0_5<GuestState>),
    /// `provkey:plan@0.6.0`: 0.4.0's summary with the changes packed in numbers.
    V0_6(PolicyPre0_6<GuestState>),
}

impl std::fmt::Debug for LoadedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPolicy")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .field("digest", &self.digest.to_hex().as_str())
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

/// The outcome of one evaluation.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub result: Result<Vec<Finding>, GuestFailure>,
    pub elapsed: Duration,
}

/// What a policy component may implement, for error messages.
const POLICY_WORLDS: &str =
    "the `policy` world of provkey:plan@0.6.0, @0.5.0, @0.4.0, @0.3.0, @0.2.0 or @0.1.0";

/// Wraps a linked component in the newest contract it implements.
fn link_policy(
    instance_pre: wasmtime::component::InstancePre<GuestState>,
) -> wasmtime::Result<Contract> {
    if let Ok(pre) = PolicyPre0_6::new(instance_pre.clone()) {
        return Ok(Contract::V0_6(pre));
    }
    if let Ok(pre) = PolicyPre0_4::new(instance_pre.clone()) {
        return Ok(Contract::V0_4(pre));
    }
    if let Ok(pre) = PolicyPre0_5::new(instance_pre.clone()) {
        return Ok(Contract::V0_5(pre));
    }
    if let Ok(pre) = PolicyPre0_3::new(instance_pre.clone()) {
        return Ok(Contract::V0_3(pre));
    }
    match PolicyPre0_2::new(instance_pre.clone()) {
        Ok(pre) => Ok(Contract::V0_2(pre)),
        Err(_) => PolicyPre::new(instance_pre).map(Contract::V0_1),
    }
}

/// Checks the plan a guest sees against what it returns.
#[derive(Debug)]
pub struct PlanIndex<'a> {
    // Built before any policy runs: foldhash rather than SipHash, as for the summary.
    addresses: HashSet<&'a str, foldhash::fast::RandomState>,
}

impl<'a> PlanIndex<'a> {
    pub fn new(plan: &'a Plan) -> Self {
        PlanIndex {
            addresses: plan.changes.iter().map(|c| c.address.as_str()).collect(),
        }
    }
}

impl Runtime {
    /// Loads a policy component from a file: from the compilation cache when it
    /// holds the file's digest (the file is then only hashed, never read whole),
    /// else read, compiled and linked.
    pub fn load_policy_file(&self, path: &Path) -> Result<LoadedPolicy, RuntimeError> {
        let name = path.display().to_string();
        let origin = PolicyOrigin::File(path.to_path_buf());
        let read_err = |source| RuntimeError::Read {
            path: path.to_path_buf(),
            source,
        };
        // Opened without blocking and refused unless a regular file: a FIFO given as a
        // component would otherwise hold the check forever.
        let size = open_regular(path)
            .map_err(read_err)?
            .metadata()
            .map_err(read_err)?
            .len();
        let limit = self.limits.component_bytes;
        if size > limit as u64 {
            return Err(RuntimeError::TooLarge {
                name,
                size: usize::try_from(size).unwrap_or(usize::MAX),
                limit,
            });
        }
        let digest = crate::engine::component_file_digest(path).map_err(read_err)?;
        if let Some(pre) = self.prepare_cached(&name, &digest, POLICY_WORLDS, link_policy)? {
            return self.finish_loading_policy(&name, origin, digest, CacheOutcome::Hit, pre);
        }
        // A miss: compile what is read now (hashed again, so that the digest is of
        // the bytes compiled even if the file changed meanwhile).
        let bytes = read_bounded(path, limit)?;
        self.load_policy(&name, origin, &bytes)
    }

    /// Compiles (or loads from the cache) and links a policy component.
    pub fn load_policy(
        &self,
        name: &str,
        origin: PolicyOrigin,
        bytes: &[u8],
    ) -> Result<LoadedPolicy, RuntimeError> {
        let (digest, cache, pre) = self.prepare(name, bytes, POLICY_WORLDS, link_policy)?;
        self.finish_loading_policy(name, origin, digest, cache, pre)
    }

    /// Reads the metadata of a linked policy (from the cache if it can) and checks it.
    fn finish_loading_policy(
        &self,
        name: &str,
        origin: PolicyOrigin,
        digest: blake3::Hash,
        cache: CacheOutcome,
        pre: Contract,
    ) -> Result<LoadedPolicy, RuntimeError> {
        // A component loaded from the cache was instantiated when it was stored, and
        // what it said about itself is kept beside it.
        let cached = (cache == CacheOutcome::Hit)
            .then(|| self.cache().policy_metadata(&digest))
            .flatten()
            .filter(|metadata| check_metadata(metadata).is_ok());
        let metadata = match cached {
            Some(metadata) => {
                tracing::info!(
                    policy = name,
                    "read the metadata of `{name}` from the compilation cache"
                );
                metadata
            }
            None => {
                let metadata = self
                    .call_policy(&pre, None, |store, instance| match instance {
                        Instance::V0_1(policy) => {
                            policy.provkey_plan_policy_api().call_metadata(store)
                        }
                        Instance::V0_2(policy) => {
                            policy.provkey_plan_policy_api().call_metadata(store)
                        }
                        Instance::V0_3(policy) => {
                            policy.provkey_plan_policy_api().call_metadata(store)
                        }
                        Instance::V0_4(policy) => {
                            policy.provkey_plan_policy_api().call_metadata(store)
                        }
                        Instance::V0_5(policy) => {
                            policy.provkey_plan_policy_api().call_metadata(store)
                        }
                        Instance::V0_6(policy) => {
                            policy.provkey_plan_policy_api().call_metadata(store)
                        }
                    })
                    .map(bindings::metadata_from_wit)
                    .map_err(|failure| RuntimeError::Metadata {
                        name: name.to_string(),
                        failure,
                    })?;
                check_metadata(&metadata).map_err(|reason| RuntimeError::BadMetadata {
                    name: name.to_string(),
                    reason,
                })?;
                if cache != CacheOutcome::CompiledUncached {
                    self.cache().store_policy_metadata(&digest, &metadata);
                }
                metadata
            }
        };
        let rule_ids = metadata.rules.iter().map(|rule| rule.id.clone()).collect();
        Ok(LoadedPolicy {
            name: metadata.id.clone(),
            origin,
            digest,
            metadata,
            cache,
            pre,
            rule_ids,
        })
    }

    /// Runs one policy over a plan in a fresh store. Never panics, never passes on failure.
    pub fn evaluate(
        &self,
        policy: &LoadedPolicy,
        plan: &GuestPlan,
        index: &PlanIndex<'_>,
        config: &str,
    ) -> Evaluation {
        let started = Instant::now();
        // Building the 0.4.0 or 0.6.0 summary fails only for a plan whose strings pass
        // 4 GiB, which no guest memory could hold.
        let too_large = match policy.pre {
            Contract::V0_4(_) => plan.packed_summary().is_none(),
            Contract::V0_6(_) => plan.packed_numbers().is_none(),
            _ => false,
        };
        if too_large {
            return Evaluation {
                result: Err(GuestFailure::Memory {
                    limit_mib: self.limits.memory_bytes >> 20,
                }),
                elapsed: started.elapsed(),
            };
        }
        let result = self
            .call_policy(&policy.pre, Some(plan), |store, instance| match instance {
                Instance::V0_1(policy) => policy
                    .provkey_plan_policy_api()
                    .call_evaluate(store, plan.full(), config)
                    .map(|returned| returned.map(Returned::Records)),
                Instance::V0_2(policy) => policy
                    .provkey_plan_policy_api()
                    .call_evaluate(store, plan.summary(), config)
                    .map(|returned| returned.map(Returned::Records)),
                Instance::V0_3(policy) => policy
                    .provkey_plan_policy_api()
                    .call_evaluate(store, plan.summary_json(), config)
                    .map(|returned| returned.map(|text| Returned::Json(text.into_bytes()))),
                Instance::V0_4(policy) => match plan.packed_summary() {
                    Some(summary) => policy
                        .provkey_plan_policy_api()
                        .call_evaluate(store, summary, config)
                        .map(|returned| returned.map(Returned::Records)),
                    None => Err(wasmtime::format_err!("the plan is too large for 0.4.0")),
                },
                Instance::V0_5(policy) => policy
                    .provkey_plan_policy_api()
                    .call_evaluate(store, plan.summary_json(), config)
                    .map(|returned| returned.map(Returned::Json)),
                Instance::V0_6(policy) => match plan.packed_numbers() {
                    Some(summary) => policy
                        .provkey_plan_policy_api()
                        .call_evaluate(store, summary, config)
                        .map(|returned| returned.map(Returned::Records)),
                    None => Err(wasmtime::format_err!("the plan is too large for 0.6.0")),
                },
            })
            .and_then(|returned| match returned {
                Ok(Returned::Records(findings)) => check_findings(
                    findings.into_iter().map(bindings::finding_from_wit),
                    &policy.rule_ids,
                    index,
                    self.limits.output_bytes,
                ),
                Ok(Returned::Json(text)) => findings_from_json(&text, self.limits.output_bytes)
                    .and_then(|findings| {
                        check_findings(findings, &policy.rule_ids, index, self.limits.output_bytes)
                    }),
                Err(err) => {
                    let (kind, message) = bindings::guest_error_text(&err);
                    Err(GuestFailure::GuestError {
                        kind: kind.to_string(),
                        message: truncate(message, 1_000),
                    })
                }
            });
        Evaluation {
            result,
            elapsed: started.elapsed(),
        }
    }

    /// Instantiates in a fresh store and makes one call, classifying any failure by
    /// the limit it hit. The store is dropped afterwards, whatever happened.
    fn call_policy<R>(
        &self,
        pre: &Contract,
        plan: Option<&GuestPlan>,
        call: impl FnOnce(&mut Store<GuestState>, Instance) -> wasmtime::Result<R>,
    ) -> Result<R, GuestFailure> {
        let mut store = self.new_store();
        store.data_mut().plan = plan.map(|plan| plan.plan().clone());
        let instance = match pre {
            Contract::V0_1(pre) => pre.instantiate(&mut store).map(Instance::V0_1),
            Contract::V0_2(pre) => pre.instantiate(&mut store).map(Instance::V0_2),
            Contract::V0_3(pre) => pre.instantiate(&mut store).map(Instance::V0_3),
            Contract::V0_4(pre) => pre.instantiate(&mut store).map(Instance::V0_4),
            Contract::V0_5(pre) => pre.instantiate(&mut store).map(Instance::V0_5),
            Contract::V0_6(pre) => pre.instantiate(&mut store).map(Instance::V0_6),
        };
        let instance = match instance {
            Ok(instance) => instance,
            Err(err) => return Err(self.classify(&store, err, true)),
        };
        call(&mut store, instance).map_err(|err| self.classify(&store, err, false))
    }

    pub(crate) fn classify(
        &self,
        store: &Store<GuestState>,
        err: wasmtime::Error,
        instantiating: bool,
    ) -> GuestFailure {
        use crate::limits::LimitHit;
        match store.data().limiter.hit {
            Some(LimitHit::Memory) => {
                return GuestFailure::Memory {
                    limit_mib: self.limits.memory_bytes >> 20,
                };
            }
            Some(LimitHit::Table) => return GuestFailure::Table,
            None => {}
        }
        // A guest whose stderr is full fails on its next write (a Rust guest panics on a
        // failed `eprintln!`, and the panic message is lost with it): say so rather
        // than report the trap that followed.
        let interrupted = matches!(
            err.downcast_ref::<wasmtime::Trap>(),
            Some(wasmtime::Trap::Interrupt)
        );
        if !interrupted && store.data().stderr_full() {
            return GuestFailure::StderrFull {
                limit_kib: crate::guest::STDERR_CAPTURE >> 10,
                stderr: store.data().stderr_text().map(|s| truncate(&s, 500)),
            };
        }
        if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
            return match trap {
                wasmtime::Trap::Interrupt => GuestFailure::Deadline {
                    limit_ms: u64::try_from(self.limits.deadline.as_millis()).unwrap_or(u64::MAX),
                },
                wasmtime::Trap::StackOverflow => GuestFailure::Stack {
                    limit_kib: self.limits.stack_bytes >> 10,
                },
                other => GuestFailure::Trap {
                    trap: other.to_string(),
                    stderr: store.data().stderr_text().map(|s| truncate(&s, 2_000)),
                },
            };
        }
        let text = format!("{err:#}");
        if text.contains("hostcall fuel") || text.contains("fuel") && text.contains("exhausted") {
            return GuestFailure::OutputTooLarge {
                limit_bytes: self.limits.output_bytes,
            };
        }
        if instantiating {
            GuestFailure::Instantiate {
                reason: truncate(&text, 1_000),
            }
        } else {
            GuestFailure::Trap {
                trap: truncate(&text, 1_000),
                stderr: store.data().stderr_text().map(|s| truncate(&s, 2_000)),
            }
        }
    }
}

/// The most rules a policy may declare: far more than any real policy has, and
/// few enough that what the host does per rule stays small.
pub const MAX_RULES: usize = 1_000;

/// The longest description (of the policy or of a rule) and version a policy may give.
pub const MAX_DESCRIPTION_BYTES: usize = 4 << 10;

/// The largest configuration schema a policy may declare.
pub const MAX_CONFIG_SCHEMA_BYTES: usize = 256 << 10;

/// What the host requires of a policy's own description.
fn check_metadata(metadata: &PolicyMetadata) -> Result<(), String> {
    if !is_identifier(&metadata.id) {
        return Err(format!(
            "id `{}` must be 1 to 64 lowercase letters, digits and dashes",
            truncate(&metadata.id, 100)
        ));
    }
    if metadata.rules.len() > MAX_RULES {
        return Err(format!(
            "it declares {} rules, more than the {MAX_RULES} a policy may declare",
            metadata.rules.len()
        ));
    }
    let longest = std::iter::once(&metadata.description)
        .chain(std::iter::once(&metadata.version))
        .chain(metadata.rules.iter().map(|rule| &rule.description))
        .map(String::len)
        .max()
        .unwrap_or(0);
    if longest > MAX_DESCRIPTION_BYTES {
        return Err(format!(
            "a description or version of {longest} bytes is longer than the \
             {MAX_DESCRIPTION_BYTES} allowed"
        ));
    }
    if let Some(schema) = &metadata.config_schema
        && schema.len() > MAX_CONFIG_SCHEMA_BYTES
    {
        return Err(format!(
            "its configuration schema of {} bytes is larger than the \
             {MAX_CONFIG_SCHEMA_BYTES} allowed",
            schema.len()
        ));
    }
    let mut rules = HashSet::new();
    for rule in &metadata.rules {
        if !is_identifier(&rule.id) {
            return Err(format!(
                "rule id `{}` must be 1 to 64 lowercase letters, digits and dashes",
                truncate(&rule.id, 100)
            ));
        }
        if !rules.insert(rule.id.as_str()) {
            return Err(format!("rule id `{}` is declared twice", rule.id));
        }
    }
    if let Some(schema) = &metadata.config_schema {
        serde_json::from_str::<serde_json::Value>(schema)
            .map_err(|err| format!("the configuration schema is not JSON: {err}"))?;
    }
    Ok(())
}

pub(crate) fn is_identifier(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'_'
        })
}

/// A policy's output is checked like any other untrusted input.
/// What `evaluate` returned: findings as records (0.1.0, 0.2.0, 0.4.0, 0.6.0) or as one
/// JSON text (0.3.0 returns a string, 0.5.0 its UTF-8 bytes).
enum Returned {
    Records(Vec<bindings::WitFinding>),
    Json(Vec<u8>),
}

/// One finding of a 0.3.0 or 0.5.0 policy's JSON array (see `wit/plan@0.5.0`).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, expecting = "a finding object")]
struct JsonFinding {
    rule: String,
    severity: provkey_plan::Severity,
    enforcement: provkey_plan::Enforcement,
    message: String,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    attribute: Option<String>,
    #[serde(default)]
    remediation: Option<String>,
}

/// The findings of a 0.3.0 or 0.5.0 policy, from its JSON text; the text counts
/// against the output limit before anything is read, and a 0.5.0 policy's bytes must
/// be UTF-8.
fn findings_from_json(text: &[u8], output_limit: usize) -> Result<Vec<Finding>, GuestFailure> {
    if text.len() > output_limit {
        return Err(GuestFailure::OutputTooLarge {
            limit_bytes: output_limit,
        });
    }
    let text = std::str::from_utf8(text).map_err(|err| GuestFailure::BadOutput {
        reason: format!("the findings are not UTF-8 text: {err}"),
    })?;
    let findings: Vec<JsonFinding> =
        serde_json::from_str(text).map_err(|err| GuestFailure::BadOutput {
            reason: format!("the findings are not a JSON array of findings: {err}"),
        })?;
    Ok(findings
        .into_iter()
        .map(|f| Finding {
            rule: f.rule,
            severity: f.severity,
            enforcement: f.enforcement,
            message: f.message,
            address: f.address,
            attribute: f.attribute,
            remediation: f.remediation,
        })
        .collect())
}

fn check_findings(
    findings: impl IntoIterator<Item = Finding>,
    rule_ids: &HashSet<String, foldhash::fast::RandomState>,
    index: &PlanIndex<'_>,
    output_limit: usize,
) -> Result<Vec<Finding>, GuestFailure> {
    let mut total = 0usize;
    let mut out = Vec::new();
    for finding in findings {
        total = total.saturating_add(
            finding.message.len()
                + finding.rule.len()
                + finding.address.as_ref().map_or(0, String::len)
                + finding.attribute.as_ref().map_or(0, String::len)
                + finding.remediation.as_ref().map_or(0, String::len),
        );
        if total > output_limit {
            return Err(GuestFailure::OutputTooLarge {
                limit_bytes: output_limit,
            });
        }
        if !rule_ids.contains(&finding.rule) {
            return Err(GuestFailure::BadOutput {
                reason: format!(
                    "finding for rule `{}`, which the policy does not declare",
                    truncate(&finding.rule, 100)
                ),
            });
        }
        if let Some(address) = &finding.address
            && !index.addresses.contains(address.as_str())
        {
            return Err(GuestFailure::BadOutput {
                reason: format!(
                    "finding for resource `{}`, which is not in the plan",
                    truncate(address, 200)
                ),
            });
        }
        if let Some(attribute) = &finding.attribute
            && !(attribute.is_empty() || attribute.starts_with('/'))
        {
            return Err(GuestFailure::BadOutput {
                reason: format!(
                    "attribute `{}` is not a JSON Pointer",
                    truncate(attribute, 200)
                ),
            });
        }
        out.push(finding);
    }
    Ok(out)
}

/// Cuts text at a character boundary, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Opens a file to read without ever blocking in `open`: a FIFO with no writer, or a
/// device, cannot hold the process. Regular files and pipes are accepted (a pipe then
/// reads as usual, as `--plan <(terraform show -json plan.tfplan)` needs; one with no
/// writer reads as empty); anything else is refused.
pub fn open_input(path: &Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{FileType, Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let kind = FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode);
    match kind {
        FileType::RegularFile | FileType::Fifo => {
            // Reads block again from here on: a pipe's writer may be slow.
            rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
            Ok(std::fs::File::from(fd))
        }
        other => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "it is {}, not a regular file or a pipe",
                match other {
                    FileType::Directory => "a directory",
                    FileType::CharacterDevice | FileType::BlockDevice => "a device",
                    FileType::Socket => "a socket",
                    _ => "not a file",
                }
            ),
        )),
    }
}

/// Like [`open_input`], for what must be a regular file (a component is hashed
/// through a mapping and may be read twice).
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    let file = open_input(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is a pipe, not a regular file",
        ));
    }
    Ok(file)
}

/// Reads a file, refusing it once it passes `limit` bytes (without reading it all).
pub fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, RuntimeError> {
    use std::io::Read;
    let read_err = |source| RuntimeError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = open_input(path).map_err(read_err)?;
    // Sized from the start: a Python component is 18 MB, and growing the buffer by
    // doubling copies it several times over.
    let expected = file.metadata().map_or(0, |m| m.len());
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(limit).min(limit) + 1);
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() > limit {
        return Err(RuntimeError::TooLarge {
            name: path.display().to_string(),
            size: bytes.len(),
            limit,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn json_findings_are_read_with_their_optional_fields() {
        let findings = findings_from_json(
            r#"[{"rule": "r", "severity": "high", "enforcement": "soft-mandatory",
                 "message": "m", "address": "a.b", "attribute": null},
                {"rule": "s", "severity": "info", "enforcement": "advisory", "message": ""}]"#
                .as_bytes(),
            1 << 20,
        )
        .unwrap();
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0].severity, provkey_plan::Severity::High);
        assert_eq!(findings[0].address.as_deref(), Some("a.b"));
        assert_eq!(findings[0].attribute, None);
        assert_eq!(findings[1].enforcement, provkey_plan::Enforcement::Advisory);
        assert_eq!(findings[1].remediation, None);
    }

    #[test]
    fn json_findings_that_are_not_findings_are_bad_output() {
        for (text, expected) in [
            ("{}", "invalid type: map, expected a sequence"),
            (
                "[1]",
                "invalid type: integer `1`, expected a finding object",
            ),
            ("[{", "EOF while parsing an object"),
            (
                r#"[{"rule": "r", "severity": "urgent", "enforcement": "advisory", "message": ""}]"#,
                "unknown variant `urgent`",
            ),
            (
                r#"[{"rule": "r", "severity": "low", "enforcement": "advisory", "message": "", "x": 1}]"#,
                "unknown field `x`",
            ),
            (
                r#"[{"rule": "r", "severity": "low", "enforcement": "advisory"}]"#,
                "missing field `message`",
            ),
        ] {
            match findings_from_json(text.as_bytes(), 1 << 20) {
                Err(GuestFailure::BadOutput { reason }) => {
                    assert!(reason.contains(expected), "{text}: {reason}");
                    assert!(reason.starts_with("the findings are not a JSON array"));
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn json_findings_past_the_output_limit_are_refused_before_parsing() {
        let text = format!("[{}]", " ".repeat(100));
        assert!(matches!(
            findings_from_json(text.as_bytes(), 64),
            Err(GuestFailure::OutputTooLarge { limit_bytes: 64 })
        ));
    }

    #[test]
    fn json_findings_that_are_not_utf8_are_bad_output() {
        // `[`, a lone continuation byte, `]`: what a 0.5.0 policy could return.
        match findings_from_json(&[b'[', 0x80, b']'], 1 << 20) {
            Err(GuestFailure::BadOutput { reason }) => {
                assert!(
                    reason.starts_with("the findings are not UTF-8 text: invalid utf-8"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
