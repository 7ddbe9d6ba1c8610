//! Write provkey policies (and planners) in Rust.
//!
//! A policy is a type implementing [`Policy`], exported with one macro,
//! [`export_policy!`]. The crate is built for `wasm32-wasip2`, which emits a
//! component exporting `provkey:plan/policy@0.6.0`; the SDK hides the component
//! model entirely and hands the policy a [`Plan`] from the plan model
//! (`provkey-plan`), the same model the host uses.
//!
//! ```
//! use provkey_sdk::prelude::*;
//!
//! /// Every instance names its AMI.
//! const PINNED_AMI: Rule = Rule::new("pinned-ami", "Instances name their AMI explicitly.")
//!     .severity(Severity::High)
//!     .enforcement(Enforcement::SoftMandatory);
//!
//! struct PinnedAmi;
//!
//! impl Policy for PinnedAmi {
//!     fn metadata() -> Metadata {
//!         Metadata::new("pinned-ami", env!("CARGO_PKG_VERSION"), "Checks that instances name their AMI.")
//!             .rules(&[PINNED_AMI])
//!             .config_schema(r#"{"type": "object", "properties": {"types": {"type": "array", "items": {"type": "string"}}}, "additionalProperties": false}"#)
//!     }
//!
//!     fn evaluate(plan: &Plan, config: &Config) -> Result<Vec<Finding>, Error> {
//!         config.deny_unknown_fields(&["types"])?;
//!         let types = config.get_str_list("types")?.unwrap_or_else(|| vec!["aws_instance"]);
//!         let mut findings = Vec::new();
//!         for change in plan.changes_where(|c| c.action.creates() && types.contains(&c.resource_type.as_str())) {
//!             match change.after_at("/ami") {
//!                 // Known only after apply: the plan cannot tell, so say so.
//!                 Attr::Unknown => findings.push(
//!                     Finding::new(&PINNED_AMI, change)
//!                         .attribute("/ami")
//!                         .severity(Severity::Low)
//!                         .enforcement(Enforcement::Advisory)
//!                         .message(format!("`{}`: the AMI is known only after apply", change.address)),
//!                 ),
//!                 Attr::Absent => findings.push(
//!                     Finding::new(&PINNED_AMI, change)
//!                         .attribute("/ami")
//!                         .message(format!("`{}` has no AMI", change.address))
//!                         .remediation("set `ami` to a pinned image id"),
//!                 ),
//!                 Attr::Known(_) => {}
//!             }
//!         }
//!         Ok(findings)
//!     }
//! }
//!
//! provkey_sdk::export_policy!(PinnedAmi);
//!
//! // Natively, `cargo test` calls the policy directly:
//! use provkey_sdk::testing;
//! testing::check_metadata::<PinnedAmi>();
//! let plan = testing::plan_of([
//!     testing::change("aws_instance.a", Action::Create).after(json!({"ami": "ami-1"})),
//!     testing::change("aws_instance.b", Action::Create),
//!     testing::change("aws_instance.c", Action::Create).unknown("/ami"),
//! ]);
//! let findings = testing::evaluate::<PinnedAmi>(&plan, "{}").unwrap();
//! assert_eq!(testing::addresses(&findings), ["aws_instance.b", "aws_instance.c"]);
//! assert_eq!(findings[1].enforcement, Enforcement::Advisory);
//! let err = testing::evaluate::<PinnedAmi>(&plan, r#"{"typs": []}"#).unwrap_err();
//! assert_eq!(err, Error::invalid_config("unknown field `typs` (expected `types`)"));
//! ```
//!
//! # What a policy sees
//!
//! - [`Plan::changes`] in apply order; [`Plan::changes_of_type`],
//!   [`Plan::changes_where`], [`Plan::managed_changes`], [`Plan::change`] by address.
//! - For each [`ResourceChange`]: its [`Action`] (`creates()`, `destroys()`,
//!   `is_update()`), attribute values by JSON Pointer with
//!   [`ResourceChange::after_at`] / [`ResourceChange::before_at`] (an [`Attr`]:
//!   known, unknown until apply, or absent), [`ResourceChange::after_has_key`],
//!   the top-level attributes an update
//!   changes ([`ResourceChange::changed_attributes`]), and whether a value is
//!   sensitive ([`ResourceChange::contains_sensitive`]). Never put a sensitive
//!   value in a message: [`ResourceChange::display_after`] prints `(sensitive)`
//!   instead.
//! - The user's configuration as a [`Config`]: typed getters or
//!   [`Config::parse`] into your own `serde` type; errors name the field.
//!
//! # Building
//!
//! The policy crate has `crate-type = ["cdylib", "rlib"]` and depends only on
//! `provkey-sdk`. `cargo build --target wasm32-wasip2 --release` gives the
//! component (`target/wasm32-wasip2/release/<name>.wasm`); plain `cargo test`
//! runs its unit tests natively, where [`export_policy!`] exports nothing.
//!
//! A planner implements [`Planner`] and is exported with [`export_planner!`]; it
//! needs `default-features = false, features = ["planner"]`.
//!
//! # What crosses the sandbox
//!
//! A policy exports `provkey:plan/policy@0.6.0`: it receives every change without
//! its `before` and `after` (packed in numbers that point into one text of all the
//! changes' strings), and reading a value asks the host for the member read, or for
//! the whole value after the fourth member (`plan-view`);
//! [`ResourceChange::changed_attributes`] is answered by the host, which holds both
//! values. A rule that reads one attribute of the changes it cares about
//! costs little on a large plan; one that calls [`ResourceChange::after_value`] on
//! every change pays for every value, twice (the copy and the tree).

