//! `provkey`: plan, check and seal deployments with sandboxed Wasm policies.
//!
//! This file only parses arguments and dispatches; each subcommand lives in
//! `commands/`, and exit codes are defined in `exit.rs`.

mod commands;
mod exit;
mod report;
mod text;

use clap::{Parser, Subcommand};

use crate::exit::Exit;

#[derive(Parser)]
#[command(name = "provkey", version, about, long_about = None)]
struct Cli {
    /// Log what the runtime does (compilation, cache hits, timings) to stderr.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a plan against policies and report the findings.
    Check(commands::check::CheckArgs),
}

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                Exit::BadInput.into()
            } else {
                Exit::Pass.into()
            };
        }
    };
    init_logging(cli.verbose);
    let outcome = match cli.command {
        Command::Check(args) => commands::check::execute(args),
    };
    match outcome {
        Ok(exit) => exit.into(),
        Err(err) => {
            err.print();
            err.exit.into()
        }
    }
}

fn init_logging(verbose: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if verbose { "info" } else { "warn" };
    let filter = EnvFilter::try_from_env("PROVKEY_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}
