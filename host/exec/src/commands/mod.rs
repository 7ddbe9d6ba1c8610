//! One module per subcommand.

pub mod abandon;
pub mod apply;
pub mod drift;
pub mod log;
pub mod state;
pub mod verify;

use std::path::PathBuf;
use std::sync::Mutex;

/// The first error writing standard output (a closed pipe, a full disk), reported
/// once at exit instead of a panic: what the command did is done either way.
pub static STDOUT_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Writes a line to standard output; an error is remembered (see [`STDOUT_ERROR`]).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let written = writeln!(out, $($arg)*).and_then(|()| out.flush());
        if let Err(err) = written {
            $crate::commands::remember_stdout_error(&err);
        }
    }};
}
pub(crate) use outln;

/// Writes to standard output without a newline, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let written = write!(out, $($arg)*).and_then(|()| out.flush());
        if let Err(err) = written {
            $crate::commands::remember_stdout_error(&err);
        }
    }};
}
pub(crate) use out;

pub fn remember_stdout_error(err: &std::io::Error) {
    if let Ok(mut first) = STDOUT_ERROR.lock()
        && first.is_none()
    {
        *first = Some(err.to_string());
    }
}

use provkey_core::trust::TrustRoot;
use provkey_exec::trust_file::{TrustLoadError, load_trust};
use provkey_exec::{ExecError, Exit};

/// A failure, printed as `error: …` and `help: …`.
pub struct Failure {
    pub code: Exit,
    pub message: String,
    pub help: String,
}

impl From<ExecError> for Failure {
    fn from(err: ExecError) -> Self {
        Failure {
            code: err.exit(),
            help: err.help(),
            message: err.to_string(),
        }
    }
}

/// The trust options `verify` and `apply` share.
#[derive(clap::Args)]
pub struct TrustArgs {
    /// The trust root (`trust-root.json`, its `.minisig` files beside it), or one
    /// minisign public key file trusted as the only plan-signer.
    #[arg(long, value_name = "FILE")]
    pub trust: PathBuf,
    /// Newer trust-root versions to move to, one version at a time (repeatable, in order).
    #[arg(long = "trust-update", value_name = "FILE")]
    pub trust_updates: Vec<PathBuf>,
}

pub fn trust(args: &TrustArgs, now: u64) -> Result<TrustRoot, Failure> {
    load_trust(&args.trust, &args.trust_updates, now).map_err(|err| match err {
        TrustLoadError::Read { .. } => Failure {
            code: Exit::Usage,
            message: err.to_string(),
            help: "check the path".into(),
        },
        TrustLoadError::Refused { .. } => Failure {
            code: Exit::Trust,
            message: err.to_string(),
            help: "pin a valid trust root signed by its root keys; move versions one at a \
                   time with `--trust-update`"
                .into(),
        },
    })
}

/// The verification options `verify` and `apply` share.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// The environment this executor applies to.
    #[arg(long, value_name = "ENV")]
    pub target: String,
    /// This executor's audience id (default: the target).
    #[arg(long, value_name = "ID")]
    pub audience: Option<String>,
    /// The time to verify at, in Unix seconds (default: now).
    #[arg(long, value_name = "UNIX")]
    pub now: Option<u64>,
    /// The longest validity window accepted, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 7 * 24 * 3600)]
    pub max_validity: u64,
    /// A policy that must have run with verdict `allow` (repeatable).
    #[arg(long = "require-policy", value_name = "ID")]
    pub required_policies: Vec<String>,
    /// The engine version the manifest must name.
    #[arg(long, value_name = "VERSION")]
    pub engine_version: Option<String>,
}

impl CheckArgs {
    pub fn now(&self) -> u64 {
        self.now.unwrap_or_else(provkey_core::unix_now)
    }
}
