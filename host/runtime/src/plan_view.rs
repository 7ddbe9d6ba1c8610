//! `provkey:plan/plan-view` of 0.2.0, 0.3.0, 0.4.0 and 0.5.0: the plan a policy
//! evaluates, as the host shows it. The policy receives every change without its
//! attribute values and asks for the values it reads; the host answers from the one
//! parsed plan that every policy of the check shares, so a member that several
//! policies read is found once. A 0.3.0 or 0.5.0 policy receives the changes as one
//! JSON text and asks for one member of every change per call; a 0.4.0 policy receives them
//! as records whose strings are spans of one text.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Arc, OnceLock};

use foldhash::fast::RandomState;

use provkey_plan::{Action, JsonText, Plan, ReplaceOrder, ResourceChange, ResourceMode};
use serde::Serialize;

use crate::bindings::policy::provkey::plan::types as wit;
use crate::bindings::policy_0_2::provkey::plan::plan_view as view;
use crate::bindings::policy_0_3::provkey::plan::plan_view as view_0_3;
use crate::bindings::policy_0_4::provkey::plan::plan_view as view_0_4;
use crate::bindings::policy_0_5::provkey::plan::plan_view as view_0_5;
use crate::bindings::{action_to_wit, mode_to_wit, replace_order_to_wit};
use crate::guest::GuestState;

/// A plan ready for guests of either contract, each form built on first need and
/// shared by every policy of a check.
#[derive(Debug)]
pub struct GuestPlan {
    plan: Arc<Plan>,
    full: OnceLock<wit::Plan>,
    summary: OnceLock<view::PlanSummary>,
    summary_json: OnceLock<String>,
    packed: OnceLock<Option<view_0_4::PlanSummary>>,
}

impl GuestPlan {
    pub fn new(plan: Arc<Plan>) -> Self {
        GuestPlan {
            plan,
            full: OnceLock::new(),
            summary: OnceLock::new(),
            summary_json: OnceLock::new(),
            packed: OnceLock::new(),
        }
    }

    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// The whole plan, attribute values included, for `provkey:plan@0.1.0` policies.
    pub fn full(&self) -> &wit::Plan {
        self.full
            .get_or_init(|| crate::bindings::plan_to_wit(&self.plan))
    }

    /// The plan without attribute values, for `provkey:plan@0.2.0` policies.
    pub fn summary(&self) -> &view::PlanSummary {
        self.summary.get_or_init(|| summary_to_wit(&self.plan))
    }

    /// The plan without attribute values as JSON text, for `provkey:plan@0.3.0`
    /// policies (the format is in the WIT, at `policy-api.evaluate`).
    pub fn summary_json(&self) -> &str {
        self.summary_json
            .get_or_init(|| summary_to_json(&self.plan))
    }

    /// The plan without attribute values, its strings in one text, for
    /// `provkey:plan@0.4.0` policies; none when a string or list lies beyond the
    /// 4 GiB that a span can address (more than any guest memory holds anyway).
    pub fn packed_summary(&self) -> Option<&view_0_4::PlanSummary> {
        self.packed
            .get_or_init(|| PackedSummary::default().build(&self.plan))
            .as_ref()
    }
}

/// Builds a 0.4.0 summary: strings are appended to one text, and a string seen
/// before (a type, a provider, a module path, a path in a list) reuses its span.
///
/// It is built while every 0.4.0 policy of the check waits for it, so it is sized
/// up front and hashes with foldhash: SipHash and regrowth made it 1.4 µs per change.
#[derive(Default)]
struct PackedSummary<'a> {
    text: String,
    lists: Vec<view_0_4::Span>,
    seen: HashMap<&'a str, view_0_4::Span, RandomState>,
}

