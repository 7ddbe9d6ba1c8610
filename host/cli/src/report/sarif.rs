//! The SARIF 2.1.0 report, for code-scanning tools (GitHub code scanning, Azure
//! DevOps, SARIF viewers).
//!
//! - One run; the tool driver is `provkey`, and its rules are the rules of every
//!   policy that loaded, with id `POLICY/RULE`, the rule's description, the
//!   policy's, and a default level from the rule's enforcement and severity.
//! - Each finding is a result: `ruleId`, `ruleIndex`, `level` (mandatory: `error`;
//!   advisory: `warning` from medium severity up, else `note`), the message, and a
//!   location: a logical location (the resource address, kind `resource`) and a
//!   physical one at the finding's file and line ([`CheckReport::location_of`]:
//!   the `.tf` line that declares the resource with `--source-dir`, or else the
//!   plan file, at the line where the change is described).
//!   Severity, enforcement, attribute and remediation are in the result's
//!   properties; a partial fingerprint (blake3 of policy, rule, address and
//!   attribute) lets code scanning track a finding across runs.
//! - A policy that failed is a tool execution notification (level `error`) and
//!   makes `executionSuccessful` false.
//! - A waived or overridden finding is a `note` with an accepted external
//!   suppression whose justification names the waiver; its level is in `properties`.
//! - At most [`MAX_RESULTS`] results, GitHub code scanning's limits: it stores
//!   the 5,000 most severe results of a run and rejects a run of more than 25,000.
//!   Past that, the most severe are kept (errors, then warnings, then notes; by
//!   severity within each; plan order last) and written in report order; the rest
//!   are counted in the run's properties (`resultsOmitted`, by level, severity and
//!   rule) and in a `warning` tool execution notification, which points to the
//!   JSON report for every finding.
//! - `tool.driver.informationUri` is the project's repository; a stock policy's
//!   rules have a `helpUri` on that policy's source.
//! - Nothing depends on time or on the machine beyond the plan path as given, so
//!   the same check gives the same file.

use std::collections::BTreeMap;
use std::io::Write;

use provkey_plan::Severity;
use serde_json::{Value, json};
use serde_sarif::sarif::{
    ArtifactLocation, Invocation, Location, LogicalLocation, Message, MultiformatMessageString,
    Notification, PhysicalLocation, PropertyBag, Region, ReportingConfiguration,
    ReportingDescriptor, Result as SarifResult, ResultLevel, Run, Sarif, Suppression, Tool,
    ToolComponent,
};

use super::{CheckReport, FindingLine, Level};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const FINGERPRINT: &str = "provkeyFinding/v1";

/// The most results one run holds: GitHub code scanning shows only the 5,000 most
/// severe results of a run (and rejects more than 25,000), so a larger run would
/// lose findings at random on upload, or be refused.
pub const MAX_RESULTS: usize = 5_000;

/// The project's home page, for `tool.driver.informationUri` and rules' `helpUri`.
const INFORMATION_URI: &str = env!("CARGO_PKG_REPOSITORY");

pub fn write(report: &CheckReport, out: &mut dyn Write) -> std::io::Result<()> {
    let sarif = build(report);
    serde_json::to_writer_pretty(&mut *out, &sarif)?;
    writeln!(out)
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Note => "note",
    }
}

/// GitHub code scanning's `security-severity` score for each severity.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

fn properties(entries: BTreeMap<String, Value>, tags: Vec<String>) -> PropertyBag {
    PropertyBag::builder()
        .opt_tags((!tags.is_empty()).then_some(tags))
        .additional_properties(entries)
        .build()
}

/// SARIF messages are sentences: end them with a period (SARIF2001).
fn sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.ends_with(['.', '!', '?']) {
        text.to_string()
    } else {
        format!("{text}.")
    }
}

/// A file path as a URI reference: relative paths stay relative (percent-encoded,
/// with `/` separators); absolute ones become `file://` URIs.
fn file_uri(path: &str) -> String {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const PATH: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'[')
        .add(b']')
        .add(b'\\')
        .add(b'^')
        .add(b'`')
        .add(b'{')
        .add(b'|')
        .add(b'}');
    let path = std::path::Path::new(path);
    let path = if path.is_absolute() {
        // File URIs must not have `..` segments (SARIF1002).
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    let slashed = path
        .display()
        .to_string()
        .replace(std::path::MAIN_SEPARATOR, "/");
    let encoded = utf8_percent_encode(&slashed, PATH).to_string();
    if slashed.starts_with('/') {
        format!("file://{encoded}")
    } else {
        // A relative reference whose first segment has a `:` would read as a scheme.
        match encoded.split('/').next() {
            Some(first) if first.contains(':') => format!("./{encoded}"),
            _ => encoded,
        }
    }
}

