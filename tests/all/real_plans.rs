//! Every real Terraform / OpenTofu plan in `../shared/data/terraform-plans/`.

use std::collections::BTreeSet;

use crate::support::*;

/// The addresses whose actions are exactly `["update"]`, read straight from the
/// plan JSON, independently of provkey's importer.
fn updates_in(plan: &serde_json::Value) -> BTreeSet<String> {
    plan["resource_changes"]
        .as_array()
        .map(|changes| {
            changes
                .iter()
                .filter(|rc| rc["change"]["actions"] == serde_json::json!(["update"]))
                .map(|rc| {
                    let address = rc["address"].as_str().unwrap().to_string();
                    match rc["deposed"].as_str() {
                        Some(key) => format!("{address} (deposed {key})"),
                        None => address,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_real_plan_is_checked_and_immutable_flags_exactly_the_updates() {
    let Some(plans) = terraform_plans() else {
        return;
    };
    let mut total_updates = 0;
    for path in &plans {
        let run = check(&["--plan", path.to_str().unwrap(), "--format", "json"]);
        assert!(
            run.code == 0 || run.code == 1,
            "{}: {run:?}",
            path.display()
        );
        let report = run.json();
        assert_eq!(
            report["summary"]["failed_policies"],
            0,
            "{}",
            path.display()
        );

        let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let expected = updates_in(&raw);
        total_updates += expected.len();
        let found: BTreeSet<String> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["policy"] == "immutable")
            .map(|f| f["address"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(found, expected, "{}", path.display());
        let immutable_findings = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["policy"] == "immutable")
            .count();
        assert_eq!(
            immutable_findings,
            expected.len(),
            "one finding per update: {}",
            path.display()
        );
        if !expected.is_empty() {
            assert_eq!(run.code, 1, "{}: {run:?}", path.display());
        }
        assert_eq!(
            report["plan"]["changes"].as_u64().unwrap() as usize,
            raw["resource_changes"].as_array().map_or(0, Vec::len),
            "{}",
            path.display()
        );
    }
    assert!(
        total_updates > 0,
        "the shared plans contain updates; the test would prove nothing"
    );
    eprintln!(
        "checked {} real plans, {total_updates} in-place updates",
        plans.len()
    );
}

#[test]
fn every_real_plan_round_trips_through_provkey_plan_json() {
    let Some(plans) = terraform_plans() else {
        return;
    };
    for path in &plans {
        let text = std::fs::read_to_string(path).unwrap();
        let plan = provkey_plan_from(&text, path);
        let json = plan.to_json().unwrap();
        let again = provkey_plan::Plan::from_json(&json).unwrap();
        assert_eq!(plan.changes, again.changes, "{}", path.display());
        assert_eq!(again.source_version, plan.source_version);
    }
}

fn provkey_plan_from(text: &str, path: &std::path::Path) -> provkey_plan::Plan {
    provkey_plan::Plan::from_json(text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
