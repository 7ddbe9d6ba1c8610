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
