//! The markdown summary, for a pull-request comment or a GitHub job summary.
//!
//! In order: the verdict and the plan; the findings counted by enforcement and
//! severity (only the counts that are not zero); the mandatory findings, then the
//! advisory ones, then those a waiver or override took out of the verdict, each
//! grouped by resource (the resource with the most severe finding first, with its
//! count) and most severe first within a resource; the waivers; what the plan
//! creates, replaces, destroys and updates; the policies run.
//!
//! Text from policies and plans renders as written: what a policy quotes in
//! backticks becomes a code span, addresses and rule ids are code spans, and
//! elsewhere only the characters that would start markup are backslash-escaped
//! (GitHub shows none of those backslashes); `@` cannot mention anyone. A message
//! that opens with its resource's address, already the heading above it, is shown
//! without it.
//!
//! The comment stays under GitHub's 65,536-character limit: the policies, waivers
//! and lists of changes have their own bounded shares, the findings the rest, and
//! whatever is cut is counted in a plain sentence where it would have been.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;

use provkey_plan::{Action, Plan, Severity};

use super::{CheckReport, FindingLine, without_subject};

/// GitHub's limit on a comment's length, in characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// What the whole comment may take: the limit, less room for a line the workflow
/// may add around it.
const TOTAL_BUDGET: usize = GITHUB_COMMENT_LIMIT - 1_024;
/// The share of the policies table and of the waivers table.
const TABLE_BUDGET: usize = 6_000;
/// The share of the lists of what the plan does.
const CHANGES_BUDGET: usize = 8_000;
/// The longest failure message shown in the policies table.
const FAILURE_CHARS: usize = 400;

pub fn write(report: &CheckReport, plan: &Plan, out: &mut dyn Write) -> std::io::Result<()> {
    out.write_all(render(report, plan).as_bytes())
}

/// A string that counts its characters as it grows.
#[derive(Default)]
struct Text {
    text: String,
    chars: usize,
}

impl Text {
    fn push(&mut self, piece: &str) {
        self.chars += piece.chars().count();
        self.text.push_str(piece);
    }
}

fn render(report: &CheckReport, plan: &Plan) -> String {
    let head = head(report);
    let policies = policies(report);
    let waivers = waivers(report);
    let changes = changes(plan);
    let fixed = head.chars + policies.chars + waivers.chars + changes.chars;
    let findings = findings(report, plan, TOTAL_BUDGET.saturating_sub(fixed));
    let mut md = head.text;
    for part in [findings, waivers, changes, policies] {
        md.push_str(&part.text);
    }
    md
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The verdict, the plan, and the counts that are not zero.
fn head(report: &CheckReport) -> Text {
    let mut md = Text::default();
    let s = &report.summary;
    let verdict = match report.verdict() {
        "pass" => "✅ PASS",
        "fail" => "❌ FAIL",
        _ => "⚠️ ERROR",
    };
    md.push(&format!("## provkey check: {verdict}\n\n"));
    let actions: Vec<String> = report
        .plan
        .actions
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{n} {name}"))
        .collect();
    md.push(&format!(
        "Plan {} ({} {}, {}{}{}).\n\n",
        code(&report.plan.path),
        report.plan.source,
        escape(&report.plan.source_version),
        plural(report.plan.changes, "change", "changes"),
        if actions.is_empty() { "" } else { ": " },
        actions.join(", "),
    ));
    if s.failed_policies > 0 {
        md.push(&format!(
            "**{} failed, so the plan was not fully checked.**\n\n",
            plural(s.failed_policies, "policy", "policies")
        ));
    }
    if report.findings.is_empty() {
        md.push("No findings.\n\n");
        return md;
    }
    // (kind, severity) -> count, in the order the sections come.
    let mut counts: Vec<((usize, &str), Severity, usize)> = Vec::new();
    for line in &report.findings {
        let kind = kind_of(line);
        let key = (kind.order(), kind.name(line));
        match counts
            .iter_mut()
            .find(|(k, sev, _)| *k == key && *sev == line.finding.severity)
        {
            Some((_, _, n)) => *n += 1,
            None => counts.push((key, line.finding.severity, 1)),
        }
    }
    counts.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    md.push("| Enforcement | Severity | Findings |\n| --- | --- | ---: |\n");
    for ((_, name), severity, n) in &counts {
        md.push(&format!("| {name} | {} | {n} |\n", severity.as_str()));
    }
    md.push(&format!(
        "| **total** | | **{}** |\n\n",
        report.findings.len()
    ));
    md
}

/// The three sections findings are shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Fails the check.
    Mandatory,
    Advisory,
    /// Mandatory, but a waiver or an override takes it out of the verdict.
    Excepted,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Mandatory, Kind::Advisory, Kind::Excepted];

    fn order(self) -> usize {
        match self {
            Kind::Mandatory => 0,
            Kind::Advisory => 1,
            Kind::Excepted => 2,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Mandatory => "Mandatory findings",
            Kind::Advisory => "Advisory findings",
            Kind::Excepted => "Waived or overridden findings",
        }
    }

    /// The name of the count row: the enforcement level, or what excepted it.
    fn name(self, line: &FindingLine) -> &'static str {
        match (self, &line.exception) {
            (Kind::Excepted, Some(exception)) => exception.status.as_str(),
            _ => line.finding.enforcement.as_str(),
        }
    }
}

