use std::path::PathBuf;

use thiserror::Error;

/// Errors from loading components into the runtime.
#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error("cannot configure the wasm engine")]
    Engine(#[source] wasmtime::Error),
    #[error("cannot read component `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("component `{name}` is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        name: String,
        size: usize,
        limit: usize,
    },
    #[error("`{name}` is not a valid wasm component")]
    Compile {
        name: String,
        #[source]
        source: wasmtime::Error,
    },
    #[error("component `{name}` does not implement {world}")]
    WrongWorld {
        name: String,
        world: &'static str,
        #[source]
        source: wasmtime::Error,
    },
    #[error("component `{name}` failed while reporting its metadata: {failure}")]
    Metadata { name: String, failure: GuestFailure },
    #[error("component `{name}` reported invalid metadata: {reason}")]
    BadMetadata { name: String, reason: String },
}

/// How a guest call failed. Every variant fails closed: a failed policy is never a pass.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum GuestFailure {
    #[error("exceeded the time limit of {limit_ms} ms")]
    Deadline { limit_ms: u64 },
    #[error("exceeded the memory limit of {limit_mib} MiB")]
    Memory { limit_mib: usize },
    #[error("exceeded the table limit")]
    Table,
    #[error("exceeded the stack limit of {limit_kib} KiB (unbounded recursion?)")]
    Stack { limit_kib: usize },
    #[error("returned more than the output limit of {limit_bytes} bytes")]
    OutputTooLarge { limit_bytes: usize },
    #[error("trapped: {trap}{}", stderr.as_ref().map(|s| format!(" (guest stderr: {s})")).unwrap_or_default())]
    Trap {
        trap: String,
        stderr: Option<String>,
    },
    #[error(
        "filled the {limit_kib} KiB it may write to stderr, and failed on the next write \
         (stderr cap hit){}",
        stderr.as_ref().map(|s| format!(" (guest stderr: {s})")).unwrap_or_default()
    )]
    StderrFull {
        limit_kib: usize,
        stderr: Option<String>,
    },
    #[error("cannot be instantiated: {reason}")]
    Instantiate { reason: String },
    #[error("reported an error ({kind}): {message}")]
    GuestError { kind: String, message: String },
    #[error("returned an invalid result: {reason}")]
    BadOutput { reason: String },
}

impl GuestFailure {
    /// A short name for the limit or failure class, for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            GuestFailure::Deadline { .. } => "deadline",
            GuestFailure::Memory { .. } => "memory",
            GuestFailure::Table => "table",
            GuestFailure::Stack { .. } => "stack",
            GuestFailure::OutputTooLarge { .. } => "output-size",
            GuestFailure::Trap { .. } => "trap",
            GuestFailure::StderrFull { .. } => "stderr-size",
            GuestFailure::Instantiate { .. } => "instantiate",
            GuestFailure::GuestError { .. } => "guest-error",
            GuestFailure::BadOutput { .. } => "bad-output",
        }
    }
}
