//! Interop with the reference `minisign` CLI (Debian package `minisign`, installed by
//! `.ci/run`): it accepts our signatures, and an approval it makes is accepted by
//! `provkey-exec verify`. Skips loudly when `minisign` is not on PATH.

use std::process::Command;

use crate::bundle_support::*;
use crate::support::run;

fn minisign() -> Option<Command> {
    let found = Command::new("minisign").arg("-v").output().is_ok();
    if !found {
        eprintln!("SKIPPED: `minisign` is not on PATH (apt-get install minisign)");
        return None;
    }
    Some(Command::new("minisign"))
}

#[test]
fn reference_minisign_accepts_our_signatures() {
    let Some(mut cmd) = minisign() else { return };
    let w = world();
    let c = w.simple_copy();
    let r = run(cmd
        .args(["-V", "-H", "-p"])
        .arg(&w.signer.public)
        .arg("-m")
        .arg(c.manifest_path())
        .arg("-x")
        .arg(c.sig_path()));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("Signature and comment signature verified"),
        "{r:?}"
    );
    assert!(r.stdout.contains("v1 type=plan-statement"), "{r:?}");
    // And it refuses a tampered manifest.
    let mut bytes = c.manifest();
    bytes[5] ^= 1;
    std::fs::write(c.manifest_path(), bytes).unwrap();
    let r = run(Command::new("minisign")
        .args(["-V", "-H", "-p"])
        .arg(&w.signer.public)
        .arg("-m")
        .arg(c.manifest_path())
        .arg("-x")
        .arg(c.sig_path()));
    assert_eq!(r.code, 1, "{r:?}");
}

#[test]
fn an_approval_made_with_reference_minisign_is_accepted() {
    let Some(_) = minisign() else { return };
    let w = world();
    let tmp = tempfile::tempdir().unwrap();
    // An approver key made by the reference CLI (encrypted: its unencrypted keys carry no
    // checksum), added to a trust root that needs one approval.
    let (pk, sk) = (tmp.path().join("c.pub"), tmp.path().join("c.key"));
    let mut child = Command::new("minisign")
        .args(["-G", "-p"])
        .arg(&pk)
        .arg("-s")
        .arg(&sk)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(b"pw\npw\n").unwrap();
    }
    assert!(child.wait().unwrap().success());
    let trust = tmp.path().join("trust-root.json");
    std::fs::copy(&w.trust, &trust).unwrap();
    let t = trust.to_str().unwrap();
    trust_cmd(&[
        "add-key",
        t,
        "--key",
        pk.to_str().unwrap(),
        "--role",
        "approver",
    ]);
    trust_cmd(&["set-threshold", t, "--role", "approver", "--threshold", "1"]);
    trust_cmd(&["sign", t, "--key", w.root.secret.to_str().unwrap()]);
    let out = tmp.path().join("bundle");
    let r = w.seal(&out, &["--trust", t]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_refused(&verify_with(&out, &trust, &[]), "threshold");

    let c = Copy::of(&out);
    let pubkey =
        provkey_core::keys::PublicKey::from_file_text(&std::fs::read_to_string(&pk).unwrap())
            .unwrap();
    let echo = echo_comment(
        &c.manifest(),
        &c.manifest_json(),
        provkey_core::minisig::Role::Approver,
    );
    let sig = c
        .bundle
        .join(format!("manifest.json.{}.minisig", pubkey.key_id_hex()));
    let mut child = Command::new("minisign")
        .arg("-S")
        .arg("-s")
        .arg(&sk)
        .arg("-m")
        .arg(c.manifest_path())
        .arg("-x")
        .arg(&sig)
        .arg("-t")
        .arg(echo.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(b"pw\n").unwrap();
    }
    assert!(child.wait().unwrap().success());
    assert_accepted(&verify_with(&c.bundle, &trust, &[]));
    // A legacy (`-l`) approval from the same CLI is refused.
    std::fs::remove_file(&sig).unwrap();
    let mut child = Command::new("minisign")
        .args(["-S", "-l", "-s"])
        .arg(&sk)
        .arg("-m")
        .arg(c.manifest_path())
        .arg("-x")
        .arg(&sig)
        .arg("-t")
        .arg(echo.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(b"pw\n").unwrap();
    }
    assert!(child.wait().unwrap().success());
    assert_refused(&verify_with(&c.bundle, &trust, &[]), "minisig-parse");
}
