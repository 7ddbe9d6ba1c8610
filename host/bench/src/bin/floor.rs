//! `provkey-floor PLAN.json`: the native floor as a process. Reads the plan, runs
//! the benchmark's ten stock rules natively (the stock policies' own code), prints
//! the number of findings and their digest, exits 1 when there is any.

use std::process::ExitCode;

fn main() -> ExitCode {
    provkey_bench::floor::process_main()
}
