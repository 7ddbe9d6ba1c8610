//! `provkey-floor PLAN.json`: the native floor as a process. Reads the plan, runs
//! the benchmark's ten stock rules natively (the stock policies' own code), prints
//! the number of findings and their digest, exits 1 when there is any.

use std::process::ExitCode;

use provkey_bench::findings::{digest, normalize};
use provkey_bench::floor;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: provkey-floor PLAN.json");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("error: cannot read `{}`: {err}", path.to_string_lossy());
            return ExitCode::from(2);
        }
    };
    match floor::check(&text) {
        Ok(findings) => {
            let keys = normalize(floor::keys(&findings));
            println!("{} {}", keys.len(), digest(&keys));
            ExitCode::from(u8::from(!keys.is_empty()))
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(3)
        }
    }
}
