//! Policy sets (issue 6): `provkey.toml`, `provkey lock`, organization sets published
//! and signed by a policy publisher, served from a directory or by a real HTTP server
//! on the loopback address, enforcement levels, approver overrides, waivers, the
//! waivers recorded in a sealed manifest, and `provkey replay`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use crate::bundle_support::{KeyPair, keygen, trust_cmd};
use crate::support::{Run, provkey, repo, run};

const UPDATE_PLAN: &str = "examples/plans/update-in-place.json";
const REPLACE_PLAN: &str = "examples/plans/replace-only.json";

/// Keys and a signed trust root (root, policy publisher, approver, plan signer), made
/// once by the real CLI; a second publisher key that is *not* in the trust root.
struct Keys {
    publisher: KeyPair,
    approver: KeyPair,
    signer: KeyPair,
    stranger: KeyPair,
    trust: PathBuf,
    /// A trust root in which every key above is a policy publisher: `publish` checks
    /// the role against it, so that the tests can produce sets the organization's trust
    /// root (`trust`) must refuse at `lock`.
    any_publisher: PathBuf,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("provkey-policy-sets")
            .tempdir_in(crate::support::run_tmp())
            .unwrap()
            .keep();
        let root = keygen(&dir, "root");
        let publisher = keygen(&dir, "policy-publisher");
        let approver = keygen(&dir, "approver");
        let signer = keygen(&dir, "plan-signer");
        let stranger = keygen(&dir, "policy-publisher");
        let trust = dir.join("trust-root.json");
        trust_cmd(&["init", "--out", trust.to_str().unwrap()]);
        for (k, role) in [
            (&root, "root"),
            (&publisher, "policy-publisher"),
            (&approver, "approver"),
            (&signer, "plan-signer"),
        ] {
            trust_cmd(&[
                "add-key",
                trust.to_str().unwrap(),
                "--key",
                k.public.to_str().unwrap(),
                "--role",
                role,
            ]);
        }
        trust_cmd(&[
            "sign",
            trust.to_str().unwrap(),
            "--key",
            root.secret.to_str().unwrap(),
        ]);
        let any_publisher = dir.join("any-publisher.json");
        trust_cmd(&["init", "--out", any_publisher.to_str().unwrap()]);
        for (k, role) in [
            (&root, "root"),
            (&publisher, "policy-publisher"),
            (&approver, "policy-publisher"),
            (&stranger, "policy-publisher"),
            (&signer, "plan-signer"),
        ] {
            trust_cmd(&[
                "add-key",
                any_publisher.to_str().unwrap(),
                "--key",
                k.public.to_str().unwrap(),
                "--role",
                role,
            ]);
        }
        trust_cmd(&[
            "sign",
            any_publisher.to_str().unwrap(),
            "--key",
            root.secret.to_str().unwrap(),
        ]);
        Keys {
            publisher,
            approver,
            signer,
            stranger,
            trust,
            any_publisher,
        }
    })
}

/// One test's workspace: its own state and cache directories.
struct Space {
    dir: tempfile::TempDir,
    state: PathBuf,
    cache: PathBuf,
}

impl Space {
    fn new() -> Space {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let cache = dir.path().join("cache");
        Space { dir, state, cache }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    /// `provkey` with this space's state and cache, in `cwd`.
    fn cmd(&self, cwd: &Path) -> Command {
        let mut cmd = provkey();
        cmd.current_dir(cwd)
            .env("PROVKEY_STATE_DIR", &self.state)
            .args(["--verbose"]);
        cmd
    }

    fn lock(&self, repo_dir: &Path) -> Run {
        run(self
            .cmd(repo_dir)
            .args(["lock", "--cache-dir"])
            .arg(&self.cache))
    }

    fn check(&self, repo_dir: &Path, plan: &str, extra: &[&str]) -> Run {
        run(self
            .cmd(repo_dir)
            .args(["check", "--plan"])
            .arg(repo(plan))
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(extra))
    }

    /// A component directory to publish: `policyset.toml` plus stock components.
    fn org_dir(&self, rel: &str, policyset: &str, components: &[&str]) -> PathBuf {
        let dir = self.path(rel);
        std::fs::create_dir_all(&dir).unwrap();
        for id in components {
            std::fs::write(
                dir.join(format!("{id}.wasm")),
                provkey_stock::find(id).unwrap().bytes,
            )
            .unwrap();
        }
        std::fs::write(dir.join("policyset.toml"), policyset).unwrap();
        dir
    }

    fn publish(&self, dir: &Path, key: &KeyPair, version: u64, out: &Path) -> Run {
        run(self
            .cmd(self.dir.path())
            .args(["policy", "publish"])
            .arg(dir)
            .arg("--key")
            .arg(&key.secret)
            .arg("--trust")
            .arg(&keys().any_publisher)
            .args(["--version", &version.to_string(), "--out"])
            .arg(out))
    }
}

fn ok(r: &Run) {
    assert_eq!(r.code, 0, "{r:?}");
}

fn trust_line() -> String {
    format!("trust = {:?}\n", keys().trust.to_str().unwrap())
}

const ORG_SET: &str = r#"name = "acme"
[policy.immutable]
component = "immutable.wasm"
enforcement = "soft-mandatory"
[policy.destroy-budget]
component = "destroy-budget.wasm"
config = { max_destroys = 10 }
"#;

// ---- a tiny HTTP server on the loopback address ---------------------------------

/// Serves the files of a directory (which a test may change) and counts requests.
struct Server {
    url: String,
    root: Arc<Mutex<PathBuf>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared_root = Arc::new(Mutex::new(root.to_path_buf()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (r, q) = (shared_root.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
                q.lock().unwrap().push(path.clone());
                let file = r.lock().unwrap().join(path.trim_start_matches('/'));
                let response = match std::fs::read(&file) {
                    Ok(body) if !path.contains("..") => {
                        let mut head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        head.extend(body);
                        head
                    }
                    _ => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = stream.write_all(&response);
            }
        });
        Server {
            url,
            root: shared_root,
            requests,
        }
    }

