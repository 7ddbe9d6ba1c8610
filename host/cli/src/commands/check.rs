//! `provkey check`: run policies over a plan and report the findings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use provkey_core::trust::TrustRoot;
use provkey_plan::Plan;
use provkey_runtime::{
    Limits, LoadedPolicy, PolicyError, PolicyOrigin, PolicyOutcome, Runtime, RuntimeError,
    RuntimeOptions,
};
use rayon::prelude::*;

use crate::exit::{CliError, CliResult, Exit};
use crate::policy_set::{self, review, review::Review};
use crate::report::{self, CheckReport, PlanSummary};

/// Plans larger than this are refused before parsing.
const MAX_PLAN_BYTES: usize = 1 << 30;
/// How much the deadline grows per MiB of plan (see `RuntimeArgs::build_for_input`).
const DEADLINE_MS_PER_INPUT_MIB: u64 = 40;
/// A guest's memory limit is at least this many times the plan's size, plus 64 MiB.
const MEMORY_PER_INPUT_BYTE: usize = 4;
/// How much a guest may return grows by this many bytes per byte of plan, on top of
/// `--output-mib`: a policy may well report on every change, at about a change's
/// length, and the host's copy of each finding record costs about as much again.
const OUTPUT_PER_INPUT_BYTE: usize = 2;
/// Configuration files larger than this are refused.
const MAX_CONFIG_BYTES: usize = 16 << 20;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The plan: provkey plan JSON, or the output of `terraform show -json` / `tofu show -json`
    /// (`-` reads it from standard input).
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// A policy to run (repeatable): a component file, a directory (every `.wasm`
    /// component in it), or the id of a stock policy. Without any, the policy set
    /// file `provkey.toml` of the current directory, or else the whole embedded
    /// stock set, runs.
    #[arg(long = "policy", value_name = "PATH.wasm|ID")]
    pub policies: Vec<PathBuf>,
    /// A policy's configuration, as `POLICY_ID=FILE.json` (repeatable).
    #[arg(long = "config", value_name = "POLICY_ID=FILE", value_parser = parse_config_arg)]
    pub configs: Vec<(String, PathBuf)>,
    /// A report to write (repeatable): `FORMAT` prints it on standard output (at most
    /// one), `FORMAT=FILE` writes it to FILE. Formats: text, json, sarif, junit,
    /// markdown, github. Default: `text`.
    #[arg(long = "format", value_name = "FORMAT[=FILE]", value_parser = parse_format_arg)]
    pub formats: Vec<ReportTarget>,
    /// The trust root that verifies organization sets, waivers and overrides
    /// (default: `trust = …` of the policy set file).
    #[arg(long, value_name = "TRUST_ROOT")]
    pub trust: Option<PathBuf>,
    /// The Terraform configuration the plan was made from: SARIF, GitHub annotations
    /// and markdown then point each finding at the `.tf` line that declares its
    /// resource (through local modules) instead of at the plan file. Default: the
    /// current directory, when it holds `.tf` files and the plan is Terraform's.
    #[arg(long, value_name = "DIR")]
    pub source_dir: Option<PathBuf>,
    #[command(flatten)]
    pub review: ReviewArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// The policy set, waivers and overrides of a review (shared by `check` and `seal`).
#[derive(Args, Debug, Clone, Default)]
pub struct ReviewArgs {
    /// The policy set file (default: `provkey.toml` in the current directory, when
    /// present and no `--policy` is given); its `provkey.lock` must be beside it.
    #[arg(long = "policy-set", value_name = "FILE", conflicts_with_all = ["policies", "configs"])]
    pub policy_set: Option<PathBuf>,
    /// A waivers file signed by an approver (`FILE.minisig` beside it; default:
    /// `waivers = …` of the policy set file).
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// An approver's signed override of soft-mandatory findings on this plan
    /// (repeatable; written by `provkey policy override`).
    #[arg(long = "override", value_name = "SIGNED_OVERRIDE")]
    pub overrides: Vec<PathBuf>,
}

