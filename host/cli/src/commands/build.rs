//! `provkey build DIR`: builds a policy project (Rust, Python, JavaScript or C)
//! into a component, with the language's own toolchain.
//!
//! The language is read from the project's files: `Cargo.toml` (Rust), `app.py`
//! (Python, componentize-py), `policy.js` (JavaScript, componentize-js),
//! `policy.c` (C, clang with wasi-libc: see `build/c.rs`). The WIT
//! contract and the Python and JavaScript SDKs are embedded in the binary and
//! written to a temporary directory for the build, so a project only needs its own
//! sources (a vendored copy of the SDK in the project wins over the embedded one).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, anyhow};
use clap::{Args, ValueEnum};

use crate::exit::{CliError, CliResult, Exit};

mod c;

/// The contract Python policies are built against: the plan crosses as one JSON
/// text (the runtime parses it natively, where lifting records goes through
/// interpreted glue) and values are read one member of every change per call.
pub const WIT_0_3: [(&str, &str); 2] = [
    (
        "types.wit",
        include_str!("../../../../wit/plan@0.3.0/types.wit"),
    ),
    (
        "worlds.wit",
        include_str!("../../../../wit/plan@0.3.0/worlds.wit"),
    ),
];
/// The contract JavaScript policies are built against: 0.3.0 with the findings
/// returned as UTF-8 bytes, which componentize-js's glue copies natively (a returned
/// string is measured one character at a time in interpreted code).
pub const WIT_0_5: [(&str, &str); 2] = [
    (
        "types.wit",
        include_str!("../../../../wit/plan@0.5.0/types.wit"),
    ),
    (
        "worlds.wit",
        include_str!("../../../../wit/plan@0.5.0/worlds.wit"),
    ),
];
/// The contract Rust policies are built against: values are read on demand through
/// `plan-view`, so a policy parses only what it reads, and the plan's changes cross
/// as numbers that point into one text.
pub const WIT_0_6: [(&str, &str); 2] = [
    (
        "types.wit",
        include_str!("../../../../wit/plan@0.6.0/types.wit"),
    ),
    (
        "worlds.wit",
        include_str!("../../../../wit/plan@0.6.0/worlds.wit"),
    ),
];
/// The contract of Python projects that vendor the 0.2.0 SDK.
pub const WIT_0_2: [(&str, &str); 2] = [
    (
        "types.wit",
        include_str!("../../../../wit/plan@0.2.0/types.wit"),
    ),
    (
        "worlds.wit",
        include_str!("../../../../wit/plan@0.2.0/worlds.wit"),
    ),
];
/// The contract C policies are built against: the C SDK's bindings are generated
/// from it (`guest-sdk/c/regenerate-bindings.sh`) and receive every value.
pub const WIT_0_1: [(&str, &str); 2] = [
    (
        "types.wit",
        include_str!("../../../../wit/plan@0.1.0/types.wit"),
    ),
    (
        "worlds.wit",
        include_str!("../../../../wit/plan@0.1.0/worlds.wit"),
    ),
];
/// The Python SDK (`guest-sdk/python`).
pub const PYTHON_SDK: &str = include_str!("../../../../guest-sdk/python/provkey_policy.py");
/// The JavaScript SDK (`guest-sdk/js`).
pub const JS_SDK: &str = include_str!("../../../../guest-sdk/js/provkey.js");
/// Drives componentize-js (its `jco componentize` command is not used).
const JS_DRIVER: &str = include_str!("../../../../guest-sdk/js/componentize.mjs");

/// The componentize-py version provkey is tested with.
pub const COMPONENTIZE_PY: &str = "0.25.1";
/// The componentize-js version provkey is tested with.
pub const COMPONENTIZE_JS: &str = "0.23.0";

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The policy project.
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Where to write the component [default: DIR/build/policy.wasm].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The project's language [default: detected from its files].
    #[arg(long, value_enum)]
    pub lang: Option<Lang>,
}

