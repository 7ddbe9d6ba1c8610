//! `provkey:plan/plan-view` of 0.2.0 to 0.6.0: the plan a policy
//! evaluates, as the host shows it. The policy receives every change without its
//! attribute values and asks for the values it reads; the host answers from the one
//! parsed plan that every policy of the check shares, so a member that several
//! policies read is found once. A 0.3.0 or 0.5.0 policy receives the changes as one
//! JSON text and asks for one member of every change per call; a 0.4.0 policy receives
//! them as records whose strings are spans of one text; a 0.6.0 policy, as numbers
//! that point into one text (`provkey_plan::packed`).

use std::borrow::Cow;
use std::fmt::Write;
use std::sync::{Arc, OnceLock};

use provkey_plan::{Action, JsonText, Plan, ReplaceOrder, ResourceChange, ResourceMode};
use serde::Serialize;

use crate::bindings::policy::provkey::plan::types as wit;
use crate::bindings::policy_0_2::provkey::plan::plan_view as view;
use crate::bindings::policy_0_3::provkey::plan::plan_view as view_0_3;
use crate::bindings::policy_0_4::provkey::plan::plan_view as view_0_4;
use crate::bindings::policy_0_5::provkey::plan::plan_view as view_0_5;
use crate::bindings::policy_0_6::provkey::plan::plan_view as view_0_6;
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
    numbers: OnceLock<Option<view_0_6::PlanSummary>>,
}

