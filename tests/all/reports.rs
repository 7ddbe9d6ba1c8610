//! Reports for CI: SARIF (validated by the SARIF Multitool and the SARIF 2.1.0
//! JSON schema), JUnit XML (read back by `junitparser`), markdown, GitHub workflow
//! commands; several formats in one run; golden files on a real plan; and no
//! report ever printing a value the plan marks sensitive.
//!
//! The external tools live in `tests/tools/` (installed by `.ci/run`: `npm ci`
//! there, and a Python venv with `requirements.txt`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

const FORMATS: [&str; 6] = ["text", "json", "sarif", "junit", "markdown", "github"];

fn tools() -> PathBuf {
    repo("tests/tools")
}

/// A tool from `tests/tools/`, or a failure that says how to install it.
pub fn tool(relative: &str) -> PathBuf {
    let path = tools().join(relative);
    assert!(
        path.exists(),
        "`{}` is missing: install the test tools as `.ci/run` does \
         (`npm ci --prefix tests/tools` and `python3 -m venv tests/tools/.venv && \
         tests/tools/.venv/bin/pip install -r tests/tools/requirements.txt`)",
        path.display()
    );
    path
}

fn python() -> PathBuf {
    tool(".venv/bin/python")
}

const MULTITOOL_DIR: &str = "node_modules/@microsoft/sarif-multitool-linux";

