//! `provkey-bench`: prints figures, asserts nothing about time.
//!
//! 1. Per-evaluation latency of the stock `immutable` policy on generated Terraform
//!    plans, split into parse, convert, evaluate and end to end.
//! 2. Cold `provkey check` process wall time, with a warm and an empty compilation
//!    cache.
//! 3. The boundary options: the plan as a typed record, a JSON string, JSON bytes,
//!    and the bare transfer of the typed record and of the string.
//!
//! Build and run (release, or the figures mean nothing):
//!
//! ```text
//! cargo build --release -p provkey-bench -p provkey
//! target/release/provkey-bench            # full run
//! target/release/provkey-bench --quick    # smoke run
//! bench/run.sh                              # side by side with the peers (`compare`)
//! ```

// Every arm timed in this process (the native floor, provkey and its variants) uses
// the allocator the `provkey` CLI ships with. Under the system allocator the floor
// spent a third of its time in malloc and free, which flattered provkey's ratio.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod boundary;
mod compare;
mod machine;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::json;

use provkey_bench::genplan::{self, Counts};
use provkey_bench::stats::{Samples, human, ms};
use provkey_plan::Plan;
use provkey_runtime::{
    GuestFailure, GuestPlan, Limits, PlanIndex, PolicyOrigin, Runtime, RuntimeOptions, plan_to_wit,
};

use boundary::{Arm, BoundaryBench, Inputs};
use machine::{Machine, WASMTIME_VERSION, loadavg};

/// The plan size of the cold-process measurement.
const CLI_PLAN_CHANGES: usize = 1_000;

#[derive(Parser, Debug)]
#[command(
    name = "provkey-bench",
    about = "Measures the provkey host and prints figures."
)]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// A smoke run: small plans, few iterations. The figures are not worth keeping.
    #[arg(long)]
    quick: bool,
    /// Plan sizes (resource changes) for the `immutable` latency section.
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    sizes: Option<Vec<usize>>,
    /// Plan sizes for the boundary comparison.
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    boundary_sizes: Option<Vec<usize>>,
    /// The generator's seed.
    #[arg(long, default_value_t = genplan::DEFAULT_SEED)]
    seed: u64,
    /// Print one JSON object per figure on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
    /// The runtime's per-guest memory limit for the `immutable` section [default: the
    /// product's default].
    #[arg(long, value_name = "MIB")]
    memory_mib: Option<usize>,
    /// The runtime's per-call deadline for the `immutable` section [default: the
    /// product's default].
    #[arg(long, value_name = "MS")]
    deadline_ms: Option<u64>,
    /// Only write the generated plan of `--plan-size` changes to this file (for
    /// hyperfine or `provkey check` by hand), then exit.
    #[arg(long, value_name = "FILE")]
    write_plan: Option<PathBuf>,
    /// The plan size for `--write-plan`.
    #[arg(long, value_name = "N", default_value_t = CLI_PLAN_CHANGES)]
    plan_size: usize,
    /// Skip the `immutable` latency section.
    #[arg(long)]
    skip_eval: bool,
    /// Skip the cold `provkey check` section.
    #[arg(long)]
    skip_cli: bool,
    /// Skip the boundary comparison.
    #[arg(long)]
    skip_boundary: bool,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// provkey side by side with the native floor, regorus, OPA and Checkov on the
    /// same plans and the same ten rules (`bench/run.sh` installs the peers).
    Compare(compare::CompareArgs),
    /// One arm of `compare` in this process (used by `compare`; prints one JSON line).
    #[command(hide = true)]
    Arm(compare::ArmArgs),
}

/// Where the table and the JSON lines go.
struct Out {
    json: bool,
}

impl Out {
    fn line(&self, text: impl AsRef<str>) {
        if self.json {
            eprintln!("{}", text.as_ref());
        } else {
            println!("{}", text.as_ref());
        }
    }

