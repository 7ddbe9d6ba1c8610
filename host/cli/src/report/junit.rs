//! The JUnit XML report, for CI systems that display test results.
//!
//! What a test case is: one rule of one policy, checked against the whole plan
//! (classname `POLICY`, name `RULE`). It fails when the rule reported a mandatory
//! finding that no waiver or override takes out of the verdict; the failure's
//! message counts and names the resources flagged, its text lists every such
//! finding with its resource. Advisory and excepted findings leave the case
//! passing and are listed in its `system-out`. A rule that reported nothing passes.
//! A rule a policy reported without declaring it is a case too. A policy that
//! failed to load or to evaluate is one test case `(policy run)` in error: nothing
//! it would have checked is reported as passing. Each policy is one test suite; no
//! times or timestamps are written, so the same check gives the same file.

use std::collections::BTreeMap;
use std::io::Write;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::{CheckReport, FindingLine};

/// The name of the case for findings about the plan as a whole.
const PLAN_TARGET: &str = "(plan)";

pub fn write(report: &CheckReport, out: &mut dyn Write) -> std::io::Result<()> {
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

        // Findings of this policy by rule, in report (plan) order.
        let mut by_rule: BTreeMap<&str, Vec<&FindingLine>> = BTreeMap::new();
        for line in report.findings.iter().filter(|f| f.policy == policy.id) {
            by_rule
                .entry(line.finding.rule.as_str())
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
            let findings = by_rule.get(rule).map(Vec::as_slice).unwrap_or_default();
            suite.add_test_case(case(&policy.id, rule, findings));
        }
        junit.add_test_suite(suite);
    }
    junit
        .serialize(&mut *out)
        .map_err(|err| std::io::Error::other(err.to_string()))?;
    writeln!(out)
}

/// How many resources the failure message names before it only counts.
const NAMED_IN_MESSAGE: usize = 10;

fn case(policy: &str, rule: &str, findings: &[&FindingLine]) -> TestCase {
    let describe = |f: &FindingLine| {
        let target = f.finding.address.as_deref().unwrap_or(PLAN_TARGET);
        // The line starts with the resource: the message need not name it again.
        let message = super::without_subject(&f.finding.message, target);
        let mut text = format!(
            "{target}: [{} {}] {message}",
            f.finding.severity.as_str(),
            f.finding.enforcement.as_str(),
        );
        if let Some(attribute) = &f.finding.attribute {
            text.push_str(&format!(" (at `{attribute}`)"));
        }
        if let Some(help) = &f.finding.remediation {
            text.push_str(&format!("\n  help: {help}"));
        }
        if let Some(exception) = &f.exception {
            text.push_str(&format!(
                "\n  {}: {}",
                exception.status.as_str(),
                exception.describe()
            ));
        }
        text
    };
    let failing: Vec<&FindingLine> = findings.iter().copied().filter(|f| f.fails()).collect();
    let status = match failing.first() {
        None => TestCaseStatus::success(),
        Some(first) => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_type(first.finding.enforcement.as_str());
            // Each resource once, in plan order.
            let mut targets: Vec<&str> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for f in &failing {
                let target = f.finding.address.as_deref().unwrap_or(PLAN_TARGET);
                if seen.insert(target) {
                    targets.push(target);
                }
            }
            let named: Vec<String> = targets
                .iter()
                .take(NAMED_IN_MESSAGE)
                .map(|t| format!("`{t}`"))
                .collect();
            let more = targets.len().saturating_sub(NAMED_IN_MESSAGE);
            status.set_message(format!(
                "{} mandatory finding{} on {} resource{}: {}{}",
                failing.len(),
                if failing.len() == 1 { "" } else { "s" },
                targets.len(),
                if targets.len() == 1 { "" } else { "s" },
                named.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
            let all: Vec<String> = failing.iter().map(|f| describe(f)).collect();
            status.set_description(all.join("\n"));
            status
        }
    };
    let mut case = TestCase::new(rule, status);
    case.set_classname(policy);
    let others: Vec<String> = findings
        .iter()
        .filter(|f| !f.fails())
        .map(|f| describe(f))
        .collect();
    if !others.is_empty() {
        case.set_system_out(others.join("\n"));
    }
    case
}