fn build(report: &CheckReport) -> Sarif {
    // Rules: every rule of every policy that loaded, by policy id then declaration.
    let mut rules = Vec::new();
    let mut rule_index: BTreeMap<(String, String), usize> = BTreeMap::new();
    for policy in report.policies.iter().filter(|p| p.failure.is_none()) {
        for rule in &policy.rules {
            let id = format!("{}/{}", policy.id, rule.id);
            rule_index.insert((policy.id.clone(), rule.id.clone()), rules.len());
            let mut props = BTreeMap::new();
            props.insert("policy".to_string(), json!(policy.id));
            if let Some(version) = &policy.version {
                props.insert("policyVersion".to_string(), json!(version));
            }
            props.insert("severity".to_string(), json!(rule.severity.as_str()));
            props.insert("enforcement".to_string(), json!(rule.enforcement.as_str()));
            props.insert(
                "security-severity".to_string(),
                json!(security_severity(rule.severity)),
            );
            let mut full = sentence(&rule.description);
            if let Some(description) = &policy.description {
                full = format!(
                    "{full} From policy `{}`: {}",
                    policy.id,
                    sentence(description)
                );
            }
            rules.push(
                ReportingDescriptor::builder()
                    .id(id)
                    .name(rule.id.clone())
                    .short_description(
                        MultiformatMessageString::builder()
                            .text(sentence(&rule.description))
                            .build(),
                    )
                    .full_description(MultiformatMessageString::builder().text(full).build())
                    .opt_help_uri(
                        (policy.origin == "stock")
                            .then(|| format!("{INFORMATION_URI}/tree/main/policies/{}", policy.id)),
                    )
                    .default_configuration(
                        ReportingConfiguration::builder()
                            .level(json!(level_name(Level::of_rule(rule))))
                            .build(),
                    )
                    .properties(properties(
                        props,
                        vec!["provkey".to_string(), "infrastructure".to_string()],
                    ))
                    .build(),
            );
        }
    }

    // Each file's URI once (an absolute path is canonicalized).
    let mut uris: BTreeMap<&str, String> = BTreeMap::new();
    let kept = kept_findings(report);
    let mut results = Vec::with_capacity(kept.len());
    for line in kept.iter().map(|&i| &report.findings[i]) {
        let f = &line.finding;
        let logical = f.address.as_ref().map(|address| {
            vec![
                LogicalLocation::builder()
                    .fully_qualified_name(address.clone())
                    .name(address.clone())
                    .kind("resource")
                    .build(),
            ]
        });
        let location = report.location_of(f);
        let region = location
            .line
            .map(|n| Region::builder().start_line(n as i64).build());
        let uri = uris
            .entry(location.path)
            .or_insert_with(|| file_uri(location.path))
            .clone();
        let result_location = Location::builder()
            .physical_location(
                PhysicalLocation::builder()
                    .artifact_location(ArtifactLocation::builder().uri(uri).build())
                    .opt_region(region)
                    .build(),
            )
            .opt_logical_locations(logical)
            .build();
        let mut props = BTreeMap::new();
        props.insert("policy".to_string(), json!(line.policy));
        props.insert("severity".to_string(), json!(f.severity.as_str()));
        props.insert("enforcement".to_string(), json!(f.enforcement.as_str()));
        if let Some(attribute) = &f.attribute {
            props.insert("attribute".to_string(), json!(attribute));
        }
        if let Some(remediation) = &f.remediation {
            props.insert("remediation".to_string(), json!(remediation));
        }
        let mut text = sentence(&f.message);
        if let Some(remediation) = &f.remediation {
            text = format!("{text} Help: {}", sentence(remediation));
        }
        let fingerprint = blake3::hash(
            format!(
                "{}\0{}\0{}\0{}",
                line.policy,
                f.rule,
                f.address.as_deref().unwrap_or(""),
                f.attribute.as_deref().unwrap_or("")
            )
            .as_bytes(),
        )
        .to_hex()
        .to_string();
        let mut fingerprints = BTreeMap::new();
        fingerprints.insert(FINGERPRINT.to_string(), fingerprint);
        if let Some(exception) = &line.exception {
            props.insert("exception".to_string(), json!(exception.describe()));
        }
        let suppressions = line.excepted().then(|| {
            let justification = line
                .exception
                .as_ref()
                .map(|e| sentence(&e.describe()))
                .unwrap_or_default();
            vec![
                Suppression::builder()
                    .kind(json!("external"))
                    .status(json!("accepted"))
                    .justification(justification)
                    .build(),
            ]
        });
        let level = match Level::of_line(line) {
            Level::Error => ResultLevel::Error,
            Level::Warning => ResultLevel::Warning,
            Level::Note => ResultLevel::Note,
        };
        let index = rule_index
            .get(&(line.policy.clone(), f.rule.clone()))
            .map(|i| *i as i64);
        results.push(
            SarifResult::builder()
                .rule_id(format!("{}/{}", line.policy, f.rule))
                .opt_rule_index(index)
                .level(level)
                .message(Message::builder().text(text).build())
                .locations(vec![result_location])
                .partial_fingerprints(fingerprints)
                .opt_suppressions(suppressions)
                .properties(properties(props, Vec::new()))
                .build(),
        );
    }

    let notifications: Vec<Notification> = report
        .policies
        .iter()
        .filter_map(|policy| {
            let failure = policy.failure.as_ref()?;
            let mut props = BTreeMap::new();
            props.insert("policy".to_string(), json!(policy.id));
            props.insert("kind".to_string(), json!(failure.kind));
            Some(
                Notification::builder()
                    .level(json!("error"))
                    .message(
                        Message::builder()
                            .text(sentence(&format!(
                                "Policy `{}` failed ({}), so the plan was not fully checked: {}",
                                policy.id, failure.kind, failure.message
                            )))
                            .build(),
                    )
                    .properties(properties(props, Vec::new()))
                    .build(),
            )
        })
        .collect();
    let execution_successful = notifications.is_empty();
    let mut notifications = notifications;
    let mut run_props = BTreeMap::new();
    run_props.insert("verdict".to_string(), json!(report.verdict()));
    run_props.insert("planBlake3".to_string(), json!(report.plan.blake3));
    let omitted = report.findings.len() - kept.len();
    if omitted > 0 {
        let summary = OmittedSummary::of(report, &kept);
        notifications.push(summary.notification(report.findings.len(), kept.len()));
        run_props.insert("resultsTotal".to_string(), json!(report.findings.len()));
        run_props.insert("resultsOmitted".to_string(), json!(omitted));
        run_props.insert("omittedByLevel".to_string(), json!(summary.by_level));
        run_props.insert("omittedBySeverity".to_string(), json!(summary.by_severity));
        run_props.insert("omittedByRule".to_string(), json!(summary.by_rule));
    }
    let invocation = Invocation::builder()
        .execution_successful(execution_successful)
        .tool_execution_notifications(notifications)
        .build();

    let driver = ToolComponent::builder()
        .name("provkey")
        .version(env!("CARGO_PKG_VERSION"))
        .semantic_version(env!("CARGO_PKG_VERSION"))
        .information_uri(INFORMATION_URI)
        .rules(rules)
        .build();
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .invocations(vec![invocation])
        .results(results)
        .column_kind(json!("utf16CodeUnits"))
        .properties(properties(run_props, Vec::new()))
        .build();
    Sarif::builder()
        .schema(SCHEMA)
        .version(json!("2.1.0"))
        .runs(vec![run])
        .build()
}

