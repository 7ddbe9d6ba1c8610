//! The packed plan summary of `provkey:plan@0.6.0`: what the host packs, the guest
//! unpacks to the same plan, and whatever the host sends, the guest never panics.

#![allow(clippy::unwrap_used, reason = "test helpers")]

use std::path::PathBuf;

use proptest::prelude::*;
use provkey_plan::packed::{self, CHANGE_WORDS, PackedSummary, Span};
use provkey_plan::{Plan, RemoteValues, ResourceChange, Side};

const PLAN: &str = r#"{"format_version": "1.2", "resource_changes": [
  {"address": "module.app.aws_instance.web[0]", "module_address": "module.app", "type": "aws_instance",
   "name": "web", "index": 0, "provider_name": "registry.terraform.io/hashicorp/aws", "mode": "managed",
   "previous_address": "aws_instance.web",
   "change": {"actions": ["update"], "before": {"ami": "a-1", "tags": {"env": "prod"}, "n": 1},
              "after": {"ami": "a-2", "tags": {"env": "prod"}, "n": 1},
              "after_unknown": {"arn": true}, "before_sensitive": {"password": true},
              "after_sensitive": {"password": true}}},
  {"address": "aws_db_instance.main", "type": "aws_db_instance", "name": "main",
   "provider_name": "registry.terraform.io/hashicorp/aws",
   "change": {"actions": ["create", "delete"], "before": {"engine": "postgres", "size": 10},
              "after": {"engine": "postgres", "size": 20}, "replace_paths": [["size"], ["engine"]]},
   "action_reason": "replace_because_cannot_update"},
  {"address": "aws_s3_bucket.lógs", "type": "aws_s3_bucket", "name": "lógs",
   "provider_name": "registry.terraform.io/hashicorp/aws",
   "change": {"actions": ["delete", "create"], "before": {"bucket": "é-logs"}, "after": {"bucket": "é-logs-2"},
              "replace_paths": [["bucket"]]}},
  {"address": "data.aws_ami.base", "type": "aws_ami", "name": "base", "mode": "data",
   "provider_name": "registry.terraform.io/hashicorp/aws",
   "change": {"actions": ["read"], "before": null, "after": {"id": "ami-1"}}},
  {"address": "aws_instance.gone", "type": "aws_instance", "name": "gone",
   "provider_name": "registry.terraform.io/hashicorp/aws",
   "change": {"actions": ["delete"], "before": {"ami": "a-0"}, "after": null}},
  {"address": "aws_instance.same", "type": "aws_instance", "name": "same",
   "provider_name": "registry.terraform.io/hashicorp/aws",
   "change": {"actions": ["no-op"], "before": {"ami": "a-0"}, "after": {"ami": "a-0"}}},
  {"address": "aws_instance.left", "type": "aws_instance", "name": "left",
   "provider_name": "registry.terraform.io/hashicorp/aws",
   "change": {"actions": ["forget"], "before": {"ami": "a-0"}, "after": null}}
]}"#;

/// Answers a guest's questions from the plan the host holds, as the host does.
struct Answers {
    plan: &'static Plan,
    /// Whether `changed_attributes` is answered here or left to the guest.
    diff_here: bool,
}

impl RemoteValues for Answers {
    fn text_at(&self, change: u32, side: Side, pointer: &str) -> Option<String> {
        let change = self.plan.changes.get(change as usize)?;
        let value = match side {
            Side::Before => change.before.as_ref()?,
            Side::After => change.after.as_ref()?,
        };
        if pointer.is_empty() {
            return Some(value.as_str().to_string());
        }
        value.pointer(pointer).map(|v| v.to_string())
    }

    fn changed_attributes(&self, change: u32) -> Option<Vec<String>> {
        self.diff_here
            .then(|| self.plan.changes.get(change as usize))?
            .map(ResourceChange::changed_attributes)
    }
}

fn answers(plan: &Plan, diff_here: bool) -> &'static Answers {
    Box::leak(Box::new(Answers {
        plan: Box::leak(Box::new(plan.clone())),
        diff_here,
    }))
}

/// Packs `plan`, unpacks it as a guest would, and checks that every field, every
/// value read through the host and every change's changed attributes are the same.
fn assert_round_trip(plan: &Plan, name: &str) {
    let summary = packed::pack(plan).unwrap();
    assert_eq!(
        summary.changes.len(),
        plan.changes.len() * CHANGE_WORDS as usize
    );
    for diff_here in [false, true] {
        let unpacked = packed::unpack(summary.view(), answers(plan, diff_here)).unwrap();
        // Serializing reads every value through the host: the same JSON means the same
        // plan, values included.
        assert_eq!(
            serde_json::to_value(&unpacked).unwrap(),
            serde_json::to_value(plan).unwrap(),
            "{name}"
        );
        for (got, want) in unpacked.changes.iter().zip(&plan.changes) {
            assert_eq!(
                got.changed_attributes(),
                want.changed_attributes(),
                "{name}: {}",
                want.address
            );
        }
    }
}

