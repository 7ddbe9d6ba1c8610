//! `provkey-floor-mimalloc PLAN.json`: `provkey-floor` with the allocator the
//! `provkey` CLI uses, so that the cold-check table shows what the allocator alone
//! is worth and compares like with like.

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    provkey_bench::floor::process_main()
}
