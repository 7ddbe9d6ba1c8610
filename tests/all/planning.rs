//! `provkey plan`: desired state (TOML) + current state → a checked plan, with the
//! embedded stock planner and a hostile one; then `provkey check` on the result.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{self, Run, repo};

fn plan(args: &[&str]) -> Run {
    support::run(support::provkey().arg("plan").args(args))
}

/// Runs `provkey plan` and returns the plan it wrote.
fn plan_ok(desired: &Path, state: &str, out: &Path) -> (Run, Value) {
    let run = plan(&[
        "--desired",
        desired.to_str().unwrap(),
        "--state",
        state,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let text = std::fs::read_to_string(out).unwrap();
    (run, serde_json::from_str(&text).unwrap())
}

/// `(address, action)` for every change, in plan order.
fn actions(plan: &Value) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let action = match &c["action"] {
                Value::String(s) => s.clone(),
                Value::Object(o) => {
                    let r = &o["replace"];
                    format!(
                        "replace:{}:{}",
                        r["reason"].as_str().unwrap_or_default(),
                        r["order"].as_str().unwrap()
                    )
                }
                other => panic!("unexpected action {other}"),
            };
            (c["address"].as_str().unwrap().to_string(), action)
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// What the executor will record after applying `plan`: every resource the plan
/// leaves in place, with its digests and attributes.
fn state_after(plan: &Value, serial: u64) -> String {
    let resources: Vec<Value> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "destroy")
        .map(|c| {
            let after = &c["after"];
            json!({
                "address": c["address"],
                "type": c["type"],
                "name": c["name"],
                "depends_on": c.get("depends_on").cloned().unwrap_or(json!([])),
                "artifact_digest": if c["type"] == "artifact" {
                    after["digest"].clone()
                } else {
                    after["artifact"]["digest"].clone()
                },
                "config_digest": after.get("config_digest").cloned().unwrap_or(Value::Null),
                "attributes": after,
            })
        })
        .collect();
    json!({
        "format": "provkey-state",
        "format_version": "0.1",
        "lineage": "6f1c2a4e-8d0b-4c3e-9a55-0123456789ab",
        "serial": serial,
        "resources": resources,
    })
    .to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn app_dir(version: &str) -> String {
    repo(&format!("examples/desired/app/{version}"))
        .canonicalize()
        .unwrap()
        .display()
        .to_string()
}

/// The example app, with the artifact path made absolute and the web config varied.
fn app_toml(version: &str, web_port: u16, with_web: bool) -> String {
    let mut text = format!(
        r#"target = "demo"
[artifact.app]
path = "{}"
[instance.api]
artifact = "app"
[instance.api.config]
port = 8081
"#,
        app_dir(version)
    );
    if with_web {
        text.push_str(&format!(
            r#"[instance.web]
artifact = "app"
depends_on = ["instance.api"]
[instance.web.config]
port = {web_port}
"#
        ));
    }
    text
}

#[test]
fn from_no_state_everything_is_created_in_dependency_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plan.json");
    let (run, plan) = plan_ok(&repo("examples/desired/app.toml"), "none", &out);
    assert_eq!(
        actions(&plan),
        pairs(&[
            ("artifact.app", "create"),
            ("instance.api", "create"),
            ("instance.web", "create"),
        ])
    );
    let web = &plan["changes"][2];
    assert_eq!(web["depends_on"], json!(["artifact.app", "instance.api"]));
    // The artifact is identified by the digest of its content, computed by provkey.
    let digest = provkey_desired::tree_digest(&repo("examples/desired/app/v1")).unwrap();
    assert_eq!(plan["changes"][0]["after"]["digest"], json!(digest));
    assert_eq!(plan["changes"][0]["after"]["path"], json!("app/v1"));
    assert_eq!(web["after"]["artifact"]["digest"], json!(digest));
    assert_eq!(web["after"]["config"]["port"], json!(8080));
    assert!(
        web["after"]["config_digest"]
            .as_str()
            .unwrap()
            .starts_with("blake3:")
    );
    assert!(
        run.stdout
            .contains("3 to create, 0 to replace, 0 to destroy"),
        "{run:?}"
    );
    assert!(run.stdout.contains("current state: none"), "{run:?}");
    assert!(
        run.stdout
            .contains("3. + create   instance.web  after artifact.app, instance.api"),
        "{run:?}"
    );
    // What `provkey plan` writes, `provkey check` reads, and the stock policies pass.
    check_passes(&out);
}

/// The whole stock set must pass a well-formed, replace-only, pinned plan.
fn check_passes(plan: &Path) {
    let args = ["--plan", plan.to_str().unwrap()];
    let check = support::check(&args);
    assert_eq!(check.code, 0, "{check:?}");
    assert!(check.stdout.contains("immutable"), "{check:?}");
}

#[test]
fn a_blake3_pinned_plan_passes_the_whole_stock_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plan.json");
    plan_ok(&repo("examples/desired/app.toml"), "none", &out);
    check_passes(&out);
}

