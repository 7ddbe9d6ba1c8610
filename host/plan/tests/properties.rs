//! Properties of the plan reader: it never panics, and what it accepts it can write
//! back and read again unchanged.

use proptest::prelude::*;
use provkey_plan::Plan;

const BASE: &str = r#"{"format_version": "1.2", "resource_changes": [
  {"address": "a.b", "type": "a", "name": "b", "provider_name": "p", "mode": "managed",
   "change": {"actions": ["update"], "before": {"x": 1, "t": {"k": "v"}}, "after": {"x": 2, "t": {"k": "v"}},
              "after_unknown": {"y": true}, "after_sensitive": {"t": {"k": true}}}},
  {"address": "a.c", "type": "a", "name": "c", "provider_name": "p",
   "change": {"actions": ["delete", "create"], "before": null, "after": {"z": [1, 2]}, "replace_paths": [["z", 0]]}}
]}"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = Plan::from_json(text);
        }
    }

    #[test]
    fn any_single_byte_change_is_refused_or_round_trips(pos in 0usize..BASE.len(), byte in 0x20u8..0x7f) {
        let mut bytes = BASE.as_bytes().to_vec();
        bytes[pos] = byte;
        if let Ok(text) = std::str::from_utf8(&bytes)
            && let Ok(plan) = Plan::from_json(text)
        {
            let again = Plan::from_json(&plan.to_json().unwrap()).unwrap();
            prop_assert_eq!(plan, again);
        }
    }

    #[test]
    fn truncations_never_panic(cut in 0usize..BASE.len()) {
        prop_assert!(Plan::from_json(&BASE[..cut]).is_err());
    }
}

/// An object's text from (key, value text) pairs, keys possibly repeated.
fn object_text(members: &[(usize, usize)]) -> String {
    let body: Vec<String> = members
        .iter()
        .map(|&(k, v)| format!("{}: {}", serde_json::json!(KEYS[k]), VALUES[v]))
        .collect();
    format!("{{{}}}", body.join(", "))
}

const KEYS: [&str; 5] = ["a", "b", "c", "a/b", "t~"];
// `1` and `1.0` differ as values; the two objects are one value written twice.
const VALUES: [&str; 7] = [
    "1",
    "1.0",
    "\"x\"",
    "null",
    "[1, 2]",
    "{\"k\": 1}",
    "{ \"k\" :1 }",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// `changed_attributes` against an oracle built from parsed values: the keys
    /// whose values differ (the last of a repeated key counts, as when parsing),
    /// plus the keys that become unknown.
    #[test]
    fn changed_attributes_match_the_parsed_values(
        before in proptest::option::of(proptest::collection::vec((0..KEYS.len(), 0..VALUES.len()), 0..6)),
        after in proptest::option::of(proptest::collection::vec((0..KEYS.len(), 0..VALUES.len()), 0..6)),
        unknown in proptest::collection::btree_set(0..KEYS.len(), 0..3),
    ) {
        let before_text = before.as_deref().map_or("null".to_string(), object_text);
        let after_text = after.as_deref().map_or("null".to_string(), object_text);
        let unknown_text: Vec<String> = unknown
            .iter()
            .map(|&k| format!("{}: true", serde_json::json!(KEYS[k])))
            .collect();
        let actions = match (&before, &after) {
            (None, _) => "\"create\"",
            (_, None) => "\"delete\"",
            _ => "\"update\"",
        };
        let text = format!(
            r#"{{"format_version": "1.2", "resource_changes": [{{"address": "a.b", "type": "a", "name": "b",
                "provider_name": "p", "change": {{"actions": [{actions}], "before": {before_text},
                "after": {after_text}, "after_unknown": {{{}}}}}}}]}}"#,
            unknown_text.join(", ")
        );
        let plan = Plan::from_json(&text).unwrap();
        let change = &plan.changes[0];

        let object = |text: &str| match serde_json::from_str::<serde_json::Value>(text).unwrap() {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let (b, a) = (object(&before_text), object(&after_text));
        let mut want: Vec<String> = b
            .keys()
            .chain(a.keys())
            .filter(|k| b.get(*k) != a.get(*k))
            .map(|k| provkey_plan::pointer::from_segments([k]))
            .chain(unknown.iter().map(|&k| provkey_plan::pointer::from_segments([KEYS[k]])))
            .collect();
        want.sort();
        want.dedup();
        prop_assert_eq!(change.changed_attributes(), want, "plan: {}", text);
    }
}

/// A document whose keys and indexes exercise every rule of pointer lookup: escaped
/// `~` and `/`, keys that look like indexes, an empty key, nested arrays.
const POINTER_DOC: &str = r#"{"a": {"b": [10, {"c": "x", "0": "zero"}, [1, [2, 3]]]},
    "t~/k": {"~1": 1, "~0": 2, "/": 3, "~": 4}, "": {"": "empty"}, "01": "lead",
    "n": null, "0": [5], "+1": "plus"}"#;

/// Segments a pointer may be made of, including escapes, indexes in every spelling
/// serde_json refuses (`01`, `+1`, `-`), and keys that do not exist.
const SEGMENTS: [&str; 18] = [
    "a", "b", "c", "0", "1", "2", "01", "+1", "-", "", "t~0~1k", "~01", "~00", "~1", "~0", "n",
    "nope", "t~/k",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// `pointer::get` finds exactly what serde_json's `Value::pointer` finds.
    #[test]
    fn pointer_get_agrees_with_serde_json(
        segments in proptest::collection::vec(0usize..SEGMENTS.len(), 0..5),
        leading_slash in any::<bool>(),
    ) {
        let value: serde_json::Value = serde_json::from_str(POINTER_DOC).unwrap();
        let mut pointer: String = segments.iter().map(|&i| format!("/{}", SEGMENTS[i])).collect();
        if !leading_slash && !pointer.is_empty() {
            pointer.remove(0);
        }
        prop_assert_eq!(provkey_plan::pointer::get(&value, &pointer), value.pointer(&pointer));
    }
}

#[test]
fn pointer_get_finds_what_the_rfc_says() {
    let value: serde_json::Value = serde_json::from_str(POINTER_DOC).unwrap();
    let get = |p: &str| provkey_plan::pointer::get(&value, p);
    assert_eq!(get("/a/b/1/c"), Some(&serde_json::json!("x")));
    assert_eq!(get("/a/b/2/1/0"), Some(&serde_json::json!(2)));
    assert_eq!(get("/t~0~1k/~01"), Some(&serde_json::json!(1)));
    assert_eq!(get("/t~0~1k/~00"), Some(&serde_json::json!(2)));
    assert_eq!(get("//"), Some(&serde_json::json!("empty")));
    assert_eq!(get("/01"), Some(&serde_json::json!("lead")));
    assert_eq!(get("/0/01"), None);
    assert_eq!(get("/a/b/01"), None);
    assert_eq!(get("/a/b/+1"), None);
    assert_eq!(get("/a/b/1/0"), Some(&serde_json::json!("zero")));
    assert_eq!(get("/0/+1"), None);
    assert_eq!(get("/0/-"), None);
    assert_eq!(get("a"), None);
    assert_eq!(get(""), Some(&value));
}
