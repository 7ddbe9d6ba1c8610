//! Integration tests: the real `provkey` binary, real components built from source,
//! real plans. One test binary with a module per area.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed expectation is a failed test"
)]

mod support;

mod apply;
mod attacks;
mod bad_input;
mod bundle_support;
mod cache;
mod catalog;
mod check;
mod conformance;
mod executor;
mod first_day;
mod hostile;
mod interop;
mod kubernetes;
mod planning;
mod policy_sets;
mod policy_test_cmd;
mod polyglot;
mod real_plans;
mod reports;
mod rollback;
mod seal;
mod source_map;
mod stock_library;
