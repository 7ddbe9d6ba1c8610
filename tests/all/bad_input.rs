//! Bad input: every case exits 2 with a message that names the file and the problem.

use crate::support::*;

fn check_file(name: &str, content: &[u8]) -> Run {
    let (_dir, path) = temp_file(name, content);
    check(&["--plan", path.to_str().unwrap()])
}

#[test]
fn empty_file() {
    let run = check_file("empty.json", b"");
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("cannot read plan `") && run.stderr.contains("empty.json"),
        "{run:?}"
    );
    assert!(run.stderr.contains("the file is empty"), "{run:?}");
    assert!(run.stderr.contains("help:"), "{run:?}");
}

#[test]
fn truncated_json_names_line_and_column() {
    let truncated = &SAMPLE_PLAN[..SAMPLE_PLAN.len() / 2];
    let run = check_file("truncated.json", truncated.as_bytes());
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("truncated.json"), "{run:?}");
    assert!(run.stderr.contains("the file looks truncated"), "{run:?}");
    assert!(
        run.stderr.contains("line ") && run.stderr.contains("column "),
        "{run:?}"
    );
}

#[test]
fn invalid_json_names_line_and_column() {
    let run = check_file("bad.json", b"{\n  \"format_version\": \"1.2\",\n  oops\n}");
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("invalid JSON at line 3, column 3"),
        "{run:?}"
    );
}

#[test]
fn json_that_is_not_a_plan() {
    let run = check_file("other.json", br#"{"name": "not a plan", "items": [1, 2]}"#);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("other.json"), "{run:?}");
    assert!(run.stderr.contains("not a plan"), "{run:?}");
}

#[test]
fn a_json_array_is_not_a_plan() {
    let run = check_file("array.json", b"[1, 2, 3]");
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("array.json") && run.stderr.contains("line 1"),
        "{run:?}"
    );
}

#[test]
fn unknown_format_version() {
    let run = check_file(
        "future.json",
        SAMPLE_PLAN.replace("\"1.2\"", "\"7.0\"").as_bytes(),
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("unsupported Terraform plan format version `7.0`"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("`1.2`"),
        "lists the supported versions: {run:?}"
    );
}

#[test]
fn a_later_1x_minor_is_read_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known.json");
    let newer = dir.path().join("newer.json");
    std::fs::write(&known, SAMPLE_PLAN).unwrap();
    std::fs::write(&newer, SAMPLE_PLAN.replace("\"1.2\"", "\"1.7\"")).unwrap();
    let known = check(&["--plan", known.to_str().unwrap(), "--format", "json"]);
    let newer = check(&["--plan", newer.to_str().unwrap(), "--format", "json"]);
    assert!(known.code == 0 || known.code == 1, "{known:?}");
    assert_eq!(newer.code, known.code, "{newer:?}");
    assert!(!known.stderr.contains("warning:"), "{known:?}");
    assert!(
        newer.stderr.contains(
            "newer.json`: the plan's Terraform JSON format version `1.7` is newer than the \
             newest this provkey knows (`1.2`)"
        ) && newer.stderr.starts_with("warning: plan `"),
        "{newer:?}"
    );
    assert!(newer.stderr.contains("help: upgrade provkey"), "{newer:?}");
    // The same findings as for the known version.
    let (known, newer) = (known.json(), newer.json());
    assert_eq!(newer["plan"]["source_version"], "1.7");
    assert_eq!(newer["findings"], known["findings"]);
    assert!(!known["findings"].as_array().unwrap().is_empty());
    // A later major is still refused.
    let major = check_file(
        "major.json",
        SAMPLE_PLAN.replace("\"1.2\"", "\"2.0\"").as_bytes(),
    );
    assert_eq!(major.code, 2, "{major:?}");
    assert!(
        major
            .stderr
            .contains("unsupported Terraform plan format version `2.0`"),
        "{major:?}"
    );
}

#[test]
fn missing_file() {
    let run = check(&["--plan", "/nonexistent/plan.json"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("cannot read plan `/nonexistent/plan.json`"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("No such file"),
        "the OS cause is shown: {run:?}"
    );
}

#[test]
fn not_utf8() {
    let run = check_file("binary.json", &[0x7b, 0xff, 0xfe, 0x7d]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("not UTF-8"), "{run:?}");
}

#[test]
fn deeply_nested_json_is_refused_without_crashing() {
    let mut text = String::from("{\"format_version\": \"1.2\", \"resource_changes\": [");
    text.push_str(&"[".repeat(100_000));
    let run = check_file("deep.json", text.as_bytes());
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("deep.json"), "{run:?}");
}

#[test]
fn duplicate_addresses_are_refused() {
    let dup = SAMPLE_PLAN.replace("aws_s3_bucket.logs", "aws_instance.web");
    let run = check_file("dup.json", dup.as_bytes());
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("`aws_instance.web` appears more than once"),
        "{run:?}"
    );
}