    fn serve(&self, root: &Path) {
        *self.root.lock().unwrap() = root.to_path_buf();
    }

    fn component_requests(&self) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.contains("/components/"))
            .count()
    }
}

// ---- lock and check ------------------------------------------------------------

#[test]
fn lock_then_check_runs_exactly_the_locked_components() {
    let s = Space::new();
    s.write(
        "repo/components/mine.wasm",
        provkey_stock::find("create-before-destroy").unwrap().bytes,
    );
    let repo_dir = s.path("repo");
    s.write(
        "repo/provkey.toml",
        r#"[policy.immutable]
stock = "immutable"

[policy.create-before-destroy]
path = "components/mine.wasm"
enforcement = "advisory"
"#,
    );
    // No lock yet: refused, with what to do.
    let r = s.check(&repo_dir, REPLACE_PLAN, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("provkey lock"), "{r:?}");

    let r = s.lock(&repo_dir);
    ok(&r);
    let lock = std::fs::read_to_string(repo_dir.join("provkey.lock")).unwrap();
    let mine =
        provkey_core::blake3_hex(provkey_stock::find("create-before-destroy").unwrap().bytes);
    assert!(lock.contains(&mine), "{lock}");
    assert!(
        lock.contains("source = \"path:components/mine.wasm\""),
        "{lock}"
    );
    assert!(lock.contains("source = \"stock\""), "{lock}");

    let r = s.check(&repo_dir, REPLACE_PLAN, &["--format", "json"]);
    ok(&r);
    let ids: Vec<String> = r.json()["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["create-before-destroy", "immutable"]);
    // `--policy-set FILE` from elsewhere gives the same.
    let r = s.check(
        s.dir.path(),
        REPLACE_PLAN,
        &[
            "--policy-set",
            repo_dir.join("provkey.toml").to_str().unwrap(),
        ],
    );
    ok(&r);
    let r = s.check(&repo_dir, UPDATE_PLAN, &[]);
    assert_eq!(r.code, 1, "{r:?}");
}

#[test]
fn a_component_whose_digest_differs_from_the_lock_is_refused() {
    let s = Space::new();
    let repo_dir = s.path("repo");
    let component = s.write(
        "repo/mine.wasm",
        provkey_stock::find("immutable").unwrap().bytes,
    );
    s.write(
        "repo/provkey.toml",
        "[policy.immutable]\npath = \"mine.wasm\"\n",
    );
    ok(&s.lock(&repo_dir));
    let locked = provkey_core::blake3_hex(provkey_stock::find("immutable").unwrap().bytes);
    // The same component with one custom section more: another digest.
    let mut changed = provkey_stock::find("immutable").unwrap().bytes.to_vec();
    changed.extend_from_slice(&[0, 5, 4, b'n', b'o', b't', b'e']);
    std::fs::write(&component, &changed).unwrap();
    let now = provkey_core::blake3_hex(&changed);
    let r = s.check(&repo_dir, REPLACE_PLAN, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("policy `immutable`"), "{r:?}");
    assert!(
        r.stderr.contains(&locked) && r.stderr.contains(&now),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("help:") && r.stderr.contains("provkey lock"),
        "{r:?}"
    );
    // Editing provkey.toml also needs a new lock.
    s.write(
        "repo/provkey.toml",
        "[policy.immutable]\nstock = \"immutable\"\n",
    );
    let r = s.check(&repo_dir, REPLACE_PLAN, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("changed since"), "{r:?}");
}

// ---- organization sets ---------------------------------------------------------

#[test]
fn an_org_set_served_over_http_is_fetched_cached_by_digest_and_refused_when_it_changes() {
    let s = Space::new();
    let k = keys();
    let org = s.org_dir("org", ORG_SET, &["immutable", "destroy-budget"]);
    let served = s.path("www");
    std::fs::create_dir_all(&served).unwrap();
    ok(&s.publish(&org, &k.publisher, 1, &served.join("acme")));
    let server = Server::start(&served);
    let repo_dir = s.path("repo");
    s.write(
        "repo/provkey.toml",
        format!(
            "{}\n[set.acme]\nsource = \"{}/acme\"\n",
            trust_line(),
            server.url
        ),
    );
    let r = s.lock(&repo_dir);
    ok(&r);
    assert!(r.stdout.contains("set acme version 1"), "{r:?}");
    assert_eq!(
        server.component_requests(),
        2,
        "both components fetched once"
    );
    let immutable = provkey_core::blake3_hex(provkey_stock::find("immutable").unwrap().bytes);
    assert!(
        s.cache
            .join("components")
            .join(format!("{immutable}.wasm"))
            .is_file()
    );

    // The set's soft-mandatory level applies; the components come from the cache.
    let r = s.check(&repo_dir, UPDATE_PLAN, &["--format", "json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let report = r.json();
    assert_eq!(report["summary"]["soft_mandatory"], 1, "{r:?}");
    assert_eq!(report["summary"]["hard_mandatory"], 0, "{r:?}");
    assert_eq!(server.component_requests(), 2, "cached by digest: {r:?}");
    ok(&s.check(&repo_dir, REPLACE_PLAN, &[]));

    // Locked and cached: `check` needs no network at all, set file included.
    let before = server.requests.lock().unwrap().len();
    server.serve(&s.path("nothing-served"));
    ok(&s.check(&repo_dir, REPLACE_PLAN, &[]));
    assert_eq!(
        server.requests.lock().unwrap().len(),
        before,
        "no request once locked and cached"
    );
    server.serve(&served);

    // The server now serves a component that is not the one the publisher signed.
    let swapped = served
        .join("acme/components")
        .join(format!("{immutable}.wasm"));
    std::fs::write(
        &swapped,
        provkey_stock::find("destroy-budget").unwrap().bytes,
    )
    .unwrap();
    let r = s.check(&repo_dir, REPLACE_PLAN, &["--no-cache"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("policy `immutable`"), "{r:?}");
    assert!(r.stderr.contains(&immutable), "{r:?}");
    assert!(
        r.stderr.contains(&provkey_core::blake3_hex(
            provkey_stock::find("destroy-budget").unwrap().bytes
        )),
        "{r:?}"
    );

    // The server now serves a new publication (version 2, another configuration).
    let org2 = s.org_dir(
        "org2",
        &ORG_SET.replace("max_destroys = 10", "max_destroys = 3"),
        &["immutable", "destroy-budget"],
    );
    let served2 = s.path("www2");
    ok(&s.publish(&org2, &k.publisher, 2, &served2.join("acme")));
    server.serve(&served2);
    // `check` keeps running the locked, cached version 1; without the cache it sees
    // the new publication and refuses it until it is locked.
    ok(&s.check(&repo_dir, REPLACE_PLAN, &[]));
    let r = s.check(&repo_dir, REPLACE_PLAN, &["--no-cache"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("set `acme`"), "{r:?}");
    assert!(
        r.stderr.contains("version 2") && r.stderr.contains("version 1"),
        "{r:?}"
    );
    assert!(r.stderr.contains("provkey lock"), "{r:?}");
    // After review, locking again accepts it.
    ok(&s.lock(&repo_dir));
    ok(&s.check(&repo_dir, REPLACE_PLAN, &[]));
    // And the server going back to version 1 is a downgrade.
    server.serve(&served);
    let r = s.lock(&repo_dir);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("downgrade"), "{r:?}");
}

/// A published set in `rel`, referred to by a repository in `repo`; returns the repo dir.
fn repo_with_set(s: &Space, set_dir: &Path, extra: &str) -> PathBuf {
    let repo_dir = s.path("repo");
    s.write(
        "repo/provkey.toml",
        format!(
            "{}\n[set.acme]\nsource = {:?}\n{extra}",
            trust_line(),
            set_dir.to_str().unwrap()
        ),
    );
    repo_dir
}

#[test]
fn published_sets_are_verified_before_any_component_is_loaded() {
    let s = Space::new();
    let k = keys();
    let org = s.org_dir("org", ORG_SET, &["immutable", "destroy-budget"]);

    // Signed by the publisher: accepted.
    let good = s.path("good");
    ok(&s.publish(&org, &k.publisher, 5, &good));
    let repo_dir = repo_with_set(&s, &good, "");
    ok(&s.lock(&repo_dir));

    // Tampered after signing: one byte of the set file changed.
    let tampered = s.path("tampered");
    ok(&s.publish(&org, &k.publisher, 6, &tampered));
    let set_file = tampered.join("policy-set.json");
    let text = std::fs::read_to_string(&set_file).unwrap();
    std::fs::write(
        &set_file,
        text.replace("max_destroys\":10", "max_destroys\":99"),
    )
    .unwrap();
    let repo_dir = repo_with_set(&s, &tampered, "");
    let r = s.lock(&repo_dir);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("is refused") && r.stderr.contains("does not verify"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("compil"), "nothing loaded: {r:?}");

    // `publish` itself refuses a key that the trust root does not make a publisher.
    let refused = s.path("refused");
    let r = run(s
        .cmd(s.dir.path())
        .args(["policy", "publish"])
        .arg(&org)
        .arg("--key")
        .arg(&k.approver.secret)
        .arg("--trust")
        .arg(&k.trust)
        .args(["--version", "7", "--out"])
        .arg(&refused));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("does not hold the `policy-publisher` role"),
        "{r:?}"
    );
    assert!(!refused.exists(), "nothing is written");

    // Signed by a key of the trust root that is not a policy publisher there.
    let wrong_role = s.path("wrong-role");
    ok(&s.publish(&org, &k.approver, 7, &wrong_role));
    let repo_dir = repo_with_set(&s, &wrong_role, "");
    let r = s.lock(&repo_dir);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("does not hold the `policy-publisher` role"),
        "{r:?}"
    );

    // Signed by a key the trust root does not list.
    let stranger = s.path("stranger");
    ok(&s.publish(&org, &k.stranger, 8, &stranger));
    let repo_dir = repo_with_set(&s, &stranger, "");
    let r = s.lock(&repo_dir);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("does not list"), "{r:?}");

    // A lower version than one already seen (5) from this publisher.
    let older = s.path("older");
    ok(&s.publish(&org, &k.publisher, 4, &older));
    let repo_dir = repo_with_set(&s, &older, "");
    let r = s.lock(&repo_dir);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("version 4, lower than version 5 already seen"),
        "{r:?}"
    );
    // Without a trust root, a set is not used at all.
    s.write(
        "repo/provkey.toml",
        format!("[set.acme]\nsource = {:?}\n", good.to_str().unwrap()),
    );
    let r = s.lock(&repo_dir);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no trust root"), "{r:?}");
}

