//! Fixtures for the sealing and attack tests: keys, trust roots and bundles made by the
//! real `provkey key generate`, `provkey trust …` and `provkey seal` on a real plan with
//! the real stock policies, sealed once and copied for each test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use provkey_core::keys::SecretKey;
use provkey_core::minisig::{Minisig, Role, StatementKind, TrustedComment};

use crate::support::{Run, provkey, provkey_exec, repo, run};

/// The plan every fixture seals: replace-only, passes the stock policies.
pub fn good_plan() -> PathBuf {
    repo("examples/plans/replace-only.json")
}

/// The stock policies the good plan passes (`required-tags` flags the example plan's
/// missing tags, a soft-mandatory finding, so it is left out).
pub const POLICIES: &[&str] = &[
    "--policy",
    "allowed-regions",
    "--policy",
    "create-before-destroy",
    "--policy",
    "destroy-budget",
    "--policy",
    "immutable",
    "--policy",
    "no-remote-shell",
    "--policy",
    "pinned-artifacts",
];

/// A key pair written by `provkey key generate --unencrypted`.
#[derive(Clone, Debug)]
pub struct KeyPair {
    pub secret: PathBuf,
    pub public: PathBuf,
}

impl KeyPair {
    pub fn load(&self) -> SecretKey {
        SecretKey::from_file_text(&std::fs::read_to_string(&self.secret).unwrap(), None).unwrap()
    }
    pub fn key_id_hex(&self) -> String {
        self.load().public().key_id_hex()
    }
}

pub fn keygen(dir: &Path, role: &str) -> KeyPair {
    let out = dir.join(format!("keys-{role}-{}", unique()));
    let r = run(provkey()
        .args(["key", "generate", "--unencrypted", "--role", role, "--out"])
        .arg(&out));
    assert_eq!(r.code, 0, "{r:?}");
    KeyPair {
        secret: out.join(format!("{role}.key")),
        public: out.join(format!("{role}.pub")),
    }
}

pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Everything the fixtures share: one directory, keys, a trust root, sealed bundles.
#[derive(Debug)]
pub struct World {
    #[allow(
        dead_code,
        reason = "the fixtures' directory, kept for debugging failed tests"
    )]
    pub dir: PathBuf,
    pub data: PathBuf,
    pub root: KeyPair,
    pub signer: KeyPair,
    pub other_signer: KeyPair,
    pub approver: KeyPair,
    pub approver2: KeyPair,
    pub artifact: PathBuf,
    /// Trust root v1: root, signer, other_signer (plan-signers), approver, approver2.
    pub trust: PathBuf,
    /// Sealed against the single signer key (trust version 0), with an artifact.
    pub simple: PathBuf,
    /// Sealed against `trust` (version 1).
    pub rooted: PathBuf,
}

pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("provkey-world")
            .tempdir_in(crate::support::run_tmp())
            .unwrap()
            .keep();
        let data = dir.join("data");
        let root = keygen(&dir, "root");
        let signer = keygen(&dir, "plan-signer");
        let other_signer = keygen(&dir, "plan-signer");
        let approver = keygen(&dir, "approver");
        let approver2 = keygen(&dir, "approver");
        let artifact = dir.join("app.img");
        std::fs::write(&artifact, b"an immutable machine image\n").unwrap();
        let trust = dir.join("trust-root.json");
        trust_cmd(&["init", "--out", trust.to_str().unwrap()]);
        for (k, role) in [
            (&root, "root"),
            (&signer, "plan-signer"),
            (&other_signer, "plan-signer"),
            (&approver, "approver"),
            (&approver2, "approver"),
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
        let world = World {
            simple: dir.join("simple"),
            rooted: dir.join("rooted"),
            dir,
            data,
            root,
            signer,
            other_signer,
            approver,
            approver2,
            artifact,
            trust,
        };
        let r = world.seal(
            &world.simple,
            &[
                "--artifact",
                world.artifact.to_str().unwrap(),
                "--artifact-uri",
                "oci://registry.example/app@1",
            ],
        );
        assert_eq!(r.code, 0, "{r:?}");
        let r = world.seal(&world.rooted, &["--trust", world.trust.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{r:?}");
        world
    })
}

pub fn trust_cmd(args: &[&str]) -> Run {
    let r = run(provkey().arg("trust").args(args));
    assert_eq!(r.code, 0, "{r:?}");
    r
}

impl World {
    /// `provkey seal` of the good plan for target `prod` with the signer key.
    pub fn seal(&self, out: &Path, extra: &[&str]) -> Run {
        run(self
            .seal_cmd(out)
            .args(["--plan", good_plan().to_str().unwrap()])
            .args(extra))
    }

    pub fn seal_cmd(&self, out: &Path) -> Command {
        let mut cmd = provkey();
        cmd.env("PROVKEY_DATA_DIR", &self.data)
            .arg("seal")
            .args(["--key", self.signer.secret.to_str().unwrap()])
            .args(POLICIES)
            .args(["--target", "prod", "--out"])
            .arg(out);
        cmd
    }

    /// A fresh copy of the simple bundle.
    pub fn simple_copy(&self) -> Copy {
        Copy::of(&self.simple)
    }