/// Writes the hostile guest's configuration for `mode`.
fn mode_config(dir: &Path, mode: &str) -> PathBuf {
    let path = dir.join(format!("{mode}.json"));
    std::fs::write(&path, format!(r#"{{"mode": "{mode}"}}"#)).unwrap();
    path
}

/// `provkey check` on `plan` with `immutable` and the hostile guest in `mode`,
/// every format written to `dir/report.FORMAT`.
fn check_all_formats(dir: &Path, plan: &Path, mode: &str) -> Run {
    let config = mode_config(dir, mode);
    let mut cmd = provkey();
    cmd.arg("check")
        .args(["--plan", plan.to_str().unwrap()])
        .args([
            "--policy",
            "immutable",
            "--policy",
            provkey_test_guests::HOSTILE,
        ])
        .args(["--config", &format!("hostile={}", config.display())]);
    for format in FORMATS {
        cmd.args([
            "--format",
            &format!(
                "{format}={}",
                dir.join(format!("report.{format}")).display()
            ),
        ]);
    }
    run(&mut cmd)
}

fn read(dir: &Path, format: &str) -> String {
    std::fs::read_to_string(dir.join(format!("report.{format}"))).unwrap()
}

/// Runs the SARIF Multitool's `validate` and the JSON-schema check on every file
/// of `sarifs` (each tool once); panics with their findings on any error.
fn assert_valid_sarif(sarifs: &[PathBuf]) {
    let multitool = tool(&format!("{MULTITOOL_DIR}/Sarif.Multitool"));
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("validation.sarif");
    let status = Command::new(&multitool)
        .arg("validate")
        .args(sarifs)
        .arg("--output")
        .arg(&out)
        .args(["--log", "ForceOverwrite", "--level", "Error;Warning;Note"])
        .output()
        .expect("run the SARIF Multitool");
    assert!(
        status.status.success(),
        "the multitool failed: {}\n{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    let validation: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let validation_run = &validation["runs"][0];
    // The multitool ran its rules (it lists those that fired; an empty list is fine).
    assert_eq!(
        validation_run["invocations"][0]["executionSuccessful"], true,
        "{validation}"
    );
    let results = validation_run["results"].as_array().unwrap();
    // A result without `level` is a warning (SARIF's default).
    let errors: Vec<&serde_json::Value> =
        results.iter().filter(|r| r["level"] == "error").collect();
    assert!(
        errors.is_empty(),
        "the SARIF Multitool reports errors:\n{}",
        serde_json::to_string_pretty(&errors).unwrap()
    );

    let schema = tool(&format!("{MULTITOOL_DIR}/sarif-2.1.0.json"));
    let checked = Command::new(python())
        .arg(tool("sarif_schema_check.py"))
        .arg(schema)
        .args(sarifs)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "not valid against the SARIF 2.1.0 schema:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// The JUnit file as `junitparser` reads it.
fn junit_counts(junit: &Path) -> serde_json::Value {
    let out = Command::new(python())
        .arg(tool("junit_counts.py"))
        .arg(junit)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "junitparser cannot read {}: {}",
        junit.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn sarif_passes_the_multitool_and_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, SAMPLE_PLAN).unwrap();
    // Findings of every level (immutable: error; hostile: notes) ...
    let run = check_all_formats(dir.path(), &plan, "leak-sensitive");
    assert_eq!(run.code, 1, "{run:?}");
    assert_valid_sarif(&[dir.path().join("report.sarif")]);
    let sarif: serde_json::Value = serde_json::from_str(&read(dir.path(), "sarif")).unwrap();
    let sarif_run = &sarif["runs"][0];
    assert_eq!(sarif["version"], "2.1.0");
    let rules: Vec<&str> = sarif_run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["hostile/hostile-finding", "immutable/no-update-in-place"]
    );
    let results = sarif_run["results"].as_array().unwrap();
    let immutable: Vec<&serde_json::Value> = results
        .iter()
        .filter(|r| r["ruleId"] == "immutable/no-update-in-place")
        .collect();
    assert_eq!(immutable.len(), 1, "{sarif_run}");
    let result = immutable[0];
    assert_eq!(result["level"], "error");
    assert_eq!(
        result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        "aws_instance.web"
    );
    assert_eq!(
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next(),
        Some("plan.json")
    );
    assert_eq!(
        result["locations"][0]["physicalLocation"]["region"]["startLine"], 5,
        "the line of aws_instance.web in SAMPLE_PLAN"
    );
    assert!(results.iter().any(|r| r["level"] == "note"));
    assert_eq!(sarif_run["invocations"][0]["executionSuccessful"], true);

    // ... and a failed policy, reported as a tool execution notification.
    let dir = tempfile::tempdir().unwrap();
    let run = check_all_formats(dir.path(), &plan, "error");
    assert_eq!(run.code, 3, "{run:?}");
    assert_valid_sarif(&[dir.path().join("report.sarif")]);
    let sarif: serde_json::Value = serde_json::from_str(&read(dir.path(), "sarif")).unwrap();
    let invocation = &sarif["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    let notes = invocation["toolExecutionNotifications"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{invocation}");
    assert_eq!(notes[0]["level"], "error");
    assert!(
        notes[0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("the guest gave up"),
        "{invocation}"
    );
}

#[test]
fn sarif_of_every_real_plan_passes_the_multitool() {
    let Some(plans) = terraform_plans() else {
        return;
    };
    // One SARIF file per plan (the whole stock set), validated together.
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let out = dir.path().join(format!("{i:03}.sarif"));
        let run = check(&[
            "--plan",
            plan.to_str().unwrap(),
            "--format",
            &format!("sarif={}", out.display()),
        ]);
        assert!(
            run.code == 0 || run.code == 1,
            "{}: {run:?}",
            plan.display()
        );
        files.push(out);
    }
    assert_valid_sarif(&files);
}

#[test]
fn junit_is_read_back_with_the_expected_counts() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, SAMPLE_PLAN).unwrap();
    let run = check_all_formats(dir.path(), &plan, "pass");
    assert_eq!(run.code, 1, "{run:?}");
    let counts = junit_counts(&dir.path().join("report.junit"));
    // One case per rule: the two policies declare one rule each, whatever the
    // number of changes; the update in place fails immutable's.
    assert_eq!(counts["tests"], 2, "{counts}");
    assert_eq!(counts["failures"], 1, "{counts}");
    assert_eq!(counts["errors"], 0, "{counts}");
    assert_eq!(
        counts["suites"]["immutable"]["failed"],
        serde_json::json!(["immutable/no-update-in-place"])
    );
    assert_eq!(
        counts["messages"]["immutable/no-update-in-place"],
        "1 mandatory finding on 1 resource: `aws_instance.web`"
    );
    assert_eq!(counts["suites"]["hostile"]["tests"], 1);

    // A failed policy is one test case in error; the other policy still counts.
    let dir = tempfile::tempdir().unwrap();
    let run = check_all_formats(dir.path(), &plan, "error");
    assert_eq!(run.code, 3, "{run:?}");
    let counts = junit_counts(&dir.path().join("report.junit"));
    assert_eq!(counts["tests"], 2, "{counts}");
    assert_eq!(counts["failures"], 1, "{counts}");
    assert_eq!(counts["errors"], 1, "{counts}");
    assert_eq!(
        counts["suites"]["hostile"]["errored"],
        serde_json::json!(["hostile/(policy run)"])
    );
}