fn kind_of(line: &FindingLine) -> Kind {
    if line.excepted() {
        Kind::Excepted
    } else if line.fails() {
        Kind::Mandatory
    } else {
        Kind::Advisory
    }
}

/// The findings of one kind on one resource (or on the plan as a whole).
struct Group<'a> {
    address: Option<&'a str>,
    /// Where the resource is written, when that is not the plan file itself
    /// (which a reader of the comment has no use for).
    source: Option<String>,
    lines: Vec<&'a FindingLine>,
}

impl Group<'_> {
    fn worst(&self) -> Severity {
        self.lines
            .iter()
            .map(|l| l.finding.severity)
            .max()
            .unwrap_or(Severity::Info)
    }
}

/// The findings sections, cut to `budget` characters.
fn findings(report: &CheckReport, plan: &Plan, budget: usize) -> Text {
    let mut md = Text::default();
    let actions = super::action_names(plan);
    let mut cut: Vec<(Kind, usize, usize)> = Vec::new();
    // Room for the sentence that says what was cut.
    let budget = budget.saturating_sub(600);
    for kind in Kind::ALL {
        // Groups in order of first appearance (the report is in plan order).
        let mut index: HashMap<Option<&str>, usize> = HashMap::new();
        let mut groups: Vec<Group> = Vec::new();
        for line in report.findings.iter().filter(|l| kind_of(l) == kind) {
            let address = line.finding.address.as_deref();
            let at = *index.entry(address).or_insert_with(|| {
                let location = report.location_of(&line.finding);
                let source = (location.path != report.plan.path).then(|| match location.line {
                    Some(n) => format!("{}:{n}", location.path),
                    None => location.path.to_string(),
                });
                groups.push(Group {
                    address,
                    source,
                    lines: Vec::new(),
                });
                groups.len() - 1
            });
            groups[at].lines.push(line);
        }
        if groups.is_empty() {
            continue;
        }
        // The most severe resource first; a stable sort keeps plan order among equals.
        groups.sort_by_key(|g| std::cmp::Reverse(g.worst()));
        let total: usize = groups.iter().map(|g| g.lines.len()).sum();
        let mut section = Text::default();
        section.push(&format!("### {} ({total})\n", kind.title()));
        // Once something is cut, the sections after it are only counted: a short
        // advisory note must not take the place of a mandatory finding.
        if !cut.is_empty() || md.chars + section.chars > budget {
            cut.push((kind, total, groups.len()));
            continue;
        }
        md.push(&section.text);
        let mut shown = 0;
        let mut groups_shown = 0;
        for group in &mut groups {
            group
                .lines
                .sort_by_key(|l| std::cmp::Reverse(l.finding.severity));
            let mut piece = Text::default();
            piece.push(&group_heading(group, &actions));
            let mut in_group = 0;
            for line in &group.lines {
                let item = finding_item(line, group.address);
                if md.chars + piece.chars + item.chars().count() > budget {
                    break;
                }
                piece.push(&item);
                in_group += 1;
            }
            if in_group == 0 {
                break;
            }
            if in_group < group.lines.len() {
                piece.push(&format!(
                    "- *…and {} more on this resource*\n",
                    group.lines.len() - in_group
                ));
            }
            md.push(&piece.text);
            shown += in_group;
            groups_shown += 1;
            if in_group < group.lines.len() {
                break;
            }
        }
        md.push("\n");
        if shown < total {
            cut.push((kind, total - shown, groups.len() - groups_shown));
        }
    }
    if !cut.is_empty() {
        let parts: Vec<String> = cut
            .iter()
            .map(|(kind, n, groups)| {
                let what = match kind {
                    Kind::Mandatory => "mandatory",
                    Kind::Advisory => "advisory",
                    Kind::Excepted => "waived or overridden",
                };
                let on = if *groups > 0 {
                    format!(
                        " ({} not shown at all)",
                        plural(*groups, "resource", "resources")
                    )
                } else {
                    String::new()
                };
                format!("{n} {what} finding{}{on}", if *n == 1 { "" } else { "s" })
            })
            .collect();
        md.push(&format!(
            "**Not shown: {}.** A comment holds at most {} characters; the JSON, SARIF \
             and text reports list every finding.\n\n",
            parts.join(", "),
            thousands(GITHUB_COMMENT_LIMIT),
        ));
    }
    md
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn group_heading(group: &Group, actions: &HashMap<&str, &'static str>) -> String {
    let count = plural(group.lines.len(), "finding", "findings");
    let Some(address) = group.address else {
        return format!("\n#### The plan as a whole: {count}\n\n");
    };
    let notes: Vec<String> = group
        .address
        .and_then(|a| actions.get(a))
        .map(|action| action.to_string())
        .into_iter()
        .chain(group.source.as_deref().map(code))
        .collect();
    if notes.is_empty() {
        format!("\n#### {}: {count}\n\n", code(address))
    } else {
        format!(
            "\n#### {} ({}): {count}\n\n",
            code(address),
            notes.join(", ")
        )
    }
}

/// One finding as a list item (with its help and exception on their own lines).
fn finding_item(line: &FindingLine, address: Option<&str>) -> String {
    let f = &line.finding;
    let mut item = format!(
        "- **{}** {} {}",
        f.severity.as_str().to_uppercase(),
        code(&format!("{}/{}", line.policy, f.rule)),
        f.enforcement.as_str(),
    );
    if let Some(attribute) = &f.attribute {
        let _ = write!(item, " at {}", code(attribute));
    }
    let message = address.map_or(f.message.as_str(), |a| without_subject(&f.message, a));
    let message = match &f.attribute {
        // The attribute is named just before: not again in parentheses.
        Some(attribute) => message.replace(&format!(" (`{attribute}`)"), ""),
        None => message.to_string(),
    };
    let _ = writeln!(item, ": {}", inline(&message));
    if let Some(help) = &f.remediation {
        let _ = writeln!(item, "  *help:* {}", inline(help));
    }
    if let Some(exception) = &line.exception {
        let _ = writeln!(
            item,
            "  *{}:* {}",
            exception.status.as_str(),
            inline(&exception.describe())
        );
    }
    item
}

fn waivers(report: &CheckReport) -> Text {
    let mut md = Text::default();
    if report.waivers.is_empty() {
        return md;
    }
    md.push(
        "### Waivers and overrides\n\n| Kind | Policy/rule | Address | Owner | Expires | Status | Findings |\n| --- | --- | --- | --- | --- | --- | ---: |\n",
    );
    for (i, w) in report.waivers.iter().enumerate() {
        let row = format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            w.kind,
            code_cell(&format!("{}/{}", w.policy, w.rule)),
            code_cell(&w.address),
            escape_cell(&w.owner),
            w.expires,
            w.status,
            w.findings
        );
        if md.chars + row.chars().count() > TABLE_BUDGET {
            md.push(&format!(
                "\n*…and {} more waivers and overrides.*\n",
                report.waivers.len() - i
            ));
            break;
        }
        md.push(&row);
    }
    md.push("\n");
    md
}