pub use crate::report::Format;

/// Where one report goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTarget {
    pub format: Format,
    /// `None`: standard output.
    pub path: Option<PathBuf>,
}

fn parse_format_arg(arg: &str) -> Result<ReportTarget, String> {
    let (name, path) = match arg.split_once('=') {
        Some((name, path)) => (name, Some(path)),
        None => (arg, None),
    };
    let Some(format) = Format::parse(name) else {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        return Err(format!(
            "`{name}` is not a report format (formats: {}; write one to a file with `FORMAT=FILE`)",
            names.join(", ")
        ));
    };
    match path {
        Some("") => Err(format!("`{arg}` names no file after `=`")),
        Some(path) => Ok(ReportTarget {
            format,
            path: Some(PathBuf::from(path)),
        }),
        None => Ok(ReportTarget { format, path: None }),
    }
}

/// Refuses two reports on standard output or two reports in one file.
fn check_targets(targets: &[ReportTarget]) -> CliResult<()> {
    let stdout: Vec<&str> = targets
        .iter()
        .filter(|t| t.path.is_none())
        .map(|t| t.format.name())
        .collect();
    if stdout.len() > 1 {
        return Err(CliError::bad_input(anyhow!(
            "{} reports would go to standard output (`{}`)",
            stdout.len(),
            stdout.join("`, `")
        ))
        .with_help("write all but one to files: `--format sarif=provkey.sarif`"));
    }
    for (i, target) in targets.iter().enumerate() {
        if let Some(path) = &target.path
            && targets[..i].iter().any(|t| t.path.as_ref() == Some(path))
        {
            return Err(CliError::bad_input(anyhow!(
                "two reports would be written to `{}`",
                path.display()
            ))
            .with_help("give each `--format FORMAT=FILE` its own file"));
        }
    }
    Ok(())
}

/// Renders every report, writes the files (each to a temporary file beside it,
/// renamed into place only once all are written; a device or FIFO such as
/// `/dev/null` is written in place) and then prints the one for standard output.
fn write_reports(targets: &[ReportTarget], run: &CheckRun) -> CliResult<()> {
    let write_error = |path: &Path, format: Format, err: &dyn std::fmt::Display| {
        CliError::bad_input(anyhow!(
            "cannot write the {} report to `{}`: {err}",
            format.name(),
            path.display()
        ))
        .with_help("check that the directory exists and is writable")
    };
    let mut rendered = Vec::new();
    for target in targets {
        let Some(path) = &target.path else {
            continue;
        };
        let bytes = report::render(target.format, &run.report, &run.plan)
            .map_err(|err| write_error(path, target.format, &err))?;
        rendered.push((path, target.format, bytes));
    }
    let mut staged = Vec::new();
    for (path, format, bytes) in &rendered {
        let file = crate::output_file::stage(path, bytes)
            .map_err(|err| write_error(path, *format, &err))?;
        staged.push((file, path, *format));
    }
    for (file, path, format) in staged {
        file.commit()
            .map_err(|err| write_error(path, format, &err))?;
    }
    if let Some(target) = targets.iter().find(|t| t.path.is_none()) {
        let printed = match target.format {
            Format::Text => report::text::print(&run.report, &run.plan),
            // Streamed: a report of thousands of findings is never held whole.
            format => {
                let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
                report::write(format, &run.report, &run.plan, &mut out)
                    .and_then(|()| std::io::Write::flush(&mut out))
            }
        };
        printed.map_err(|err| CliError::bad_input(anyhow!("cannot write the report: {err}")))?;
    }
    Ok(())
}

