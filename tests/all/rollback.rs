//! `provkey rollback` and `provkey demo`: the real binaries on the shipped example.
//!
//! | What | Test |
//! |---|---|
//! | the demo runs the whole cycle; its target verifies with the real executor | `demo_runs_the_whole_cycle` |
//! | rollback = a fresh, signed redeployment of v1's desired state | `rollback_redeploys_an_earlier_version_as_a_fresh_bundle` |
//! | a tampered earlier bundle is refused | `rollback_refuses_an_altered_artifact_file` |
//! | an earlier bundle signed by an untrusted key is refused | `rollback_refuses_a_bundle_it_cannot_trust` |
//! | a bundle sealed without its desired state is refused | `rollback_refuses_a_bundle_without_a_desired_state` |

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::bundle_support::{KeyPair, copy_dir, keygen};
use crate::support::{Run, provkey, provkey_exec, repo, run};

/// v1 applied, then v2 applied, on one target; the bundles and states kept.
struct Cycle {
    dir: PathBuf,
    key: KeyPair,
    target: PathBuf,
    b1: PathBuf,
    b2: PathBuf,
    /// `provkey-exec state` after `b1`, and after `b2`.
    s1: PathBuf,
    s2: PathBuf,
}

fn cycle() -> &'static Cycle {
    static CYCLE: OnceLock<Cycle> = OnceLock::new();
    CYCLE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("provkey-rollback")
            .tempdir_in(crate::support::run_tmp())
            .unwrap()
            .keep();
        let key = keygen(&dir, "plan-signer");
        let c = Cycle {
            target: dir.join("target"),
            b1: dir.join("b1"),
            b2: dir.join("b2"),
            s1: dir.join("s1.json"),
            s2: dir.join("s2.json"),
            key,
            dir,
        };
        c.plan_and_seal("examples/desired/app.toml", "none", &c.b1);
        ok(&c.apply(&c.b1, &c.target));
        c.save_state(&c.s1);
        let s1 = c.s1.to_str().unwrap().to_owned();
        c.plan_and_seal("examples/desired/app-v2.toml", &s1, &c.b2);
        ok(&c.apply(&c.b2, &c.target));
        c.save_state(&c.s2);
        c
    })
}

impl Cycle {
    fn plan_and_seal(&self, desired: &str, state: &str, out: &Path) {
        let plan = out.with_extension("plan.json");
        ok(&run(provkey()
            .arg("plan")
            .arg("--desired")
            .arg(repo(desired))
            .args(["--state", state, "--out"])
            .arg(&plan)));
        ok(&run(provkey()
            .env("PROVKEY_DATA_DIR", self.dir.join("data"))
            .arg("seal")
            .arg("--plan")
            .arg(&plan)
            .arg("--desired")
            .arg(repo(desired))
            .args(["--state", state, "--key"])
            .arg(&self.key.secret)
            .args(["--target", "demo", "--out"])
            .arg(out)));
    }

    fn apply(&self, bundle: &Path, target: &Path) -> Run {
        run(provkey_exec()
            .arg("apply")
            .arg(bundle)
            .arg("--trust")
            .arg(&self.key.public)
            .args(["--target", "demo", "--target-dir"])
            .arg(target))
    }

    fn save_state(&self, out: &Path) {
        let r = run(provkey_exec()
            .args(["state", "--target-dir"])
            .arg(&self.target));
        ok(&r);
        std::fs::write(out, &r.stdout).unwrap();
    }

    fn rollback(&self, to: &Path, state: &Path, key: &KeyPair, out: &Path) -> Run {
        run(provkey()
            .env("PROVKEY_DATA_DIR", self.dir.join("data"))
            .arg("rollback")
            .arg("--to")
            .arg(to)
            .arg("--state")
            .arg(state)
            .arg("--key")
            .arg(&key.secret)
            .arg("--out")
            .arg(out))
    }
}

#[track_caller]
fn ok(r: &Run) {
    assert_eq!(r.code, 0, "{r:?}");
}

fn manifest(bundle: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap()
}