#[test]
fn a_repository_may_raise_but_never_lower_an_org_level() {
    let s = Space::new();
    let k = keys();
    let org = s.org_dir("org", ORG_SET, &["immutable", "destroy-budget"]);
    let set = s.path("set");
    ok(&s.publish(&org, &k.publisher, 1, &set));

    let repo_dir = repo_with_set(
        &s,
        &set,
        "[set.acme.policy.immutable]\nenforcement = \"advisory\"\n",
    );
    let r = s.lock(&repo_dir);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("policy `immutable`"), "{r:?}");
    assert!(
        r.stderr.contains("`advisory`") && r.stderr.contains("`soft-mandatory`"),
        "{r:?}"
    );

    let repo_dir = repo_with_set(
        &s,
        &set,
        "[set.acme.policy.immutable]\nrules = { \"no-update-in-place\" = \"hard-mandatory\" }\n",
    );
    ok(&s.lock(&repo_dir));
    let r = s.check(&repo_dir, UPDATE_PLAN, &["--format", "json"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()["summary"]["hard_mandatory"], 1, "{r:?}");
}

// ---- enforcement levels, overrides ---------------------------------------------

fn immutable_at(s: &Space, level: &str, extra: &str) -> PathBuf {
    let repo_dir = s.path("repo");
    s.write(
        "repo/provkey.toml",
        format!(
            "{}{extra}\n[policy.immutable]\nstock = \"immutable\"\nenforcement = \"{level}\"\n",
            trust_line()
        ),
    );
    ok(&s.lock(&repo_dir));
    repo_dir
}