/// Limits and cache settings shared by every command that runs guests.
#[derive(Args, Debug, Clone)]
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
    /// The cache directory in use (`None` with `--no-cache`).
    pub fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            None
        } else {
            self.cache_dir
                .clone()
                .or_else(provkey_runtime::CompileCache::default_dir)
        }
    }

    pub fn build(&self) -> CliResult<Arc<Runtime>> {
        self.build_for_input(0)
    }

    /// Like [`RuntimeArgs::build`], with the memory limit, the deadline and the output
    /// limit grown for an input of `input_bytes`: the limits stop runaway guests, and
    /// a large plan is not one. Each guest holds its own copy of the plan, so memory
    /// grows with it, and findings grow with the number of changes.
    pub fn build_for_input(&self, input_bytes: usize) -> CliResult<Arc<Runtime>> {
        if self.deadline_ms == 0 || self.memory_mib == 0 || self.output_mib == 0 {
            return Err(CliError::bad_input(anyhow!(
                "`--deadline-ms`, `--memory-mib` and `--output-mib` must be greater than 0"
            )));
        }
        let input_mib = u64::try_from(input_bytes >> 20).unwrap_or(u64::MAX);
        let limits = Limits {
            deadline: Duration::from_millis(
                self.deadline_ms
                    .saturating_add(input_mib.saturating_mul(DEADLINE_MS_PER_INPUT_MIB)),
            ),
            memory_bytes: self.memory_mib.saturating_mul(1 << 20).max(
                input_bytes
                    .saturating_mul(MEMORY_PER_INPUT_BYTE)
                    .saturating_add(64 << 20),
            ),
            output_bytes: self
                .output_mib
                .saturating_mul(1 << 20)
                .saturating_add(input_bytes.saturating_mul(OUTPUT_PER_INPUT_BYTE)),
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
    let mut targets = args.formats.clone();
    if targets.is_empty() && !crate::console::quiet() {
        targets.push(ReportTarget {
            format: Format::Text,
            path: None,
        });
    }
    check_targets(&targets)?;
    let policies = expand_policy_dirs(&args.policies)?;
    if (!policies.is_empty() || !args.configs.is_empty())
        && args.review.policy_set.is_none()
        && Path::new(policy_set::SET_FILE_NAME).is_file()
    {
        crate::console::note(&format!(
            "note: `{}` in the current directory is not used: `--policy`/`--config` choose the policies\n\
             help: drop them to check with the policy set, or pass `--policy-set FILE` to name it",
            policy_set::SET_FILE_NAME
        ));
    }
    // An explicit configuration that does not read is refused before anything runs.
    let sources = match &args.source_dir {
        Some(dir) => Some(provkey_source_map::SourceMap::load(dir).map_err(|err| {
            let help = err.help();
            CliError::bad_input(anyhow::Error::new(err)).with_help(help)
        })?),
        None => None,
    };
    let mut run = run_check_with(
        &args.plan,
        &policies,
        &args.configs,
        &args.runtime,
        &args.review,
        args.trust.as_deref(),
    )?;
    run.report.plan.sources = match sources {
        Some(sources) => Some(sources),
        None if run.plan.source == provkey_plan::PlanSource::Terraform => default_sources(),
        None => None,
    };
    let started = std::time::Instant::now();
    write_reports(&targets, &run)?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis(),
        "wrote the reports"
    );
    let exit = run.report.exit;
    // The process ends next: freeing the plan, every parsed value and the compiled
    // components one by one would only delay the exit (a tenth of a cold check).
    std::mem::forget(run);
    Ok(exit)
}

/// `--policy` arguments with each directory replaced by the `.wasm` components in it
/// (in name order); files and stock ids are kept as given.
fn expand_policy_dirs(policies: &[PathBuf]) -> CliResult<Vec<PathBuf>> {
    let mut expanded = Vec::with_capacity(policies.len());
    for path in policies {
        if !path.is_dir() {
            expanded.push(path.clone());
            continue;
        }
        let entries = std::fs::read_dir(path).map_err(|err| {
            CliError::bad_input(anyhow!(
                "cannot read the policy directory `{}`: {err}",
                path.display()
            ))
        })?;
        let mut components: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| p.extension().is_some_and(|ext| ext == "wasm") && p.is_file())
            .collect();
        if components.is_empty() {
            return Err(CliError::bad_input(anyhow!(
                "the policy directory `{}` holds no `.wasm` component",
                path.display()
            ))
            .with_help("build policies with `provkey build DIR`, or name component files or stock policy ids"));
        }
        components.sort();
        expanded.extend(components);
    }
    Ok(expanded)
}