/// Every stock rule is one case on every real plan; a rule fails when it flagged
/// a resource with a mandatory finding, and its message counts those resources.
#[test]
fn junit_of_real_plans_has_one_case_per_rule() {
    let Some(plans) = terraform_plans() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut failed_somewhere = 0;
    for plan in &plans {
        let out = dir.path().join("report.junit");
        let json = dir.path().join("report.json");
        let run = check(&[
            "--plan",
            plan.to_str().unwrap(),
            "--format",
            &format!("junit={}", out.display()),
            "--format",
            &format!("json={}", json.display()),
        ]);
        assert!(
            run.code == 0 || run.code == 1,
            "{}: {run:?}",
            plan.display()
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let counts = junit_counts(&out);
        let rules: usize = stock_rule_count();
        assert_eq!(counts["tests"], rules, "{}: {counts}", plan.display());
        // The rules with a mandatory finding, and the resources each flagged.
        let mut flagged: std::collections::BTreeMap<String, BTreeSet<String>> =
            std::collections::BTreeMap::new();
        for f in report["findings"].as_array().unwrap() {
            if f["enforcement"] != "advisory" {
                flagged
                    .entry(format!(
                        "{}/{}",
                        f["policy"].as_str().unwrap(),
                        f["rule"].as_str().unwrap()
                    ))
                    .or_default()
                    .insert(f["address"].as_str().unwrap_or("(plan)").to_string());
            }
        }
        assert_eq!(
            counts["failures"],
            flagged.len(),
            "{}: {counts}",
            plan.display()
        );
        for (rule, resources) in &flagged {
            let message = counts["messages"][rule].as_str().unwrap_or_else(|| {
                panic!("{}: no failing case for {rule}: {counts}", plan.display())
            });
            let n = resources.len();
            assert!(
                message.contains(&format!(
                    " on {n} resource{}: ",
                    if n == 1 { "" } else { "s" }
                )),
                "{}: {rule}: {message}",
                plan.display()
            );
            assert!(
                message.contains(&format!("`{}`", resources.iter().next().unwrap())),
                "{}: {rule}: {message}",
                plan.display()
            );
            failed_somewhere += 1;
        }
    }
    assert!(failed_somewhere > 0, "no real plan failed any rule");
}

/// The number of rules the stock set declares, as the SARIF report lists them
/// (written apart from the JUnit report).
fn stock_rule_count() -> usize {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, SAMPLE_PLAN).unwrap();
    let out = dir.path().join("report.sarif");
    let run = check(&[
        "--plan",
        plan.to_str().unwrap(),
        "--format",
        &format!("sarif={}", out.display()),
    ]);
    assert!(run.code == 0 || run.code == 1, "{run:?}");
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn markdown_summarises_counts_findings_and_changes() {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let run = check(&[
        "--plan",
        plan.to_str().unwrap(),
        "--policy",
        "immutable",
        "--format",
        "markdown",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    let md = &run.stdout;
    assert!(md.starts_with("## provkey check: ❌ FAIL"), "{md}");
    assert!(md.contains("| hard-mandatory | high | 1 |"), "{md}");
    assert!(!md.contains("| 0 |"), "no zero-count rows: {md}");
    assert!(
        md.contains("#### `aws_instance.web` (update): 1 finding"),
        "{md}"
    );
    assert!(md.contains("`immutable/no-update-in-place`"), "{md}");
    for (group, address) in [
        ("Creates (1)", "aws_s3_bucket.logs"),
        ("Replaces (1)", "aws_db_instance.main"),
        ("Destroys (1)", "aws_iam_role.old"),
        ("Updates in place (1)", "aws_instance.web"),
    ] {
        let at = md.find(group).unwrap_or_else(|| panic!("{group}: {md}"));
        assert!(
            md[at..].contains(&format!("- `{address}`")),
            "{group} lists {address}: {md}"
        );
    }
}

#[test]
fn github_commands_are_one_line_each_and_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, SAMPLE_PLAN).unwrap();
    let config = mode_config(dir.path(), "escape");
    let run = run(provkey()
        .arg("check")
        .args(["--plan", plan.to_str().unwrap()])
        .args([
            "--policy",
            "immutable",
            "--policy",
            provkey_test_guests::HOSTILE,
        ])
        .args(["--config", &format!("hostile={}", config.display())])
        .args(["--format", "github"]));
    assert_eq!(run.code, 1, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "two findings and the summary: {run:?}");
    let error = lines
        .iter()
        .find(|l| l.starts_with("::error "))
        .expect("the mandatory finding is an error");
    assert!(
        error.starts_with(&format!(
            "::error file={},line=5,title=immutable/no-update-in-place%3A aws_instance.web::",
            plan.display().to_string().replace(':', "%3A")
        )),
        "{error}"
    );
    assert!(error.contains("%0Ahelp: replace it instead"), "{error}");
    let notice = lines
        .iter()
        .find(|l| l.starts_with("::notice "))
        .expect("the advisory low finding is a notice");
    assert!(!notice.contains('\u{1b}'), "{notice}");
    assert!(notice.contains("fake PASS"), "{notice}");
    assert!(lines[2].starts_with("provkey: FAIL"), "{run:?}");
}

#[test]
fn several_formats_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, SAMPLE_PLAN).unwrap();
    let sarif = dir.path().join("out.sarif");
    let md = dir.path().join("summary.md");
    let run = check(&[
        "--plan",
        plan.to_str().unwrap(),
        "--format",
        &format!("sarif={}", sarif.display()),
        "--format",
        &format!("markdown={}", md.display()),
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.json()["verdict"], "fail");
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert!(
        std::fs::read_to_string(&md)
            .unwrap()
            .contains("provkey check")
    );
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !["plan.json", "out.sarif", "summary.md"].contains(&n.as_str()))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// A destination that is not a file (a FIFO, `/dev/stdout`) is written in place:
/// renaming a temporary file over it, as files are written, would replace the device
/// with a regular file (`--format json=/dev/null` once turned `/dev/null` into one).
#[test]
fn reports_to_a_fifo_and_to_dev_stdout_are_written_in_place() {
    use std::os::unix::fs::FileTypeExt as _;
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, SAMPLE_PLAN).unwrap();
    let fifo = dir.path().join("report.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo failed");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let run = check(&[
        "--plan",
        plan.to_str().unwrap(),
        "--format",
        &format!("json={}", fifo.display()),
        "--format",
        "sarif=/dev/stdout",
    ]);
    // Opening a FIFO read-write never blocks on Linux: if the check never opened it,
    // this releases the reader (which then reads nothing and the test fails below).
    drop(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap(),
    );
    let json: serde_json::Value = serde_json::from_str(&reader.join().unwrap())
        .unwrap_or_else(|err| panic!("no JSON report came through the FIFO ({err}): {run:?}"));
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(json["verdict"], "fail");
    let sarif: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert!(
        std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
        "the FIFO was replaced by a file"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "temporary files left: {names:?}");
}

