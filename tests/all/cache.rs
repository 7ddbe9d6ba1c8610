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

    // An edited entry fails its MAC: it is ignored, and the policy asked again.
    let text = std::fs::read_to_string(&entry).unwrap();
    let edited = text.replace(&format!(r#""version":"{version}""#), r#""version":"9.9.9""#);
    assert_ne!(text, edited);
    std::fs::write(&entry, edited).unwrap();
    let third = check_json_with_cache(cache.path(), &plan);
    assert!(third.stderr.contains("its MAC does not match"), "{third:?}");
    assert_eq!(reported_version(&third, "immutable"), version, "{third:?}");
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
    let rewritten = std::fs::read_to_string(&entry).unwrap();
    let (header, json) = rewritten.split_once('\n').unwrap();
    assert!(header.starts_with("provkey-cache-entry-v1 "), "{header}");
    let rewritten: serde_json::Value = serde_json::from_str(json).unwrap();
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

/// The compiled entry beside a metadata entry.
fn compiled_entry(metadata_entry: &std::path::Path) -> std::path::PathBuf {
    let path = metadata_entry
        .to_str()
        .unwrap()
        .replace(".metadata.json", ".cwasm");
    assert!(std::path::Path::new(&path).is_file(), "{path}");
    path.into()
}

/// The metadata entry of the policy `id` in `cache`.
fn metadata_entry(cache: &std::path::Path, id: &str) -> std::path::PathBuf {
    std::fs::read_dir(cache.join("compiled"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.to_str().unwrap().ends_with(".metadata.json")
                && std::fs::read_to_string(path)
                    .unwrap()
                    .contains(&format!(r#""id":"{id}""#))
        })
        .unwrap_or_else(|| panic!("no metadata entry for `{id}`"))
}

/// `immutable` must fail the sample plan's in-place update, whatever the cache holds.
fn assert_immutable_still_fails(run: &Run) {
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.json()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["policy"] == "immutable" && f["address"] == "aws_instance.web"),
        "{run:?}"
    );
}

#[test]
fn a_compiled_entry_copied_over_another_components_is_never_loaded() {
    let cache = tempfile::tempdir().unwrap();
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let both = [
        "--policy",
        "immutable",
        "--policy",
        provkey_test_guests::HOSTILE,
        "--format",
        "json",
    ];
    let warm = check_with_cache(cache.path(), &plan, &both);
    assert_eq!(warm.code, 1, "{warm:?}");
    let immutable = compiled_entry(&metadata_entry(cache.path(), "immutable"));
    let hostile = compiled_entry(&metadata_entry(cache.path(), "hostile"));
    // The hostile guest passes everything: loaded as `immutable`, the update would pass.
    std::fs::copy(&hostile, &immutable).unwrap();
    let swapped = check_with_cache(
        cache.path(),
        &plan,
        &["--policy", "immutable", "--format", "json"],
    );
    assert!(
        swapped.stderr.contains("its MAC does not match"),
        "{swapped:?}"
    );
    assert!(
        swapped.stderr.contains("compiled component `immutable`"),
        "{swapped:?}"
    );
    assert_immutable_still_fails(&swapped);
    // The entry was written anew, and loads.
    let again = check_with_cache(
        cache.path(),
        &plan,
        &["--policy", "immutable", "--format", "json"],
    );
    assert!(again.stderr.contains("1 hit(s), 0 miss(es)"), "{again:?}");
    assert_immutable_still_fails(&again);
}

#[test]
fn a_flipped_or_cut_compiled_entry_is_refused_before_it_is_deserialized() {
    let cache = tempfile::tempdir().unwrap();
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let args = ["--policy", "immutable", "--format", "json"];
    assert_eq!(check_with_cache(cache.path(), &plan, &args).code, 1);
    let entry = compiled_entry(&metadata_entry(cache.path(), "immutable"));
    let original = std::fs::read(&entry).unwrap();
    let len = original.len();
    // The header, the start of the ELF image, its middle and its last byte; a cut.
    let damaged: Vec<Vec<u8>> = [30, 100, 200, len / 3, len / 2, len - 1]
        .into_iter()
        .map(|at| {
            let mut bytes = original.clone();
            bytes[at] ^= 0x5a;
            bytes
        })
        .chain([original[..len / 2].to_vec(), Vec::new()])
        .collect();
    for (case, bytes) in damaged.iter().enumerate() {
        std::fs::write(&entry, bytes).unwrap();
        let run = check_with_cache(cache.path(), &plan, &args);
        assert!(
            run.stderr.contains("ignoring the compilation cache entry"),
            "case {case}: {run:?}"
        );
        assert!(
            run.stderr.contains("compiled component `immutable`"),
            "case {case}: {run:?}"
        );
        assert_immutable_still_fails(&run);
    }
}

#[test]
fn a_fifo_in_place_of_a_cache_entry_is_refused_without_blocking() {
    let cache = tempfile::tempdir().unwrap();
    let (_dir, plan) = temp_file("plan.json", SAMPLE_PLAN.as_bytes());
    let args = ["--policy", "immutable", "--format", "json"];
    assert_eq!(check_with_cache(cache.path(), &plan, &args).code, 1);
    let metadata = metadata_entry(cache.path(), "immutable");
    let compiled = compiled_entry(&metadata);
    for entry in [&compiled, &metadata] {
        std::fs::remove_file(entry).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(entry)
            .status()
            .unwrap();
        assert!(made.success());
    }
    let mut cmd = provkey();
    cmd.env("PROVKEY_CACHE_DIR", cache.path())
        .args(["--verbose", "check", "--plan", plan.to_str().unwrap()])
        .args(args);
    let run = run_within(&mut cmd, std::time::Duration::from_secs(30))
        .expect("the check blocked on a FIFO in the cache");
    assert!(run.stderr.contains("not a regular file"), "{run:?}");
    assert_immutable_still_fails(&run);
}
