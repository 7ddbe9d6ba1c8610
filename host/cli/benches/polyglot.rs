//! The same policy (`required-tags`) in Rust, Python, JavaScript and C: component
//! size, first compilation, loading the compiled form from a warm cache, a cold
//! `provkey check` with a warm cache on plans of 10 and 1,000 changes (issue 7's
//! target: under 100 ms at 1,000), and the per-evaluation latency on the same plans.
//!
//! `cargo bench -p provkey --bench polyglot`
//!
//! The Python, JavaScript and C ports (tests/polyglot/required-tags/) are built
//! with `provkey build` first (componentize-py, componentize-js, and clang with
//! wasi-libc must be installed; a language whose build fails is reported and
//! skipped). Plans come from
//! `provkey_bench::genplan` (seeded, so every run reads the same bytes).

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use provkey_plan::Plan;
use provkey_runtime::{GuestPlan, PlanIndex, PolicyOrigin, Runtime, RuntimeOptions};

const EVAL_RUNS: usize = 20;
const CLI_RUNS: usize = 9;

fn provkey() -> Command {
    Command::new(env!("CARGO_BIN_EXE_provkey"))
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scratch = tempfile::tempdir()?;
    let mut components: Vec<(&str, PathBuf)> = Vec::new();
    let rust = scratch.path().join("rust.wasm");
    let stock = provkey_stock::find("required-tags").ok_or("no stock `required-tags`")?;
    std::fs::write(&rust, stock.bytes)?;
    components.push(("Rust", rust));
    for (label, lang) in [("Python", "python"), ("JavaScript", "js"), ("C", "c")] {
        let out = scratch.path().join(format!("{lang}.wasm"));
        let built = provkey()
            .arg("build")
            .arg(repo(&format!("tests/polyglot/required-tags/{lang}")))
            .arg("-o")
            .arg(&out)
            .output()?;
        if built.status.success() {
            components.push((label, out));
        } else {
            println!(
                "{label}: cannot build ({}), skipped",
                String::from_utf8_lossy(&built.stderr).trim()
            );
        }
    }

    let plans: Vec<(usize, Arc<Plan>, PathBuf)> = [10, 1_000]
        .into_iter()
        .map(|n| {
            let json =
                provkey_bench::genplan::generate(n, provkey_bench::genplan::DEFAULT_SEED).json;
            let path = scratch.path().join(format!("plan-{n}.json"));
            std::fs::write(&path, &json)?;
            Ok((n, Arc::new(Plan::from_json(&json)?), path))
        })
        .collect::<Result<_, Box<dyn std::error::Error>>>()?;

    println!(
        "{:<11} {:>10} {:>14} {:>12} {:>14} {:>14} {:>12} {:>12}",
        "language",
        "size",
        "first compile",
        "warm load",
        "cold check 10",
        "cold chk 1000",
        "eval 10",
        "eval 1000"
    );
    for (label, path) in &components {
        let size = std::fs::metadata(path)?.len();
        let cache = scratch.path().join(format!("cache-{label}"));
        let runtime = Runtime::new(RuntimeOptions {
            cache_dir: Some(cache.clone()),
            ..RuntimeOptions::default()
        })?;
        let bytes = std::fs::read(path)?;
        let started = Instant::now();
        let policy = runtime.load_policy(label, PolicyOrigin::File(path.clone()), &bytes)?;
        let first_compile = started.elapsed();

        // A fresh runtime (no in-memory state) loading the compiled form from the cache.
        let warm: Vec<Duration> = (0..CLI_RUNS)
            .map(|_| {
                let runtime = Runtime::new(RuntimeOptions {
                    cache_dir: Some(cache.clone()),
                    ..RuntimeOptions::default()
                })?;
                let started = Instant::now();
                runtime.load_policy(label, PolicyOrigin::File(path.clone()), &bytes)?;
                Ok(started.elapsed())
            })
            .collect::<Result<_, Box<dyn std::error::Error>>>()?;

        // A cold process, with the compiled form in the cache, on each plan.
        let cold: Vec<Duration> = plans
            .iter()
            .map(|(_, _, plan_path)| {
                let samples: Vec<Duration> = (0..CLI_RUNS)
                    .map(|_| {
                        let started = Instant::now();
                        let _ = provkey()
                            .env("PROVKEY_CACHE_DIR", &cache)
                            .args(["check", "--format", "json", "--plan"])
                            .arg(plan_path)
                            .arg("--policy")
                            .arg(path)
                            .output();
                        started.elapsed()
                    })
                    .collect();
                median(samples)
            })
            .collect();

        let mut evals = Vec::new();
        for (_, plan, _) in &plans {
            let guest_plan = GuestPlan::new(Arc::clone(plan));
            let index = PlanIndex::new(plan);
            let samples: Vec<Duration> = (0..EVAL_RUNS)
                .map(|_| {
                    let evaluation = runtime.evaluate(&policy, &guest_plan, &index, "{}");
                    evaluation.elapsed
                })
                .collect();
            evals.push(median(samples));
        }
        println!(
            "{:<11} {:>10} {:>14} {:>12} {:>14} {:>14} {:>12} {:>12}",
            label,
            format!("{:.1} KB", size as f64 / 1024.0),
            ms(first_compile),
            ms(median(warm)),
            ms(cold[0]),
            ms(cold[1]),
            ms(evals[0]),
            ms(evals[1])
        );
    }
    println!(
        "(first compile: Cranelift, no cache; warm load: median of {CLI_RUNS} loads by a fresh runtime from the cache; cold check: median of {CLI_RUNS} `provkey check` processes on the 10- and 1,000-change plans with a warm cache; eval: median of {EVAL_RUNS} evaluations in a fresh store)"
    );
    Ok(())
}