/// The configuration in the current directory, when it holds `.tf` files. One that
/// does not parse is said on stderr, and findings point at the plan file.
fn default_sources() -> Option<provkey_source_map::SourceMap> {
    let here = Path::new(".");
    if !provkey_source_map::SourceMap::is_configuration(here) {
        return None;
    }
    match provkey_source_map::SourceMap::load(here) {
        Ok(sources) => Some(sources),
        Err(err) => {
            crate::console::note(&format!(
                "warning: findings point at the plan file: {err}\nhelp: {}",
                err.help()
            ));
            None
        }
    }
}

/// Everything a check produced, for commands that act on the verdict (`seal`).
#[allow(dead_code, reason = "the sealing commands read the rest")]
pub struct CheckRun {
    pub plan: Arc<Plan>,
    /// The plan file's bytes, exactly as read.
    pub plan_bytes: Vec<u8>,
    /// Each policy's configuration as given to it (JSON text; `{}` when none).
    pub configs: BTreeMap<String, String>,
    /// The policies that loaded (id, version, component digest, origin).
    pub loaded: Vec<LoadedPolicy>,
    /// One outcome per policy, loaded or not, sorted by id.
    pub outcomes: Vec<PolicyOutcome>,
    pub report: CheckReport,
    /// The waivers and overrides that applied to a finding (for the sealed manifest).
    pub waivers: Vec<provkey_core::manifest::WaiverRef>,
}

/// Reads the plan and configurations, loads the policies and evaluates them.
/// Shared by `check` and every command that must run the same checks.
#[allow(dead_code, reason = "commands that take no policy set call this")]
pub fn run_check(
    plan_path: &Path,
    policies: &[PathBuf],
    config_args: &[(String, PathBuf)],
    runtime_args: &RuntimeArgs,
) -> CliResult<CheckRun> {
    run_check_with(
        plan_path,
        policies,
        config_args,
        runtime_args,
        &ReviewArgs::default(),
        None,
    )
}

