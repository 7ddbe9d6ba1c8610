//! `provkey-bench compare`: provkey side by side with the native floor and the
//! policy engines people use, on the same plan bytes and the same ten rules.
//!
//! Protocol (performance.md 4.5): for each plan size, every arm runs in its own
//! process (so peak RSS is its own and a Go or Python runtime pollutes nothing),
//! in a shuffled order each round; each process loads its engine, warms up, then
//! times whole evaluations (plan bytes to findings) and prints its median, its
//! peak RSS and the digest of its sorted (rule, address) findings. A round whose
//! arms disagree stops the run before any time is printed. Ratios are computed
//! per round against the native floor measured in the same round, then the median
//! is taken.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use provkey_bench::findings::{Key, digest, first_difference, normalize, per_rule};
use provkey_bench::floor;
use provkey_bench::genplan;
use provkey_bench::stats::{Samples, human};
use provkey_bench::wasm::{Provkey, Tuning};

use crate::machine::{Machine, WASMTIME_VERSION, loadavg};

/// The OPA arm, run with the Python the wheel's library is loaded from.
const OPA_SCRIPT: &str = include_str!("../opa_arm.py");

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Plan sizes (resource changes).
    #[arg(long, value_delimiter = ',', default_value = "10,1000,10000,100000")]
    pub sizes: Vec<usize>,
    /// Rounds per size up to 10,000 changes.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Rounds at sizes above 10,000 changes.
    #[arg(long, default_value_t = 3)]
    pub rounds_large: usize,
    /// The generator's seed.
    #[arg(long, default_value_t = genplan::DEFAULT_SEED)]
    pub seed: u64,
    /// Where plans, configurations and the compilation cache go [default: a
    /// temporary directory].
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Where `host/bench/run.sh` installed the peers: `venv/bin/checkov` and
    /// `opa/wheel/opa_bindings/libopabridge.so`.
    #[arg(long, value_name = "DIR")]
    pub peers: Option<PathBuf>,
    /// Also time the engine variants (sequential policies, on-demand allocator,
    /// no copy-on-write images, no epoch interruption) at sizes up to 10,000.
    #[arg(long)]
    pub variants: bool,
    /// Skip the cold-process comparison.
    #[arg(long)]
    pub skip_cold: bool,
    /// Skip the real plans of ../shared/data/terraform-plans.
    #[arg(long)]
    pub skip_real: bool,
    /// Skip Checkov.
    #[arg(long)]
    pub skip_checkov: bool,
    /// The regorus arm's binary, `provkey-rego` from host/bench-rego (its own
    /// workspace; host/bench/run.sh builds it).
    #[arg(long, value_name = "FILE")]
    pub rego_bin: Option<PathBuf>,
    /// The directory of real Terraform plans [default: ../shared/data/terraform-plans
    /// beside the repository, or $PROVKEY_SHARED_DIR/data/terraform-plans].
    #[arg(long, value_name = "DIR")]
    pub real_plans: Option<PathBuf>,
}

/// One child process: `provkey-bench arm ...`.
#[derive(Args, Debug)]
pub struct ArmArgs {
    #[arg(long)]
    pub arm: String,
    #[arg(long)]
    pub plan: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    #[arg(long)]
    pub cache: Option<PathBuf>,
}

/// The arms timed in process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Arm {
    Floor,
    Provkey,
    Regorus,
    Opa,
    ProvkeySequential,
    ProvkeyOnDemand,
    ProvkeyNoCow,
    ProvkeyNoEpoch,
}

impl Arm {
    fn key(self) -> &'static str {
        match self {
            Arm::Floor => "native-floor",
            Arm::Provkey => "provkey",
            Arm::Regorus => "regorus",
            Arm::Opa => "opa",
            Arm::ProvkeySequential => "provkey-sequential",
            Arm::ProvkeyOnDemand => "provkey-on-demand",
            Arm::ProvkeyNoCow => "provkey-no-cow",
            Arm::ProvkeyNoEpoch => "provkey-no-epoch",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Arm::Floor => "native floor (stock Rust, 1 thread, mimalloc)",
            Arm::Provkey => "provkey (stock Wasm, parallel)",
            Arm::Regorus => "regorus 0.14 (Rego)",
            Arm::Opa => "OPA v1.20.2 (Go, in-process .so)",
            Arm::ProvkeySequential => "  variant: policies one by one",
            Arm::ProvkeyOnDemand => "  variant: on-demand allocator (no instance pool)",
            Arm::ProvkeyNoCow => "  variant: no copy-on-write images",
            Arm::ProvkeyNoEpoch => "  variant: no epoch interruption (no deadline)",
        }
    }

    fn parse(key: &str) -> Option<Arm> {
        [
            Arm::Floor,
            Arm::Provkey,
            Arm::Regorus,
            Arm::Opa,
            Arm::ProvkeySequential,
            Arm::ProvkeyOnDemand,
            Arm::ProvkeyNoCow,
            Arm::ProvkeyNoEpoch,
        ]
        .into_iter()
        .find(|a| a.key() == key)
    }
}

