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

/// `provkey check --format json` of the plan `plan_json` with one component, which
/// must fail it (exit 1); the JSON report and the run.
fn check_failing(plan_json: &str, component: &Path) -> (serde_json::Value, support::Run) {
    let (_plan_dir, plan) = support::temp_file("plan.json", plan_json.as_bytes());
    let checked = run(provkey()
        .args(["check", "--format", "json", "--plan"])
        .arg(&plan)
        .arg("--policy")
        .arg(component));
    assert_eq!(checked.code, 1, "{checked:?}");
    (checked.json(), checked)
}

/// Writes `files` to a new project directory and builds it with `provkey build`,
/// which must succeed; the directory (kept alive), the component and the run.
fn build_project(files: &[(&str, &str)]) -> (tempfile::TempDir, std::path::PathBuf, support::Run) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let output = dir.path().join("policy.wasm");
    let built = run(provkey()
        .arg("build")
        .arg(dir.path())
        .arg("-o")
        .arg(&output));
    assert_eq!(built.code, 0, "{files:?}: {built:?}");
    (dir, output, built)
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

    // C policies are tested with `provkey test` on their cases, after the build.
    if lang != "c" {
        let tests = run(&mut native_tests(lang, &dir));
        assert_eq!(
            tests.code, 0,
            "the {lang} template's own tests fail:\n{tests:?}"
        );
    }

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
    // Python and JavaScript policies receive the plan as JSON text (0.3.0; 0.5.0
    // returns the findings as bytes), Rust ones as numbers that point into one text
    // (0.6.0); the C SDK's bindings are generated from 0.1.0.
    let contract = match lang {
        "c" => "0.1.0",
        "rust" => "0.6.0",
        "js" => "0.5.0",
        _ => "0.3.0",
    };
    let inspected = run(provkey().arg("inspect").arg(&output));
    assert!(
        inspected
            .stdout
            .contains(&format!("wit version:  {contract}")),
        "{lang}: {inspected:?}"
    );
    if lang == "c" {
        let tests = run(provkey().arg("test").arg(&dir));
        assert_eq!(tests.code, 0, "the C template's own cases fail:\n{tests:?}");
        assert!(
            tests.stdout.contains("2 passed, 0 failed")
                && tests.stdout.contains("every rule is exercised"),
            "{tests:?}"
        );
    }

    let (report, checked) = check_failing(BUCKETS, &output);
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
fn c_template_builds_tests_and_checks() {
    template_round_trip("c");
}

/// A Python SDK written for provkey:plan@0.1.0, as a project made before 0.2.0
/// keeps beside its `app.py`: it reads `before` and `after` from the plan itself.
const PYTHON_SDK_0_1: &str = r#"
import json

def export(policy):
    class PolicyApi:
        def metadata(self):
            from wit_world.imports import types as t
            return t.PolicyMetadata(policy.ID, "0.1.0", "vendored 0.1.0 SDK",
                [t.RuleInfo("public", "buckets are private", t.Severity.HIGH,
                            t.Enforcement.HARD_MANDATORY)], None)

        def evaluate(self, plan, config):
            from wit_world.imports import types as t
            return [t.Finding("public", t.Severity.HIGH, t.Enforcement.HARD_MANDATORY,
                              "`%s` is public" % c.address, c.address, "/acl", None)
                    for c in plan.changes
                    if c.after is not None and json.loads(c.after).get("acl") == "public-read"]
    return PolicyApi
"#;

/// A project that vendors a Python SDK from before 0.2.0 (it wins over the embedded
/// one) is built against 0.1.0, whose plans carry every value, and still runs.
#[test]
fn a_python_project_with_a_vendored_0_1_sdk_builds_against_0_1() {
    vendored_python_sdk_builds_against(PYTHON_SDK_0_1, "0.1.0");
}

