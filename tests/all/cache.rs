//! The compilation cache: a second run compiles nothing.

use crate::support::*;

#[test]
fn second_run_loads_every_component_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let run_once = || {
        run(provkey().env("PROVKEY_CACHE_DIR", cache.path()).args([
            "--verbose",
            "check",
            "--plan",
            plan.to_str().unwrap(),
        ]))
    };
    let first = run_once();
    assert_eq!(first.code, 1, "{first:?}");
    assert!(
        first.stderr.contains("compiled component `immutable`"),
        "{first:?}"
    );
    assert!(first.stderr.contains("0 hit(s)"), "{first:?}");

    let second = run_once();
    assert_eq!(second.code, 1, "{second:?}");
    assert!(
        !second.stderr.contains("compiled component"),
        "second run compiled: {second:?}"
    );
    assert!(
        second
            .stderr
            .contains("loaded component `immutable` from the compilation cache"),
        "{second:?}"
    );
    assert!(second.stderr.contains("0 miss(es)"), "{second:?}");
    assert_eq!(first.stdout.lines().count(), second.stdout.lines().count());
}

#[test]
fn a_cache_entry_writable_by_others_is_never_loaded() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let run_once = || {
        run(provkey().env("PROVKEY_CACHE_DIR", cache.path()).args([
            "--verbose",
            "check",
            "--plan",
            plan.to_str().unwrap(),
        ]))
    };
    assert_eq!(run_once().code, 1);
    for entry in std::fs::read_dir(cache.path().join("compiled")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    let again = run_once();
    assert_eq!(again.code, 1, "{again:?}");
    assert!(
        again.stderr.contains("lets others write to it"),
        "{again:?}"
    );
    assert!(
        again.stderr.contains("compiled component `immutable`"),
        "recompiled instead: {again:?}"
    );
}

#[test]
fn no_cache_compiles_and_writes_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let run = run(provkey().env("PROVKEY_CACHE_DIR", cache.path()).args([
        "--verbose",
        "check",
        "--no-cache",
        "--plan",
        plan.to_str().unwrap(),
    ]));
    assert_eq!(run.code, 1, "{run:?}");
    assert!(!cache.path().join("compiled").exists());
}