    fn record(&self, value: serde_json::Value) {
        if self.json {
            println!("{value}");
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let out = Out { json: args.json };
    match run(&args, &out) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("provkey-bench: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &Args, out: &Out) -> Result<()> {
    match &args.command {
        Some(Cmd::Compare(compare)) => return compare::run_compare(compare),
        Some(Cmd::Arm(arm)) => return compare::run_arm(arm),
        None => {}
    }
    if let Some(path) = &args.write_plan {
        let (text, counts) = generate(args.plan_size, args.seed);
        std::fs::write(path, text).with_context(|| format!("cannot write `{}`", path.display()))?;
        eprintln!(
            "wrote {} ({} changes: {counts:?})",
            path.display(),
            args.plan_size
        );
        return Ok(());
    }
    let machine = Machine::probe();
    let load_before = loadavg();
    out.line("# provkey-bench");
    out.line(format!("date        {}", machine.date_utc));
    out.line(format!(
        "cpu         {} ({} logical CPUs, {} available to this process)",
        machine.cpu_model, machine.cpus, machine.available
    ));
    out.line(format!("kernel      {}", machine.kernel));
    out.line(format!(
        "build       {} ; wasmtime {WASMTIME_VERSION} ; seed {:#x}{}",
        machine.profile,
        args.seed,
        if args.quick {
            " ; --quick (smoke run, do not keep)"
        } else {
            ""
        }
    ));
    out.line(format!("load avg    {load_before} (before)"));
    if machine.profile == "debug" {
        out.line("WARNING: debug build; figures are meaningless. Use `cargo build --release -p provkey-bench -p provkey`.");
    }
    out.record(json!({
        "section": "machine", "date": machine.date_utc, "cpu": machine.cpu_model, "cpus": machine.cpus,
        "available": machine.available, "kernel": machine.kernel, "profile": machine.profile,
        "wasmtime": WASMTIME_VERSION, "seed": args.seed, "quick": args.quick, "loadavg_before": load_before,
    }));

    if !args.skip_eval {
        let sizes = args.sizes.clone().unwrap_or_else(|| {
            if args.quick {
                vec![10, 1_000]
            } else {
                vec![10, 1_000, 100_000]
            }
        });
        evaluation_section(args, out, &sizes)?;
    }
    if !args.skip_cli {
        cli_section(args, out)?;
    }
    if !args.skip_boundary {
        let sizes = args.boundary_sizes.clone().unwrap_or_else(|| {
            if args.quick {
                vec![1_000]
            } else {
                vec![1_000, 10_000, 100_000]
            }
        });
        boundary_section(args, out, &sizes)?;
    }

    let load_after = loadavg();
    out.line("");
    out.line(format!("load avg    {load_after} (after)"));
    out.record(json!({"section": "machine", "loadavg_after": load_after}));
    Ok(())
}

/// Iterations for a plan of `n` changes: (warmup, measured).
fn iterations(n: usize, quick: bool) -> (usize, usize) {
    let measured = match (n, quick) {
        (0..=1_000, false) => 200,
        (0..=10_000, false) => 50,
        (_, false) => 10,
        (0..=1_000, true) => 20,
        (_, true) => 3,
    };
    ((measured / 10).max(2), measured)
}

fn generate(n: usize, seed: u64) -> (String, Counts) {
    let generated = genplan::generate(n, seed);
    (generated.json, generated.counts)
}

fn size_text(bytes: usize) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.0} KB", bytes as f64 / 1e3),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}

fn pair(s: &Samples) -> String {
    format!("{:>9} {:>9}", human(s.median()), human(s.p90()))
}

fn summary(s: &Samples) -> serde_json::Value {
    json!({
        "iterations": s.len(),
        "p50_ms": ms(s.median()), "p90_ms": ms(s.p90()),
        "min_ms": ms(s.min()), "max_ms": ms(s.max()),
    })
}

// ---------------------------------------------------------------------------------
// 1. `immutable`, in process
// ---------------------------------------------------------------------------------

/// A runtime with the `immutable` policy loaded in it.
struct Loaded {
    runtime: Arc<Runtime>,
    policy: provkey_runtime::LoadedPolicy,
    limits: Limits,
    load_time: Duration,
}

fn load_immutable(limits: Limits) -> Result<Loaded> {
    let runtime = Runtime::new(RuntimeOptions {
        limits,
        cache_dir: None,
    })
    .context("cannot start the runtime")?;
    let stock =
        provkey_stock::find("immutable").context("the stock `immutable` policy is not embedded")?;
    let started = Instant::now();
    let policy = runtime
        .load_policy(stock.id, PolicyOrigin::Stock, stock.bytes)
        .context("cannot load the stock `immutable` policy")?;
    Ok(Loaded {
        runtime,
        policy,
        limits,
        load_time: started.elapsed(),
    })
}

fn limits_text(limits: &Limits) -> String {
    format!(
        "deadline {} ms, memory {} MiB, output {} MiB",
        limits.deadline.as_millis(),
        limits.memory_bytes >> 20,
        limits.output_bytes >> 20
    )
}

/// The limits used for a size the product's limits cannot evaluate.
const RAISED_DEADLINE: Duration = Duration::from_secs(120);
const RAISED_MEMORY_MIB: usize = 4_096;

fn evaluation_section(args: &Args, out: &Out, sizes: &[usize]) -> Result<()> {
    let defaults = Limits::default();
    let explicit = args.memory_mib.is_some() || args.deadline_ms.is_some();
    let limits = Limits {
        memory_bytes: args
            .memory_mib
            .map_or(defaults.memory_bytes, |mib| mib << 20),
        deadline: args
            .deadline_ms
            .map_or(defaults.deadline, Duration::from_millis),
        ..defaults
    };
    let main = load_immutable(limits)?;
    let mut raised: Option<Loaded> = None;

    out.line("");
    out.line(
        "## 1. `immutable` per evaluation, in process (real runtime, embedded stock component)",
    );
    out.line(format!(
        "limits: {} ({}); compile+link+metadata once: {}",
        limits_text(&limits),
        if explicit {
            "set by flags, NOT the product's defaults"
        } else {
            "the product's defaults"
        },
        human(main.load_time)
    ));
    out.line("parse = Plan::from_json; convert = the plan summary for guests + PlanIndex; evaluate = Runtime::evaluate (fresh store + instantiate + call + output checks)");
    out.line("");
    out.line(format!(
        "{:>9} {:>9} {:>8} {:>5} | {:>19} | {:>19} | {:>19} | {:>19}",
        "N",
        "plan",
        "findings",
        "iters",
        "parse p50 / p90",
        "convert p50 / p90",
        "evaluate p50 / p90",
        "end-to-end p50 / p90"
    ));
    let mut notes = Vec::new();
    for &n in sizes {
        let (text, counts) = generate(n, args.seed);
        // One probe with the configured limits: a size they cannot evaluate is a
        // finding in itself, then measured with raised limits (unless limits were
        // given explicitly).
        let mut loaded = &main;
        {
            let plan = Arc::new(Plan::from_json(&text).context("cannot parse the generated plan")?);
            let guest_plan = GuestPlan::new(Arc::clone(&plan));
            let index = PlanIndex::new(&plan);
            let probe = main
                .runtime
                .evaluate(&main.policy, &guest_plan, &index, "{}");
            match probe.result {
                Ok(_) => {}
                Err(failure @ (GuestFailure::Deadline { .. } | GuestFailure::Memory { .. }))
                    if !explicit =>
                {
                    let note = format!(
                        "N = {n}: the product's limits fail it ({failure}); measured with \
                         raised limits: deadline {} s, memory {RAISED_MEMORY_MIB} MiB",
                        RAISED_DEADLINE.as_secs()
                    );
                    out.record(json!({
                        "section": "immutable", "n": n, "limits_failure": failure.to_string(),
                    }));
                    notes.push(note);
                    if raised.is_none() {
                        raised = Some(load_immutable(Limits {
                            deadline: RAISED_DEADLINE,
                            memory_bytes: RAISED_MEMORY_MIB << 20,
                            ..defaults
                        })?);
                    }
                    loaded = raised.as_ref().unwrap_or(&main);
                }
                Err(failure) => bail!("`immutable` failed on N = {n}: {failure}"),
            }
        }
        let (warmup, measured) = iterations(n, args.quick);
        let mut parse = Vec::with_capacity(measured);
        let mut convert = Vec::with_capacity(measured);
        let mut evaluate = Vec::with_capacity(measured);
        let mut total = Vec::with_capacity(measured);
        for i in 0..warmup + measured {
            let t0 = Instant::now();
            let plan = Arc::new(Plan::from_json(&text).context("cannot parse the generated plan")?);
            let t1 = Instant::now();
            let guest_plan = GuestPlan::new(Arc::clone(&plan));
            // What the stock `immutable` (a 0.6.0 policy) receives.
            guest_plan.packed_numbers();
            let index = PlanIndex::new(&plan);
            let t2 = Instant::now();
            let evaluation = loaded
                .runtime
                .evaluate(&loaded.policy, &guest_plan, &index, "{}");
            let t3 = Instant::now();
            let findings = evaluation.result.map_err(|failure| {
                anyhow::anyhow!(
                    "`immutable` failed on N = {n} ({}): {failure}",
                    limits_text(&loaded.limits)
                )
            })?;
            if findings.len() != counts.update {
                bail!(
                    "`immutable` returned {} findings on N = {n}, but the plan has {} updates: \
                     refusing to print timings",
                    findings.len(),
                    counts.update
                );
            }
            if i >= warmup {
                parse.push(t1 - t0);
                convert.push(t2 - t1);
                evaluate.push(t3 - t2);
                total.push(t3 - t0);
            }
        }
        let [parse, convert, evaluate, total] = [parse, convert, evaluate, total].map(Samples::new);
        let with_main_limits = std::ptr::eq(loaded, &main);
        out.line(format!(
            "{:>9} {:>9} {:>8} {measured:>5} | {} | {} | {} | {}",
            if with_main_limits {
                n.to_string()
            } else {
                format!("{n}*")
            },
            size_text(text.len()),
            counts.update,
            pair(&parse),
            pair(&convert),
            pair(&evaluate),
            pair(&total)
        ));
        out.record(json!({
            "section": "immutable", "n": n, "plan_bytes": text.len(), "updates": counts.update,
            "findings": counts.update, "warmup": warmup,
            "limits": limits_text(&loaded.limits),
            "parse": summary(&parse), "convert": summary(&convert),
            "evaluate": summary(&evaluate), "end_to_end": summary(&total),
        }));
    }
    for note in notes {
        out.line(format!("* {note}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// 2. `provkey check`, as a process
// ---------------------------------------------------------------------------------

fn provkey_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the bench binary's own path")?;
    let dir = exe
        .parent()
        .context("the bench binary has no parent directory")?;
    Ok(dir.join("provkey"))
}

fn cli_section(args: &Args, out: &Out) -> Result<()> {
    out.line("");
    out.line(format!(
        "## 2. cold `provkey check --policy immutable` process, N = {CLI_PLAN_CHANGES} (wall time: spawn to exit)"
    ));
    let provkey = provkey_binary()?;
    if !provkey.is_file() {
        out.line(format!(
            "SKIPPED: no `provkey` binary at `{}`. Build it beside the bench: \
             `cargo build --release -p provkey-bench -p provkey`.",
            provkey.display()
        ));
        out.record(json!({"section": "cli", "skipped": "provkey binary not found"}));
        return Ok(());
    }
    let work = tempfile::tempdir().context("cannot make a temporary directory")?;
    let (text, counts) = generate(CLI_PLAN_CHANGES, args.seed);
    let plan_path = work.path().join("plan.json");
    std::fs::write(&plan_path, &text).context("cannot write the generated plan")?;
    let expected_exit = if counts.update > 0 { 1 } else { 0 };

    let (warm_runs, cold_runs) = if args.quick { (3, 2) } else { (10, 5) };
    let warm_cache = work.path().join("warm-cache");
    // Fill the cache, and check that the verdict is the expected one.
    let (_, findings) = run_check(&provkey, &plan_path, &warm_cache, expected_exit, true)?;
    if findings != Some(counts.update) {
        bail!(
            "`provkey check` reported {findings:?} findings, but the plan has {} updates: refusing to print timings",
            counts.update
        );
    }
    let warm = (0..warm_runs)
        .map(|_| run_check(&provkey, &plan_path, &warm_cache, expected_exit, false).map(|(t, _)| t))
        .collect::<Result<Vec<_>>>()?;
    let cold = (0..cold_runs)
        .map(|i| {
            let cache = work.path().join(format!("cold-cache-{i}"));
            run_check(&provkey, &plan_path, &cache, expected_exit, false).map(|(t, _)| t)
        })
        .collect::<Result<Vec<_>>>()?;
    let (warm, cold) = (Samples::new(warm), Samples::new(cold));
    out.line(format!("binary: {}", provkey.display()));
    out.line(format!(
        "{:<36} {:>5} {:>9} {:>9} {:>9}",
        "compilation cache", "runs", "median", "min", "max"
    ));
    for (label, key, s) in [
        ("warm (filled by a first run)", "warm", &warm),
        ("empty (fresh PROVKEY_CACHE_DIR)", "empty", &cold),
    ] {
        out.line(format!(
            "{label:<36} {:>5} {:>9} {:>9} {:>9}",
            s.len(),
            human(s.median()),
            human(s.min()),
            human(s.max())
        ));
        out.record(
            json!({"section": "cli", "n": CLI_PLAN_CHANGES, "cache": key, "wall": summary(s)}),
        );
    }
    Ok(())
}

/// One `provkey check` process; returns its wall time and, when asked, the number
/// of findings in its JSON report.
fn run_check(
    provkey: &Path,
    plan: &Path,
    cache: &Path,
    expected_exit: i32,
    count_findings: bool,
) -> Result<(Duration, Option<usize>)> {
    let mut cmd = Command::new(provkey);
    cmd.arg("check")
        .arg("--plan")
        .arg(plan)
        .args(["--policy", "immutable", "--format", "json"])
        .env("PROVKEY_CACHE_DIR", cache)
        .env_remove("PROVKEY_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(if count_findings {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::piped());
    let started = Instant::now();
    let output = cmd
        .output()
        .with_context(|| format!("cannot run `{}`", provkey.display()))?;
    let elapsed = started.elapsed();
    let code = output.status.code().unwrap_or(-1);
    if code != expected_exit {
        bail!(
            "`provkey check` exited {code}, expected {expected_exit}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let findings = if count_findings {
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .context("`provkey check --format json` printed no JSON")?;
        Some(count_json_findings(&report))
    } else {
        None
    };
    Ok((elapsed, findings))
}

/// Counts the objects under every `findings` array of a JSON report.
fn count_json_findings(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(key, v)| match (key.as_str(), v) {
                ("findings", serde_json::Value::Array(items)) => items.len(),
                _ => count_json_findings(v),
            })
            .sum(),
        serde_json::Value::Array(items) => items.iter().map(count_json_findings).sum(),
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------
// 3. The boundary options
// ---------------------------------------------------------------------------------

fn boundary_section(args: &Args, out: &Out, sizes: &[usize]) -> Result<()> {
    let bench = BoundaryBench::new(provkey_test_guests::BENCH_BOUNDARY)?;
    out.line("");
    out.line("## 3. how the plan crosses into a guest (bench-boundary guest; fresh store + instance per call, call timed)");
    out.line("host prep = what the host does before the call: plan_to_wit for (a)/(d), serde_json::to_string of the parsed plan for (b)/(c)/(e)");
    for &n in sizes {
        let (text, counts) = generate(n, args.seed);
        let plan = Plan::from_json(&text).context("cannot parse the generated plan")?;
        let wit = plan_to_wit(&plan);
        let json = serde_json::to_string(&plan).context("cannot serialize the plan")?;
        let inputs = Inputs {
            wit: &wit,
            json: &json,
            updates: u32::try_from(counts.update)?,
            changes: u32::try_from(counts.total())?,
        };
        let (warmup, measured) = iterations(n, args.quick);
        let mut calls: Vec<Vec<Duration>> = vec![Vec::with_capacity(measured); Arm::ALL.len()];
        let mut instantiate = Vec::new();
        let mut to_wit = Vec::new();
        let mut to_json = Vec::new();
        for i in 0..warmup + measured {
            // Rotate the order each iteration, so no arm always follows another.
            for k in 0..Arm::ALL.len() {
                let slot = (i + k) % Arm::ALL.len();
                let Some(&arm) = Arm::ALL.get(slot) else {
                    continue;
                };
                let (inst, call) = bench.run(arm, &inputs)?;
                if i >= warmup {
                    instantiate.push(inst);
                    if let Some(samples) = calls.get_mut(slot) {
                        samples.push(call);
                    }
                }
            }
            // Host-side preparation of each form, timed in the same window.
            let started = Instant::now();
            let converted = plan_to_wit(&plan);
            let converted_at = started.elapsed();
            drop(converted);
            let started = Instant::now();
            let serialized = serde_json::to_string(&plan)?;
            let serialized_at = started.elapsed();
            drop(serialized);
            if i >= warmup {
                to_wit.push(converted_at);
                to_json.push(serialized_at);
            }
        }
        let calls: Vec<Samples> = calls.into_iter().map(Samples::new).collect();
        let (instantiate, to_wit, to_json) = (
            Samples::new(instantiate),
            Samples::new(to_wit),
            Samples::new(to_json),
        );
        let typed = calls.first().map(Samples::median).unwrap_or_default();
        out.line("");
        out.line(format!(
            "N = {n}: Terraform JSON {}, provkey JSON {}, {} updates, {measured} iterations; instantiate p50 {}; \
             host prep p50: plan_to_wit {}, to JSON {}",
            size_text(text.len()),
            size_text(json.len()),
            counts.update,
            human(instantiate.median()),
            human(to_wit.median()),
            human(to_json.median()),
        ));
        out.line(format!(
            "  {:<42} {:>9} {:>9} {:>9}",
            "arm", "call p50", "p90", "vs (a)"
        ));
        for (arm, samples) in Arm::ALL.iter().zip(&calls) {
            let ratio = samples.median().as_secs_f64() / typed.as_secs_f64().max(f64::MIN_POSITIVE);
            out.line(format!(
                "  {:<42} {:>9} {:>9} {:>8.2}x",
                arm.label(),
                human(samples.median()),
                human(samples.p90()),
                ratio
            ));
            out.record(json!({
                "section": "boundary", "n": n, "arm": arm.key(), "call": summary(samples),
                "ratio_to_typed": ratio, "provkey_json_bytes": json.len(), "terraform_json_bytes": text.len(),
            }));
        }
        out.record(json!({
            "section": "boundary-host", "n": n, "instantiate": summary(&instantiate),
            "plan_to_wit": summary(&to_wit), "to_json": summary(&to_json),
        }));
    }
    Ok(())
}
