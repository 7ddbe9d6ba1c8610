//! The check report: one data structure, rendered as text, JSON, SARIF, JUnit XML,
//! markdown or GitHub Actions workflow commands.
//!
//! Every text a policy returned is passed through [`redact::Redactor`] when the
//! report is built, so no format can print a value the plan marks sensitive.

pub mod github;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod redact;
pub mod sarif;
pub mod text;

use std::collections::BTreeMap;
use std::path::Path;

use provkey_plan::{Enforcement, Finding, Plan, RuleInfo, Severity};
use provkey_runtime::{PolicyOrigin, PolicyOutcome};
use serde::Serialize;

use crate::exit::Exit;
use crate::policy_set::review::{ExceptionNote, ExceptionStatus, Review};

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people, in colour on a terminal.
    Text,
    /// provkey's JSON report (versioned).
    Json,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
    /// JUnit XML, for CI test-result views.
    Junit,
    /// A markdown summary, for a pull-request comment or job summary.
    Markdown,
    /// GitHub Actions workflow commands (annotations).
    Github,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Text,
        Format::Json,
        Format::Sarif,
        Format::Junit,
        Format::Markdown,
        Format::Github,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Sarif => "sarif",
            Format::Junit => "junit",
            Format::Markdown => "markdown",
            Format::Github => "github",
        }
    }

    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Renders the report in `format`, without colour.
pub fn render(format: Format, report: &CheckReport, plan: &Plan) -> std::io::Result<Vec<u8>> {
    // A rough size (a JSON finding takes about 400 bytes), so that the buffer is not
    // copied at every doubling while the report is written.
    let mut out = Vec::with_capacity(4096 + 512 * report.findings.len());
    write(format, report, plan, &mut out)?;
    Ok(out)
}

/// Writes a report in `format` to `out` as it is produced.
pub fn write(
    format: Format,
    report: &CheckReport,
    plan: &Plan,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    match format {
        Format::Text => text::write(report, plan, text::Palette::PLAIN, out),
        Format::Json => json::write(report, out),
        Format::Sarif => sarif::write(report, out),
        Format::Junit => junit::write(report, out),
        Format::Markdown => markdown::write(report, plan, out),
        Format::Github => github::write(report, out),
    }
}

/// The JSON report's schema version; bumped on any incompatible change.
pub const REPORT_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct PlanSummary {
    pub path: String,
    pub source: &'static str,
    pub source_version: String,
    pub blake3: String,
    pub changes: usize,
    pub actions: Vec<(&'static str, usize)>,
    /// The line of the plan file where each change is described (1-based), for
    /// reports that point into the file.
    #[serde(skip)]
    pub address_lines: BTreeMap<String, usize>,
    /// The Terraform configuration the plan was made from (`--source-dir`): findings
    /// then point at the `.tf` line that declares their resource.
    #[serde(skip)]
    pub sources: Option<provkey_source_map::SourceMap>,
}

impl PlanSummary {
    /// `blake3` is the hex digest of `bytes` (the caller has it already).
    pub fn new(path: &Path, plan: &Plan, bytes: &[u8], blake3: String) -> Self {
        PlanSummary {
            path: path.display().to_string(),
            source: plan.source.as_str(),
            source_version: plan.source_version.clone(),
            blake3,
            changes: plan.changes.len(),
            actions: plan.action_counts(),
            address_lines: address_lines(plan, bytes),
            sources: None,
        }
    }

    /// The line where `address` is described in the plan file, if it was found.
    pub fn line_of(&self, address: &str) -> Option<usize> {
        self.address_lines.get(address).copied()
    }
}

/// Finds the line of each change's `"address": "…"` in the plan file, searching
/// from the list of changes (`resource_changes` in Terraform plans, `changes` in
/// provkey's), so that Terraform's `planned_values` and `prior_state` are skipped.
fn address_lines(plan: &Plan, bytes: &[u8]) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    let Ok(text) = std::str::from_utf8(bytes) else {
        return lines;
    };
    if plan.source == provkey_plan::PlanSource::Kubernetes {
        // A manifest: the line of each object's YAML document.
        for (address, line) in provkey_kubernetes::object_lines(text) {
            lines.entry(address).or_insert(line);
        }
        return lines;
    }
    let start = text
        .find("\"resource_changes\"")
        .or_else(|| text.find("\"changes\""))
        .unwrap_or(0);
    let wanted: std::collections::HashSet<&str> =
        plan.changes.iter().map(|c| c.address.as_str()).collect();
    // memchr's SIMD search and newline count: a plan of 1,000 changes is 2 MB.
    let newlines = |from: usize, to: usize| {
        bytes
            .get(from..to)
            .map_or(0, |b| memchr::memchr_iter(b'\n', b).count())
    };
    let mut line = 1 + newlines(0, start);
    let mut counted = start;
    let key = b"\"address\"";
    for at in memchr::memmem::find_iter(bytes.get(start..).unwrap_or_default(), key) {
        let at = start + at;
        let rest = text.get(at + key.len()..).unwrap_or("").trim_start();
        let Some(rest) = rest.strip_prefix(':') else {
            continue;
        };
        let rest = rest.trim_start();
        let Some(literal) = json_string_literal(rest) else {
            continue;
        };
        let Ok(address) = serde_json::from_str::<String>(literal) else {
            continue;
        };
        if wanted.contains(address.as_str()) && !lines.contains_key(&address) {
            line += newlines(counted, at);
            counted = at;
            lines.insert(address, line);
        }
    }
    lines
}

