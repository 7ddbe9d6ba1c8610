//! Progress of slow steps (compiling a component for the first time, building a
//! policy project) on standard error.
//!
//! On a terminal, a spinner runs while the step does and is cleared after. Elsewhere
//! (a CI log), a spinner would be noise, and silence looks like a hang: when the
//! step ends, one line says what it was and how long it took, but only if it took
//! at least [`DEFAULT_MIN_SECONDS`] (or `PROVKEY_PROGRESS_MIN_SECONDS`), so that a
//! fast run prints nothing.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Steps shorter than this print nothing outside a terminal.
pub const DEFAULT_MIN_SECONDS: f64 = 1.0;

/// The environment variable that sets another threshold, in seconds (`0` prints
/// every step).
pub const MIN_SECONDS_VAR: &str = "PROVKEY_PROGRESS_MIN_SECONDS";

/// A step in progress; dropping it ends it.
pub struct Step {
    what: String,
    started: Instant,
    spinner: Option<indicatif::ProgressBar>,
}

impl Step {
    /// Starts a step described by `what` ("compiling `immutable`").
    pub fn start(what: String) -> Step {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner().with_message(what.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Step {
            what,
            started: Instant::now(),
            spinner,
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
            return;
        }
        let elapsed = self.started.elapsed();
        if elapsed.as_secs_f64() >= min_seconds() {
            // A failed write to stderr has nowhere to be reported.
            let _ = writeln!(
                std::io::stderr(),
                "provkey: {} took {:.1} s",
                self.what,
                elapsed.as_secs_f64()
            );
        }
    }
}

/// The threshold: [`MIN_SECONDS_VAR`] when it holds a number of seconds (0 or more),
/// else [`DEFAULT_MIN_SECONDS`].
fn min_seconds() -> f64 {
    std::env::var(MIN_SECONDS_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(DEFAULT_MIN_SECONDS)
}

/// Shows the runtime's cache-miss compilations as steps.
pub fn init() {
    provkey_runtime::set_compile_hook(compiling);
}

fn compiling(name: &str) -> Box<dyn std::any::Any> {
    Box::new(Step::start(format!(
        "compiling `{name}` (first run only: the result is cached)"
    )))
}
