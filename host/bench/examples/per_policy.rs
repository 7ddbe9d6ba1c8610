//! Times each of the benchmark's stock policies alone, in the Wasm runtime and
//! natively, over one plan file: where the time of `provkey check` goes.
//!
//! ```sh
//! cargo run --release -p provkey-bench --example per_policy -- PLAN.json [ITERS]
//! ```
//!
//! Environment: `WASM_DIR=DIR` loads `DIR/<policy_id>.wasm` instead of the embedded
//! components (to compare builds of the policies); `ONLY=ID` times one policy;
//! `PERFMAP=1` writes `/tmp/perf-PID.map` so that `perf report` names guest
//! functions; `PROVKEY_CACHE_DIR` is the compilation cache (default: none);
//! `CONFIG=JSON` replaces the benchmark's configuration of every policy timed (with
//! `ONLY`, of that one).

use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use provkey_bench::floor::{self, CONFIGS};
use provkey_plan::Plan;
use provkey_runtime::{PolicyOrigin, Runtime, RuntimeOptions};

// The allocator of `provkey check` and of the benchmark's arms.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: per_policy PLAN.json [ITERS]")?;
    let iters: usize = match std::env::args().nth(2) {
        Some(n) => n.parse().context("ITERS must be a number")?,
        None => 5,
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read `{path}`"))?;
    let limits = provkey_bench::wasm::limits_for(text.len());
    let mut config = provkey_runtime::engine_config(&limits);
    if std::env::var_os("PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let cache_dir = std::env::var_os("PROVKEY_CACHE_DIR").map(Into::into);
    let runtime = Runtime::with_engine_config(RuntimeOptions { limits, cache_dir }, &config)?;
    let only = std::env::var("ONLY").ok();

    let started = Instant::now();
    let plan = std::sync::Arc::new(Plan::from_json(&text)?);
    println!("host parse        {:8.2} ms", ms(started));
    let guest_plan = provkey_runtime::GuestPlan::new(std::sync::Arc::clone(&plan));
    let started = Instant::now();
    guest_plan.packed_numbers();
    println!(
        "host summary      {:8.2} ms (what 0.6.0 policies receive)",
        ms(started)
    );
    let index = provkey_runtime::PlanIndex::new(&plan);
    let config_override = std::env::var("CONFIG").ok();
    println!("{:24} {:>12} {:>12}", "policy", "wasm p50", "native");
    for (id, config) in CONFIGS {
        if only.as_deref().is_some_and(|o| o != id) {
            continue;
        }
        let bytes = match std::env::var("WASM_DIR") {
            Ok(dir) => {
                let file = format!("{dir}/{}.wasm", id.replace('-', "_"));
                std::fs::read(&file).with_context(|| format!("cannot read `{file}`"))?
            }
            Err(_) => provkey_stock::find(id)
                .with_context(|| format!("stock policy `{id}` is not embedded"))?
                .bytes
                .to_vec(),
        };
        let policy = runtime.load_policy(id, PolicyOrigin::Stock, &bytes)?;
        let config = config_override.as_deref().unwrap_or(config);
        let mut times = Vec::with_capacity(iters);
        for _ in 0..iters.max(1) {
            let started = Instant::now();
            let evaluation = runtime.evaluate(&policy, &guest_plan, &index, config);
            times.push(ms(started));
            evaluation
                .result
                .map_err(|err| anyhow!("policy `{id}` {err}"))?;
        }
        times.sort_by(f64::total_cmp);
        // A fresh plan, so that this policy pays for the attribute values it parses.
        let fresh = Plan::from_json(&text)?;
        let started = Instant::now();
        floor::check_one(&fresh, id, config)?;
        let native = ms(started);
        let median = times.get(times.len() / 2).copied().unwrap_or_default();
        println!("{id:24} {median:9.2} ms {native:9.2} ms");
    }
    Ok(())
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}