/// What the plan creates, replaces, destroys and updates, in collapsed lists.
fn changes(plan: &Plan) -> Text {
    let mut md = Text::default();
    md.push("### What the plan does\n\n");
    type Wanted = fn(&Action) -> bool;
    let groups: [(&str, Wanted); 4] = [
        ("Creates", |a| matches!(a, Action::Create)),
        ("Replaces", |a| matches!(a, Action::Replace(_))),
        ("Destroys", |a| matches!(a, Action::Destroy)),
        ("Updates in place", |a| matches!(a, Action::Update)),
    ];
    let all: Vec<Vec<&str>> = groups
        .iter()
        .map(|(_, wanted)| {
            plan.changes
                .iter()
                .filter(|c| wanted(&c.action))
                .map(|c| c.address.as_str())
                .collect()
        })
        .collect();
    let nonempty = all.iter().filter(|c| !c.is_empty()).count();
    if nonempty == 0 {
        md.push("Nothing is created, replaced, destroyed or updated.\n\n");
        return md;
    }
    // Each list gets an equal share, so that a long list of creates does not hide
    // the destroys.
    let share = CHANGES_BUDGET / nonempty;
    for ((title, _), changes) in groups.iter().zip(&all) {
        if changes.is_empty() {
            continue;
        }
        let start = md.chars;
        md.push(&format!(
            "<details><summary>{title} ({})</summary>\n\n",
            changes.len()
        ));
        let mut listed = 0;
        for address in changes {
            let item = format!("- {}\n", code(address));
            if md.chars - start + item.chars().count() > share {
                break;
            }
            md.push(&item);
            listed += 1;
        }
        if listed < changes.len() {
            md.push(&format!(
                "- *…and {} more (not listed, to keep the comment short)*\n",
                changes.len() - listed
            ));
        }
        md.push("\n</details>\n\n");
    }
    md
}