/// Builds a project that keeps `sdk` as its `provkey_policy.py`, checks the build's
/// warning and the component's contract, and runs it on `BUCKETS`.
fn vendored_python_sdk_builds_against(sdk: &str, version: &str) {
    let (_dir, output, built) = build_project(&[
        ("provkey_policy.py", sdk),
        (
            "app.py",
            "from provkey_policy import export\n\nclass P:\n    ID = \"vendored\"\n\nPolicyApi = export(P())\n",
        ),
    ]);
    assert!(
        built.stderr.contains(&format!(
            "vendors a Python SDK older than provkey:plan@0.3.0: building against {version}"
        )),
        "{built:?}"
    );
    let inspected = run(provkey().arg("inspect").arg(&output));
    assert!(
        inspected
            .stdout
            .contains(&format!("wit version:  {version}")),
        "{inspected:?}"
    );
    let (report, checked) = check_failing(BUCKETS, &output);
    let addresses: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, ["aws_s3_bucket.public"], "{checked:?}");
}

/// A Python SDK written for provkey:plan@0.2.0, as a project made before 0.3.0
/// keeps: the plan arrives as records, values are read one at a time (`plan_view`).
const PYTHON_SDK_0_2: &str = r#"
import json

def export(policy):
    class PolicyApi:
        def metadata(self):
            from wit_world.imports import types as t
            return t.PolicyMetadata(policy.ID, "0.1.0", "vendored 0.2.0 SDK",
                [t.RuleInfo("public", "buckets are private", t.Severity.HIGH,
                            t.Enforcement.HARD_MANDATORY)], None)

        def evaluate(self, plan, config):
            from wit_world.imports import types as t
            from wit_world.imports import plan_view
            found = []
            for index, c in enumerate(plan.changes):
                acl = plan_view.value(index, plan_view.Side.AFTER, "/acl") if c.has_after else None
                if acl is not None and json.loads(acl) == "public-read":
                    found.append(t.Finding("public", t.Severity.HIGH,
                                           t.Enforcement.HARD_MANDATORY,
                                           "`%s` is public" % c.address, c.address, "/acl",
                                           None))
            return found
    return PolicyApi
"#;

/// A project that vendors a Python SDK from 0.2.0 is built against 0.2.0, whose
/// plans arrive as records, and still runs.
#[test]
fn a_python_project_with_a_vendored_0_2_sdk_builds_against_0_2() {
    vendored_python_sdk_builds_against(PYTHON_SDK_0_2, "0.2.0");
}

/// A plan whose values exercise every way the Python and JavaScript SDKs read them:
/// a nested member, a member whose value is `null`, a key with a `/`, a missing one,
/// a change with no value before it.
const PROBE_PLAN: &str = r#"{
  "format_version": "1.2",
  "resource_changes": [
    {"address": "aws_s3_bucket.b", "mode": "managed", "type": "aws_s3_bucket", "name": "b",
     "change": {"actions": ["update"],
                "before": {"tags": {"env": "dev"}, "n": null, "a/b": 0},
                "after": {"tags": {"env": "prod"}, "n": null, "a/b": 1},
                "after_unknown": {}}},
    {"address": "aws_s3_bucket.c", "mode": "managed", "type": "aws_s3_bucket", "name": "c",
     "change": {"actions": ["create"], "before": null, "after": {"acl": "private"},
                "after_unknown": {}}},
    {"address": "module.app.aws_instance.web", "module_address": "module.app",
     "previous_address": "aws_instance.web", "mode": "managed", "type": "aws_instance",
     "name": "web", "action_reason": "replace_because_cannot_update",
     "change": {"actions": ["create", "delete"], "before": {"ami": "a"},
                "after": {"ami": "b"}, "after_unknown": {"id": true},
                "replace_paths": [["ami"]]}}
  ]
}"#;

/// The Python probe: one finding per change whose message is, as JSON, what the SDK
/// read. Members are read before the whole values, which then come from the host too.
const PYTHON_PROBE: &str = r#"import json
from provkey_policy import Policy, Rule, Finding, export

SEEN = Rule("seen", "what the SDK read")

