//! What a review adds to the policies' findings: enforcement levels set by the policy
//! set, signed waivers (scoped, expiring exceptions) and approver overrides of
//! soft-mandatory findings on one plan.
//!
//! Rules, in order, for each finding:
//! 1. its level is the set's rule level, else the set's policy level, else the level
//!    the policy gave it; a repository's levels over an organization set can only
//!    raise it (the effective level is the higher one);
//! 2. a hard-mandatory finding takes no exception: a matching waiver or override is
//!    reported as refused;
//! 3. otherwise the first matching waiver that has not expired waives it, else the
//!    first matching override; an expired matching waiver is reported and not applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use chrono::NaiveDate;
use provkey_core::minisig::{Role, StatementKind};
use provkey_core::statement;
use provkey_core::trust::TrustRoot;
use provkey_plan::{Enforcement, Finding};
use serde::{Deserialize, Serialize};

use crate::exit::{CliError, CliResult};

/// The largest waivers or override file read.
const MAX_FILE_BYTES: usize = 1 << 20;

/// Enforcement levels a set gives one policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Levels {
    /// The policy's level, for rules without their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<Enforcement>,
    /// Per-rule levels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, Enforcement>,
}

impl Levels {
    fn level_for(&self, rule: &str) -> Option<Enforcement> {
        self.rules.get(rule).copied().or(self.enforcement)
    }
}

/// The levels of one policy: the set's own, and the repository's raises over an
/// organization set's.
#[derive(Debug, Clone, Default)]
pub struct PolicyLevels {
    pub base: Levels,
    pub raise: Levels,
}

impl PolicyLevels {
    /// The effective level of a rule that the policy reported at `declared`.
    pub fn effective(&self, rule: &str, declared: Enforcement) -> Enforcement {
        let base = self.base.level_for(rule).unwrap_or(declared);
        match self.raise.level_for(rule) {
            Some(raised) => base.max(raised),
            None => base,
        }
    }

    /// Refuses a raise that is lower than the organization's level at the same scope.
    pub fn check_upward(&self, set: &str, policy: &str) -> CliResult<()> {
        let lowered = |scope: String, org: Enforcement, repo: Enforcement| {
            CliError::bad_input(anyhow!(
                "policy `{policy}` of set `{set}`: the repository sets {scope} to `{}`, \
                 below the organization's `{}`",
                repo.as_str(),
                org.as_str()
            ))
            .with_help("a repository may only raise the levels of an organization set")
        };
        if let (Some(org), Some(repo)) = (self.base.enforcement, self.raise.enforcement)
            && repo < org
        {
            return Err(lowered("the policy's level".into(), org, repo));
        }
        for (rule, repo) in &self.raise.rules {
            if let Some(org) = self.base.level_for(rule)
                && *repo < org
            {
                return Err(lowered(format!("rule `{rule}`"), org, *repo));
            }
        }
        Ok(())
    }
}

/// Where an exception comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExceptionKind {
    Waiver,
    Override,
}

impl ExceptionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::Waiver => "waiver",
            ExceptionKind::Override => "override",
        }
    }
}

/// A signed exception, verified.
#[derive(Debug, Clone)]
pub struct Exception {
    pub kind: ExceptionKind,
    pub policy: String,
    pub rule: String,
    /// A resource address or pattern (`*` any characters, `?` one).
    pub address: String,
    pub reason: String,
    pub owner: String,
    /// The last day (UTC) it applies.
    pub expires: NaiveDate,
    pub source_blake3: String,
    /// The approver key that signed it.
    pub approver: String,
}

impl Exception {
    fn matches(&self, policy: &str, finding: &Finding) -> bool {
        let address = finding.address.as_deref().unwrap_or("");
        self.policy == policy
            && (self.rule == "*" || self.rule == finding.rule)
            && wildmatch::WildMatch::new(&self.address).matches(address)
    }

    pub fn expired(&self, today: NaiveDate) -> bool {
        today > self.expires
    }

    pub fn to_ref(&self) -> provkey_core::manifest::WaiverRef {
        provkey_core::manifest::WaiverRef {
            kind: self.kind.as_str().into(),
            policy: self.policy.clone(),
            rule: self.rule.clone(),
            address: self.address.clone(),
            owner: self.owner.clone(),
            reason: self.reason.clone(),
            expires: self.expires.to_string(),
            source_blake3: self.source_blake3.clone(),
            approver_keyid: self.approver.clone(),
        }
    }
}