#![deny(missing_docs)]

// wit-bindgen's generated code names the SDK by its crate name, also inside the SDK.
extern crate self as provkey_sdk;

mod config;
mod error;
mod finding;
mod guest;
#[cfg(feature = "instance-allocator")]
pub mod instance_alloc;
mod metadata;
#[cfg(feature = "planner")]
pub mod planner_world;
#[cfg(feature = "policy")]
pub mod policy_world;
pub mod testing;

#[cfg(all(feature = "instance-allocator", target_arch = "wasm32"))]
#[global_allocator]
static ALLOCATOR: instance_alloc::InstanceAllocator = instance_alloc::InstanceAllocator::new();

pub use config::Config;
pub use error::Error;
pub use finding::{Finding, Rule};
use guest::run_policy;
pub use guest::{Planner, Policy};
pub use metadata::{Metadata, PlannerMetadata};
pub use provkey_plan::{
    Action, Attr, Enforcement, JsonText, Plan, PlanError, PlanSource, ReplaceOrder, Replacement,
    ResourceChange, ResourceMode, Severity, pointer,
};
pub use serde;
pub use serde_json;

/// Everything a policy usually needs: `use provkey_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Action, Attr, Config, Enforcement, Error, Finding, Metadata, Plan, Planner,
        PlannerMetadata, Policy, ReplaceOrder, Replacement, ResourceChange, ResourceMode, Rule,
        Severity,
    };
    pub use serde_json::{Value, json};
}

/// Used by the export macros; not part of the API.
#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "planner")]
    pub use crate::planner_world::{self, PlannerAdapter};
    #[cfg(feature = "policy")]
    pub use crate::policy_world::{self, PolicyAdapter};
    pub use wit_bindgen;
}

/// Exports a [`Policy`] as the component's `provkey:plan/policy@0.6.0`:
/// `provkey_sdk::export_policy!(MyPolicy);`, once, at the crate's top level.
///
/// On targets other than `wasm32` (native `cargo test`) it exports nothing and only
/// checks that the type implements [`Policy`].
#[cfg(feature = "policy")]
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __ProvkeyPolicy = $crate::__private::PolicyAdapter<$policy>;
            $crate::__private::policy_world::bindings::__provkey_export_policy_world!(
                __ProvkeyPolicy with_types_in $crate::__private::policy_world::bindings
            );
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            fn __provkey_is_policy<P: $crate::Policy>() {}
            let _ = __provkey_is_policy::<$policy>;
        };
    };
}

/// Exports a [`Policy`]: needs the `policy` feature of `provkey-sdk`.
#[cfg(not(feature = "policy"))]
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        compile_error!("`export_policy!` needs the `policy` feature of `provkey-sdk`");
    };
}

/// Exports a [`Planner`] as the component's `provkey:plan/planner@0.1.0`:
/// `provkey_sdk::export_planner!(MyPlanner);`, once, at the crate's top level.
/// Needs the `planner` feature.
///
/// On targets other than `wasm32` it exports nothing and only checks that the type
/// implements [`Planner`].
#[cfg(feature = "planner")]
#[macro_export]
macro_rules! export_planner {
    ($planner:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __ProvkeyPlanner = $crate::__private::PlannerAdapter<$planner>;
            $crate::__private::planner_world::bindings::__provkey_export_planner_world!(
                __ProvkeyPlanner with_types_in $crate::__private::planner_world::bindings
            );
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            fn __provkey_is_planner<P: $crate::Planner>() {}
            let _ = __provkey_is_planner::<$planner>;
        };
    };
}

/// Exports a [`Planner`]: needs the `planner` feature of `provkey-sdk`.
#[cfg(not(feature = "planner"))]
#[macro_export]
macro_rules! export_planner {
    ($planner:ty) => {
        compile_error!(
            "`export_planner!` needs the `planner` feature of `provkey-sdk`: \
             `provkey-sdk = { path = \"...\", default-features = false, features = [\"planner\"] }`"
        );
    };
}