class Probe(Policy):
    id = "sdk-probe"
    rules = [SEEN]

    def evaluate(self, plan, config):
        findings = []
        for c in plan.changes:
            read = {
                "after_tags_env": c.after_at("/tags/env").value,
                "before_tags_env": c.before_at("/tags/env").value,
                "after_has_n": c.after_has_key("n"),
                "after_n_absent": c.after_at("/n").is_absent,
                "after_slash_key": c.after_at("/a~1b").value,
                "after_has_missing": c.after_has_key("missing"),
                "after_missing_absent": c.after_at("/missing").is_absent,
                "action": c.action, "mode": c.mode, "module_path": c.module_path,
                "previous_address": c.previous_address, "replacement": c.replacement,
                "after_unknown": c.after_unknown,
                "after": c.after,
                "before": c.before,
            }
            findings.append(Finding(SEEN, c, message=json.dumps(read)))
        return findings

PolicyApi = export(Probe())
"#;

/// The same probe in JavaScript.
const JS_PROBE: &str = r#"import { exportPolicy, finding, rule } from "./provkey.js";

const SEEN = rule("seen", "what the SDK read");

export const probe = {
  id: "sdk-probe",
  rules: [SEEN],
  evaluate(plan) {
    return plan.changes.map((c) => finding(SEEN, c, { message: JSON.stringify({
      after_tags_env: c.afterAt("/tags/env").value ?? null,
      before_tags_env: c.beforeAt("/tags/env").value ?? null,
      after_has_n: c.afterHasKey("n"),
      after_n_absent: c.afterAt("/n").isAbsent,
      after_slash_key: c.afterAt("/a~1b").value ?? null,
      after_has_missing: c.afterHasKey("missing"),
      after_missing_absent: c.afterAt("/missing").isAbsent,
      action: c.action, mode: c.mode, module_path: c.modulePath,
      previous_address: c.previousAddress, replacement: c.replacement,
      after_unknown: c.afterUnknown,
      after: c.after,
      before: c.before,
    }) }));
  },
};

export const policyApi = exportPolicy(probe);
"#;

/// Built as components (provkey:plan@0.3.0 and @0.5.0), the Python and JavaScript SDKs read the
/// values of a plan from the host exactly as the plan has them.
#[test]
fn the_python_and_js_sdks_read_values_from_the_host_as_the_plan_has_them() {
    let expected = [
        serde_json::json!({
            "after_tags_env": "prod", "before_tags_env": "dev",
            "after_has_n": true, "after_n_absent": true, "after_slash_key": 1,
            "after_has_missing": false, "after_missing_absent": true,
            "action": "update", "mode": "managed", "module_path": "",
            "previous_address": null, "replacement": null, "after_unknown": [],
            "after": {"tags": {"env": "prod"}, "n": null, "a/b": 1},
            "before": {"tags": {"env": "dev"}, "n": null, "a/b": 0},
        }),
        serde_json::json!({
            "after_tags_env": null, "before_tags_env": null,
            "after_has_n": false, "after_n_absent": true, "after_slash_key": null,
            "after_has_missing": false, "after_missing_absent": true,
            "action": "create", "mode": "managed", "module_path": "",
            "previous_address": null, "replacement": null, "after_unknown": [],
            "after": {"acl": "private"}, "before": null,
        }),
        serde_json::json!({
            "after_tags_env": null, "before_tags_env": null,
            "after_has_n": false, "after_n_absent": true, "after_slash_key": null,
            "after_has_missing": false, "after_missing_absent": true,
            "action": "replace", "mode": "managed", "module_path": "module.app",
            "previous_address": "aws_instance.web",
            "replacement": {"order": "create-before-destroy",
                            "reason": "replace_because_cannot_update", "paths": ["/ami"]},
            "after_unknown": ["/id"],
            "after": {"ami": "b"}, "before": {"ami": "a"},
        }),
    ];
    for (file, source) in [("app.py", PYTHON_PROBE), ("policy.js", JS_PROBE)] {
        let (_dir, output, _) = build_project(&[(file, source)]);
        let (report, checked) = check_failing(PROBE_PLAN, &output);
        let read: Vec<serde_json::Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| serde_json::from_str(f["message"].as_str().unwrap()).unwrap())
            .collect();
        assert_eq!(read, expected, "{file}: {checked:?}");
    }
}