/// What happened to a finding's exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExceptionStatus {
    /// A waiver applies: the finding does not count.
    Waived,
    /// An approver's override applies: the finding does not count.
    Overridden,
    /// A matching waiver has expired: the finding counts.
    Expired,
    /// A matching waiver or override was refused: the finding is hard-mandatory.
    Refused,
}

impl ExceptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionStatus::Waived => "waived",
            ExceptionStatus::Overridden => "overridden",
            ExceptionStatus::Expired => "expired",
            ExceptionStatus::Refused => "refused",
        }
    }

    /// Whether the finding no longer counts towards the verdict.
    pub fn applies(self) -> bool {
        matches!(self, ExceptionStatus::Waived | ExceptionStatus::Overridden)
    }
}

/// The exception shown with a finding.
#[derive(Debug, Clone, Serialize)]
pub struct ExceptionNote {
    pub status: ExceptionStatus,
    pub kind: ExceptionKind,
    pub owner: String,
    pub reason: String,
    pub expires: String,
    pub approver: String,
    /// Index into [`Review::exceptions`].
    #[serde(skip)]
    pub index: usize,
}

impl ExceptionNote {
    /// One line for people: `waived by waiver of team@x until 2026-12-31: reason`.
    pub fn describe(&self) -> String {
        let owner = if self.owner.is_empty() {
            String::new()
        } else {
            format!(" of {}", self.owner)
        };
        let what = match self.status {
            ExceptionStatus::Waived => format!("by the waiver{owner}, until {}", self.expires),
            ExceptionStatus::Overridden => format!(
                "overridden by approver {} until {}",
                self.approver, self.expires
            ),
            ExceptionStatus::Expired => {
                format!("waiver{owner} expired on {} (not applied)", self.expires)
            }
            ExceptionStatus::Refused => format!(
                "{}{owner} refused: a hard-mandatory finding cannot be waived or overridden",
                self.kind.as_str()
            ),
        };
        format!("{what}: {}", self.reason)
    }
}

/// Levels and exceptions for one check.
#[derive(Debug, Clone)]
pub struct Review {
    /// By policy id.
    pub levels: BTreeMap<String, PolicyLevels>,
    pub exceptions: Vec<Exception>,
    pub today: NaiveDate,
}

impl Default for Review {
    fn default() -> Self {
        Review {
            levels: BTreeMap::new(),
            exceptions: Vec::new(),
            today: today(),
        }
    }
}

/// Today's date (UTC).
pub fn today() -> NaiveDate {
    let now = i64::try_from(provkey_core::unix_now()).unwrap_or(0);
    chrono::DateTime::from_timestamp(now, 0)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

impl Review {
    /// Applies the levels to a finding (in place) and finds its exception.
    pub fn apply(&self, policy: &str, finding: &mut Finding) -> Option<ExceptionNote> {
        if let Some(levels) = self.levels.get(policy) {
            finding.enforcement = levels.effective(&finding.rule, finding.enforcement);
        }
        let mut expired = None;
        for (index, exception) in self.exceptions.iter().enumerate() {
            if !exception.matches(policy, finding) {
                continue;
            }
            let note = |status| ExceptionNote {
                status,
                kind: exception.kind,
                owner: exception.owner.clone(),
                reason: exception.reason.clone(),
                expires: exception.expires.to_string(),
                approver: exception.approver.clone(),
                index,
            };
            if finding.enforcement == Enforcement::HardMandatory {
                return Some(note(ExceptionStatus::Refused));
            }
            if exception.expired(self.today) {
                expired.get_or_insert_with(|| note(ExceptionStatus::Expired));
                continue;
            }
            return Some(note(match exception.kind {
                ExceptionKind::Waiver => ExceptionStatus::Waived,
                ExceptionKind::Override => ExceptionStatus::Overridden,
            }));
        }
        expired
    }

    /// The declared level of a rule as the set makes it.
    pub fn rule_level(&self, policy: &str, rule: &str, declared: Enforcement) -> Enforcement {
        self.levels
            .get(policy)
            .map_or(declared, |l| l.effective(rule, declared))
    }
}

// ---- waivers files -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiversFile {
    #[serde(default)]
    waiver: Vec<WaiverEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverEntry {
    policy: String,
    rule: String,
    address: String,
    reason: String,
    owner: String,
    expires: toml::value::Datetime,
}

fn bad(msg: String) -> CliError {
    CliError::bad_input(anyhow!(msg))
}

fn read_limited(path: &Path, what: &str) -> CliResult<Vec<u8>> {
    let bytes = provkey_runtime::read_bounded(path, MAX_FILE_BYTES)
        .map_err(|e| bad(format!("cannot read {what} `{}`: {e}", path.display())))?;
    Ok(bytes)
}

/// The signature file of a waivers or override file: `FILE.minisig`.
pub fn signature_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".minisig");
    path.with_file_name(name)
}

