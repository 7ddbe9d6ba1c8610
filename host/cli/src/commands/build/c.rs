//! Builds a C policy: the distribution's clang (`--target=wasm32-wasi`, wasi-libc,
//! wasm-ld, compiler-rt's wasm32 builtins) compiles the project's `*.c` files
//! with the C SDK (`guest-sdk/c`: `provkey.h`/`provkey.c`, the wit-bindgen C
//! bindings, cJSON) into a core module; then provkey embeds the WIT world and
//! makes the component in-process (wit-component), so neither the wit-bindgen
//! CLI nor wasm-tools is needed.
//!
//! Each missing tool is named with the Debian 12 package that provides it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, anyhow};

use super::{failed, run_tool};
use crate::exit::{CliError, CliResult};

/// The C SDK, the generated bindings and cJSON, written beside the build.
pub const C_SDK: [(&str, &str); 6] = [
    (
        "provkey.h",
        include_str!("../../../../../guest-sdk/c/provkey.h"),
    ),
    (
        "provkey.c",
        include_str!("../../../../../guest-sdk/c/provkey.c"),
    ),
    (
        "provkey_wit.h",
        include_str!("../../../../../guest-sdk/c/bindings/provkey_wit.h"),
    ),
    (
        "provkey_wit.c",
        include_str!("../../../../../guest-sdk/c/bindings/provkey_wit.c"),
    ),
    (
        "cJSON.h",
        include_str!("../../../../../guest-sdk/c/vendor/cjson/cJSON.h"),
    ),
    (
        "cJSON.c",
        include_str!("../../../../../guest-sdk/c/vendor/cjson/cJSON.c"),
    ),
];

/// Every C tool, in one Debian 12 command.
const APT_ALL: &str = "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32";

fn install(package: &str) -> String {
    format!(
        "install it with `apt-get install {package}` (Debian 12; every tool C policies need: `{APT_ALL}`)"
    )
}

/// The compiler: `$PROVKEY_CLANG`, else `clang` on PATH.
fn clang() -> PathBuf {
    std::env::var_os("PROVKEY_CLANG")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("clang"), PathBuf::from)
}

fn missing(what: &str, package: &str) -> CliError {
    CliError::bad_input(anyhow!("{what} is not installed")).with_help(install(package))
}

/// One line of clang's output for `args`, or a missing-clang error.
fn ask_clang(clang: &Path, args: &[&str], stdin: Option<&str>) -> CliResult<(bool, String)> {
    use std::io::Write as _;
    let mut cmd = Command::new(clang);
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(missing(
                &format!("`{}` (the C compiler)", clang.display()),
                "clang",
            ));
        }
        Err(err) => {
            return Err(CliError::bad_input(anyhow!(
                "cannot run `{}`: {err}",
                clang.display()
            )));
        }
    };
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.unwrap_or_default().as_bytes());
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("cannot run `{}`", clang.display()))
        .map_err(CliError::bad_input)?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((out.status.success(), text))
}

/// Checks the toolchain piece by piece, so that a missing one is named.
fn check_toolchain(clang: &Path) -> CliResult<()> {
    let target = "--target=wasm32-wasi";
    // clang itself.
    ask_clang(clang, &["--version"], None)?;
    // wasm-ld (Debian: lld): clang prints a bare name when it finds none.
    let (_, linker) = ask_clang(clang, &[target, "-print-prog-name=wasm-ld"], None)?;
    if !Path::new(&linker).is_absolute() || !Path::new(&linker).is_file() {
        return Err(missing("`wasm-ld` (the WebAssembly linker)", "lld"));
    }
    // wasi-libc's headers. `-fsyntax-only` writes no file: with `-o /dev/null`, a
    // failing clang run as root deletes `/dev/null` (it removes its outputs).
    let (ok, _) = ask_clang(
        clang,
        &[target, "-fsyntax-only", "-x", "c", "-"],
        Some("#include <stdlib.h>\n"),
    )?;
    if !ok {
        return Err(missing(
            "wasi-libc (the C library for `wasm32-wasi`)",
            "wasi-libc",
        ));
    }
    // compiler-rt's builtins for wasm32.
    let (_, builtins) = ask_clang(
        clang,
        &[target, "-rtlib=compiler-rt", "-print-libgcc-file-name"],
        None,
    )?;
    if !Path::new(&builtins).is_file() {
        return Err(missing(
            &format!("compiler-rt's wasm32 builtins (`{builtins}`)"),
            "libclang-rt-dev-wasm32",
        ));
    }
    Ok(())
}

/// The project's C sources: every `*.c` directly in `dir`, sorted.
fn sources(dir: &Path) -> CliResult<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read `{}`", dir.display()))
        .map_err(CliError::bad_input)?;
    let mut sources: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    for source in &sources {
        let name = source.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if C_SDK.iter().any(|(sdk, _)| *sdk == name) {
            return Err(CliError::bad_input(anyhow!(
                "`{}` has the name of a file of the C SDK",
                source.display()
            ))
            .with_help("rename it: provkey compiles the SDK's own copy"));
        }
    }
    Ok(sources)
}

pub fn build_c(dir: &Path, scratch: &Path, wit: &Path, partial: &Path) -> CliResult<()> {
    let clang = clang();
    check_toolchain(&clang)?;
    let sources = sources(dir)?;
    let sdk = scratch.join("c-sdk");
    std::fs::create_dir_all(&sdk)
        .and_then(|()| {
            C_SDK
                .iter()
                .try_for_each(|(name, text)| std::fs::write(sdk.join(name), text))
        })
        .context("cannot write the C SDK to a temporary directory")
        .map_err(CliError::bad_input)?;
    let core = scratch.join("core.wasm");
    let mut cmd = Command::new(&clang);
    cmd.args([
        "--target=wasm32-wasi",
        "-O2",
        "-std=c11",
        "-Wall",
        "-mexec-model=reactor",
        "-Wl,--strip-all",
    ])
    .arg("-I")
    .arg(&sdk)
    .arg("-I")
    .arg(dir)
    .arg("-o")
    .arg(&core)
    .args(&sources)
    .args(
        ["provkey.c", "provkey_wit.c", "cJSON.c"]
            .iter()
            .map(|f| sdk.join(f)),
    );
    run_tool(&mut cmd, "clang", &install("clang"))?;
    let module = std::fs::read(&core)
        .with_context(|| format!("clang wrote no `{}`", core.display()))
        .map_err(failed)?;
    let component = componentize(module, wit).map_err(|err| {
        let text = format!("{err:#}");
        let error = failed(err.context(format!(
            "cannot make a component of the C build of `{}`",
            dir.display()
        )));
        if text.contains("wasi_snapshot_preview1") {
            error.with_help(
                "a policy imports nothing: do not use files, clocks, randomness, the environment \
                 or stdout (printf) in a C policy",
            )
        } else {
            error
        }
    })?;
    std::fs::write(partial, component)
        .with_context(|| format!("cannot write `{}`", partial.display()))
        .map_err(CliError::bad_input)
}

/// Embeds the `policy` world of the WIT in `wit` into the core module and encodes
/// the component (what `wasm-tools component embed` + `component new` do).
pub fn componentize(mut module: Vec<u8>, wit: &Path) -> anyhow::Result<Vec<u8>> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(wit)?;
    let world = resolve.select_world(&[package], Some("policy"))?;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )?;
    wit_component::ComponentEncoder::default()
        .module(&module)?
        .validate(true)
        .encode()
}
