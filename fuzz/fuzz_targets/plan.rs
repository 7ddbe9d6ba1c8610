//! The plan reader (provkey plan JSON and the Terraform converter): never panics, and
//! one verdict for every value: whatever it accepts can be read in full later, each
//! change's values whole and member by member, and serializes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provkey_plan::Plan;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(plan) = Plan::from_json(text) else {
        return;
    };
    for change in &plan.changes {
        for value in [&change.before, &change.after].into_iter().flatten() {
            let whole = value.value().expect("an accepted value parses in full");
            assert!(whole.is_object(), "an accepted value is an object");
            for key in value.keys().into_iter().flatten() {
                let pointer = provkey_plan::pointer::from_segments([key]);
                assert!(
                    value.pointer(&pointer).is_some(),
                    "an accepted member parses: {pointer}"
                );
            }
        }
        let _ = change.changed_attributes();
    }
    let json = plan.to_json().expect("an accepted plan serializes");
    let again = Plan::from_json(&json).expect("a serialized plan reads back");
    assert_eq!(again.changes.len(), plan.changes.len());
});