/// Where a result ranks for [`MAX_RESULTS`]: errors before warnings before notes,
/// then the more severe first.
fn rank(line: &FindingLine) -> (u8, std::cmp::Reverse<Severity>) {
    let level = match Level::of_line(line) {
        Level::Error => 0,
        Level::Warning => 1,
        Level::Note => 2,
    };
    (level, std::cmp::Reverse(line.finding.severity))
}

/// The indexes of the findings written as results, in report order: all of them,
/// or past [`MAX_RESULTS`] the most severe (ties go to the earlier finding).
fn kept_findings(report: &CheckReport) -> Vec<usize> {
    let mut kept: Vec<usize> = (0..report.findings.len()).collect();
    if kept.len() > MAX_RESULTS {
        // A stable sort keeps report order among equals, so the cut is deterministic.
        kept.sort_by_key(|&i| rank(&report.findings[i]));
        kept.truncate(MAX_RESULTS);
        kept.sort_unstable();
    }
    kept
}

/// What was left out of the run, counted.
struct OmittedSummary {
    by_level: BTreeMap<&'static str, usize>,
    by_severity: BTreeMap<&'static str, usize>,
    by_rule: BTreeMap<String, usize>,
}

impl OmittedSummary {
    fn of(report: &CheckReport, kept: &[usize]) -> Self {
        let mut summary = OmittedSummary {
            by_level: BTreeMap::new(),
            by_severity: BTreeMap::new(),
            by_rule: BTreeMap::new(),
        };
        let mut kept = kept.iter().peekable();
        for (i, line) in report.findings.iter().enumerate() {
            if kept.next_if_eq(&&i).is_some() {
                continue;
            }
            *summary
                .by_level
                .entry(level_name(Level::of_line(line)))
                .or_default() += 1;
            *summary
                .by_severity
                .entry(line.finding.severity.as_str())
                .or_default() += 1;
            *summary
                .by_rule
                .entry(format!("{}/{}", line.policy, line.finding.rule))
                .or_default() += 1;
        }
        summary
    }

    fn notification(&self, total: usize, kept: usize) -> Notification {
        let levels: Vec<String> = ["error", "warning", "note"]
            .into_iter()
            .filter_map(|level| {
                let n = self.by_level.get(level)?;
                Some(format!("{n} {level}{}", if *n == 1 { "" } else { "s" }))
            })
            .collect();
        let mut props = BTreeMap::new();
        props.insert("resultsTotal".to_string(), json!(total));
        props.insert("resultsOmitted".to_string(), json!(total - kept));
        Notification::builder()
            .level(json!("warning"))
            .message(
                Message::builder()
                    .text(format!(
                        "{} of {total} results were left out ({}): code scanning keeps at most \
                         {MAX_RESULTS} results per run, so this run holds the {kept} most severe. \
                         The JSON report (`--format json`) lists every finding.",
                        total - kept,
                        levels.join(", ")
                    ))
                    .build(),
            )
            .properties(properties(props, Vec::new()))
            .build()
    }
}
