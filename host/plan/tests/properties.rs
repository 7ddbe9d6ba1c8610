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
