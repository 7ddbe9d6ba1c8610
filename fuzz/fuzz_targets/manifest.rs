//! The manifest parser and JCS: never panics; an accepted manifest (and any accepted
//! canonical JSON) re-serializes byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provkey_core::canonical::parse_canonical;
use provkey_core::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = parse_canonical(data) {
        assert_eq!(serde_json_canonicalizer::to_vec(&value).unwrap(), data);
    }
    if let Ok(manifest) = Manifest::from_bytes(data) {
        assert_eq!(manifest.to_bytes().unwrap(), data);
    }
});
