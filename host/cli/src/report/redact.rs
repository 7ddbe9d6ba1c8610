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
//! (so that a policy echoing `{"user":"u","password":"p"}` is caught whole).
//! Occurrences that overlap are replaced as one.
//!
//! A value is found where it stands as itself, not inside another word or number:
//! a sensitive port `80` is redacted in `port 80` and `:80/`, and `8080` is left as it
//! is. A value of [`ANYWHERE_FROM`] characters or more is redacted wherever it occurs,
//! inside a longer word too: long enough not to turn up by chance, and a secret
//! glued to other text is still a secret.
//!
//! The redactor never fails open: when a value holding sensitive paths cannot be
//! read (a plan the reader refuses never gets here; this is the guard behind it),
//! nothing a policy wrote is printed at all.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};
use provkey_plan::Plan;
use serde_json::Value;

/// What a sensitive value is replaced with.
pub const REDACTED: &str = "(sensitive)";

/// From this many characters, a sensitive value is redacted wherever it occurs;
/// shorter ones only where they stand alone (see the module's documentation).
pub const ANYWHERE_FROM: usize = 6;

/// Replaces a plan's sensitive values in text.
pub struct Redactor {
    /// The values, longest first.
    values: Vec<String>,
    matcher: Option<AhoCorasick>,
    /// A sensitive value could not be read: every text is redacted whole.
    opaque: bool,
}

impl Redactor {
    /// Collects the sensitive values of every change of `plan`.
    pub fn from_plan(plan: &Plan) -> Self {
        let mut values: Vec<String> = Vec::new();
        let mut opaque = false;
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
                    match side.pointer(path) {
                        Some(value) => collect(value, &mut values),
                        // Absent, or unreadable: only a full parse tells which.
                        None => opaque |= side.value().is_none(),
                    }
                }
            }
        }
        let mut redactor = Self::new(values);
        redactor.opaque = opaque;
        redactor
    }

    /// A redactor for these values (empty ones are ignored).
    pub fn new(mut values: Vec<String>) -> Self {
        values.retain(|v| !v.is_empty());
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        // Building fails only for pattern sets far beyond any plan's size; the
        // plain scan in `redact` then does the same work, slower.
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&values)
            .ok();
        Redactor {
            values,
            matcher,
            opaque: false,
        }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && !self.opaque
    }

    /// `text` with every sensitive value replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.opaque && !text.is_empty() {
            return Cow::Borrowed(REDACTED);
        }
        if self.values.is_empty() {
            return Cow::Borrowed(text);
        }
        // Every occurrence, overlapping ones included: skipping a short value that
        // stands inside a word must not hide a longer one that starts within it.
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut consider = |start: usize, end: usize, value: &str| {
            if stands_alone(text, start, end) || value.chars().count() >= ANYWHERE_FROM {
                spans.push((start, end));
            }
        };
        match &self.matcher {
            Some(matcher) => {
                if !matcher.is_match(text) {
                    return Cow::Borrowed(text);
                }
                for found in matcher.find_overlapping_iter(text) {
                    let value = &self.values[found.pattern().as_usize()];
                    consider(found.start(), found.end(), value);
                }
            }
            None => {
                for value in &self.values {
                    for (start, _) in text.match_indices(value.as_str()) {
                        consider(start, start + value.len(), value);
                    }
                }
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut spans = spans.into_iter().peekable();
        while let Some((start, mut end)) = spans.next() {
            while let Some(&(next_start, next_end)) = spans.peek() {
                if next_start > end {
                    break;
                }
                end = end.max(next_end);
                spans.next();
            }
            if start >= copied {
                out.push_str(&text[copied..start]);
                out.push_str(REDACTED);
                copied = end;
            } else if end > copied {
                copied = end;
            }
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }

    /// Redacts a string in place.
    pub fn redact_in_place(&self, text: &mut String) {
        if let Cow::Owned(redacted) = self.redact(text) {
            *text = redacted;
        }
    }
}

/// Whether `text[start..end]` is not part of a longer number or word: the character
/// before it and its first character are not both digits or both letters, and
/// likewise at its end.
fn stands_alone(text: &str, start: usize, end: usize) -> bool {
    let glued = |outside: Option<char>, inside: Option<char>| match (outside, inside) {
        (Some(a), Some(b)) => {
            (a.is_numeric() && b.is_numeric()) || (a.is_alphabetic() && b.is_alphabetic())
        }
        _ => false,
    };
    let value = &text[start..end];
    !glued(text[..start].chars().next_back(), value.chars().next())
        && !glued(text[end..].chars().next(), value.chars().next_back())
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
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn longest_value_wins_and_empty_is_ignored() {
        let r = Redactor::new(vec!["abc".into(), "abcdef".into(), String::new()]);
        assert_eq!(r.redact("x abcdef y abc"), "x (sensitive) y (sensitive)");
        assert_eq!(r.redact("nothing"), "nothing");
        assert!(Redactor::new(vec![String::new()]).is_empty());
    }

    #[test]
    fn a_short_value_is_redacted_where_it_stands_alone_only() {
        let r = Redactor::new(vec!["80".into()]);
        assert_eq!(r.redact("port 8080"), "port 8080");
        assert_eq!(r.redact("port 80"), "port (sensitive)");
        assert_eq!(r.redact("http://h:80/x"), "http://h:(sensitive)/x");
        assert_eq!(r.redact("p80"), "p(sensitive)");
        assert_eq!(r.redact("80,180,801,80"), "(sensitive),180,801,(sensitive)");
    }

    #[test]
    fn a_long_value_is_redacted_inside_a_word_too() {
        let r = Redactor::new(vec!["hunter2".into(), "ab".into()]);
        assert_eq!(r.redact("xhunter2y"), "x(sensitive)y");
        // The short value inside a word is skipped, and does not hide the long one
        // that overlaps it.
        let r = Redactor::new(vec!["ab".into(), "bcdefgh".into()]);
        assert_eq!(r.redact("xabcdefgh"), "xa(sensitive)");
        assert_eq!(r.redact("ab bcdefgh"), "(sensitive) (sensitive)");
    }

    #[test]
    fn an_unreadable_sensitive_value_redacts_everything() {
        let mut plan = Plan::from_json(
            r#"{"format": "provkey-plan", "format_version": "0.1", "changes": [
                {"address": "a.b", "mode": "managed", "type": "a", "name": "b",
                 "provider": "p", "action": "create", "after": {"password": "hunter2"},
                 "after_sensitive": ["/password"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            Redactor::from_plan(&plan).redact("is hunter2"),
            "is (sensitive)"
        );
        // A value the reader would refuse, put there by hand: nothing can be found in
        // it, so nothing a policy says is printed.
        plan.changes[0].after = Some(provkey_plan::JsonText::new(r#"{"password": 1e400}"#));
        let redactor = Redactor::from_plan(&plan);
        assert!(!redactor.is_empty());
        assert_eq!(redactor.redact("anything at all"), REDACTED);
        assert_eq!(redactor.redact(""), "");
    }

    #[test]
    fn overlapping_values_are_replaced_as_one() {
        let r = Redactor::new(vec!["secret-one".into(), "one-two-three".into()]);
        assert_eq!(r.redact("[secret-one-two-three]"), "[(sensitive)]");
    }
}
