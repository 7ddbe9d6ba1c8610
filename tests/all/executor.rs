//! The executor's way back and its bounds: no plan content that can fail on the target
//! gets past the checks before the claim (nor `provkey plan`, nor `provkey seal`); an
//! apply keeps everything the last committed state names until the new state commits;
//! `provkey-exec abandon` returns a target to that state after a failure at any step.
//!
//! | What | Test |
//! |---|---|
//! | a file name over `NAME_MAX`, a path over the bound, an artifact path over the bound: `plan` refuses | `overlong_paths_are_refused_by_plan` |
//! | the same in a hand-edited plan: `seal` refuses | `overlong_paths_are_refused_by_seal` |
//! | the same in a signed bundle, or a path too long under this target's directory: refused before the claim | `overlong_paths_are_refused_before_the_claim` |
//! | a crash at every step of a replace, then `abandon`: the committed state, byte for byte, drift clean, then the bundle applies | `abandon_after_a_crash_at_every_step_restores_the_committed_state` |
//! | a crash in a target's first apply, then `abandon`: back to never deployed | `abandon_of_a_first_apply_leaves_a_target_never_deployed` |
//! | a crash at every step of `abandon` itself, then `abandon` again | `a_crash_at_every_step_of_abandon_is_finished_by_running_it_again` |
//! | a writable release directory is drift; a resumed apply rebuilds it read-only | `a_writable_release_is_drift_and_a_resume_rebuilds_it` |
//! | the applied manifest again with a foreign signature and no blobs: refused, not "already applied" | `already_applied_is_answered_only_for_an_authentic_bundle` |
//! | `bundle-link/` and `--target-dir link/`: refused like the paths without the slash | `a_trailing_slash_does_not_get_past_the_link_refusals` |
//! | the bundle directory swapped while a claimed apply runs: the claimed bundle is what applies | `a_bundle_swapped_during_an_apply_is_never_read` |
//! | an old trust root that still trusts a revoked key: refused once the target accepted a newer one | `an_old_trust_root_does_not_bring_a_revoked_key_back` |
//! | a lower policy-set version, another trust root's digest: refused | `signed_fields_are_checked` |
//! | `approve` shows every change with the digests it deploys; a manifest `artifact` the plan does not deploy is refused | `approve_shows_what_deploys_and_the_executor_refuses_another_artifact_label` |
//! | the audit log's tail cut, emptied, or rewritten whole: `log --verify` (state anchor, `--expect-head`) | `the_audit_log_is_anchored_in_the_state_and_outside` |
//! | a refusal the audit log cannot record: named with the refusal | `a_refusal_the_audit_log_cannot_record_is_named` |
//! | `kill -9` at random moments of a replace (200 runs, `PROVKEY_KILL_RUNS` for more), each re-run compared with an uninterrupted run | `random_kill_9_during_applies_converges` |
//! | `verify` of a bundle sealed against a deployed state: accepted, with or without `--target-dir` | `verify_checks_every_bundle_against_its_target_or_says_what_it_did_not_check` |

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::apply::{
    Fx, assert_ok, assert_refused, audit_events, exec, fx, live, log_verifies, no_drift, snapshot,
    state_file, tamper_blob,
};
use crate::attacks::{far_future, write_trust};
use crate::bundle_support::{Copy, copy_dir, keygen};
use crate::support::{provkey, repo, run};
use provkey_core::minisig::Role;
use std::os::unix::fs::PermissionsExt as _;

/// `examples/desired` copied to a temp dir, `app.toml` edited by `edit`.
fn desired_copy(edit: impl FnOnce(&Path, String) -> String) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("desired");
    copy_dir(&repo("examples/desired"), &root);
    let file = root.join("app.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, edit(&root, text)).unwrap();
    (tmp, file)
}

fn plan_of(desired: &Path, out: &Path) -> crate::support::Run {
    run(provkey()
        .arg("plan")
        .arg("--desired")
        .arg(desired)
        .args(["--state", "none", "--out"])
        .arg(out))
}

/// A directory path of `depth` parts of 100 bytes each.
fn deep_dir(depth: usize) -> String {
    (0..depth)
        .map(|i| format!("{i:02}{}", "d".repeat(98)))
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn overlong_paths_are_refused_by_plan() {
    let long_name = format!("etc/{}", "n".repeat(300));
    let long_path = format!("{}/x.conf", deep_dir(11));
    for (bad, needle) in [
        (long_name.as_str(), "more than the 255 a file name may have"),
        (long_path.as_str(), "more than the 1024 a path may have"),
    ] {
        let (tmp, desired) = desired_copy(|_, text| {
            text.replace(
                "\"etc/hello.conf\" = ",
                &format!("\"{bad}\" = \"x\"\n\"etc/hello.conf\" = "),
            )
        });
        let r = plan_of(&desired, &tmp.path().join("plan.json"));
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains(needle), "{r:?}");
        assert!(r.stderr.contains("help: "), "{r:?}");
        assert!(!tmp.path().join("plan.json").exists());
    }
    // An artifact tree holding a path over the bound (each part a legal name).
    let (tmp, desired) = desired_copy(|root, text| {
        let deep = root.join("app/v1").join(deep_dir(11));
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("f"), "deep\n").unwrap();
        text
    });
    let r = plan_of(&desired, &tmp.path().join("plan.json"));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("more than the 1024 a path may have"),
        "{r:?}"
    );
}

