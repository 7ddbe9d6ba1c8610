//! `provkey check`: run policies over a plan and report the findings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use provkey_plan::Plan;
use provkey_runtime::{
    Limits, LoadedPolicy, PolicyError, PolicyOrigin, PolicyOutcome, Runtime, RuntimeError,
    RuntimeOptions,
};
use rayon::prelude::*;

use crate::exit::{CliError, CliResult, Exit};
use crate::report::{self, CheckReport, PlanSummary};

/// Plans larger than this are refused before parsing.
const MAX_PLAN_BYTES: usize = 1 << 30;
/// Configuration files larger than this are refused.
const MAX_CONFIG_BYTES: usize = 16 << 20;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The plan: provkey plan JSON, or the output of `terraform show -json` / `tofu show -json`.
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// A policy to run (repeatable): a component file, or the id of a stock policy.
    /// Without any, the whole embedded stock set runs.
    #[arg(long = "policy", value_name = "PATH.wasm|ID")]
    pub policies: Vec<PathBuf>,
    /// A policy's configuration, as `POLICY_ID=FILE.json` (repeatable).
    #[arg(long = "config", value_name = "POLICY_ID=FILE", value_parser = parse_config_arg)]
    pub configs: Vec<(String, PathBuf)>,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Limits and cache settings shared by every command that runs guests.
#[derive(Args, Debug)]
pub struct RuntimeArgs {
    /// Time limit for each guest call, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub deadline_ms: u64,
    /// Memory limit for each guest, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub memory_mib: usize,
    /// Limit on what a guest may return, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 16)]
    pub output_mib: usize,
    /// Where compiled components are cached [default: $PROVKEY_CACHE_DIR or the user cache dir].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile every component, and keep nothing on disk.
    #[arg(long)]
    pub no_cache: bool,
}

impl RuntimeArgs {
    pub fn build(&self) -> CliResult<Arc<Runtime>> {
        if self.deadline_ms == 0 || self.memory_mib == 0 || self.output_mib == 0 {
            return Err(CliError::bad_input(anyhow!(
                "`--deadline-ms`, `--memory-mib` and `--output-mib` must be greater than 0"
            )));
        }
        let limits = Limits {
            deadline: Duration::from_millis(self.deadline_ms),
            memory_bytes: self.memory_mib.saturating_mul(1 << 20),
            output_bytes: self.output_mib.saturating_mul(1 << 20),
            ..Limits::default()
        };
        let cache_dir = if self.no_cache {
            None
        } else {
            self.cache_dir
                .clone()
                .or_else(provkey_runtime::CompileCache::default_dir)
        };
        Runtime::new(RuntimeOptions { limits, cache_dir }).map_err(|err| CliError {
            exit: Exit::PolicyFailed,
            error: err.into(),
            help: None,
        })
    }
}

fn parse_config_arg(arg: &str) -> Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((id, path)) if !id.is_empty() && !path.is_empty() => {
            Ok((id.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("`{arg}` is not `POLICY_ID=FILE`")),
    }
}

pub fn execute(args: CheckArgs) -> CliResult<Exit> {
    let run = run_check(&args.plan, &args.policies, &args.configs, &args.runtime)?;
    let printed = match args.format {
        Format::Text => report::text::print(&run.report, &run.plan),
        Format::Json => report::json::print(&run.report),
    };
    printed.map_err(|err| CliError::bad_input(anyhow!("cannot write the report: {err}")))?;
    Ok(run.report.exit)
}

/// Everything a check produced, for commands that act on the verdict (`seal`).
#[allow(dead_code, reason = "the sealing commands read the rest")]
pub struct CheckRun {
    pub plan: Plan,
    /// The plan file's bytes, exactly as read.
    pub plan_bytes: Vec<u8>,
    /// Each policy's configuration as given to it (JSON text; `{}` when none).
    pub configs: BTreeMap<String, String>,
    /// The policies that loaded (id, version, component digest, origin).
    pub loaded: Vec<LoadedPolicy>,
    /// One outcome per policy, loaded or not, sorted by id.
    pub outcomes: Vec<PolicyOutcome>,
    pub report: CheckReport,
}

/// Reads the plan and configurations, loads the policies and evaluates them.
/// Shared by `check` and every command that must run the same checks.
pub fn run_check(
    plan_path: &Path,
    policies: &[PathBuf],
    config_args: &[(String, PathBuf)],
    runtime_args: &RuntimeArgs,
) -> CliResult<CheckRun> {
    let (plan, plan_bytes) = read_plan(plan_path)?;
    let configs = read_configs(config_args)?;
    let runtime = runtime_args.build()?;
    let (loaded, mut failed) = load_policies(&runtime, policies)?;
    check_config_ids(&configs, &loaded)?;
    let mut outcomes = provkey_runtime::check_plan(&runtime, &plan, &loaded, &configs);
    outcomes.append(&mut failed);
    outcomes.sort_by(|a, b| a.id.cmp(&b.id));
    tracing::info!(
        cache_hits = runtime.cache().hits(),
        cache_misses = runtime.cache().misses(),
        "compilation cache: {} hit(s), {} miss(es)",
        runtime.cache().hits(),
        runtime.cache().misses()
    );
    let report = CheckReport::new(
        PlanSummary::new(plan_path, &plan, &plan_bytes),
        &plan,
        &outcomes,
    );
    Ok(CheckRun {
        plan,
        plan_bytes,
        configs,
        loaded,
        outcomes,
        report,
    })
}

