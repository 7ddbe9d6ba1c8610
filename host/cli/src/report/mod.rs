//! The check report: one data structure, rendered as text or JSON.

pub mod json;
pub mod text;

use std::path::Path;

use provkey_plan::{Enforcement, Finding, Plan};
use provkey_runtime::{PolicyOrigin, PolicyOutcome};
use serde::Serialize;

use crate::exit::Exit;

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
}

impl PlanSummary {
    pub fn new(path: &Path, plan: &Plan, bytes: &[u8]) -> Self {
        PlanSummary {
            path: path.display().to_string(),
            source: plan.source.as_str(),
            source_version: plan.source_version.clone(),
            blake3: blake3::hash(bytes).to_hex().to_string(),
            changes: plan.changes.len(),
            actions: plan.action_counts(),
        }
    }
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
}

#[derive(Debug, Serialize, Default)]
pub struct Summary {
    pub hard_mandatory: usize,
    pub soft_mandatory: usize,
    pub advisory: usize,
    pub failed_policies: usize,
}

#[derive(Debug)]
pub struct CheckReport {
    pub plan: PlanSummary,
    pub policies: Vec<PolicyLine>,
    pub findings: Vec<FindingLine>,
    pub summary: Summary,
    pub exit: Exit,
}

impl CheckReport {
    pub fn new(plan_summary: PlanSummary, plan: &Plan, outcomes: &[PolicyOutcome]) -> Self {
        let mut policies = Vec::new();
        let mut findings = Vec::new();
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
                        match finding.enforcement {
                            Enforcement::HardMandatory => summary.hard_mandatory += 1,
                            Enforcement::SoftMandatory => summary.soft_mandatory += 1,
                            Enforcement::Advisory => summary.advisory += 1,
                        }
                        findings.push(FindingLine {
                            policy: outcome.id.clone(),
                            finding: finding.clone(),
                        });
                    }
                    ("ok", None, found.len())
                }
                Err(err) => {
                    summary.failed_policies += 1;
                    let message = error_chain(err);
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
        CheckReport {
            plan: plan_summary,
            policies,
            findings,
            summary,
            exit,
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
