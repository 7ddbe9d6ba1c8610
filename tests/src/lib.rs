//! Paths of the test guest components, built from `guests/` by `build.rs`.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