#[test]
fn the_same_desired_state_over_its_own_result_is_all_no_ops() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("v1.json");
    let (_, v1) = plan_ok(&repo("examples/desired/app.toml"), "none", &first);
    let state = write(dir.path(), "state.json", &state_after(&v1, 1));
    let again = dir.path().join("again.json");
    let (run, plan) = plan_ok(
        &repo("examples/desired/app.toml"),
        state.to_str().unwrap(),
        &again,
    );
    assert!(actions(&plan).iter().all(|(_, a)| a == "no-op"), "{plan:#}");
    assert!(run.stdout.contains("nothing to do"), "{run:?}");
    assert!(run.stdout.contains("serial 1"), "{run:?}");
}

#[test]
fn a_new_artifact_replaces_everything_that_runs_it_create_before_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let (_, v1) = plan_ok(
        &repo("examples/desired/app.toml"),
        "none",
        &dir.path().join("v1.json"),
    );
    let state = write(dir.path(), "state.json", &state_after(&v1, 1));
    let out = dir.path().join("v2.json");
    let (run, v2) = plan_ok(
        &repo("examples/desired/app-v2.toml"),
        state.to_str().unwrap(),
        &out,
    );
    let replace = "replace:artifact-changed:create-before-destroy";
    assert_eq!(
        actions(&v2),
        pairs(&[
            ("artifact.app", replace),
            ("instance.api", replace),
            ("instance.web", replace),
        ])
    );
    let web = &v2["changes"][2];
    assert_eq!(
        web["action"]["replace"]["paths"],
        json!(["/artifact/digest"])
    );
    assert_eq!(
        v2["changes"][0]["action"]["replace"]["paths"],
        json!(["/digest"])
    );
    assert_ne!(
        web["before"]["artifact"]["digest"],
        web["after"]["artifact"]["digest"]
    );
    assert!(run.stdout.contains("3 to replace"), "{run:?}");
    assert!(
        run.stdout
            .contains("replace  instance.web (artifact-changed, create before destroy)"),
        "{run:?}"
    );
    check_passes(&out);
}

#[test]
fn a_new_configuration_replaces_that_instance_only() {
    let dir = tempfile::tempdir().unwrap();
    let d1 = write(dir.path(), "v1.toml", &app_toml("v1", 8080, true));
    let (_, v1) = plan_ok(&d1, "none", &dir.path().join("v1.json"));
    let state = write(dir.path(), "state.json", &state_after(&v1, 1));
    let d2 = write(dir.path(), "v2.toml", &app_toml("v1", 9090, true));
    let (_, plan) = plan_ok(&d2, state.to_str().unwrap(), &dir.path().join("v2.json"));
    assert_eq!(
        actions(&plan),
        pairs(&[
            ("artifact.app", "no-op"),
            ("instance.api", "no-op"),
            (
                "instance.web",
                "replace:config-changed:create-before-destroy"
            ),
        ])
    );
}

