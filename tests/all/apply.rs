//! `provkey-exec apply`, `state`, `drift` and `log` end to end: the real `provkey plan`
//! and `provkey seal --desired --state` on the example desired state, the real
//! executor binary on real target directories.
//!
//! | What | Test |
//! |---|---|
//! | apply v1 then v2 (replace), releases and live pointers | `apply_v1_then_v2_replaces_every_instance` |
//! | the state output feeds `provkey plan --state` | same test, last step |
//! | stale plan; wrong lineage; no state | `a_stale_plan_and_a_wrong_lineage_are_refused` |
//! | replayed plan (sequence, nonce); same bundle again | `a_replayed_plan_is_refused` |
//! | bundle for another target; directory of another target | `a_bundle_for_another_target_is_refused` |
//! | two executors racing on one target | `two_executors_racing_one_wins_the_other_is_locked_out` |
//! | a crash at every step, then a re-run | `a_crash_at_every_step_of_the_first_apply_resumes`, `…_of_a_replace_resumes` |
//! | symlink, `..`, absolute path, hard link, FIFO | `planted_links_and_fifos_never_reach_outside_the_root`, `dot_dot_and_absolute_paths_in_a_bundle_are_refused` |
//! | drift after tampering | `drift_reports_every_tampered_file` |
//! | audit log tampering | `log_verify_detects_a_tampered_audit_log` |

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::bundle_support::{Copy, KeyPair, keygen};
use crate::support::{Run, provkey, provkey_exec, repo, run};

pub(crate) struct Fx {
    pub(crate) dir: PathBuf,
    pub(crate) data: PathBuf,
    pub(crate) key: KeyPair,
    pub(crate) now: u64,
    /// v1 from nothing.
    pub(crate) b1: PathBuf,
    /// v2 (a replace of everything) against the state after `b1`.
    pub(crate) b2: PathBuf,
    /// The same plan as `b2` sealed again (stale once `b2` is applied).
    pub(crate) b2_again: PathBuf,
    /// `provkey-exec state` after `b1`.
    pub(crate) s1: PathBuf,
    /// The uninterrupted runs: after `b1`, and after `b1` then `b2`.
    pub(crate) reference1: PathBuf,
    pub(crate) reference2: PathBuf,
}

pub(crate) fn fx() -> &'static Fx {
    static FX: OnceLock<Fx> = OnceLock::new();
    FX.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("provkey-apply")
            .tempdir_in(crate::support::run_tmp())
            .unwrap()
            .keep();
        let data = dir.join("data");
        let key = keygen(&dir, "plan-signer");
        let now = provkey_core::unix_now();
        let fx = Fx {
            b1: dir.join("b1"),
            b2: dir.join("b2"),
            b2_again: dir.join("b2-again"),
            s1: dir.join("s1.json"),
            reference1: dir.join("ref1"),
            reference2: dir.join("ref2"),
            dir,
            data,
            key,
            now,
        };
        let p1 = fx.plan("examples/desired/app.toml", "none", "p1.json");
        fx.seal(&p1, "examples/desired/app.toml", "none", &fx.b1.clone());
        assert_ok(&fx.apply(&fx.b1, &fx.reference1, &[]));
        let s = fx.state(&fx.reference1);
        std::fs::write(&fx.s1, &s.stdout).unwrap();
        let s1 = fx.s1.to_str().unwrap().to_owned();
        let p2 = fx.plan("examples/desired/app-v2.toml", &s1, "p2.json");
        fx.seal(&p2, "examples/desired/app-v2.toml", &s1, &fx.b2.clone());
        fx.seal(
            &p2,
            "examples/desired/app-v2.toml",
            &s1,
            &fx.b2_again.clone(),
        );
        assert_ok(&fx.apply(&fx.b1, &fx.reference2, &[]));
        assert_ok(&fx.apply(&fx.b2, &fx.reference2, &[]));
        fx
    })
}

impl Fx {
    pub(crate) fn plan(&self, desired: &str, state: &str, out: &str) -> PathBuf {
        let out = self.dir.join(out);
        let r = run(provkey()
            .arg("plan")
            .arg("--desired")
            .arg(repo(desired))
            .args(["--state", state, "--out"])
            .arg(&out));
        assert_eq!(r.code, 0, "{r:?}");
        out
    }

