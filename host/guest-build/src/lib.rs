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
    ensure_guest_target()?;
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

/// Makes sure the toolchain building the host can also build guests: rustup
/// installs the targets of `rust-toolchain.toml` only when it installs the toolchain
/// itself, so a machine that already had the pinned toolchain lacks the guest target.
/// When it is missing, it is added through rustup (saying so) before anything builds.
pub fn ensure_guest_target() -> Result<(), String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    if guest_target_installed(&rustc)? {
        return Ok(());
    }
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN").ok();
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", GUEST_TARGET]);
    if let Some(toolchain) = &toolchain {
        cmd.args(["--toolchain", toolchain]);
    }
    let shown = toolchain.as_deref().unwrap_or("the active toolchain");
    println!(
        "cargo:warning=installing the guest target `{GUEST_TARGET}` for {shown} (rustup target add {GUEST_TARGET})"
    );
    eprintln!(
        "provkey: the toolchain lacks `{GUEST_TARGET}`; running `rustup target add {GUEST_TARGET}`"
    );
    let status = cmd.status();
    // Two build scripts may add it at once: what counts is whether it is there now.
    if guest_target_installed(&rustc)? {
        return Ok(());
    }
    let why = match status {
        Ok(status) => format!("`rustup target add {GUEST_TARGET}` exited with {status}"),
        Err(err) => format!("cannot run `rustup`: {err}"),
    };
    Err(format!(
        "the Rust toolchain lacks the guest target `{GUEST_TARGET}` and adding it failed: {why}\n\
         help: install it with `rustup target add {GUEST_TARGET}` (rust-toolchain.toml lists it), \
         or with your distribution's package of the Rust standard library for {GUEST_TARGET}"
    ))
}

/// Whether the sysroot of `rustc` holds the guest target's standard library.
fn guest_target_installed(rustc: &std::ffi::OsStr) -> Result<bool, String> {
    let output = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", GUEST_TARGET])
        .output()
        .map_err(|err| format!("cannot run `{}`: {err}", Path::new(rustc).display()))?;
    if !output.status.success() {
        // An older rustc that does not know the target at all: let the build say so.
        return Ok(true);
    }
    let libdir = String::from_utf8_lossy(&output.stdout);
    let libdir = Path::new(libdir.trim());
    Ok(std::fs::read_dir(libdir).is_ok_and(|mut entries| {
        entries.any(|entry| {
            entry.is_ok_and(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.starts_with("libcore-") || name.starts_with("libstd-"))
            })
        })
    }))
}

/// Tells cargo to rerun the build script when anything under these paths changes.
pub fn rerun_if_changed(paths: &[PathBuf]) {
    for path in paths {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The `version` of the `[[package]]` named `name` in the text of a Cargo.lock, for
/// build scripts that record what the workspace resolved (the wasmtime signed into
/// manifests and printed by `--version` and the benchmark).
pub fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines
                .next()?
                .trim()
                .strip_prefix("version = \"")?
                .strip_suffix('"')?;
            return Some(version.to_string());
        }
    }
    None
}
