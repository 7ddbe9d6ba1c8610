//! The markdown summary, for a pull-request comment or a GitHub job summary:
//! the verdict, counts by severity and enforcement, the findings grouped by
//! resource, what the plan creates, replaces and destroys, and the policies run.
//!
//! Text from policies and plans is escaped (backslash before ASCII punctuation,
//! so no HTML, link, image or table syntax gets through, and `@` cannot mention
//! anyone); addresses and rule ids are code spans. The comment is kept under
//! GitHub's 65,536-character limit: past a budget, findings and resource lists are
//! cut with a count of what was left out.

use std::fmt::Write as _;
use std::io::Write;

use provkey_plan::{Action, Plan};

use super::CheckReport;

/// Characters of findings and resource lists before the rest is summarised.
const BUDGET: usize = 50_000;

pub fn write(report: &CheckReport, plan: &Plan, out: &mut dyn Write) -> std::io::Result<()> {
    out.write_all(render(report, plan).as_bytes())
}

fn render(report: &CheckReport, plan: &Plan) -> String {
    let mut md = String::new();
    let s = &report.summary;
    let verdict = match report.verdict() {
        "pass" => "✅ PASS",
        "fail" => "❌ FAIL",
        _ => "⚠️ ERROR",
    };
    let _ = writeln!(md, "## provkey check: {verdict}\n");
    let actions: Vec<String> = report
        .plan
        .actions
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{n} {name}"))
        .collect();
    let _ = writeln!(
        md,
        "Plan {} ({} {}, {} change{}{}{}).\n",
        code(&report.plan.path),
        report.plan.source,
        escape(&report.plan.source_version),
        report.plan.changes,
        if report.plan.changes == 1 { "" } else { "s" },
        if actions.is_empty() { "" } else { ": " },
        actions.join(", "),
    );
    if s.failed_policies > 0 {
        let _ = writeln!(
            md,
            "**{} polic{} failed, so the plan was not fully checked.**\n",
            s.failed_policies,
            if s.failed_policies == 1 { "y" } else { "ies" }
        );
    }

    // Counts.
    let _ = writeln!(md, "| Severity | Findings |\n| --- | ---: |");
    for (severity, n) in report.severity_counts() {
        let _ = writeln!(md, "| {} | {n} |", severity.as_str());
    }
    let _ = writeln!(
        md,
        "\n| Enforcement | Findings |\n| --- | ---: |\n| hard-mandatory | {} |\n| soft-mandatory | {} |\n| advisory | {} |\n",
        s.hard_mandatory, s.soft_mandatory, s.advisory
    );

    // Findings by resource.
    if !report.findings.is_empty() {
        let _ = writeln!(md, "### Findings");
        let actions = super::action_names(plan);
        let mut current: Option<Option<&str>> = None;
        let mut shown = 0;
        for line in &report.findings {
            if md.len() > BUDGET {
                break;
            }
            let f = &line.finding;
            if current != Some(f.address.as_deref()) {
                current = Some(f.address.as_deref());
                match &f.address {
                    Some(address) => {
                        let action = actions.get(address.as_str()).copied().unwrap_or("");
                        let _ = writeln!(md, "\n#### {} ({action})\n", code(address));
                    }
                    None => {
                        let _ = writeln!(md, "\n#### The plan as a whole\n");
                    }
                }
            }
            let _ = write!(
                md,
                "- **{}** {} {}",
                f.severity.as_str().to_uppercase(),
                f.enforcement.as_str(),
                code(&format!("{}/{}", line.policy, f.rule)),
            );
            if let Some(attribute) = &f.attribute {
                let _ = write!(md, " at {}", code(attribute));
            }
            let _ = writeln!(md, ": {}", escape(&f.message));
            if let Some(help) = &f.remediation {
                let _ = writeln!(md, "  *help:* {}", escape(help));
            }
            if let Some(exception) = &line.exception {
                let _ = writeln!(
                    md,
                    "  *{}:* {}",
                    exception.status.as_str(),
                    escape(&exception.describe())
                );
            }
            shown += 1;
        }
        if shown < report.findings.len() {
            let _ = writeln!(
                md,
                "\n*…and {} more finding(s): see the full report.*",
                report.findings.len() - shown
            );
        }
        md.push('\n');
    }

    if !report.waivers.is_empty() {
        let _ = writeln!(
            md,
            "### Waivers and overrides\n\n| Kind | Policy/rule | Address | Owner | Expires | Status | Findings |\n| --- | --- | --- | --- | --- | --- | ---: |"
        );
        for w in &report.waivers {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                w.kind,
                code(&format!("{}/{}", w.policy, w.rule)),
                code(&w.address),
                escape(&w.owner),
                w.expires,
                w.status,
                w.findings
            );
        }
        md.push('\n');
    }

    // What the plan does.
    let _ = writeln!(md, "### What the plan does\n");
    type Wanted = fn(&Action) -> bool;
    let groups: [(&str, Wanted); 4] = [
        ("Creates", |a| matches!(a, Action::Create)),
        ("Replaces", |a| matches!(a, Action::Replace(_))),
        ("Destroys", |a| matches!(a, Action::Destroy)),
        ("Updates in place", |a| matches!(a, Action::Update)),
    ];
    let mut any = false;
    for (title, wanted) in groups {
        let changes: Vec<&str> = plan
            .changes
            .iter()
            .filter(|c| wanted(&c.action))
            .map(|c| c.address.as_str())
            .collect();
        if changes.is_empty() {
            continue;
        }
        any = true;
        let _ = writeln!(
            md,
            "<details><summary>{title} ({})</summary>\n",
            changes.len()
        );
        let mut listed = 0;
        for address in &changes {
            if md.len() > BUDGET + 10_000 {
                break;
            }
            let _ = writeln!(md, "- {}", code(address));
            listed += 1;
        }
        if listed < changes.len() {
            let _ = writeln!(md, "- *…and {} more*", changes.len() - listed);
        }
        let _ = writeln!(md, "\n</details>\n");
    }
    if !any {
        let _ = writeln!(md, "Nothing is created, replaced, destroyed or updated.\n");
    }

    // Policies.
    let _ = writeln!(
        md,
        "### Policies\n\n| Policy | Version | Status | Findings |\n| --- | --- | --- | ---: |"
    );
    for policy in &report.policies {
        let status = match &policy.failure {
            None => "ok".to_string(),
            Some(failure) => format!(
                "**failed** ({}): {}",
                failure.kind,
                escape(&failure.message)
            ),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {status} | {} |",
            code(&policy.id),
            escape(policy.version.as_deref().unwrap_or("")),
            policy.findings
        );
    }
    md
}

/// The characters that can start markup anywhere in a line (emphasis, code,
/// links, images, HTML, entities, tables, strikethrough, headings).
const MARKUP: &str = "\\`*_[]()<>#|~!&";

/// Escapes text for markdown: control characters and line breaks become spaces
/// or escapes, markup characters are backslash-escaped, and `@` cannot mention.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '@' => out.push_str("@\u{2060}"),
            c if c.is_control() => out.extend(c.escape_default()),
            c if MARKUP.contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A code span holding `text` verbatim: the fence is longer than any run of
/// backticks inside, and a table's `|` is escaped (GitHub splits cells first).
pub fn code(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|");
    let mut longest = 0;
    let mut run = 0;
    for c in clean.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    if clean.starts_with('`') || clean.ends_with('`') || longest > 0 {
        format!("{fence} {clean} {fence}")
    } else {
        format!("{fence}{clean}{fence}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_mentions() {
        assert_eq!(
            escape("<b>@x</b>\n[a](b) 1.2"),
            "\\<b\\>@\u{2060}x\\</b\\> \\[a\\]\\(b\\) 1.2"
        );
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(code("x|y"), "`x\\|y`");
    }
}