#[test]
fn enforcement_levels_decide_the_exit_code_and_show_in_every_format() {
    let s = Space::new();
    for (level, code, sarif_level, github) in [
        ("advisory", 0, "warning", "::warning "),
        ("soft-mandatory", 1, "error", "::error "),
        ("hard-mandatory", 1, "error", "::error "),
    ] {
        let repo_dir = immutable_at(&s, level, "");
        let sarif = s.path(&format!("{level}.sarif"));
        let junit = s.path(&format!("{level}.xml"));
        let md = s.path(&format!("{level}.md"));
        let gh = s.path(&format!("{level}.gh"));
        let r = s.check(
            &repo_dir,
            UPDATE_PLAN,
            &[
                "--format",
                "json",
                "--format",
                &format!("sarif={}", sarif.display()),
                "--format",
                &format!("junit={}", junit.display()),
                "--format",
                &format!("markdown={}", md.display()),
                "--format",
                &format!("github={}", gh.display()),
            ],
        );
        assert_eq!(r.code, code, "{level}: {r:?}");
        let report = r.json();
        assert_eq!(report["findings"][0]["enforcement"], level, "{r:?}");
        let sarif: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
        let result = &sarif["runs"][0]["results"][0];
        assert_eq!(result["level"], sarif_level, "{level}");
        assert_eq!(result["properties"]["enforcement"], level);
        let rule = sarif["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == "immutable/no-update-in-place")
            .unwrap()
            .clone();
        assert_eq!(rule["properties"]["enforcement"], level, "{level}");
        let junit = std::fs::read_to_string(&junit).unwrap();
        assert_eq!(junit.contains("<failure"), code == 1, "{level}: {junit}");
        assert!(std::fs::read_to_string(&md).unwrap().contains(level));
        let gh = std::fs::read_to_string(&gh).unwrap();
        assert!(
            gh.starts_with(github) && gh.contains(level),
            "{level}: {gh}"
        );
    }
}

fn write_override(s: &Space, name: &str, key: &KeyPair, plan: &str, rule: &str) -> (Run, PathBuf) {
    let out = s.path(name);
    let r = run(s
        .cmd(s.dir.path())
        .args(["policy", "override", "--plan"])
        .arg(repo(plan))
        .args(["--policy", "immutable", "--rule", rule])
        .args(["--reason", "the migration resizes the bastion in place"])
        .args(["--expires", "2099-12-31", "--key"])
        .arg(&key.secret)
        .arg("--out")
        .arg(&out));
    (r, out)
}

#[test]
fn an_approver_override_passes_a_soft_mandatory_finding_but_never_a_hard_one() {
    let s = Space::new();
    let k = keys();
    let (r, good) = write_override(
        &s,
        "override.json",
        &k.approver,
        UPDATE_PLAN,
        "no-update-in-place",
    );
    ok(&r);
    assert!(s.path("override.json.minisig").is_file());

    let repo_dir = immutable_at(&s, "soft-mandatory", "");
    let arg = good.to_str().unwrap();
    let r = s.check(
        &repo_dir,
        UPDATE_PLAN,
        &["--override", arg, "--format", "json"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let report = r.json();
    assert_eq!(report["summary"]["overridden"], 1, "{r:?}");
    assert_eq!(report["findings"][0]["exception"]["status"], "overridden");
    assert_eq!(
        report["findings"][0]["exception"]["approver"],
        k.approver.key_id_hex()
    );

    let repo_dir = immutable_at(&s, "hard-mandatory", "");
    let r = s.check(
        &repo_dir,
        UPDATE_PLAN,
        &["--override", arg, "--format", "json"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.json()["findings"][0]["exception"]["status"],
        "refused",
        "{r:?}"
    );

    // Signed by a key that is not an approver; or made for another plan.
    let repo_dir = immutable_at(&s, "soft-mandatory", "");
    let (r, by_publisher) = write_override(
        &s,
        "o2.json",
        &k.publisher,
        UPDATE_PLAN,
        "no-update-in-place",
    );
    ok(&r);
    let r = s.check(
        &repo_dir,
        UPDATE_PLAN,
        &["--override", by_publisher.to_str().unwrap()],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("does not hold the `approver` role"),
        "{r:?}"
    );
    let (r, other_plan) = write_override(
        &s,
        "o3.json",
        &k.approver,
        REPLACE_PLAN,
        "no-update-in-place",
    );
    ok(&r);
    let r = s.check(
        &repo_dir,
        UPDATE_PLAN,
        &["--override", other_plan.to_str().unwrap()],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not this plan"), "{r:?}");
}

// ---- waivers -------------------------------------------------------------------

fn waivers(s: &Space, name: &str, entries: &[(&str, &str)], key: Option<&KeyPair>) -> PathBuf {
    let mut text = String::new();
    for (address, expires) in entries {
        text.push_str(&format!(
            "[[waiver]]\npolicy = \"immutable\"\nrule = \"no-update-in-place\"\naddress = \"{address}\"\n\
             reason = \"resized in place during the migration\"\nowner = \"platform@example.com\"\nexpires = {expires}\n\n"
        ));
    }
    let path = s.write(name, text);
    if let Some(key) = key {
        let r = run(s
            .cmd(s.dir.path())
            .args(["waiver", "sign"])
            .arg(&path)
            .arg("--key")
            .arg(&key.secret));
        ok(&r);
    }
    path
}

#[test]
fn a_waiver_applies_is_reported_as_waived_and_is_scoped() {
    let s = Space::new();
    let k = keys();
    let repo_dir = immutable_at(&s, "soft-mandatory", "");
    let w = waivers(
        &s,
        "w.toml",
        &[("aws_instance.*", "2099-12-31")],
        Some(&k.approver),
    );
    let files: Vec<(String, PathBuf)> = ["sarif", "junit", "markdown", "github", "text"]
        .iter()
        .map(|f| (f.to_string(), s.path(&format!("out.{f}"))))
        .collect();
    let mut args = vec![
        "--waivers".to_string(),
        w.display().to_string(),
        "--format".into(),
        "json".into(),
    ];
    for (format, path) in &files {
        args.push("--format".into());
        args.push(format!("{format}={}", path.display()));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = s.check(&repo_dir, UPDATE_PLAN, &args);
    assert_eq!(r.code, 0, "{r:?}");
    let report = r.json();
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["summary"]["waived"], 1, "{r:?}");
    let finding = &report["findings"][0];
    assert_eq!(finding["address"], "aws_instance.bastion");
    assert_eq!(finding["exception"]["status"], "waived");
    assert_eq!(finding["exception"]["owner"], "platform@example.com");
    assert_eq!(report["waivers"][0]["status"], "applied");
    let read = |f: &str| std::fs::read_to_string(s.path(&format!("out.{f}"))).unwrap();
    let sarif: serde_json::Value = serde_json::from_str(&read("sarif")).unwrap();
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["suppressions"][0]["status"], "accepted", "{result}");
    assert_eq!(result["level"], "note");
    assert!(!read("junit").contains("<failure"), "{}", read("junit"));
    assert!(read("junit").contains("waived"));
    assert!(read("markdown").contains("waived"));
    assert!(read("github").starts_with("::notice ") && read("github").contains("waived"));
    assert!(read("text").contains("waived") && read("text").contains("PASS"));

    // Scoped to another resource: the finding counts, the waiver is reported unused.
    let other = waivers(
        &s,
        "other.toml",
        &[("aws_db_instance.*", "2099-12-31")],
        Some(&k.approver),
    );
    let r = s.check(
        &repo_dir,
        UPDATE_PLAN,
        &["--waivers", other.to_str().unwrap(), "--format", "json"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let report = r.json();
    assert!(report["findings"][0].get("exception").is_none(), "{r:?}");
    assert_eq!(report["waivers"][0]["status"], "unused");
}

#[test]
fn an_expired_waiver_does_not_apply_and_is_reported() {
    let s = Space::new();
    let k = keys();
    let repo_dir = immutable_at(&s, "soft-mandatory", "");
    let w = waivers(
        &s,
        "w.toml",
        &[("aws_instance.bastion", "2020-01-31")],
        Some(&k.approver),
    );
    let gh = s.path("gh.txt");
    let r = s.check(
        &repo_dir,
        UPDATE_PLAN,
        &[
            "--waivers",
            w.to_str().unwrap(),
            "--format",
            "json",
            "--format",
            &format!("github={}", gh.display()),
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let report = r.json();
    assert_eq!(report["findings"][0]["exception"]["status"], "expired");
    assert_eq!(report["waivers"][0]["status"], "expired");
    assert_eq!(report["summary"]["soft_mandatory"], 1);
    let gh = std::fs::read_to_string(gh).unwrap();
    assert!(gh.contains("expired on 2020-01-31"), "{gh}");
}

#[test]
fn an_unsigned_tampered_or_wrongly_signed_waivers_file_is_refused() {
    let s = Space::new();
    let k = keys();
    let repo_dir = immutable_at(&s, "soft-mandatory", "");
    let unsigned = waivers(&s, "unsigned.toml", &[("*", "2099-12-31")], None);
    let r = s.check(
        &repo_dir,
        UPDATE_PLAN,
        &["--waivers", unsigned.to_str().unwrap()],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("is not signed") && r.stderr.contains("provkey waiver sign"),
        "{r:?}"
    );

    let tampered = waivers(
        &s,
        "tampered.toml",
        &[("aws_instance.bastion", "2099-12-31")],
        Some(&k.approver),
    );
    let text = std::fs::read_to_string(&tampered).unwrap();
    std::fs::write(&tampered, text.replace("aws_instance.bastion", "*")).unwrap();
    let r = s.check(
        &repo_dir,
        UPDATE_PLAN,
        &["--waivers", tampered.to_str().unwrap()],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("is refused") && r.stderr.contains("does not verify"),
        "{r:?}"
    );

    let by_publisher = waivers(&s, "pub.toml", &[("*", "2099-12-31")], Some(&k.publisher));
    let r = s.check(
        &repo_dir,
        UPDATE_PLAN,
        &["--waivers", by_publisher.to_str().unwrap()],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("does not hold the `approver` role"),
        "{r:?}"
    );
}

// ---- sealing and replay --------------------------------------------------------

/// Seals the replace-only plan under a policy set whose `destroy-budget` allows no
/// destroy (a soft-mandatory plan-wide finding), waived by a signed waiver.
fn sealed_with_waiver(s: &Space) -> PathBuf {
    let k = keys();
    let repo_dir = s.path("repo");
    let w = s.write(
        "repo/waivers.toml",
        "[[waiver]]\npolicy = \"destroy-budget\"\nrule = \"destroy-budget-exceeded\"\naddress = \"*\"\n\
         reason = \"the launch template is replaced on purpose\"\nowner = \"platform@example.com\"\nexpires = 2099-12-31\n",
    );
    ok(&run(s
        .cmd(s.dir.path())
        .args(["waiver", "sign"])
        .arg(&w)
        .arg("--key")
        .arg(&k.approver.secret)));
    s.write(
        "repo/provkey.toml",
        format!(
            "{}waivers = \"waivers.toml\"\n\n[policy.destroy-budget]\nstock = \"destroy-budget\"\nconfig = {{ max_destroys = 0 }}\n\n[policy.immutable]\nstock = \"immutable\"\n",
            trust_line()
        ),
    );
    ok(&s.lock(&repo_dir));
    let bundle = s.path("bundle");
    let r = run(s
        .cmd(&repo_dir)
        .env("PROVKEY_DATA_DIR", s.path("data"))
        .args(["seal", "--plan"])
        .arg(repo(REPLACE_PLAN))
        .arg("--key")
        .arg(&k.signer.secret)
        .args(["--target", "prod", "--trust"])
        .arg(&k.trust)
        .arg("--out")
        .arg(&bundle));
    ok(&r);
    bundle
}

#[test]
fn seal_records_the_waivers_that_applied_in_the_manifest() {
    let s = Space::new();
    let bundle = sealed_with_waiver(&s);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    let waivers = manifest["waivers"].as_array().expect("waivers recorded");
    assert_eq!(waivers.len(), 1, "{manifest}");
    assert_eq!(waivers[0]["kind"], "waiver");
    assert_eq!(waivers[0]["policy"], "destroy-budget");
    assert_eq!(waivers[0]["rule"], "destroy-budget-exceeded");
    assert_eq!(waivers[0]["owner"], "platform@example.com");
    assert_eq!(waivers[0]["expires"], "2099-12-31");
    assert_eq!(waivers[0]["approver_keyid"], keys().approver.key_id_hex());
    let waivers_file = std::fs::read(s.path("repo/waivers.toml")).unwrap();
    assert_eq!(
        waivers[0]["source_blake3"],
        provkey_core::blake3_hex(&waivers_file)
    );
    // Without the waiver, the same seal refuses and writes nothing.
    std::fs::remove_file(s.path("repo/waivers.toml.minisig")).unwrap();
    let r = run(s
        .cmd(&s.path("repo"))
        .env("PROVKEY_DATA_DIR", s.path("data"))
        .args(["seal", "--plan"])
        .arg(repo(REPLACE_PLAN))
        .arg("--key")
        .arg(&keys().signer.secret)
        .args(["--target", "prod", "--trust"])
        .arg(&keys().trust)
        .arg("--out")
        .arg(s.path("bundle2")));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!s.path("bundle2").exists());
}

#[test]
fn replay_confirms_a_sealed_bundle_and_reports_a_mismatch_precisely() {
    let s = Space::new();
    let bundle = sealed_with_waiver(&s);
    let r = run(s.cmd(s.dir.path()).arg("replay").arg(&bundle));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("match    destroy-budget") && r.stdout.contains("MATCH"),
        "{r:?}"
    );

    // Impact analysis: the same `immutable` as a candidate changes no verdict.
    let candidate = s.write(
        "candidate.wasm",
        provkey_stock::find("immutable").unwrap().bytes,
    );
    let r = run(s
        .cmd(s.dir.path())
        .arg("replay")
        .arg("--policy")
        .arg(&candidate)
        .arg(&bundle));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("same     immutable: verdict allow"),
        "{r:?}"
    );
    assert!(r.stdout.contains("0 verdicts would change"), "{r:?}");

    // A manifest whose recorded output of `immutable` is not what it gives.
    let fake = br#"[{"rule":"no-update-in-place","severity":"high","enforcement":"hard-mandatory","message":"sealed, not replayed","address":"aws_instance.web"}]"#;
    let fake_digest = provkey_core::blake3_hex(fake);
    std::fs::write(bundle.join("blobs").join(&fake_digest), fake).unwrap();
    let path = bundle.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let entry = manifest["policies"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["id"] == "immutable")
        .unwrap();
    let sealed_digest = entry["output_blake3"].as_str().unwrap().to_owned();
    entry["output_blake3"] = fake_digest.clone().into();
    let blobs = manifest["blobs"].as_array_mut().unwrap();
    blobs.push(
        serde_json::json!({"blake3": fake_digest, "size": fake.len(), "name": "output/fake"}),
    );
    blobs.sort_by(|a, b| a["blake3"].as_str().cmp(&b["blake3"].as_str()));
    std::fs::write(&path, serde_json_canonicalizer::to_vec(&manifest).unwrap()).unwrap();
    let r = run(s.cmd(s.dir.path()).arg("replay").arg(&bundle));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("MISMATCH immutable"), "{r:?}");
    assert!(
        r.stdout
            .contains(&format!("sealed {fake_digest}, replayed {sealed_digest}")),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(
            "- no-update-in-place high hard-mandatory aws_instance.web: sealed, not replayed"
        ),
        "{r:?}"
    );
    assert!(r.stdout.contains("match    destroy-budget"), "{r:?}");

    // A module that is nowhere to be found is named.
    let entry = manifest["policies"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["id"] == "immutable")
        .unwrap();
    entry["output_blake3"] = sealed_digest.into();
    entry["module_blake3"] = "0".repeat(64).into();
    std::fs::write(&path, serde_json_canonicalizer::to_vec(&manifest).unwrap()).unwrap();
    let r = run(s.cmd(s.dir.path()).arg("replay").arg(&bundle));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "MISSING  immutable: module blake3 {}",
            "0".repeat(64)
        )),
        "{r:?}"
    );
    assert!(r.stderr.contains("--modules"), "{r:?}");
}

#[test]
fn the_example_policy_set_locks_checks_and_publishes() {
    let s = Space::new();
    let example = s.path("example");
    std::fs::create_dir_all(&example).unwrap();
    for name in ["provkey.toml", "waivers.example.toml"] {
        std::fs::copy(
            repo(&format!("examples/policy-set/{name}")),
            example.join(name),
        )
        .unwrap();
    }
    ok(&s.lock(&example));
    let r = s.check(&example, UPDATE_PLAN, &["--format", "json"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()["summary"]["soft_mandatory"], 1, "{r:?}");
    ok(&s.check(&example, REPLACE_PLAN, &[]));
    let r = s.publish(
        &repo("examples/policy-set/org"),
        &keys().publisher,
        1,
        &s.path("published"),
    );
    ok(&r);
    assert!(s.path("published/policy-set.json.minisig").is_file());
}

/// Impact analysis with a candidate that does change a verdict: a new `immutable`,
/// written in C from the template and edited to refuse every bucket the plan creates
/// (the sealed plan creates one), built by the real `provkey build`.
#[test]
fn replay_impact_analysis_reports_the_verdicts_a_candidate_would_change() {
    let s = Space::new();
    let bundle = sealed_with_waiver(&s);
    let r = run(s
        .cmd(s.dir.path())
        .args(["new", "policy", "immutable", "--lang", "c"]));
    ok(&r);
    let source = s.path("immutable/policy.c");
    let text = std::fs::read_to_string(&source).unwrap();
    let strict = text.replace(
        "} else if (pk_attr_str(acl) != NULL && is_public(pk_attr_str(acl))) {",
        "} else {",
    );
    assert_ne!(
        strict, text,
        "the template's ACL check moved: update this test"
    );
    std::fs::write(&source, strict).unwrap();
    let r = run(s.cmd(s.dir.path()).args(["build", "immutable"]));
    ok(&r);
    let candidate = s.path("immutable/build/policy.wasm");

    let r = run(s
        .cmd(s.dir.path())
        .arg("replay")
        .arg("--policy")
        .arg(&candidate)
        .arg(&bundle));
    assert_eq!(r.code, 1, "a changed verdict fails the analysis: {r:?}");
    assert!(
        r.stdout
            .contains("CHANGED  immutable: verdict allow -> deny"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("module.data.aws_s3_bucket.artifacts"),
        "the diff names the resource: {r:?}"
    );
    assert!(r.stdout.contains("1 verdict would change"), "{r:?}");
    // The other sealed policies are not re-run as candidates.
    assert!(!r.stdout.contains("CHANGED  destroy-budget"), "{r:?}");
}

#[test]
fn the_lock_file_is_a_version_floor_on_every_machine() {
    let s = Space::new();
    let k = keys();
    let org = s.org_dir("org", ORG_SET, &["immutable", "destroy-budget"]);
    let v5 = s.path("v5");
    ok(&s.publish(&org, &k.publisher, 5, &v5));
    let v3 = s.path("v3");
    ok(&s.publish(&org, &k.publisher, 3, &v3));
    let served = s.path("served");
    crate::bundle_support::copy_dir(&v5, &served);
    let repo_dir = repo_with_set(&s, &served, "");
    ok(&s.lock(&repo_dir));
    let lock_file = repo_dir.join("provkey.lock");
    let locked = std::fs::read_to_string(&lock_file).unwrap();
    assert!(locked.contains("version = 5"), "{locked}");
    // The source now serves version 3, and the lock runs on a machine that never saw
    // version 5 (a fresh state directory): the lock file alone refuses the downgrade.
    std::fs::remove_dir_all(&served).unwrap();
    crate::bundle_support::copy_dir(&v3, &served);
    let other_machine = s.path("other-machine-state");
    let lock_elsewhere = |extra: &[&str]| {
        run(s
            .cmd(&repo_dir)
            .env("PROVKEY_STATE_DIR", &other_machine)
            .args(["lock", "--cache-dir"])
            .arg(&s.cache)
            .args(extra))
    };
    let r = lock_elsewhere(&[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("is version 3, lower than version 5 recorded in"),
        "{r:?}"
    );
    assert!(r.stderr.contains("--allow-downgrade"), "{r:?}");
    assert_eq!(std::fs::read_to_string(&lock_file).unwrap(), locked);
    // Lowered deliberately.
    ok(&lock_elsewhere(&["--allow-downgrade"]));
    assert!(
        std::fs::read_to_string(&lock_file)
            .unwrap()
            .contains("version = 3")
    );
}
