//! The provkey benchmark's reusable parts: the plan generator and the statistics.
//! The measurements themselves are in the `provkey-bench` binary.

pub mod genplan;
pub mod stats;
