//! Builds the `policies/` guest workspace for `wasm32-wasip2` (release) with a
//! nested cargo (through `provkey-guest-build`), copies each policy component into
//! `OUT_DIR` and writes `gen.rs`, which embeds them as `STOCK_POLICIES`.
//!
//! Every member of policies/ is a stock policy whose directory name, package name
//! and policy id are the same (`policies/immutable`, package `immutable`, id
//! `immutable`). Every member of policies/planners/ is a stock planner, named the
//! same way (`policies/planners/provkey-planner`), embedded as `STOCK_PLANNERS`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The first bytes of a component binary: magic, version 0x0d, layer 1.
const COMPONENT_HEADER: &[u8] = b"\0asm\x0d\0\x01\0";

fn main() {
    if let Err(message) = run() {
        // The first line is what to do; cargo's own output follows.
        let first = message.lines().next().unwrap_or_default();
        println!("cargo:warning=cannot build the stock policies: {first}");
        eprintln!("{message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let repo = manifest_dir
        .ancestors()
        .nth(2)
        .ok_or("host/stock is not two levels below the repository root")?
        .to_path_buf();
    let policies = repo.join("policies");
    let ids = members(&policies)?;
    let planners_dir = policies.join("planners");
    let planner_ids = if planners_dir.is_dir() {
        members(&planners_dir)?
    } else {
        Vec::new()
    };

    // Everything the guests are built from. Only the members' directories of
    // policies/ are watched, not policies/target, which native `cargo test` fills.
    let mut watched: Vec<PathBuf> = [
        "policies/Cargo.toml",
        "policies/Cargo.lock",
        "guest-sdk",
        "host/plan/Cargo.toml",
        "host/plan/src",
        "wit",
        "Cargo.toml",
        "rust-toolchain.toml",
    ]
    .iter()
    .map(|path| repo.join(path))
    .collect();
    watched.extend(ids.iter().map(|id| policies.join(id)));
    watched.extend(planner_ids.iter().map(|id| planners_dir.join(id)));
    provkey_guest_build::rerun_if_changed(&watched);

    let names: Vec<&str> = ids.iter().chain(&planner_ids).map(String::as_str).collect();
    let built = provkey_guest_build::build(&policies.join("Cargo.toml"), &out_dir, &names)?;

    let (planners, policies): (Vec<_>, Vec<_>) = built
        .into_iter()
        .partition(|(id, _)| planner_ids.contains(id));
    let mut generated = String::from(
        "/// The stock policies, sorted by id.\npub static STOCK_POLICIES: &[StockPolicy] = &[\n",
    );
    embed(&mut generated, "StockPolicy", policies, &out_dir)?;
    generated.push_str(
        "];\n/// The stock planners, sorted by id.\npub static STOCK_PLANNERS: &[StockPlanner] = &[\n",
    );
    embed(&mut generated, "StockPlanner", planners, &out_dir)?;
    generated.push_str("];\n");
    let gen_rs = out_dir.join("gen.rs");
    fs::write(&gen_rs, generated).map_err(|err| format!("writing `{}`: {err}", gen_rs.display()))
}

/// Copies each component into `OUT_DIR` and appends its `include_bytes!` entry.
fn embed(
    generated: &mut String,
    type_name: &str,
    built: Vec<(String, PathBuf)>,
    out_dir: &Path,
) -> Result<(), String> {
    for (id, wasm) in built {
        let bytes =
            fs::read(&wasm).map_err(|err| format!("reading `{}`: {err}", wasm.display()))?;
        if !bytes.starts_with(COMPONENT_HEADER) {
            return Err(format!(
                "`{}` is not a component: the guests must be built for `{}`",
                wasm.display(),
                provkey_guest_build::GUEST_TARGET
            ));
        }
        // A copy in OUT_DIR, so that a later guest build cannot change what this
        // build of the crate embeds.
        let embedded = out_dir.join(format!("{id}.wasm"));
        fs::write(&embedded, &bytes)
            .map_err(|err| format!("writing `{}`: {err}", embedded.display()))?;
        let _ = writeln!(
            generated,
            "    {type_name} {{ id: {id:?}, bytes: include_bytes!({:?}) }},",
            embedded.display().to_string()
        );
    }
    Ok(())
}

/// The members of the policies/ workspace: its subdirectories with a Cargo.toml,
/// sorted.
fn members(policies: &Path) -> Result<Vec<String>, String> {
    let entries =
        fs::read_dir(policies).map_err(|err| format!("reading `{}`: {err}", policies.display()))?;
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
        .collect();
    ids.sort();
    if ids.is_empty() {
        return Err(format!("`{}` has no policy crates", policies.display()));
    }
    Ok(ids)
}
