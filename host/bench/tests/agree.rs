//! The arms of `provkey-bench compare` return the same findings on the same plan:
//! the native floor (the stock policies' Rust) and the stock Wasm components in the
//! real runtime, both equal to tests/golden/findings-700.tsv, which regorus's own
//! test (host/bench-rego/tests/agree.rs) compares against too. No time is measured.
//!
//! `PROVKEY_BLESS=1` rewrites the golden file from the floor.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on the first error"
)]

use provkey_bench::findings::{Key, first_difference, normalize};
use provkey_bench::wasm::{Provkey, Tuning};
use provkey_bench::{floor, genplan};

const GOLDEN: &str = "tests/golden/findings-700.tsv";

fn golden() -> Vec<Key> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let (rule, address) = line.split_once('\t').unwrap();
            (rule.to_string(), address.to_string())
        })
        .collect()
}

#[test]
fn floor_and_provkey_return_the_golden_findings() {
    let generated = genplan::generate(700, genplan::DEFAULT_SEED);
    let reference = normalize(floor::keys(&floor::check(&generated.json).unwrap()));
    if std::env::var_os("PROVKEY_BLESS").is_some() {
        let text: String = reference
            .iter()
            .map(|(rule, address)| format!("{rule}\t{address}\n"))
            .collect();
        std::fs::write(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN),
            text,
        )
        .unwrap();
    }
    for rule in floor::RULES {
        assert!(
            reference.iter().any(|(r, _)| r == rule),
            "the generated plan gives rule `{rule}` nothing to find"
        );
    }
    let expected = golden();
    assert!(
        reference == expected,
        "the floor differs from the golden findings: {:?}",
        first_difference(&expected, &reference)
    );
    let provkey = Provkey::new(generated.json.len(), None, Tuning::Product).unwrap();
    let wasm = normalize(provkey.check(&generated.json).unwrap());
    assert!(
        wasm == expected,
        "provkey differs from the floor: {:?}",
        first_difference(&expected, &wasm)
    );
    let sequential = normalize(provkey.check_sequential(&generated.json).unwrap());
    assert_eq!(sequential, expected);
}

#[test]
fn a_difference_is_found() {
    let a = vec![("r".to_string(), "x".to_string())];
    assert!(first_difference(&a, &[]).is_some());
    assert!(first_difference(&a, &a).is_none());
}
