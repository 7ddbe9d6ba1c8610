//! What the process says besides its reports: `--quiet` and `--color`, set once by
//! `main` from the global flags and read by every command.

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// When to colour output: `--color auto|always|never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless `NO_COLOR` is set (or `CLICOLOR_FORCE` forces it).
    #[default]
    Auto,
    Always,
    Never,
}

/// Applies the global flags; called once, before any command runs.
pub fn init(quiet: bool, color: ColorWhen) {
    QUIET.store(quiet, Ordering::Relaxed);
    let choice = match color {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
}

/// `--quiet`: no report on standard output unless one is asked for, and no notes,
/// warnings or progress on standard error. Errors still print.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A note for the person running the command, on standard error (not with `--quiet`).
pub fn note(message: &str) {
    if !quiet() {
        eprintln!("{message}");
    }
}
