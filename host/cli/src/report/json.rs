//! The JSON report. Its shape is documented in the README and versioned by
//! `version`; fields are only ever added.

use std::io::Write;

use serde::Serialize;

use super::{
    CheckReport, FindingLine, PlanSummary, PolicyLine, REPORT_VERSION, Summary, WaiverLine,
};

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    verdict: &'static str,
    exit_code: u8,
    plan: &'a PlanSummary,
    policies: &'a [PolicyLine],
    findings: &'a [FindingLine],
    summary: &'a Summary,
    #[serde(skip_serializing_if = "<[WaiverLine]>::is_empty")]
    waivers: &'a [WaiverLine],
}

pub fn write(report: &CheckReport, out: &mut dyn Write) -> std::io::Result<()> {
    let json = JsonReport {
        version: REPORT_VERSION,
        verdict: report.verdict(),
        exit_code: report.exit as u8,
        plan: &report.plan,
        policies: &report.policies,
        findings: &report.findings,
        summary: &report.summary,
        waivers: &report.waivers,
    };
    serde_json::to_writer_pretty(&mut *out, &json)?;
    writeln!(out)
}