/// What one child process reports.
#[derive(Debug, Clone)]
struct Run {
    median: Duration,
    rss_kb: u64,
    count: usize,
    digest: String,
    per_rule: Value,
}

// ---------------------------------------------------------------------------------
// The child: one arm, one plan, timed in process.
// ---------------------------------------------------------------------------------

/// One arm's evaluation: plan text in, findings out.
type CheckFn = Box<dyn FnMut(&str) -> Result<Vec<Key>>>;

pub fn run_arm(args: &ArmArgs) -> Result<()> {
    let arm = Arm::parse(&args.arm).with_context(|| format!("unknown arm `{}`", args.arm))?;
    let text = std::fs::read_to_string(&args.plan)
        .with_context(|| format!("cannot read `{}`", args.plan.display()))?;
    let setup = Instant::now();
    let mut check: CheckFn = match arm {
        Arm::Floor => Box::new(|t: &str| Ok(floor::keys(&floor::check(t)?))),
        Arm::Provkey
        | Arm::ProvkeySequential
        | Arm::ProvkeyOnDemand
        | Arm::ProvkeyNoCow
        | Arm::ProvkeyNoEpoch => {
            let tuning = match arm {
                Arm::ProvkeyOnDemand => Tuning::OnDemand,
                Arm::ProvkeyNoCow => Tuning::NoCow,
                Arm::ProvkeyNoEpoch => Tuning::NoEpoch,
                _ => Tuning::Product,
            };
            let provkey = Provkey::new(text.len(), args.cache.clone(), tuning)?;
            if arm == Arm::ProvkeySequential {
                Box::new(move |t: &str| Ok(provkey.check_sequential(t)?))
            } else {
                Box::new(move |t: &str| Ok(provkey.check(t)?))
            }
        }
        Arm::Opa | Arm::Regorus => bail!(
            "the `{}` arm runs in its own program (opa_arm.py, provkey-rego)",
            arm.key()
        ),
    };
    let setup = setup.elapsed();
    let mut keys = Vec::new();
    let mut times = Vec::with_capacity(args.iters);
    for i in 0..args.warmup + args.iters.max(1) {
        let started = Instant::now();
        keys = check(&text)?;
        let elapsed = started.elapsed();
        if i >= args.warmup {
            times.push(elapsed);
        }
    }
    let keys = normalize(keys);
    let samples = Samples::new(times);
    let report = json!({
        "arm": arm.key(),
        "median_ms": samples.median().as_secs_f64() * 1e3,
        "times_ms": samples_ms(&samples),
        "setup_ms": setup.as_secs_f64() * 1e3,
        "count": keys.len(),
        "digest": digest(&keys),
        "per_rule": per_rule(&keys),
        "rss_kb": provkey_bench::rss::peak_rss_kib().unwrap_or(0),
    });
    println!("{report}");
    Ok(())
}