/// The policies run: a table of those that failed or found something, then one
/// line naming those that found nothing (no rows of zeros).
fn policies(report: &CheckReport) -> Text {
    let mut md = Text::default();
    md.push("### Policies\n\n");
    let (reporting, silent): (Vec<_>, Vec<_>) = report
        .policies
        .iter()
        .partition(|p| p.failure.is_some() || p.findings > 0);
    let version = |p: &super::PolicyLine| match &p.version {
        Some(v) => format!(" {}", escape(v)),
        None => String::new(),
    };
    if !reporting.is_empty() {
        md.push("| Policy | Version | Status | Findings |\n| --- | --- | --- | ---: |\n");
    }
    for (i, policy) in reporting.iter().enumerate() {
        let status = match &policy.failure {
            None => "ok".to_string(),
            Some(failure) => {
                let mut message: String = failure.message.chars().take(FAILURE_CHARS).collect();
                if message.len() < failure.message.len() {
                    message.push_str(" …");
                }
                format!("**failed** ({}): {}", failure.kind, escape_cell(&message))
            }
        };
        let row = format!(
            "| {} | {} | {status} | {} |\n",
            code_cell(&policy.id),
            escape_cell(policy.version.as_deref().unwrap_or("")),
            policy.findings
        );
        if md.chars + row.chars().count() > TABLE_BUDGET {
            md.push(&format!(
                "\n*…and {} more policies with findings.*\n",
                reporting.len() - i
            ));
            break;
        }
        md.push(&row);
    }
    if !silent.is_empty() {
        let mut line = String::from(if reporting.is_empty() { "" } else { "\n" });
        line.push_str("No findings from ");
        let mut named = 0;
        for policy in &silent {
            let entry = format!("{}{}", code(&policy.id), version(policy));
            if md.chars + line.chars().count() + entry.chars().count() > TABLE_BUDGET {
                break;
            }
            if named > 0 {
                line.push_str(", ");
            }
            line.push_str(&entry);
            named += 1;
        }
        match silent.len() - named {
            0 => {}
            rest if named == 0 => line.push_str(&plural(rest, "policy", "policies")),
            rest => line.push_str(&format!(" and {rest} more")),
        }
        line.push_str(".\n");
        md.push(&line);
    }
    md
}

