//! The sandboxed host: one wasmtime engine per process, policy and planner
//! components compiled once (and cached on disk), a fresh store per evaluation,
//! and every guest call bounded in time, memory, stack and output size.
//!
//! Guests get WASI with every capability withheld: no files, no environment, no
//! network, a wall clock stopped at the epoch, a monotonic clock that counts calls
//! and randomness from a fixed seed. The same plan, configuration and component
//! therefore always give the same findings.

pub mod bindings;
mod cache;
mod check;
mod clock;
mod engine;
mod error;
mod guest;
mod limits;
mod plan_view;
mod planner;
mod policy;

pub use bindings::{WitPlan, plan_to_wit};
pub use cache::{CacheOutcome, CompileCache, CompileHook, set_compile_hook};
pub use check::{PolicyError, PolicyOutcome, check_plan};
pub use engine::{EPOCH_TICK, Runtime, RuntimeOptions, engine_config, engine_config_on_demand};
pub use error::{GuestFailure, RuntimeError};
pub use limits::Limits;
pub use plan_view::GuestPlan;
pub use planner::{LoadedPlanner, Planned, PlannerError, PlannerMetadata, check_planned};
pub use policy::{
    Evaluation, LoadedPolicy, PlanIndex, PolicyOrigin, open_input, open_regular, read_bounded,
    truncate,
};