/// The example plan with `instance.web`'s files replaced by `files` (configuration
/// digest recomputed, as a compromised planning host could).
fn edited_plan(f: &Fx, files: Value, out: &Path) {
    let good = f.plan("examples/desired/app.toml", "none", "edited-base.json");
    let mut plan: Value = serde_json::from_slice(&std::fs::read(good).unwrap()).unwrap();
    let web = plan["changes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["address"] == "instance.web")
        .unwrap();
    let after = &mut web["after"];
    after["files"] = files;
    after["config_digest"] = provkey_desired::config_digest(&after["config"], &after["files"])
        .unwrap()
        .into();
    std::fs::write(out, serde_json::to_vec_pretty(&plan).unwrap()).unwrap();
}

#[test]
fn overlong_paths_are_refused_by_seal() {
    let f = fx();
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("plan.json");
    edited_plan(
        f,
        serde_json::json!({ format!("etc/{}", "n".repeat(300)): "x" }),
        &plan,
    );
    let out = tmp.path().join("bundle");
    let r = run(provkey()
        .env("PROVKEY_DATA_DIR", tmp.path().join("data"))
        .arg("seal")
        .arg("--plan")
        .arg(&plan)
        .arg("--key")
        .arg(&f.key.secret)
        .args(["--target", "demo", "--out"])
        .arg(&out));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("refusing to seal"), "{r:?}");
    assert!(
        r.stderr.contains("more than the 255 a file name may have"),
        "{r:?}"
    );
    assert!(!out.exists(), "nothing is written");
}

/// Asserts that `dir` is exactly as after `b1` (no claim, same state and files).
#[track_caller]
fn untouched_after_b1(f: &Fx, dir: &Path) {
    assert!(!dir.join("journal.json").exists(), "no claim was taken");
    assert_eq!(state_file(dir), state_file(&f.reference1));
    assert_eq!(snapshot(dir), snapshot(&f.reference1));
    no_drift(dir);
}

#[test]
fn overlong_paths_are_refused_before_the_claim() {
    let f = fx();
    // 1. A signed plan whose file name is over NAME_MAX.
    let (_tmp, dir) = f.after_b1();
    let c = Copy::of(&f.b2);
    tamper_blob(&c, &f.key, "plan", |plan| {
        let web = plan["changes"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|ch| ch["address"] == "instance.web")
            .unwrap();
        let after = &mut web["after"];
        after["files"][format!("etc/{}", "n".repeat(300))] = "x\n".into();
        after["config_digest"] = provkey_desired::config_digest(&after["config"], &after["files"])
            .unwrap()
            .into();
    });
    let r = f.apply(&c.bundle, &dir, &[]);
    assert_refused(
        &r,
        "plan-semantics",
        "more than the 255 a file name may have",
    );
    untouched_after_b1(f, &dir);

    // 2. A signed artifact listing with a path over the bound.
    let (_tmp, dir) = f.after_b1();
    let c = Copy::of(&f.b2);
    tamper_blob(&c, &f.key, "tree/app", |tree| {
        tree["entries"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "path": format!("zz/{}", deep_dir(11)), "kind": "file", "mode": 420, "size": 6,
                "blake3": provkey_core::blake3_hex(b"pwned\n"),
            }));
    });
    let r = f.apply(&c.bundle, &dir, &[]);
    assert_refused(&r, "plan-semantics", "more than the 1024 a path may have");
    untouched_after_b1(f, &dir);

    // 3. A path within the bound, under a target directory so deep that the release
    //    would pass PATH_MAX: refused before the claim, not half-way.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(deep_dir(31)).join("target");
    assert!(dir.as_os_str().len() > 3100);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    assert_ok(&f.apply(&f.b1, &dir, &[]));
    let c = Copy::of(&f.b2);
    tamper_blob(&c, &f.key, "plan", |plan| {
        let web = plan["changes"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|ch| ch["address"] == "instance.web")
            .unwrap();
        let after = &mut web["after"];
        after["files"][format!("{}/x", deep_dir(10))] = "x\n".into();
        after["config_digest"] = provkey_desired::config_digest(&after["config"], &after["files"])
            .unwrap()
            .into();
    });
    let before = state_file(&dir);
    let r = f.apply(&c.bundle, &dir, &[]);
    assert_refused(&r, "plan-semantics", "more than the 4095 the system allows");
    assert!(!dir.join("journal.json").exists(), "no claim was taken");
    assert_eq!(state_file(&dir), before);
    no_drift(&dir);
}

fn abandon(dir: &Path) -> crate::support::Run {
    exec(&["abandon", "--target-dir", dir.to_str().unwrap()])
}