impl<'a> PackedSummary<'a> {
    fn build(mut self, plan: &'a Plan) -> Option<view_0_4::PlanSummary> {
        // A change's strings take about 100 bytes (an address, a name, repeats
        // written once); a wrong guess only costs a regrowth.
        self.text.reserve(plan.changes.len().saturating_mul(100));
        self.seen.reserve(plan.changes.len());
        let source = self.string(plan.source.as_str())?;
        let format_version = self.string(&plan.source_version)?;
        let mut changes = Vec::with_capacity(plan.changes.len());
        for change in &plan.changes {
            changes.push(self.change(change)?);
        }
        Some(view_0_4::PlanSummary {
            text: self.text,
            lists: self.lists,
            source,
            format_version,
            changes,
        })
    }

    fn change(&mut self, change: &'a ResourceChange) -> Option<view_0_4::ChangeSummary> {
        Some(view_0_4::ChangeSummary {
            // Addresses are unique within a plan: looking them up would find nothing.
            address: self.append(&change.address)?,
            previous_address: match &change.previous_address {
                Some(address) => Some(self.append(address)?),
                None => None,
            },
            module_path: self.string(&change.module_path)?,
            mode: mode_to_wit(change.mode),
            type_: self.string(&change.resource_type)?,
            name: self.string(&change.name)?,
            provider: self.string(&change.provider)?,
            action: match &change.action {
                Action::Create => view_0_4::ActionSummary::Create,
                Action::Replace(r) => {
                    view_0_4::ActionSummary::Replace(view_0_4::ReplacementSummary {
                        order: replace_order_to_wit(r.order),
                        reason: match &r.reason {
                            Some(reason) => Some(self.string(reason)?),
                            None => None,
                        },
                        paths: self.list(&r.paths)?,
                    })
                }
                Action::Destroy => view_0_4::ActionSummary::Destroy,
                Action::Read => view_0_4::ActionSummary::Read,
                Action::NoOp => view_0_4::ActionSummary::NoOp,
                Action::Forget => view_0_4::ActionSummary::Forget,
                Action::Update => view_0_4::ActionSummary::Update,
            },
            has_before: change.before.is_some(),
            has_after: change.after.is_some(),
            after_unknown: self.list(&change.after_unknown)?,
            before_sensitive: self.list(&change.before_sensitive)?,
            after_sensitive: self.list(&change.after_sensitive)?,
            depends_on: self.list(&change.depends_on)?,
        })
    }

    /// `text` appended, or its span if it was seen before.
    fn string(&mut self, text: &'a str) -> Option<view_0_4::Span> {
        if let Some(span) = self.seen.get(text) {
            return Some(*span);
        }
        let span = self.append(text)?;
        self.seen.insert(text, span);
        Some(span)
    }

    fn append(&mut self, text: &str) -> Option<view_0_4::Span> {
        let span = view_0_4::Span {
            start: u32::try_from(self.text.len()).ok()?,
            len: u32::try_from(text.len()).ok()?,
        };
        span.start.checked_add(span.len)?;
        self.text.push_str(text);
        Some(span)
    }

    fn list(&mut self, items: &'a [String]) -> Option<view_0_4::SpanList> {
        let list = view_0_4::SpanList {
            first: u32::try_from(self.lists.len()).ok()?,
            count: u32::try_from(items.len()).ok()?,
        };
        list.first.checked_add(list.count)?;
        for item in items {
            let span = self.string(item)?;
            self.lists.push(span);
        }
        Some(list)
    }
}

#[derive(Serialize)]
struct JsonSummary<'a> {
    source: &'a str,
    format_version: &'a str,
    changes: Vec<JsonChange<'a>>,
}

/// Empty and null fields are left out: guests parse less (in CPython, four empty
/// lists per change cost as much as the rest of the change).
#[derive(Serialize)]
struct JsonChange<'a> {
    address: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_address: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    module_path: &'a str,
    mode: ResourceMode,
    #[serde(rename = "type")]
    resource_type: &'a str,
    name: &'a str,
    provider: &'a str,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    replacement: Option<JsonReplacement<'a>>,
    has_before: bool,
    has_after: bool,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    after_unknown: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    before_sensitive: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    after_sensitive: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    depends_on: &'a [String],
}

#[derive(Serialize)]
struct JsonReplacement<'a> {
    order: ReplaceOrder,
    reason: Option<&'a str>,
    paths: &'a [String],
}