    pub(crate) fn seal_cmd(&self, plan: &Path, desired: &str, state: &str, out: &Path) -> Command {
        let mut cmd = provkey();
        cmd.env("PROVKEY_DATA_DIR", &self.data)
            .arg("seal")
            .arg("--plan")
            .arg(plan)
            .arg("--desired")
            .arg(repo(desired))
            .args(["--state", state])
            .arg("--key")
            .arg(&self.key.secret)
            .args(["--target", "demo", "--out"])
            .arg(out);
        cmd
    }

    pub(crate) fn seal(&self, plan: &Path, desired: &str, state: &str, out: &Path) {
        let r = run(&mut self.seal_cmd(plan, desired, state, out));
        assert_eq!(r.code, 0, "{r:?}");
    }

    pub(crate) fn apply_cmd(&self, bundle: &Path, dir: &Path) -> Command {
        self.apply_cmd_for(bundle, dir, "demo")
    }

    pub(crate) fn apply_cmd_for(&self, bundle: &Path, dir: &Path, target: &str) -> Command {
        let mut cmd = provkey_exec();
        cmd.arg("apply")
            .arg(bundle)
            .arg("--trust")
            .arg(&self.key.public)
            .args(["--target", target, "--now", &self.now.to_string()])
            .arg("--target-dir")
            .arg(dir);
        cmd
    }

    pub(crate) fn apply(&self, bundle: &Path, dir: &Path, extra: &[&str]) -> Run {
        run(self.apply_cmd(bundle, dir).args(extra))
    }

    pub(crate) fn state(&self, dir: &Path) -> Run {
        let r = exec(&["state", "--target-dir", dir.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{r:?}");
        r
    }

    /// A fresh target directory in its own temp dir (with a sibling for canaries).
    pub(crate) fn fresh(&self) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("target");
        (tmp, dir)
    }

    /// A fresh target with `b1` applied.
    pub(crate) fn after_b1(&self) -> (tempfile::TempDir, PathBuf) {
        let (tmp, dir) = self.fresh();
        assert_ok(&self.apply(&self.b1, &dir, &[]));
        (tmp, dir)
    }
}

pub(crate) fn exec(args: &[&str]) -> Run {
    run(provkey_exec().args(args))
}

#[track_caller]
pub(crate) fn assert_ok(r: &Run) {
    assert_eq!(r.code, 0, "{r:?}");
}

#[track_caller]
pub(crate) fn assert_refused(r: &Run, check: &str, needle: &str) {
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!("refused at check `{check}`")),
        "expected a refusal at `{check}`: {r:?}"
    );
    assert!(r.stderr.contains(needle), "expected `{needle}`: {r:?}");
    assert!(r.stderr.contains("help: "), "{r:?}");
}

/// `state.json` without its audit anchor and checksum: the anchor names the audit
/// log's head at the commit, which a re-run after a crash legitimately moves (its
/// `resumed` line); the log is checked on its own (`log --verify` checks the anchor).
pub(crate) fn state_file(dir: &Path) -> Vec<u8> {
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    let object = v.as_object_mut().unwrap();
    object.remove("audit_head");
    object.remove("checksum");
    serde_json::to_vec_pretty(&v).unwrap()
}