/// Like [`run_check`], with a review: a policy set (given, or `provkey.toml` in the
/// current directory when no `--policy`/`--config` is given), waivers and overrides.
pub fn run_check_with(
    plan_path: &Path,
    policies: &[PathBuf],
    config_args: &[(String, PathBuf)],
    runtime_args: &RuntimeArgs,
    review_args: &ReviewArgs,
    trust_cli: Option<&Path>,
) -> CliResult<CheckRun> {
    let started = std::time::Instant::now();
    let plan_bytes = read_plan_bytes(plan_path)?;
    // Parsing the plan and loading the policies do not depend on each other; in a
    // cold process each takes milliseconds, so they run side by side, and the
    // engine is started, the plan's digest taken and the configurations checked
    // against the policies' schemas on the loading side (parsing is the longer of
    // the two). A bad plan is still reported first.
    let (plan, (loading, plan_blake3)) = rayon::join(
        || parse_plan(plan_path, &plan_bytes),
        || {
            let loading = runtime_args
                .build_for_input(plan_bytes.len())
                .and_then(|runtime| {
                    let load = load_checks(
                        &runtime,
                        policies,
                        config_args,
                        runtime_args,
                        review_args,
                        trust_cli,
                    )?;
                    let mut load = load;
                    check_config_schemas(&load.configs, &mut load.loaded, &mut load.failed)?;
                    Ok((runtime, load))
                });
            (loading, provkey_core::blake3_hex(&plan_bytes))
        },
    );
    // Shared with the policies' stores, which answer `plan-view` from it.
    let plan = Arc::new(plan?);
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis(),
        changes = plan.changes.len(),
        "read the plan"
    );
    let (runtime, load) = loading?;
    let PolicyLoad {
        configs,
        loaded,
        mut failed,
        mut review,
        mut trust,
        waivers_path,
    } = load;
    if (waivers_path.is_some() || !review_args.overrides.is_empty()) && trust.is_none() {
        trust = match trust_cli {
            Some(path) => Some(review::load_trust_root(path)?),
            None => {
                return Err(CliError::bad_input(anyhow!(
                    "waivers and overrides need a trust root to verify their approver signatures"
                ))
                .with_help("give `--trust TRUST_ROOT` (or `trust = …` in provkey.toml)"));
            }
        };
    }
    if let (Some(path), Some(trust)) = (&waivers_path, &trust) {
        review.exceptions = review::load_waivers(path, trust)?;
    }
    if let Some(trust) = &trust {
        for path in &review_args.overrides {
            review
                .exceptions
                .push(review::load_override(path, trust, &plan_blake3)?);
        }
    }
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis(),
        "loaded {} policies",
        loaded.len()
    );
    // What the report needs from the plan alone is built on this thread while the
    // policies run on the pool's: it would otherwise wait for them, idle.
    let (mut outcomes, (plan_summary, redactor)) = std::thread::scope(|scope| {
        let evaluation =
            scope.spawn(|| provkey_runtime::check_plan(&runtime, &plan, &loaded, &configs));
        let for_report = (
            PlanSummary::new(plan_path, &plan, &plan_bytes, plan_blake3),
            report::redact::Redactor::from_plan(&plan),
        );
        // A panic while evaluating stays a panic, as it was before this thread.
        let outcomes = evaluation
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (outcomes, for_report)
    });
    tracing::info!(elapsed_ms = started.elapsed().as_millis(), "evaluated");
    outcomes.append(&mut failed);
    outcomes.sort_by(|a, b| a.id.cmp(&b.id));
    tracing::info!(
        cache_hits = runtime.cache().hits(),
        cache_misses = runtime.cache().misses(),
        "compilation cache: {} hit(s), {} miss(es)",
        runtime.cache().hits(),
        runtime.cache().misses()
    );
    let report = CheckReport::reviewed(plan_summary, &plan, &redactor, &outcomes, &review);
    let mut applied: Vec<usize> = report
        .findings
        .iter()
        .filter(|f| f.excepted())
        .filter_map(|f| f.exception.as_ref().map(|e| e.index))
        .collect();
    applied.sort_unstable();
    applied.dedup();
    let mut waivers: Vec<provkey_core::manifest::WaiverRef> = applied
        .into_iter()
        .filter_map(|i| review.exceptions.get(i).map(review::Exception::to_ref))
        .collect();
    waivers.sort_by(|a, b| {
        (&a.policy, &a.rule, &a.address, &a.source_blake3).cmp(&(
            &b.policy,
            &b.rule,
            &b.address,
            &b.source_blake3,
        ))
    });
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis(),
        "built the report"
    );
    Ok(CheckRun {
        plan,
        plan_bytes,
        configs,
        loaded,
        outcomes,
        report,
        waivers,
    })
}

/// The policies of a check, loaded, with what the review needs from their set.
struct PolicyLoad {
    configs: BTreeMap<String, String>,
    loaded: Vec<LoadedPolicy>,
    failed: Vec<PolicyOutcome>,
    review: Review,
    trust: Option<TrustRoot>,
    waivers_path: Option<PathBuf>,
}