#[test]
fn destroy_before_create_only_when_the_resource_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d1 = write(dir.path(), "v1.toml", &app_toml("v1", 8080, true));
    let (_, v1) = plan_ok(&d1, "none", &dir.path().join("v1.json"));
    let state = write(dir.path(), "state.json", &state_after(&v1, 1));
    let text = app_toml("v1", 9090, true).replace(
        "depends_on = [\"instance.api\"]",
        "depends_on = [\"instance.api\"]\nreplace = \"destroy-before-create\"",
    );
    let d2 = write(dir.path(), "v2.toml", &text);
    let (_, plan) = plan_ok(&d2, state.to_str().unwrap(), &dir.path().join("v2.json"));
    assert_eq!(
        actions(&plan)[2].1,
        "replace:config-changed:destroy-before-create"
    );
}

#[test]
fn a_resource_left_out_is_destroyed() {
    let dir = tempfile::tempdir().unwrap();
    let d1 = write(dir.path(), "v1.toml", &app_toml("v1", 8080, true));
    let (_, v1) = plan_ok(&d1, "none", &dir.path().join("v1.json"));
    let state = write(dir.path(), "state.json", &state_after(&v1, 1));
    let d2 = write(dir.path(), "v2.toml", &app_toml("v1", 8080, false));
    let out = dir.path().join("v2.json");
    let (run, plan) = plan_ok(&d2, state.to_str().unwrap(), &out);
    assert_eq!(
        actions(&plan),
        pairs(&[
            ("artifact.app", "no-op"),
            ("instance.api", "no-op"),
            ("instance.web", "destroy"),
        ])
    );
    assert!(plan["changes"][2].get("after").is_none());
    assert_eq!(plan["changes"][2]["before"]["config"]["port"], json!(8080));
    assert!(run.stdout.contains("1 to destroy"), "{run:?}");
    check_passes(&out);
}

#[test]
fn creates_follow_dependencies_and_destroys_go_in_reverse() {
    let dir = tempfile::tempdir().unwrap();
    // Alphabetical order is the opposite of the dependency order.
    let text = format!(
        r#"[artifact.app]
path = "{}"
[instance.a]
artifact = "app"
depends_on = ["instance.b"]
[instance.b]
artifact = "app"
depends_on = ["instance.c"]
[instance.c]
artifact = "app"
"#,
        app_dir("v1")
    );
    let desired = write(dir.path(), "chain.toml", &text);
    let (_, created) = plan_ok(&desired, "none", &dir.path().join("p1.json"));
    let order: Vec<String> = actions(&created).into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        order,
        ["artifact.app", "instance.c", "instance.b", "instance.a"]
    );
    let state = write(dir.path(), "state.json", &state_after(&created, 1));
    let empty = write(dir.path(), "empty.toml", "target = \"chain\"\n");
    let (_, destroyed) = plan_ok(&empty, state.to_str().unwrap(), &dir.path().join("p2.json"));
    assert_eq!(
        actions(&destroyed),
        pairs(&[
            ("instance.a", "destroy"),
            ("instance.b", "destroy"),
            ("instance.c", "destroy"),
            ("artifact.app", "destroy"),
        ])
    );
}