    pub fn rooted_copy(&self) -> Copy {
        Copy::of(&self.rooted)
    }
}

/// A private copy of a sealed bundle, for one attack.
#[derive(Debug)]
pub struct Copy {
    pub tmp: tempfile::TempDir,
    pub bundle: PathBuf,
}

impl Copy {
    pub fn of(src: &Path) -> Copy {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = tmp.path().join("bundle");
        copy_dir(src, &bundle);
        Copy { tmp, bundle }
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.bundle.join("manifest.json")
    }
    pub fn manifest(&self) -> Vec<u8> {
        std::fs::read(self.manifest_path()).unwrap()
    }
    pub fn manifest_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.manifest()).unwrap()
    }
    /// The signature files, sorted by name.
    pub fn sig_paths(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.bundle)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "minisig"))
            .collect();
        v.sort();
        v
    }
    /// The one signature file of a freshly sealed bundle.
    pub fn sig_path(&self) -> PathBuf {
        let sigs = self.sig_paths();
        assert_eq!(sigs.len(), 1, "{sigs:?}");
        sigs[0].clone()
    }
    pub fn sig_text(&self) -> String {
        std::fs::read_to_string(self.sig_path()).unwrap()
    }
    pub fn set_sig_text(&self, text: impl AsRef<[u8]>) {
        std::fs::write(self.sig_path(), text).unwrap();
    }
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.bundle.join("blobs").join(digest)
    }
    pub fn plan_blob(&self) -> PathBuf {
        self.blob_path(self.manifest_json()["plan"]["blake3"].as_str().unwrap())
    }
    pub fn remove_sigs(&self) {
        for p in self.sig_paths() {
            std::fs::remove_file(p).unwrap();
        }
    }

    /// Replaces the manifest with `bytes` and signs them (as a compromised or careless
    /// signer would) with `key`, the trusted comment echoing `echo`'s fields.
    pub fn resign_bytes(
        &self,
        bytes: &[u8],
        key: &SecretKey,
        role: Role,
        echo: &serde_json::Value,
    ) {
        self.remove_sigs();
        std::fs::write(self.manifest_path(), bytes).unwrap();
        let tc = echo_comment(bytes, echo, role);
        self.add_sig(
            key,
            &provkey_core::sign::sign_unchecked(key, bytes, &tc.to_string()),
        );
    }

    /// Edits the manifest as JSON, writes it canonically and re-signs it with `key`.
    pub fn resign(&self, key: &SecretKey, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut value = self.manifest_json();
        edit(&mut value);
        let bytes = serde_json_canonicalizer::to_vec(&value).unwrap();
        self.resign_bytes(&bytes, key, Role::PlanSigner, &value);
    }

    pub fn add_sig(&self, key: &SecretKey, sig: &Minisig) {
        let name = format!("manifest.json.{}.minisig", key.public().key_id_hex());
        std::fs::write(self.bundle.join(name), sig.to_text()).unwrap();
    }
}

/// A trusted comment echoing a manifest's fields (falls back to harmless values).
pub fn echo_comment(bytes: &[u8], echo: &serde_json::Value, role: Role) -> TrustedComment {
    TrustedComment {
        kind: StatementKind::PlanStatement,
        manifest: provkey_core::blake3_hex(bytes),
        target: echo["target"]["environment"]
            .as_str()
            .filter(|t| provkey_core::minisig::is_identifier(t))
            .unwrap_or("prod")
            .to_owned(),
        seq: echo["sequence"].as_u64().unwrap_or(1),
        exp: echo["expires_at"].as_u64().unwrap_or(1),
        role,
    }
}

pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// `provkey-exec verify BUNDLE --trust TRUST --target prod EXTRA…`.
pub fn verify_with(bundle: &Path, trust: &Path, extra: &[&str]) -> Run {
    run(provkey_exec()
        .arg("verify")
        .arg(bundle)
        .arg("--trust")
        .arg(trust)
        .args(["--target", "prod"])
        .args(extra))
}

/// Verifies against the signer's public key alone.
pub fn verify_simple(bundle: &Path, extra: &[&str]) -> Run {
    verify_with(bundle, &world().signer.public, extra)
}

/// Verifies against the trust root.
pub fn verify_rooted(bundle: &Path, extra: &[&str]) -> Run {
    verify_with(bundle, &world().trust, extra)
}

#[track_caller]
pub fn assert_accepted(r: &Run) {
    assert_eq!(r.code, 0, "expected the bundle to be accepted: {r:?}");
    assert!(r.stdout.starts_with("verified: "), "{r:?}");
}

/// Exit 1, and the named check is the one that refused.
#[track_caller]
pub fn assert_refused(r: &Run, check: &str) {
    assert_eq!(r.code, 1, "expected a refusal at `{check}`: {r:?}");
    let needle = format!("refused at check `{check}`");
    assert!(r.stderr.contains(&needle), "expected `{needle}`: {r:?}");
}

/// Exit 3: the trust root itself is refused.
#[track_caller]
pub fn assert_trust_refused(r: &Run, what: &str) {
    assert_eq!(r.code, 3, "expected the trust root to be refused: {r:?}");
    assert!(r.stderr.contains(what), "expected `{what}`: {r:?}");
}