fn samples_ms(samples: &Samples) -> Vec<f64> {
    (0..samples.len())
        .map(|i| {
            samples
                .percentile(100.0 * (i + 1) as f64 / samples.len() as f64)
                .as_secs_f64()
                * 1e3
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// The parent.
// ---------------------------------------------------------------------------------

struct Peers {
    python: Option<PathBuf>,
    opa_lib: Option<PathBuf>,
    opa_why: String,
    checkov: Option<PathBuf>,
    checkov_why: String,
}

fn find_peers(args: &CompareArgs) -> Peers {
    let dir = args.peers.clone();
    let python = which("python3");
    let (opa_lib, opa_why) = match &dir {
        None => (
            None,
            "no peers directory: run host/bench/run.sh (or pass --peers)".to_string(),
        ),
        Some(d) => {
            let lib = d.join("opa/wheel/opa_bindings/libopabridge.so");
            if !lib.is_file() {
                (
                    None,
                    format!(
                        "`{}` is missing: host/bench/run.sh downloads the PyPI wheel \
                         opa-golib-python-bindings that ships it",
                        lib.display()
                    ),
                )
            } else if python.is_none() {
                (None, "no python3 to load the OPA library with".to_string())
            } else {
                (Some(lib), String::new())
            }
        }
    };
    let (checkov, checkov_why) = match &dir {
        None => (
            None,
            "no peers directory: run host/bench/run.sh".to_string(),
        ),
        Some(d) => {
            let bin = d.join("venv/bin/checkov");
            if bin.is_file() {
                (Some(bin), String::new())
            } else {
                (
                    None,
                    format!(
                        "`{}` is missing: host/bench/run.sh installs checkov from PyPI",
                        bin.display()
                    ),
                )
            }
        }
    };
    Peers {
        python,
        opa_lib,
        opa_why,
        checkov,
        checkov_why,
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

struct Ctx {
    bench: PathBuf,
    rego_bin: PathBuf,
    work: PathBuf,
    cache: PathBuf,
    opa_script: PathBuf,
    peers: Peers,
}

pub fn run_compare(args: &CompareArgs) -> Result<()> {
    let tmp;
    let work = match &args.work {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            dir.clone()
        }
        None => {
            tmp = tempfile::tempdir().context("cannot make a temporary directory")?;
            tmp.path().to_path_buf()
        }
    };
    let bench = std::env::current_exe().context("cannot find the bench binary")?;
    let opa_script = work.join("opa_arm.py");
    std::fs::write(&opa_script, OPA_SCRIPT).context("cannot write opa_arm.py")?;
    let rego_bin = args
        .rego_bin
        .clone()
        .context("no regorus arm: pass --rego-bin (host/bench/run.sh builds host/bench-rego)")?;
    if !rego_bin.is_file() {
        bail!(
            "the regorus arm `{}` does not exist: build it with `cargo build --release \
             --manifest-path host/bench-rego/Cargo.toml` (host/bench/run.sh does)",
            rego_bin.display()
        );
    }
    let ctx = Ctx {
        bench,
        rego_bin,
        cache: work.join("cache"),
        opa_script,
        peers: find_peers(args),
        work,
    };

    let machine = Machine::probe();
    println!("# provkey-bench compare");
    println!("date        {}", machine.date_utc);
    println!(
        "cpu         {} ({} logical CPUs, {} available)",
        machine.cpu_model, machine.cpus, machine.available
    );
    println!(
        "kernel      {} ; build {} ; wasmtime {WASMTIME_VERSION} ; seed {:#x}",
        machine.kernel, machine.profile, args.seed
    );
    println!("load avg    {} (before)", loadavg());
    if machine.profile == "debug" {
        println!("WARNING: debug build; figures are meaningless (use host/bench/run.sh).");
    }
    println!(
        "rules       K = 10: {} (stock configs: {})",
        floor::RULES.join(", "),
        floor::CONFIGS
            .iter()
            .filter(|(_, c)| *c != "{}")
            .map(|(id, c)| format!("{id} {c}"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    if ctx.peers.opa_lib.is_none() {
        println!("OPA         not available here: {}", ctx.peers.opa_why);
    }

    warm_cache(args, &ctx)?;
    let mut by_size: BTreeMap<usize, BTreeMap<Arm, Summary>> = BTreeMap::new();
    for &n in &args.sizes {
        let summary = size_section(args, &ctx, n)?;
        by_size.insert(n, summary);
    }
    growth_section(&by_size);
    if !args.skip_checkov {
        checkov_section(args, &ctx, &by_size)?;
    }
    if !args.skip_cold {
        cold_section(args, &ctx)?;
    }
    if !args.skip_real {
        real_section(args, &ctx)?;
    }
    println!();
    println!("load avg    {} (after)", loadavg());
    Ok(())
}

/// Runs every Wasm arm once on a small plan, untimed, so that each engine
/// configuration's compiled components are in the cache before any round: a peak RSS
/// must not include Cranelift compiling them (a cold cache is the polyglot bench's
/// "first compile").
fn warm_cache(args: &CompareArgs, ctx: &Ctx) -> Result<()> {
    let generated = genplan::generate(10, args.seed);
    let plan = ctx.work.join("plan-warm-cache.json");
    std::fs::write(&plan, &generated.json)
        .with_context(|| format!("cannot write `{}`", plan.display()))?;
    let mut arms = arms_for(args, ctx, 10);
    arms.retain(|arm| !matches!(arm, Arm::Floor | Arm::Regorus | Arm::Opa));
    for &arm in &arms {
        run_child(ctx, arm, &plan, 0, 1)
            .with_context(|| format!("cannot warm the compilation cache for `{}`", arm.key()))?;
    }
    println!(
        "cache       the components compiled for {} engine configuration{} in `{}` before the rounds",
        arms.len(),
        if arms.len() == 1 { "" } else { "s" },
        ctx.cache.display()
    );
    Ok(())
}

/// What one arm gave at one size, over all rounds.
#[derive(Debug, Clone)]
struct Summary {
    median: Duration,
    ratio: f64,
    vs_regorus: Option<f64>,
    rss_ratio: f64,
}

fn iterations(arm: Arm, n: usize) -> (usize, usize) {
    let slow = matches!(arm, Arm::Regorus | Arm::Opa);
    match n {
        0..=100 => (20, 200),
        101..=1_000 => (3, 30),
        1_001..=10_000 if slow => (0, 1),
        1_001..=10_000 => (1, 3),
        _ if slow => (0, 1),
        _ => (1, 3),
    }
}

fn arms_for(args: &CompareArgs, ctx: &Ctx, n: usize) -> Vec<Arm> {
    let mut arms = vec![Arm::Floor, Arm::Provkey, Arm::Regorus];
    if ctx.peers.opa_lib.is_some() {
        arms.push(Arm::Opa);
    }
    if args.variants && n <= 10_000 {
        arms.extend([
            Arm::ProvkeySequential,
            Arm::ProvkeyOnDemand,
            Arm::ProvkeyNoCow,
            Arm::ProvkeyNoEpoch,
        ]);
    }
    arms
}

fn size_section(args: &CompareArgs, ctx: &Ctx, n: usize) -> Result<BTreeMap<Arm, Summary>> {
    let generated = genplan::generate(n, args.seed);
    let plan = ctx.work.join(format!("plan-{n}.json"));
    std::fs::write(&plan, &generated.json)
        .with_context(|| format!("cannot write `{}`", plan.display()))?;
    let arms = arms_for(args, ctx, n);
    let rounds = if n > 10_000 {
        args.rounds_large
    } else {
        args.rounds
    }
    .max(1);
    println!();
    println!(
        "## N = {n} changes ({:.1} MB), {rounds} rounds, arms in shuffled order each round",
        generated.json.len() as f64 / 1e6
    );

    // The reference: the floor in this process, so a disagreement can be shown.
    let reference = normalize(floor::keys(&floor::check(&generated.json)?));
    let reference_digest = digest(&reference);
    let mut runs: BTreeMap<Arm, Vec<Run>> = BTreeMap::new();
    let mut order_rng = args.seed ^ (n as u64);
    let mut dropped_load = Vec::new();
    for round in 0..rounds {
        dropped_load.push(loadavg());
        let mut order = arms.clone();
        shuffle(&mut order, &mut order_rng);
        for arm in order {
            let (warmup, iters) = iterations(arm, n);
            let run = run_child(ctx, arm, &plan, warmup, iters)?;
            if run.digest != reference_digest || run.count != reference.len() {
                let mut why = format!(
                    "arm `{}` disagrees with the native floor on N = {n} (round {}): {} findings \
                     (digest {}) vs {} (digest {reference_digest}); per rule: {} vs {}",
                    arm.key(),
                    round + 1,
                    run.count,
                    run.digest,
                    reference.len(),
                    run.per_rule,
                    json!(per_rule(&reference)),
                );
                if arm == Arm::Regorus {
                    let keys = rego_keys(ctx, &plan)?;
                    if let Some(d) = first_difference(&reference, &keys) {
                        why.push_str(&format!("; first difference (floor, regorus): {d}"));
                    }
                }
                bail!("{why}\nrefusing to report any time for a run whose arms disagree");
            }
            runs.entry(arm).or_default().push(run);
        }
    }
    println!(
        "all arms agree: {} findings ({}), digest {reference_digest}",
        reference.len(),
        per_rule(&reference)
            .iter()
            .map(|(r, c)| format!("{r} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "load avg at the start of each round: {}",
        dropped_load.join(" | ")
    );

    let floor_runs = runs.get(&Arm::Floor).cloned().unwrap_or_default();
    let regorus_runs = runs.get(&Arm::Regorus).cloned().unwrap_or_default();
    let mut out = BTreeMap::new();
    println!(
        "{:<48} {:>10} {:>10} {:>12} {:>9} {:>9}",
        "arm", "median", "x floor", "regorus / x", "peak RSS", "x floor"
    );
    for arm in &arms {
        let Some(arm_runs) = runs.get(arm) else {
            continue;
        };
        let medians: Vec<Duration> = arm_runs.iter().map(|r| r.median).collect();
        let ratios: Vec<f64> = arm_runs
            .iter()
            .zip(&floor_runs)
            .map(|(a, f)| a.median.as_secs_f64() / f.median.as_secs_f64().max(1e-12))
            .collect();
        let vs_regorus: Vec<f64> = arm_runs
            .iter()
            .zip(&regorus_runs)
            .map(|(a, r)| r.median.as_secs_f64() / a.median.as_secs_f64().max(1e-12))
            .collect();
        let rss_kb = arm_runs.iter().map(|r| r.rss_kb).max().unwrap_or(0);
        let floor_rss = floor_runs
            .iter()
            .map(|r| r.rss_kb)
            .max()
            .unwrap_or(1)
            .max(1);
        let summary = Summary {
            median: Samples::new(medians).median(),
            ratio: median_f64(ratios),
            vs_regorus: (!regorus_runs.is_empty()).then(|| median_f64(vs_regorus)),
            rss_ratio: rss_kb as f64 / floor_rss as f64,
        };
        println!(
            "{:<48} {:>10} {:>9.2}x {:>11.2}x {:>6} MB {:>8.2}x",
            arm.label(),
            human(summary.median),
            summary.ratio,
            summary.vs_regorus.unwrap_or(f64::NAN),
            rss_kb / 1024,
            summary.rss_ratio,
        );
        out.insert(*arm, summary);
    }
    Ok(out)
}

fn median_f64(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values.get(n / 2).copied().unwrap_or(f64::NAN),
        _ => {
            let lo = values.get(n / 2 - 1).copied().unwrap_or(f64::NAN);
            let hi = values.get(n / 2).copied().unwrap_or(f64::NAN);
            (lo + hi) / 2.0
        }
    }
}

/// Fisher-Yates with splitmix64: the same order for the same seed.
fn shuffle<T>(items: &mut [T], state: &mut u64) {
    for i in (1..items.len()).rev() {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let j = usize::try_from(z % (i as u64 + 1)).unwrap_or(0);
        items.swap(i, j);
    }
}

/// regorus's findings on a plan, pair by pair (to show a disagreement).
fn rego_keys(ctx: &Ctx, plan: &Path) -> Result<Vec<Key>> {
    let output = Command::new(&ctx.rego_bin)
        .arg("--plan")
        .arg(plan)
        .arg("--keys")
        .output()?;
    let report: Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "provkey-rego failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    Ok(report["keys"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|k| {
            (
                k[0].as_str().unwrap_or_default().to_string(),
                k[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

fn run_child(ctx: &Ctx, arm: Arm, plan: &Path, warmup: usize, iters: usize) -> Result<Run> {
    let mut cmd = match arm {
        Arm::Regorus => Command::new(&ctx.rego_bin),
        Arm::Opa => {
            let (Some(python), Some(lib)) = (&ctx.peers.python, &ctx.peers.opa_lib) else {
                bail!("OPA is not available");
            };
            let mut cmd = Command::new(python);
            cmd.arg(&ctx.opa_script).arg("--lib").arg(lib);
            cmd
        }
        _ => {
            let mut cmd = Command::new(&ctx.bench);
            cmd.arg("arm").arg("--arm").arg(arm.key());
            cmd.arg("--cache").arg(&ctx.cache);
            cmd
        }
    };
    cmd.arg("--plan")
        .arg(plan)
        .arg("--warmup")
        .arg(warmup.to_string())
        .arg("--iters")
        .arg(iters.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped());
    if arm == Arm::Opa {
        cmd.env("PROVKEY_BENCH_REGO", ctx.work.join("stock.rego"));
        std::fs::write(ctx.work.join("stock.rego"), floor::REGO)?;
    }
    let output = cmd
        .output()
        .with_context(|| format!("cannot run the `{}` arm", arm.key()))?;
    // provkey-rego exits 1 when it found something, like a policy check.
    let ok = output.status.success() || (arm == Arm::Regorus && output.status.code() == Some(1));
    if !ok {
        bail!(
            "the `{}` arm failed ({}): {}",
            arm.key(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let line = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(line.trim().lines().last().unwrap_or_default())
        .with_context(|| format!("the `{}` arm printed no report: {line}", arm.key()))?;
    Ok(Run {
        median: Duration::from_secs_f64(report["median_ms"].as_f64().unwrap_or(0.0) / 1e3),
        rss_kb: report["rss_kb"].as_u64().unwrap_or(0),
        count: usize::try_from(report["count"].as_u64().unwrap_or(0)).unwrap_or(0),
        digest: report["digest"].as_str().unwrap_or_default().to_string(),
        per_rule: report["per_rule"].clone(),
    })
}

// ---------------------------------------------------------------------------------
// Growth.
// ---------------------------------------------------------------------------------

fn growth_section(by_size: &BTreeMap<usize, BTreeMap<Arm, Summary>>) {
    let sizes: Vec<usize> = by_size.keys().copied().filter(|&n| n >= 1_000).collect();
    if sizes.len() < 2 {
        return;
    }
    println!();
    println!(
        "## growth: least-squares slope of log(t(N) - t(10)) against log N over N = {}",
        sizes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let arms: Vec<Arm> = by_size
        .values()
        .flat_map(|m| m.keys().copied())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for arm in arms {
        let base = by_size
            .get(&10)
            .and_then(|m| m.get(&arm))
            .map_or(0.0, |s| s.median.as_secs_f64());
        let points: Vec<(f64, f64)> = sizes
            .iter()
            .filter_map(|n| {
                let t = by_size.get(n)?.get(&arm)?.median.as_secs_f64() - base;
                (t > 0.0).then(|| ((*n as f64).ln(), t.ln()))
            })
            .collect();
        if points.len() < 2 {
            continue;
        }
        println!("{:<48} {:>6.2}", arm.label(), slope(&points));
    }
}

fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    sxy / sxx.max(1e-12)
}

// ---------------------------------------------------------------------------------
// Checkov.
// ---------------------------------------------------------------------------------

/// Checkov's closest built-in check to the ten rules that it has: CKV_AWS_24, no
/// security group allows ingress from 0.0.0.0/0 to port 22 (`remote-shell-open`).
const CHECKOV_CHECK: &str = "CKV_AWS_24";
const CHECKOV_SIZE: usize = 1_000;

fn checkov_section(
    args: &CompareArgs,
    ctx: &Ctx,
    by_size: &BTreeMap<usize, BTreeMap<Arm, Summary>>,
) -> Result<()> {
    println!();
    println!(
        "## Checkov {CHECKOV_CHECK} (its closest built-in check: SSH open to 0.0.0.0/0), N = {CHECKOV_SIZE}, one process, offline"
    );
    let Some(checkov) = &ctx.peers.checkov else {
        println!("not available here: {}", ctx.peers.checkov_why);
        return Ok(());
    };
    let generated = genplan::generate(CHECKOV_SIZE, args.seed);
    let plan = ctx.work.join(format!("plan-{CHECKOV_SIZE}.json"));
    std::fs::write(&plan, &generated.json)?;
    let want: std::collections::BTreeSet<String> = floor::keys(&floor::check(&generated.json)?)
        .into_iter()
        .filter(|(rule, _)| rule == "remote-shell-open")
        .map(|(_, address)| address)
        .collect();
    let started = Instant::now();
    let output = Command::new(checkov)
        .args([
            "--framework",
            "terraform_plan",
            "--skip-download",
            "--quiet",
        ])
        .args([
            "--compact",
            "--soft-fail",
            "-o",
            "json",
            "--check",
            CHECKOV_CHECK,
        ])
        .arg("-f")
        .arg(&plan)
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("cannot run checkov")?;
    let wall = started.elapsed();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let failed = checkov_failed(&report);
    let got: std::collections::BTreeSet<String> = failed.iter().cloned().collect();
    let agree = got == want;
    println!(
        "checkov wall {} ; failed {CHECKOV_CHECK}: {} resources ; provkey/floor remote-shell-open: {} resources ; {}",
        human(wall),
        got.len(),
        want.len(),
        if agree {
            "same resources".to_string()
        } else {
            let only_checkov = got.difference(&want).count();
            let only_ours = want.difference(&got).count();
            format!(
                "DIFFERENT resources ({only_checkov} only in Checkov, {only_ours} only in ours): \
                 not comparable finding for finding, so only the wall time is shown"
            )
        }
    );
    if let Some(provkey) = by_size
        .get(&CHECKOV_SIZE)
        .and_then(|m| m.get(&Arm::Provkey))
    {
        println!(
            "Checkov (one check, process) / provkey (ten rules, in process): {:.0}x",
            wall.as_secs_f64() / provkey.median.as_secs_f64().max(1e-12)
        );
    }
    Ok(())
}

/// Addresses of the resources that failed a check in Checkov's JSON report (one
/// report object, or a list of them per framework).
fn checkov_failed(report: &Value) -> Vec<String> {
    let reports: Vec<&Value> = match report {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    reports
        .into_iter()
        .flat_map(|r| {
            r["results"]["failed_checks"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|check| check["resource"].as_str().map(str::to_string))
        .collect()
}

// ---------------------------------------------------------------------------------
// Cold processes.
// ---------------------------------------------------------------------------------

const COLD_SIZE: usize = 1_000;
const COLD_ROUNDS: usize = 15;

fn cold_section(args: &CompareArgs, ctx: &Ctx) -> Result<()> {
    println!();
    println!(
        "## cold process, N = {COLD_SIZE}: spawn to exit, {COLD_ROUNDS} rounds, shuffled; provkey with its compilation cache warm"
    );
    let dir = ctx
        .bench
        .parent()
        .context("the bench binary has no directory")?;
    let provkey = dir.join("provkey");
    let floor_bin = dir.join("provkey-floor");
    let floor_mimalloc_bin = dir.join("provkey-floor-mimalloc");
    let rego_bin = ctx.rego_bin.clone();
    for bin in [&provkey, &floor_bin, &floor_mimalloc_bin, &rego_bin] {
        if !bin.is_file() {
            println!(
                "SKIPPED: `{}` is missing: build it with `cargo build --release -p provkey -p provkey-bench`",
                bin.display()
            );
            return Ok(());
        }
    }
    let generated = genplan::generate(COLD_SIZE, args.seed);
    let plan = ctx.work.join(format!("plan-{COLD_SIZE}.json"));
    std::fs::write(&plan, &generated.json)?;
    let want = normalize(floor::keys(&floor::check(&generated.json)?));

    let mut provkey_cmd = vec!["check".to_string(), "--plan".to_string()];
    provkey_cmd.push(plan.display().to_string());
    for (id, config) in floor::CONFIGS {
        provkey_cmd.extend(["--policy".to_string(), id.to_string()]);
        let file = ctx.work.join(format!("config-{id}.json"));
        std::fs::write(&file, config)?;
        provkey_cmd.extend(["--config".to_string(), format!("{id}={}", file.display())]);
    }
    let cache = ctx.work.join("cli-cache");
    // Fill the cache and check the findings once.
    let output = Command::new(&provkey)
        .args(&provkey_cmd)
        .args(["--format", "json"])
        .env("PROVKEY_CACHE_DIR", &cache)
        .stdin(Stdio::null())
        .output()
        .context("cannot run provkey")?;
    let report: Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "`provkey check` printed no JSON report: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let got = normalize(
        report["findings"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|f| {
                (
                    f["rule"].as_str().unwrap_or_default().to_string(),
                    f["address"].as_str().unwrap_or("-").to_string(),
                )
            })
            .collect(),
    );
    if got != want {
        bail!(
            "`provkey check` disagrees with the native floor: {} vs {} findings ({:?}); refusing to report times",
            got.len(),
            want.len(),
            first_difference(&want, &got)
        );
    }
    let plan_arg = plan.display().to_string();
    let arms: Vec<(&str, PathBuf, Vec<String>)> = vec![
        (
            "provkey check (6 stock components, warm cache)",
            provkey.clone(),
            provkey_cmd
                .iter()
                .cloned()
                .chain(["--format".to_string(), "json".to_string()])
                .collect(),
        ),
        (
            "native binary (provkey-floor)",
            floor_bin,
            vec![plan_arg.clone()],
        ),
        (
            "native binary, provkey's allocator (mimalloc)",
            floor_mimalloc_bin,
            vec![plan_arg.clone()],
        ),
        (
            "regorus binary (provkey-rego)",
            rego_bin,
            vec!["--plan".to_string(), plan_arg],
        ),
    ];
    // Each native process prints its count and digest: check them once too.
    for (label, bin, argv) in arms.iter().skip(1) {
        let out = Command::new(bin).args(argv).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let expected = digest(&want);
        if !text.contains(&expected) {
            bail!(
                "{label} printed `{}`, expected digest `{expected}`",
                text.trim()
            );
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); arms.len()];
    let mut state = args.seed;
    for _ in 0..COLD_ROUNDS {
        let mut order: Vec<usize> = (0..arms.len()).collect();
        shuffle(&mut order, &mut state);
        for i in order {
            let Some((_, bin, argv)) = arms.get(i) else {
                continue;
            };
            let wall = timed_process(bin, argv, &cache)?;
            if let Some(t) = times.get_mut(i) {
                t.push(wall);
            }
        }
    }
    let medians: Vec<Duration> = times
        .into_iter()
        .map(|t| Samples::new(t).median())
        .collect();
    let native = medians.get(1).copied().unwrap_or_default().as_secs_f64();
    let native_mimalloc = medians.get(2).copied().unwrap_or_default().as_secs_f64();
    println!(
        "{:<48} {:>10} {:>10} {:>18}",
        "process", "median", "x native", "x native (mimalloc)"
    );
    for ((label, _, _), median) in arms.iter().zip(&medians) {
        println!(
            "{label:<48} {:>10} {:>9.2}x {:>17.2}x",
            human(*median),
            median.as_secs_f64() / native.max(1e-12),
            median.as_secs_f64() / native_mimalloc.max(1e-12),
        );
    }
    Ok(())
}

/// Runs a process to its end; returns its wall time.
fn timed_process(bin: &Path, argv: &[String], cache: &Path) -> Result<Duration> {
    let started = Instant::now();
    let status = Command::new(bin)
        .args(argv)
        .env("PROVKEY_CACHE_DIR", cache)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("cannot run `{}`", bin.display()))?;
    let wall = started.elapsed();
    if !matches!(status.code(), Some(0 | 1)) {
        bail!("`{}` exited with {status}", bin.display());
    }
    Ok(wall)
}

// ---------------------------------------------------------------------------------
// Real plans.
// ---------------------------------------------------------------------------------

const REAL_REPS: usize = 5;

fn real_dir(args: &CompareArgs) -> Option<PathBuf> {
    if let Some(dir) = &args.real_plans {
        return Some(dir.clone());
    }
    if let Some(shared) = std::env::var_os("PROVKEY_SHARED_DIR") {
        return Some(PathBuf::from(shared).join("data/terraform-plans"));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Some(root.join("../shared/data/terraform-plans"))
}

fn real_section(args: &CompareArgs, ctx: &Ctx) -> Result<()> {
    println!();
    println!(
        "## real plans: every plan in ../shared/data/terraform-plans, the same ten rules, median of {REAL_REPS} per plan, summed"
    );
    let Some(dir) = real_dir(args).filter(|d| d.is_dir()) else {
        println!(
            "SKIPPED: no ../shared/data/terraform-plans beside the repository (set PROVKEY_SHARED_DIR or --real-plans)"
        );
        return Ok(());
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let largest = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok().map(|m| m.len()))
        .max()
        .unwrap_or(0);
    let provkey = Provkey::new(
        usize::try_from(largest).unwrap_or(usize::MAX),
        Some(ctx.cache.clone()),
        Tuning::Product,
    )?;
    let mut arms: Vec<(Arm, Duration, Vec<String>)> = vec![
        (Arm::Floor, Duration::ZERO, Vec::new()),
        (Arm::Provkey, Duration::ZERO, Vec::new()),
        (Arm::Regorus, Duration::ZERO, Vec::new()),
    ];
    if ctx.peers.opa_lib.is_some() {
        arms.push((Arm::Opa, Duration::ZERO, Vec::new()));
    }
    let mut checked = 0usize;
    let mut unreadable = Vec::new();
    let mut bytes = 0usize;
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let reference = match floor::check(&text) {
            Ok(f) => normalize(floor::keys(&f)),
            Err(err) => {
                unreadable.push(format!("{name} ({err})"));
                continue;
            }
        };
        let reference_digest = digest(&reference);
        checked += 1;
        bytes += text.len();
        for (arm, total, disagree) in arms.iter_mut() {
            let (median, agrees) = match arm {
                Arm::Floor | Arm::Provkey => {
                    let mut samples = Vec::new();
                    let mut keys = Vec::new();
                    for _ in 0..REAL_REPS {
                        let t = Instant::now();
                        keys = if *arm == Arm::Floor {
                            floor::keys(&floor::check(&text)?)
                        } else {
                            provkey.check(&text)?
                        };
                        samples.push(t.elapsed());
                    }
                    (Samples::new(samples).median(), normalize(keys) == reference)
                }
                _ => {
                    let run = run_child(ctx, *arm, file, 1, REAL_REPS)?;
                    (run.median, run.digest == reference_digest)
                }
            };
            *total += median;
            if !agrees {
                disagree.push(name.clone());
            }
        }
    }
    println!(
        "{checked} plans ({:.1} MB); not readable as plans by provkey (skipped by every arm): {}",
        bytes as f64 / 1e6,
        if unreadable.is_empty() {
            "none".to_string()
        } else {
            unreadable.join(", ")
        }
    );
    let floor_total = arms.first().map_or(1e-12, |a| a.1.as_secs_f64()).max(1e-12);
    println!(
        "{:<48} {:>10} {:>10} {:>22}",
        "tool", "total", "x floor", "same findings as floor"
    );
    for (arm, total, disagree) in &arms {
        let note = if matches!(arm, Arm::Floor | Arm::Provkey) {
            "in process"
        } else {
            "in its own process; Rego ported to the generator's shapes"
        };
        println!(
            "{:<48} {:>10} {:>9.2}x {:>10}/{checked} plans  ({note}){}",
            arm.label(),
            human(*total),
            total.as_secs_f64() / floor_total,
            checked - disagree.len(),
            if disagree.is_empty() {
                String::new()
            } else {
                format!("; differs on: {}", disagree.join(", "))
            }
        );
    }
    let _ = std::io::stdout().flush();
    Ok(())
}