#[test]
fn a_packed_plan_unpacks_to_the_same_plan() {
    let plan = Plan::from_json(PLAN).unwrap();
    assert_round_trip(&plan, "PLAN");
    // Every action, both modes, a previous address, a reason, lists, a multi-byte
    // character: the layout's every field is exercised.
    let actions: Vec<&str> = plan.changes.iter().map(|c| c.action.name()).collect();
    assert_eq!(
        actions,
        [
            "update", "replace", "replace", "read", "destroy", "no-op", "forget"
        ]
    );
    assert_round_trip(&Plan::new(provkey_plan::PlanSource::Provkey), "empty");
}

#[test]
fn repeated_strings_are_written_once() {
    let plan = Plan::from_json(PLAN).unwrap();
    let summary = packed::pack(&plan).unwrap();
    let provider = "registry.terraform.io/hashicorp/aws";
    assert_eq!(summary.text.matches(provider).count(), 1);
}

/// `../shared/data/terraform-plans`, or `None` with a loud note when it is absent.
fn shared_plans() -> Option<Vec<PathBuf>> {
    let dir = std::env::var_os("PROVKEY_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("data/terraform-plans");
    if !dir.is_dir() {
        eprintln!(
            "SKIPPED: `{}` is absent; set PROVKEY_SHARED_DIR to the shared/ folder to run this test",
            dir.display()
        );
        return None;
    }
    let mut plans: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    plans.sort();
    Some(plans)
}

#[test]
fn every_real_plan_round_trips() {
    let Some(paths) = shared_plans() else { return };
    let mut checked = 0;
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        // Plans the reader refuses are tested elsewhere; here only those it reads.
        let Ok(plan) = Plan::from_json(&text) else {
            continue;
        };
        assert_round_trip(&plan, &path.display().to_string());
        checked += 1;
    }
    assert!(
        checked >= 40,
        "only {checked} of {} plans read",
        paths.len()
    );
}

fn summary() -> PackedSummary {
    packed::pack(&Plan::from_json(PLAN).unwrap()).unwrap()
}

fn unpack_error(summary: &PackedSummary) -> String {
    let plan = Plan::from_json(PLAN).unwrap();
    packed::unpack(summary.view(), answers(&plan, false))
        .unwrap_err()
        .to_string()
}

#[test]
fn a_summary_that_breaks_the_layout_is_refused_by_name() {
    let mut s = summary();
    s.changes.pop();
    assert_eq!(
        unpack_error(&s),
        "the plan summary has 181 numbers for 7 changes of 26"
    );

    let mut s = summary();
    s.changes[12] = 7;
    assert_eq!(
        unpack_error(&s),
        "the plan summary gives change 0 action number 7, where 0.6.0 knows 7 (create, \
         replace, destroy, read, no-op, forget, update)"
    );

    let mut s = summary();
    s.changes[13] |= 64;
    assert!(unpack_error(&s).starts_with("the plan summary gives change 0 unknown flags "));

    let mut s = summary();
    s.changes[CHANGE_WORDS as usize] = u32::MAX;
    assert_eq!(
        unpack_error(&s),
        format!(
            "the plan summary has a span {}+{} that is not within its text of {} bytes",
            u32::MAX,
            s.changes[CHANGE_WORDS as usize + 1],
            s.text.len()
        )
    );

    // A span that splits `ó` in two.
    let mut s = summary();
    let at = u32::try_from(s.text.find('ó').unwrap()).unwrap();
    s.changes[0] = at;
    s.changes[1] = 1;
    let error = unpack_error(&s);
    assert!(
        error.contains(&format!("span {at}+1 that is not within")),
        "{error}"
    );

    let mut s = summary();
    s.changes[18] = u32::MAX;
    s.changes[19] = 2;
    assert_eq!(
        unpack_error(&s),
        format!(
            "the plan summary has a list {}+2 that is not within its {} list elements",
            u32::MAX,
            s.strings.len() / 2
        )
    );

    let mut s = summary();
    s.strings.push(0);
    assert_eq!(
        unpack_error(&s),
        format!(
            "the plan summary has an odd count of list numbers ({})",
            s.strings.len()
        )
    );

    let mut s = summary();
    s.source = Span {
        start: u32::try_from(s.text.find("aws_db").unwrap()).unwrap(),
        len: 6,
    };
    assert_eq!(
        unpack_error(&s),
        "the plan summary names an unknown source `aws_db`"
    );

    let s = summary();
    let mut view = s.view();
    view.change_words = 25;
    let plan = Plan::from_json(PLAN).unwrap();
    assert_eq!(
        packed::unpack(view, answers(&plan, false))
            .unwrap_err()
            .to_string(),
        "the plan summary has 25 numbers per change where 0.6.0 has 26"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever number the host gets wrong, and however, the guest answers with a
    /// plan or an error, never a panic.
    #[test]
    fn any_number_changed_never_panics(
        at in 0usize..(7 * CHANGE_WORDS as usize),
        value in prop_oneof![0u32..64, any::<u32>()],
        list in any::<bool>(),
    ) {
        let mut s = summary();
        if list {
            let len = s.strings.len();
            s.strings[at % len] = value;
        } else {
            s.changes[at] = value;
        }
        let plan = Plan::from_json(PLAN).unwrap();
        let _ = packed::unpack(s.view(), answers(&plan, false));
    }
}
