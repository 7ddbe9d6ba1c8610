//! `provkey check` end to end with the embedded stock set: verdicts, reports, exit codes.

use crate::support::*;

#[test]
fn an_update_in_place_fails_with_exit_1_and_names_the_resource() {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let run = check(&["--plan", plan.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("aws_instance.web"), "{run:?}");
    assert!(
        run.stdout.contains("`ami`"),
        "the changed attribute is named: {run:?}"
    );
    assert!(run.stdout.contains("FAIL"), "{run:?}");
    assert!(
        !run.stdout.contains("hunter"),
        "a sensitive value leaked: {run:?}"
    );
}

#[test]
fn a_plan_without_updates_passes_with_exit_0() {
    let (_dir, plan) = temp_file("plan.json", sample_plan_without_update().as_bytes());
    let run = check(&["--plan", plan.to_str().unwrap(), "--policy", "immutable"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("PASS"), "{run:?}");
}

#[test]
fn json_report_has_the_documented_shape() {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let run = check(&["--plan", plan.to_str().unwrap(), "--format", "json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let report = run.json();
    assert_eq!(report["version"], 1);
    assert_eq!(report["verdict"], "fail");
    assert_eq!(report["exit_code"], 1);
    assert_eq!(report["plan"]["source"], "terraform");
    assert_eq!(report["plan"]["source_version"], "1.2");
    assert_eq!(report["plan"]["changes"], 4);
    assert_eq!(report["plan"]["blake3"].as_str().unwrap().len(), 64);
    let policies = report["policies"].as_array().unwrap();
    let immutable = policies
        .iter()
        .find(|p| p["id"] == "immutable")
        .expect("immutable ran");
    assert_eq!(immutable["status"], "ok");
    assert_eq!(immutable["origin"], "stock");
    assert_eq!(immutable["blake3"].as_str().unwrap().len(), 64);
    let findings: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["policy"] == "immutable")
        .collect();
    assert_eq!(findings.len(), 1, "{run:?}");
    assert_eq!(findings[0]["address"], "aws_instance.web");
    assert_eq!(findings[0]["enforcement"], "hard-mandatory");
    assert!(
        findings[0]["remediation"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(report["summary"]["hard_mandatory"].as_u64().unwrap() >= 1);
    assert_eq!(report["summary"]["failed_policies"], 0);
}

#[test]
fn an_explicit_policy_replaces_the_stock_set() {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let (_cfg_dir, config) = temp_file("pass.json", br#"{"mode": "pass"}"#);
    let run = check(&[
        "--plan",
        plan.to_str().unwrap(),
        "--policy",
        provkey_test_guests::HOSTILE,
        "--config",
        &format!("hostile={}", config.display()),
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    let ids: Vec<&str> = report["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["hostile"]);
    assert_eq!(report["policies"][0]["origin"], "file");
}

#[test]
fn config_for_an_unknown_policy_is_bad_usage() {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let (_cfg_dir, config) = temp_file("c.json", b"{}");
    let run = check(&[
        "--plan",
        plan.to_str().unwrap(),
        "--config",
        &format!("nope={}", config.display()),
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("`--config nope=…` names no loaded policy"),
        "{run:?}"
    );
    assert!(run.stderr.contains("help: loaded policies:"), "{run:?}");
}

#[test]
fn malformed_config_is_bad_input_naming_the_file() {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let (_cfg_dir, config) = temp_file("broken.json", b"{\"mode\": ");
    let run = check(&[
        "--plan",
        plan.to_str().unwrap(),
        "--config",
        &format!("immutable={}", config.display()),
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("broken.json"), "{run:?}");
    assert!(run.stderr.contains("not valid JSON"), "{run:?}");
}

#[test]
fn guests_see_no_clock_environment_files_or_entropy_and_agree_across_runs() {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let (_cfg_dir, config) = temp_file("observe.json", br#"{"mode": "observe"}"#);
    let args = [
        "--plan",
        plan.to_str().unwrap(),
        "--policy",
        provkey_test_guests::HOSTILE,
        "--config",
        &format!("hostile={}", config.display()),
        "--format",
        "json",
    ];
    let first = run(provkey()
        .arg("check")
        .args(args)
        .env("SECRET_TOKEN", "s3cr3t"));
    let second = run(provkey().arg("check").args(args).env("OTHER", "x"));
    assert_eq!(first.code, 0, "{first:?}");
    let message = first.json()["findings"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        message,
        second.json()["findings"][0]["message"].as_str().unwrap()
    );
    assert!(message.contains("changes=4"), "{message}");
    assert!(
        message.contains("now=0 "),
        "the wall clock must stand still: {message}"
    );
    assert!(message.contains("env=[]"), "no environment: {message}");
    assert!(message.contains("root_entries=0"), "no files: {message}");
    assert!(message.contains("read_passwd=false"), "no files: {message}");
}

#[test]
fn terminal_escapes_in_guest_messages_are_neutralized() {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let (_cfg_dir, config) = temp_file("escape.json", br#"{"mode": "escape"}"#);
    let run = check(&[
        "--plan",
        plan.to_str().unwrap(),
        "--policy",
        provkey_test_guests::HOSTILE,
        "--config",
        &format!("hostile={}", config.display()),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        !run.stdout.contains('\u{1b}'),
        "raw escape reached the terminal: {run:?}"
    );
    assert!(!run.stdout.contains('\r'), "{run:?}");
    assert!(run.stdout.contains("\\u{1b}[2J"), "{run:?}");
}

/// `check_plan` hands the policies to the pool's threads from one queue: whatever
/// order they finish in, the outcomes come back in the order given, each the same
/// as the policy evaluated alone.
#[test]
fn check_plan_returns_each_outcome_in_the_order_given() {
    use provkey_runtime::{PolicyOrigin, Runtime, RuntimeOptions};

    let generated = provkey_bench::genplan::generate(300, 11);
    let plan = std::sync::Arc::new(provkey_plan::Plan::from_json(&generated.json).unwrap());
    let runtime = Runtime::new(RuntimeOptions::default()).unwrap();
    // Every stock policy twice, the second round reversed: more policies than
    // threads, cheap ones between costly ones.
    let mut ids: Vec<&str> = provkey_stock::STOCK_POLICIES.iter().map(|p| p.id).collect();
    ids.extend(ids.clone().into_iter().rev());
    let policies: Vec<_> = ids
        .iter()
        .map(|id| {
            let stock = provkey_stock::find(id).unwrap();
            runtime
                .load_policy(stock.id, PolicyOrigin::Stock, stock.bytes)
                .unwrap()
        })
        .collect();
    let configs: std::collections::BTreeMap<String, String> = provkey_bench::floor::CONFIGS
        .iter()
        .map(|(id, config)| (id.to_string(), config.to_string()))
        .collect();

    let outcomes = provkey_runtime::check_plan(&runtime, &plan, &policies, &configs);

    let returned: Vec<&str> = outcomes.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(returned, ids);
    let guest_plan = provkey_runtime::GuestPlan::new(std::sync::Arc::clone(&plan));
    let index = provkey_runtime::PlanIndex::new(&plan);
    let mut found = 0;
    for (outcome, policy) in outcomes.iter().zip(&policies) {
        let config = configs
            .get(policy.metadata.id.as_str())
            .map_or("{}", String::as_str);
        let alone = runtime
            .evaluate(policy, &guest_plan, &index, config)
            .result
            .unwrap();
        let together = outcome.result.as_ref().unwrap();
        assert_eq!(together, &alone, "{}", outcome.id);
        found += alone.len();
    }
    assert!(
        found > 0,
        "the plan gives findings, so the comparison means something"
    );
}

/// The instance pool reserves its address space up front (hundreds of GiB, none of
/// it memory). Under a `ulimit -v` (here 64 GiB) `provkey check` maps instances one
/// by one, each memory reserved at a share of the limit, and gives the same verdict.
#[test]
fn without_room_for_the_instance_pool_instances_are_mapped_on_demand() {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let pooled = check(&["--plan", plan.to_str().unwrap(), "--format", "json"]);
    assert_eq!(pooled.code, 1, "{pooled:?}");
    let provkey = provkey();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -v 67108864 && exec \"$0\" \"$@\"")
        .arg(provkey.get_program())
        .args([
            "check",
            "--plan",
            plan.to_str().unwrap(),
            "--format",
            "json",
        ])
        .envs(provkey.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("PROVKEY_LOG", "provkey_runtime=debug");
    let limited = run(&mut cmd);
    // Under a limit on address space, memories are reserved at a size that fits.
    assert!(
        limited
            .stderr
            .contains("address space limited to 68719476736 bytes"),
        "the limit was not seen: {limited:?}"
    );
    assert_eq!(limited.code, 1, "{limited:?}");
    let verdict = |stdout: &str| -> (serde_json::Value, serde_json::Value) {
        let report: serde_json::Value = serde_json::from_str(stdout).unwrap();
        (report["findings"].clone(), report["summary"].clone())
    };
    let (findings, summary) = verdict(&pooled.stdout);
    assert!(!findings.as_array().unwrap().is_empty());
    assert_eq!(verdict(&limited.stdout), (findings, summary));
}

/// A policy built on `provkey:plan@0.4.0` (as the Rust SDK built them before 0.6.0)
/// still receives the summary 0.4.0 describes: the `summary-0-4` guest reports each
/// change as it received it.
#[test]
fn a_policy_built_on_0_4_0_receives_every_field_of_its_summary() {
    let plan = r#"{"format_version": "1.2", "resource_changes": [
      {"address": "module.app.aws_instance.web[0]", "module_address": "module.app",
       "previous_address": "aws_instance.web", "mode": "managed", "type": "aws_instance",
       "name": "web", "index": 0, "provider_name": "registry.terraform.io/hashicorp/aws",
       "action_reason": "replace_because_cannot_update",
       "change": {"actions": ["delete", "create"], "before": {"ami": "ami-1", "password": "hunter2-x"},
                  "after": {"ami": "ami-2", "password": "hunter2-x"}, "after_unknown": {"arn": true},
                  "before_sensitive": {"password": true}, "after_sensitive": {"password": true},
                  "replace_paths": [["ami"]]}},
      {"address": "data.aws_ami.base", "mode": "data", "type": "aws_ami", "name": "base",
       "provider_name": "registry.terraform.io/hashicorp/aws",
       "change": {"actions": ["read"], "before": null, "after": {"id": "ami-9"}}}
    ]}"#;
    let (_dir, plan) = temp_file("plan.json", plan.as_bytes());
    let run = run(provkey()
        .arg("check")
        .args(["--plan", plan.to_str().unwrap()])
        .args(["--policy", provkey_test_guests::SUMMARY_0_4])
        .args(["--format", "json"]));
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    assert_eq!(report["policies"][0]["status"], "ok", "{run:?}");
    let messages: Vec<serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .filter(|m| m.starts_with('{'))
        .map(|m| serde_json::from_str(m).unwrap())
        .collect();
    let plan_finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["message"] == "plan from `terraform` 1.2");
    assert!(plan_finding, "{run:?}");
    assert_eq!(
        messages,
        [
            serde_json::json!({
                "address": "module.app.aws_instance.web[0]",
                "previous_address": "aws_instance.web", "module_path": "module.app",
                "mode": "managed", "type": "aws_instance", "name": "web",
                "provider": "registry.terraform.io/hashicorp/aws", "action": "replace",
                "replacement": {"order": "destroy-before-create",
                                "reason": "replace_because_cannot_update", "paths": ["/ami"]},
                "has_before": true, "has_after": true, "after_unknown": ["/arn"],
                "before_sensitive": ["/password"], "after_sensitive": ["/password"],
                "depends_on": [], "after_ami": "\"ami-2\"",
            }),
            serde_json::json!({
                "address": "data.aws_ami.base", "previous_address": null, "module_path": "",
                "mode": "data", "type": "aws_ami", "name": "base",
                "provider": "registry.terraform.io/hashicorp/aws", "action": "read",
                "replacement": null, "has_before": false, "has_after": true,
                "after_unknown": [], "before_sensitive": [], "after_sensitive": [],
                "depends_on": [], "after_ami": null,
            }),
        ],
        "{run:?}"
    );
}
