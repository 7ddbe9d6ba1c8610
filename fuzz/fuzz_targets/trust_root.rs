//! The trust-root parser: never panics; an accepted trust root re-serializes byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provkey_core::trust::TrustRoot;

fuzz_target!(|data: &[u8]| {
    if let Ok(root) = TrustRoot::parse_unsigned(data) {
        assert_eq!(root.doc.to_bytes().unwrap(), data);
    }
});