fn summary_to_json(plan: &Plan) -> String {
    let summary = JsonSummary {
        source: plan.source.as_str(),
        format_version: &plan.source_version,
        changes: plan
            .changes
            .iter()
            .map(|change| JsonChange {
                address: &change.address,
                previous_address: change.previous_address.as_deref(),
                module_path: &change.module_path,
                mode: change.mode,
                resource_type: &change.resource_type,
                name: &change.name,
                provider: &change.provider,
                action: change.action.name(),
                replacement: match &change.action {
                    Action::Replace(replacement) => Some(JsonReplacement {
                        order: replacement.order,
                        reason: replacement.reason.as_deref(),
                        paths: &replacement.paths,
                    }),
                    _ => None,
                },
                has_before: change.before.is_some(),
                has_after: change.after.is_some(),
                after_unknown: &change.after_unknown,
                before_sensitive: &change.before_sensitive,
                after_sensitive: &change.after_sensitive,
                depends_on: &change.depends_on,
            })
            .collect(),
    };
    // Strings, bools and lists of strings: serializing them cannot fail.
    serde_json::to_string(&summary).unwrap_or_default()
}

fn summary_to_wit(plan: &Plan) -> view::PlanSummary {
    view::PlanSummary {
        source: plan.source.as_str().to_string(),
        format_version: plan.source_version.clone(),
        changes: plan
            .changes
            .iter()
            .map(|change| view::ChangeSummary {
                address: change.address.clone(),
                previous_address: change.previous_address.clone(),
                module_path: change.module_path.clone(),
                mode: mode_to_wit(change.mode),
                type_: change.resource_type.clone(),
                name: change.name.clone(),
                provider: change.provider.clone(),
                action: action_to_wit(&change.action),
                has_before: change.before.is_some(),
                has_after: change.after.is_some(),
                after_unknown: change.after_unknown.clone(),
                before_sensitive: change.before_sensitive.clone(),
                after_sensitive: change.after_sensitive.clone(),
                depends_on: change.depends_on.clone(),
            })
            .collect(),
    }
}

impl GuestState {
    fn plan_value(&self, change: u32, side: view::Side) -> Option<&JsonText> {
        let change = self
            .plan
            .as_ref()?
            .changes
            .get(usize::try_from(change).ok()?)?;
        side_value(change, side)
    }
}

fn side_value(change: &ResourceChange, side: view::Side) -> Option<&JsonText> {
    match side {
        view::Side::Before => change.before.as_ref(),
        view::Side::After => change.after.as_ref(),
    }
}

/// The JSON text at `pointer` of `value`: a top-level member as written (nothing
/// is parsed for it), anything deeper through the parsed value.
fn text_at<'a>(value: &'a JsonText, pointer: &str) -> Option<Cow<'a, str>> {
    if pointer.is_empty() {
        return Some(Cow::Borrowed(value.as_str()));
    }
    if let Some(text) = value.member_text(pointer) {
        return Some(Cow::Borrowed(text));
    }
    value.pointer(pointer).map(|v| Cow::Owned(v.to_string()))
}

fn side_0_2(side: view_0_3::Side) -> view::Side {
    match side {
        view_0_3::Side::Before => view::Side::Before,
        view_0_3::Side::After => view::Side::After,
    }
}

/// What a guest may read is bounded by the plan itself; what it may keep, by its
/// memory limit; how often it may ask, by its deadline.
impl view::Host for GuestState {
    fn value(&mut self, change: u32, side: view::Side, pointer: String) -> Option<String> {
        text_at(self.plan_value(change, side)?, &pointer).map(Cow::into_owned)
    }
}

impl view_0_4::Host for GuestState {
    fn value(&mut self, change: u32, side: view_0_4::Side, pointer: String) -> Option<String> {
        let side = match side {
            view_0_4::Side::Before => view::Side::Before,
            view_0_4::Side::After => view::Side::After,
        };
        text_at(self.plan_value(change, side)?, &pointer).map(Cow::into_owned)
    }
}