/// A JavaScript policy (provkey:plan@0.5.0) returns its findings as bytes; bytes
/// that are not UTF-8 fail the policy with a message that says so, never a pass.
#[test]
fn a_javascript_policy_whose_findings_are_not_utf8_fails_closed() {
    const NOT_UTF8: &str = r#"import { exportPolicy, rule } from "./provkey.js";

const SDK = exportPolicy({ id: "bytes", rules: [rule("r", "a rule")], evaluate() { return []; } });
export const policyApi = {
  metadata: SDK.metadata,
  // `[`, a lone continuation byte, `]`.
  evaluate() { return new Uint8Array([0x5b, 0x80, 0x5d]); },
};
"#;
    let (_dir, output, _) = build_project(&[("policy.js", NOT_UTF8)]);
    let (_plan_dir, plan) = support::temp_file("plan.json", PROBE_PLAN.as_bytes());
    let checked = run(provkey()
        .args(["check", "--format", "json", "--plan"])
        .arg(&plan)
        .arg("--policy")
        .arg(&output));
    assert_eq!(checked.code, 3, "{checked:?}");
    let report = checked.json();
    assert_eq!(report["verdict"], "error", "{checked:?}");
    let failure = &report["policies"][0]["failure"];
    assert_eq!(failure["kind"], "bad-output", "{checked:?}");
    let message = failure["message"].as_str().unwrap();
    assert!(
        message.contains("policy `bytes`") && message.contains("the findings are not UTF-8 text"),
        "{message}"
    );
}

/// The checked-in wit-bindgen C bindings (guest-sdk/c/bindings/) are exactly what
/// the generator of the `wit-bindgen` 0.61.0 CLI makes of `wit/plan@0.1.0`
/// (`wit-bindgen c --world policy --rename-world provkey_wit --no-object-file`).
#[test]
fn c_bindings_are_what_wit_bindgen_generates() {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(support::repo("wit/plan@0.1.0")).unwrap();
    let world = resolve.select_world(&[package], Some("policy")).unwrap();
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts {
        rename_world: Some("provkey_wit".to_string()),
        no_object_file: true,
        ..Default::default()
    }
    .build()
    .generate(&mut resolve, world, &mut files)
    .unwrap();
    let mut names = Vec::new();
    for (name, generated) in files.iter() {
        let path = support::repo(&format!("guest-sdk/c/bindings/{name}"));
        let checked_in = std::fs::read(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "`{}` is not what wit-bindgen generates: run guest-sdk/c/regenerate-bindings.sh",
            path.display()
        );
        names.push(name.to_string());
    }
    assert_eq!(names, ["provkey_wit.c", "provkey_wit.h"]);
}

/// The C SDK as a policy sees it (tests/polyglot/c-sdk-probe): unknown and sensitive
/// values, JSON Pointer escapes, display forms, configuration errors, undeclared
/// rules; pinned by the probe's own cases.
#[test]
fn the_c_sdk_passes_its_probe_cases() {
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("probe.wasm");
    let source = support::repo("tests/polyglot/c-sdk-probe");
    let built = run(provkey().arg("build").arg(&source).arg("-o").arg(&output));
    assert_eq!(built.code, 0, "{built:?}");
    let tests = run(provkey()
        .arg("test")
        .arg(&source)
        .arg("--policy")
        .arg(&output));
    assert_eq!(tests.code, 0, "{tests:?}");
    assert!(tests.stdout.contains("4 passed, 0 failed"), "{tests:?}");
}

/// A PATH holding only links to these tools of /usr/bin, for the missing-tool tests.
fn path_with(dir: &Path, tools: &[&str]) -> std::ffi::OsString {
    for tool in tools {
        std::os::unix::fs::symlink(Path::new("/usr/bin").join(tool), dir.join(tool)).unwrap();
    }
    dir.as_os_str().to_os_string()
}

