//! Where the time of one check goes, phase by phase: the host's parse, then
//! `check_plan` (every policy in its own sandbox, across the pool's threads), with
//! each policy's own time, and freeing the plan and findings. Medians over the
//! iterations.
//!
//! ```sh
//! cargo run --release -p provkey-bench --example timeline -- PLAN.json [ITERS]
//! ```
//!
//! `PROVKEY_CACHE_DIR=DIR` is the compilation cache (default: none). The sum of the
//! policies' times over the wall time of `check_plan` is how well they share the
//! cores; the parse runs on one.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use provkey_bench::floor::CONFIGS;
use provkey_plan::Plan;
use provkey_runtime::{PolicyOrigin, Runtime, RuntimeOptions, check_plan};

// The allocator of `provkey check` and of the benchmark's arms.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: timeline PLAN.json [ITERS]")?;
    let iters: usize = match std::env::args().nth(2) {
        Some(n) => n.parse().context("ITERS must be a number")?,
        None => 20,
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read `{path}`"))?;
    let limits = provkey_bench::wasm::limits_for(text.len());
    let config = provkey_runtime::engine_config(&limits);
    let cache_dir = std::env::var_os("PROVKEY_CACHE_DIR").map(Into::into);
    let runtime = Runtime::with_engine_config(RuntimeOptions { limits, cache_dir }, &config)?;
    let mut policies = Vec::new();
    for (id, _) in CONFIGS {
        let stock = provkey_stock::find(id)
            .with_context(|| format!("stock policy `{id}` is not embedded"))?;
        policies.push(runtime.load_policy(stock.id, PolicyOrigin::Stock, stock.bytes)?);
    }
    let configs = CONFIGS
        .iter()
        .map(|(id, c)| (id.to_string(), c.to_string()))
        .collect();

    // One row per iteration: parse, check_plan, freeing, then each policy's own time.
    let mut rows: Vec<Vec<f64>> = Vec::with_capacity(iters);
    for _ in 0..iters.max(1) {
        let started = Instant::now();
        let plan = Arc::new(Plan::from_json(&text)?);
        let parsed = ms(started);
        let outcomes = check_plan(&runtime, &plan, &policies, &configs);
        let checked = ms(started);
        let mut row = vec![parsed, checked - parsed, 0.0];
        for outcome in &outcomes {
            if let Err(err) = &outcome.result {
                return Err(anyhow!("policy `{}`: {err}", outcome.id));
            }
            row.push(outcome.elapsed.as_secs_f64() * 1e3);
        }
        drop(outcomes);
        drop(plan);
        row[2] = ms(started) - checked;
        rows.push(row);
    }
    let median = |column: usize| {
        let mut values: Vec<f64> = rows.iter().filter_map(|r| r.get(column).copied()).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or_default()
    };
    let policies_total: f64 = (0..CONFIGS.len()).map(|k| median(3 + k)).sum();
    println!("parse                {:9.2} ms", median(0));
    println!(
        "check_plan           {:9.2} ms  (policies' time {:.2} ms: {:.2} cores busy)",
        median(1),
        policies_total,
        policies_total / median(1).max(f64::MIN_POSITIVE)
    );
    for (k, (id, _)) in CONFIGS.iter().enumerate() {
        println!("  {id:22} {:9.2} ms", median(3 + k));
    }
    println!("freeing the plan    {:9.2} ms", median(2));
    Ok(())
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}