struct ParsedWaivers {
    entries: Vec<(WaiverEntry, NaiveDate)>,
}

fn parse_waivers(path: &Path, bytes: &[u8]) -> CliResult<ParsedWaivers> {
    let shown = path.display();
    let text = std::str::from_utf8(bytes)
        .map_err(|_| bad(format!("waivers file `{shown}` is not UTF-8 text")))?;
    let file: WaiversFile = toml::from_str(text).map_err(|e| {
        bad(format!("waivers file `{shown}` is malformed: {e}")).with_help(
            "each `[[waiver]]` has policy, rule, address, reason, owner and expires = YYYY-MM-DD",
        )
    })?;
    let mut entries = Vec::new();
    for (i, w) in file.waiver.into_iter().enumerate() {
        let n = i + 1;
        let date = match (w.expires.date, w.expires.time) {
            (Some(d), None) => NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day)),
            _ => None,
        }
        .ok_or_else(|| {
            bad(format!(
                "waiver {n} in `{shown}`: `expires` must be a date (`expires = 2026-12-31`), found `{}`",
                w.expires
            ))
        })?;
        for (field, value) in [
            ("policy", &w.policy),
            ("rule", &w.rule),
            ("address", &w.address),
            ("reason", &w.reason),
            ("owner", &w.owner),
        ] {
            if value.trim().is_empty() {
                return Err(
                    bad(format!("waiver {n} in `{shown}`: `{field}` is empty")).with_help(
                        "a waiver names its policy, rule, address (or pattern), reason and owner",
                    ),
                );
            }
        }
        entries.push((w, date));
    }
    Ok(ParsedWaivers { entries })
}

/// The trusted comment of an approver's signature over a waivers file: `seq` is the
/// number of waivers, `exp` the end of the latest expiry day (unix).
fn waivers_comment(bytes: &[u8], parsed: &ParsedWaivers) -> provkey_core::minisig::TrustedComment {
    let latest = parsed
        .entries
        .iter()
        .map(|(_, d)| end_of_day(*d))
        .max()
        .unwrap_or(0);
    statement::trusted_comment(
        StatementKind::Waivers,
        bytes,
        "waivers",
        parsed.entries.len() as u64,
        latest,
        Role::Approver,
    )
}

fn end_of_day(date: NaiveDate) -> u64 {
    date.and_hms_opt(23, 59, 59)
        .map(|t| t.and_utc().timestamp())
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(0)
        .min(provkey_core::canonical::MAX_INT)
}

/// Signs a waivers file with an approver key: writes `FILE.minisig`.
pub fn sign_waivers(path: &Path, key: &provkey_core::keys::SecretKey) -> CliResult<PathBuf> {
    let bytes = read_limited(path, "waivers file")?;
    let parsed = parse_waivers(path, &bytes)?;
    let tc = waivers_comment(&bytes, &parsed);
    let sig = statement::sign_statement(key, &bytes, &tc).map_err(|e| bad(e.to_string()))?;
    let out = signature_path(path);
    write_atomic(&out, sig.to_text().as_bytes())?;
    Ok(out)
}

/// Reads and verifies a waivers file against the trust root (an approver's signature
/// in `FILE.minisig`); any problem refuses the whole file.
pub fn load_waivers(path: &Path, trust: &TrustRoot) -> CliResult<Vec<Exception>> {
    let shown = path.display();
    let bytes = read_limited(path, "waivers file")?;
    let parsed = parse_waivers(path, &bytes)?;
    let sig_path = signature_path(path);
    let sig = std::fs::read(&sig_path).map_err(|e| {
        bad(format!(
            "waivers file `{shown}` is not signed: cannot read `{}`: {e}",
            sig_path.display()
        ))
        .with_help("an approver signs it: `provkey waiver sign FILE --key APPROVER_KEY`")
    })?;
    let tc = waivers_comment(&bytes, &parsed);
    let key = statement::verify_statement(trust, &bytes, &sig, &tc).map_err(|e| {
        bad(format!("waivers file `{shown}` is refused: {e}")).with_help(
            "an approver of the trust root must sign the file as it is: \
             `provkey waiver sign FILE --key APPROVER_KEY`",
        )
    })?;
    let blake3 = provkey_core::blake3_hex(&bytes);
    Ok(parsed
        .entries
        .into_iter()
        .map(|(w, expires)| Exception {
            kind: ExceptionKind::Waiver,
            policy: w.policy,
            rule: w.rule,
            address: w.address,
            reason: w.reason,
            owner: w.owner,
            expires,
            source_blake3: blake3.clone(),
            approver: key.key_id_hex(),
        })
        .collect())
}