/// Reads and parses the plan; every failure is exit 2 and names the file.
pub fn read_plan(path: &Path) -> CliResult<(Plan, Vec<u8>)> {
    let shown = path.display();
    let bytes = provkey_runtime::read_bounded(path, MAX_PLAN_BYTES).map_err(|err| match err {
        RuntimeError::Read { source, .. } => {
            CliError::bad_input(anyhow!(source)).with_help("check the path given to `--plan`")
        }
        other => CliError::bad_input(other),
    });
    let bytes = bytes.map_err(|mut err| {
        err.error = err.error.context(format!("cannot read plan `{shown}`"));
        err
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|err| {
        CliError::bad_input(anyhow!(
            "cannot read plan `{shown}`: it is not UTF-8 text (invalid byte at offset {})",
            err.valid_up_to()
        ))
        .with_help("pass the JSON plan: `terraform show -json PLANFILE > plan.json`")
    })?;
    let plan = Plan::from_json(text).map_err(|err| {
        CliError::bad_input(anyhow!("cannot read plan `{shown}`: {err}")).with_help(
            "provkey reads its own plan JSON and `terraform show -json` / `tofu show -json` \
             output (format versions 0.1 to 1.2)",
        )
    })?;
    Ok((plan, bytes))
}

fn read_configs(args: &[(String, PathBuf)]) -> CliResult<BTreeMap<String, String>> {
    let mut configs = BTreeMap::new();
    for (id, path) in args {
        let shown = path.display();
        let bytes = provkey_runtime::read_bounded(path, MAX_CONFIG_BYTES).map_err(|err| {
            CliError::bad_input(anyhow::Error::new(err).context(format!(
                "cannot read the configuration of policy `{id}` from `{shown}`"
            )))
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|err| {
            CliError::bad_input(anyhow!(
                "configuration `{shown}` for policy `{id}` is not valid JSON: {err}"
            ))
        })?;
        if configs.insert(id.clone(), value.to_string()).is_some() {
            return Err(CliError::bad_input(anyhow!(
                "policy `{id}` is given `--config` twice"
            )));
        }
    }
    Ok(configs)
}

fn check_config_ids(configs: &BTreeMap<String, String>, loaded: &[LoadedPolicy]) -> CliResult<()> {
    for id in configs.keys() {
        if !loaded.iter().any(|p| &p.metadata.id == id) {
            let known: Vec<String> = loaded
                .iter()
                .map(|p| format!("`{}`", p.metadata.id))
                .collect();
            return Err(
                CliError::bad_input(anyhow!("`--config {id}=…` names no loaded policy"))
                    .with_help(format!("loaded policies: {}", known.join(", "))),
            );
        }
    }
    Ok(())
}

/// Loads the stock set or the given components, in parallel. A component that cannot
/// be loaded is reported as a failed policy (exit 3) while the others still run; a
/// path that cannot be read is bad input (exit 2).
pub fn load_policies(
    runtime: &Runtime,
    paths: &[PathBuf],
) -> CliResult<(Vec<LoadedPolicy>, Vec<PolicyOutcome>)> {
    let sources: Vec<PolicySource> = if paths.is_empty() {
        provkey_stock::STOCK_POLICIES
            .iter()
            .map(PolicySource::Stock)
            .collect()
    } else {
        paths
            .iter()
            .map(|path| PolicySource::resolve(path))
            .collect()
    };
    let results: Vec<(String, Result<LoadedPolicy, RuntimeError>)> = sources
        .par_iter()
        .map(|source| match source {
            PolicySource::Stock(stock) => (
                stock.id.to_string(),
                runtime.load_policy(stock.id, PolicyOrigin::Stock, stock.bytes),
            ),
            PolicySource::File(path) => {
                (path.display().to_string(), runtime.load_policy_file(path))
            }
        })
        .collect();
    let mut loaded: Vec<LoadedPolicy> = Vec::new();
    let mut failed = Vec::new();
    for (name, result) in results {
        match result {
            Ok(policy) => {
                if let Some(other) = loaded.iter().find(|p| p.metadata.id == policy.metadata.id) {
                    return Err(CliError::bad_input(anyhow!(
                        "two policies have the id `{}`: `{}` and `{name}`",
                        policy.metadata.id,
                        origin_text(&other.origin),
                    )));
                }
                loaded.push(policy);
            }
            Err(RuntimeError::Read { path, source }) => {
                return Err(CliError::bad_input(
                    anyhow::Error::new(source)
                        .context(format!("cannot read policy `{}`", path.display())),
                )
                .with_help("check the path given to `--policy`"));
            }
            Err(err) => failed.push(PolicyOutcome {
                id: name,
                metadata: None,
                digest: None,
                origin: None,
                result: Err(PolicyError::Load(err)),
                elapsed: Duration::ZERO,
            }),
        }
    }
    Ok((loaded, failed))
}

pub fn origin_text(origin: &PolicyOrigin) -> String {
    match origin {
        PolicyOrigin::Stock => "stock".to_string(),
        PolicyOrigin::File(path) => path.display().to_string(),
    }
}

/// Where a `--policy` value points.
enum PolicySource<'a> {
    Stock(&'static provkey_stock::StockPolicy),
    File(&'a Path),
}

impl<'a> PolicySource<'a> {
    /// A value that names a stock policy, and no file of that name, is the stock policy.
    fn resolve(value: &'a Path) -> Self {
        let stock = value.to_str().and_then(provkey_stock::find);
        match stock {
            Some(stock) if !value.exists() => PolicySource::Stock(stock),
            _ => PolicySource::File(value),
        }
    }
}
