//! GitHub Actions workflow commands: each finding an annotation
//! (`::error`, `::warning` or `::notice`) at the finding's location (the file and
//! line of [`CheckReport::location_of`]: the `.tf` line that declares the resource
//! with `--source-dir`, or else the plan file at the line of the change).
//!
//! A mandatory finding is `::error`; an advisory one `::warning` from medium
//! severity up and `::notice` below. A failed policy is an `::error`. Values are
//! escaped as the Actions runner expects (`%`, `\r`, `\n` in messages; also `:` and
//! `,` in properties), so a message can never end its command early or start
//! another one.

use std::io::Write;

use super::{CheckReport, Level};
use crate::text::sanitize;

pub fn write(report: &CheckReport, out: &mut dyn Write) -> std::io::Result<()> {
    // What concerns the check as a whole is annotated on the plan file.
    let file = report.plan.path.as_str();
    for line in &report.findings {
        let f = &line.finding;
        let location = report.location_of(f);
        let command = match Level::of_line(line) {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "notice",
        };
        let mut properties = vec![("file", location.path.to_string())];
        if let Some(n) = location.line {
            properties.push(("line", n.to_string()));
        }
        let title = match &f.address {
            Some(address) => format!("{}/{}: {address}", line.policy, f.rule),
            None => format!("{}/{}", line.policy, f.rule),
        };
        let title = sanitize(&title);
        properties.push(("title", title));
        let mut message = format!(
            "[{} {}] {}",
            f.severity.as_str(),
            f.enforcement.as_str(),
            sanitize(&f.message)
        );
        if let Some(attribute) = &f.attribute {
            message.push_str(&format!(" (at `{}`)", sanitize(attribute)));
        }
        if let Some(help) = &f.remediation {
            message.push_str(&format!("\nhelp: {}", sanitize(help)));
        }
        if let Some(exception) = &line.exception {
            message.push_str(&format!(
                "\n{}: {}",
                exception.status.as_str(),
                sanitize(&exception.describe())
            ));
        }
        command_line(out, command, &properties, &message)?;
    }
    for policy in &report.policies {
        if let Some(failure) = &policy.failure {
            command_line(
                out,
                "error",
                &[
                    ("file", file.to_string()),
                    ("title", sanitize(&format!("policy {} failed", policy.id))),
                ],
                &sanitize(&format!(
                    "policy `{}` failed ({}), so the plan was not fully checked: {}",
                    policy.id, failure.kind, failure.message
                )),
            )?;
        }
    }
    for waiver in report.waivers.iter().filter(|w| w.status == "expired") {
        command_line(
            out,
            "warning",
            &[
                ("file", file.to_string()),
                (
                    "title",
                    sanitize(&format!(
                        "expired waiver for {}/{}",
                        waiver.policy, waiver.rule
                    )),
                ),
            ],
            &sanitize(&format!(
                "the waiver of {} for {}/{} on `{}` expired on {} and no longer applies: {}",
                waiver.owner,
                waiver.policy,
                waiver.rule,
                waiver.address,
                waiver.expires,
                waiver.reason
            )),
        )?;
    }
    let s = &report.summary;
    writeln!(
        out,
        "provkey: {}: {} hard-mandatory, {} soft-mandatory, {} advisory finding(s), {} failed polic{}",
        report.verdict().to_uppercase(),
        s.hard_mandatory,
        s.soft_mandatory,
        s.advisory,
        s.failed_policies,
        if s.failed_policies == 1 { "y" } else { "ies" }
    )
}

fn command_line(
    out: &mut dyn Write,
    command: &str,
    properties: &[(&str, String)],
    message: &str,
) -> std::io::Result<()> {
    let properties: Vec<String> = properties
        .iter()
        .map(|(key, value)| format!("{key}={}", escape_property(value)))
        .collect();
    writeln!(
        out,
        "::{command} {}::{}",
        properties.join(","),
        escape_data(message)
    )
}

/// Escapes a command's message, as the runner's `toCommandValue` expects.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a command property's value: also `:` and `,`, which end it.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_the_runner_expects() {
        assert_eq!(escape_data("50%\r\n::x"), "50%25%0D%0A::x");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }
}
