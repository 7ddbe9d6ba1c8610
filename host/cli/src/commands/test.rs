//! `provkey test DIR`: runs a policy's test cases and compares its findings with the
//! expected ones.
//!
//! Layout: `DIR/tests/cases/<name>/` (or `DIR/cases/<name>/`) per case, holding
//! - `plan.json`: the plan (provkey plan JSON or `terraform show -json` output);
//! - `config.json` (optional): the policy's configuration, `{}` when absent;
//! - `expected.json`: either the list of expected findings, each an object with
//!   `rule` and optionally `address`, `attribute`, `severity`, `enforcement` and
//!   `message` (an absent `address` or `attribute` means none; an absent
//!   `severity`/`enforcement` means the rule's declared one; an absent `message` is
//!   not compared), or `{"error": "TEXT"}` when the policy must refuse the case (an
//!   invalid configuration, say) with an error containing TEXT.
//!
//! The policy under test is `--policy PATH.wasm|ID`, or else the first of
//! `DIR/build/policy.wasm` (what `provkey build DIR` writes), `DIR/policy.wasm`, and
//! the stock policy named like DIR (so `provkey test policies/immutable` tests the
//! embedded build of that source).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use provkey_plan::{Enforcement, Finding, PolicyMetadata, Severity};
use provkey_runtime::{LoadedPolicy, Runtime};
use serde::Deserialize;

use crate::commands::check::{self, RuntimeArgs};
use crate::commands::inspect;
use crate::exit::{CliError, CliResult, Exit};

/// Case files larger than this are refused.
const MAX_CASE_FILE_BYTES: usize = 64 << 20;

