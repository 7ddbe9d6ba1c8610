//! regorus running the benchmark's Rego, and the pieces of provkey-bench it shares
//! by source (not by dependency, so that this workspace never links wasmtime):
//! the plan generator, the findings digest and the peak-memory reading.

#[path = "../../bench/src/findings.rs"]
pub mod findings;
#[path = "../../bench/src/genplan.rs"]
pub mod genplan;
pub mod rego;
#[path = "../../bench/src/rss.rs"]
pub mod rss;
