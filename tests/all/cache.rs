//! The compilation cache: a second run compiles nothing.

use crate::support::*;

/// Runs `provkey --verbose check --plan PLAN ARGS...` with `cache` as the cache.
fn check_with_cache(cache: &std::path::Path, plan: &std::path::Path, args: &[&str]) -> Run {
    run(provkey()
        .env("PROVKEY_CACHE_DIR", cache)
        .args(["--verbose", "check", "--plan", plan.to_str().unwrap()])
        .args(args))
}

/// The same, with the JSON report on stdout.
fn check_json_with_cache(cache: &std::path::Path, plan: &std::path::Path) -> Run {
    check_with_cache(cache, plan, &["--format", "json"])
}

#[test]
fn second_run_loads_every_component_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let run_once = || check_with_cache(cache.path(), &plan, &[]);
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
    let run_once = || check_with_cache(cache.path(), &plan, &[]);
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

/// The metadata entry of the stock `immutable` policy in `cache`.
fn immutable_metadata_entry(cache: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(cache.join("compiled"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.to_str().unwrap().ends_with(".metadata.json")
                && std::fs::read_to_string(path)
                    .unwrap()
                    .contains(r#""id":"immutable""#)
        })
        .expect("no metadata entry for `immutable`")
}

fn reported_version(run: &Run, policy: &str) -> String {
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    report["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == policy)
        .unwrap()["version"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_warm_cache_answers_each_policys_metadata_without_instantiating_it() {
    let cache = tempfile::tempdir().unwrap();
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let first = check_json_with_cache(cache.path(), &plan);
    assert_eq!(first.code, 1, "{first:?}");
    assert!(!first.stderr.contains("read the metadata"), "{first:?}");
    let entry = immutable_metadata_entry(cache.path());
    let version = reported_version(&first, "immutable");

    let second = check_json_with_cache(cache.path(), &plan);
    assert_eq!(second.code, 1, "{second:?}");
    assert!(
        second
            .stderr
            .contains("read the metadata of `immutable` from the compilation cache"),
        "{second:?}"
    );
    assert_eq!(first.stdout, second.stdout);

    // What the report says comes from the entry: an edited entry shows (the
    // directory is private to this user, like the compiled code beside it).
    let text = std::fs::read_to_string(&entry).unwrap();
    let edited = text.replace(&format!(r#""version":"{version}""#), r#""version":"9.9.9""#);
    assert_ne!(text, edited);
    std::fs::write(&entry, edited).unwrap();
    let third = check_json_with_cache(cache.path(), &plan);
    assert_eq!(reported_version(&third, "immutable"), "9.9.9", "{third:?}");
}

#[test]
fn an_unreadable_or_open_metadata_entry_is_ignored_and_the_policy_asked_again() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let first = check_json_with_cache(cache.path(), &plan);
    let version = reported_version(&first, "immutable");
    let entry = immutable_metadata_entry(cache.path());

    // Not JSON: a warning naming the entry, the policy's own answer, a new entry.
    std::fs::write(&entry, b"{\"id\": \"immutable\", trunc").unwrap();
    let garbled = check_json_with_cache(cache.path(), &plan);
    assert_eq!(garbled.code, 1, "{garbled:?}");
    assert!(
        garbled
            .stderr
            .contains("ignoring the compilation cache entry")
            && garbled.stderr.contains(".metadata.json"),
        "{garbled:?}"
    );
    assert!(
        !garbled
            .stderr
            .contains("read the metadata of `immutable` from the compilation cache"),
        "{garbled:?}"
    );
    assert_eq!(reported_version(&garbled, "immutable"), version);
    let rewritten: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
    assert_eq!(rewritten["id"], "immutable");

    // Writable by others: never trusted.
    let text = std::fs::read_to_string(&entry).unwrap();
    std::fs::write(
        &entry,
        text.replace(&format!(r#""version":"{version}""#), r#""version":"6.6.6""#),
    )
    .unwrap();
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    let open = check_json_with_cache(cache.path(), &plan);
    assert!(open.stderr.contains("lets others write to it"), "{open:?}");
    assert_eq!(reported_version(&open, "immutable"), version);
}

#[test]
fn a_policy_file_replaced_in_place_is_loaded_as_the_new_component() {
    // The cache is looked up by the file's digest, without reading the file whole:
    // new bytes at the same path (same size or not) are a new entry.
    let cache = tempfile::tempdir().unwrap();
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let (_policy_dir, policy) = temp_file(
        "policy.wasm",
        &std::fs::read(provkey_test_guests::HOSTILE).unwrap(),
    );
    let check_policy = || {
        check_with_cache(
            cache.path(),
            &plan,
            &["--policy", policy.to_str().unwrap(), "--format", "json"],
        )
    };
    let policy_ids = |run: &Run| -> Vec<String> {
        run.json()["policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect()
    };
    let first = check_policy();
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(policy_ids(&first), ["hostile"]);
    let warm = check_policy();
    assert!(warm.stderr.contains("1 hit(s), 0 miss(es)"), "{warm:?}");

    std::fs::write(
        &policy,
        std::fs::read(provkey_test_guests::HOSTILE_VIEW).unwrap(),
    )
    .unwrap();
    let replaced = check_policy();
    assert!(
        replaced.stderr.contains("compiled component"),
        "{replaced:?}"
    );
    assert_eq!(policy_ids(&replaced), ["hostile-view"], "{replaced:?}");
    let hash = |run: &Run| run.json()["policies"][0]["blake3"].clone();
    assert_eq!(
        hash(&replaced).as_str().unwrap(),
        blake3::hash(&std::fs::read(&policy).unwrap())
            .to_hex()
            .as_str()
    );
    assert_ne!(hash(&first), hash(&replaced));
}
