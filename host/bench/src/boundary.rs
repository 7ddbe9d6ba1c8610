//! How the plan crosses into a guest: the typed `plan` record, one JSON string,
//! JSON bytes, and no-ops on the typed record and on the string (pure transfer),
//! timed on the
//! bench-only `bench-boundary` guest (tests/guests/bench-boundary).
//!
//! The engine is configured by `provkey_runtime::engine_config`, exactly like the
//! product's; the runtime's own linker only accepts the policy world, so this
//! module links the bench world on an engine of its own.
//! Every call gets a fresh store and instance, as every evaluation does in the
//! product; only the call itself is timed.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use provkey_runtime::WitPlan;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../tests/guests/bench-boundary/wit",
        world: "boundary",
        with: {
            "provkey:plan/types": provkey_runtime::bindings::policy::provkey::plan::types,
        },
    });
}

use bindings::{Boundary, BoundaryPre};

/// wasmtime 48 has its own error type; the bench reports through anyhow.
trait Wt<T> {
    fn wt(self) -> Result<T>;
}

impl<T> Wt<T> for wasmtime::Result<T> {
    fn wt(self) -> Result<T> {
        self.map_err(|err| anyhow::anyhow!("{err:#}"))
    }
}

/// The ways in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    Typed,
    JsonString,
    JsonBytes,
    TransferOnly,
    StringTransferOnly,
}

impl Arm {
    pub const ALL: [Arm; 5] = [
        Arm::Typed,
        Arm::JsonString,
        Arm::JsonBytes,
        Arm::TransferOnly,
        Arm::StringTransferOnly,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Arm::Typed => "(a) typed plan record",
            Arm::JsonString => "(b) JSON string, serde typed+borrowed",
            Arm::JsonBytes => "(c) JSON list<u8>, serde typed+borrowed",
            Arm::TransferOnly => "(d) typed record, no-op (transfer only)",
            Arm::StringTransferOnly => "(e) JSON string, no-op (transfer only)",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Arm::Typed => "typed",
            Arm::JsonString => "json-string",
            Arm::JsonBytes => "json-bytes",
            Arm::TransferOnly => "transfer-only",
            Arm::StringTransferOnly => "string-transfer-only",
        }
    }
}

/// The plan in every form an arm passes.
pub struct Inputs<'a> {
    pub wit: &'a WitPlan,
    /// provkey plan JSON (compact), as `provkey_plan::Plan` serializes it.
    pub json: &'a str,
    /// What the counting arms must return.
    pub updates: u32,
    /// What the typed transfer-only arm must return.
    pub changes: u32,
}

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The bench guest, compiled and linked once.
pub struct BoundaryBench {
    engine: Engine,
    pre: BoundaryPre<State>,
}

impl BoundaryBench {
    pub fn new(component_path: &str) -> Result<Self> {
        let config = provkey_runtime::engine_config(&provkey_runtime::Limits::default());
        let engine = Engine::new(&config).wt()?;
        let bytes = std::fs::read(component_path)
            .with_context(|| format!("cannot read the bench guest `{component_path}`"))?;
        let component = Component::new(&engine, &bytes)
            .wt()
            .context("cannot compile the bench guest")?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).wt()?;
        let pre = BoundaryPre::new(linker.instantiate_pre(&component).wt()?).wt()?;
        Ok(BoundaryBench { engine, pre })
    }

    fn instantiate(&self) -> Result<(Store<State>, Boundary)> {
        let state = State {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        // Armed like the product's deadline, but never reached: no ticker runs here.
        store.set_epoch_deadline(u64::MAX / 2);
        store.epoch_deadline_trap();
        let instance = self.pre.instantiate(&mut store).wt()?;
        Ok((store, instance))
    }

    /// One call of `arm` on a fresh instance: returns (instantiate, call) times.
    pub fn run(&self, arm: Arm, inputs: &Inputs<'_>) -> Result<(Duration, Duration)> {
        let started = Instant::now();
        let (mut store, instance) = self.instantiate()?;
        let instantiated = started.elapsed();
        let started = Instant::now();
        let (got, want) = match arm {
            Arm::Typed => (
                instance.call_count_typed(&mut store, inputs.wit).wt()?,
                inputs.updates,
            ),
            Arm::JsonString => (
                instance
                    .call_count_json_string(&mut store, inputs.json)
                    .wt()?
                    .map_err(anyhow::Error::msg)
                    .context("the guest could not parse the JSON string")?,
                inputs.updates,
            ),
            Arm::JsonBytes => (
                instance
                    .call_count_json_bytes(&mut store, inputs.json.as_bytes())
                    .wt()?
                    .map_err(anyhow::Error::msg)
                    .context("the guest could not parse the JSON bytes")?,
                inputs.updates,
            ),
            Arm::TransferOnly => (
                instance.call_transfer_only(&mut store, inputs.wit).wt()?,
                inputs.changes,
            ),
            Arm::StringTransferOnly => (
                instance
                    .call_transfer_only_string(&mut store, inputs.json)
                    .wt()?,
                u32::try_from(inputs.json.len())?,
            ),
        };
        let called = started.elapsed();
        if got != want {
            bail!("arm `{}` returned {got}, expected {want}", arm.key());
        }
        drop(store);
        Ok((instantiated, called))
    }
}