#[test]
fn bad_format_arguments_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, SAMPLE_PLAN).unwrap();
    let plan = plan.to_str().unwrap();

    let run = check(&["--plan", plan, "--format", "json", "--format", "sarif"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("2 reports would go to standard output (`json`, `sarif`)"),
        "{run:?}"
    );
    assert!(run.stderr.contains("help:"), "{run:?}");

    let run = check(&["--plan", plan, "--format", "xml"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("`xml` is not a report format"),
        "{run:?}"
    );

    let same = dir.path().join("same.out");
    let same = format!("{}", same.display());
    let run = check(&[
        "--plan",
        plan,
        "--format",
        &format!("json={same}"),
        "--format",
        &format!("sarif={same}"),
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("two reports would be written to"),
        "{run:?}"
    );

    // One destination cannot be written: neither file appears.
    let good = dir.path().join("good.sarif");
    let bad = dir.path().join("no-such-dir").join("summary.md");
    let run = check(&[
        "--plan",
        plan,
        "--format",
        &format!("sarif={}", good.display()),
        "--format",
        &format!("markdown={}", bad.display()),
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("cannot write the markdown report to"),
        "{run:?}"
    );
    assert!(
        !good.exists(),
        "a report was written although another failed"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["plan.json"], "nothing but the plan: {names:?}");
}

/// The sensitive values of a Terraform plan, read straight from its JSON
/// (independently of provkey): every non-empty string and every number under a
/// `*_sensitive` marker, and the compact JSON of every marked object or array.
fn sensitive_values(plan: &serde_json::Value) -> BTreeSet<String> {
    fn walk(marker: &serde_json::Value, value: &serde_json::Value, out: &mut BTreeSet<String>) {
        use serde_json::Value;
        match (marker, value) {
            (Value::Bool(true), value) => leaves(value, out),
            (Value::Object(m), Value::Object(v)) => {
                for (key, marker) in m {
                    if let Some(value) = v.get(key) {
                        walk(marker, value, out);
                    }
                }
            }
            (Value::Array(m), Value::Array(v)) => {
                for (marker, value) in m.iter().zip(v) {
                    walk(marker, value, out);
                }
            }
            _ => {}
        }
    }
    fn leaves(value: &serde_json::Value, out: &mut BTreeSet<String>) {
        use serde_json::Value;
        match value {
            Value::String(s) if !s.is_empty() => {
                out.insert(s.clone());
            }
            Value::Number(n) => {
                out.insert(n.to_string());
            }
            Value::Array(items) => {
                out.insert(value.to_string());
                items.iter().for_each(|v| leaves(v, out));
            }
            Value::Object(map) => {
                out.insert(value.to_string());
                map.values().for_each(|v| leaves(v, out));
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for rc in plan["resource_changes"].as_array().into_iter().flatten() {
        let change = &rc["change"];
        for marker in ["before_sensitive", "after_sensitive"] {
            for side in ["before", "after"] {
                walk(&change[marker], &change[side], &mut out);
            }
        }
    }
    out
}

/// How a value may appear in each format: as is, JSON-escaped, XML-escaped.
fn spellings(value: &str) -> Vec<String> {
    let json = serde_json::to_string(value).unwrap();
    let json = json[1..json.len() - 1].to_string();
    let xml = value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    // The markdown report escapes markup characters with a backslash, and `|` too
    // in table cells.
    let markdown = |markup: &str| -> String {
        value
            .chars()
            .flat_map(|c| {
                let escape = markup.contains(c).then_some('\\');
                escape.into_iter().chain([c])
            })
            .collect()
    };
    let mut all = vec![
        value.to_string(),
        json,
        xml,
        markdown("\\`*_[]<>&~"),
        markdown("\\`*_[]<>&~|"),
    ];
    all.sort();
    all.dedup();
    all
}

#[test]
fn no_report_prints_a_sensitive_value() {
    let Some(plans) = terraform_plans() else {
        return;
    };
    let mut checked_plans = 0;
    let mut checked_values = 0;
    for plan in &plans {
        let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(plan).unwrap()).unwrap();
        let values = sensitive_values(&raw);
        if values.is_empty() {
            continue;
        }
        checked_plans += 1;
        checked_values += values.len();
        // The hostile guest echoes every sensitive value between « », in its
        // findings (message, remediation, attribute) or in its error.
        for mode in ["leak-sensitive", "leak-sensitive-error"] {
            let dir = tempfile::tempdir().unwrap();
            let run = check_all_formats(dir.path(), plan, mode);
            assert!(
                [0, 1, 3].contains(&run.code),
                "{} ({mode}): {run:?}",
                plan.display()
            );
            for format in FORMATS {
                let output = read(dir.path(), format);
                for value in &values {
                    for spelling in spellings(value) {
                        assert!(
                            !output.contains(&format!("«{spelling}»")),
                            "{} ({mode}): the {format} report prints the sensitive value `{value}`",
                            plan.display()
                        );
                    }
                }
                assert!(
                    output.contains("«(sensitive)»") || output.contains("«\\(sensitive\\)»"),
                    "{} ({mode}): the {format} report shows no redacted value:\n{output}",
                    plan.display()
                );
            }
        }
    }
    eprintln!("checked {checked_values} sensitive values in {checked_plans} plans");
    assert!(
        checked_plans >= 5,
        "only {checked_plans} plans have sensitive values"
    );
}

/// Replaces what changes from machine to machine or build to build: policy
/// component digests and timings.
fn normalize(text: &str, digests: &[String]) -> String {
    let mut out = text.to_string();
    for digest in digests {
        out = out.replace(digest.as_str(), "<component-blake3>");
    }
    // The text report's timings: `(N findings, 1.2 ms)`.
    let mut normalized = String::new();
    for line in out.lines() {
        match (line.rfind(", "), line.ends_with(" ms)")) {
            (Some(at), true) => {
                normalized.push_str(&line[..at]);
                normalized.push_str(", <elapsed> ms)");
            }
            _ => normalized.push_str(line),
        }
        normalized.push('\n');
    }
    normalized
}

/// Golden files in `tests/golden/` (insta snapshots): every format on a real plan
/// with creates, replaces, destroys, an in-place update and sensitive markers.
/// Bless changes with `INSTA_UPDATE=always cargo test -p provkey --test all -- golden`.
#[test]
fn golden_reports_of_a_real_plan() {
    let Some(dir) = shared_data("terraform-plans") else {
        return;
    };
    let name = "breml__tfreveal__advanced.plan.json";
    let out = tempfile::tempdir().unwrap();
    let mut cmd = provkey();
    cmd.current_dir(&dir)
        .arg("check")
        .args(["--plan", name, "--policy", "immutable"]);
    for format in FORMATS {
        cmd.args([
            "--format",
            &format!(
                "{format}={}",
                out.path().join(format!("report.{format}")).display()
            ),
        ]);
    }
    let run = run(&mut cmd);
    assert_eq!(run.code, 1, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&read(out.path(), "json")).unwrap();
    let digests: Vec<String> = json["policies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["blake3"].as_str().map(str::to_string))
        .collect();
    for format in FORMATS {
        let text = normalize(&read(out.path(), format), &digests);
        insta::with_settings!({
            snapshot_path => "../golden",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("tfreveal_advanced.{format}"), text);
        });
    }
}

/// The rank code scanning keeps results by, from a JSON report's finding: errors
/// (mandatory), then warnings (advisory from medium up), then notes; by severity
/// within each.
fn sarif_rank(level: &str, severity: &str) -> (u8, u8) {
    let level = match level {
        "error" => 0,
        "warning" => 1,
        "note" => 2,
        other => panic!("level `{other}`"),
    };
    let severity = ["critical", "high", "medium", "low", "info"]
        .iter()
        .position(|s| *s == severity)
        .unwrap_or_else(|| panic!("severity `{severity}`")) as u8;
    (level, severity)
}

fn json_finding_level(finding: &serde_json::Value) -> &'static str {
    if finding["enforcement"] != "advisory" {
        "error"
    } else if ["critical", "high", "medium"].contains(&finding["severity"].as_str().unwrap()) {
        "warning"
    } else {
        "note"
    }
}

/// GitHub code scanning rejects a run of more than 25,000 results and shows only
/// the 5,000 most severe; a comment holds at most 65,536 characters. A plan of
/// 100,000 changes (the benchmark's generator) gives tens of thousands of
/// findings: the SARIF keeps the 5,000 most severe and counts the rest, the
/// markdown stays under the limit and says what it left out, the JUnit file has
/// one case per rule.
#[test]
fn reports_of_a_100_000_change_plan_stay_within_github_limits() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let generated = provkey_bench::genplan::generate(100_000, provkey_bench::genplan::DEFAULT_SEED);
    std::fs::write(&plan, &generated.json).unwrap();
    let regions = dir.path().join("regions.json");
    std::fs::write(&regions, r#"{"regions": ["eu-west-1", "eu-central-1"]}"#).unwrap();
    let path = |format: &str| dir.path().join(format!("report.{format}"));
    // Room for every policy to finish on a plan this size in a debug build on a
    // busy machine: this test is about the reports, not the guests' limits.
    let run = check(&[
        "--plan",
        plan.to_str().unwrap(),
        "--deadline-ms",
        "120000",
        "--output-mib",
        "128",
        "--config",
        &format!("allowed-regions={}", regions.display()),
        "--format",
        &format!("sarif={}", path("sarif").display()),
        "--format",
        &format!("json={}", path("json").display()),
        "--format",
        &format!("markdown={}", path("markdown").display()),
        "--format",
        &format!("junit={}", path("junit").display()),
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("json")).unwrap()).unwrap();
    assert_eq!(run.code, 1, "{run:?}\n{}", report["policies"]);
    let findings = report["findings"].as_array().unwrap();
    eprintln!("{} findings", findings.len());
    assert!(
        findings.len() > 25_000,
        "the plan must exceed code scanning's hard limit: {} findings",
        findings.len()
    );

    // SARIF: GitHub's documented limits, and the most severe results kept.
    let sarif_text = std::fs::read_to_string(path("sarif")).unwrap();
    let sarif: serde_json::Value = serde_json::from_str(&sarif_text).unwrap();
    let runs = sarif["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "at most 20 runs per file");
    let sarif_run = &runs[0];
    let results = sarif_run["results"].as_array().unwrap();
    assert_eq!(
        results.len(),
        5_000,
        "code scanning keeps 5,000 results per run"
    );
    let rules = sarif_run["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.len() <= 25_000);
    for rule in rules {
        assert!(rule["properties"]["tags"].as_array().map_or(0, Vec::len) <= 10);
    }
    for result in results {
        assert!(result["locations"].as_array().unwrap().len() <= 100);
    }
    let mut expected: Vec<(u8, u8)> = findings
        .iter()
        .map(|f| sarif_rank(json_finding_level(f), f["severity"].as_str().unwrap()))
        .collect();
    expected.sort_unstable();
    expected.truncate(5_000);
    let mut kept: Vec<(u8, u8)> = results
        .iter()
        .map(|r| {
            sarif_rank(
                r["level"].as_str().unwrap(),
                r["properties"]["severity"].as_str().unwrap(),
            )
        })
        .collect();
    kept.sort_unstable();
    assert_eq!(kept, expected, "the kept results are the most severe");
    // In report order: the results are a subsequence of the JSON report's findings.
    let mut all = findings.iter().map(|f| {
        (
            format!(
                "{}/{}",
                f["policy"].as_str().unwrap(),
                f["rule"].as_str().unwrap()
            ),
            f["address"].as_str().map(str::to_string),
        )
    });
    for result in results {
        let wanted = (
            result["ruleId"].as_str().unwrap().to_string(),
            result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
                .as_str()
                .map(str::to_string),
        );
        assert!(
            all.any(|f| f == wanted),
            "{wanted:?} is out of report order"
        );
    }
    let omitted = findings.len() - 5_000;
    let props = &sarif_run["properties"];
    assert_eq!(props["resultsTotal"], findings.len());
    assert_eq!(props["resultsOmitted"], omitted);
    for key in ["omittedByLevel", "omittedBySeverity", "omittedByRule"] {
        let sum: u64 = props[key]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(sum, omitted as u64, "{key}: {props}");
    }
    let invocation = &sarif_run["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], true, "{invocation}");
    let notes = invocation["toolExecutionNotifications"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{invocation}");
    assert_eq!(notes[0]["level"], "warning");
    let text = notes[0]["message"]["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!(
            "{omitted} of {} results were left out",
            findings.len()
        )),
        "{text}"
    );
    assert!(
        sarif_run["tool"]["driver"]["informationUri"]
            .as_str()
            .unwrap()
            .starts_with("https://"),
        "{}",
        sarif_run["tool"]["driver"]
    );
    // Uploads are limited to 10 MB of gzip.
    let gzip = Command::new("gzip")
        .arg("-c")
        .arg(path("sarif"))
        .output()
        .expect("gzip");
    assert!(gzip.status.success());
    eprintln!(
        "SARIF: {} bytes, {} gzipped",
        sarif_text.len(),
        gzip.stdout.len()
    );
    assert!(gzip.stdout.len() < 10 << 20);
    assert_valid_sarif(&[path("sarif")]);

    // Markdown: under the comment limit, mandatory first, the cut said plainly.
    let md = std::fs::read_to_string(path("markdown")).unwrap();
    let chars = md.chars().count();
    eprintln!("markdown: {chars} characters");
    assert!(chars < 65_536, "{chars} characters");
    let mandatory = findings
        .iter()
        .filter(|f| f["enforcement"] != "advisory")
        .count();
    assert!(
        md.contains(&format!("### Mandatory findings ({mandatory})")),
        "{}",
        &md[..2_000]
    );
    let shown = md.lines().filter(|l| l.starts_with("- **")).count();
    let on_resources: usize = md
        .lines()
        .filter_map(|l| l.strip_prefix("- *…and "))
        .filter_map(|l| l.strip_suffix(" more on this resource*"))
        .map(|n| n.parse::<usize>().unwrap())
        .sum();
    let cut_line = md
        .lines()
        .find(|l| l.starts_with("**Not shown: "))
        .unwrap_or_else(|| panic!("no sentence says what was cut:\n{md}"));
    // "**Not shown: N mandatory findings (R resources not shown at all), M advisory ..."
    let not_shown: usize = cut_line
        .trim_start_matches("**Not shown: ")
        .split(", ")
        .filter_map(|part| part.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert_eq!(
        shown + not_shown,
        findings.len(),
        "shown and cut add up ({shown} shown, {on_resources} counted on resources): {cut_line}"
    );
    assert!(cut_line.contains("65,536 characters"), "{cut_line}");

    // JUnit: one case per rule, not per rule and change.
    let counts = junit_counts(&path("junit"));
    assert_eq!(counts["tests"], rules.len(), "{counts}");
}

/// The markdown pull-request comment, golden, on a committed plan
/// (`tests/golden/inputs/pr-comment.plan.json`) with the whole stock set: mandatory
/// findings of several severities on several resources, an advisory one,
/// addresses with markdown characters (`_`, `|`, `*`). Bless changes with
/// `INSTA_UPDATE=always cargo test -p provkey --test all -- golden`.
#[test]
fn golden_markdown_comment_of_a_committed_plan() {
    let inputs = repo("tests/golden/inputs");
    let run = run(provkey()
        .current_dir(&inputs)
        .args(["check", "--plan", "pr-comment.plan.json"])
        .args(["--config", "allowed-regions=pr-comment.regions.json"])
        .args(["--format", "markdown"]));
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        !run.stdout.lines().any(|l| l.ends_with("| 0 |")),
        "no zero-count rows: {}",
        run.stdout
    );
    insta::with_settings!({
        snapshot_path => "../golden",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("pr_comment.markdown", run.stdout);
    });
}