/// Every release directory under `reference`'s `releases/`.
fn releases_of(reference: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(reference.join("releases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// After `abandon`: exactly the committed state `reference` holds, drift clean, log
/// intact, no claim.
#[track_caller]
fn is_back_at(dir: &Path, reference: &Path, what: &str) {
    assert!(!dir.join("journal.json").exists(), "{what}");
    assert_eq!(
        String::from_utf8(state_file(dir)).unwrap(),
        String::from_utf8(state_file(reference)).unwrap(),
        "{what}"
    );
    assert_eq!(snapshot(dir), snapshot(reference), "{what}");
    no_drift(dir);
    log_verifies(dir);
}

#[test]
fn abandon_after_a_crash_at_every_step_restores_the_committed_state() {
    let f = fx();
    let committed = releases_of(&f.reference1);
    let mut crashes = 0;
    for k in 1.. {
        let (_tmp, dir) = f.after_b1();
        let r = run(f
            .apply_cmd(&f.b2, &dir)
            .env("PROVKEY_EXEC_FAILPOINT", format!("#{k}")));
        if r.code == 0 {
            break;
        }
        assert_eq!(r.code, -1, "failpoint #{k} must abort the process: {r:?}");
        crashes += 1;
        let what = format!("#{k}: {}", r.stderr.lines().last().unwrap_or_default());
        let claimed = dir.join("journal.json").exists();
        let committed_new = state_file(&dir) == state_file(&f.reference2);
        if claimed && !committed_new {
            // Until the commit, every release of the committed state is still there.
            for id in &committed {
                assert!(dir.join("releases").join(id).is_dir(), "{what}: {id}");
            }
        }
        let a = abandon(&dir);
        assert_ok(&a);
        if !claimed {
            assert!(a.stdout.starts_with("nothing to abandon"), "{what}: {a:?}");
        }
        if committed_new {
            is_back_at(&dir, &f.reference2, &what);
            continue;
        }
        is_back_at(&dir, &f.reference1, &what);
        if claimed {
            assert!(
                a.stdout.starts_with("abandoned the apply of manifest"),
                "{a:?}"
            );
            let events = audit_events(&dir);
            let last = events.last().unwrap();
            assert_eq!(last["event"], "abandoned", "{what}");
            let m2 = provkey_core::blake3_hex(&std::fs::read(f.b2.join("manifest.json")).unwrap());
            assert_eq!(last["manifest"], m2.as_str(), "{what}");
        }
        // The abandoned bundle was not consumed: it applies in full afterwards.
        assert_ok(&f.apply(&f.b2, &dir, &[]));
        is_back_at(&dir, &f.reference2, &what);
    }
    eprintln!("replace: abandoned after a crash at {crashes} failpoints");
    assert!(crashes >= 16, "only {crashes} failpoints");
}

#[test]
fn a_crash_at_every_step_of_abandon_is_finished_by_running_it_again() {
    let f = fx();
    let mut crashes = 0;
    for k in 1.. {
        let (_tmp, dir) = f.after_b1();
        // Crash the replace after both instances were switched to v2.
        let r = run(f
            .apply_cmd(&f.b2, &dir)
            .env("PROVKEY_EXEC_FAILPOINT", "destroy:instance.web"));
        assert_eq!(r.code, -1, "{r:?}");
        assert!(dir.join("journal.json").exists());
        assert_ne!(
            std::fs::read_link(dir.join("live/web")).unwrap(),
            std::fs::read_link(f.reference1.join("live/web")).unwrap()
        );
        let a = run(crate::support::provkey_exec()
            .args(["abandon", "--target-dir", dir.to_str().unwrap()])
            .env("PROVKEY_EXEC_FAILPOINT", format!("#{k}")));
        if a.code == 0 {
            is_back_at(&dir, &f.reference1, "uninterrupted abandon");
            break;
        }
        assert_eq!(a.code, -1, "#{k}: {a:?}");
        crashes += 1;
        let again = abandon(&dir);
        assert_ok(&again);
        is_back_at(&dir, &f.reference1, &format!("#{k}"));
        let abandoned = audit_events(&dir)
            .iter()
            .filter(|e| e["event"] == "abandoned")
            .count();
        assert_eq!(abandoned, 1, "#{k}: recorded once");
        let web = live(&dir, "web");
        assert!(web.is_dir());
    }
    eprintln!("abandon: crashed and finished at {crashes} failpoints");
    assert!(crashes >= 8, "only {crashes} failpoints");
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_writable_release_is_drift_and_a_resume_rebuilds_it() {
    let f = fx();
    // Drift sees a release directory, or one inside it, made writable.
    let (_tmp, dir) = f.after_b1();
    let web = live(&dir, "web");
    set_mode(&web, 0o755);
    set_mode(&web.join("files/etc"), 0o775);
    let r = exec(&["drift", "--target-dir", dir.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.starts_with("drift: 2 difference(s)"), "{r:?}");
    assert!(r.stdout.contains("found directory mode 755"), "{r:?}");
    assert!(
        r.stdout.contains("files/etc") && r.stdout.contains("found directory mode 775"),
        "{r:?}"
    );

    // A crash right after a release was placed, the release then found writable (as
    // a crash between its rename and its chmod left it): the re-run rebuilds it.
    let (_tmp, dir) = f.after_b1();
    let r = run(f
        .apply_cmd(&f.b2, &dir)
        .env("PROVKEY_EXEC_FAILPOINT", "release:instance.api"));
    assert_eq!(r.code, -1, "{r:?}");
    let placed: Vec<PathBuf> = std::fs::read_dir(dir.join("releases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            !f.reference1
                .join("releases")
                .join(p.file_name().unwrap())
                .exists()
        })
        .collect();
    assert_eq!(placed.len(), 1, "{placed:?}");
    assert_eq!(
        std::fs::metadata(&placed[0]).unwrap().permissions().mode() & 0o777,
        0o555,
        "read-only before it was renamed into place"
    );
    set_mode(&placed[0], 0o755);
    assert_ok(&f.apply(&f.b2, &dir, &[]));
    assert_eq!(snapshot(&dir), snapshot(&f.reference2));
    no_drift(&dir);
}

#[test]
fn already_applied_is_answered_only_for_an_authentic_bundle() {
    let f = fx();
    let (tmp, dir) = f.after_b1();
    let events = audit_events(&dir).len();
    // The applied manifest, byte for byte, signed by a key the target does not trust,
    // without its blobs.
    let c = Copy::of(&f.b1);
    std::fs::remove_dir_all(c.bundle.join("blobs")).unwrap();
    let stranger = keygen(tmp.path(), "plan-signer");
    c.resign(&stranger.load(), |_| {});
    assert_eq!(
        c.manifest(),
        std::fs::read(f.b1.join("manifest.json")).unwrap()
    );
    let r = f.apply(&c.bundle, &dir, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("refused at check `signature`"), "{r:?}");
    assert!(!r.stdout.contains("already applied"), "{r:?}");
    let after = audit_events(&dir);
    assert_eq!(after.len(), events + 1, "one refusal line");
    assert_eq!(after.last().unwrap()["event"], "refused");
    // The real bundle again is still "already applied".
    let r = f.apply(&f.b1, &dir, &[]);
    assert_ok(&r);
    assert!(r.stdout.starts_with("already applied"), "{r:?}");
}

#[test]
fn a_trailing_slash_does_not_get_past_the_link_refusals() {
    use std::os::unix::fs::symlink;
    let f = fx();
    let tmp = tempfile::tempdir().unwrap();
    let bundle_link = tmp.path().join("bundle-link");
    symlink(&f.b1, &bundle_link).unwrap();
    for shown in ["bundle-link", "bundle-link/", "bundle-link/."] {
        let path = format!("{}/{shown}", tmp.path().display());
        let r = run(crate::support::provkey_exec()
            .args(["verify", &path, "--trust"])
            .arg(&f.key.public)
            .args(["--target", "demo", "--now", &f.now.to_string()]));
        assert_eq!(r.code, 1, "{shown}: {r:?}");
        assert!(r.stderr.contains("is a symbolic link"), "{shown}: {r:?}");
        let (_t, dir) = f.fresh();
        let r = f.apply(Path::new(&path), &dir, &[]);
        assert_eq!(r.code, 1, "{shown}: {r:?}");
        assert!(r.stderr.contains("is a symbolic link"), "{shown}: {r:?}");
    }
    let (tmp, dir) = f.after_b1();
    let link = tmp.path().join("link");
    symlink(&dir, &link).unwrap();
    for shown in ["link", "link/", "link/."] {
        let path = PathBuf::from(format!("{}/{shown}", tmp.path().display()));
        let r = f.apply(&f.b2, &path, &[]);
        assert_eq!(r.code, 2, "{shown}: {r:?}");
        assert!(r.stderr.contains("is a symbolic link"), "{shown}: {r:?}");
        let r = exec(&["drift", "--target-dir", path.to_str().unwrap()]);
        assert_eq!(r.code, 2, "{shown}: {r:?}");
    }
    assert_eq!(state_file(&dir), state_file(&f.reference1));
}

#[test]
fn a_bundle_swapped_during_an_apply_is_never_read() {
    use std::io::{BufRead as _, Write as _};
    let f = fx();
    let (tmp, dir) = f.after_b1();
    // A crashed apply of b2 leaves its claim.
    let r = run(f
        .apply_cmd(&f.b2, &dir)
        .env("PROVKEY_EXEC_FAILPOINT", "claimed"));
    assert_eq!(r.code, -1, "{r:?}");
    let path = tmp.path().join("incoming");
    copy_dir(&f.b2, &path);
    // Held right after the bundle was opened, the directory is swapped for another
    // valid bundle (the same plan sealed again), then the apply goes on.
    let mut child = f
        .apply_cmd(&path, &dir)
        .env("PROVKEY_EXEC_PAUSE", "opened")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("paused at opened") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no pause");
    }
    std::fs::rename(&path, tmp.path().join("incoming.old")).unwrap();
    copy_dir(&f.b2_again, &path);
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // What applied is the claimed bundle, read through the handle opened first.
    let m2 = provkey_core::blake3_hex(&std::fs::read(f.b2.join("manifest.json")).unwrap());
    let state: Value = serde_json::from_slice(&state_file(&dir)).unwrap();
    assert_eq!(state["state"]["applied_manifest"], m2.as_str());
    assert_eq!(state_file(&dir), state_file(&f.reference2));
    no_drift(&dir);
}

/// The demo desired state sealed with `--trust trust` by `key`, against `state`.
fn seal_with_trust(
    f: &Fx,
    desired: &str,
    state: &str,
    key: &crate::bundle_support::KeyPair,
    trust: &Path,
    out: &Path,
) {
    let plan = f.plan(
        desired,
        state,
        &format!("tr-{}.json", crate::bundle_support::unique()),
    );
    let mut cmd = f.seal_cmd(&plan, desired, state, out);
    cmd.arg("--trust").arg(trust);
    // `seal_cmd` signs with the fixture key: sign with `key` instead.
    let args: Vec<std::ffi::OsString> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut sealed = provkey();
    sealed.env("PROVKEY_DATA_DIR", tmp_data(out));
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--key" {
            it.next();
            sealed.arg("--key").arg(&key.secret);
        } else {
            sealed.arg(a);
        }
    }
    let r = run(&mut sealed);
    assert_eq!(r.code, 0, "{r:?}");
}

/// One sequence counter for the bundles sealed beside `out`.
fn tmp_data(out: &Path) -> PathBuf {
    out.parent().unwrap().join("seal-data")
}

#[test]
fn an_old_trust_root_does_not_bring_a_revoked_key_back() {
    let f = fx();
    let tmp = tempfile::tempdir().unwrap();
    let root = keygen(tmp.path(), "root");
    let revoked = keygen(tmp.path(), "plan-signer");
    let successor = keygen(tmp.path(), "plan-signer");
    let key = |k: &crate::bundle_support::KeyPair, role: Role| {
        (k.load().public().to_base64(), vec![role])
    };
    let v1 = write_trust(
        tmp.path(),
        "trust-v1.json",
        1,
        far_future(),
        &[
            key(&root, Role::Root),
            key(&revoked, Role::PlanSigner),
            key(&successor, Role::PlanSigner),
        ],
        &[&root.load()],
        &[],
    );
    // Version 2 revokes `revoked`.
    let v2 = write_trust(
        tmp.path(),
        "trust-v2.json",
        2,
        far_future(),
        &[key(&root, Role::Root), key(&successor, Role::PlanSigner)],
        &[&root.load()],
        &[],
    );
    let dir = tmp.path().join("target");
    let apply = |bundle: &Path, trust: &[&Path]| {
        let mut cmd = crate::support::provkey_exec();
        cmd.arg("apply").arg(bundle).arg("--trust").arg(trust[0]);
        for t in &trust[1..] {
            cmd.arg("--trust-update").arg(t);
        }
        cmd.args([
            "--target",
            "demo",
            "--now",
            &f.now.to_string(),
            "--target-dir",
        ])
        .arg(&dir);
        run(&mut cmd)
    };
    let state_now = |name: &str| {
        let r = exec(&["state", "--target-dir", dir.to_str().unwrap()]);
        let p = tmp.path().join(name);
        std::fs::write(&p, &r.stdout).unwrap();
        p.to_str().unwrap().to_owned()
    };
    // v1: applied under trust root version 1.
    let b1 = tmp.path().join("b1");
    seal_with_trust(f, "examples/desired/app.toml", "none", &revoked, &v1, &b1);
    assert_ok(&apply(&b1, &[&v1]));
    // v2, signed by the successor under version 2: the target now holds version 2.
    let s1 = state_now("s1.json");
    let b2 = tmp.path().join("b2");
    seal_with_trust(f, "examples/desired/app-v2.toml", &s1, &successor, &v2, &b2);
    assert_ok(&apply(&b2, &[&v1, &v2]));
    // The revoked key signs a bundle under version 1, and the executor is given the
    // version 1 file again: refused, nothing claimed.
    let s2 = state_now("s2.json");
    let b3 = tmp.path().join("b3");
    seal_with_trust(f, "examples/desired/app.toml", &s2, &revoked, &v1, &b3);
    let before = state_file(&dir);
    let r = apply(&b3, &[&v1]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("refused at check `trust-root`"), "{r:?}");
    assert!(r.stderr.contains("already accepted version 2"), "{r:?}");
    assert_eq!(state_file(&dir), before);
    assert!(!dir.join("journal.json").exists());
    let state: Value = serde_json::from_slice(&state_file(&dir)).unwrap();
    assert_eq!(state["trust_root"]["version"], 2);
    // `verify --target-dir` says the same.
    let r = run(crate::support::provkey_exec()
        .arg("verify")
        .arg(&b3)
        .arg("--trust")
        .arg(&v1)
        .args([
            "--target",
            "demo",
            "--now",
            &f.now.to_string(),
            "--target-dir",
        ])
        .arg(&dir));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("refused at check `trust-root`"), "{r:?}");
}

#[test]
fn signed_fields_are_checked() {
    let f = fx();
    // A policy-set version below the one the target applied.
    let (_tmp, dir) = f.after_b1();
    let c = Copy::of(&f.b2);
    c.resign(&f.key.load(), |m| m["policy_set"]["version"] = 0.into());
    let r = f.apply(&c.bundle, &dir, &[]);
    assert_refused(&r, "policy", "below version 1");
    untouched_after_b1(f, &dir);
    // A trust-root digest that is not the executor's trust root.
    let c = Copy::of(&f.b2);
    c.resign(&f.key.load(), |m| {
        m["trust_root"]["blake3"] = "0".repeat(64).into();
    });
    let r = f.apply(&c.bundle, &dir, &[]);
    assert_refused(&r, "target", "another trust root");
    // A policy-set digest that is not the digest of the policies that ran.
    let c = Copy::of(&f.b2);
    c.resign(&f.key.load(), |m| {
        m["policy_set"]["blake3"] = "1".repeat(64).into();
    });
    let r = f.apply(&c.bundle, &dir, &[]);
    assert_refused(&r, "policy", "`policy_set.blake3`");
    // An issuer key id that is not the signer's.
    let c = Copy::of(&f.b2);
    c.resign(&f.key.load(), |m| {
        m["issuer"]["minisign_keyid"] = "0123456789ABCDEF".into();
    });
    let r = f.apply(&c.bundle, &dir, &[]);
    assert_refused(&r, "issuer", "`issuer.minisign_keyid`");
    untouched_after_b1(f, &dir);
}

#[test]
fn verify_checks_every_bundle_against_its_target_or_says_what_it_did_not_check() {
    let f = fx();
    let verify = |bundle: &Path, extra: &[&str]| {
        run(crate::support::provkey_exec()
            .arg("verify")
            .arg(bundle)
            .arg("--trust")
            .arg(&f.key.public)
            .args(["--target", "demo", "--now", &f.now.to_string()])
            .args(extra))
    };
    // b2 was sealed against the state after b1: verified without a state, with the
    // state-dependent checks listed as not checked.
    let r = verify(&f.b2, &[]);
    assert_ok(&r);
    assert!(r.stdout.starts_with("verified: "), "{r:?}");
    assert!(
        r.stdout.contains("not checked (no --target-dir): replay"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("not checked (no --target-dir): base-state"),
        "{r:?}"
    );
    // Against the target it applies to: verified; against one where it is stale or
    // already applied: refused, with the reason.
    let (_tmp, dir) = f.after_b1();
    let d = dir.to_str().unwrap();
    let r = verify(&f.b2, &["--target-dir", d]);
    assert_ok(&r);
    assert!(r.stdout.contains("state serial 1"), "{r:?}");
    assert!(!r.stdout.contains("not checked"), "{r:?}");
    let r = verify(&f.b2, &["--target-dir", f.reference2.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("refused at check `replay`"), "{r:?}");
    // Read only: nothing written to the target.
    assert_eq!(state_file(&dir), state_file(&f.reference1));
}

#[test]
fn the_number_of_signature_files_is_capped_before_any_is_read() {
    let f = fx();
    let c = Copy::of(&f.b1);
    let sig = std::fs::read(c.sig_path()).unwrap();
    for i in 0..200u64 {
        std::fs::write(
            c.bundle
                .join(format!("manifest.json.{:016X}.minisig", 0x1000 + i)),
            &sig,
        )
        .unwrap();
    }
    let r = run(crate::support::provkey_exec()
        .arg("verify")
        .arg(&c.bundle)
        .arg("--trust")
        .arg(&f.key.public)
        .args(["--target", "demo", "--now", &f.now.to_string()]));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("refused at check `open`"), "{r:?}");
    assert!(
        r.stderr.contains("201 signature files, more than the 64"),
        "{r:?}"
    );
}

#[test]
fn a_closed_standard_output_is_reported_not_a_panic() {
    let f = fx();
    let (_tmp, dir) = f.fresh();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let r = run(f.apply_cmd(&f.b1, &dir).stdout(writer));
    assert_eq!(r.code, 0, "the apply committed: {r:?}");
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    assert!(
        r.stderr
            .contains("warning: cannot write to standard output: Broken pipe"),
        "{r:?}"
    );
    assert_eq!(state_file(&dir), state_file(&f.reference1));
    no_drift(&dir);
}

/// A tmpfs of `size` mounted at `dir` (root only; `None` where mounting is not
/// allowed, as in an unprivileged container).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` up to its last byte.
fn fill(dir: &Path) {
    use std::io::Write as _;
    let mut file = std::fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![0u8; 4096];
    while file.write_all(&chunk).is_ok() {}
    let small = [0u8; 1];
    while file.write_all(&small).is_ok() {}
    let _ = file.sync_all();
}

#[test]
fn a_full_disk_names_the_real_error_and_never_drops_an_audit_line_silently() {
    let f = fx();
    let tmp = tempfile::tempdir().unwrap();
    let Some(mounted) = Tmpfs::mount(&tmp.path().join("disk"), "4m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let dir = mounted.0.join("target");
    assert_ok(&f.apply(&f.b1, &dir, &[]));
    let lines = audit_events(&dir).len();
    fill(&mounted.0);
    // Refused (a replay) on a full disk: the refusal is reported, and so is the lost
    // audit line.
    let c = Copy::of(&f.b2);
    c.resign(&keygen(tmp.path(), "plan-signer").load(), |_| {});
    let r = f.apply(&c.bundle, &dir, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("refused at check `signature`"), "{r:?}");
    eprintln!("refusal on a full disk: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    if audit_events(&dir).len() == lines {
        assert!(r.stderr.contains("the audit log lost"), "{r:?}");
        assert!(r.stderr.contains("No space left on device"), "{r:?}");
    }
    // The apply of b2: whatever step fails, it names the real error and leaves a target
    // that `abandon` returns to the committed state once space is back.
    let r = f.apply(&f.b2, &dir, &[]);
    eprintln!("apply on a full disk: {}", r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    assert!(!r.stderr.contains("cannot read `state.json`"), "{r:?}");
    assert!(r.stderr.contains("No space left on device"), "{r:?}");
    std::fs::remove_file(mounted.0.join("filler")).unwrap();
    assert_ok(&abandon(&dir));
    assert_eq!(state_file(&dir), state_file(&f.reference1));
    no_drift(&dir);
    log_verifies(&dir);
    assert_ok(&f.apply(&f.b2, &dir, &[]));
    assert_eq!(state_file(&dir), state_file(&f.reference2));
}

#[test]
fn approve_shows_what_deploys_and_the_executor_refuses_another_artifact_label() {
    let f = fx();
    let tmp = tempfile::tempdir().unwrap();
    // A benign-looking `--artifact` label on a plan that deploys another artifact.
    let label = tmp.path().join("benign.img");
    std::fs::write(&label, "the reviewed image\n").unwrap();
    let plan = f.plan(
        "examples/desired/app-v2.toml",
        f.s1.to_str().unwrap(),
        "labelled.json",
    );
    let bundle = tmp.path().join("bundle");
    let mut cmd = f.seal_cmd(
        &plan,
        "examples/desired/app-v2.toml",
        f.s1.to_str().unwrap(),
        &bundle,
    );
    cmd.arg("--artifact")
        .arg(&label)
        .args(["--artifact-uri", "oci://registry.example/reviewed@1"]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{r:?}");
    let approver = keygen(tmp.path(), "approver");
    let r = run(provkey()
        .arg("approve")
        .arg(&bundle)
        .arg("--key")
        .arg(&approver.secret));
    assert_eq!(r.code, 0, "{r:?}");
    let deployed: Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
    for c in deployed["changes"].as_array().unwrap() {
        let address = c["address"].as_str().unwrap();
        assert!(
            r.stdout
                .contains(&format!("replace  {address}  deploys artifact blake3:")),
            "{address}: {r:?}"
        );
        if let Some(config) = c["after"]["config_digest"].as_str() {
            assert!(r.stdout.contains(&format!("config {config}")), "{r:?}");
        }
    }
    assert!(r.stdout.contains("policies ("), "{r:?}");
    assert!(r.stdout.contains(": allow (module blake3 "), "{r:?}");
    // The executor refuses it: the manifest's artifact is not what the plan deploys.
    let (_t, dir) = f.after_b1();
    let r = f.apply(&bundle, &dir, &[]);
    assert_refused(
        &r,
        "plan-semantics",
        "the approved artifact is not what the plan deploys",
    );
    untouched_after_b1(f, &dir);
}

/// Rewrites `lines` as a consistent chain (every `prev` recomputed) and returns its head.
fn rechain(entries: &mut [Value]) -> (String, String) {
    let mut prev = "0".repeat(64);
    let mut text = String::new();
    for e in entries.iter_mut() {
        e["prev"] = prev.clone().into();
        let line = serde_json_canonicalizer::to_string(e).unwrap();
        prev = provkey_core::blake3_hex(line.as_bytes());
        text.push_str(&line);
        text.push('\n');
    }
    (text, prev)
}

#[test]
fn the_audit_log_is_anchored_in_the_state_and_outside() {
    let f = fx();
    let (_tmp, dir) = f.after_b1();
    assert_ok(&f.apply(&f.b2, &dir, &[]));
    let d = dir.to_str().unwrap();
    let log = dir.join("audit.log");
    let good = std::fs::read_to_string(&log).unwrap();
    log_verifies(&dir);
    let lines: Vec<&str> = good.lines().collect();
    let kept = format!(
        "{}:{}",
        lines.len(),
        provkey_core::blake3_hex(lines.last().unwrap().as_bytes())
    );
    let broken = |text: &str, needle: &str| {
        std::fs::write(&log, text).unwrap();
        let r = exec(&["log", "--verify", "--target-dir", d]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains(needle), "`{needle}`: {r:?}");
    };
    // The last apply's `applied` line dropped (a whole line: the chain still holds).
    broken(
        &format!("{}\n", lines[..lines.len() - 1].join("\n")),
        "has no `applied` line",
    );
    // Cut below the anchor; emptied.
    broken(&format!("{}\n", lines[0]), "were cut from the end");
    broken("", "were cut from the end");
    // Rewritten whole with recomputed links (the first line's detail changed).
    let mut entries: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    entries[0]["detail"] = "nothing to see".into();
    let (text, new_head) = rechain(&mut entries);
    broken(&text, "the log was rewritten");
    // The head, printed to keep outside the target, is what the good log ends with.
    std::fs::write(&log, &good).unwrap();
    let head = exec(&["log", "--head", "--target-dir", d]);
    assert_ok(&head);
    let printed: Value = serde_json::from_str(head.stdout.trim()).unwrap();
    assert_eq!(
        format!("{}:{}", printed["seq"], printed["blake3"].as_str().unwrap()),
        kept
    );
    assert_ok(&exec(&[
        "log",
        "--verify",
        "--expect-head",
        &kept,
        "--target-dir",
        d,
    ]));
    // Rewritten whole, the state's anchor and checksum too: only a head kept outside
    // the target tells.
    std::fs::write(&log, &text).unwrap();
    let mut state: Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    let anchored = state["audit_head"]["seq"].as_u64().unwrap() as usize;
    let anchor_line = text.lines().nth(anchored - 1).unwrap();
    state["audit_head"]["blake3"] = provkey_core::blake3_hex(anchor_line.as_bytes()).into();
    let object = state.as_object_mut().unwrap();
    object.remove("checksum");
    let sum = provkey_core::blake3_hex(&serde_json_canonicalizer::to_vec(&state).unwrap());
    state["checksum"] = sum.into();
    std::fs::write(
        dir.join("state.json"),
        serde_json::to_vec_pretty(&state).unwrap(),
    )
    .unwrap();
    assert_ne!(new_head, kept);
    log_verifies(&dir);
    let r = exec(&["log", "--verify", "--expect-head", &kept, "--target-dir", d]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("the head kept outside"), "{r:?}");
}

/// A small deterministic generator (xorshift64*): the runs are reproducible from the
/// printed seed.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_kill_9_during_applies_converges() {
    let f = fx();
    let runs: u64 = std::env::var("PROVKEY_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed = std::env::var("PROVKEY_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| provkey_core::unix_now() | 1);
    let mut rng = Xorshift(seed);
    // How long an uninterrupted replace takes here: kills are spread over 1.5 times that.
    let (_t, probe) = f.after_b1();
    let started = std::time::Instant::now();
    assert_ok(&f.apply(&f.b2, &probe, &[]));
    let span = (started.elapsed().as_micros() as u64 * 3 / 2).max(1);
    let reference_log = audit_events(&f.reference2).len();
    let (mut killed, mut claimed, mut finished_first, mut divergences) = (0, 0, 0, 0);
    for run_no in 0..runs {
        let (_tmp, dir) = f.after_b1();
        let mut child = f
            .apply_cmd(&f.b2, &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(rng.next() % span));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if status.success() {
            finished_first += 1;
        } else {
            killed += 1;
        }
        if dir.join("journal.json").exists() {
            claimed += 1;
        }
        let again = f.apply(&f.b2, &dir, &[]);
        let what = format!("run {run_no} (seed {seed})");
        let same = again.code == 0
            && !dir.join("journal.json").exists()
            && state_file(&dir) == state_file(&f.reference2)
            && snapshot(&dir) == snapshot(&f.reference2)
            && exec(&["drift", "--target-dir", dir.to_str().unwrap()]).code == 0
            && exec(&["log", "--verify", "--target-dir", dir.to_str().unwrap()]).code == 0
            && audit_events(&dir)
                .iter()
                .filter(|e| e["event"] == "applied")
                .count()
                == 2
            && audit_events(&dir).len() >= reference_log;
        if !same {
            divergences += 1;
            eprintln!("divergence at {what}: {again:?}");
        }
    }
    eprintln!(
        "kill -9 during a replace: {runs} runs (seed {seed}), {killed} killed ({claimed} with \
         the claim standing), {finished_first} finished before the kill, {divergences} \
         divergences from the uninterrupted run"
    );
    assert_eq!(divergences, 0);
}

#[test]
fn abandon_of_a_first_apply_leaves_a_target_never_deployed() {
    let f = fx();
    let (_tmp, dir) = f.fresh();
    let r = run(f
        .apply_cmd(&f.b1, &dir)
        .env("PROVKEY_EXEC_FAILPOINT", "switch:instance.web"));
    assert_eq!(r.code, -1, "{r:?}");
    assert!(dir.join("live/api").exists());
    let a = abandon(&dir);
    assert_ok(&a);
    assert!(a.stdout.contains("back at never deployed"), "{a:?}");
    assert!(!dir.join("journal.json").exists());
    for sub in ["live", "releases", "store/blobs", "store/trees"] {
        assert_eq!(
            std::fs::read_dir(dir.join(sub)).unwrap().count(),
            0,
            "{sub}"
        );
    }
    let r = exec(&["state", "--target-dir", dir.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("was never deployed"), "{r:?}");
    log_verifies(&dir);
    assert_eq!(audit_events(&dir).last().unwrap()["event"], "abandoned");
    assert_ok(&f.apply(&f.b1, &dir, &[]));
    assert_eq!(state_file(&dir), state_file(&f.reference1));
    assert_eq!(snapshot(&dir), snapshot(&f.reference1));
}

#[test]
fn a_refusal_the_audit_log_cannot_record_is_named() {
    let f = fx();
    let (tmp, dir) = f.after_b1();
    // A damaged state (refused), and an audit log that cannot be appended to (a second
    // hard link: the executor never writes such a file).
    std::fs::write(dir.join("state.json"), "{").unwrap();
    std::fs::hard_link(dir.join("audit.log"), tmp.path().join("second-link")).unwrap();
    let before = std::fs::read(dir.join("audit.log")).unwrap();
    let r = f.apply(&f.b2, &dir, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("`state.json` is damaged"), "{r:?}");
    assert!(
        r.stderr
            .contains("and the audit log lost what it was to record: its `refused` line"),
        "{r:?}"
    );
    assert_eq!(std::fs::read(dir.join("audit.log")).unwrap(), before);
}
