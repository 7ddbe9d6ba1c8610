//! `provkey key generate`, `seal`, `approve` and `provkey-exec verify` end to end, on a
//! real plan with the real stock policies. The attacks are in `attacks.rs`.

use proptest::prelude::*;

use crate::bundle_support::*;
use crate::support::{provkey, repo, run};

#[test]
fn a_sealed_bundle_has_the_documented_layout_and_verifies() {
    let w = world();
    let c = w.simple_copy();
    let m = c.manifest_json();
    assert_eq!(m["_type"], "https://provkey/plan-statement/v1");
    assert_eq!(m["target"]["environment"], "prod");
    assert_eq!(m["mode"], "replace-only");
    assert_eq!(
        m["issuer"]["minisign_keyid"],
        w.signer.key_id_hex().as_str()
    );
    assert_eq!(m["artifact"]["uri"], "oci://registry.example/app@1");
    // The engine named is the one linked in, as Cargo.lock resolved it.
    assert_eq!(
        m["engine"]["wasmtime_version"],
        crate::first_day::locked_version("wasmtime").as_str()
    );
    assert!(
        m["policies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["verdict"] == "allow")
    );
    assert!(!m["policies"].as_array().unwrap().is_empty());
    // Canonical: our own bytes are exactly the JCS encoding.
    let bytes = c.manifest();
    assert_eq!(serde_json_canonicalizer::to_vec(&m).unwrap(), bytes);
    assert!(!bytes.ends_with(b"\n"));
    // Blobs are content addressed and exactly the manifest's list.
    let mut listed: Vec<String> = m["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["blake3"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    let mut present: Vec<String> = std::fs::read_dir(c.bundle.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    assert_eq!(listed, present);
    for name in &present {
        let bytes = std::fs::read(c.blob_path(name)).unwrap();
        assert_eq!(&provkey_core::blake3_hex(&bytes), name);
    }
    // The trusted comment echoes digest, target, sequence and expiry.
    let tc = c.sig_text().lines().nth(2).unwrap().to_owned();
    assert_eq!(
        tc,
        format!(
            "trusted comment: v1 type=plan-statement manifest={} target=prod seq={} exp={} role=plan-signer",
            provkey_core::blake3_hex(&bytes),
            m["sequence"],
            m["expires_at"]
        )
    );
    assert_accepted(&verify_simple(&c.bundle, &[]));
    assert_accepted(&verify_rooted(&w.rooted_copy().bundle, &[]));
}

/// The plan's blobs hold its values in clear, sensitive ones included.
#[cfg(unix)]
#[test]
fn a_sealed_bundle_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let w = world();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&w.simple), 0o700);
    let mut files = 0;
    for entry in walk(&w.simple) {
        let expected = if entry.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&entry), expected, "{}", entry.display());
        files += usize::from(entry.is_file());
    }
    assert!(files >= 3, "{files} files");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn seal_refuses_a_plan_with_mandatory_findings_and_writes_nothing() {
    let w = world();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    let r = run(w.seal_cmd(&out).args([
        "--plan",
        repo("examples/plans/update-in-place.json")
            .to_str()
            .unwrap(),
    ]));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("refusing to seal"), "{r:?}");
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "no temporary left"
    );
}

#[test]
fn seal_refuses_when_a_policy_fails_and_writes_nothing() {
    let w = world();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    let config = tmp.path().join("mode.json");
    std::fs::write(&config, r#"{"mode": "trap"}"#).unwrap();
    let r = run(w.seal_cmd(&out).args([
        "--plan",
        good_plan().to_str().unwrap(),
        "--policy",
        provkey_test_guests::HOSTILE,
        "--config",
        &format!("hostile={}", config.display()),
    ]));
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("a policy failed"), "{r:?}");
    assert!(!out.exists());
}

#[test]
fn an_encrypted_key_round_trips_and_a_wrong_password_writes_nothing() {
    let w = world();
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "correct horse\n").unwrap();
    let keys = tmp.path().join("keys");
    let r = run(provkey()
        .args(["key", "generate", "--out"])
        .arg(&keys)
        .args(["--password-file", pw.to_str().unwrap()]));
    assert_eq!(r.code, 0, "{r:?}");
    let secret = keys.join("plan-signer.key");
    assert!(
        std::fs::read_to_string(&secret)
            .unwrap()
            .contains("encrypted secret key")
    );

    let out = tmp.path().join("bundle");
    let r = run(provkey()
        .env("PROVKEY_DATA_DIR", tmp.path().join("data"))
        .env("PK_PW", "correct horse")
        .args([
            "seal",
            "--policy",
            "immutable",
            "--plan",
            good_plan().to_str().unwrap(),
            "--target",
            "prod",
        ])
        .args([
            "--key",
            secret.to_str().unwrap(),
            "--password-env",
            "PK_PW",
            "--out",
        ])
        .arg(&out));
    assert_eq!(r.code, 0, "{r:?}");
    assert_accepted(&verify_with(&out, &keys.join("plan-signer.pub"), &[]));

    let out2 = tmp.path().join("bundle2");
    let r = run(provkey()
        .env("PROVKEY_DATA_DIR", tmp.path().join("data"))
        .env("PK_PW", "wrong")
        .args([
            "seal",
            "--policy",
            "immutable",
            "--plan",
            good_plan().to_str().unwrap(),
            "--target",
            "prod",
        ])
        .args([
            "--key",
            secret.to_str().unwrap(),
            "--password-env",
            "PK_PW",
            "--out",
        ])
        .arg(&out2));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("wrong password for that key"), "{r:?}");
    assert!(!out2.exists());
    let _ = w;
}

