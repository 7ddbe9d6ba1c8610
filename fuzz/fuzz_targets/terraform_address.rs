//! The Terraform address parser of the source mapping: never panics; an accepted
//! address names a resource type and name made of address characters.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(address) = provkey_source_map::Address::parse(text) {
        assert!(!address.resource_type.is_empty() && !address.name.is_empty());
        assert!(!address.resource_type.contains(['.', '[', ']']));
        assert!(address.modules.iter().all(|m| !m.is_empty()));
    }
});