/// Loads the policies: a policy set (given, or `provkey.toml` in the current
/// directory when no `--policy`/`--config` is given), or the `--policy` list.
fn load_checks(
    runtime: &Runtime,
    policies: &[PathBuf],
    config_args: &[(String, PathBuf)],
    runtime_args: &RuntimeArgs,
    review_args: &ReviewArgs,
    trust_cli: Option<&Path>,
) -> CliResult<PolicyLoad> {
    let set_path = review_args.policy_set.clone().or_else(|| {
        let default = Path::new(policy_set::SET_FILE_NAME);
        (policies.is_empty() && config_args.is_empty() && default.is_file())
            .then(|| default.to_path_buf())
    });
    let mut review = Review::default();
    let mut trust = None;
    let mut waivers_path = review_args.waivers.clone();
    let (configs, loaded, failed) = match &set_path {
        Some(path) => {
            let ctx = policy_set::PolicySetContext::load(path)?;
            let lock = policy_set::Lock::read(&ctx.lock_path())?;
            let cache = policy_set::fetch::ComponentCache::new(runtime_args.cache_dir());
            let resolved = policy_set::resolve(&ctx, trust_cli, &cache, Some(&lock))?;
            if waivers_path.is_none() {
                waivers_path = ctx.waivers_path();
            }
            if resolved.trust.is_some() {
                trust = resolved.trust.clone();
            } else if let Some(path) = ctx.trust_path(trust_cli) {
                trust = Some(review::load_trust_root(&path)?);
            }
            let (configs, loaded, failed) = load_resolved(runtime, &resolved)?;
            for policy in &resolved.policies {
                review
                    .levels
                    .insert(policy.id.clone(), policy.levels.clone());
            }
            (configs, loaded, failed)
        }
        None => {
            let configs = read_configs(config_args)?;
            let (loaded, failed) = load_policies(runtime, policies)?;
            check_config_ids(&configs, &loaded)?;
            (configs, loaded, failed)
        }
    };
    Ok(PolicyLoad {
        configs,
        loaded,
        failed,
        review,
        trust,
        waivers_path,
    })
}

/// Loads the components of a resolved policy set (already checked against their
/// digests), with the configuration the set gives each.
#[allow(clippy::type_complexity, reason = "a private helper's triple")]
fn load_resolved(
    runtime: &Runtime,
    resolved: &policy_set::Resolved,
) -> CliResult<(
    BTreeMap<String, String>,
    Vec<LoadedPolicy>,
    Vec<PolicyOutcome>,
)> {
    let results: Vec<(
        &policy_set::ResolvedPolicy,
        Result<LoadedPolicy, RuntimeError>,
    )> = resolved
        .policies
        .par_iter()
        .map(|p| (p, runtime.load_policy(&p.id, p.origin.clone(), &p.bytes)))
        .collect();
    let mut configs = BTreeMap::new();
    let mut loaded = Vec::new();
    let mut failed = Vec::new();
    for (p, result) in results {
        if let Some(config) = &p.config {
            configs.insert(p.id.clone(), config.clone());
        }
        match result {
            Ok(policy) if policy.metadata.id != p.id => {
                return Err(CliError::bad_input(anyhow!(
                    "policy `{}` ({}) is a component whose metadata declares the id `{}`",
                    p.id,
                    p.source,
                    policy.metadata.id
                ))
                .with_help("name the policy in provkey.toml by the id its component declares"));
            }
            Ok(policy) => loaded.push(policy),
            Err(err) => failed.push(PolicyOutcome {
                id: p.id.clone(),
                metadata: None,
                digest: None,
                origin: Some(p.origin.clone()),
                result: Err(PolicyError::Load(err)),
                elapsed: Duration::ZERO,
            }),
        }
    }
    Ok((configs, loaded, failed))
}

/// Reads and parses the plan; every failure is exit 2 and names the file.
pub fn read_plan(path: &Path) -> CliResult<(Plan, Vec<u8>)> {
    let bytes = read_plan_bytes(path)?;
    let plan = parse_plan(path, &bytes)?;
    Ok((plan, bytes))
}

