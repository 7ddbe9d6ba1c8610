use thiserror::Error;

/// Why a document could not be read as a plan.
///
/// Messages follow the project's style: lowercase, the offending value in
/// backticks. The caller adds the file name.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("the file is empty")]
    Empty,
    #[error("the JSON ends early at line {line}, column {column}: the file looks truncated")]
    Truncated { line: usize, column: usize },
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "the value at line {line}, column {column} cannot be read in full: {message} \
         (numbers must fit a 64-bit float, strings must be valid Unicode, and values \
         nest at most about 120 levels)"
    )]
    Unreadable {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("not a plan: {detail}")]
    NotAPlan { detail: String },
    #[error("invalid plan at line {line}, column {column}: {message}")]
    Invalid {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("unsupported Terraform plan format version `{version}` (supported: {supported})")]
    UnsupportedFormatVersion { version: String, supported: String },
    #[error("unsupported provkey plan format version `{version}` (supported: `{supported}`)")]
    UnsupportedProvkeyVersion { version: String, supported: String },
    #[error("resource `{address}` has actions `{actions}`, which no known planner emits")]
    UnknownActions { address: String, actions: String },
    #[error("resource address `{address}` appears more than once in the plan")]
    DuplicateAddress { address: String },
    #[error("resource `{address}`: {message}")]
    InvalidChange { address: String, message: String },
}

impl PlanError {
    /// Turns a serde_json error into the most specific plan error.
    pub(crate) fn from_json(err: &serde_json::Error, input_is_blank: bool) -> Self {
        use serde_json::error::Category;
        let (line, column) = (err.line(), err.column());
        match err.classify() {
            Category::Eof if input_is_blank => PlanError::Empty,
            Category::Eof => PlanError::Truncated { line, column },
            Category::Syntax | Category::Io => PlanError::Syntax {
                line,
                column,
                message: strip_position(&err.to_string()),
            },
            Category::Data => PlanError::Invalid {
                line,
                column,
                message: strip_position(&err.to_string()),
            },
        }
    }
}

/// serde_json appends " at line L column C"; we print the position ourselves.
pub(crate) fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
