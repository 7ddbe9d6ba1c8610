//! Hostile guests: each is stopped with exit 3 and a message naming the policy and
//! the limit it hit, within the deadline plus a margin, while the other policies'
//! results are still reported.

use std::time::{Duration, Instant};

use crate::support::*;

/// Runs the stock `immutable` policy beside the hostile guest in `mode`.
fn hostile(mode: &str, extra: &[&str]) -> (Run, Duration) {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let (_cfg_dir, config) = temp_file("mode.json", format!(r#"{{"mode": "{mode}"}}"#).as_bytes());
    let mut cmd = provkey();
    cmd.arg("check")
        .args(["--plan", plan.to_str().unwrap()])
        .args([
            "--policy",
            "immutable",
            "--policy",
            provkey_test_guests::HOSTILE,
        ])
        .args(["--config", &format!("hostile={}", config.display())])
        .args(["--format", "json"])
        .args(extra);
    let started = Instant::now();
    let run = run(&mut cmd);
    (run, started.elapsed())
}

/// Exit 3, the hostile policy failed for `kind` with `message`, and `immutable`'s
/// finding is still in the report.
fn assert_contained(run: &Run, kind: &str, message: &str) {
    assert_eq!(run.code, 3, "{run:?}");
    let report = run.json();
    assert_eq!(report["verdict"], "error");
    let policies = report["policies"].as_array().unwrap();
    let bad = policies
        .iter()
        .find(|p| p["id"] == "hostile")
        .expect("hostile listed");
    assert_eq!(bad["status"], "failed", "{run:?}");
    assert_eq!(bad["failure"]["kind"], kind, "{run:?}");
    let text = bad["failure"]["message"].as_str().unwrap();
    assert!(
        text.contains("policy `hostile`"),
        "names the policy: {text}"
    );
    assert!(
        text.contains(message),
        "names the limit ({message}): {text}"
    );
    let good = policies
        .iter()
        .find(|p| p["id"] == "immutable")
        .expect("immutable listed");
    assert_eq!(good["status"], "ok", "{run:?}");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["policy"] == "immutable" && f["address"] == "aws_instance.web"),
        "the other policy's findings are still reported: {run:?}"
    );
}