#[test]
fn sequences_only_grow_per_target() {
    let w = world();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let seal = |out: &str, extra: &[&str]| {
        run(provkey()
            .env("PROVKEY_DATA_DIR", &data)
            .args([
                "seal",
                "--policy",
                "immutable",
                "--plan",
                good_plan().to_str().unwrap(),
                "--target",
                "qa",
            ])
            .args(["--key", w.signer.secret.to_str().unwrap(), "--out"])
            .arg(tmp.path().join(out))
            .args(extra))
    };
    assert_eq!(seal("a", &[]).code, 0);
    assert_eq!(seal("b", &[]).code, 0);
    let seq = |out: &str| {
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(tmp.path().join(out).join("manifest.json")).unwrap(),
        )
        .unwrap();
        m["sequence"].as_u64().unwrap()
    };
    assert_eq!((seq("a"), seq("b")), (1, 2));
    let r = seal("c", &["--sequence", "2"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("sequence 2 is not above 2"), "{r:?}");
    assert_eq!(seal("d", &["--sequence", "10"]).code, 0);
    assert_eq!(seal("e", &[]).code, 0);
    assert_eq!(seq("e"), 11);
    assert_eq!(
        std::fs::read_to_string(data.join("sequences/qa")).unwrap(),
        "11\n"
    );
}

#[test]
fn approve_prints_what_it_approves_and_meets_the_approver_threshold() {
    let w = world();
    let tmp = tempfile::tempdir().unwrap();
    let trust = tmp.path().join("trust-root.json");
    copy_trust(&w.trust, &trust);
    trust_cmd(&[
        "set-threshold",
        trust.to_str().unwrap(),
        "--role",
        "approver",
        "--threshold",
        "2",
    ]);
    trust_cmd(&[
        "sign",
        trust.to_str().unwrap(),
        "--key",
        w.root.secret.to_str().unwrap(),
    ]);
    let out = tmp.path().join("bundle");
    let r = w.seal(&out, &["--trust", trust.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_refused(&verify_with(&out, &trust, &[]), "threshold");

    let r = run(provkey()
        .arg("approve")
        .arg(&out)
        .args(["--key", w.approver.secret.to_str().unwrap()]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("target:    prod"), "{r:?}");
    assert!(r.stdout.contains("replace  aws_instance.bastion"), "{r:?}");
    assert!(r.stdout.contains("policies ("), "{r:?}");
    assert_refused(&verify_with(&out, &trust, &[]), "threshold");

    let r = run(provkey()
        .arg("approve")
        .arg(&out)
        .args(["--key", w.approver2.secret.to_str().unwrap()]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_accepted(&verify_with(&out, &trust, &[]));
}

/// Copies a trust root (the signatures are made again by the caller).
pub fn copy_trust(from: &std::path::Path, to: &std::path::Path) {
    std::fs::copy(from, to).unwrap();
}

#[test]
fn provkey_exec_exit_codes() {
    let w = world();
    let c = w.simple_copy();
    assert_eq!(verify_simple(&c.bundle, &[]).code, 0);
    assert_eq!(
        verify_simple(&c.bundle, &["--target", "staging"]).code,
        2,
        "target given twice is usage"
    );
    assert_eq!(
        run(crate::support::provkey_exec().args(["verify", "--nope"])).code,
        2
    );
    let missing = verify_with(&c.bundle, &c.tmp.path().join("nope.pub"), &[]);
    assert_eq!(missing.code, 2, "{missing:?}");
    let r = verify_with(&c.bundle, &w.other_signer.public, &[]);
    assert_refused(&r, "signature");
    let r = verify_rooted(&c.bundle, &["--now", "99999999999"]);
    assert_trust_refused(&r, "expired");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any single-byte change to the manifest, a `.minisig` or a blob is refused.
    #[test]
    fn any_single_byte_change_is_refused(which in 0usize..3, pos in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let w = world();
        let c = w.simple_copy();
        let path = match which {
            0 => c.manifest_path(),
            1 => c.sig_path(),
            _ => {
                let mut blobs: Vec<_> = std::fs::read_dir(c.bundle.join("blobs")).unwrap().map(|e| e.unwrap().path()).collect();
                blobs.sort();
                blobs[pos.index(blobs.len())].clone()
            }
        };
        let mut bytes = std::fs::read(&path).unwrap();
        let i = pos.index(bytes.len());
        // Line 1 of a .minisig is the untrusted comment: changing it is allowed (A5).
        let untrusted_end = if which == 1 { bytes.iter().position(|b| *b == b'\n').unwrap() } else { 0 };
        let i = if which == 1 && i < untrusted_end { untrusted_end + (i % (bytes.len() - untrusted_end)) } else { i };
        bytes[i] ^= xor;
        std::fs::write(&path, &bytes).unwrap();
        let r = verify_simple(&c.bundle, &[]);
        prop_assert_eq!(r.code, 1, "byte {} of {} xor {}: {:?}", i, path.display(), xor, r);
    }
}
