//! `provkey test DIR`: every stock policy's own cases pass, and a failing case shows
//! a diff and fails the run.

use crate::support::*;

/// The stock policies whose cases this part of the repository maintains.
const STOCK: &[&str] = &[
    "immutable",
    "pinned-artifacts",
    "no-remote-shell",
    "allowed-regions",
    "destroy-budget",
    "create-before-destroy",
    "allowed-types",
];

fn test_cmd(args: &[&str]) -> Run {
    run(provkey().arg("test").args(args))
}

#[test]
fn every_stock_policy_passes_its_own_cases() {
    for id in STOCK {
        let dir = repo(&format!("policies/{id}"));
        let run = test_cmd(&[dir.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{id}: {run:?}");
        assert!(
            run.stdout
                .contains(&format!("testing policy `{id}` 0.1.0 (stock)")),
            "{run:?}"
        );
        assert!(run.stdout.contains(" passed, 0 failed"), "{run:?}");
        assert!(
            run.stdout.contains("every rule is exercised by a case"),
            "{id}: {run:?}"
        );
        assert!(!run.stdout.contains("FAIL"), "{run:?}");
    }
}

fn write_case(
    root: &std::path::Path,
    name: &str,
    plan: &str,
    expected: &str,
    config: Option<&str>,
) {
    let dir = root.join("cases").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plan.json"), plan).unwrap();
    std::fs::write(dir.join("expected.json"), expected).unwrap();
    if let Some(config) = config {
        std::fs::write(dir.join("config.json"), config).unwrap();
    }
}

#[test]
fn a_failing_case_shows_a_diff_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let plan = std::fs::read_to_string(repo("examples/plans/update-in-place.json")).unwrap();
    // Right: the bastion's in-place update.
    write_case(
        dir.path(),
        "right",
        &plan,
        r#"[{"rule": "no-update-in-place", "address": "aws_instance.bastion",
             "attribute": "/instance_type"}]"#,
        None,
    );
    // Wrong: expects another address and misses the real finding.
    write_case(
        dir.path(),
        "wrong",
        &plan,
        r#"[{"rule": "no-update-in-place", "address": "aws_instance.web",
             "attribute": "/instance_type"}]"#,
        None,
    );
    // Wrong severity, given explicitly.
    write_case(
        dir.path(),
        "wrong-severity",
        &plan,
        r#"[{"rule": "no-update-in-place", "address": "aws_instance.bastion",
             "attribute": "/instance_type", "severity": "low"}]"#,
        None,
    );
    let run = test_cmd(&[dir.path().to_str().unwrap(), "--policy", "immutable"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("PASS right"), "{run:?}");
    assert!(run.stdout.contains("FAIL wrong\n"), "{run:?}");
    assert!(
        run.stdout.contains(
            "    - no-update-in-place at aws_instance.web /instance_type [high, hard-mandatory]"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(
            "    + no-update-in-place at aws_instance.bastion /instance_type [high, \
             hard-mandatory]: `aws_instance.bastion` would be updated in place"
        ),
        "{run:?}"
    );
    assert!(run.stdout.contains("FAIL wrong-severity"), "{run:?}");
    assert!(run.stdout.contains("[low, hard-mandatory]"), "{run:?}");
    assert!(run.stdout.contains("1 passed, 2 failed"), "{run:?}");
}

#[test]
fn unexercised_rules_errors_and_configurations() {
    let dir = tempfile::tempdir().unwrap();
    let plan = std::fs::read_to_string(repo("examples/plans/replace-only.json")).unwrap();
    // No finding expected, and none comes: the only rule is never exercised.
    write_case(dir.path(), "clean", &plan, "[]", None);
    // A configuration refused by the policy's schema.
    write_case(
        dir.path(),
        "refused",
        &plan,
        r#"{"error": "ignore_type"}"#,
        Some(r#"{"ignore_type": []}"#),
    );
    // An expected error that does not come.
    write_case(
        dir.path(),
        "no-error",
        &plan,
        r#"{"error": "boom"}"#,
        Some("{}"),
    );
    let run = test_cmd(&[dir.path().to_str().unwrap(), "--policy", "immutable"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("PASS clean"), "{run:?}");
    assert!(run.stdout.contains("PASS refused"), "{run:?}");
    assert!(run.stdout.contains("FAIL no-error"), "{run:?}");
    assert!(run.stdout.contains("- error containing: boom"), "{run:?}");
    assert!(
        run.stdout
            .contains("rules no case exercised: `no-update-in-place`"),
        "{run:?}"
    );
    assert!(run.stdout.contains("2 passed, 1 failed"), "{run:?}");
}

#[test]
fn bad_layouts_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let run = test_cmd(&[dir.path().to_str().unwrap(), "--policy", "immutable"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("error: cannot read"), "{run:?}");
    assert!(run.stderr.contains("help: put each test case"), "{run:?}");
    write_case(dir.path(), "c", "{}", "not json", None);
    let run = test_cmd(&[dir.path().to_str().unwrap(), "--policy", "immutable"]);
    assert_eq!(run.code, 2, "{run:?}");
    // No policy given and none found.
    let run = test_cmd(&[dir.path().to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("no policy to test"), "{run:?}");
}