pub(crate) fn log_verifies(dir: &Path) -> Run {
    let r = exec(&["log", "--verify", "--target-dir", dir.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    r
}

pub(crate) fn no_drift(dir: &Path) {
    let r = exec(&["drift", "--target-dir", dir.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("no drift"), "{r:?}");
}

pub(crate) fn audit_events(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("audit.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `live/<name>` → the release directory it names.
pub(crate) fn live(dir: &Path, name: &str) -> PathBuf {
    let link = std::fs::read_link(dir.join("live").join(name)).unwrap();
    let text = link.to_str().unwrap();
    assert!(text.starts_with("../releases/"), "{text}");
    dir.join("live").join(link)
}

/// Every path under `dir` with its kind, mode and content, links not followed.
pub(crate) fn snapshot(dir: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let t = e.file_type().unwrap();
            let mode = {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::symlink_metadata(&path)
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o7777
            };
            if t.is_symlink() {
                out.push((
                    rel,
                    format!("-> {}", std::fs::read_link(&path).unwrap().display()),
                ));
            } else if t.is_dir() {
                out.push((rel, format!("dir {mode:o}")));
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((
                    rel,
                    format!("{mode:o} {}", provkey_core::blake3_hex(&bytes)),
                ));
            }
        }
    }
    let mut out = Vec::new();
    for sub in ["live", "releases", "store"] {
        walk(dir, &dir.join(sub), &mut out);
    }
    out.sort();
    out
}

#[test]
fn apply_v1_then_v2_replaces_every_instance() {
    let f = fx();
    let (_tmp, dir) = f.fresh();
    let r = f.apply(&f.b1, &dir, &[]);
    assert_ok(&r);
    assert!(
        r.stdout.contains("create   instance.web  live -> web-"),
        "{r:?}"
    );
    // v1: each instance's release holds the artifact, its config and its files.
    let web = live(&dir, "web");
    let api = live(&dir, "api");
    let v1 = repo("examples/desired/app/v1");
    for release in [&web, &api] {
        assert_eq!(
            std::fs::read(release.join("artifact/bin/hello")).unwrap(),
            std::fs::read(v1.join("bin/hello")).unwrap()
        );
        assert_eq!(
            std::fs::read(release.join("artifact/README.txt")).unwrap(),
            std::fs::read(v1.join("README.txt")).unwrap()
        );
    }
    let config: Value =
        serde_json::from_slice(&std::fs::read(web.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["port"], 8080);
    assert_eq!(
        std::fs::read_to_string(web.join("files/etc/hello.conf")).unwrap(),
        "GREETING='hello from the web'\nPORT=8080\n"
    );
    assert!(!api.join("files").exists());
    // Read-only: files 0444 (0555 when executable), directories 0555.
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&web.join("config.json")), 0o444);
        assert_eq!(mode(&web.join("files/etc")), 0o555);
        assert_eq!(mode(&web), 0o555);
        let exec_bit = mode(&v1.join("bin/hello")) & 0o111 != 0;
        assert_eq!(
            mode(&web.join("artifact/bin/hello")),
            if exec_bit { 0o555 } else { 0o444 }
        );
    }
    let s1: Value = serde_json::from_str(&f.state(&dir).stdout).unwrap();
    assert_eq!(s1["serial"], 1);
    assert_eq!(s1["resources"].as_array().unwrap().len(), 3);
    let m1 = provkey_core::blake3_hex(&std::fs::read(f.b1.join("manifest.json")).unwrap());
    assert_eq!(s1["applied_manifest"], m1.as_str());
    // The same bundle on another directory gives a byte-identical state.
    assert_eq!(state_file(&dir), state_file(&f.reference1));
    no_drift(&dir);

    // v2: every instance replaced, create before destroy; old releases gone.
    let r = f.apply(&f.b2, &dir, &[]);
    assert_ok(&r);
    assert!(
        r.stdout.contains("replace  instance.web  live -> web-"),
        "{r:?}"
    );
    assert!(r.stdout.contains(", removed web-"), "{r:?}");
    let web2 = live(&dir, "web");
    assert_ne!(
        web2.canonicalize().unwrap(),
        web.canonicalize().unwrap_or_default()
    );
    assert!(!web.exists(), "the old release is destroyed");
    assert_eq!(
        std::fs::read(web2.join("artifact/bin/hello")).unwrap(),
        std::fs::read(repo("examples/desired/app/v2/bin/hello")).unwrap()
    );
    let releases: Vec<_> = std::fs::read_dir(dir.join("releases")).unwrap().collect();
    assert_eq!(releases.len(), 2, "only the live releases remain");
    let s2: Value = serde_json::from_str(&f.state(&dir).stdout).unwrap();
    assert_eq!(
        (s2["serial"].as_u64(), &s2["lineage"]),
        (Some(2), &s1["lineage"])
    );
    assert_eq!(state_file(&dir), state_file(&f.reference2));
    no_drift(&dir);
    let log = log_verifies(&dir);
    assert!(log.stdout.contains("has 4 entries"), "{log:?}");
    let events: Vec<String> = audit_events(&dir)
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events, ["claimed", "applied", "claimed", "applied"]);

    // What `provkey-exec state` prints is what `provkey plan --state` reads: planning v2
    // again over it changes nothing.
    let s2_path = dir.parent().unwrap().join("s2.json");
    std::fs::write(&s2_path, f.state(&dir).stdout).unwrap();
    let out = dir.parent().unwrap().join("again.json");
    let r = run(provkey()
        .arg("plan")
        .arg("--desired")
        .arg(repo("examples/desired/app-v2.toml"))
        .arg("--state")
        .arg(&s2_path)
        .arg("--out")
        .arg(&out));
    assert_ok(&r);
    assert!(
        r.stdout
            .contains("0 to create, 0 to replace, 0 to destroy, 3 unchanged"),
        "{r:?}"
    );
}

