//! The plan model shared by the provkey host and its guests.
//!
//! A [`Plan`] is what planners produce and policies check: every resource change
//! with its action, its attribute values before and after (as JSON text), and the
//! paths whose values are unknown until apply or sensitive. [`Plan::from_json`]
//! reads provkey's own plan JSON and the output of `terraform show -json` /
//! `tofu show -json` (format versions 0.1 to 1.2, and later 1.x minors), detecting
//! which.
//!
//! Paths into attribute values are JSON Pointers (RFC 6901), see [`pointer`].
//!
//! This crate does no I/O and links no wasmtime: the host, the executor and the
//! guest SDK all use it.

mod error;
mod finding;
mod json_text;
mod model;
pub mod packed;
pub mod pointer;
mod query;
mod readable;
mod terraform;

pub use error::PlanError;
pub use finding::{Enforcement, Finding, PolicyMetadata, RuleInfo, Severity};
pub use json_text::{JsonText, RemoteValues, Side};
pub use model::{
    Action, Attr, PROVKEY_PLAN_FORMAT, PROVKEY_PLAN_FORMAT_VERSION, Plan, PlanSource, ReplaceOrder,
    Replacement, ResourceChange, ResourceMode,
};
pub use terraform::{
    SUPPORTED_TERRAFORM_FORMAT_VERSIONS, TerraformFormatVersion, format_version_warning,
};