#[derive(Args, Debug)]
pub struct TestArgs {
    /// The policy's directory, holding `tests/cases/<name>/` (or `cases/<name>/`) with
    /// `plan.json`, `expected.json` and optionally `config.json`.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The policy to test: a component file or a stock policy id
    /// [default: DIR/build/policy.wasm, DIR/policy.wasm, or the stock policy named like DIR].
    #[arg(long, value_name = "PATH.wasm|ID")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// One expected finding.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    rule: String,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    attribute: Option<String>,
    #[serde(default)]
    severity: Option<Severity>,
    #[serde(default)]
    enforcement: Option<Enforcement>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expectation {
    Findings(Vec<Expected>),
    Error { error: String },
}

/// A case's outcome.
struct CaseResult {
    name: String,
    /// Empty when the case passed; otherwise the lines explaining why not.
    diff: Vec<String>,
}

pub fn execute(args: TestArgs) -> CliResult<Exit> {
    // `DIR/tests/cases` (a policy project) or `DIR/cases`.
    let nested = args.dir.join("tests").join("cases");
    let cases_dir = if nested.is_dir() {
        nested
    } else {
        args.dir.join("cases")
    };
    let names = case_names(&cases_dir)?;
    let runtime = args.runtime.build()?;
    let policy_arg = find_policy(&args.dir, args.policy.as_deref())?;
    let policy = inspect::load_one(&runtime, &policy_arg)?;
    inspect::emit(&format!(
        "testing policy `{}` {} ({}) with {} case(s) from `{}`\n",
        policy.metadata.id,
        policy.metadata.version,
        check::origin_text(&policy.origin),
        names.len(),
        cases_dir.display()
    ));
    let mut exercised = BTreeSet::new();
    let mut results = Vec::new();
    for name in &names {
        let result = run_case(
            &runtime,
            &policy,
            &cases_dir.join(name),
            name,
            &mut exercised,
        )?;
        results.push(result);
    }
    let mut out = String::new();
    for result in &results {
        if result.diff.is_empty() {
            let _ = writeln!(out, "PASS {}", result.name);
        } else {
            let _ = writeln!(out, "FAIL {}", result.name);
            for line in &result.diff {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    let unexercised: Vec<String> = policy
        .metadata
        .rules
        .iter()
        .filter(|rule| !exercised.contains(&rule.id))
        .map(|rule| format!("`{}`", rule.id))
        .collect();
    if unexercised.is_empty() {
        let _ = writeln!(out, "every rule is exercised by a case");
    } else {
        let _ = writeln!(out, "rules no case exercised: {}", unexercised.join(", "));
    }
    let failed = results.iter().filter(|r| !r.diff.is_empty()).count();
    let _ = writeln!(out, "{} passed, {failed} failed", results.len() - failed);
    inspect::emit(&out);
    Ok(if failed == 0 {
        Exit::Pass
    } else {
        Exit::MandatoryFindings
    })
}

fn case_names(cases_dir: &Path) -> CliResult<Vec<String>> {
    let entries = std::fs::read_dir(cases_dir).map_err(|err| {
        CliError::bad_input(anyhow!("cannot read `{}`: {err}", cases_dir.display())).with_help(
            "put each test case in its own directory: `DIR/tests/cases/<name>/` with \
             `plan.json`, `expected.json` and optionally `config.json`",
        )
    })?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(
            CliError::bad_input(anyhow!("`{}` holds no test case", cases_dir.display()))
                .with_help("add a directory `cases/<name>/` with `plan.json` and `expected.json`"),
        );
    }
    Ok(names)
}

/// The policy to test: `--policy`, else a component in DIR, else the stock policy
/// named like DIR.
fn find_policy(dir: &Path, given: Option<&Path>) -> CliResult<PathBuf> {
    if let Some(given) = given {
        return Ok(given.to_path_buf());
    }
    for candidate in [dir.join("build/policy.wasm"), dir.join("policy.wasm")] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let name = std::fs::canonicalize(dir)
        .ok()
        .and_then(|dir| dir.file_name().and_then(|n| n.to_str()).map(str::to_string));
    if let Some(name) = name
        && provkey_stock::find(&name).is_some()
    {
        return Ok(PathBuf::from(name));
    }
    Err(
        CliError::bad_input(anyhow!("no policy to test in `{}`", dir.display())).with_help(
            "build it first (`provkey build DIR` writes `DIR/build/policy.wasm`), or name it \
         with `--policy PATH.wasm|ID`",
        ),
    )
}

fn read_text(path: &Path) -> CliResult<String> {
    let bytes = provkey_runtime::read_bounded(path, MAX_CASE_FILE_BYTES).map_err(|err| {
        CliError::bad_input(
            anyhow::Error::new(err).context(format!("cannot read `{}`", path.display())),
        )
    })?;
    String::from_utf8(bytes)
        .map_err(|_| CliError::bad_input(anyhow!("`{}` is not UTF-8 text", path.display())))
}

fn run_case(
    runtime: &Runtime,
    policy: &LoadedPolicy,
    dir: &Path,
    name: &str,
    exercised: &mut BTreeSet<String>,
) -> CliResult<CaseResult> {
    let (plan, _) = check::read_plan(&dir.join("plan.json"))?;
    let plan = std::sync::Arc::new(plan);
    let config_path = dir.join("config.json");
    let config = if config_path.exists() {
        let text = read_text(&config_path)?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|err| {
            CliError::bad_input(anyhow!(
                "`{}` is not valid JSON: {err}",
                config_path.display()
            ))
        })?;
        value.to_string()
    } else {
        "{}".to_string()
    };
    let expected_path = dir.join("expected.json");
    let expectation: Expectation =
        serde_json::from_str(&read_text(&expected_path)?).map_err(|err| {
            CliError::bad_input(anyhow!(
                "`{}` is neither a list of findings nor `{{\"error\": \"...\"}}`: {err}",
                expected_path.display()
            ))
            .with_help(
                "each expected finding is an object with `rule` and optionally `address`, \
                 `attribute`, `severity`, `enforcement` and `message`",
            )
        })?;
    let id = policy.metadata.id.clone();
    // The same order as `check`: the schema first, then the policy itself.
    let actual: Result<Vec<Finding>, String> = match &policy.metadata.config_schema {
        Some(schema) => {
            check::validate_config(&id, schema, &config).map_err(|err| format!("{:#}", err.error))
        }
        None => Ok(()),
    }
    .and_then(|()| {
        let configs = BTreeMap::from([(id.clone(), config.clone())]);
        let outcome =
            provkey_runtime::check_plan(runtime, &plan, std::slice::from_ref(policy), &configs)
                .into_iter()
                .next();
        match outcome {
            Some(outcome) => outcome.result.map_err(|err| err.to_string()),
            None => Err("the policy did not run".to_string()),
        }
    });
    let diff = match (expectation, actual) {
        (Expectation::Error { error }, Err(actual)) if actual.contains(&error) => Vec::new(),
        (Expectation::Error { error }, Err(actual)) => vec![
            format!("- error containing: {error}"),
            format!("+ error: {actual}"),
        ],
        (Expectation::Error { error }, Ok(findings)) => {
            exercised.extend(findings.iter().map(|f| f.rule.clone()));
            let mut diff = vec![format!("- error containing: {error}")];
            diff.push(format!("+ no error, {} finding(s)", findings.len()));
            diff.extend(findings.iter().map(|f| format!("+ {}", show_actual(f))));
            diff
        }
        (Expectation::Findings(_), Err(actual)) => vec![format!("+ error: {actual}")],
        (Expectation::Findings(expected), Ok(findings)) => {
            exercised.extend(expected.iter().map(|e| e.rule.clone()));
            compare(&policy.metadata, &expected, &findings)
        }
    };
    Ok(CaseResult {
        name: name.to_string(),
        diff,
    })
}

/// The lines of a diff between expected and actual findings (empty when they match).
fn compare(metadata: &PolicyMetadata, expected: &[Expected], actual: &[Finding]) -> Vec<String> {
    let mut unmatched: Vec<&Finding> = actual.iter().collect();
    let mut missing = Vec::new();
    for want in expected {
        match unmatched
            .iter()
            .position(|got| matches(metadata, want, got))
        {
            Some(index) => {
                unmatched.remove(index);
            }
            None => missing.push(want),
        }
    }
    let mut diff: Vec<String> = missing
        .iter()
        .map(|want| format!("- {}", show_expected(metadata, want)))
        .collect();
    diff.extend(
        unmatched
            .iter()
            .map(|got| format!("+ {}", show_actual(got))),
    );
    diff
}

fn declared(metadata: &PolicyMetadata, rule: &str) -> Option<(Severity, Enforcement)> {
    metadata
        .rules
        .iter()
        .find(|r| r.id == rule)
        .map(|r| (r.severity, r.enforcement))
}

fn matches(metadata: &PolicyMetadata, want: &Expected, got: &Finding) -> bool {
    let declared = declared(metadata, &want.rule);
    let severity = want.severity.or(declared.map(|d| d.0));
    let enforcement = want.enforcement.or(declared.map(|d| d.1));
    want.rule == got.rule
        && want.address == got.address
        && want.attribute == got.attribute
        && severity.is_none_or(|s| s == got.severity)
        && enforcement.is_none_or(|e| e == got.enforcement)
        && want.message.as_ref().is_none_or(|m| *m == got.message)
}

fn show(
    rule: &str,
    address: Option<&str>,
    attribute: Option<&str>,
    severity: Option<Severity>,
    enforcement: Option<Enforcement>,
    message: Option<&str>,
) -> String {
    let mut text = format!("{rule} at {}", address.unwrap_or("(plan)"));
    if let Some(attribute) = attribute {
        let _ = write!(text, " {attribute}");
    }
    let severity = severity.map_or("?", Severity::as_str);
    let enforcement = enforcement.map_or("?", Enforcement::as_str);
    let _ = write!(text, " [{severity}, {enforcement}]");
    if let Some(message) = message {
        let _ = write!(text, ": {message}");
    }
    text
}

fn show_expected(metadata: &PolicyMetadata, want: &Expected) -> String {
    let declared = declared(metadata, &want.rule);
    show(
        &want.rule,
        want.address.as_deref(),
        want.attribute.as_deref(),
        want.severity.or(declared.map(|d| d.0)),
        want.enforcement.or(declared.map(|d| d.1)),
        want.message.as_deref(),
    )
}

fn show_actual(got: &Finding) -> String {
    show(
        &got.rule,
        got.address.as_deref(),
        got.attribute.as_deref(),
        Some(got.severity),
        Some(got.enforcement),
        Some(&got.message),
    )
}
