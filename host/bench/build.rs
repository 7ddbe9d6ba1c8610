//! Records the wasmtime version the workspace resolved, for the benchmark's header.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let lock = manifest.join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let version = provkey_guest_build::locked_version(&text, "wasmtime")
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=PROVKEY_BENCH_WASMTIME_VERSION={version}");
}
