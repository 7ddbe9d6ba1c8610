//! The strict `.minisig` parser: never panics; accepted input re-serializes byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provkey_core::minisig::{Minisig, TrustedComment};

fuzz_target!(|data: &[u8]| {
    if let Ok(sig) = Minisig::parse(data) {
        assert_eq!(sig.to_text().as_bytes(), data);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(tc) = TrustedComment::parse(text)
    {
        assert_eq!(tc.to_string(), text);
    }
});
