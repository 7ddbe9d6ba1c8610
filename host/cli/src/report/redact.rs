//! Keeps the values a plan marks sensitive out of every report.
//!
//! Policies see sensitive values (they must, to check them) and are asked never
//! to print them; this is the host's guarantee that a careless or hostile policy
//! cannot leak one anyway. Every text a policy returns (messages, remediations,
//! attribute paths, addresses that are not the plan's, failure messages) is
//! scanned for the values found at the sensitive paths of every change of the
//! plan, before and after, and each occurrence becomes `(sensitive)`.
//!
//! What counts as a value: each non-empty string and each number inside a
//! sensitive subtree, and the compact JSON text of each sensitive object or array
//! (so that a policy echoing `{"user":"u","password":"p"}` is caught whole). The
//! longest match wins, so a value that contains another is replaced as a whole.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};
use provkey_plan::Plan;
use serde_json::Value;

/// What a sensitive value is replaced with.
pub const REDACTED: &str = "(sensitive)";

/// Replaces a plan's sensitive values in text.
pub struct Redactor {
    /// The values, longest first (the fallback scan relies on that order).
    values: Vec<String>,
    matcher: Option<AhoCorasick>,
}

impl Redactor {
    /// Collects the sensitive values of every change of `plan`.
    pub fn from_plan(plan: &Plan) -> Self {
        let mut values: Vec<String> = Vec::new();
        for change in &plan.changes {
            let paths: Vec<&String> = change
                .before_sensitive
                .iter()
                .chain(&change.after_sensitive)
                .collect();
            // Most changes mark nothing sensitive: leave their values unparsed.
            if paths.is_empty() {
                continue;
            }
            // A path marked on one side is treated as sensitive on both.
            // Pointer lookups parse only the members the paths go through.
            for side in [change.before.as_ref(), change.after.as_ref()]
                .into_iter()
                .flatten()
            {
                for path in &paths {
                    if let Some(value) = side.pointer(path) {
                        collect(value, &mut values);
                    }
                }
            }
        }
        Self::new(values)
    }

    /// A redactor for these values (empty ones are ignored).
    pub fn new(mut values: Vec<String>) -> Self {
        values.retain(|v| !v.is_empty());
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        // Building fails only for pattern sets far beyond any plan's size; the
        // plain scan in `redact` then does the same work, slower.
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&values)
            .ok();
        Redactor { values, matcher }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every sensitive value replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.values.is_empty() {
            return Cow::Borrowed(text);
        }
        match &self.matcher {
            Some(matcher) => {
                if !matcher.is_match(text) {
                    return Cow::Borrowed(text);
                }
                let mut out = String::with_capacity(text.len());
                matcher.replace_all_with(text, &mut out, |_, _, dst| {
                    dst.push_str(REDACTED);
                    true
                });
                Cow::Owned(out)
            }
            None => {
                let mut out = text.to_string();
                for value in &self.values {
                    if out.contains(value.as_str()) {
                        out = out.replace(value.as_str(), REDACTED);
                    }
                }
                Cow::Owned(out)
            }
        }
    }

    /// Redacts a string in place.
    pub fn redact_in_place(&self, text: &mut String) {
        if let Cow::Owned(redacted) = self.redact(text) {
            *text = redacted;
        }
    }
}

fn collect(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => {
            out.push(value.to_string());
            for item in items {
                collect(item, out);
            }
        }
        Value::Object(map) => {
            out.push(value.to_string());
            for item in map.values() {
                collect(item, out);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_value_wins_and_empty_is_ignored() {
        let r = Redactor::new(vec!["abc".into(), "abcdef".into(), String::new()]);
        assert_eq!(r.redact("x abcdef y abc"), "x (sensitive) y (sensitive)");
        assert_eq!(r.redact("nothing"), "nothing");
        assert!(Redactor::new(vec![String::new()]).is_empty());
    }
}
