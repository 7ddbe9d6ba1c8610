//! The Kubernetes reader (YAML and JSON manifests, lists, admission requests): never
//! panics; whatever it accepts is a plan of well-formed changes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = provkey_kubernetes::looks_like_kubernetes(text);
    if let Ok(plan) = provkey_kubernetes::read(text) {
        assert!(!plan.changes.is_empty());
        for change in &plan.changes {
            assert!(change.resource_type.starts_with("k8s_"));
            assert!(!change.address.is_empty() && !change.name.is_empty());
            for side in [&change.before, &change.after].into_iter().flatten() {
                assert!(side.value().is_some_and(serde_json::Value::is_object));
            }
        }
    }
});
