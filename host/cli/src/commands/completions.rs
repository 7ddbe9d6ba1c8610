//! `provkey completions SHELL`: a completion script for the shell, on standard output.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::exit::{CliResult, Exit};

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell. For example, for bash:
    /// `provkey completions bash > ~/.local/share/bash-completion/completions/provkey`.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn execute(args: CompletionsArgs) -> CliResult<Exit> {
    let mut command = crate::Cli::command();
    clap_complete::generate(args.shell, &mut command, "provkey", &mut std::io::stdout());
    Ok(Exit::Pass)
}