/// The JSON string literal at the start of `text`, quotes included.
fn json_string_literal(text: &str) -> Option<&str> {
    let body = text.strip_prefix('"')?;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return text.get(..i + 2),
            _ => {}
        }
    }
    None
}

/// A place in a file: the path as given and a 1-based line, when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLocation<'a> {
    pub path: &'a str,
    pub line: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct PolicyLine {
    pub id: String,
    pub version: Option<String>,
    pub origin: &'static str,
    pub path: Option<String>,
    pub blake3: Option<String>,
    pub status: &'static str,
    pub failure: Option<FailureLine>,
    pub findings: usize,
    #[serde(skip)]
    pub elapsed_ms: f64,
    /// What the policy says it checks (absent when it did not load).
    #[serde(skip)]
    pub description: Option<String>,
    /// The rules the policy declares, with their defaults.
    #[serde(skip)]
    pub rules: Vec<RuleInfo>,
}

#[derive(Debug, Serialize)]
pub struct FailureLine {
    pub kind: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct FindingLine {
    pub policy: String,
    #[serde(flatten)]
    pub finding: Finding,
    /// The waiver or override that matched it (absent when none did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<ExceptionNote>,
}

impl FindingLine {
    /// Whether a waiver or an approver's override takes it out of the verdict.
    pub fn excepted(&self) -> bool {
        self.exception.as_ref().is_some_and(|e| e.status.applies())
    }

    /// Whether it fails the check: mandatory and not excepted.
    pub fn fails(&self) -> bool {
        self.finding.enforcement.is_mandatory() && !self.excepted()
    }
}

#[derive(Debug, Serialize, Default)]
pub struct Summary {
    /// Hard- and soft-mandatory findings that count (not waived or overridden).
    pub hard_mandatory: usize,
    pub soft_mandatory: usize,
    pub advisory: usize,
    pub failed_policies: usize,
    /// Findings waived by a signed waiver.
    #[serde(skip_serializing_if = "is_zero")]
    pub waived: usize,
    /// Soft-mandatory findings overridden by an approver.
    #[serde(skip_serializing_if = "is_zero")]
    pub overridden: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A waiver or override given to the check, and what became of it.
#[derive(Debug, Serialize)]
pub struct WaiverLine {
    pub kind: &'static str,
    pub policy: String,
    pub rule: String,
    pub address: String,
    pub owner: String,
    pub reason: String,
    pub expires: String,
    pub approver: String,
    /// `applied`, `expired` (matched findings it no longer waives, or none), `unused`.
    pub status: &'static str,
    /// The findings it waived (or, expired, would have).
    pub findings: usize,
}

#[derive(Debug)]
pub struct CheckReport {
    pub plan: PlanSummary,
    pub policies: Vec<PolicyLine>,
    pub findings: Vec<FindingLine>,
    pub summary: Summary,
    /// The waivers and overrides given, with what became of each.
    pub waivers: Vec<WaiverLine>,
    pub exit: Exit,
}

impl CheckReport {
    #[allow(dead_code, reason = "kept for commands that check without a review")]
    pub fn new(plan_summary: PlanSummary, plan: &Plan, outcomes: &[PolicyOutcome]) -> Self {
        let redactor = redact::Redactor::from_plan(plan);
        Self::reviewed(plan_summary, plan, &redactor, outcomes, &Review::default())
    }