/// The languages a policy can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

impl Lang {
    /// The file that marks a project of this language.
    pub fn marker(self) -> &'static str {
        match self {
            Lang::Rust => "Cargo.toml",
            Lang::Python => "app.py",
            Lang::Js => "policy.js",
            Lang::C => "policy.c",
        }
    }

    /// The language and the tool that builds it, for progress lines.
    fn toolchain(self) -> &'static str {
        match self {
            Lang::Rust => "Rust, with cargo",
            Lang::Python => "Python, with componentize-py",
            Lang::Js => "JavaScript, with componentize-js",
            Lang::C => "C, with clang",
        }
    }

    fn detect(dir: &Path) -> Option<Lang> {
        [Lang::Rust, Lang::Python, Lang::Js, Lang::C]
            .into_iter()
            .find(|lang| dir.join(lang.marker()).is_file())
    }
}

pub fn execute(args: BuildArgs) -> CliResult<Exit> {
    let output = build(&args.dir, args.lang, args.output.as_deref())?;
    let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    println!("built {} ({size} bytes)", output.display());
    Ok(Exit::Pass)
}

/// Builds the project in `dir`; returns the component's path.
pub fn build(dir: &Path, lang: Option<Lang>, output: Option<&Path>) -> CliResult<PathBuf> {
    if !dir.is_dir() {
        return Err(
            CliError::bad_input(anyhow!("`{}` is not a directory", dir.display())).with_help(
                "pass the directory of a policy project (`provkey new policy NAME` makes one)",
            ),
        );
    }
    let lang = match lang.or_else(|| Lang::detect(dir)) {
        Some(lang) => lang,
        None => {
            return Err(CliError::bad_input(anyhow!(
                "`{}` is not a policy project: it has no `Cargo.toml`, `app.py`, `policy.js` or `policy.c`",
                dir.display()
            ))
            .with_help("run `provkey new policy NAME --lang rust|python|js|c` to make one"));
        }
    };
    let output = output.map_or_else(|| dir.join("build").join("policy.wasm"), Path::to_path_buf);
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create `{}`", parent.display()))
            .map_err(CliError::bad_input)?;
    }
    let scratch = tempfile::tempdir()
        .context("cannot create a temporary directory")
        .map_err(CliError::bad_input)?;
    let wit = scratch.path().join("wit");
    let wit_files = match lang {
        Lang::C => WIT_0_1,
        Lang::Rust => WIT_0_6,
        Lang::Js => WIT_0_5,
        Lang::Python => match vendored_python_sdk_before_0_3(dir) {
            None => WIT_0_3,
            Some((version, wit_files)) => {
                tracing::warn!(
                    "`{}` vendors a Python SDK older than provkey:plan@0.3.0: building against \
                     {version} (delete the project's `provkey_policy.py` to use the embedded SDK)",
                    dir.display()
                );
                wit_files
            }
        },
    };
    std::fs::create_dir_all(&wit)
        .and_then(|()| {
            wit_files
                .iter()
                .try_for_each(|(name, text)| std::fs::write(wit.join(name), text))
        })
        .context("cannot write the WIT contract to a temporary directory")
        .map_err(CliError::bad_input)?;
    // Written beside the output first, then renamed: a failed build leaves no file.
    let partial = output.with_extension("wasm.partial");
    let step = crate::progress::Step::start(format!(
        "building `{}` ({})",
        dir.display(),
        lang.toolchain()
    ));
    match lang {
        Lang::Rust => build_rust(dir, &partial)?,
        Lang::Python => build_python(dir, scratch.path(), &wit, &partial)?,
        Lang::Js => build_js(dir, scratch.path(), &wit, &partial)?,
        Lang::C => c::build_c(dir, scratch.path(), &wit, &partial)?,
    }
    drop(step);
    let bytes = std::fs::read(&partial)
        .with_context(|| format!("the build wrote no `{}`", partial.display()))
        .map_err(failed)?;
    if !bytes.starts_with(b"\0asm\x0d\0\x01\0") {
        let _ = std::fs::remove_file(&partial);
        return Err(failed(anyhow!(
            "the build of `{}` did not produce a component",
            dir.display()
        )));
    }
    crate::output_file::move_into_place(&partial, &output, &bytes)
        .with_context(|| format!("cannot write `{}`", output.display()))
        .map_err(CliError::bad_input)?;
    Ok(output)
}

