//! `provkey`: plan, check and seal deployments with sandboxed Wasm policies.
//!
//! This file only parses arguments and dispatches; each subcommand lives in
//! `commands/`, and exit codes are defined in `exit.rs`.

mod commands;
mod console;
mod exit;
mod output_file;
mod policy_set;
mod progress;
mod report;
mod text;

use clap::{Parser, Subcommand};

use crate::exit::Exit;

// glibc's malloc grows the arena of each worker thread one page at a time, with an
// `mprotect` each, and every one of them stops the other threads to flush their
// TLBs: hundreds per check. mimalloc maps memory in large segments.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `provkey --version`: what a bug report needs to reproduce a verdict (`-V` prints
/// the version alone).
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit:   ",
    env!("PROVKEY_COMMIT"),
    "\nwasmtime: ",
    env!("PROVKEY_WASMTIME_VERSION"),
    "\ncontract: provkey:plan ",
    env!("PROVKEY_CONTRACT_VERSIONS"),
);

#[derive(Parser)]
#[command(name = "provkey", version, long_version = LONG_VERSION, about, long_about = None)]
pub struct Cli {
    /// Log what the runtime does (compilation, cache hits, timings) to stderr.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Print no report on standard output unless `--format` asks for one there, and
    /// no notes or progress on standard error (errors still print).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// When to colour output.
    #[arg(long, value_enum, value_name = "WHEN", global = true, default_value_t = console::ColorWhen::Auto)]
    color: console::ColorWhen,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a plan against policies and report the findings.
    Check(commands::check::CheckArgs),
    /// Compute a plan from a desired state (TOML) and the target's current state.
    Plan(commands::plan::PlanArgs),
    /// Create a project: `provkey new policy NAME --lang rust|python|js|c`.
    New(commands::new::NewArgs),
    /// Build a policy project (Rust, Python, JavaScript or C) into a component.
    Build(commands::build::BuildArgs),
    /// Print a policy component's metadata, WIT version and digest.
    Inspect(commands::inspect::InspectArgs),
    /// List the stock policies: their rules, default enforcement and configuration.
    Policies(commands::policies::PoliciesArgs),
    /// Run a policy's test cases (`DIR/cases/<name>/`) and compare its findings.
    Test(commands::test::TestArgs),
    /// Generate minisign-format key pairs.
    #[command(subcommand)]
    Key(commands::key::KeyCommand),
    /// Write and sign the trust root (keys, roles, thresholds).
    #[command(subcommand)]
    Trust(commands::trust::TrustCommand),
    /// Check a plan and, when it passes, seal it into a signed bundle.
    Seal(Box<commands::seal::SealArgs>),
    /// Add an approver's signature to a sealed bundle.
    Approve(commands::approve::ApproveArgs),
    /// Resolve the policy set file (`provkey.toml`) and write `provkey.lock`.
    Lock(commands::lock::LockArgs),
    /// Publish a signed policy set; override a soft-mandatory rule on one plan.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
    /// Sign a waivers file with an approver key.
    #[command(subcommand)]
    Waiver(commands::waiver::WaiverCommand),
    /// Re-run the sealed policies of bundles and compare with their manifests.
    Replay(commands::replay::ReplayArgs),
    /// Redeploy the desired state of an earlier bundle: a fresh plan, check and seal.
    Rollback(Box<commands::rollback::RollbackArgs>),
    /// Run the whole cycle on the shipped example: plan, check, seal, apply, drift, rollback.
    Demo(commands::demo::DemoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(commands::completions::CompletionsArgs),
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
    console::init(cli.quiet, cli.color);
    init_logging(cli.verbose);
    progress::init();
    let outcome = match cli.command {
        Command::Check(args) => commands::check::execute(args),
        Command::Plan(args) => commands::plan::execute(args),
        Command::New(args) => commands::new::execute(args),
        Command::Build(args) => commands::build::execute(args),
        Command::Inspect(args) => commands::inspect::execute(args),
        Command::Policies(args) => commands::policies::execute(args),
        Command::Test(args) => commands::test::execute(args),
        Command::Key(command) => commands::key::execute(command),
        Command::Trust(command) => commands::trust::execute(command),
        Command::Seal(args) => commands::seal::execute(*args),
        Command::Approve(args) => commands::approve::execute(args),
        Command::Lock(args) => commands::lock::execute(args),
        Command::Policy(command) => commands::policy::execute(command),
        Command::Waiver(command) => commands::waiver::execute(command),
        Command::Replay(args) => commands::replay::execute(args),
        Command::Rollback(args) => commands::rollback::execute(*args),
        Command::Demo(args) => commands::demo::execute(args),
        Command::Completions(args) => commands::completions::execute(args),
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