/// Reads a plan file's bytes, bounded by the largest plan accepted. The file is
/// opened without blocking (a FIFO with no writer reads as empty, a device is
/// refused) and read in chunks: once its first character shows it is binary data,
/// reading stops, and the parser reports the error (`--plan /dev/stdin` fed endless
/// zeros is refused after the first chunk, not after 1 GiB). `-` is standard input.
pub fn read_plan_bytes(path: &Path) -> CliResult<Vec<u8>> {
    use std::io::Read;
    const CHUNK: usize = 1 << 20;
    let from_stdin = path == Path::new("-");
    let shown = if from_stdin {
        "standard input".to_string()
    } else {
        format!("`{}`", path.display())
    };
    let cannot_read = |err: std::io::Error| {
        let help = if from_stdin {
            "pipe the JSON plan in: `terraform show -json PLANFILE | provkey check --plan -`"
        } else {
            "check the path given to `--plan`"
        };
        CliError::bad_input(anyhow::Error::new(err).context(format!("cannot read plan {shown}")))
            .with_help(help)
    };
    let (source, expected): (Box<dyn Read>, u64) = if from_stdin {
        (Box::new(std::io::stdin().lock()), 0)
    } else {
        let file = provkey_runtime::open_input(path).map_err(cannot_read)?;
        let expected = file.metadata().map_or(0, |m| m.len());
        (Box::new(file), expected)
    };
    let mut bytes =
        Vec::with_capacity(usize::try_from(expected).unwrap_or(0).min(MAX_PLAN_BYTES) + 1);
    let mut reader = source.take(MAX_PLAN_BYTES as u64 + 1);
    loop {
        let read = reader
            .by_ref()
            .take(CHUNK as u64)
            .read_to_end(&mut bytes)
            .map_err(cannot_read)?;
        if read == 0 {
            break;
        }
        // A plan or a manifest starts with a printable character: binary data
        // (`/dev/stdin` fed endless zeros) stops after its first chunk.
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|&b| b.is_ascii_control()) {
            break;
        }
    }
    if bytes.len() > MAX_PLAN_BYTES {
        return Err(CliError::bad_input(anyhow!(
            "cannot read plan {shown}: it is larger than {MAX_PLAN_BYTES} bytes"
        ))
        .with_help("provkey reads plans of up to 1 GiB"));
    }
    Ok(bytes)
}

/// Parses the plan read from `path`.
pub fn parse_plan(path: &Path, bytes: &[u8]) -> CliResult<Plan> {
    let shown = path.display();
    let text = std::str::from_utf8(bytes).map_err(|err| {
        let (line, column) = line_and_column(bytes, err.valid_up_to());
        CliError::bad_input(anyhow!(
            "cannot read plan `{shown}`: it is not UTF-8 text (invalid byte at line {line}, \
             column {column})"
        ))
        .with_help("pass the JSON plan: `terraform show -json PLANFILE > plan.json`")
    })?;
    let plan = Plan::from_json(text);
    // Kubernetes objects are tried only when the text is not a plan, so that reading
    // a plan costs nothing more.
    if plan.is_err() && provkey_kubernetes::looks_like_kubernetes(text) {
        return provkey_kubernetes::read(text).map_err(|err| {
            let help = err.help();
            CliError::bad_input(anyhow!(
                "cannot read Kubernetes objects from `{shown}`: {err}"
            ))
            .with_help(help)
        });
    }
    let plan = plan.map_err(|err| {
        CliError::bad_input(anyhow!("cannot read plan `{shown}`: {err}")).with_help(
            "provkey reads its own plan JSON and `terraform show -json` / `tofu show -json` \
             output (format versions 0.1 to 1.2, and later 1.x minors with a warning)",
        )
    })?;
    if let Some(warning) = provkey_plan::format_version_warning(&plan) {
        crate::console::note(&format!("warning: plan `{shown}`: {warning}"));
    }
    Ok(plan)
}

/// The 1-based line and column (in characters, as the JSON errors count them) of the
/// byte at `offset`, all of whose preceding bytes are UTF-8.
fn line_and_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = std::str::from_utf8(&before[line_start..]).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
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