#[test]
fn missing_policy_file_is_bad_usage() {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let run = check(&[
        "--plan",
        plan.to_str().unwrap(),
        "--policy",
        "/nonexistent/policy.wasm",
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("cannot read policy `/nonexistent/policy.wasm`"),
        "{run:?}"
    );
}

#[test]
fn missing_plan_argument_is_bad_usage() {
    let run = check(&[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--plan"), "{run:?}");
}

#[test]
fn invalid_utf8_names_line_and_column() {
    let mut bytes = b"{\n  \"format_version\": \"1.2\",\n  \"h\xc3\xa9\": \"".to_vec();
    bytes.extend_from_slice(&[0xff, b'"', b'}']);
    let run = check_file("binary.json", &bytes);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("not UTF-8 text (invalid byte at line 3, column 10)"),
        "{run:?}"
    );
}

/// A plan opening SSH to the world on `aws_security_group_rule.ssh`, with `extra`
/// beside the rule's attributes on its own line (line 7).
fn ssh_plan_with(extra: &str) -> String {
    format!(
        r#"{{"format_version": "1.2", "resource_changes": [
{{"address": "aws_security_group_rule.ssh", "mode": "managed", "type": "aws_security_group_rule",
 "name": "ssh", "provider_name": "registry.terraform.io/hashicorp/aws",
 "change": {{"actions": ["create"], "before": null,
  "after": {{"type": "ingress", "from_port": 22, "to_port": 22, "protocol": "tcp",
   "cidr_blocks": ["0.0.0.0/0"], "password": "hunter2",
   "extra": {extra}}},
  "after_sensitive": {{"password": true}}}}}}
]}}"#
    )
}

#[test]
fn a_value_that_cannot_be_read_in_full_refuses_the_plan_with_its_line_and_column() {
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let digits = "9".repeat(401);
    for (case, extra) in [
        ("out of range", "1e400"),
        ("401 digits", digits.as_str()),
        ("lone surrogate", r#""\ud800""#),
        ("lone surrogate key", r#"{"\udc00": 1}"#),
        ("too deep", deep.as_str()),
    ] {
        let run = check_file("plan.json", ssh_plan_with(extra).as_bytes());
        assert_eq!(run.code, 2, "{case}: {run:?}");
        assert!(
            run.stderr.contains("cannot read plan `") && run.stderr.contains("plan.json"),
            "{case}: {run:?}"
        );
        assert!(
            run.stderr.contains("the value at line 7, column")
                && run.stderr.contains("cannot be read in full"),
            "{case}: {run:?}"
        );
        assert!(run.stderr.contains("help:"), "{case}: {run:?}");
        // Refused before any policy ran: nothing of the plan is printed.
        assert!(!run.stdout.contains("hunter2"), "{case}: {run:?}");
    }
    // The same plan with a readable value is checked, and the open SSH rule found.
    let run = check_file("plan.json", ssh_plan_with("1e300").as_bytes());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("aws_security_group_rule.ssh"),
        "{run:?}"
    );
}

/// A FIFO that nobody writes to, in a fresh temp dir.
fn fifo() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fifo.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    (dir, path)
}

#[test]
fn a_device_or_a_fifo_without_writer_never_blocks_a_check() {
    let (_dir, fifo) = fifo();
    for (plan, expected) in [
        (
            std::path::Path::new("/dev/zero"),
            "a device, not a regular file or a pipe",
        ),
        (fifo.as_path(), "the file is empty"),
    ] {
        let mut cmd = provkey();
        cmd.args(["check", "--plan", plan.to_str().unwrap()]);
        let run = run_within(&mut cmd, std::time::Duration::from_secs(30))
            .unwrap_or_else(|| panic!("`--plan {}` blocked", plan.display()));
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(expected), "{run:?}");
    }
    // A policy component must be a regular file.
    let (_plan_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let mut cmd = provkey();
    cmd.args(["check", "--plan", plan.to_str().unwrap()])
        .args(["--policy", fifo.to_str().unwrap()]);
    let run = run_within(&mut cmd, std::time::Duration::from_secs(30))
        .expect("a FIFO as `--policy` blocked");
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("not a regular file"), "{run:?}");
}

#[test]
fn a_fifo_without_writer_never_blocks_a_plan_run() {
    let (_dir, fifo) = fifo();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("plan.json");
    let desired = repo("examples/desired/app.toml");
    for (flag, expected) in [("--state", "is empty"), ("--planner", "not a regular file")] {
        let mut cmd = provkey();
        cmd.args(["plan", "--desired", desired.to_str().unwrap()])
            .args(["--out", out.to_str().unwrap()]);
        if flag == "--planner" {
            cmd.args(["--state", "none"]);
        }
        cmd.args([flag, fifo.to_str().unwrap()]);
        let run = run_within(&mut cmd, std::time::Duration::from_secs(30))
            .unwrap_or_else(|| panic!("a FIFO as `{flag}` blocked"));
        assert_ne!(run.code, 0, "{flag}: {run:?}");
        assert!(run.stderr.contains(expected), "{flag}: {run:?}");
        assert!(!out.exists(), "{flag}");
    }
}

#[test]
fn an_update_whose_values_are_not_objects_is_refused() {
    for (before, after) in [
        ("5", r#"{"a": 1}"#),
        (r#"{"a": 1}"#, r#"["a"]"#),
        (r#""x""#, r#""y""#),
    ] {
        let plan = format!(
            r#"{{"format_version": "1.2", "resource_changes": [
              {{"address": "aws_instance.web", "mode": "managed", "type": "aws_instance",
               "name": "web", "provider_name": "registry.terraform.io/hashicorp/aws",
               "change": {{"actions": ["update"], "before": {before}, "after": {after}}}}}]}}"#
        );
        let run = check_file("plan.json", plan.as_bytes());
        assert_eq!(run.code, 2, "{before} {after}: {run:?}");
        assert!(
            run.stderr
                .contains("resource `aws_instance.web`: the value")
                && run.stderr.contains("must be an object"),
            "{before} {after}: {run:?}"
        );
    }
}
