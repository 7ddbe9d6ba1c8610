//! The provkey benchmark's reusable parts: the plan generator, the statistics, and
//! the arms of the side-by-side comparison (the native floor and regorus). The
//! measurements themselves are in the `provkey-bench` binary.

pub mod findings;
pub mod floor;
pub mod genplan;
pub mod rss;
pub mod stats;
pub mod wasm;