/// Validates each loaded policy's configuration (`{}` when none is given) against the
/// JSON Schema its metadata declares, before any evaluation: a mismatch is bad input
/// (exit 2) naming the policy and the field. A schema that does not compile is that
/// policy's failure: it moves from `loaded` to `failed` (exit 3), and the other
/// policies still run and are reported.
pub fn check_config_schemas(
    configs: &BTreeMap<String, String>,
    loaded: &mut Vec<LoadedPolicy>,
    failed: &mut Vec<PolicyOutcome>,
) -> CliResult<()> {
    let mut index = 0;
    while let Some(policy) = loaded.get(index) {
        let id = &policy.metadata.id;
        let Some(schema) = &policy.metadata.config_schema else {
            index += 1;
            continue;
        };
        if let Err(reason) = schema_validator(schema) {
            let policy = loaded.remove(index);
            failed.push(PolicyOutcome {
                id: policy.metadata.id.clone(),
                result: Err(PolicyError::Load(RuntimeError::BadMetadata {
                    name: policy.metadata.id.clone(),
                    reason,
                })),
                digest: Some(policy.digest),
                origin: Some(policy.origin),
                metadata: Some(policy.metadata),
                elapsed: Duration::ZERO,
            });
            continue;
        }
        let config = configs.get(id).map_or("{}", String::as_str);
        validate_config(id, schema, config)?;
        index += 1;
    }
    Ok(())
}

/// The validator of a policy's configuration schema, or why it has none.
fn schema_validator(schema: &str) -> Result<jsonschema::Validator, String> {
    let schema: serde_json::Value = serde_json::from_str(schema)
        .map_err(|err| format!("the configuration schema is not JSON: {err}"))?;
    // Formats are validated too: a schema that says `"format": "regex"` means it.
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|err| format!("the configuration schema is invalid: {err}"))
}

/// Validates one configuration (JSON text) against one schema (JSON text).
pub fn validate_config(id: &str, schema: &str, config: &str) -> CliResult<()> {
    let policy_failed = |error: anyhow::Error| CliError {
        exit: Exit::PolicyFailed,
        error,
        help: Some("the policy's metadata is broken: report it to the policy's author".into()),
    };
    let validator = schema_validator(schema)
        .map_err(|reason| policy_failed(anyhow!("policy `{id}`: {reason}")))?;
    let value: serde_json::Value = serde_json::from_str(config).map_err(|err| {
        CliError::bad_input(anyhow!(
            "the configuration of policy `{id}` is not JSON: {err}"
        ))
    })?;
    let problems: Vec<String> = validator
        .iter_errors(&value)
        .map(|err| {
            let path = err.instance_path().to_string();
            let field = path.strip_prefix('/').unwrap_or(&path).replace('/', ".");
            if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
                err.kind()
            {
                let names: Vec<String> = unexpected
                    .iter()
                    .map(|name| match field.as_str() {
                        "" => format!("`{name}`"),
                        parent => format!("`{parent}.{name}`"),
                    })
                    .collect();
                format!("unknown field {}", names.join(", "))
            } else if field.is_empty() {
                err.to_string()
            } else {
                format!("field `{field}`: {err}")
            }
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(CliError::bad_input(anyhow!(
        "the configuration of policy `{id}` does not match its schema: {}",
        problems.join("; ")
    ))
    .with_help(format!(
        "`provkey inspect {id}` prints the policy's configuration schema"
    )))
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
                // An id already taken (a stock policy's, say) is the later policy's
                // failure, reported under its name; the first keeps its id and runs.
                if let Some(other) = loaded.iter().find(|p| p.metadata.id == policy.metadata.id) {
                    let reason = format!(
                        "it declares the id `{}`, which `{}` already has: every policy of a \
                         check needs its own id",
                        policy.metadata.id,
                        origin_text(&other.origin),
                    );
                    failed.push(PolicyOutcome {
                        id: name.clone(),
                        result: Err(PolicyError::Load(RuntimeError::BadMetadata {
                            name,
                            reason,
                        })),
                        digest: Some(policy.digest),
                        origin: Some(policy.origin),
                        metadata: None,
                        elapsed: Duration::ZERO,
                    });
                    continue;
                }
                loaded.push(policy);
            }
            // A missing file named like an id (no directory, no extension) was
            // meant as a stock policy: name the ids, not the missing file.
            Err(RuntimeError::Read { path, .. })
                if !path.exists()
                    && path
                        .to_str()
                        .is_some_and(|value| !value.contains(['/', '\\', '.'])) =>
            {
                return Err(crate::commands::policies::unknown_policy(&path));
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