#[test]
fn c_build_names_the_missing_tool_and_its_package() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("p");
    let out = run(provkey()
        .args(["new", "policy", "p", "--lang", "c", "--path"])
        .arg(&dir));
    assert_eq!(out.code, 0, "{out:?}");
    let expect = |out: &support::Run, what: &str, package: &str| {
        assert_eq!(out.code, 2, "{out:?}");
        assert!(
            out.stderr
                .contains(&format!("error: {what} is not installed"))
                && out.stderr.contains(&format!(
                    "help: install it with `apt-get install {package}`"
                ))
                && out
                    .stderr
                    .contains("`apt-get install clang lld wasi-libc libclang-rt-dev-wasm32`"),
            "{out:?}"
        );
        assert!(!dir.join("build/policy.wasm").exists());
    };
    // No clang at all.
    let empty = tempfile::tempdir().unwrap();
    let out = run(provkey()
        .arg("build")
        .arg(&dir)
        .env("PATH", empty.path())
        .env_remove("PROVKEY_CLANG"));
    expect(&out, "`clang` (the C compiler)", "clang");
    // clang, but no wasm-ld beside it or on PATH.
    let only_clang = tempfile::tempdir().unwrap();
    let out = run(provkey()
        .arg("build")
        .arg(&dir)
        .env("PATH", path_with(only_clang.path(), &["clang"]))
        .env_remove("PROVKEY_CLANG"));
    expect(&out, "`wasm-ld` (the WebAssembly linker)", "lld");
    // clang and wasm-ld, but a sysroot without wasi-libc's headers.
    let wrapper = parent.path().join("clang-without-wasi-libc");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\nexec clang --sysroot=/nonexistent \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = run(provkey()
        .arg("build")
        .arg(&dir)
        .env("PROVKEY_CLANG", &wrapper));
    expect(
        &out,
        "wasi-libc (the C library for `wasm32-wasi`)",
        "wasi-libc",
    );
    // The failing probe must not have removed a file it wrote: clang deletes its
    // outputs on failure, which once took `/dev/null` with it (tests run as root).
    let null = std::fs::metadata("/dev/null").unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&null.file_type()),
        "/dev/null is no longer a device"
    );
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
    // Compiling a Python interpreter takes seconds: over the default threshold, so
    // the step has its line even outside a terminal.
    let compiled = progress_lines(&first.stderr);
    assert!(
        compiled.len() == 1 && compiled[0].0.starts_with("compiling `") && compiled[0].1 >= 1.0,
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
    assert!(progress_lines(&second.stderr).is_empty(), "{second:?}");
}

/// The `provkey: … took N s` lines on standard error (not a terminal here), as
/// (what, seconds).
fn progress_lines(stderr: &str) -> Vec<(String, f64)> {
    stderr
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("provkey: ")?;
            let (what, took) = rest.rsplit_once(" took ")?;
            let seconds = took.strip_suffix(" s")?.parse::<f64>().ok()?;
            Some((what.to_string(), seconds))
        })
        .collect()
}