#[test]
fn a_stale_plan_and_a_wrong_lineage_are_refused() {
    let f = fx();
    let (_tmp, dir) = f.after_b1();
    assert_ok(&f.apply(&f.b2, &dir, &[]));
    let before = state_file(&dir);
    // Sealed against serial 1; the target is at serial 2.
    let r = f.apply(&f.b2_again, &dir, &[]);
    assert_refused(&r, "base-state", "stale plan: the state changed");
    assert_eq!(state_file(&dir), before, "a refusal changes nothing");
    let last = audit_events(&dir).pop().unwrap();
    assert_eq!(last["event"], "refused");
    assert_eq!(last["check"], "base-state");
    log_verifies(&dir);

    // A plan made against another lineage (same resources, another target's state).
    let mut other: Value = serde_json::from_slice(&std::fs::read(&f.s1).unwrap()).unwrap();
    other["lineage"] = "00000000-0000-4000-8000-000000000001".into();
    let other_path = f.dir.join("s1-other-lineage.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    let p = f.plan(
        "examples/desired/app-v2.toml",
        other_path.to_str().unwrap(),
        "p-other.json",
    );
    let b = f.dir.join("b-other-lineage");
    f.seal(
        &p,
        "examples/desired/app-v2.toml",
        other_path.to_str().unwrap(),
        &b,
    );
    let (_tmp2, dir2) = f.after_b1();
    assert_refused(
        &f.apply(&b, &dir2, &[]),
        "base-state",
        "wrong state: the lineage differs",
    );
    // And a bundle planned against a state, on a target that has none.
    let (_tmp3, empty) = f.fresh();
    assert_refused(&f.apply(&f.b2, &empty, &[]), "base-state", "has no state");
    // Sealing refuses a plan that was not computed from the state it is given.
    let p1 = f.dir.join("p1.json");
    let mut cmd = f.seal_cmd(
        &p1,
        "examples/desired/app.toml",
        f.s1.to_str().unwrap(),
        &f.dir.join("never"),
    );
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("was not computed from this state"),
        "{r:?}"
    );
    assert!(!f.dir.join("never").exists());
}

#[test]
fn a_replayed_plan_is_refused() {
    let f = fx();
    let (_tmp, dir) = f.after_b1();
    assert_ok(&f.apply(&f.b2, &dir, &[]));
    let before = state_file(&dir);
    // An older bundle: below the high-water mark.
    assert_refused(
        &f.apply(&f.b1, &dir, &[]),
        "replay",
        "is not above the high-water mark 2",
    );
    assert_eq!(state_file(&dir), before);
    // The last bundle again: already applied, nothing done.
    let r = f.apply(&f.b2, &dir, &[]);
    assert_ok(&r);
    assert!(r.stdout.starts_with("already applied"), "{r:?}");
    assert_eq!(state_file(&dir), before);
    // A later sequence that reuses an applied nonce (a signer bug or a replayed
    // statement with a new number) is refused as well.
    let (_tmp2, dir2) = f.after_b1();
    let c = Copy::of(&f.b2);
    let nonce =
        serde_json::from_slice::<Value>(&std::fs::read(f.b1.join("manifest.json")).unwrap())
            .unwrap()["nonce"]
            .clone();
    c.resign(&f.key.load(), |m| m["nonce"] = nonce);
    assert_refused(
        &f.apply(&c.bundle, &dir2, &[]),
        "replay",
        "nonce was already applied",
    );
    log_verifies(&dir2);
}

#[test]
fn a_bundle_for_another_target_is_refused() {
    let f = fx();
    let (_tmp, dir) = f.fresh();
    let r = run(&mut f.apply_cmd_for(&f.b1, &dir, "staging"));
    assert_refused(
        &r,
        "target",
        "the bundle is for target `demo`, this executor is `staging`",
    );
    assert!(!dir.join("state.json").exists());
    // A directory that belongs to another target is refused before anything else.
    let (_tmp2, dir2) = f.after_b1();
    let r = run(&mut f.apply_cmd_for(&f.b1, &dir2, "staging"));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("belongs to target `demo`, not `staging`"),
        "{r:?}"
    );
}

