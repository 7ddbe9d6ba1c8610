//! Records what `provkey --version` and sealed manifests name: the wasmtime version
//! the workspace resolved (from Cargo.lock, so it can never disagree with the
//! engine linked in), the commit the binary was built from, and the versions of the
//! `provkey:plan` contract under `wit/`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("../..");

    let lock = root.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let wasmtime = provkey_guest_build::locked_version(&text, "wasmtime")
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=PROVKEY_WASMTIME_VERSION={wasmtime}");

    let wit = root.join("wit");
    println!("cargo:rerun-if-changed={}", wit.display());
    let mut contracts: Vec<String> = std::fs::read_dir(&wit)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter_map(|name| name.strip_prefix("plan@").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    contracts.sort_by_key(|version| {
        version
            .split('.')
            .map(|part| part.parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    println!(
        "cargo:rustc-env=PROVKEY_CONTRACT_VERSIONS={}",
        contracts.join(", ")
    );

    println!("cargo:rustc-env=PROVKEY_COMMIT={}", commit(&root));
}

/// The commit of the checkout, with its short hash; or
/// `unknown` outside a git checkout (a source tarball).
fn commit(root: &Path) -> String {
    let git_dir = Command::new("git")
        .args(["rev-parse", "--absolute-git-dir"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    let Some(git_dir) = git_dir else {
        return "unknown".to_string();
    };
    // Rebuild when HEAD moves or the branch it names gets a new commit.
    let git_dir = Path::new(&git_dir);
    println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
    println!("cargo:rerun-if-changed={}", git_dir.join("refs").display());
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    match head {
        Some(head) if !head.is_empty() => head,
        _ => "unknown".to_string(),
    }
}