/// Outside a terminal (a CI log), a slow step prints one line when it ends: what
/// it was and how long it took. `PROVKEY_PROGRESS_MIN_SECONDS=0` shows every step
/// (the default, 1 s, keeps fast ones quiet): a Rust project's build, then each
/// component's first compilation; with a warm cache nothing compiles and, at the
/// default threshold, a check prints nothing on standard error.
#[test]
fn slow_steps_print_one_line_each_outside_a_terminal() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("timed");
    let created = run(provkey()
        .args(["new", "policy", "timed", "--lang", "rust", "--path"])
        .arg(&dir));
    assert_eq!(created.code, 0, "{created:?}");
    let started = std::time::Instant::now();
    let built = run(provkey()
        .arg("build")
        .arg(&dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("PROVKEY_PROGRESS_MIN_SECONDS", "0"));
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(built.code, 0, "{built:?}");
    let lines = progress_lines(&built.stderr);
    assert_eq!(
        lines.len(),
        1,
        "one line for the build, on stderr: {built:?}"
    );
    assert_eq!(
        lines[0].0,
        format!("building `{}` (Rust, with cargo)", dir.display())
    );
    assert!(
        lines[0].1 > 0.0 && lines[0].1 <= wall + 0.05,
        "{} s reported, {wall} s measured",
        lines[0].1
    );
    assert!(
        !built.stdout.contains("took"),
        "progress goes to stderr: {built:?}"
    );

    // A cold cache: each component compiles once, one line each.
    let cache = tempfile::tempdir().unwrap();
    let (_plan_dir, plan) = support::temp_file("plan.json", BUCKETS.as_bytes());
    let component = dir.join("build/policy.wasm");
    let check = |threshold: Option<&str>| {
        let mut cmd = provkey();
        cmd.env("PROVKEY_CACHE_DIR", cache.path())
            .args(["check", "--policy", "immutable", "--policy"])
            .arg(&component)
            .arg("--plan")
            .arg(&plan);
        match threshold {
            Some(seconds) => cmd.env("PROVKEY_PROGRESS_MIN_SECONDS", seconds),
            None => cmd.env_remove("PROVKEY_PROGRESS_MIN_SECONDS"),
        };
        run(&mut cmd)
    };
    let cold = check(Some("0"));
    assert_eq!(cold.code, 1, "{cold:?}");
    let mut compiled: Vec<String> = progress_lines(&cold.stderr)
        .into_iter()
        .map(|(what, _)| what)
        .collect();
    compiled.sort();
    assert_eq!(
        compiled,
        [
            format!(
                "compiling `{}` (first run only: the result is cached)",
                component.display()
            ),
            "compiling `immutable` (first run only: the result is cached)".to_string(),
        ],
        "{cold:?}"
    );
    let warm = check(Some("0"));
    assert_eq!(warm.code, 1, "{warm:?}");
    assert!(progress_lines(&warm.stderr).is_empty(), "{warm:?}");
    let quiet = check(None);
    assert_eq!(quiet.code, 1, "{quiet:?}");
    assert_eq!(quiet.stderr, "", "a fast run prints nothing on stderr");
}

/// At the default threshold (1 s), the steps that are slow in practice print
/// their line: building a Python project with componentize-py, and compiling the
/// Python interpreter the component carries on its first check.
#[test]
fn a_python_build_and_first_compilation_print_their_lines_at_the_default_threshold() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("slow");
    let created = run(provkey()
        .args(["new", "policy", "slow", "--lang", "python", "--path"])
        .arg(&dir));
    assert_eq!(created.code, 0, "{created:?}");
    let built = run(provkey()
        .arg("build")
        .arg(&dir)
        .env_remove("PROVKEY_PROGRESS_MIN_SECONDS"));
    assert_eq!(built.code, 0, "{built:?}");
    let lines = progress_lines(&built.stderr);
    assert!(
        lines.len() == 1
            && lines[0].0
                == format!(
                    "building `{}` (Python, with componentize-py)",
                    dir.display()
                )
            && lines[0].1 >= 1.0,
        "{built:?}"
    );

    let cache = tempfile::tempdir().unwrap();
    let (_plan_dir, plan) = support::temp_file("plan.json", BUCKETS.as_bytes());
    let component = dir.join("build/policy.wasm");
    let check = || {
        run(provkey()
            .env("PROVKEY_CACHE_DIR", cache.path())
            .env_remove("PROVKEY_PROGRESS_MIN_SECONDS")
            .args(["check", "--policy"])
            .arg(&component)
            .arg("--plan")
            .arg(&plan))
    };
    let cold = check();
    assert_eq!(cold.code, 1, "{cold:?}");
    let lines = progress_lines(&cold.stderr);
    assert!(
        lines.len() == 1
            && lines[0].0
                == format!(
                    "compiling `{}` (first run only: the result is cached)",
                    component.display()
                )
            && lines[0].1 >= 1.0,
        "{cold:?}"
    );
    let warm = check();
    assert_eq!(warm.code, 1, "{warm:?}");
    assert_eq!(warm.stderr, "", "{warm:?}");
}