/// Address -> artifact digest of a state file.
fn deployed(state: &Path) -> Vec<(String, String)> {
    let state: Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    let mut out: Vec<(String, String)> = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["address"].as_str().unwrap().to_owned(),
                r["artifact_digest"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn demo_runs_the_whole_cycle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let r = run(provkey().arg("demo").arg("--dir").arg(&dir));
    ok(&r);
    for needle in [
        "== 1/9 plan version 1",
        "live/web runs: hello, version 1",
        "live/web runs: hello, version 2",
        "replace  instance.web",
        "refused at check `replay`",
        "drift: instance.web",
        "rolling back to manifest",
        "no drift: 2 instance(s)",
        "hash chain intact",
    ] {
        assert!(r.stdout.contains(needle), "missing `{needle}`: {r:?}");
    }
    // What the demo left is a real target: the executor binary agrees with it.
    let target = dir.join("target");
    ok(&run(provkey_exec()
        .args(["log", "--verify", "--target-dir"])
        .arg(&target)));
    let drift = run(provkey_exec().args(["drift", "--target-dir"]).arg(&target));
    ok(&drift);
    // Three bundles, three growing sequences.
    let seqs: Vec<u64> = ["bundle-v1", "bundle-v2", "bundle-v3"]
        .iter()
        .map(|b| manifest(&dir.join(b))["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);

    // `--dir` never reuses a directory.
    let again = run(provkey().arg("demo").arg("--dir").arg(&dir));
    assert_eq!(again.code, 2, "{again:?}");
    assert!(again.stderr.contains("already exists"), "{again:?}");
}

#[test]
fn rollback_redeploys_an_earlier_version_as_a_fresh_bundle() {
    let c = cycle();
    // A target of its own, at v2, so this test does not race the others.
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    ok(&c.apply(&c.b1, &target));
    ok(&c.apply(&c.b2, &target));
    let b3 = tmp.path().join("b3");
    let r = c.rollback(&c.b1, &c.s2, &c.key, &b3);
    ok(&r);
    assert!(r.stdout.contains("rolling back to manifest"), "{r:?}");
    assert!(r.stdout.contains("replace  instance.web"), "{r:?}");

    let (m1, m2, m3) = (manifest(&c.b1), manifest(&c.b2), manifest(&b3));
    assert!(m3["sequence"].as_u64() > m2["sequence"].as_u64(), "{m3}");
    assert_ne!(m3["nonce"], m1["nonce"]);
    assert_eq!(
        m3["base_state"],
        serde_json::json!({
            "lineage": m2["base_state"]["lineage"],
            "serial": 2,
            "blake3": m3["base_state"]["blake3"],
        })
    );
    // Every policy ran again on the new plan.
    assert!(!m3["policies"].as_array().unwrap().is_empty());

    ok(&c.apply(&b3, &target));
    let s3 = tmp.path().join("s3.json");
    let r = run(provkey_exec().args(["state", "--target-dir"]).arg(&target));
    ok(&r);
    std::fs::write(&s3, &r.stdout).unwrap();
    assert_eq!(
        deployed(&s3),
        deployed(&c.s1),
        "v1's artifacts are live again"
    );
    assert_ne!(deployed(&s3), deployed(&c.s2));
    let live = std::fs::read_to_string(target.join("live/web/artifact/README.txt")).unwrap();
    assert!(live.contains("version 1"), "{live}");
    ok(&run(provkey_exec()
        .args(["log", "--verify", "--target-dir"])
        .arg(&target)));

    // The replayed original is still refused: a rollback never reuses the old bundle.
    let replay = c.apply(&c.b1, &target);
    assert_eq!(replay.code, 1, "{replay:?}");
}

#[test]
fn rollback_refuses_an_altered_artifact_file() {
    let c = cycle();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("b1");
    copy_dir(&c.b1, &copy);
    // The largest blob that is not the plan or a listing: an artifact file.
    let m = manifest(&copy);
    let file = m["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "file")
        .expect("an artifact file blob")["blake3"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = copy.join("blobs").join(&file);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let out = tmp.path().join("b3");
    let r = c.rollback(&copy, &c.s2, &c.key, &out);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains(&format!("blob `{file}`")), "{r:?}");
    assert!(r.stderr.contains("was altered"), "{r:?}");
    assert!(
        r.stderr.contains("help: the bundle was tampered with"),
        "{r:?}"
    );
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn rollback_refuses_a_bundle_it_cannot_trust() {
    let c = cycle();
    let tmp = tempfile::tempdir().unwrap();
    let stranger = keygen(tmp.path(), "plan-signer");
    let out = tmp.path().join("b3");
    let r = c.rollback(&c.b1, &c.s2, &stranger, &out);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("is not signed by a trusted plan-signer"),
        "{r:?}"
    );
    assert!(r.stderr.contains("help: "), "{r:?}");
    assert!(!out.exists());

    // `--trust` naming the original signer's public key verifies the earlier bundle.
    let r = run(provkey()
        .env("PROVKEY_DATA_DIR", tmp.path().join("data"))
        .arg("rollback")
        .arg("--to")
        .arg(&c.b1)
        .arg("--state")
        .arg(&c.s2)
        .arg("--key")
        .arg(&c.key.secret)
        .arg("--trust")
        .arg(&c.key.public)
        .arg("--out")
        .arg(&out));
    ok(&r);
}

#[test]
fn rollback_refuses_a_bundle_without_a_desired_state() {
    let c = cycle();
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    ok(&run(provkey()
        .env("PROVKEY_DATA_DIR", tmp.path().join("data"))
        .arg("seal")
        .arg("--plan")
        .arg(repo("examples/plans/replace-only.json"))
        .arg("--key")
        .arg(&c.key.secret)
        .args(["--target", "demo", "--out"])
        .arg(&plain)));
    let out = tmp.path().join("b3");
    let r = c.rollback(&plain, &c.s2, &c.key, &out);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("records no `desired` blob"), "{r:?}");
    assert!(r.stderr.contains("provkey seal --desired"), "{r:?}");
    assert!(!out.exists());
}
