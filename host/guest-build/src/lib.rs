//! Builds a workspace of Rust guest crates into `wasm32-wasip2` components from a
//! build script, the way wasmtime's test-programs do: a nested `cargo build` with
//! its own target directory (so it never waits on the outer build's lock) and a
//! clean environment (so the outer build's flags and target do not leak in).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target every guest is built for; `rust-toolchain.toml` installs it.
pub const GUEST_TARGET: &str = "wasm32-wasip2";

/// Where guests are built: beside the outer target directory, so that debug and
/// release builds of the host share one warm guest build.
pub fn guest_target_dir(out_dir: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("guests");
    }
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out (or with a triple level).
    out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(|target| target.join("guests"))
        .unwrap_or_else(|| out_dir.join("guests"))
}

/// Builds every crate of the guest workspace at `manifest` in release mode and
/// returns the path of each named component. Any failure is returned as a message
/// meant for a person, with cargo's own output.
pub fn build(
    manifest: &Path,
    out_dir: &Path,
    crates: &[&str],
) -> Result<Vec<(String, PathBuf)>, String> {
    let target_dir = guest_target_dir(out_dir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(GUEST_TARGET)
        .arg("--manifest-path")
        .arg(manifest)
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(manifest.parent().unwrap_or(Path::new(".")));
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_PROFILE_RELEASE_DEBUG",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let output = cmd.output().map_err(|err| {
        format!(
            "cannot run cargo to build the guests in `{}`: {err}",
            manifest.display()
        )
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
        {
            format!(
                "\nhelp: install the guest target with `rustup target add {GUEST_TARGET}` (rust-toolchain.toml lists it)"
            )
        } else {
            String::new()
        };
        return Err(format!(
            "building the guest components in `{}` failed{hint}\n{stderr}",
            manifest.display()
        ));
    }
    let release = target_dir.join(GUEST_TARGET).join("release");
    crates
        .iter()
        .map(|name| {
            let path = release.join(format!("{}.wasm", name.replace('-', "_")));
            if path.is_file() {
                Ok((name.to_string(), path))
            } else {
                Err(format!(
                    "the guest build did not produce `{}`",
                    path.display()
                ))
            }
        })
        .collect()
}

/// Tells cargo to rerun the build script when anything under these paths changes.
pub fn rerun_if_changed(paths: &[PathBuf]) {
    for path in paths {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
