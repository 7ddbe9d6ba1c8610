//! The product's arm: the embedded stock components in the real runtime
//! (`provkey_runtime::check_plan`: the plan parsed once by the host, converted to
//! the WIT record once, then every policy in a fresh sandbox, in parallel).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use provkey_plan::Plan;
use provkey_runtime::{Limits, LoadedPolicy, PolicyOrigin, Runtime, RuntimeOptions, check_plan};

use crate::findings::Key;
use crate::floor::CONFIGS;

/// How the engine is set up: the product's configuration, or a variant measured
/// against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuning {
    /// `provkey_runtime::engine_config`, unchanged.
    Product,
    /// wasmtime's on-demand allocator (a fresh mapping for every instance's
    /// memory) instead of the product's instance pool.
    OnDemand,
    /// Copy-on-write memory images switched off (data segments copied per instance).
    NoCow,
    /// No epoch interruption: what the deadline costs (the product never runs so).
    NoEpoch,
}

impl Tuning {
    pub fn key(self) -> &'static str {
        match self {
            Tuning::Product => "product",
            Tuning::OnDemand => "on-demand",
            Tuning::NoCow => "no-cow",
            Tuning::NoEpoch => "no-epoch",
        }
    }
}

/// The limits the bench gives a plan of `bytes`: the CLI's memory rule (4 times the
/// plan plus 64 MiB, at least the default) and a deadline that never fires (the
/// bench measures time; it does not stop slow runs).
pub fn limits_for(bytes: usize) -> Limits {
    let defaults = Limits::default();
    Limits {
        memory_bytes: defaults
            .memory_bytes
            .max(bytes.saturating_mul(4).saturating_add(64 << 20)),
        deadline: Duration::from_secs(600),
        ..defaults
    }
}

/// A runtime with the six stock policies of the benchmark loaded.
pub struct Provkey {
    runtime: Arc<Runtime>,
    policies: Vec<LoadedPolicy>,
    configs: BTreeMap<String, String>,
}

/// Why the provkey arm failed.
#[derive(Debug)]
pub struct WasmError(pub String);

impl std::fmt::Display for WasmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WasmError {}

impl Provkey {
    /// Starts a runtime for plans up to `plan_bytes`, loading the components from
    /// `cache_dir` (compiling them into it the first time).
    pub fn new(
        plan_bytes: usize,
        cache_dir: Option<PathBuf>,
        tuning: Tuning,
    ) -> Result<Provkey, WasmError> {
        let limits = limits_for(plan_bytes);
        let mut config = provkey_runtime::engine_config(&limits);
        match tuning {
            Tuning::Product => {}
            Tuning::OnDemand => {
                config = provkey_runtime::engine_config_on_demand(&limits);
            }
            Tuning::NoCow => {
                config.memory_init_cow(false);
            }
            Tuning::NoEpoch => {
                config.epoch_interruption(false);
            }
        }
        let runtime = Runtime::with_engine_config(RuntimeOptions { limits, cache_dir }, &config)
            .map_err(|e| WasmError(e.to_string()))?;
        let mut policies = Vec::new();
        for (id, _) in CONFIGS {
            let stock = provkey_stock::find(id)
                .ok_or_else(|| WasmError(format!("stock policy `{id}` is not embedded")))?;
            policies.push(
                runtime
                    .load_policy(stock.id, PolicyOrigin::Stock, stock.bytes)
                    .map_err(|e| WasmError(e.to_string()))?,
            );
        }
        let configs = CONFIGS
            .iter()
            .map(|(id, c)| (id.to_string(), c.to_string()))
            .collect();
        Ok(Provkey {
            runtime,
            policies,
            configs,
        })
    }

    /// Parses the plan bytes and runs every policy (in parallel, as `provkey check`).
    pub fn check(&self, text: &str) -> Result<Vec<Key>, WasmError> {
        let plan = Arc::new(Plan::from_json(text).map_err(|e| WasmError(e.to_string()))?);
        let outcomes = check_plan(&self.runtime, &plan, &self.policies, &self.configs);
        let mut keys = Vec::new();
        for outcome in outcomes {
            let findings = outcome.result.map_err(|e| WasmError(e.to_string()))?;
            keys.extend(
                findings
                    .into_iter()
                    .map(|f| (f.rule, f.address.unwrap_or_else(|| "-".to_string()))),
            );
        }
        Ok(keys)
    }

    /// The same, one policy after the other on this thread.
    pub fn check_sequential(&self, text: &str) -> Result<Vec<Key>, WasmError> {
        let plan = Arc::new(Plan::from_json(text).map_err(|e| WasmError(e.to_string()))?);
        let guest_plan = provkey_runtime::GuestPlan::new(Arc::clone(&plan));
        let index = provkey_runtime::PlanIndex::new(&plan);
        let mut keys = Vec::new();
        for policy in &self.policies {
            let config = self
                .configs
                .get(&policy.metadata.id)
                .map_or("{}", String::as_str);
            let findings = self
                .runtime
                .evaluate(policy, &guest_plan, &index, config)
                .result
                .map_err(|e| WasmError(format!("policy `{}` {e}", policy.metadata.id)))?;
            keys.extend(
                findings
                    .into_iter()
                    .map(|f| (f.rule, f.address.unwrap_or_else(|| "-".to_string()))),
            );
        }
        Ok(keys)
    }
}
