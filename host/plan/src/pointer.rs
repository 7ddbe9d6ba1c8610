//! JSON Pointers (RFC 6901): the paths provkey uses into attribute values.

use serde_json::Value;

/// Escapes one key for use as a pointer segment (`~` becomes `~0`, `/` becomes `~1`).
pub fn escape(segment: &str) -> std::borrow::Cow<'_, str> {
    if segment.contains(['~', '/']) {
        segment.replace('~', "~0").replace('/', "~1").into()
    } else {
        segment.into()
    }
}

/// The value at `pointer` in `value`: exactly what [`Value::pointer`] finds, without
/// its two string replacements (each an allocation and a substring search) for
/// every segment. Segments without `~` are used as they are; policies read pointers
/// such as `/ingress/0/cidr_blocks` for every change, and in a guest those
/// allocations were a tenth of `no-remote-shell`'s time.
pub fn get<'a>(value: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return Some(value);
    }
    let tokens = pointer.strip_prefix('/')?;
    tokens.split('/').try_fold(value, |target, token| {
        let token = unescape(token);
        match target {
            Value::Object(map) => map.get(token.as_ref()),
            Value::Array(list) => array_index(&token).and_then(|i| list.get(i)),
            _ => None,
        }
    })
}

/// Undoes [`escape`] for one segment, in the order RFC 6901 prescribes (`~1` first,
/// so that `~01` is `~1`).
pub(crate) fn unescape(segment: &str) -> std::borrow::Cow<'_, str> {
    if segment.contains('~') {
        segment.replace("~1", "/").replace("~0", "~").into()
    } else {
        segment.into()
    }
}

/// An array index as serde_json reads one in a pointer: decimal digits, no sign,
/// no leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

/// Builds a pointer from segments: `["tags", "Name"]` gives `/tags/Name`.
pub fn from_segments<I, S>(segments: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for segment in segments {
        out.push('/');
        out.push_str(&escape(segment.as_ref()));
    }
    out
}

/// Whether `path` is `prefix` or lies inside it: `/tags/Name` is within `/tags`,
/// and everything is within the root pointer `""`.
pub fn is_within(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.len() > prefix.len()
            && path.starts_with(prefix)
            && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// Collects the pointers of every `true` leaf of a Terraform marker structure
/// (`after_unknown`, `before_sensitive`, `after_sensitive`), which mirrors the
/// shape of the value it describes.
pub fn marked_paths(markers: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut prefix = String::new();
    collect(markers, &mut prefix, &mut out);
    out
}

fn collect(markers: &Value, prefix: &mut String, out: &mut Vec<String>) {
    match markers {
        Value::Bool(true) => out.push(prefix.clone()),
        Value::Object(map) => {
            for (key, value) in map {
                let len = prefix.len();
                prefix.push('/');
                prefix.push_str(&escape(key));
                collect(value, prefix, out);
                prefix.truncate(len);
            }
        }
        Value::Array(items) => {
            for (index, value) in items.iter().enumerate() {
                let len = prefix.len();
                prefix.push('/');
                prefix.push_str(&index.to_string());
                collect(value, prefix, out);
                prefix.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_per_rfc_6901() {
        assert_eq!(from_segments(["a/b", "m~n", "0"]), "/a~1b/m~0n/0");
        assert_eq!(
            json!({"a/b": {"m~n": [7]}}).pointer("/a~1b/m~0n/0"),
            Some(&json!(7))
        );
    }

    #[test]
    fn within() {
        assert!(is_within("/tags/Name", "/tags"));
        assert!(is_within("/tags", "/tags"));
        assert!(is_within("/anything", ""));
        assert!(!is_within("/tagsX", "/tags"));
        assert!(!is_within("/tags", "/tags/Name"));
    }

    #[test]
    fn marks() {
        let markers = json!({"id": true, "tags": {"a": false, "b": true}, "list": [false, {"x": true}], "whole": true});
        let mut paths = marked_paths(&markers);
        paths.sort();
        assert_eq!(paths, ["/id", "/list/1/x", "/tags/b", "/whole"]);
        assert_eq!(marked_paths(&json!(true)), [""]);
        assert!(marked_paths(&json!(false)).is_empty());
    }
}
