//! A `provkey:plan@0.4.0` policy written directly against the WIT (no SDK), as
//! policies built by the Rust SDK before 0.6.0 are. It reports one finding per
//! change whose message is the change as the guest received it, as JSON: every
//! field of the summary spelled out through its spans, and the value at `/ami`
//! after the change, asked of `plan-view`. The host must go on sending 0.4.0
//! guests what 0.4.0 says.

wit_bindgen::generate!({
    path: "../../../wit/plan@0.4.0",
    world: "policy",
});

use exports::provkey::plan::policy_api::Guest;
use provkey::plan::plan_view::{ActionSummary, PlanSummary, Side, Span, SpanList, value};
use provkey::plan::types::{
    Enforcement, Finding, GuestError, PolicyMetadata, ReplaceOrder, ResourceMode, RuleInfo,
    Severity,
};
use serde_json::{Value, json};

struct Summary04;

const RULE: &str = "change";

/// The summary's strings, refused rather than trusted when a span is wrong.
struct Text<'a>(&'a PlanSummary);

impl Text<'_> {
    fn str(&self, span: Span) -> Result<&str, GuestError> {
        let start = span.start as usize;
        let end = start.saturating_add(span.len as usize);
        self.0
            .text
            .get(start..end)
            .ok_or_else(|| GuestError::InvalidInput(format!("span {start}..{end} is not text")))
    }

    fn list(&self, list: SpanList) -> Result<Vec<&str>, GuestError> {
        let first = list.first as usize;
        let spans = self
            .0
            .lists
            .get(first..first.saturating_add(list.count as usize))
            .ok_or_else(|| GuestError::InvalidInput(format!("list {first} is not in `lists`")))?;
        spans.iter().map(|span| self.str(*span)).collect()
    }
}

fn change_json(text: &Text<'_>, index: usize) -> Result<Value, GuestError> {
    let c = &text.0.changes[index];
    let (action, replacement) = match c.action {
        ActionSummary::Create => ("create", Value::Null),
        ActionSummary::Replace(r) => (
            "replace",
            json!({
                "order": match r.order {
                    ReplaceOrder::CreateBeforeDestroy => "create-before-destroy",
                    ReplaceOrder::DestroyBeforeCreate => "destroy-before-create",
                },
                "reason": r.reason.map(|s| text.str(s)).transpose()?,
                "paths": text.list(r.paths)?,
            }),
        ),
        ActionSummary::Destroy => ("destroy", Value::Null),
        ActionSummary::Read => ("read", Value::Null),
        ActionSummary::NoOp => ("no-op", Value::Null),
        ActionSummary::Forget => ("forget", Value::Null),
        ActionSummary::Update => ("update", Value::Null),
    };
    let ami = value(index as u32, Side::After, "/ami");
    Ok(json!({
        "address": text.str(c.address)?,
        "previous_address": c.previous_address.map(|s| text.str(s)).transpose()?,
        "module_path": text.str(c.module_path)?,
        "mode": match c.mode { ResourceMode::Managed => "managed", ResourceMode::Data => "data" },
        "type": text.str(c.type_)?,
        "name": text.str(c.name)?,
        "provider": text.str(c.provider)?,
        "action": action,
        "replacement": replacement,
        "has_before": c.has_before,
        "has_after": c.has_after,
        "after_unknown": text.list(c.after_unknown)?,
        "before_sensitive": text.list(c.before_sensitive)?,
        "after_sensitive": text.list(c.after_sensitive)?,
        "depends_on": text.list(c.depends_on)?,
        "after_ami": ami,
    }))
}

impl Guest for Summary04 {
    fn metadata() -> PolicyMetadata {
        PolicyMetadata {
            id: "summary-0-4".to_string(),
            version: "0.0.0".to_string(),
            description: "reports the 0.4.0 summary it receives, for the host's tests".to_string(),
            rules: vec![RuleInfo {
                id: RULE.to_string(),
                description: "a change as the guest received it".to_string(),
                severity: Severity::Info,
                enforcement: Enforcement::Advisory,
            }],
            config_schema: None,
        }
    }

    fn evaluate(plan: PlanSummary, _config: String) -> Result<Vec<Finding>, GuestError> {
        let text = Text(&plan);
        let mut findings = vec![Finding {
            rule: RULE.to_string(),
            severity: Severity::Info,
            enforcement: Enforcement::Advisory,
            message: format!(
                "plan from `{}` {}",
                text.str(plan.source)?,
                text.str(plan.format_version)?
            ),
            address: None,
            attribute: None,
            remediation: None,
        }];
        for index in 0..plan.changes.len() {
            let change = change_json(&text, index)?;
            findings.push(Finding {
                rule: RULE.to_string(),
                severity: Severity::Info,
                enforcement: Enforcement::Advisory,
                message: change.to_string(),
                address: change["address"].as_str().map(str::to_string),
                attribute: None,
                remediation: None,
            });
        }
        Ok(findings)
    }
}

export!(Summary04);
