//! The human report: findings grouped by resource, most severe first, in colour
//! on a terminal (anstream decides, and honours `NO_COLOR` and `CLICOLOR_FORCE`).

use std::io::Write;

use anstyle::{AnsiColor, Style};
use provkey_plan::{Enforcement, Plan, Severity};

use super::CheckReport;
use crate::text::sanitize;

/// The report's styles; all plain without colour, so that nothing has to strip
/// escape sequences afterwards.
#[derive(Clone, Copy)]
pub struct Palette {
    bold: Style,
    dim: Style,
    red: Style,
    yellow: Style,
    green: Style,
    cyan: Style,
}

impl Palette {
    pub const COLOUR: Palette = Palette {
        bold: Style::new().bold(),
        dim: Style::new().dimmed(),
        red: AnsiColor::Red.on_default().bold(),
        yellow: AnsiColor::Yellow.on_default().bold(),
        green: AnsiColor::Green.on_default().bold(),
        cyan: AnsiColor::Cyan.on_default(),
    };

    pub const PLAIN: Palette = Palette {
        bold: Style::new(),
        dim: Style::new(),
        red: Style::new(),
        yellow: Style::new(),
        green: Style::new(),
        cyan: Style::new(),
    };

    fn severity(&self, severity: Severity) -> Style {
        match severity {
            Severity::Critical | Severity::High => self.red,
            Severity::Medium => self.yellow,
            Severity::Low | Severity::Info => self.cyan,
        }
    }
}

/// Prints the report on stdout, in colour if stdout takes it. The report is
/// rendered whole and written at once: stdout is line-buffered, and a report of a
/// thousand findings was three thousand `write` calls.
pub fn print(report: &CheckReport, plan: &Plan) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let palette = match anstream::AutoStream::choice(&stdout) {
        anstream::ColorChoice::Never => Palette::PLAIN,
        _ => Palette::COLOUR,
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    write(report, plan, palette, &mut out)?;
    out.flush()
}

/// Writes the report with `palette`'s styles.
pub fn write(
    report: &CheckReport,
    plan: &Plan,
    palette: Palette,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let Palette {
        bold,
        dim,
        red,
        yellow,
        green,
        ..
    } = palette;
    let actions: Vec<String> = report
        .plan
        .actions
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{n} {name}"))
        .collect();
    writeln!(
        out,
        "{bold}plan{bold:#} {} ({} {}, {} change{}{}{})",
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
                        "{bold}{}{bold:#} {dim}({action}){dim:#}",
                        sanitize(address)
                    )?;
                }
                None => writeln!(out, "{bold}(the plan as a whole){bold:#}")?,
            }
        }
        let style = palette.severity(f.severity);
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
            writeln!(out, "    {dim}help:{dim:#} {}", sanitize(help))?;
        }
        if let Some(exception) = &line.exception {
            let style = if line.excepted() { green } else { yellow };
            writeln!(
                out,
                "    {style}{}:{style:#} {}",
                exception.status.as_str(),
                sanitize(&exception.describe())
            )?;
        }
    }

    writeln!(out)?;
    writeln!(out, "{bold}policies{bold:#}")?;
    for policy in &report.policies {
        match &policy.failure {
            None => writeln!(
                out,
                "  {green}ok{green:#}     {} {} ({} finding{}, {:.1} ms)",
                sanitize(&policy.id),
                policy.version.as_deref().unwrap_or(""),
                policy.findings,
                if policy.findings == 1 { "" } else { "s" },
                policy.elapsed_ms,
            )?,
            Some(failure) => writeln!(
                out,
                "  {red}FAILED{red:#} {} {}: {}",
                sanitize(&policy.id),
                policy.version.as_deref().unwrap_or(""),
                sanitize(&failure.message),
            )?,
        }
    }

    if !report.waivers.is_empty() {
        writeln!(out)?;
        writeln!(out, "{bold}waivers and overrides{bold:#}")?;
        for w in &report.waivers {
            let style = match w.status {
                "applied" => green,
                "expired" => yellow,
                _ => dim,
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
        "pass" => writeln!(out, "{green}PASS{green:#}: {counts}")?,
        "fail" => writeln!(out, "{red}FAIL{red:#}: {counts}")?,
        _ => writeln!(
            out,
            "{red}ERROR{red:#}: {} polic{} failed, so the plan was not fully checked; {counts}",
            s.failed_policies,
            if s.failed_policies == 1 { "y" } else { "ies" }
        )?,
    }
    Ok(())
}