#[test]
fn infinite_loop_hits_the_deadline() {
    let (run, elapsed) = hostile("loop", &["--deadline-ms", "500"]);
    assert_contained(&run, "deadline", "exceeded the time limit of 500 ms");
    // Liveness, not performance: the loop must be cut off, not run to the test timeout.
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

/// `provkey check` of `immutable` beside the hostile guest in `mode`, killed if it
/// outlives `deadline_ms` by more than a generous margin.
fn hostile_within(mode: &str, deadline_ms: u64) -> (Run, Duration) {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let (_cfg_dir, config) = temp_file("mode.json", format!(r#"{{"mode": "{mode}"}}"#).as_bytes());
    let mut cmd = provkey();
    cmd.arg("check")
        .args(["--plan", plan.to_str().unwrap()])
        .args([
            "--policy",
            "immutable",
            "--policy",
            provkey_test_guests::HOSTILE,
        ])
        .args(["--config", &format!("hostile={}", config.display())])
        .args([
            "--format",
            "json",
            "--deadline-ms",
            &deadline_ms.to_string(),
        ]);
    let limit = Duration::from_millis(deadline_ms) + Duration::from_secs(20);
    let started = Instant::now();
    let run = run_within(&mut cmd, limit)
        .unwrap_or_else(|| panic!("`{mode}`: the check was still running after {limit:?}"));
    (run, started.elapsed())
}

#[test]
fn no_wasi_call_that_waits_holds_the_host_past_the_deadline() {
    // Each wait returns at once, in virtual time: the policy goes on and reports.
    let cases = [
        ("sleep", "slept 3600 s"),
        ("sleep-forever", "woke up"),
        ("wait-duration", "woke up"),
        ("wait-instant", "woke up"),
        ("poll-clocks", "ready [0, 1]"),
        ("read-stdin", "stdin false"),
    ];
    for (mode, message) in cases {
        let (run, elapsed) = hostile_within(mode, 1_000);
        let report = run.json();
        let hostile = report["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == "hostile")
            .expect("hostile listed");
        assert_eq!(hostile["status"], "ok", "{mode}: {run:?}");
        assert!(
            report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["policy"] == "hostile" && f["message"] == message),
            "{mode}: expected the finding `{message}`: {run:?}"
        );
        assert!(
            elapsed < Duration::from_secs(15),
            "{mode}: took {elapsed:?}"
        );
    }
}

#[test]
fn a_guest_sleeping_in_a_loop_hits_the_deadline() {
    let (run, elapsed) = hostile_within("sleep-loop", 1_000);
    assert_contained(&run, "deadline", "exceeded the time limit of 1000 ms");
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
}

#[test]
fn a_chatty_guest_is_told_it_hit_the_stderr_cap() {
    let (run, _) = hostile("chatty", &[]);
    assert_contained(&run, "stderr-size", "16 KiB it may write to stderr");
    assert_contained(&run, "stderr-size", "stderr cap hit");
}

#[test]
fn unbounded_memory_growth_hits_the_memory_limit() {
    let (run, _) = hostile("memory", &["--memory-mib", "64"]);
    assert_contained(&run, "memory", "exceeded the memory limit of 64 MiB");
}

#[test]
fn unbounded_recursion_hits_the_stack_limit() {
    let (run, _) = hostile("recursion", &[]);
    assert_contained(&run, "stack", "exceeded the stack limit");
}

#[test]
fn recursion_on_the_guest_shadow_stack_traps_without_harm() {
    let (run, _) = hostile("shadow-recursion", &[]);
    assert_contained(&run, "trap", "out of bounds memory access");
}

#[test]
fn a_trap_is_reported_with_the_guest_panic_message() {
    let (run, _) = hostile("trap", &[]);
    assert_contained(&run, "trap", "deliberate panic from the hostile guest");
}

#[test]
fn an_oversized_result_hits_the_output_limit() {
    let (run, _) = hostile("oversized", &["--output-mib", "4"]);
    // `--output-mib`, plus two bytes per byte of plan.
    let limit = (4 << 20) + 2 * SAMPLE_PLAN.len();
    assert_contained(
        &run,
        "output-size",
        &format!("output limit of {limit} bytes"),
    );
}

#[test]
fn a_finding_for_an_undeclared_rule_is_bad_output() {
    let (run, _) = hostile("undeclared-rule", &[]);
    assert_contained(
        &run,
        "bad-output",
        "rule `not-declared`, which the policy does not declare",
    );
}

#[test]
fn a_finding_about_a_resource_not_in_the_plan_is_bad_output() {
    let (run, _) = hostile("unknown-address", &[]);
    assert_contained(
        &run,
        "bad-output",
        "`aws_instance.does_not_exist`, which is not in the plan",
    );
}

#[test]
fn a_guest_error_fails_closed() {
    let (run, _) = hostile("error", &[]);
    assert_contained(&run, "guest-error", "the guest gave up");
}

#[test]
fn invalid_config_reported_by_the_guest_fails_closed() {
    let (run, _) = hostile("no-such-mode", &[]);
    assert_contained(&run, "guest-error", "unknown mode `no-such-mode`");
}

#[test]
fn a_core_module_is_not_a_policy_component() {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let module = wat::parse_file(repo("tests/wat/core-module.wat")).unwrap();
    let (_wdir, wasm) = temp_file("core.wasm", &module);
    let run = check(&[
        "--plan",
        plan.to_str().unwrap(),
        "--policy",
        "immutable",
        "--policy",
        wasm.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 3, "{run:?}");
    let report = run.json();
    let bad = report["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["status"] == "failed")
        .unwrap();
    assert!(
        bad["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("is not a valid wasm component"),
        "{run:?}"
    );
}

#[test]
fn a_component_of_another_world_is_refused() {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let component = wat::parse_file(repo("tests/wat/empty-component.wat")).unwrap();
    let (_wdir, wasm) = temp_file("empty.wasm", &component);
    let run = check(&[
        "--plan",
        plan.to_str().unwrap(),
        "--policy",
        wasm.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stdout.contains(
            "does not implement the `policy` world of provkey:plan@0.6.0, @0.5.0, @0.4.0, @0.3.0, @0.2.0 or @0.1.0"
        ),
        "{run:?}"
    );
}

#[test]
fn garbage_bytes_are_not_a_component() {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let (_wdir, wasm) = temp_file("garbage.wasm", b"\0asm garbage that is not wasm");
    let run = check(&[
        "--plan",
        plan.to_str().unwrap(),
        "--policy",
        wasm.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stdout.contains("is not a valid wasm component"),
        "{run:?}"
    );
}

#[test]
fn the_host_survives_many_hostile_runs_in_one_process() {
    // Fresh store per evaluation: a timeout never poisons the next run.
    for mode in ["trap", "recursion", "pass", "trap", "pass"] {
        let (run, _) = hostile(mode, &[]);
        assert!(run.code == 3 || run.code == 1, "{mode}: {run:?}");
    }
}

/// The Rust SDK's allocator (a bump allocator: one instance serves one evaluation)
/// must fail like any other guest at the memory limit: the host names the limit,
/// and the same policy with room enough gives the floor's findings.
#[test]
fn an_sdk_policy_out_of_memory_is_reported_as_the_memory_limit() {
    use provkey_runtime::{GuestFailure, Limits, PolicyOrigin, Runtime, RuntimeOptions};

    let generated = provkey_bench::genplan::generate(10_000, 7);
    let plan = std::sync::Arc::new(provkey_plan::Plan::from_json(&generated.json).unwrap());
    let guest_plan = provkey_runtime::GuestPlan::new(std::sync::Arc::clone(&plan));
    let index = provkey_runtime::PlanIndex::new(&plan);
    let stock = provkey_stock::find("required-tags").unwrap();
    let config = r#"{"tags": ["env", "team", "cost-center"]}"#;
    let evaluate = |memory_bytes: usize| {
        let limits = Limits {
            memory_bytes,
            deadline: Duration::from_secs(60),
            ..Limits::default()
        };
        let runtime = Runtime::new(RuntimeOptions {
            limits,
            cache_dir: None,
        })
        .unwrap();
        let policy = runtime
            .load_policy("required-tags", PolicyOrigin::Stock, stock.bytes)
            .unwrap();
        runtime
            .evaluate(&policy, &guest_plan, &index, config)
            .result
    };

    // The summary of 10,000 changes and the values the policy reads cannot fit in
    // 4 MiB of guest memory.
    match evaluate(4 << 20) {
        Err(GuestFailure::Memory { limit_mib }) => assert_eq!(limit_mib, 4),
        other => panic!("expected the memory limit, got {other:?}"),
    }
    let findings = evaluate(256 << 20).expect("fits in 256 MiB");
    let native = provkey_bench::floor::check_one(&plan, "required-tags", config).unwrap();
    assert!(!findings.is_empty());
    assert_eq!(findings.len(), native.len());
    for (wasm, native) in findings.iter().zip(&native) {
        assert_eq!((&wasm.rule, &wasm.address), (&native.rule, &native.address));
    }
}

/// Runs the `hostile-view` guest (a `provkey:plan@0.2.0` policy without the SDK) in
/// `mode` over a plan whose first change has a nested value.
fn hostile_view(mode: &str, extra: &[&str]) -> Run {
    let plan = SAMPLE_PLAN.replace(
        r#""after": {"ami": "ami-2", "instance_type": "t3.micro", "password": "hunter3"}"#,
        r#""after": {"ami": "ami-2", "tags": {"Name": "web"}, "password": "hunter3"}"#,
    );
    assert_ne!(
        plan, SAMPLE_PLAN,
        "the sample plan changed: update this test"
    );
    let (_dir, plan) = temp_file("plan.json", plan.as_bytes());
    let (_cfg_dir, config) = temp_file("mode.json", format!(r#"{{"mode": "{mode}"}}"#).as_bytes());
    run(provkey()
        .arg("check")
        .args(["--plan", plan.to_str().unwrap()])
        .args(["--policy", provkey_test_guests::HOSTILE_VIEW])
        .args(["--config", &format!("hostile-view={}", config.display())])
        .args(["--format", "json"])
        .args(extra))
}

/// `plan-view` answers `none` to every question about a value that is not there (a
/// change past the end, a side a change does not have, a pointer that is not one),
/// and the value's text otherwise.
#[test]
fn plan_view_answers_none_for_what_does_not_exist() {
    let run = hostile_view("probe", &[]);
    // The findings are advisory: the check passes.
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    assert_eq!(report["policies"][0]["status"], "ok", "{run:?}");
    let answers: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    let expected = [
        "whole after of change 0 => 64 bytes: {\"ami\": \"ami-2\", \"tags\":",
        "member of change 0 => 7 bytes: \"ami-2\"",
        "deep pointer of change 0 => 5 bytes: \"web\"",
        "missing member => none",
        "pointer without a slash => none",
        "index past the end => none",
        "largest index => none",
        "pointer of 1 MB => none",
    ];
    for answer in expected {
        assert!(answers.contains(&answer), "{answer:?} not in {answers:#?}");
    }
    assert_eq!(answers.len(), expected.len(), "{answers:#?}");
}

/// Asking the host for the same value forever is stopped by the deadline, even
/// though the guest spends most of its time in host calls.
#[test]
fn plan_view_questions_without_end_hit_the_deadline() {
    let run = hostile_view("flood", &["--deadline-ms", "300"]);
    assert_eq!(run.code, 3, "{run:?}");
    let failure = &run.json()["policies"][0]["failure"];
    assert_eq!(failure["kind"], "deadline", "{run:?}");
}

/// Keeping every answer is stopped by the memory limit.
#[test]
fn plan_view_answers_kept_without_end_hit_the_memory_limit() {
    let run = hostile_view("hoard", &["--memory-mib", "64", "--deadline-ms", "20000"]);
    assert_eq!(run.code, 3, "{run:?}");
    let failure = &run.json()["policies"][0]["failure"];
    assert_eq!(failure["kind"], "memory", "{run:?}");
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .contains("exceeded the memory limit of 64 MiB"),
        "{run:?}"
    );
}

/// Instances share the pool's memory slots (`provkey_runtime::engine_config`): what
/// an evaluation leaves in its memory, even where its allocator never reached, must
/// be gone when the next instance takes the slot. One thread, so the slot the
/// scribbling instance left is the next one taken, by the same policy and by
/// another.
#[test]
fn a_reused_memory_slot_holds_nothing_of_the_instance_before() {
    use provkey_runtime::{PolicyOrigin, Runtime, RuntimeOptions};

    let runtime = Runtime::new(RuntimeOptions::default()).unwrap();
    let path = std::path::PathBuf::from(provkey_test_guests::HOSTILE);
    let hostile = runtime
        .load_policy(
            "hostile",
            PolicyOrigin::File(path.clone()),
            &std::fs::read(&path).unwrap(),
        )
        .unwrap();
    let stock = provkey_stock::find("required-tags").unwrap();
    let other = runtime
        .load_policy(stock.id, PolicyOrigin::Stock, stock.bytes)
        .unwrap();
    let plan = std::sync::Arc::new(provkey_plan::Plan::from_json(SAMPLE_PLAN).unwrap());
    let guest_plan = provkey_runtime::GuestPlan::new(std::sync::Arc::clone(&plan));
    let index = provkey_runtime::PlanIndex::new(&plan);
    let message = |mode: &str| {
        let findings = runtime
            .evaluate(
                &hostile,
                &guest_plan,
                &index,
                &format!(r#"{{"mode": "{mode}"}}"#),
            )
            .result
            .unwrap();
        findings[0].message.clone()
    };
    for round in 0..3 {
        let scribbled = message("scribble");
        assert!(
            scribbled.starts_with("scribbled 8388608 bytes at "),
            "{scribbled}"
        );
        if round == 1 {
            // Another policy in between takes the slot and must not see it either
            // (its findings are its own), then leaves its own memory behind.
            runtime
                .evaluate(&other, &guest_plan, &index, r#"{"tags": ["env"]}"#)
                .result
                .unwrap();
        }
        let residue = message("residue");
        let at = scribbled.rsplit(' ').next().unwrap();
        assert!(
            residue.starts_with("dirty=0 of 8388608 at "),
            "round {round}: {residue} after {scribbled}"
        );
        // The same addresses as the scribble: the check read what it wrote.
        assert!(
            residue.ends_with(&format!(" at {at}")),
            "{residue} / {scribbled}"
        );
    }
}

/// `provkey check` of `immutable` beside the component at `policy`, killed after 60 s.
fn beside_immutable(policy: &str) -> Run {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let mut cmd = provkey();
    cmd.arg("check")
        .args(["--plan", plan.to_str().unwrap()])
        .args(["--policy", "immutable", "--policy", policy])
        .args(["--format", "json"]);
    run_within(&mut cmd, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("the check beside `{policy}` was still running after 60 s"))
}

/// Exit 3, the policy listed as `id` failed to load for `message`, and `immutable`
/// ran and reported its finding.
fn assert_load_failure_contained(run: &Run, id: &str, message: &str) {
    assert_eq!(run.code, 3, "{run:?}");
    let report = run.json();
    let policies = report["policies"].as_array().unwrap();
    let bad = policies
        .iter()
        .find(|p| p["id"] == id && p["status"] == "failed")
        .unwrap_or_else(|| panic!("`{id}` listed as failed: {run:?}"));
    assert_eq!(bad["failure"]["kind"], "load", "{run:?}");
    let text = bad["failure"]["message"].as_str().unwrap();
    assert!(text.contains(message), "expected `{message}` in: {text}");
    let good = policies
        .iter()
        .find(|p| p["id"] == "immutable" && p["status"] == "ok")
        .unwrap_or_else(|| panic!("`immutable` ran: {run:?}"));
    assert_eq!(good["origin"], "stock", "{run:?}");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["policy"] == "immutable" && f["address"] == "aws_instance.web"),
        "the other policy's findings are still reported: {run:?}"
    );
}

#[test]
fn a_policy_declaring_200000_rules_is_refused_at_load_and_the_others_still_run() {
    let started = Instant::now();
    let run = beside_immutable(provkey_test_guests::MANY_RULES);
    assert_load_failure_contained(
        &run,
        provkey_test_guests::MANY_RULES,
        "declares 200000 rules, more than the 1000 a policy may declare",
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_policy_with_a_broken_configuration_schema_fails_alone() {
    let run = beside_immutable(provkey_test_guests::BAD_SCHEMA);
    assert_load_failure_contained(&run, "bad-schema", "the configuration schema is invalid");
}

#[test]
fn a_policy_claiming_a_stock_policys_id_fails_alone() {
    let run = beside_immutable(provkey_test_guests::CLAIMS_IMMUTABLE);
    assert_load_failure_contained(
        &run,
        provkey_test_guests::CLAIMS_IMMUTABLE,
        "declares the id `immutable`, which `stock` already has",
    );
}

/// A Terraform plan creating `count` instances.
fn plan_of(count: usize) -> String {
    let changes: Vec<String> = (0..count)
        .map(|i| {
            format!(
                r#"{{"address": "aws_instance.i{i}", "mode": "managed", "type": "aws_instance", "name": "i{i}", "provider_name": "registry.terraform.io/hashicorp/aws", "change": {{"actions": ["create"], "before": null, "after": {{"ami": "ami-1"}}}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"format_version": "1.2", "resource_changes": [{}]}}"#,
        changes.join(",\n")
    )
}

#[test]
fn the_output_limit_grows_with_the_plan() {
    // 100,000 findings of 120 bytes: more than the default 16 MiB a guest may return,
    // and what a policy reporting on every change of a plan this large returns.
    let (_dir, plan) = temp_file("plan.json", plan_of(100_000).as_bytes());
    let (_cfg_dir, config) = temp_file("mode.json", br#"{"mode": "one-per-change"}"#);
    let mut cmd = provkey();
    cmd.arg("check")
        .args(["--plan", plan.to_str().unwrap()])
        .args(["--policy", provkey_test_guests::HOSTILE])
        .args(["--config", &format!("hostile={}", config.display())])
        // The deadline is not what this test is about (a 0.1.0 policy gets the whole
        // plan, slow in a debug build on a busy machine).
        .args(["--format", "json", "--deadline-ms", "120000"]);
    let run = run_within(&mut cmd, Duration::from_secs(240)).expect("finished");
    assert_eq!(run.code, 0, "{}", &run.stderr);
    let report = run.json();
    assert_eq!(report["policies"][0]["status"], "ok", "{}", &run.stderr);
    assert_eq!(report["findings"].as_array().unwrap().len(), 100_000);

    // A runaway guest is still stopped at the limit, which did not grow for it.
    let (run, _) = hostile("oversized", &[]);
    let limit = (16 << 20) + 2 * SAMPLE_PLAN.len();
    assert_contained(
        &run,
        "output-size",
        &format!("output limit of {limit} bytes"),
    );
}

#[test]
fn under_a_tight_address_space_limit_every_policy_still_runs() {
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    for limit_kib in [8_000_000, 4_500_000, 2_000_000] {
        // A fresh cache: compiling runs under the limit too.
        let cache = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new("bash");
        cmd.env("PROVKEY_CACHE_DIR", cache.path())
            .env("NO_COLOR", "1")
            .args(["-c", &format!(r#"ulimit -v {limit_kib} && exec "$0" "$@""#)])
            .arg(env!("CARGO_BIN_EXE_provkey"))
            .args([
                "check",
                "--plan",
                plan.to_str().unwrap(),
                "--format",
                "json",
            ]);
        let run = run(&mut cmd);
        assert_eq!(run.code, 1, "ulimit -v {limit_kib}: {run:?}");
        let report = run.json();
        let policies = report["policies"].as_array().unwrap();
        assert!(policies.len() >= 5, "{run:?}");
        for policy in policies {
            assert_eq!(
                policy["status"], "ok",
                "ulimit -v {limit_kib}: {policy} {run:?}"
            );
        }
    }
}
