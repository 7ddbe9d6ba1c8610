//! Crash injection for tests: compiled in always, inert unless `PROVKEY_EXEC_FAILPOINT`
//! is set.
//!
//! Every step of an apply that changes the disk calls [`hit`] with a stable name
//! (`journal.rename`, `switch:instance.web`, `state.fsync`, …). With
//! `PROVKEY_EXEC_FAILPOINT=NAME` the process aborts (SIGABRT, no unwinding, no
//! cleanup: as a crash) at the first hit of that name; with `PROVKEY_EXEC_FAILPOINT=#K`
//! it aborts at the K-th hit of any name, so a test can crash a reference apply at
//! every step in turn, counting up until a run finishes. The name is printed to stderr
//! first.
//!
//! `PROVKEY_EXEC_PAUSE=NAME` instead stops at that failpoint, prints `paused at NAME`
//! to stderr and waits for a line (or end of file) on stdin: a test holds an executor
//! at a known step (for example with the target locked) without timing anything.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms a failpoint.
pub const ENV: &str = "PROVKEY_EXEC_FAILPOINT";

enum Armed {
    Off,
    Name(String),
    Count(u64),
}

fn armed() -> &'static Armed {
    static ARMED: OnceLock<Armed> = OnceLock::new();
    ARMED.get_or_init(|| match std::env::var(ENV) {
        Ok(v) if v.is_empty() => Armed::Off,
        Ok(v) => match v.strip_prefix('#').map(str::parse::<u64>) {
            Some(Ok(k)) => Armed::Count(k),
            _ => Armed::Name(v),
        },
        Err(_) => Armed::Off,
    })
}

static HITS: AtomicU64 = AtomicU64::new(0);

/// The environment variable that pauses at a failpoint.
pub const PAUSE_ENV: &str = "PROVKEY_EXEC_PAUSE";

/// A step boundary: aborts the process here when this failpoint is armed.
pub fn hit(name: &str) {
    if std::env::var(PAUSE_ENV).is_ok_and(|p| p == name) {
        eprintln!("paused at {name}");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    let armed = armed();
    if matches!(armed, Armed::Off) {
        return;
    }
    let k = HITS.fetch_add(1, Ordering::SeqCst) + 1;
    let fire = match armed {
        Armed::Off => false,
        Armed::Name(n) => n == name,
        Armed::Count(c) => *c == k,
    };
    if fire {
        eprintln!("failpoint `{name}` (#{k}): aborting");
        std::process::abort();
    }
}
