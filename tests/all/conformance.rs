//! The same policy (`required-tags`) in Rust (the stock one), Python, JavaScript
//! and C gives the same findings on every shared Terraform plan.
//!
//! The Python, JavaScript and C ports (tests/polyglot/required-tags/) are built
//! from source with `provkey build`, so this test needs componentize-py, Node.js
//! with componentize-js, and clang with wasi-libc (`tests/run.sh` installs them); a
//! missing tool fails the test with provkey's own message saying how to install it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::{self, provkey, run};

/// Builds a port once per test run; panics with provkey's message when it cannot.
fn build(lang: &str) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let out = DIR.get_or_init(|| tempfile::tempdir_in(support::run_tmp()).unwrap());
    let output = out.path().join(format!("required-tags-{lang}.wasm"));
    if output.exists() {
        return output;
    }
    let source = support::repo(&format!("tests/polyglot/required-tags/{lang}"));
    let built = run(provkey().arg("build").arg(&source).arg("-o").arg(&output));
    assert_eq!(
        built.code, 0,
        "cannot build the {lang} port of required-tags (is its toolchain installed? see .ci/run):\n{built:?}"
    );
    output
}

/// The python, js and c ports, built once (in parallel) for all tests of this module.
pub fn ports() -> &'static [(String, PathBuf)] {
    static PORTS: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    PORTS.get_or_init(|| {
        let handles: Vec<_> = ["python", "js", "c"]
            .into_iter()
            .map(|lang| std::thread::spawn(move || (lang.to_string(), build(lang))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The findings of one policy on one plan, as comparable JSON.
fn findings(plan: &Path, policy: &str, config: &Path) -> Vec<Value> {
    let out = run(provkey()
        .args(["check", "--format", "json", "--plan"])
        .arg(plan)
        .args(["--policy", policy, "--config"])
        .arg(format!("required-tags={}", config.display())));
    assert!(
        out.code == 0 || out.code == 1,
        "`{policy}` on `{}`:\n{out:?}",
        plan.display()
    );
    let report = out.json();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            serde_json::json!({
                "rule": f["rule"], "address": f["address"], "attribute": f["attribute"],
                "severity": f["severity"], "enforcement": f["enforcement"],
                "message": f["message"], "remediation": f["remediation"],
            })
        })
        .collect()
}

#[test]
fn required_tags_is_the_same_in_every_language() {
    let Some(plans) = support::terraform_plans() else {
        return;
    };
    let ports = ports();
    for config in [
        r#"{}"#,
        r#"{"tags": ["Name", "team"], "ignore_types": ["aws_iam_role"]}"#,
    ] {
        let (_dir, config_path) = support::temp_file("config.json", config.as_bytes());
        let mut total = 0;
        for plan in &plans {
            let expected = findings(plan, "required-tags", &config_path);
            total += expected.len();
            for (lang, component) in ports {
                let actual = findings(plan, component.to_str().unwrap(), &config_path);
                assert_eq!(
                    actual,
                    expected,
                    "{lang} and Rust disagree on `{}` with config {config}",
                    plan.display()
                );
            }
        }
        // The comparison means something only if there are findings to compare.
        assert!(total > 0, "no findings at all with config {config}");
    }
}

#[test]
fn every_port_refuses_a_bad_configuration_naming_the_field() {
    let (_dir, config) = support::temp_file("config.json", br#"{"tags": []}"#);
    let plan = support::repo("examples/plans/replace-only.json");
    let mut policies = vec!["required-tags".to_string()];
    policies.extend(ports().iter().map(|(_, p)| p.to_str().unwrap().to_string()));
    for policy in policies {
        let out = run(provkey()
            .args(["check", "--plan"])
            .arg(&plan)
            .args(["--policy", &policy, "--config"])
            .arg(format!("required-tags={}", config.display())));
        assert_ne!(out.code, 0, "{policy}: {out:?}");
        assert!(
            out.stderr.contains("tags") || out.stdout.contains("field `tags`"),
            "{policy}: {out:?}"
        );
    }
}
