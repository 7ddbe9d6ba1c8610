//! regorus running the benchmark's Rego, and the pieces of provkey-bench it shares
//! by source (not by dependency, so that this workspace never links wasmtime):
//! the plan generator and the findings digest.

#[path = "../../bench/src/findings.rs"]
pub mod findings;
#[path = "../../bench/src/genplan.rs"]
pub mod genplan;
pub mod rego;
