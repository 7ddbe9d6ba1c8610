//! The human report: findings grouped by resource, most severe first, in colour
//! on a terminal (anstream strips the colour elsewhere and honours `NO_COLOR`).

use std::io::Write;

use anstyle::{AnsiColor, Style};
use provkey_plan::{Enforcement, Plan, Severity};

use super::CheckReport;
use crate::text::sanitize;

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const RED: Style = AnsiColor::Red.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const GREEN: Style = AnsiColor::Green.on_default().bold();
const CYAN: Style = AnsiColor::Cyan.on_default();

fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Critical | Severity::High => RED,
        Severity::Medium => YELLOW,
        Severity::Low | Severity::Info => CYAN,
    }
}

pub fn print(report: &CheckReport, plan: &Plan) -> std::io::Result<()> {
    let mut out = anstream::stdout().lock();
    write(report, plan, &mut out)?;
    out.flush()
}

/// Writes the report; `out` decides about colour (an `anstream` stream).
pub fn write(report: &CheckReport, plan: &Plan, out: &mut impl Write) -> std::io::Result<()> {
    let actions: Vec<String> = report
        .plan
        .actions
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{n} {name}"))
        .collect();
    writeln!(
        out,
        "{BOLD}plan{BOLD:#} {} ({} {}, {} change{}{}{})",
        sanitize(&report.plan.path),
        report.plan.source,
        report.plan.source_version,
        report.plan.changes,
        if report.plan.changes == 1 { "" } else { "s" },
        if actions.is_empty() { "" } else { ": " },
        actions.join(", "),
    )?;

    let actions = super::action_names(plan);
    let mut current: Option<Option<&str>> = None;
    for line in &report.findings {
        let f = &line.finding;
        if current != Some(f.address.as_deref()) {
            current = Some(f.address.as_deref());
            writeln!(out)?;
            match &f.address {
                Some(address) => {
                    let action = actions.get(address.as_str()).copied().unwrap_or("");
                    writeln!(
                        out,
                        "{BOLD}{}{BOLD:#} {DIM}({action}){DIM:#}",
                        sanitize(address)
                    )?;
                }
                None => writeln!(out, "{BOLD}(the plan as a whole){BOLD:#}")?,
            }
        }
        let style = severity_style(f.severity);
        let enforcement = match f.enforcement {
            Enforcement::HardMandatory => "hard-mandatory",
            Enforcement::SoftMandatory => "soft-mandatory",
            Enforcement::Advisory => "advisory",
        };
        writeln!(
            out,
            "  {style}{:<8}{style:#} {enforcement:<14} {}/{}{}",
            f.severity.as_str().to_uppercase(),
            sanitize(&line.policy),
            sanitize(&f.rule),
            f.attribute
                .as_deref()
                .map(|a| format!(" at `{}`", sanitize(a)))
                .unwrap_or_default(),
        )?;
        writeln!(out, "    {}", sanitize(&f.message))?;
        if let Some(help) = &f.remediation {
            writeln!(out, "    {DIM}help:{DIM:#} {}", sanitize(help))?;
        }
        if let Some(exception) = &line.exception {
            let style = if line.excepted() { GREEN } else { YELLOW };
            writeln!(
                out,
                "    {style}{}:{style:#} {}",
                exception.status.as_str(),
                sanitize(&exception.describe())
            )?;
        }
    }

    writeln!(out)?;
    writeln!(out, "{BOLD}policies{BOLD:#}")?;
    for policy in &report.policies {
        match &policy.failure {
            None => writeln!(
                out,
                "  {GREEN}ok{GREEN:#}     {} {} ({} finding{}, {:.1} ms)",
                sanitize(&policy.id),
                policy.version.as_deref().unwrap_or(""),
                policy.findings,
                if policy.findings == 1 { "" } else { "s" },
                policy.elapsed_ms,
            )?,
            Some(failure) => writeln!(
                out,
                "  {RED}FAILED{RED:#} {} {}: {}",
                sanitize(&policy.id),
                policy.version.as_deref().unwrap_or(""),
                sanitize(&failure.message),
            )?,
        }
    }

    if !report.waivers.is_empty() {
        writeln!(out)?;
        writeln!(out, "{BOLD}waivers and overrides{BOLD:#}")?;
        for w in &report.waivers {
            let style = match w.status {
                "applied" => GREEN,
                "expired" => YELLOW,
                _ => DIM,
            };
            writeln!(
                out,
                "  {style}{:<7}{style:#} {} {}/{} on `{}` (owner {}, expires {}, {} finding{}): {}",
                w.status,
                w.kind,
                sanitize(&w.policy),
                sanitize(&w.rule),
                sanitize(&w.address),
                sanitize(&w.owner),
                w.expires,
                w.findings,
                if w.findings == 1 { "" } else { "s" },
                sanitize(&w.reason),
            )?;
        }
    }

    let s = &report.summary;
    let mut counts = format!(
        "{} hard-mandatory, {} soft-mandatory, {} advisory finding{}",
        s.hard_mandatory,
        s.soft_mandatory,
        s.advisory,
        if s.advisory == 1 { "" } else { "s" }
    );
    if s.waived + s.overridden > 0 {
        counts.push_str(&format!(
            ", {} waived, {} overridden",
            s.waived, s.overridden
        ));
    }
    writeln!(out)?;
    match report.verdict() {
        "pass" => writeln!(out, "{GREEN}PASS{GREEN:#}: {counts}")?,
        "fail" => writeln!(out, "{RED}FAIL{RED:#}: {counts}")?,
        _ => writeln!(
            out,
            "{RED}ERROR{RED:#}: {} polic{} failed, so the plan was not fully checked; {counts}",
            s.failed_policies,
            if s.failed_policies == 1 { "y" } else { "ies" }
        )?,
    }
    Ok(())
}
