//! `provkey-exec`: the executor's own binary. It verifies sealed plan bundles and
//! applies them to a target directory; it links no wasmtime and holds no secret key.
//!
//! Exit codes: 0 accepted / applied / no drift / the log verifies; 1 refused (the
//! first failed check is named), drift found, the log is broken, or an apply step
//! failed; 2 bad usage or unreadable arguments; 3 the trust root is refused; 4 the
//! target is locked by another executor.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "provkey-exec",
    version,
    about = "Verify sealed provkey plan bundles and apply them to a target directory."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify a bundle: signatures, thresholds, manifest, target, freshness, blobs.
    Verify(commands::verify::VerifyArgs),
    /// Verify a bundle against the target's state, then apply it (destroy and replace).
    Apply(commands::apply::ApplyArgs),
    /// Drop an unfinished apply and return the target to its last committed state.
    Abandon(commands::abandon::AbandonArgs),
    /// Print the target's audit log; with `--verify`, check its hash chain.
    Log(commands::log::LogArgs),
    /// Compare what is deployed with what the last applied bundle says (exit 1 on drift).
    Drift(commands::drift::DriftArgs),
    /// Print the target's current state (what `provkey plan --state` reads).
    State(commands::state::StateArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Verify(args) => commands::verify::run(&args),
        Command::Apply(args) => commands::apply::run(&args),
        Command::Abandon(args) => commands::abandon::run(&args),
        Command::Log(args) => commands::log::run(&args),
        Command::Drift(args) => commands::drift::run(&args),
        Command::State(args) => commands::state::run(&args),
    };
    // Standard output closed or full: say so (once) rather than panic; the exit code
    // stays the command's, since what it did is done.
    if let Ok(first) = commands::STDOUT_ERROR.lock()
        && let Some(err) = first.as_ref()
    {
        eprintln!("warning: cannot write to standard output: {err}");
    }
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(failure) => {
            eprintln!("error: {}\nhelp: {}", failure.message, failure.help);
            ExitCode::from(failure.code as u8)
        }
    }
}
