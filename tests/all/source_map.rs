//! Findings on the `.tf` lines a reviewer changes: real `terraform plan` /
//! `terraform show -json` runs on configurations of Terraform's built-in
//! `terraform_data` resource and local modules (no provider download), checked with
//! `--source-dir` and with the configuration as the current directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{provkey, run};

/// `terraform` with no CLI configuration and no prompts, in `dir`; `None` (and a
/// loud note) when it is not installed.
fn terraform(dir: &Path) -> Option<Command> {
    let found = Command::new("terraform").arg("version").output();
    if !found.is_ok_and(|out| out.status.success()) {
        eprintln!("SKIPPED: `terraform` is not on PATH; install Terraform to run this test");
        return None;
    }
    let config = dir.join(".terraformrc");
    if !config.exists() {
        std::fs::write(&config, "").unwrap();
    }
    let mut cmd = Command::new("terraform");
    cmd.current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", config)
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0")
        .env("CHECKPOINT_DISABLE", "1");
    Some(cmd)
}

fn tf(dir: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let out = terraform(dir)?
        .args(args)
        .arg("-no-color")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "terraform {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const ROOT_V1: &str = r#"# the application's resources
resource "terraform_data" "web" {
  count = 2
  input = "v1"
}

module "net" {
  source   = "./modules/net"
  for_each = toset(["eu", "us"])
  region   = each.key
  rule     = "allow-v1"
}
"#;

const NET: &str = r#"variable "region" {
  type = string
}

variable "rule" {
  type = string
}

resource "terraform_data" "rule" {
  input = "${var.region}:${var.rule}"
}
"#;

/// A configuration applied at v1 whose plan to v2 updates every resource in
/// place: `terraform_data.web[0..1]` (main.tf line 2) and
/// `module.net["eu"|"us"].terraform_data.rule` (modules/net/main.tf line 9).
/// Returns the directory and the plan JSON's path; `None` without terraform.
fn updated_configuration() -> Option<(tempfile::TempDir, PathBuf)> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "main.tf", ROOT_V1);
    write(dir, "modules/net/main.tf", NET);
    tf(dir, &["init", "-input=false"])?;
    tf(dir, &["apply", "-auto-approve", "-input=false"])?;
    write(
        dir,
        "main.tf",
        &ROOT_V1
            .replace("\"v1\"", "\"v2\"")
            .replace("allow-v1", "allow-v2"),
    );
    tf(dir, &["plan", "-input=false", "-out=change.tfplan"])?;
    let json = tf(dir, &["show", "-json", "change.tfplan"])?;
    let plan = dir.join("plan.json");
    std::fs::write(&plan, json).unwrap();
    Some((tmp, plan))
}

/// `(uri, line)` of each SARIF result, by its resource address.
fn sarif_locations(sarif: &serde_json::Value) -> Vec<(String, String, i64)> {
    let mut out: Vec<(String, String, i64)> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let loc = &r["locations"][0];
            (
                loc["logicalLocations"][0]["fullyQualifiedName"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                loc["physicalLocation"]["artifactLocation"]["uri"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                loc["physicalLocation"]["region"]["startLine"]
                    .as_i64()
                    .unwrap(),
            )
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn findings_point_at_the_tf_lines_through_modules_count_and_for_each() {
    let Some((tmp, plan)) = updated_configuration() else {
        return;
    };
    let dir = tmp.path();
    let out = run(provkey().current_dir(dir).args([
        "check",
        "--plan",
        "plan.json",
        "--policy",
        "immutable",
        "--format",
        "sarif",
        "--source-dir",
        ".",
    ]));
    assert_eq!(out.code, 1, "{out:?}");
    let located = sarif_locations(&out.json());
    // The attribute a finding names when it names one, else the block's first line.
    let root_line = |attribute_line: i64| move |line: i64| line == 2 || line == attribute_line;
    let web = root_line(4);
    let rule = |line: i64| line == 9 || line == 10;
    let addresses: Vec<&str> = located.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        addresses,
        [
            "module.net[\"eu\"].terraform_data.rule",
            "module.net[\"us\"].terraform_data.rule",
            "terraform_data.web[0]",
            "terraform_data.web[1]",
        ],
        "{out:?}"
    );
    for (address, uri, line) in &located {
        if address.starts_with("module.") {
            assert_eq!(uri, "modules/net/main.tf", "{address}");
            assert!(rule(*line), "{address} at line {line}");
        } else {
            assert_eq!(uri, "main.tf", "{address}");
            assert!(web(*line), "{address} at line {line}");
        }
    }

    // The markdown comment names the file and line of each resource.
    let out = run(provkey().current_dir(dir).args([
        "check",
        "--plan",
        "plan.json",
        "--policy",
        "immutable",
        "--format",
        "markdown",
        "--source-dir",
        ".",
    ]));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("main.tf:"), "{out:?}");
    assert!(out.stdout.contains("modules/net/main.tf:"), "{out:?}");

    // The same with the configuration as the current directory and no flag, and in
    // GitHub's annotations.
    let out = run(provkey().current_dir(dir).args([
        "check",
        "--plan",
        plan.to_str().unwrap(),
        "--policy",
        "immutable",
        "--format",
        "github",
    ]));
    assert_eq!(out.code, 1, "{out:?}");
    let annotations: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("::error"))
        .collect();
    assert_eq!(annotations.len(), 4, "{out:?}");
    for annotation in annotations {
        assert!(
            annotation.contains("file=main.tf,line=")
                || annotation.contains("file=modules/net/main.tf,line="),
            "{annotation}"
        );
    }
}

#[test]
fn a_configuration_elsewhere_is_named_by_its_path_and_a_bad_one_is_refused() {
    let Some((tmp, plan)) = updated_configuration() else {
        return;
    };
    let elsewhere = tempfile::tempdir().unwrap();
    let source_dir = tmp.path().to_str().unwrap().to_string();
    let out = run(provkey().current_dir(elsewhere.path()).args([
        "check",
        "--plan",
        plan.to_str().unwrap(),
        "--policy",
        "immutable",
        "--format",
        "sarif",
        "--source-dir",
        &source_dir,
    ]));
    assert_eq!(out.code, 1, "{out:?}");
    for (_, uri, _) in sarif_locations(&out.json()) {
        assert!(
            uri.ends_with("/main.tf") && uri.starts_with("file:///"),
            "{uri}"
        );
    }

    // Without a configuration, findings stay on the plan file.
    let out = run(provkey().current_dir(elsewhere.path()).args([
        "check",
        "--plan",
        plan.to_str().unwrap(),
        "--policy",
        "immutable",
        "--format",
        "github",
    ]));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("::error"))
            .all(|l| l.contains("plan.json,line=1")),
        "{out:?}"
    );

    // An explicit configuration that does not parse: exit 2, the file and position.
    write(
        tmp.path(),
        "broken.tf",
        "resource \"terraform_data\" \"x\" {\n  input = \n",
    );
    let out = run(provkey().args([
        "check",
        "--plan",
        plan.to_str().unwrap(),
        "--source-dir",
        &source_dir,
    ]));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("broken.tf"), "{out:?}");
    assert!(out.stderr.contains("line 2"), "{out:?}");
    assert!(out.stderr.contains("help:"), "{out:?}");

    // A directory that does not exist.
    let out = run(provkey().args([
        "check",
        "--plan",
        plan.to_str().unwrap(),
        "--source-dir",
        "/nonexistent/infra",
    ]));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("/nonexistent/infra"), "{out:?}");
}
