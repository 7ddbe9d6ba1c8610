//! Integration tests: the real `provkey` binary, real components built from source,
//! real plans. One test binary with a module per area.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed expectation is a failed test"
)]

mod support;

mod bad_input;
mod cache;
mod check;
mod hostile;
mod real_plans;