/// A desired state that must be refused with exit 2, naming the file and a line.
fn refused(text: &str, line: usize, expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let desired = write(dir.path(), "desired.toml", text);
    let out = dir.path().join("plan.json");
    let run = plan(&[
        "--desired",
        desired.to_str().unwrap(),
        "--state",
        "none",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    let named = format!("desired state `{}`, line {line}", desired.display());
    assert!(run.stderr.contains(&named), "expected `{named}` in {run:?}");
    for needle in expected {
        assert!(
            run.stderr.contains(needle),
            "expected `{needle}` in {run:?}"
        );
    }
    assert!(run.stderr.contains("help: "), "{run:?}");
    assert!(!out.exists(), "no plan is written for bad input");
}

#[test]
fn a_dependency_cycle_is_refused_with_its_line() {
    let text = format!(
        "[artifact.app]\npath = \"{}\"\n\n[instance.a]\nartifact = \"app\"\ndepends_on = [\"instance.b\"]\n\n[instance.b]\nartifact = \"app\"\ndepends_on = [\"instance.a\"]\n",
        app_dir("v1")
    );
    refused(
        &text,
        4,
        &[
            "dependency cycle",
            "`instance.a` → `instance.b` → `instance.a`",
        ],
    );
}

#[test]
fn an_unknown_dependency_is_refused_with_its_line() {
    let text = format!(
        "[artifact.app]\npath = \"{}\"\n[instance.a]\nartifact = \"app\"\ndepends_on = [\"instance.ghost\"]\n",
        app_dir("v1")
    );
    refused(
        &text,
        5,
        &[
            "field `instance.a.depends_on`",
            "`instance.ghost` is not declared",
        ],
    );
    refused(
        "[instance.a]\nartifact = \"nope\"\n",
        2,
        &["field `instance.a.artifact`", "no artifact `nope`"],
    );
}

#[test]
fn malformed_desired_states_are_refused_with_file_line_and_field() {
    // TOML syntax.
    refused("target = \"demo\"\n[artifact.app\npath = 1\n", 2, &[]);
    // A misspelt field.
    refused(
        "[artifact.app]\ndigest = \"blake3:00\"\n[instance.web]\nartefact = \"app\"\n",
        4,
        &["unknown field `artefact`"],
    );
    // A wrong type.
    refused(
        "[artifact.app]\nuri = \"r/app:latest\"\n[instance.web]\nartifact = \"app\"\ndepends_on = \"artifact.app\"\n",
        5,
        &["depends_on"],
    );
    // A digest that is not one.
    refused(
        "[artifact.app]\ndigest = \"sha256:abc\"\n",
        2,
        &[
            "field `artifact.app.digest`",
            "`sha256:abc` is not a digest",
        ],
    );
    // A digest that does not match the build output.
    let text = format!(
        "[artifact.app]\npath = \"{}\"\ndigest = \"blake3:{}\"\n",
        app_dir("v1"),
        "0".repeat(64)
    );
    refused(&text, 3, &["does not match the content of"]);
    // A build output that is not there.
    refused(
        "\n[artifact.app]\npath = \"missing/dir\"\n",
        3,
        &["artifact `app`: cannot compute its digest", "missing/dir"],
    );
    // A bad name.
    refused(
        "[instance.Web]\nartifact = \"x\"\n",
        1,
        &["instance name `Web`"],
    );
}

#[test]
fn the_current_state_must_be_given_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plan.json");
    let desired = repo("examples/desired/app.toml");
    let run_with = |state: &str| {
        plan(&[
            "--desired",
            desired.to_str().unwrap(),
            "--state",
            state,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let missing = dir.path().join("missing.json");
    let run = run_with(missing.to_str().unwrap());
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("does not exist"), "{run:?}");
    assert!(run.stderr.contains("--state none"), "{run:?}");
    // An empty or truncated file is never "nothing deployed".
    let empty = write(dir.path(), "empty.json", "");
    let run = run_with(empty.to_str().unwrap());
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("is empty"), "{run:?}");
    let truncated = write(
        dir.path(),
        "cut.json",
        "{\"format\": \"provkey-state\", \"lin",
    );
    let run = run_with(truncated.to_str().unwrap());
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("line 1, column"), "{run:?}");
    assert!(!out.exists(), "{run:?}");
}

/// `provkey plan` with the hostile planner in `mode`.
fn hostile(mode: &str) -> (Run, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let desired = write(
        dir.path(),
        "desired.toml",
        &format!(
            "target = \"{mode}\"\n[artifact.app]\ndigest = \"blake3:{}\"\n",
            "a".repeat(64)
        ),
    );
    let out = dir.path().join("plan.json");
    let run = plan(&[
        "--desired",
        desired.to_str().unwrap(),
        "--state",
        "none",
        "--out",
        out.to_str().unwrap(),
        "--planner",
        provkey_test_guests::HOSTILE_PLANNER,
    ]);
    (run, out, dir)
}

#[test]
fn the_host_refuses_a_planners_invalid_plan() {
    let cases = [
        ("update", "`instance.a` is updated in place"),
        ("duplicate", "`instance.a` appears more than once"),
        (
            "unknown-dependency",
            "depends on `instance.ghost`, which is not in the plan",
        ),
        ("cycle", "dependency cycle among `instance.a`, `instance.b`"),
        ("trap", "trapped"),
        ("guest-error", "fails on request"),
    ];
    for (mode, expected) in cases {
        let (run, out, _dir) = hostile(mode);
        assert_eq!(run.code, 3, "{mode}: {run:?}");
        assert!(
            run.stderr.contains("error: planner `hostile-planner`"),
            "{mode}: {run:?}"
        );
        assert!(
            run.stderr.contains(expected),
            "{mode}: expected `{expected}` in {run:?}"
        );
        assert!(!out.exists(), "{mode}: nothing is written");
    }
    // The same planner, behaving, gives a plan that is written.
    let (run, out, _dir) = hostile("fine");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(out.exists());
}

#[test]
fn a_sleeping_planner_never_holds_the_host_past_the_deadline() {
    for (mode, code, expected) in [
        // The wait returns at once in virtual time; the planner then plans nothing.
        ("sleep-forever", 0, ""),
        ("sleep-loop", 3, "exceeded the time limit of 1000 ms"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let desired = write(
            dir.path(),
            "desired.toml",
            &format!(
                "target = \"{mode}\"\n[artifact.app]\ndigest = \"blake3:{}\"\n",
                "a".repeat(64)
            ),
        );
        let out = dir.path().join("plan.json");
        let mut cmd = support::provkey();
        cmd.arg("plan")
            .args(["--desired", desired.to_str().unwrap()])
            .args(["--state", "none", "--out", out.to_str().unwrap()])
            .args(["--planner", provkey_test_guests::HOSTILE_PLANNER])
            .args(["--deadline-ms", "1000"]);
        let started = std::time::Instant::now();
        let run = support::run_within(&mut cmd, std::time::Duration::from_secs(25))
            .unwrap_or_else(|| panic!("`{mode}`: `provkey plan` was still running after 25 s"));
        assert_eq!(run.code, code, "{mode}: {run:?}");
        assert!(run.stderr.contains(expected), "{mode}: {run:?}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "{mode}: took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_policy_is_not_a_planner() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plan.json");
    let run = plan(&[
        "--desired",
        repo("examples/desired/app.toml").to_str().unwrap(),
        "--state",
        "none",
        "--out",
        out.to_str().unwrap(),
        "--planner",
        provkey_test_guests::HOSTILE,
    ]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("`planner` world"), "{run:?}");
}

#[test]
fn an_artifact_named_only_by_a_mutable_reference_reaches_the_policies() {
    let dir = tempfile::tempdir().unwrap();
    let desired = write(
        dir.path(),
        "desired.toml",
        "[artifact.app]\nuri = \"registry.example/app:latest\"\n[instance.web]\nartifact = \"app\"\n",
    );
    let out = dir.path().join("plan.json");
    let (_, plan) = plan_ok(&desired, "none", &out);
    let app = &plan["changes"][0];
    assert_eq!(
        app["after"],
        json!({"name": "app", "uri": "registry.example/app:latest"})
    );
    assert!(
        plan["changes"][1]["after"]["artifact"]
            .get("digest")
            .is_none()
    );
    if provkey_stock::find("pinned-artifacts").is_none() {
        eprintln!("SKIPPED: the `pinned-artifacts` stock policy is not in this build");
        return;
    }
    let check = support::check(&["--plan", out.to_str().unwrap()]);
    assert_eq!(check.code, 1, "{check:?}");
    assert!(
        check
            .stdout
            .contains("pinned-artifacts/artifact-not-pinned at `/digest`"),
        "{check:?}"
    );
    assert!(
        check
            .stdout
            .contains("`artifact.app`: the artifact has no `digest`"),
        "{check:?}"
    );
}