#[test]
fn two_executors_racing_one_wins_the_other_is_locked_out() {
    let f = fx();
    let (_tmp, dir) = f.fresh();
    // Executor A stops, holding the lock, at a known step.
    let mut a = f
        .apply_cmd(&f.b1, &dir)
        .env("PROVKEY_EXEC_PAUSE", "locked")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(a.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert_eq!(line.trim(), "paused at locked");
    // Executor B finds the target locked, says by whom, and changes nothing.
    let b = f.apply(&f.b1, &dir, &[]);
    assert_eq!(b.code, 4, "{b:?}");
    assert!(
        b.stderr
            .contains(&format!("is locked by process {} (apply since", a.id())),
        "{b:?}"
    );
    assert!(
        b.stderr.contains("help: another executor is applying"),
        "{b:?}"
    );
    assert!(!dir.join("state.json").exists());
    // A goes on and finishes; the state is the uninterrupted run's.
    drop(a.stdin.take());
    let out = a.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(state_file(&dir), state_file(&f.reference1));
    log_verifies(&dir);
    // Two executors started together: one applies, the other is locked out or (if it
    // came second) finds the bundle already applied. Never both, never a torn state.
    let (_tmp2, dir2) = f.fresh();
    let spawn = || {
        f.apply_cmd(&f.b1, &dir2)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (x, y) = (spawn(), spawn());
    let (x, y) = (x.wait_with_output().unwrap(), y.wait_with_output().unwrap());
    let codes = [x.status.code(), y.status.code()];
    assert!(codes.contains(&Some(0)), "{x:?} {y:?}");
    assert!(
        codes.iter().all(|c| *c == Some(0) || *c == Some(4)),
        "{x:?} {y:?}"
    );
    let applied = audit_events(&dir2)
        .iter()
        .filter(|e| e["event"] == "applied")
        .count();
    assert_eq!(applied, 1);
    assert_eq!(state_file(&dir2), state_file(&f.reference1));
    log_verifies(&dir2);
}

/// Crashes `bundle`'s apply on `prepare()`'s target at failpoint #1, #2, … until a run
/// passes every failpoint; after each crash, another bundle is refused while the
/// claim stands, and a re-run finishes with the reference state.
fn crash_everywhere(
    prepare: impl Fn() -> (tempfile::TempDir, PathBuf),
    bundle: &Path,
    other: &Path,
    reference: &Path,
) -> usize {
    let f = fx();
    let mut crashes = 0;
    for k in 1.. {
        let (_tmp, dir) = prepare();
        let r = run(f
            .apply_cmd(bundle, &dir)
            .env("PROVKEY_EXEC_FAILPOINT", format!("#{k}")));
        if r.code == 0 {
            break;
        }
        assert_eq!(r.code, -1, "failpoint #{k} must abort the process: {r:?}");
        assert!(r.stderr.contains(&format!("(#{k}): aborting")), "{r:?}");
        crashes += 1;
        if dir.join("journal.json").exists() {
            let o = f.apply(other, &dir, &[]);
            assert_eq!(o.code, 1, "#{k}: {o:?}");
            assert!(
                o.stderr.contains("has an unfinished apply of manifest"),
                "#{k}: {o:?}"
            );
        }
        let again = f.apply(bundle, &dir, &[]);
        assert_eq!(
            again.code, 0,
            "re-run after a crash at #{k} ({}): {again:?}",
            r.stderr
        );
        assert!(!dir.join("journal.json").exists(), "#{k}");
        assert_eq!(
            String::from_utf8(state_file(&dir)).unwrap(),
            String::from_utf8(state_file(reference)).unwrap(),
            "#{k}: {}",
            r.stderr
        );
        assert_eq!(snapshot(&dir), snapshot(reference), "#{k}: {}", r.stderr);
        log_verifies(&dir);
        no_drift(&dir);
        let applied = audit_events(&dir)
            .iter()
            .filter(|e| e["event"] == "applied")
            .count();
        assert!(applied >= 1, "#{k}");
    }
    crashes
}

#[test]
fn a_crash_at_every_step_of_the_first_apply_resumes() {
    let f = fx();
    let crashes = crash_everywhere(|| f.fresh(), &f.b1, &f.b2, &f.reference1);
    eprintln!("first apply: crashed and resumed at {crashes} failpoints");
    // journal (4) + claimed + 3 artifact/release/switch steps + state (4) + … at least.
    assert!(crashes >= 14, "only {crashes} failpoints");
}

#[test]
fn a_crash_at_every_step_of_a_replace_resumes() {
    let f = fx();
    let crashes = crash_everywhere(|| f.after_b1(), &f.b2, &f.b1, &f.reference2);
    eprintln!("replace: crashed and resumed at {crashes} failpoints");
    assert!(crashes >= 16, "only {crashes} failpoints");
}

/// A file outside every target directory whose content, modification time and access
/// time (set before its modification time, so that any read updates it even under
/// `relatime`) are checked after each attack.
struct Canary {
    path: PathBuf,
    times: (std::time::SystemTime, std::time::SystemTime),
}

impl Canary {
    fn new(dir: &Path) -> Canary {
        let path = dir.join("canary");
        std::fs::write(&path, b"outside the root\n").unwrap();
        let mut canary = Canary {
            times: Canary::times(&path),
            path,
        };
        canary.arm();
        canary
    }
    fn times(path: &Path) -> (std::time::SystemTime, std::time::SystemTime) {
        let m = std::fs::symlink_metadata(path).unwrap();
        (m.modified().unwrap(), m.accessed().unwrap())
    }
    /// Access time a day before the modification time: the next read moves it.
    fn arm(&mut self) {
        let file = std::fs::File::options()
            .write(true)
            .open(&self.path)
            .unwrap();
        let modified = self.times.0;
        file.set_times(
            std::fs::FileTimes::new()
                .set_accessed(modified - std::time::Duration::from_secs(86_400))
                .set_modified(modified),
        )
        .unwrap();
        self.times = Canary::times(&self.path);
    }
    #[track_caller]
    fn untouched(&mut self) {
        let now = Canary::times(&self.path);
        assert_eq!(now.0, self.times.0, "the canary was written");
        assert_eq!(now.1, self.times.1, "the canary was read");
        assert_eq!(std::fs::read(&self.path).unwrap(), b"outside the root\n");
        self.arm();
    }
}

#[test]
fn planted_links_and_fifos_never_reach_outside_the_root() {
    use std::os::unix::fs::symlink;
    let f = fx();

    // 1. `releases` planted as a symlink to a directory outside: refused, nothing written.
    let (tmp, dir) = f.fresh();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    symlink(&outside, dir.join("releases")).unwrap();
    let r = f.apply(&f.b1, &dir, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("`releases` is not a plain directory"),
        "{r:?}"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);

    // 2. `state.json` a symlink to an outside file; `audit.log` a hard link to one.
    let (tmp, dir) = f.after_b1();
    let mut canary = Canary::new(tmp.path());
    std::fs::remove_file(dir.join("state.json")).unwrap();
    symlink(&canary.path, dir.join("state.json")).unwrap();
    let r = f.apply(&f.b2, &dir, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("cannot read `state.json`"), "{r:?}");
    canary.untouched();
    let (tmp, dir) = f.after_b1();
    let mut canary = Canary::new(tmp.path());
    std::fs::remove_file(dir.join("audit.log")).unwrap();
    std::fs::hard_link(&canary.path, dir.join("audit.log")).unwrap();
    let r = f.apply(&f.b2, &dir, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("hard links"), "{r:?}");
    canary.untouched();
    let r = exec(&["log", "--verify", "--target-dir", dir.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    canary.untouched();

    // 3. A store blob replaced by a hard link to an outside file: never read, replaced
    //    by rename (the outside inode is untouched), and the apply succeeds.
    let (tmp, dir) = f.after_b1();
    let mut canary = Canary::new(tmp.path());
    let blob = std::fs::read_dir(dir.join("store/blobs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(&blob).unwrap();
    std::fs::hard_link(&canary.path, &blob).unwrap();
    assert_ok(&f.apply(&f.b2, &dir, &[]));
    canary.untouched();
    assert_eq!(state_file(&dir), state_file(&f.reference2));

    // 4. A live pointer planted to point outside: replaced atomically, never followed.
    let (tmp, dir) = f.after_b1();
    let mut canary = Canary::new(tmp.path());
    std::fs::remove_file(dir.join("live/web")).unwrap();
    symlink(tmp.path(), dir.join("live/web")).unwrap();
    let r = exec(&["drift", "--target-dir", dir.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("live/web") && r.stdout.contains("points to"),
        "{r:?}"
    );
    assert_ok(&f.apply(&f.b2, &dir, &[]));
    canary.untouched();
    assert_eq!(snapshot(&dir), snapshot(&f.reference2));

    // 5. A symlink to the outside file inside a release, and a FIFO: drift reports both
    //    without following or opening them (a FIFO would block a reader).
    let (tmp, dir) = f.after_b1();
    let mut canary = Canary::new(tmp.path());
    let web = live(&dir, "web");
    make_writable(&web);
    std::fs::remove_file(web.join("files/etc/hello.conf")).unwrap();
    symlink(&canary.path, web.join("files/etc/hello.conf")).unwrap();
    let fifo = web.join("artifact/pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let r = exec(&["drift", "--target-dir", dir.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("files/etc/hello.conf") && r.stdout.contains("symbolic link"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("added") && r.stdout.contains("artifact/pipe"),
        "{r:?}"
    );
    canary.untouched();

    // 6. `state.json` and `lock` as FIFOs: refused at once, no hang.
    let (_tmp, dir) = f.after_b1();
    std::fs::remove_file(dir.join("state.json")).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(dir.join("state.json"))
            .status()
            .unwrap()
            .success()
    );
    let r = f.apply(&f.b2, &dir, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not a regular file"), "{r:?}");
    let (_tmp, dir) = f.after_b1();
    std::fs::remove_file(dir.join("lock")).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(dir.join("lock"))
            .status()
            .unwrap()
            .success()
    );
    let r = f.apply(&f.b2, &dir, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not a regular file"), "{r:?}");

    // 7. The target directory itself a symlink.
    let (tmp, dir) = f.after_b1();
    let link = tmp.path().join("link");
    symlink(&dir, &link).unwrap();
    let r = f.apply(&f.b2, &link, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("is a symbolic link"), "{r:?}");
}

/// Every directory under `dir` back to a release's mode, 0555.
pub(crate) fn make_read_only(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    for e in walkdirs(dir).iter().rev() {
        std::fs::set_permissions(e, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
}

pub(crate) fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    for e in walkdirs(dir) {
        let _ = std::fs::set_permissions(&e, std::fs::Permissions::from_mode(0o755));
    }
}

fn walkdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(walkdirs(&e.path()));
        }
    }
    out
}

/// Replaces the bundle blob named `name` by `edit(old bytes)`, fixes every digest and
/// size the manifest gives for it, and re-signs (as a compromised signer could).
pub(crate) fn tamper_blob(c: &Copy, key: &KeyPair, name: &str, edit: impl FnOnce(&mut Value)) {
    let m = c.manifest_json();
    let entry = m["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .unwrap()
        .clone();
    let old = entry["blake3"].as_str().unwrap().to_owned();
    let mut value: Value =
        serde_json::from_slice(&std::fs::read(c.blob_path(&old)).unwrap()).unwrap();
    edit(&mut value);
    let bytes = serde_json_canonicalizer::to_vec(&value).unwrap();
    let new = provkey_core::blake3_hex(&bytes);
    std::fs::remove_file(c.blob_path(&old)).unwrap();
    std::fs::write(c.blob_path(&new), &bytes).unwrap();
    c.resign(&key.load(), |m| {
        let text = m.to_string().replace(&old, &new);
        *m = serde_json::from_str(&text).unwrap();
        if m["plan"]["blake3"] == new.as_str() {
            m["plan"]["size"] = bytes.len().into();
        }
        let blobs = m["blobs"].as_array_mut().unwrap();
        for b in blobs.iter_mut() {
            if b["blake3"] == new.as_str() {
                b["size"] = bytes.len().into();
            }
        }
        blobs.sort_by(|a, b| a["blake3"].as_str().cmp(&b["blake3"].as_str()));
    });
}

#[test]
fn dot_dot_and_absolute_paths_in_a_bundle_are_refused() {
    let f = fx();
    for bad in ["../../canary", "/etc/provkey-canary", "a/../../../canary"] {
        // In an instance's files (the plan, with a matching configuration digest).
        let (tmp, dir) = f.fresh();
        let mut canary = Canary::new(tmp.path());
        let c = Copy::of(&f.b1);
        tamper_blob(&c, &f.key, "plan", |plan| {
            let web = plan["changes"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|ch| ch["address"] == "instance.web")
                .unwrap();
            let after = &mut web["after"];
            after["files"] = serde_json::json!({ bad: "pwned\n" });
            after["config_digest"] =
                provkey_desired::config_digest(&after["config"], &after["files"])
                    .unwrap()
                    .into();
        });
        let r = f.apply(&c.bundle, &dir, &[]);
        assert_refused(
            &r,
            "plan-semantics",
            "is not a relative path inside the instance",
        );
        canary.untouched();
        assert!(!Path::new("/etc/provkey-canary").exists());
        assert!(!dir.join("live").join("web").exists());

        // In an artifact's tree listing.
        let (tmp, dir) = f.fresh();
        let mut canary = Canary::new(tmp.path());
        let c = Copy::of(&f.b1);
        tamper_blob(&c, &f.key, "tree/app", |tree| {
            tree["entries"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                    "path": bad, "kind": "file", "mode": 420, "size": 6,
                    "blake3": provkey_core::blake3_hex(b"pwned\n"),
                }));
        });
        let r = f.apply(&c.bundle, &dir, &[]);
        assert_refused(&r, "plan-semantics", "is not a tree listing");
        canary.untouched();
        assert!(!Path::new("/etc/provkey-canary").exists());
    }
}

#[test]
fn drift_reports_every_tampered_file() {
    let f = fx();
    let (_tmp, dir) = f.after_b1();
    no_drift(&dir);
    let web = live(&dir, "web");
    let api = live(&dir, "api");
    make_writable(&web);
    make_writable(&api);
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(
        web.join("files/etc/hello.conf"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(web.join("files/etc/hello.conf"), "PORT=6666\n").unwrap();
    std::fs::write(web.join("artifact/extra"), "dropped in by hand\n").unwrap();
    std::fs::remove_file(api.join("config.json")).unwrap();
    // Directory modes put back as they were: only the three content changes remain.
    make_read_only(&web);
    make_read_only(&api);
    let r = exec(&["drift", "--target-dir", dir.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.starts_with("drift: 3 difference(s)"), "{r:?}");
    for needle in [
        "modified instance.web",
        "files/etc/hello.conf",
        "added    instance.web",
        "artifact/extra",
        "removed  instance.api",
        "config.json",
    ] {
        assert!(r.stdout.contains(needle), "`{needle}`: {r:?}");
    }
    // Reported, not repaired.
    assert_eq!(
        std::fs::read_to_string(web.join("files/etc/hello.conf")).unwrap(),
        "PORT=6666\n"
    );
    // A new apply replaces the drifted instances with fresh releases.
    assert_ok(&f.apply(&f.b2, &dir, &[]));
    no_drift(&dir);
}

#[test]
fn log_verify_detects_a_tampered_audit_log() {
    let f = fx();
    let (_tmp, dir) = f.after_b1();
    assert_ok(&f.apply(&f.b2, &dir, &[]));
    assert_refused(&f.apply(&f.b1, &dir, &[]), "replay", "high-water");
    let log = dir.join("audit.log");
    let good = std::fs::read_to_string(&log).unwrap();
    assert!(log_verifies(&dir).stdout.contains("has 5 entries"));
    let lines: Vec<&str> = good.lines().collect();
    let check = |text: String, line: usize| {
        std::fs::write(&log, text).unwrap();
        let r = exec(&["log", "--verify", "--target-dir", dir.to_str().unwrap()]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains(&format!("line {line}")), "{r:?}");
        assert!(r.stderr.contains("help: "), "{r:?}");
    };
    // An edited detail, still canonical JSON: the next line's `prev` no longer matches.
    check(good.replacen("3 created", "0 created", 1), 3);
    // A line removed.
    check(format!("{}\n{}\n", lines[0], lines[2..].join("\n")), 2);
    // Two lines swapped.
    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    check(format!("{}\n", swapped.join("\n")), 2);
    // The last line cut.
    check(good[..good.len() - 10].to_owned(), 5);
    // The whole log rewritten consistently from line 2 would need every later `prev`;
    // restoring it verifies again.
    std::fs::write(&log, &good).unwrap();
    log_verifies(&dir);
}

#[test]
fn a_claimed_bundle_that_expired_since_its_crash_still_resumes() {
    let f = fx();
    let (_tmp, dir) = f.fresh();
    // Crash after the claim is durable, part-way through the apply.
    let r = run(f.apply_cmd(&f.b1, &dir).env("PROVKEY_EXEC_FAILPOINT", "#8"));
    assert_eq!(r.code, -1, "{r:?}");
    assert!(dir.join("journal.json").exists(), "the claim stands: {r:?}");
    let expires = manifest_of(&f.b1)["expires_at"].as_u64().unwrap();
    let later = (expires + 3600).to_string();
    let resumed = |bundle: &Path| {
        run(provkey_exec()
            .arg("apply")
            .arg(bundle)
            .arg("--trust")
            .arg(&f.key.public)
            .args(["--target", "demo", "--now", &later, "--target-dir"])
            .arg(&dir))
    };
    // A fresh bundle would be refused as expired at that time...
    let other = resumed(&f.b2);
    assert_eq!(other.code, 1, "{other:?}");
    // ...but the claimed one finishes: it was fresh when it was claimed.
    let again = resumed(&f.b1);
    assert_ok(&again);
    // The same deployment as an uninterrupted run (only `last_seen`, the clock, moved).
    let state =
        |d: &Path| serde_json::from_slice::<Value>(&state_file(d)).unwrap()["state"].clone();
    assert_eq!(state(&dir), state(&f.reference1));
    assert_eq!(snapshot(&dir), snapshot(&f.reference1));
    log_verifies(&dir);
    no_drift(&dir);
}

pub(crate) fn manifest_of(bundle: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap()
}
