//! `provkey new policy NAME --lang rust|python|js|c`: writes a policy project that
//! builds (`provkey build`) and passes its own tests as generated.
//!
//! The templates are the files under `guest-sdk/templates/`, embedded in the
//! binary; `{{name}}` becomes the policy's id. Python and JavaScript projects get
//! a copy of their SDK (`provkey_policy.py`, `provkey.js`), so that their native
//! tests run with nothing else installed. C projects are tested with `provkey
//! test` on their `tests/cases/`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use clap::{Args, Subcommand};

use crate::commands::build::{JS_SDK, Lang, PYTHON_SDK};
use crate::exit::{CliError, CliResult, Exit};

#[derive(Args, Debug)]
pub struct NewArgs {
    #[command(subcommand)]
    pub what: NewWhat,
}

#[derive(Subcommand, Debug)]
pub enum NewWhat {
    /// A policy project.
    Policy(NewPolicyArgs),
}

#[derive(Args, Debug)]
pub struct NewPolicyArgs {
    /// The policy's id (kebab-case), also the project's directory name.
    pub name: String,
    /// The language to write it in.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
    /// Where to create the project [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// The provkey SDK crate for a Rust project [default: the SDK this binary was built with].
    #[arg(long, value_name = "DIR")]
    pub sdk_path: Option<PathBuf>,
}

const PLAN_FIXTURE: &str = include_str!("../../../../guest-sdk/templates/common/plan.json");

/// The files of a project of `lang`, as (path, text) with placeholders.
fn template(lang: Lang) -> Vec<(&'static str, &'static str)> {
    match lang {
        Lang::Rust => vec![
            (
                "Cargo.toml",
                include_str!("../../../../guest-sdk/templates/rust/Cargo.toml"),
            ),
            (
                "rust-toolchain.toml",
                include_str!("../../../../guest-sdk/templates/rust/rust-toolchain.toml"),
            ),
            (
                ".gitignore",
                include_str!("../../../../guest-sdk/templates/rust/gitignore"),
            ),
            (
                "src/lib.rs",
                include_str!("../../../../guest-sdk/templates/rust/src/lib.rs"),
            ),
        ],
        Lang::Python => vec![
            (
                "app.py",
                include_str!("../../../../guest-sdk/templates/python/app.py"),
            ),
            (
                "test_app.py",
                include_str!("../../../../guest-sdk/templates/python/test_app.py"),
            ),
            (
                ".gitignore",
                include_str!("../../../../guest-sdk/templates/python/gitignore"),
            ),
            ("provkey_policy.py", PYTHON_SDK),
            ("fixtures/plan.json", PLAN_FIXTURE),
        ],
        Lang::Js => vec![
            (
                "policy.js",
                include_str!("../../../../guest-sdk/templates/js/policy.js"),
            ),
            (
                "policy.test.js",
                include_str!("../../../../guest-sdk/templates/js/policy.test.js"),
            ),
            (
                "package.json",
                include_str!("../../../../guest-sdk/templates/js/package.json"),
            ),
            (
                ".gitignore",
                include_str!("../../../../guest-sdk/templates/js/gitignore"),
            ),
            ("provkey.js", JS_SDK),
            ("fixtures/plan.json", PLAN_FIXTURE),
        ],
        Lang::C => vec![
            (
                "policy.c",
                include_str!("../../../../guest-sdk/templates/c/policy.c"),
            ),
            (
                ".gitignore",
                include_str!("../../../../guest-sdk/templates/c/gitignore"),
            ),
            (
                "tests/cases/public-and-unknown/plan.json",
                include_str!(
                    "../../../../guest-sdk/templates/c/tests/cases/public-and-unknown/plan.json"
                ),
            ),
            (
                "tests/cases/public-and-unknown/expected.json",
                include_str!(
                    "../../../../guest-sdk/templates/c/tests/cases/public-and-unknown/expected.json"
                ),
            ),
            (
                "tests/cases/bad-config/plan.json",
                include_str!("../../../../guest-sdk/templates/c/tests/cases/bad-config/plan.json"),
            ),
            (
                "tests/cases/bad-config/config.json",
                include_str!(
                    "../../../../guest-sdk/templates/c/tests/cases/bad-config/config.json"
                ),
            ),
            (
                "tests/cases/bad-config/expected.json",
                include_str!(
                    "../../../../guest-sdk/templates/c/tests/cases/bad-config/expected.json"
                ),
            ),
        ],
    }
}

pub fn execute(args: NewArgs) -> CliResult<Exit> {
    let NewWhat::Policy(args) = args.what;
    let dir = new_policy(&args)?;
    println!(
        "created the {} policy `{}` in {}\nnext: cd {} && provkey build .",
        lang_name(args.lang),
        args.name,
        dir.display(),
        dir.display()
    );
    Ok(Exit::Pass)
}

fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "Rust",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
        Lang::C => "C",
    }
}

fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Writes the project; returns its directory. Nothing is left behind on failure.
pub fn new_policy(args: &NewPolicyArgs) -> CliResult<PathBuf> {
    if !valid_name(&args.name) {
        return Err(CliError::bad_input(anyhow!(
            "`{}` is not a valid policy id",
            args.name
        ))
        .with_help("use kebab-case: lowercase letters, digits and single dashes, for example `required-labels`"));
    }
    let dir = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        return Err(
            CliError::bad_input(anyhow!("`{}` already exists", dir.display())).with_help(
                "choose another name, or pass `--path` to a directory that does not exist",
            ),
        );
    }
    let sdk = match &args.sdk_path {
        Some(path) => path.clone(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-sdk"),
    };
    let sdk = std::path::absolute(&sdk)
        .map(|p| p.canonicalize().unwrap_or(p))
        .context("cannot resolve the SDK path")
        .map_err(CliError::bad_input)?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create `{}`", parent.display()))
        .map_err(CliError::bad_input)?;
    // Written into a temporary sibling, then renamed into place.
    let staging = tempfile::Builder::new()
        .prefix(".provkey-new-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot write in `{}`", parent.display()))
        .map_err(CliError::bad_input)?;
    for (path, text) in template(args.lang) {
        let text = text
            .replace("{{name}}", &args.name)
            .replace("{{sdk_path}}", &sdk.display().to_string());
        let target = staging.path().join(path);
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p)
                .with_context(|| format!("cannot create `{}`", p.display()))
                .map_err(CliError::bad_input)?;
        }
        std::fs::write(&target, text)
            .with_context(|| format!("cannot write `{}`", target.display()))
            .map_err(CliError::bad_input)?;
    }
    let staged = staging.keep();
    if let Err(err) = std::fs::rename(&staged, &dir) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(CliError::bad_input(
            anyhow::Error::new(err).context(format!("cannot create `{}`", dir.display())),
        ));
    }
    Ok(dir)
}
