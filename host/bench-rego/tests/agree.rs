//! regorus returns exactly the findings of the native floor and of provkey's stock
//! components (recorded by provkey-bench's own test in
//! host/bench/tests/golden/findings-700.tsv) on the generated plan.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on the first error"
)]

use provkey_bench_rego::findings::{first_difference, normalize};
use provkey_bench_rego::genplan;
use provkey_bench_rego::rego::Rego;

const GOLDEN: &str = include_str!("../../bench/tests/golden/findings-700.tsv");

#[test]
fn regorus_agrees_with_the_floor_and_provkey() {
    let expected: Vec<(String, String)> = GOLDEN
        .lines()
        .map(|line| {
            let (rule, address) = line.split_once('\t').unwrap();
            (rule.to_string(), address.to_string())
        })
        .collect();
    let plan = genplan::generate(700, genplan::DEFAULT_SEED);
    let got = normalize(Rego::new().unwrap().check(&plan.json).unwrap());
    assert!(
        got == expected,
        "regorus differs from the golden findings: {:?}",
        first_difference(&expected, &got)
    );
}

#[test]
fn a_single_update_gives_one_finding() {
    let plan = r#"{"format_version": "1.2", "resource_changes": [
        {"address": "aws_instance.a", "type": "aws_instance", "name": "a", "mode": "managed",
         "change": {"actions": ["update"],
                    "before": {"ami": "x", "tags": {"env": "p", "team": "t", "cost-center": "c"}},
                    "after": {"ami": "y", "tags": {"env": "p", "team": "t", "cost-center": "c"}},
                    "after_unknown": {}}}]}"#;
    let got = Rego::new().unwrap().check(plan).unwrap();
    assert_eq!(
        got,
        [(
            "no-update-in-place".to_string(),
            "aws_instance.a".to_string()
        )]
    );
}