/// The characters that can start markup inside a line: emphasis, code, links and
/// images (`[`, `]`), HTML and autolinks (`<`, `>`), entities (`&`),
/// strikethrough (`~`), and the backslash itself. Others (`#`, `!`, `(`, `|`)
/// only do so at the start of a line, after `]`, or in a table.
const MARKUP: &str = "\\`*_[]<>&~";

/// Escapes text for a line of markdown: line breaks become spaces, control
/// characters are written as escapes, markup characters are backslash-escaped
/// (which GitHub renders as the character alone), and `@` cannot mention.
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

/// [`escape`] for a table cell, where `|` would end the cell.
pub fn escape_cell(text: &str) -> String {
    escape(text).replace('|', "\\|")
}

/// Text that may quote code between backticks, as policies write their messages:
/// each quoted part becomes a code span (shown verbatim), the rest is [`escape`]d.
/// A backtick without a partner is shown as a backtick.
pub fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(open) = rest.find('`') {
        out.push_str(&escape(&rest[..open]));
        let run = rest[open..].chars().take_while(|&c| c == '`').count();
        let after = &rest[open + run..];
        match closing_run(after, run) {
            Some(close) => {
                out.push_str(&code(&after[..close]));
                rest = &after[close + run..];
            }
            None => {
                out.push_str(&escape(&rest[open..open + run]));
                rest = after;
            }
        }
    }
    out.push_str(&escape(rest));
    out
}

/// Where the next run of exactly `run` backticks starts in `text`.
fn closing_run(text: &str, run: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'`' {
            let len = bytes[i..].iter().take_while(|&&b| b == b'`').count();
            if len == run {
                return Some(i);
            }
            i += len;
        } else {
            i += 1;
        }
    }
    None
}

/// A code span holding `text` verbatim (line breaks and control characters become
/// spaces): the fence is longer than any run of backticks inside.
pub fn code(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
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
    if longest > 0 || clean.starts_with(' ') && clean.ends_with(' ') && !clean.trim().is_empty() {
        // Padded with a space on each side, which the renderer strips.
        format!("{fence} {clean} {fence}")
    } else if clean.is_empty() {
        "` `".to_string()
    } else {
        format!("{fence}{clean}{fence}")
    }
}

/// [`code`] for a table cell: GitHub splits a row at `|` before reading code
/// spans, so `|` is escaped (and shown without the backslash).
pub fn code_cell(text: &str) -> String {
    code(text).replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_only_markup_and_mentions() {
        assert_eq!(
            escape("<b>@x</b>\n[a](b) 1.2 #3 | x_y"),
            "\\<b\\>@\u{2060}x\\</b\\> \\[a\\](b) 1.2 #3 | x\\_y"
        );
        assert_eq!(escape_cell("a|b"), "a\\|b");
    }

    #[test]
    fn code_spans_hold_text_verbatim() {
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(code("`a`"), "`` `a` ``");
        assert_eq!(code("x|y"), "`x|y`");
        assert_eq!(code_cell("x|y"), "`x\\|y`");
        assert_eq!(code("a\nb"), "`a b`");
    }

    #[test]
    fn quoted_code_in_messages_becomes_code_spans() {
        assert_eq!(
            inline("`a_b` changes `x`, `y` (see [docs])"),
            "`a_b` changes `x`, `y` (see \\[docs\\])"
        );
        assert_eq!(inline("one ` alone *"), "one \\` alone \\*");
        assert_eq!(inline("``a`b`` ok"), "`` a`b `` ok");
    }

    #[test]
    fn a_leading_address_is_not_repeated() {
        assert_eq!(
            without_subject("`a.b` would be updated", "a.b"),
            "would be updated"
        );
        assert_eq!(without_subject("a.b lacks a tag", "a.b"), "lacks a tag");
        assert_eq!(
            without_subject("`a.b`: tags are unknown", "a.b"),
            "tags are unknown"
        );
        assert_eq!(
            without_subject("`a.bc` would be updated", "a.b"),
            "`a.bc` would be updated"
        );
        assert_eq!(without_subject("`a.b`", "a.b"), "`a.b`");
    }
}