/// 0.5.0's `plan-view` is 0.3.0's.
impl view_0_5::Host for GuestState {
    fn value(&mut self, change: u32, side: view_0_5::Side, pointer: String) -> Option<String> {
        view_0_3::Host::value(self, change, side_0_3(side), pointer)
    }

    fn values(&mut self, side: view_0_5::Side, pointer: String) -> String {
        view_0_3::Host::values(self, side_0_3(side), pointer)
    }
}

fn side_0_3(side: view_0_5::Side) -> view_0_3::Side {
    match side {
        view_0_5::Side::Before => view_0_3::Side::Before,
        view_0_5::Side::After => view_0_3::Side::After,
    }
}

impl view_0_3::Host for GuestState {
    fn value(&mut self, change: u32, side: view_0_3::Side, pointer: String) -> Option<String> {
        text_at(self.plan_value(change, side_0_2(side))?, &pointer).map(Cow::into_owned)
    }

    /// `{"index": value, ...}` over every change that has a value at `pointer`.
    fn values(&mut self, side: view_0_3::Side, pointer: String) -> String {
        let Some(plan) = self.plan.as_ref() else {
            return "{}".to_string();
        };
        let side = side_0_2(side);
        let mut out = String::from("{");
        for (index, change) in plan.changes.iter().enumerate() {
            let Some(text) = side_value(change, side).and_then(|value| text_at(value, &pointer))
            else {
                continue;
            };
            let comma = if out.len() > 1 { "," } else { "" };
            // Writing to a String cannot fail.
            let _ = write!(out, "{comma}\"{index}\":{text}");
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    const PLAN: &str = r#"{
      "format_version": "1.2",
      "resource_changes": [
        {"address": "aws_s3_bucket.a", "mode": "managed", "type": "aws_s3_bucket", "name": "a",
         "provider_name": "registry.terraform.io/hashicorp/aws",
         "change": {"actions": ["update"], "before": {"tags": {"env": "dev"}},
                    "after": {"tags": {"env": "prod"}, "n": null, "a/b": [1, 2]},
                    "after_unknown": {}}},
        {"address": "aws_s3_bucket.b", "mode": "managed", "type": "aws_s3_bucket", "name": "b",
         "provider_name": "registry.terraform.io/hashicorp/aws",
         "change": {"actions": ["create"], "before": null, "after": {"acl": "private"},
                    "after_unknown": {"id": true}}},
        {"address": "module.m.aws_instance.w", "module_address": "module.m",
         "previous_address": "aws_instance.w", "mode": "managed", "type": "aws_instance",
         "name": "w", "provider_name": "registry.terraform.io/hashicorp/aws",
         "action_reason": "replace_because_cannot_update",
         "change": {"actions": ["create", "delete"], "before": {"ami": "x"},
                    "after": {"ami": "y", "tags": {}}, "after_unknown": {},
                    "replace_paths": [["ami"]]}}
      ]
    }"#;

    fn state() -> GuestState {
        let mut state = GuestState::new(1 << 20);
        state.plan = Some(Arc::new(Plan::from_json(PLAN).unwrap()));
        state
    }

    fn values(side: view_0_3::Side, pointer: &str) -> serde_json::Value {
        let text = view_0_3::Host::values(&mut state(), side, pointer.to_string());
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn values_answers_every_change_that_has_the_member_by_its_index() {
        use serde_json::json;
        use view_0_3::Side::{After, Before};
        assert_eq!(
            values(After, "/tags"),
            json!({"0": {"env": "prod"}, "2": {}})
        );
        assert_eq!(values(Before, "/tags"), json!({"0": {"env": "dev"}}));
        // A member whose value is null is there; an escaped key is unescaped.
        assert_eq!(values(After, "/n"), json!({"0": null}));
        assert_eq!(values(After, "/a~1b/1"), json!({"0": 2}));
        assert_eq!(values(After, "/missing"), json!({}));
        assert_eq!(
            values(Before, ""),
            json!({"0": {"tags": {"env": "dev"}}, "2": {"ami": "x"}})
        );
    }

    #[test]
    fn the_packed_summary_spells_every_string_of_the_plan_and_shares_repeats() {
        let plan = Plan::from_json(PLAN).unwrap();
        let guest_plan = GuestPlan::new(Arc::new(plan.clone()));
        let summary = guest_plan.packed_summary().unwrap();
        let at = |span: view_0_4::Span| {
            &summary.text[span.start as usize..(span.start + span.len) as usize]
        };
        let list = |list: view_0_4::SpanList| -> Vec<&str> {
            summary.lists[list.first as usize..(list.first + list.count) as usize]
                .iter()
                .map(|span| at(*span))
                .collect()
        };
        assert_eq!(at(summary.source), "terraform");
        assert_eq!(at(summary.format_version), "1.2");
        assert_eq!(summary.changes.len(), plan.changes.len());
        for (packed, change) in summary.changes.iter().zip(&plan.changes) {
            assert_eq!(at(packed.address), change.address);
            assert_eq!(
                packed.previous_address.map(at),
                change.previous_address.as_deref()
            );
            assert_eq!(at(packed.module_path), change.module_path);
            assert_eq!(at(packed.type_), change.resource_type);
            assert_eq!(at(packed.name), change.name);
            assert_eq!(at(packed.provider), change.provider);
            assert_eq!(packed.has_before, change.before.is_some());
            assert_eq!(packed.has_after, change.after.is_some());
            assert_eq!(list(packed.after_unknown), change.after_unknown);
            assert_eq!(list(packed.before_sensitive), change.before_sensitive);
            assert_eq!(list(packed.after_sensitive), change.after_sensitive);
            assert_eq!(list(packed.depends_on), change.depends_on);
        }
        assert!(matches!(
            summary.changes[0].action,
            view_0_4::ActionSummary::Update
        ));
        let view_0_4::ActionSummary::Replace(replacement) = summary.changes[2].action else {
            panic!("change 2 is a replacement");
        };
        assert!(matches!(
            replacement.order,
            wit::ReplaceOrder::CreateBeforeDestroy
        ));
        assert_eq!(
            replacement.reason.map(at),
            Some("replace_because_cannot_update")
        );
        assert_eq!(list(replacement.paths), ["/ami"]);
        assert_eq!(list(summary.changes[1].after_unknown), ["/id"]);
        // The provider, written once for all three changes.
        let (first, last) = (summary.changes[0].provider, summary.changes[2].provider);
        assert_eq!((first.start, first.len), (last.start, last.len));
        assert_eq!(
            summary
                .text
                .matches("registry.terraform.io/hashicorp/aws")
                .count(),
            1
        );
    }

    #[test]
    fn the_json_summary_has_every_change_and_leaves_out_empty_fields() {
        let plan = GuestPlan::new(Arc::new(Plan::from_json(PLAN).unwrap()));
        let summary: serde_json::Value = serde_json::from_str(plan.summary_json()).unwrap();
        assert_eq!(summary["source"], "terraform");
        assert_eq!(summary["format_version"], "1.2");
        let changes = summary["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 3);
        assert_eq!(
            changes[0],
            serde_json::json!({
                "address": "aws_s3_bucket.a", "mode": "managed", "type": "aws_s3_bucket",
                "name": "a", "provider": "registry.terraform.io/hashicorp/aws",
                "action": "update", "has_before": true, "has_after": true,
            })
        );
        assert_eq!(changes[1]["after_unknown"], serde_json::json!(["/id"]));
        assert_eq!(changes[1]["has_before"], false);
        assert_eq!(
            changes[2],
            serde_json::json!({
                "address": "module.m.aws_instance.w", "previous_address": "aws_instance.w",
                "module_path": "module.m", "mode": "managed", "type": "aws_instance",
                "name": "w", "provider": "registry.terraform.io/hashicorp/aws",
                "action": "replace",
                "replacement": {"order": "create-before-destroy",
                                "reason": "replace_because_cannot_update", "paths": ["/ami"]},
                "has_before": true, "has_after": true,
            })
        );
    }
}
