//! The JUnit XML report, for CI systems that display test results.
//!
//! What a test case is: every rule of every policy that ran, applied to every
//! change of the plan, is one test case (classname `POLICY`, name
//! `RULE ADDRESS`); a finding without an address (about the plan as a whole), or
//! about an address the plan does not have, adds a case for that rule named
//! `RULE (plan)` or `RULE ADDRESS`. A case fails when its rule reported a mandatory
//! finding for that resource; advisory findings leave it passing and are listed in
//! its `system-out`. A policy that failed to load or to evaluate is one test case
//! `POLICY (policy run)` in error: nothing it would have checked is reported as
//! passing. Each policy is one test suite; no times or timestamps are written, so
//! the same check gives the same file.

use std::collections::BTreeMap;
use std::io::Write;

use provkey_plan::Plan;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::{CheckReport, FindingLine};

/// The name of the case for findings about the plan as a whole.
const PLAN_TARGET: &str = "(plan)";

pub fn write(report: &CheckReport, plan: &Plan, out: &mut dyn Write) -> std::io::Result<()> {
    let mut junit = Report::new("provkey check");
    for policy in &report.policies {
        let mut suite = TestSuite::new(policy.id.as_str());
        if let Some(version) = &policy.version {
            suite.add_property(Property::new("version", version.as_str()));
        }
        if let Some(digest) = &policy.blake3 {
            suite.add_property(Property::new("blake3", digest.as_str()));
        }
        suite.add_property(Property::new("origin", policy.origin));
        if let Some(failure) = &policy.failure {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_type(failure.kind);
            status.set_message(format!(
                "policy `{}` failed ({}), so it checked nothing: {}",
                policy.id, failure.kind, failure.message
            ));
            let mut case = TestCase::new("(policy run)", status);
            case.set_classname(policy.id.as_str());
            suite.add_test_case(case);
            junit.add_test_suite(suite);
            continue;
        }

        // Findings of this policy by rule, then by target.
        let mut by_rule: BTreeMap<&str, BTreeMap<&str, Vec<&FindingLine>>> = BTreeMap::new();
        for rule in &policy.rules {
            by_rule.entry(rule.id.as_str()).or_default();
        }
        for line in report.findings.iter().filter(|f| f.policy == policy.id) {
            let target = line.finding.address.as_deref().unwrap_or(PLAN_TARGET);
            by_rule
                .entry(line.finding.rule.as_str())
                .or_default()
                .entry(target)
                .or_default()
                .push(line);
        }
        // Rules in declaration order, then any the policy reported without declaring.
        let mut rule_order: Vec<&str> = policy.rules.iter().map(|r| r.id.as_str()).collect();
        for rule in by_rule.keys() {
            if !rule_order.contains(rule) {
                rule_order.push(rule);
            }
        }
        for rule in rule_order {
            let Some(found) = by_rule.get(rule) else {
                continue;
            };
            let mut targets: Vec<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
            for target in found.keys() {
                if !targets.contains(target) {
                    targets.push(target);
                }
            }
            for target in targets {
                let findings = found.get(target).map(Vec::as_slice).unwrap_or_default();
                suite.add_test_case(case(&policy.id, rule, target, findings));
            }
        }
        junit.add_test_suite(suite);
    }
    junit
        .serialize(&mut *out)
        .map_err(|err| std::io::Error::other(err.to_string()))?;
    writeln!(out)
}

fn case(policy: &str, rule: &str, target: &str, findings: &[&FindingLine]) -> TestCase {
    let mandatory: Vec<&&FindingLine> = findings.iter().filter(|f| f.fails()).collect();
    let describe = |f: &FindingLine| {
        let mut text = format!(
            "[{} {}] {}",
            f.finding.severity.as_str(),
            f.finding.enforcement.as_str(),
            f.finding.message
        );
        if let Some(attribute) = &f.finding.attribute {
            text.push_str(&format!(" (at `{attribute}`)"));
        }
        if let Some(help) = &f.finding.remediation {
            text.push_str(&format!("\nhelp: {help}"));
        }
        if let Some(exception) = &f.exception {
            text.push_str(&format!(
                "\n{}: {}",
                exception.status.as_str(),
                exception.describe()
            ));
        }
        text
    };
    let status = match mandatory.first() {
        None => TestCaseStatus::success(),
        Some(first) => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_type(first.finding.enforcement.as_str());
            status.set_message(first.finding.message.as_str());
            let all: Vec<String> = mandatory.iter().map(|f| describe(f)).collect();
            status.set_description(all.join("\n"));
            status
        }
    };
    let mut case = TestCase::new(format!("{rule} {target}"), status);
    case.set_classname(policy);
    let advisory: Vec<String> = findings
        .iter()
        .filter(|f| !f.fails())
        .map(|f| describe(f))
        .collect();
    if !advisory.is_empty() {
        case.set_system_out(advisory.join("\n"));
    }
    case
}