fn failed(error: anyhow::Error) -> CliError {
    CliError {
        exit: Exit::PolicyFailed,
        error,
        help: None,
    }
}

/// Runs a build tool; a missing tool is an error that says how to install it.
fn run_tool(cmd: &mut Command, tool: &str, install: &str) -> CliResult<()> {
    tracing::info!("running {cmd:?}");
    let out = match cmd.output() {
        Ok(out) => out,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(
                CliError::bad_input(anyhow!("`{tool}` is not installed (or not on PATH)"))
                    .with_help(install.to_string()),
            );
        }
        Err(err) => return Err(CliError::bad_input(anyhow!("cannot run `{tool}`: {err}"))),
    };
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    Err(failed(anyhow!(
        "`{tool}` failed ({}):\n{}{}",
        out.status,
        stdout.trim_end(),
        stderr.trim_end()
    )))
}

fn build_rust(dir: &Path, partial: &Path) -> CliResult<()> {
    let manifest = dir.join("Cargo.toml");
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("target"));
    run_tool(
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", &target_dir),
        "cargo",
        "install Rust with rustup, then `rustup target add wasm32-wasip2`",
    )?;
    let release = target_dir.join("wasm32-wasip2").join("release");
    let name = package_name(&manifest).map_err(CliError::bad_input)?;
    let built = release.join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::copy(&built, partial)
        .with_context(|| format!("cargo built no `{}`", built.display()))
        .map_err(failed)?;
    Ok(())
}

/// The `name` of `[package]` in a Cargo.toml (the first `name = "..."` line).
fn package_name(manifest: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("cannot read `{}`", manifest.display()))?;
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("name"))
        .filter_map(|rest| rest.trim().strip_prefix('='))
        .map(|value| value.trim().trim_matches('"').to_string())
        .next()
        .ok_or_else(|| anyhow!("`{}` has no package name", manifest.display()))
}

/// The contract (version, WIT) of a `provkey_policy.py` the project keeps from
/// before 0.3.0 (it wins over the embedded SDK): 0.2.0 when it reads values
/// through `plan_view`, 0.1.0 before that. None without one, or for a copy that
/// names provkey:plan@0.3.0.
fn vendored_python_sdk_before_0_3(
    dir: &Path,
) -> Option<(&'static str, [(&'static str, &'static str); 2])> {
    let sdk = std::fs::read_to_string(dir.join("provkey_policy.py")).ok()?;
    if sdk.contains("provkey:plan@0.3.0") {
        return None;
    }
    Some(if sdk.contains("plan_view") {
        ("0.2.0", WIT_0_2)
    } else {
        ("0.1.0", WIT_0_1)
    })
}

fn build_python(dir: &Path, scratch: &Path, wit: &Path, partial: &Path) -> CliResult<()> {
    let sdk = scratch.join("sdk");
    std::fs::create_dir_all(&sdk)
        .and_then(|()| std::fs::write(sdk.join("provkey_policy.py"), PYTHON_SDK))
        .context("cannot write the Python SDK to a temporary directory")
        .map_err(CliError::bad_input)?;
    run_tool(
        Command::new("componentize-py")
            .arg("-d")
            .arg(wit)
            .args(["-w", "policy", "componentize", "app", "-p"])
            .arg(dir)
            .arg("-p")
            .arg(&sdk)
            .arg("-o")
            .arg(absolute(partial)?),
        "componentize-py",
        &format!("install it with `pip install componentize-py=={COMPONENTIZE_PY}`"),
    )
}

