//! The native floor: the stock policies' own Rust code compiled for the host,
//! over the same plan bytes, with the benchmark's configuration.
//!
//! This is "the same rules compiled natively, parsing the same bytes": the plan is
//! parsed once by `provkey_plan::Plan::from_json` (attribute values are parsed on
//! first use and shared by every policy), then the six policies run one after the
//! other on one thread, as `cargo test` runs them.

use provkey_plan::Plan;
use provkey_sdk::{Finding, Policy, testing};

use crate::findings::Key;

/// The stock policies of the benchmark and their configuration: ten rules (K = 10).
pub const CONFIGS: [(&str, &str); 6] = [
    ("immutable", "{}"),
    ("no-remote-shell", "{}"),
    (
        "required-tags",
        r#"{"tags": ["env", "team", "cost-center"]}"#,
    ),
    (
        "allowed-regions",
        r#"{"regions": ["eu-west-1", "eu-central-1"]}"#,
    ),
    ("destroy-budget", "{}"),
    ("create-before-destroy", "{}"),
];

/// The ten rules the benchmark's arms implement.
pub const RULES: [&str; 10] = [
    "no-update-in-place",
    "remote-shell-open",
    "remote-shell-undecidable",
    "missing-tags",
    "tags-unknown",
    "region-not-allowed",
    "region-unknown",
    "destroy-budget-exceeded",
    "stateful-destroy",
    "destroy-before-create",
];

/// The equivalent Rego, kept next to the harness.
pub const REGO: &str = include_str!("../rego/stock.rego");

/// Why the floor could not check a plan.
#[derive(Debug)]
pub struct FloorError(pub String);

impl std::fmt::Display for FloorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FloorError {}

/// Parses `text` and runs the six policies natively.
pub fn check(text: &str) -> Result<Vec<Finding>, FloorError> {
    let plan = Plan::from_json(text).map_err(|err| FloorError(err.to_string()))?;
    check_plan(&plan)
}

/// Runs the six policies natively over a parsed plan.
pub fn check_plan(plan: &Plan) -> Result<Vec<Finding>, FloorError> {
    let mut findings = Vec::new();
    for (id, config) in CONFIGS {
        findings.extend(check_one(plan, id, config)?);
    }
    Ok(findings)
}

/// Runs one of the benchmark's stock policies natively.
pub fn check_one(plan: &Plan, id: &str, config: &str) -> Result<Vec<Finding>, FloorError> {
    match id {
        "immutable" => run::<immutable::Immutable>(plan, config),
        "no-remote-shell" => run::<no_remote_shell::NoRemoteShell>(plan, config),
        "required-tags" => run::<required_tags::RequiredTags>(plan, config),
        "allowed-regions" => run::<allowed_regions::AllowedRegions>(plan, config),
        "destroy-budget" => run::<destroy_budget::DestroyBudget>(plan, config),
        "create-before-destroy" => run::<create_before_destroy::CreateBeforeDestroy>(plan, config),
        other => {
            return Err(FloorError(format!(
                "`{other}` is not a policy of the benchmark"
            )));
        }
    }
    .map_err(|err| FloorError(format!("policy `{id}`: {err}")))
}

fn run<P: Policy>(plan: &Plan, config: &str) -> Result<Vec<Finding>, provkey_sdk::Error> {
    testing::evaluate::<P>(plan, config)
}

/// The comparison keys of the floor's findings.
pub fn keys(findings: &[Finding]) -> Vec<Key> {
    findings
        .iter()
        .map(|f| {
            (
                f.rule.clone(),
                f.address.clone().unwrap_or_else(|| "-".to_string()),
            )
        })
        .collect()
}

/// The `provkey-floor` process: reads the plan named by the first argument, runs
/// the rules, prints the number of findings and their digest; exit 1 when there is
/// any, 2 on a bad argument, 3 when the rules fail.
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a process's output"
)]
pub fn process_main() -> std::process::ExitCode {
    use std::process::ExitCode;

    use crate::findings::{digest, normalize};

    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: provkey-floor PLAN.json");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("error: cannot read `{}`: {err}", path.to_string_lossy());
            return ExitCode::from(2);
        }
    };
    match check(&text) {
        Ok(findings) => {
            let keys = normalize(keys(&findings));
            println!("{} {}", keys.len(), digest(&keys));
            ExitCode::from(u8::from(!keys.is_empty()))
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(3)
        }
    }
}
