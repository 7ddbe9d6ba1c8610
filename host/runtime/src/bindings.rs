//! The one place where wasmtime's `bindgen!` meets the WIT contract, and the
//! conversions between the generated types and [`provkey_plan`]'s model.

/// Bindings for `world policy` of `provkey:plan@0.1.0`.
pub mod policy {
    wasmtime::component::bindgen!({
        path: "../../wit/plan@0.1.0",
        world: "policy",
    });
}

/// Bindings for `world policy` of `provkey:plan@0.2.0`, whose policies ask the host
/// for attribute values (`plan-view`, implemented in `plan_view.rs`). Its `types`
/// are 0.1.0's, unchanged, so the generated Rust types are shared.
pub mod policy_0_2 {
    wasmtime::component::bindgen!({
        path: "../../wit/plan@0.2.0",
        world: "policy",
        with: {
            "provkey:plan/types": super::policy::provkey::plan::types,
        },
    });
}

/// Bindings for `world policy` of `provkey:plan@0.3.0`, the contract of interpreted
/// languages: the plan summary crosses as one JSON text and `plan-view` answers
/// one member of every change per call (both in `plan_view.rs`). Its `types` are
/// 0.1.0's, unchanged.
pub mod policy_0_3 {
    wasmtime::component::bindgen!({
        path: "../../wit/plan@0.3.0",
        world: "policy",
        with: {
            "provkey:plan/types": super::policy::provkey::plan::types,
        },
    });
}

/// Bindings for `world policy` of `provkey:plan@0.4.0`, the contract of compiled
/// languages: 0.2.0's summary with every string in one text, so that it crosses in
/// three allocations (built in `plan_view.rs`). Its `types` are 0.1.0's, unchanged.
pub mod policy_0_4 {
    wasmtime::component::bindgen!({
        path: "../../wit/plan@0.4.0",
        world: "policy",
        with: {
            "provkey:plan/types": super::policy::provkey::plan::types,
        },
    });
}

/// Bindings for `world policy` of `provkey:plan@0.5.0`, the contract of JavaScript
/// policies: 0.3.0 with the findings returned as UTF-8 bytes, which JavaScript's
/// glue copies natively where it measures a string one character at a time. Its
/// `types` are 0.1.0's, unchanged; its `plan-view` answers as 0.3.0's does.
pub mod policy_0_5 {
    wasmtime::component::bindgen!({
        path: "../../wit/plan@0.5.0",
        world: "policy",
        with: {
            "provkey:plan/types": super::policy::provkey::plan::types,
        },
    });
}

/// Bindings for `world policy` of `provkey:plan@0.6.0`, the contract of compiled
/// languages since 0.6.0: 0.4.0's summary with the changes packed in one list of
/// numbers (built by `provkey_plan::packed`), and `changed-attributes` answered by
/// the host. Its `types` are 0.1.0's, unchanged.
pub mod policy_0_6 {
    wasmtime::component::bindgen!({
        path: "../../wit/plan@0.6.0",
        world: "policy",
        with: {
            "provkey:plan/types": super::policy::provkey::plan::types,
        },
    });
}

/// Bindings for `world planner` of `provkey:plan@0.1.0`, sharing the policy world's types.
pub mod planner {
    wasmtime::component::bindgen!({
        path: "../../wit/plan@0.1.0",
        world: "planner",
        with: {
            "provkey:plan/types": super::policy::provkey::plan::types,
        },
    });
}

use policy::provkey::plan::types as wit;
use provkey_plan as model;

/// The plan as it crosses into a guest. Built once per check and shared by every policy.
pub type WitPlan = wit::Plan;
pub type WitFinding = wit::Finding;
pub type WitGuestError = wit::GuestError;

pub fn plan_to_wit(plan: &model::Plan) -> wit::Plan {
    wit::Plan {
        source: plan.source.as_str().to_string(),
        format_version: plan.source_version.clone(),
        changes: plan.changes.iter().map(change_to_wit).collect(),
    }
}

fn change_to_wit(change: &model::ResourceChange) -> wit::ResourceChange {
    wit::ResourceChange {
        address: change.address.clone(),
        previous_address: change.previous_address.clone(),
        module_path: change.module_path.clone(),
        mode: mode_to_wit(change.mode),
        type_: change.resource_type.clone(),
        name: change.name.clone(),
        provider: change.provider.clone(),
        action: action_to_wit(&change.action),
        before: change.before.as_ref().map(|t| t.as_str().to_string()),
        after: change.after.as_ref().map(|t| t.as_str().to_string()),
        after_unknown: change.after_unknown.clone(),
        before_sensitive: change.before_sensitive.clone(),
        after_sensitive: change.after_sensitive.clone(),
        depends_on: change.depends_on.clone(),
    }
}

pub(crate) fn mode_to_wit(mode: model::ResourceMode) -> wit::ResourceMode {
    match mode {
        model::ResourceMode::Managed => wit::ResourceMode::Managed,
        model::ResourceMode::Data => wit::ResourceMode::Data,
    }
}

