use std::fmt;

use provkey_plan::PlanError;

/// Why a policy or planner could not do its job. It crosses the boundary as the
/// WIT `guest-error`; the host reports it instead of findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The configuration is not what the guest accepts; the text names the field.
    InvalidConfig(String),
    /// The input (plan, desired or current state) is not what the guest can work with.
    InvalidInput(String),
    /// Anything else.
    Failed(String),
}

impl Error {
    /// The configuration is wrong: `Error::invalid_config("field `x`: expected a string")`.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Error::InvalidConfig(message.into())
    }

    /// The input cannot be worked with.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }

    /// Anything else went wrong.
    pub fn failed(message: impl Into<String>) -> Self {
        Error::Failed(message.into())
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidConfig(m) | Error::InvalidInput(m) | Error::Failed(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig(m) => write!(f, "invalid configuration: {m}"),
            Error::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Error::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// A document that is not a plan is invalid input.
impl From<PlanError> for Error {
    fn from(err: PlanError) -> Self {
        Error::InvalidInput(err.to_string())
    }
}
