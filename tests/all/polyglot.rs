//! `provkey new policy` writes a project in each language that passes its own
//! tests as generated, `provkey build` turns it into a component, and `provkey
//! check --policy` runs that component. Needs each language's toolchain (see
//! .ci/run); a missing one fails the test with the command's own message.

use std::path::Path;
use std::process::Command;

use crate::support::{self, provkey, run};

/// A Terraform plan with a public bucket, a private one and one whose ACL is
/// known only after apply.
const BUCKETS: &str = r#"{
  "format_version": "1.2",
  "resource_changes": [
    {"address": "aws_s3_bucket.public", "mode": "managed", "type": "aws_s3_bucket", "name": "public",
     "change": {"actions": ["create"], "before": null, "after": {"acl": "public-read"}, "after_unknown": {}}},
    {"address": "aws_s3_bucket.private", "mode": "managed", "type": "aws_s3_bucket", "name": "private",
     "change": {"actions": ["create"], "before": null, "after": {"acl": "private"}, "after_unknown": {}}},
    {"address": "aws_s3_bucket.later", "mode": "managed", "type": "aws_s3_bucket", "name": "later",
     "change": {"actions": ["create"], "before": null, "after": {}, "after_unknown": {"acl": true}}}
  ]
}"#;

fn native_tests(lang: &str, dir: &Path) -> Command {
    let mut cmd = match lang {
        "rust" => {
            let mut cmd = Command::new(env!("CARGO"));
            cmd.arg("test").env("CARGO_TARGET_DIR", target_dir());
            cmd
        }
        "python" => {
            let mut cmd = Command::new("python3");
            cmd.args(["-m", "unittest", "-v"]);
            cmd
        }
        "js" => {
            let mut cmd = Command::new("node");
            cmd.arg("--test");
            cmd
        }
        _ => unreachable!(),
    };
    cmd.current_dir(dir);
    cmd
}

/// One target directory for every generated Rust project, kept between runs.
fn target_dir() -> std::path::PathBuf {
    support::repo("target/provkey-new-rust")
}

fn template_round_trip(lang: &str) {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join(format!("demo-{lang}"));
    let name = format!("demo-{lang}");
    let created = run(provkey()
        .args(["new", "policy", &name, "--lang", lang, "--path"])
        .arg(&dir));
    assert_eq!(created.code, 0, "{created:?}");
    assert!(created.stdout.contains("provkey build"), "{created:?}");

    let tests = run(&mut native_tests(lang, &dir));
    assert_eq!(
        tests.code, 0,
        "the {lang} template's own tests fail:\n{tests:?}"
    );

    let output = dir.join("build/policy.wasm");
    let built = run(provkey()
        .arg("build")
        .arg(&dir)
        .env("CARGO_TARGET_DIR", target_dir()));
    assert_eq!(
        built.code, 0,
        "cannot build the {lang} template:\n{built:?}"
    );
    assert!(output.is_file(), "{built:?}");

    let (_plan_dir, plan) = support::temp_file("plan.json", BUCKETS.as_bytes());
    let checked = run(provkey()
        .args(["check", "--format", "json", "--plan"])
        .arg(&plan)
        .arg("--policy")
        .arg(&output));
    assert_eq!(checked.code, 1, "{checked:?}");
    let report = checked.json();
    let findings: Vec<(&str, &str, &str)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["policy"].as_str().unwrap(),
                f["address"].as_str().unwrap(),
                f["enforcement"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        findings,
        [
            (name.as_str(), "aws_s3_bucket.public", "hard-mandatory"),
            (name.as_str(), "aws_s3_bucket.later", "advisory"),
        ],
        "{checked:?}"
    );
}

#[test]
fn python_template_builds_tests_and_checks() {
    template_round_trip("python");
}

#[test]
fn js_template_builds_tests_and_checks() {
    template_round_trip("js");
}

#[test]
fn rust_template_builds_tests_and_checks() {
    template_round_trip("rust");
}

#[test]
fn new_refuses_a_bad_name_and_an_existing_directory() {
    let parent = tempfile::tempdir().unwrap();
    let out = run(provkey()
        .args(["new", "policy", "Bad_Name", "--lang", "python", "--path"])
        .arg(parent.path().join("x")));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("`Bad_Name` is not a valid policy id"),
        "{out:?}"
    );
    assert!(!parent.path().join("x").exists());
    let out = run(provkey()
        .args(["new", "policy", "ok", "--lang", "js", "--path"])
        .arg(parent.path()));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("already exists"), "{out:?}");
}

#[test]
fn build_says_which_tool_is_missing() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("p");
    let out = run(provkey()
        .args(["new", "policy", "p", "--lang", "python", "--path"])
        .arg(&dir));
    assert_eq!(out.code, 0, "{out:?}");
    // A PATH without componentize-py.
    let out = run(provkey().arg("build").arg(&dir).env("PATH", parent.path()));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("`componentize-py` is not installed")
            && out
                .stderr
                .contains("help: install it with `pip install componentize-py=="),
        "{out:?}"
    );
    assert!(!dir.join("build/policy.wasm").exists());
    let out = run(provkey().arg("build").arg(parent.path()));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("is not a policy project"), "{out:?}");
}

#[test]
fn a_python_component_compiles_once_then_comes_from_the_cache() {
    let (_, component) = &crate::conformance::ports()[0];
    let cache = tempfile::tempdir().unwrap();
    let plan = support::repo("examples/plans/replace-only.json");
    let check = || {
        run(provkey()
            .env("PROVKEY_CACHE_DIR", cache.path())
            .args(["check", "--verbose", "--plan"])
            .arg(&plan)
            .arg("--policy")
            .arg(component))
    };
    let first = check();
    assert_eq!(first.code, 0, "the example plan is tagged: {first:?}");
    assert!(
        first.stderr.contains("not in the compilation cache"),
        "{first:?}"
    );
    let second = check();
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(first.stdout.lines().count(), second.stdout.lines().count());
    assert!(
        second.stderr.contains("from the compilation cache")
            && !second.stderr.contains("not in the compilation cache"),
        "{second:?}"
    );
}