// ---- overrides -----------------------------------------------------------------

/// The only `_type` an override carries.
pub const OVERRIDE_TYPE: &str = "https://provkey/override/v1";

/// An approver's override of soft-mandatory findings of one rule on one plan
/// (canonical JSON, signed in `FILE.minisig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideDoc {
    #[serde(rename = "_type")]
    pub type_: String,
    /// blake3 of the plan file it is for.
    pub plan_blake3: String,
    pub policy: String,
    pub rule: String,
    /// Address or pattern; `*` for every resource.
    pub address: String,
    pub reason: String,
    /// `YYYY-MM-DD`: the last day it applies.
    pub expires: String,
}

impl OverrideDoc {
    fn comment(&self, bytes: &[u8], expires: NaiveDate) -> provkey_core::minisig::TrustedComment {
        statement::trusted_comment(
            StatementKind::Override,
            bytes,
            "override",
            0,
            end_of_day(expires),
            Role::Approver,
        )
    }
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// Writes an override (canonical JSON) and its approver signature.
pub fn write_override(
    out: &Path,
    doc: &OverrideDoc,
    key: &provkey_core::keys::SecretKey,
) -> CliResult<PathBuf> {
    let expires = parse_date(&doc.expires)
        .ok_or_else(|| bad(format!("`{}` is not a date (YYYY-MM-DD)", doc.expires)))?;
    let bytes = provkey_core::canonical::to_canonical(doc).map_err(|e| bad(e.to_string()))?;
    let sig = statement::sign_statement(key, &bytes, &doc.comment(&bytes, expires))
        .map_err(|e| bad(e.to_string()))?;
    let sig_path = signature_path(out);
    write_atomic(out, &bytes)?;
    write_atomic(&sig_path, sig.to_text().as_bytes())?;
    Ok(sig_path)
}

/// Reads and verifies an override for the plan whose file has digest `plan_blake3`.
pub fn load_override(path: &Path, trust: &TrustRoot, plan_blake3: &str) -> CliResult<Exception> {
    let shown = path.display();
    let bytes = read_limited(path, "override")?;
    let value = provkey_core::canonical::parse_canonical(&bytes)
        .map_err(|e| bad(format!("override `{shown}` is malformed: {e}")))?;
    let doc: OverrideDoc = serde_json::from_value(value)
        .map_err(|e| bad(format!("override `{shown}` is malformed: {e}")))?;
    if doc.type_ != OVERRIDE_TYPE {
        return Err(bad(format!(
            "`{shown}` is not an override (`_type` `{}`)",
            doc.type_
        )));
    }
    let expires = parse_date(&doc.expires)
        .ok_or_else(|| bad(format!("override `{shown}`: `expires` is not YYYY-MM-DD")))?;
    let sig_path = signature_path(path);
    let sig = std::fs::read(&sig_path).map_err(|e| {
        bad(format!(
            "override `{shown}` is not signed: cannot read `{}`: {e}",
            sig_path.display()
        ))
    })?;
    let key = statement::verify_statement(trust, &bytes, &sig, &doc.comment(&bytes, expires))
        .map_err(|e| {
            bad(format!("override `{shown}` is refused: {e}")).with_help(
                "an approver of the trust root writes overrides: `provkey policy override …`",
            )
        })?;
    if doc.plan_blake3 != plan_blake3 {
        return Err(bad(format!(
            "override `{shown}` is for the plan with blake3 `{}`, not this plan (`{plan_blake3}`)",
            doc.plan_blake3
        ))
        .with_help("an override names one plan: ask an approver to override this plan"));
    }
    if expires < today() {
        return Err(bad(format!("override `{shown}` expired on {expires}")));
    }
    Ok(Exception {
        kind: ExceptionKind::Override,
        policy: doc.policy,
        rule: doc.rule,
        address: doc.address,
        reason: doc.reason,
        owner: String::new(),
        expires,
        source_blake3: provkey_core::blake3_hex(&bytes),
        approver: key.key_id_hex(),
    })
}

// ---- files ---------------------------------------------------------------------

/// Writes `bytes` to a temporary file beside `path` and renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> CliResult<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        crate::output_file::write(path, bytes)
    };
    write().map_err(|e| bad(format!("cannot write `{}`: {e}", path.display())))
}