    /// The report with the review's enforcement levels, waivers and overrides applied;
    /// `redactor` holds `plan`'s sensitive values (built while the policies run).
    pub fn reviewed(
        plan_summary: PlanSummary,
        plan: &Plan,
        redactor: &redact::Redactor,
        outcomes: &[PolicyOutcome],
        review: &Review,
    ) -> Self {
        let mut used = vec![0usize; review.exceptions.len()];
        let mut expired_hits = vec![0usize; review.exceptions.len()];
        let addresses: std::collections::HashSet<&str> =
            plan.changes.iter().map(|c| c.address.as_str()).collect();
        let mut policies = Vec::with_capacity(outcomes.len());
        // Sized up front: growing a vector of thousands of findings one doubling at a
        // time touches fresh memory at every step.
        let mut findings = Vec::with_capacity(
            outcomes
                .iter()
                .map(|o| o.result.as_ref().map_or(0, Vec::len))
                .sum(),
        );
        let mut summary = Summary::default();
        for outcome in outcomes {
            let (origin, path) = match &outcome.origin {
                Some(PolicyOrigin::Stock) => ("stock", None),
                Some(PolicyOrigin::File(p)) => ("file", Some(p.display().to_string())),
                None => ("file", Some(outcome.id.clone())),
            };
            let (status, failure, count) = match &outcome.result {
                Ok(found) => {
                    for finding in found {
                        let mut finding = finding.clone();
                        let exception = review.apply(&outcome.id, &mut finding);
                        match exception.as_ref().map(|e| e.status) {
                            Some(ExceptionStatus::Waived) => summary.waived += 1,
                            Some(ExceptionStatus::Overridden) => summary.overridden += 1,
                            _ => match finding.enforcement {
                                Enforcement::HardMandatory => summary.hard_mandatory += 1,
                                Enforcement::SoftMandatory => summary.soft_mandatory += 1,
                                Enforcement::Advisory => summary.advisory += 1,
                            },
                        }
                        if let Some(e) = &exception {
                            match e.status {
                                ExceptionStatus::Expired => expired_hits[e.index] += 1,
                                status if status.applies() => used[e.index] += 1,
                                _ => {}
                            }
                        }
                        redact_finding(redactor, &addresses, &mut finding);
                        findings.push(FindingLine {
                            policy: outcome.id.clone(),
                            finding,
                            exception,
                        });
                    }
                    ("ok", None, found.len())
                }
                Err(err) => {
                    summary.failed_policies += 1;
                    let message = redactor.redact(&error_chain(err)).into_owned();
                    (
                        "failed",
                        Some(FailureLine {
                            kind: err.kind(),
                            message,
                        }),
                        0,
                    )
                }
            };
            policies.push(PolicyLine {
                id: outcome.id.clone(),
                version: outcome.metadata.as_ref().map(|m| m.version.clone()),
                origin,
                path,
                blake3: outcome.digest.map(|d| d.to_hex().to_string()),
                status,
                failure,
                findings: count,
                elapsed_ms: outcome.elapsed.as_secs_f64() * 1e3,
                description: outcome.metadata.as_ref().map(|m| m.description.clone()),
                rules: outcome
                    .metadata
                    .as_ref()
                    .map(|m| {
                        m.rules
                            .iter()
                            .map(|r| RuleInfo {
                                enforcement: review.rule_level(&outcome.id, &r.id, r.enforcement),
                                ..r.clone()
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        // Plan order first (resources as they are applied), then severity, policy, rule.
        let position: std::collections::HashMap<&str, usize> = plan
            .changes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.address.as_str(), i))
            .collect();
        findings.sort_by(|a, b| {
            let pos = |f: &FindingLine| {
                f.finding
                    .address
                    .as_deref()
                    .and_then(|addr| position.get(addr).copied())
                    .map_or(0, |p| p + 1)
            };
            pos(a)
                .cmp(&pos(b))
                .then(b.finding.severity.cmp(&a.finding.severity))
                .then(a.policy.cmp(&b.policy))
                .then(a.finding.rule.cmp(&b.finding.rule))
                .then(a.finding.attribute.cmp(&b.finding.attribute))
                .then(a.finding.message.cmp(&b.finding.message))
        });
        let exit = if summary.failed_policies > 0 {
            Exit::PolicyFailed
        } else if summary.hard_mandatory + summary.soft_mandatory > 0 {
            Exit::MandatoryFindings
        } else {
            Exit::Pass
        };
        let waivers = review
            .exceptions
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let expired = e.expired(review.today);
                WaiverLine {
                    kind: e.kind.as_str(),
                    policy: e.policy.clone(),
                    rule: e.rule.clone(),
                    address: redactor.redact(&e.address).into_owned(),
                    owner: e.owner.clone(),
                    reason: redactor.redact(&e.reason).into_owned(),
                    expires: e.expires.to_string(),
                    approver: e.approver.clone(),
                    status: if expired {
                        "expired"
                    } else if used[i] > 0 {
                        "applied"
                    } else {
                        "unused"
                    },
                    findings: if expired { expired_hits[i] } else { used[i] },
                }
            })
            .collect();
        CheckReport {
            plan: plan_summary,
            policies,
            findings,
            summary,
            waivers,
            exit,
        }
    }

    /// Where `finding` points: the file and line every format that points into
    /// files (SARIF, annotations, markdown) uses. The `.tf` line that declares its
    /// resource (or the attribute it names) when the configuration is known
    /// (`--source-dir`), or else the plan file, at the line where the finding's
    /// change is described.
    pub fn location_of(&self, finding: &Finding) -> FileLocation<'_> {
        if let Some(found) = finding
            .address
            .as_deref()
            .zip(self.plan.sources.as_ref())
            .and_then(|(address, sources)| sources.locate(address, finding.attribute.as_deref()))
        {
            return FileLocation {
                path: found.file,
                line: Some(found.line),
            };
        }
        FileLocation {
            path: &self.plan.path,
            line: finding
                .address
                .as_deref()
                .and_then(|a| self.plan.line_of(a)),
        }
    }

    pub fn verdict(&self) -> &'static str {
        match self.exit {
            Exit::Pass => "pass",
            Exit::MandatoryFindings => "fail",
            Exit::BadInput | Exit::PolicyFailed => "error",
        }
    }
}

/// Each change's action name by address, so that a report of many findings looks
/// each one up in constant time.
pub(crate) fn action_names(plan: &Plan) -> std::collections::HashMap<&str, &'static str> {
    plan.changes
        .iter()
        .map(|c| (c.address.as_str(), c.action.name()))
        .collect()
}

/// `message` without a leading mention of `address` (the heading above names it):
/// "`a.b` would be updated" becomes "would be updated", "`a.b`: tags unknown"
/// becomes "tags unknown".
pub(crate) fn without_subject<'a>(message: &'a str, address: &str) -> &'a str {
    let rest = message
        .strip_prefix('`')
        .and_then(|m| m.strip_prefix(address))
        .and_then(|m| m.strip_prefix('`'))
        .or_else(|| message.strip_prefix(address));
    let rest = rest.map(|r| r.strip_prefix(':').unwrap_or(r));
    match rest {
        Some(rest) if rest.starts_with(' ') && !rest.trim().is_empty() => rest.trim_start(),
        _ => message,
    }
}

