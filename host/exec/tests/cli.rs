//! `provkey-exec` on its own: usage errors, and it links no wasmtime. (The attack suite
//! in `tests/all/` drives it on real bundles; this file also makes `cargo test
//! --workspace` build the binary next to `provkey`.)

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::process::Command;

fn exec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_provkey-exec"))
}

#[test]
fn usage_errors_exit_2() {
    let out = exec().args(["verify", "--nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = exec()
        .args([
            "verify",
            "/nonexistent/bundle",
            "--trust",
            "/nonexistent/key.pub",
            "--target",
            "prod",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read trust root"));
}

#[test]
fn help_exits_0() {
    let out = exec().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

/// The dependency closure of `provkey-exec` in `Cargo.lock` (which lists every kind of
/// dependency, so this is stricter than `cargo tree -e normal`) holds no wasmtime.
#[test]
fn links_no_wasmtime() {
    let lock =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock")).unwrap();
    let mut deps: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for package in lock.split("[[package]]").skip(1) {
        let name = package
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .unwrap()
            .trim_end_matches('"')
            .to_owned();
        let list: Vec<String> = package
            .split("dependencies = [")
            .nth(1)
            .map(|rest| {
                rest.split(']')
                    .next()
                    .unwrap()
                    .split('"')
                    .skip(1)
                    .step_by(2)
                    .map(|d| d.split(' ').next().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        deps.entry(name).or_default().extend(list);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec!["provkey-exec".to_owned()];
    while let Some(name) = todo.pop() {
        if seen.insert(name.clone()) {
            todo.extend(deps.get(&name).cloned().unwrap_or_default());
        }
    }
    assert!(seen.contains("provkey-core"), "{seen:?}");
    for name in &seen {
        assert!(
            !name.starts_with("wasmtime")
                && !name.starts_with("cranelift")
                && name != "provkey-runtime",
            "provkey-exec depends on `{name}`"
        );
    }
}