/// Loads a trust root with its root signatures (`FILE.<KEYID>.minisig` beside it).
pub fn load_trust_root(path: &Path) -> CliResult<TrustRoot> {
    let shown = path.display();
    let bytes =
        std::fs::read(path).map_err(|e| bad(format!("cannot read trust root `{shown}`: {e}")))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut sigs = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| bad(format!("cannot list `{}`: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let is_sig = file
            .strip_prefix(&format!("{name}."))
            .and_then(|r| r.strip_suffix(".minisig"))
            .is_some_and(|id| provkey_core::minisig::parse_key_id_hex(id).is_some());
        if is_sig {
            let sig = std::fs::read(entry.path())
                .map_err(|e| bad(format!("cannot read `{}`: {e}", entry.path().display())))?;
            sigs.push(sig);
        }
    }
    TrustRoot::load(&bytes, &sigs, provkey_core::unix_now()).map_err(|e| {
        bad(format!("trust root `{shown}` is refused: {e}"))
            .with_help("sign it with its root keys: `provkey trust sign FILE --key ROOT_KEY`")
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use provkey_plan::Severity;

    fn levels(base: Option<Enforcement>, raise: Option<Enforcement>) -> PolicyLevels {
        PolicyLevels {
            base: Levels {
                enforcement: base,
                rules: BTreeMap::from([("r".to_string(), Enforcement::HardMandatory)]),
            },
            raise: Levels {
                enforcement: raise,
                rules: BTreeMap::new(),
            },
        }
    }

    #[test]
    fn levels_come_from_rule_then_policy_then_finding_and_only_rise() {
        use Enforcement::*;
        let l = levels(Some(SoftMandatory), None);
        assert_eq!(l.effective("r", Advisory), HardMandatory);
        assert_eq!(l.effective("other", Advisory), SoftMandatory);
        assert_eq!(levels(None, None).effective("other", Advisory), Advisory);
        let raised = levels(Some(Advisory), Some(SoftMandatory));
        assert_eq!(raised.effective("other", Advisory), SoftMandatory);
        assert_eq!(raised.effective("r", Advisory), HardMandatory);
        assert!(raised.check_upward("s", "p").is_ok());
        assert!(
            levels(Some(SoftMandatory), Some(Advisory))
                .check_upward("s", "p")
                .is_err()
        );
        let mut lowered_rule = levels(None, None);
        lowered_rule.raise.rules.insert("r".into(), SoftMandatory);
        assert!(lowered_rule.check_upward("s", "p").is_err());
    }

    #[test]
    fn exceptions_match_policy_rule_and_address_pattern() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let exception = |address: &str, expires: NaiveDate| Exception {
            kind: ExceptionKind::Waiver,
            policy: "p".into(),
            rule: "r".into(),
            address: address.into(),
            reason: "why".into(),
            owner: "me".into(),
            expires,
            source_blake3: "0".repeat(64),
            approver: "0000000000000000".into(),
        };
        let review = Review {
            levels: BTreeMap::new(),
            exceptions: vec![
                exception(
                    "aws_instance.old*",
                    NaiveDate::from_ymd_opt(2026, 5, 31).unwrap(),
                ),
                exception("aws_instance.*", today),
            ],
            today,
        };
        let finding = |address: &str, enforcement| Finding {
            rule: "r".into(),
            severity: Severity::High,
            enforcement,
            message: "m".into(),
            address: Some(address.into()),
            attribute: None,
            remediation: None,
        };
        let mut f = finding("aws_instance.web[\"a\"]", Enforcement::SoftMandatory);
        let note = review.apply("p", &mut f).unwrap();
        assert_eq!((note.status, note.index), (ExceptionStatus::Waived, 1));
        assert!(review.apply("q", &mut f).is_none());
        let mut f = finding("aws_s3_bucket.x", Enforcement::SoftMandatory);
        assert!(review.apply("p", &mut f).is_none());
        let mut f = finding("aws_instance.web", Enforcement::HardMandatory);
        assert_eq!(
            review.apply("p", &mut f).unwrap().status,
            ExceptionStatus::Refused
        );
        // The expiry day itself still applies; the day after, it is expired.
        let later = Review {
            today: NaiveDate::from_ymd_opt(2026, 6, 2).unwrap(),
            ..review
        };
        let mut f = finding("aws_instance.web", Enforcement::SoftMandatory);
        assert_eq!(
            later.apply("p", &mut f).unwrap().status,
            ExceptionStatus::Expired
        );
    }
}