impl GuestPlan {
    pub fn new(plan: Arc<Plan>) -> Self {
        GuestPlan {
            plan,
            full: OnceLock::new(),
            summary: OnceLock::new(),
            summary_json: OnceLock::new(),
            packed: OnceLock::new(),
            numbers: OnceLock::new(),
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
            .get_or_init(|| summary_0_4(self.packed_numbers()?))
            .as_ref()
    }

    /// The plan without attribute values, its changes packed in numbers that point
    /// into one text, for `provkey:plan@0.6.0` policies; none past 4 GiB, as for
    /// [`GuestPlan::packed_summary`].
    pub fn packed_numbers(&self) -> Option<&view_0_6::PlanSummary> {
        self.numbers
            .get_or_init(|| {
                let packed = provkey_plan::packed::pack(&self.plan)?;
                let span = |span: provkey_plan::packed::Span| view_0_6::Span {
                    start: span.start,
                    len: span.len,
                };
                Some(view_0_6::PlanSummary {
                    text: packed.text,
                    source: span(packed.source),
                    format_version: span(packed.format_version),
                    change_count: packed.change_count,
                    change_words: provkey_plan::packed::CHANGE_WORDS,
                    changes: packed.changes,
                    strings: packed.strings,
                })
            })
            .as_ref()
    }
}

/// 0.4.0's summary: 0.6.0's packed summary with each change's numbers as records.
/// Read from the numbers the check has already packed, so that a check with
/// policies of both versions (the stock set and policies built before 0.6.0) packs
/// the plan once.
fn summary_0_4(packed: &view_0_6::PlanSummary) -> Option<view_0_4::PlanSummary> {
    use provkey_plan::packed::{ActionSpans, CHANGE_WORDS, ChangeSpans, Span};
    let span = |span: Span| view_0_4::Span {
        start: span.start,
        len: span.len,
    };
    let list = |list: Span| view_0_4::SpanList {
        first: list.start,
        count: list.len,
    };
    let mut changes = Vec::with_capacity(packed.change_count as usize);
    for (index, words) in (0u32..).zip(packed.changes.chunks_exact(CHANGE_WORDS as usize)) {
        // The host packed these numbers itself: they always decode.
        let c = ChangeSpans::decode(index, words).ok()?;
        changes.push(view_0_4::ChangeSummary {
            address: span(c.address),
            previous_address: c.previous_address.map(span),
            module_path: span(c.module_path),
            mode: mode_to_wit(c.mode),
            type_: span(c.resource_type),
            name: span(c.name),
            provider: span(c.provider),
            action: match c.action {
                ActionSpans::Create => view_0_4::ActionSummary::Create,
                ActionSpans::Replace {
                    order,
                    reason,
                    paths,
                } => view_0_4::ActionSummary::Replace(view_0_4::ReplacementSummary {
                    order: replace_order_to_wit(order),
                    reason: reason.map(span),
                    paths: list(paths),
                }),
                ActionSpans::Destroy => view_0_4::ActionSummary::Destroy,
                ActionSpans::Read => view_0_4::ActionSummary::Read,
                ActionSpans::NoOp => view_0_4::ActionSummary::NoOp,
                ActionSpans::Forget => view_0_4::ActionSummary::Forget,
                ActionSpans::Update => view_0_4::ActionSummary::Update,
            },
            has_before: c.has_before,
            has_after: c.has_after,
            after_unknown: list(c.after_unknown),
            before_sensitive: list(c.before_sensitive),
            after_sensitive: list(c.after_sensitive),
            depends_on: list(c.depends_on),
        });
    }
    let wit_span = |span: view_0_6::Span| view_0_4::Span {
        start: span.start,
        len: span.len,
    };
    Some(view_0_4::PlanSummary {
        text: packed.text.clone(),
        lists: packed
            .strings
            .chunks_exact(2)
            .map(|pair| view_0_4::Span {
                start: pair[0],
                len: pair[1],
            })
            .collect(),
        source: wit_span(packed.source),
        format_version: wit_span(packed.format_version),
        changes,
    })
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

/// 0.6.0's `plan-view` is 0.4.0's, plus `changed-attributes`.
impl view_0_6::Host for GuestState {
    fn value(&mut self, change: u32, side: view_0_6::Side, pointer: String) -> Option<String> {
        let side = match side {
            view_0_6::Side::Before => view::Side::Before,
            view_0_6::Side::After => view::Side::After,
        };
        text_at(self.plan_value(change, side)?, &pointer).map(Cow::into_owned)
    }

    /// Worked out on the host's values, which the other policies of the check have
    /// mostly indexed already: the guest neither copies nor parses them.
    fn changed_attributes(&mut self, change: u32) -> Vec<String> {
        self.plan
            .as_ref()
            .and_then(|plan| plan.changes.get(usize::try_from(change).ok()?))
            .map(ResourceChange::changed_attributes)
            .unwrap_or_default()
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
    fn the_numbers_summary_unpacks_to_the_plan_and_changed_attributes_are_the_hosts() {
        let plan = Plan::from_json(PLAN).unwrap();
        let guest_plan = GuestPlan::new(Arc::new(plan.clone()));
        let summary = guest_plan.packed_numbers().unwrap();
        assert_eq!(summary.change_count, 3);
        assert_eq!(summary.change_words, provkey_plan::packed::CHANGE_WORDS);
        // What the 0.6.0 guest receives is what the guest SDK unpacks.
        let packed = provkey_plan::packed::PackedSummary {
            text: summary.text.clone(),
            source: provkey_plan::packed::Span {
                start: summary.source.start,
                len: summary.source.len,
            },
            format_version: provkey_plan::packed::Span {
                start: summary.format_version.start,
                len: summary.format_version.len,
            },
            change_count: summary.change_count,
            changes: summary.changes.clone(),
            strings: summary.strings.clone(),
        };
        assert_eq!(Some(packed), provkey_plan::packed::pack(&plan));

        let mut state = state();
        let changed =
            |state: &mut GuestState, change| view_0_6::Host::changed_attributes(state, change);
        assert_eq!(changed(&mut state, 0), ["/a~1b", "/n", "/tags"]);
        assert_eq!(changed(&mut state, 1), ["/acl", "/id"]);
        assert_eq!(changed(&mut state, 2), ["/ami", "/tags"]);
        assert!(changed(&mut state, 3).is_empty());
        assert!(changed(&mut state, u32::MAX).is_empty());
        assert_eq!(
            view_0_6::Host::value(&mut state, 2, view_0_6::Side::Before, "/ami".into()),
            Some("\"x\"".to_string())
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
