//! Planning benchmark: the time to plan N instance replacements (default 1,000)
//! with the embedded stock planner, and the process's peak memory.
//!
//! `cargo bench -p provkey --bench plan [-- N]`
//!
//! Phases: resolving the desired-state TOML (N instances of one artifact whose
//! digest changed), then `compute_plan` in the Wasm planner including the host's
//! check of the returned plan. Each phase runs several times; the minimum and the
//! median are printed.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use provkey_desired::{Desired, State};
use provkey_plan::Action;
use provkey_runtime::{Limits, PolicyOrigin, Runtime, RuntimeOptions};

const RUNS: usize = 7;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000);
    let old = format!("blake3:{}", "1".repeat(64));
    let new = format!("blake3:{}", "2".repeat(64));

    let mut toml = format!("target = \"bench\"\n[artifact.app]\ndigest = \"{new}\"\n");
    for i in 0..n {
        let _ = write!(
            toml,
            "[instance.svc-{i:05}]\nartifact = \"app\"\n{}[instance.svc-{i:05}.config]\nport = {}\nname = \"service {i}\"\n",
            if i > 0 {
                format!("depends_on = [\"instance.svc-{:05}\"]\n", i / 2)
            } else {
                String::new()
            },
            10_000 + i
        );
    }
    let (desired, resolve) =
        timed(|| Desired::parse(&toml, Path::new("bench.toml"), Path::new(".")))?;
    let desired = desired?;

    // The state the previous version left: the same resources, the old artifact.
    let mut state = State::empty();
    state.lineage = Some(uuid::Uuid::nil());
    state.serial = 1;
    for r in &desired.resources {
        let mut attributes = r.attributes.clone();
        attributes["artifact"]["digest"] = serde_json::json!(old);
        state.resources.push(provkey_desired::StateResource {
            address: r.address.clone(),
            kind: r.kind,
            name: r.name.clone(),
            depends_on: r.depends_on.clone(),
            artifact_digest: Some(old.clone()),
            config_digest: r.config_digest.clone(),
            attributes,
        });
    }
    state.validate()?;
    let (desired_json, current_json) = (desired.to_json(), state.to_json());

    let runtime = Runtime::new(RuntimeOptions {
        limits: Limits {
            deadline: Duration::from_secs(60),
            ..Limits::default()
        },
        cache_dir: None,
    })?;
    let stock = provkey_stock::find_planner(provkey_stock::DEFAULT_PLANNER)
        .ok_or("the stock planner is not embedded")?;
    let (planner, load) =
        timed(|| runtime.load_planner(stock.id, PolicyOrigin::Stock, stock.bytes))?;
    let planner = planner?;
    let (planned, plan_times) =
        timed(|| runtime.compute_plan(&planner, &desired_json, &current_json))?;
    let planned = planned?;
    let replaces = planned
        .plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Replace(_)))
        .count();
    if replaces != n + 1 {
        return Err(format!("expected {} replacements, got {replaces}", n + 1).into());
    }

    println!("plan {n} instance replacements (+1 artifact) with the stock planner, {RUNS} runs:");
    println!(
        "  desired-state TOML ({} KiB) parsed and resolved: {}",
        toml.len() / 1024,
        stats(&resolve)
    );
    println!(
        "  planner compiled and loaded (no cache):            {}",
        stats(&load)
    );
    println!(
        "  compute-plan in Wasm + host check ({} KiB in):     {}",
        (desired_json.len() + current_json.len()) / 1024,
        stats(&plan_times)
    );
    match provkey_bench::rss::peak_rss_kib() {
        Some(kib) => println!("  peak memory (VmHWM): {:.1} MiB", kib as f64 / 1024.0),
        None => println!("  peak memory: unavailable on this platform"),
    }
    Ok(())
}

/// Runs `f` RUNS times; returns the last result and every duration.
fn timed<T>(mut f: impl FnMut() -> T) -> Result<(T, Vec<Duration>), Box<dyn std::error::Error>> {
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        last = Some(f());
        times.push(started.elapsed());
    }
    let last = last.ok_or("no run")?;
    Ok((last, times))
}

fn stats(times: &[Duration]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort();
    let min = sorted.first().copied().unwrap_or_default();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    format!("min {:.2} ms, median {:.2} ms", ms(min), ms(median))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}