pub(crate) fn action_to_wit(action: &model::Action) -> wit::Action {
    match action {
        model::Action::Create => wit::Action::Create,
        model::Action::Replace(r) => wit::Action::Replace(wit::Replacement {
            order: replace_order_to_wit(r.order),
            reason: r.reason.clone(),
            paths: r.paths.clone(),
        }),
        model::Action::Destroy => wit::Action::Destroy,
        model::Action::Read => wit::Action::Read,
        model::Action::NoOp => wit::Action::NoOp,
        model::Action::Forget => wit::Action::Forget,
        model::Action::Update => wit::Action::Update,
    }
}

pub(crate) fn replace_order_to_wit(order: model::ReplaceOrder) -> wit::ReplaceOrder {
    match order {
        model::ReplaceOrder::DestroyBeforeCreate => wit::ReplaceOrder::DestroyBeforeCreate,
        model::ReplaceOrder::CreateBeforeDestroy => wit::ReplaceOrder::CreateBeforeDestroy,
    }
}

/// Converts a plan a planner returned. The host validates it afterwards.
pub fn plan_from_wit(plan: wit::Plan) -> Result<model::Plan, String> {
    let source = model::PlanSource::parse(&plan.source)
        .ok_or_else(|| format!("unknown plan source `{}`", plan.source))?;
    Ok(model::Plan {
        format: model::PROVKEY_PLAN_FORMAT.to_string(),
        format_version: model::PROVKEY_PLAN_FORMAT_VERSION.to_string(),
        source,
        source_version: plan.format_version,
        changes: plan.changes.into_iter().map(change_from_wit).collect(),
    })
}

fn change_from_wit(change: wit::ResourceChange) -> model::ResourceChange {
    model::ResourceChange {
        address: change.address,
        previous_address: change.previous_address,
        module_path: change.module_path,
        mode: match change.mode {
            wit::ResourceMode::Managed => model::ResourceMode::Managed,
            wit::ResourceMode::Data => model::ResourceMode::Data,
        },
        resource_type: change.type_,
        name: change.name,
        provider: change.provider,
        action: match change.action {
            wit::Action::Create => model::Action::Create,
            wit::Action::Replace(r) => model::Action::Replace(model::Replacement {
                order: match r.order {
                    wit::ReplaceOrder::DestroyBeforeCreate => {
                        model::ReplaceOrder::DestroyBeforeCreate
                    }
                    wit::ReplaceOrder::CreateBeforeDestroy => {
                        model::ReplaceOrder::CreateBeforeDestroy
                    }
                },
                reason: r.reason,
                paths: r.paths,
            }),
            wit::Action::Destroy => model::Action::Destroy,
            wit::Action::Read => model::Action::Read,
            wit::Action::NoOp => model::Action::NoOp,
            wit::Action::Forget => model::Action::Forget,
            wit::Action::Update => model::Action::Update,
        },
        before: change.before.map(model::JsonText::new),
        after: change.after.map(model::JsonText::new),
        after_unknown: change.after_unknown,
        before_sensitive: change.before_sensitive,
        after_sensitive: change.after_sensitive,
        depends_on: change.depends_on,
    }
}

pub fn severity_from_wit(s: wit::Severity) -> model::Severity {
    match s {
        wit::Severity::Info => model::Severity::Info,
        wit::Severity::Low => model::Severity::Low,
        wit::Severity::Medium => model::Severity::Medium,
        wit::Severity::High => model::Severity::High,
        wit::Severity::Critical => model::Severity::Critical,
    }
}

pub fn enforcement_from_wit(e: wit::Enforcement) -> model::Enforcement {
    match e {
        wit::Enforcement::Advisory => model::Enforcement::Advisory,
        wit::Enforcement::SoftMandatory => model::Enforcement::SoftMandatory,
        wit::Enforcement::HardMandatory => model::Enforcement::HardMandatory,
    }
}

pub fn finding_from_wit(f: wit::Finding) -> model::Finding {
    model::Finding {
        rule: f.rule,
        severity: severity_from_wit(f.severity),
        enforcement: enforcement_from_wit(f.enforcement),
        message: f.message,
        address: f.address,
        attribute: f.attribute,
        remediation: f.remediation,
    }
}

pub fn metadata_from_wit(m: wit::PolicyMetadata) -> model::PolicyMetadata {
    model::PolicyMetadata {
        id: m.id,
        version: m.version,
        description: m.description,
        rules: m
            .rules
            .into_iter()
            .map(|r| model::RuleInfo {
                id: r.id,
                description: r.description,
                severity: severity_from_wit(r.severity),
                enforcement: enforcement_from_wit(r.enforcement),
            })
            .collect(),
        config_schema: m.config_schema,
    }
}

/// The guest's own account of why it failed.
pub fn guest_error_text(e: &wit::GuestError) -> (&'static str, &str) {
    match e {
        wit::GuestError::InvalidConfig(m) => ("invalid configuration", m),
        wit::GuestError::InvalidInput(m) => ("invalid input", m),
        wit::GuestError::Failed(m) => ("failed", m),
    }
}