/// Removes sensitive values from what a policy said. An address is left alone when
/// it is one of the plan's (the plan's own addresses are printed anyway).
fn redact_finding(
    redactor: &redact::Redactor,
    addresses: &std::collections::HashSet<&str>,
    finding: &mut Finding,
) {
    if redactor.is_empty() {
        return;
    }
    redactor.redact_in_place(&mut finding.rule);
    redactor.redact_in_place(&mut finding.message);
    if let Some(remediation) = &mut finding.remediation {
        redactor.redact_in_place(remediation);
    }
    if let Some(attribute) = &mut finding.attribute {
        redactor.redact_in_place(attribute);
    }
    if let Some(address) = &mut finding.address
        && !addresses.contains(address.as_str())
    {
        redactor.redact_in_place(address);
    }
}

/// How a finding is shown where only three levels exist (SARIF, GitHub): a
/// mandatory finding is an error; an advisory one a warning from medium severity
/// up, and a note below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Note,
}

impl Level {
    /// A waived or overridden finding is a note: it is shown, and fails nothing.
    pub fn of_line(line: &FindingLine) -> Level {
        if line.excepted() {
            Level::Note
        } else {
            Level::of(&line.finding)
        }
    }

    pub fn of(finding: &Finding) -> Level {
        if finding.enforcement.is_mandatory() {
            Level::Error
        } else if finding.severity >= Severity::Medium {
            Level::Warning
        } else {
            Level::Note
        }
    }

    pub fn of_rule(rule: &RuleInfo) -> Level {
        if rule.enforcement.is_mandatory() {
            Level::Error
        } else if rule.severity >= Severity::Medium {
            Level::Warning
        } else {
            Level::Note
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