fn build_js(dir: &Path, scratch: &Path, wit: &Path, partial: &Path) -> CliResult<()> {
    let componentize = find_componentize_js(dir).ok_or_else(|| {
        CliError::bad_input(anyhow!(
            "`@bytecodealliance/componentize-js` is not installed for `{}`",
            dir.display()
        ))
        .with_help(format!(
            "run `npm install @bytecodealliance/componentize-js@{COMPONENTIZE_JS}` in the project \
             (or set PROVKEY_NODE_MODULES to a `node_modules` folder that has it)"
        ))
    })?;
    // componentize-js takes one module: the policy with the SDK inlined.
    let source = std::fs::read_to_string(dir.join("policy.js"))
        .with_context(|| format!("cannot read `{}`", dir.join("policy.js").display()))
        .map_err(CliError::bad_input)?;
    let bundled = scratch.join("policy.js");
    std::fs::write(&bundled, bundle_js(&source))
        .and_then(|()| std::fs::write(scratch.join("componentize.mjs"), JS_DRIVER))
        .context("cannot write the JavaScript build files to a temporary directory")
        .map_err(CliError::bad_input)?;
    run_tool(
        Command::new("node")
            .arg(scratch.join("componentize.mjs"))
            .arg(componentize.join("src").join("componentize.js"))
            .arg(&bundled)
            .arg(wit)
            .arg(absolute(partial)?),
        "node",
        "install Node.js 18 or later (Debian: `apt-get install nodejs npm`)",
    )
}

/// The SDK's text followed by the policy's, without the policy's import of the SDK
/// (an `import` statement, on one line or several, from `./provkey.js`).
pub fn bundle_js(policy: &str) -> String {
    // The SDK reads values through these imports (see `fromWit` in provkey.js).
    let mut out = String::from(
        "import { value as planViewValue, values as planViewValues } \
         from \"provkey:plan/plan-view@0.5.0\";\n",
    );
    out.push_str(JS_SDK);
    out.push('\n');
    let mut statement: Vec<&str> = Vec::new();
    for line in policy.lines() {
        if statement.is_empty() && !line.trim_start().starts_with("import ") {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        statement.push(line);
        let text = statement.join("\n");
        if !(text.contains(" from ") || text.trim_end().ends_with(';')) {
            continue;
        }
        if text.contains("\"./provkey.js\"") || text.contains("'./provkey.js'") {
            // Keep the line numbers of the rest of the policy.
            out.push_str(&"\n".repeat(statement.len()));
        } else {
            out.push_str(&text);
            out.push('\n');
        }
        statement.clear();
    }
    out.push_str(&statement.join("\n"));
    out
}

/// `node_modules/@bytecodealliance/componentize-js`, from `PROVKEY_NODE_MODULES`,
/// the project or one of its parents, or the SDK's own toolchain folder.
fn find_componentize_js(dir: &Path) -> Option<PathBuf> {
    let package = Path::new("@bytecodealliance").join("componentize-js");
    let from_env = std::env::var_os("PROVKEY_NODE_MODULES")
        .filter(|v| !v.is_empty())
        .map(|v| PathBuf::from(v).join(&package));
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let ancestors = dir
        .ancestors()
        .map(|d| d.join("node_modules").join(&package));
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../guest-sdk/js/node_modules")
        .join(&package);
    from_env
        .into_iter()
        .chain(ancestors)
        .chain(std::iter::once(sdk))
        .find(|p| p.join("package.json").is_file())
}

fn absolute(path: &Path) -> CliResult<PathBuf> {
    std::path::absolute(path)
        .with_context(|| format!("cannot resolve `{}`", path.display()))
        .map_err(CliError::bad_input)
}
