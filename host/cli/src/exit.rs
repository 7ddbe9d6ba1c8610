//! Exit codes are part of the CLI's API; the README documents them and tests check them.

use std::fmt::Write as _;

/// How `provkey` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// No mandatory finding, no policy failure.
    Pass = 0,
    /// At least one hard- or soft-mandatory finding.
    MandatoryFindings = 1,
    /// Bad usage or bad input: unreadable file, malformed JSON, unknown format.
    BadInput = 2,
    /// A policy component failed: trap, deadline, limit, bad output. Fails closed.
    PolicyFailed = 3,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
}

/// An error that ends the command, with the exit code it maps to and advice.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub error: anyhow::Error,
    pub help: Option<String>,
}

impl CliError {
    pub fn bad_input(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            exit: Exit::BadInput,
            error: error.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Prints `error: …`, every cause, then `help: …`, to stderr.
    pub fn print(&self) {
        let mut out = format!("error: {}\n", self.error);
        for cause in self.error.chain().skip(1) {
            let _ = writeln!(out, "  caused by: {cause}");
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "help: {help}");
        }
        anstream::eprint!("{out}");
    }
}

pub type CliResult<T> = Result<T, CliError>;
