//! The attacks of the design reference (`signed-plan.md` §5), each built from a real
//! bundle sealed by `provkey seal` (real plan, real stock policies) and each asserting
//! the specific refusal of `provkey-exec verify` (the check it names) or of the tool.
//! Where an attack needs the signed manifest changed, the test re-signs it with the real
//! plan-signer key (a compromised or careless signer), so the refusal comes from the
//! semantic check and not from the signature.
//!
//! | case | test |
//! |---|---|
//! | A1 | `a01_valid_bundle_is_accepted` |
//! | A2 | `a02_plan_blob_altered` |
//! | A3 | `a03_manifest_altered` |
//! | A4 | `a04_trusted_comment_edited` |
//! | A5 | `a05_untrusted_comment_edited_is_accepted` |
//! | A6 | `a06_global_signature_from_another_signature` |
//! | A7 | `a07_trusted_comment_swapped_from_a_signature_of_the_same_bytes` |
//! | A8 | `a08_untrusted_key`, `a08_another_trusted_plan_signer_is_not_the_issuer` |
//! | A9 | `a09_key_id_rewritten` |
//! | A10 | `a10_two_trusted_keys_share_a_key_id` |
//! | A11 | `a11_legacy_signature` |
//! | A12 | `a12_algorithm_label_flipped` |
//! | A13 | `a13_unknown_algorithm` |
//! | A14 | `a14_truncated_and_signify_style_files`, `a14_directory_named_minisig` |
//! | A15 | `a15_invalid_base64_character` |
//! | A16 | `a16_non_canonical_base64` |
//! | A17 | `a17_trailing_bytes_in_signature_or_global_signature` |
//! | A18 | `a18_extra_fifth_line` |
//! | A19 | `a19_whitespace_around_base64` |
//! | A20 | `a20_crlf_is_accepted_bare_cr_is_not` |
//! | A21 | `a21_non_canonical_s` |
//! | A22 | `a22_trust_root_key_with_wrong_algorithm` |
//! | A23 | `a23_bad_trusted_comments` |
//! | A24 | `a24_signer_refuses_a_newline_in_the_trusted_comment` |
//! | A25 | `a25_oversized_minisig` |
//! | A26 | `a26_signature_over_another_file` |
//! | B27 | `b27_replay_below_the_high_water_mark` (library, in-memory executor state) |
//! | B28 | `b28_fork_and_wrong_previous_manifest` (library, in-memory executor state) |
//! | B29 | `b29_expired_not_yet_valid_too_long`, `b29_clock_before_last_seen` |
//! | B30 | `b30_stale_or_wrong_base_state` (library, in-memory executor state) |
//! | B31 | `b31_wrong_target_or_audience` |
//! | B32 | `b32_denied_verdict_missing_policy_module_not_allowed` |
//! | B33 | not applicable: `provkey-exec` runs no guest (no wasmtime); re-execution is the next issue's |
//! | B34 | `b34_duplicate_json_key` |
//! | B35 | `b35_non_canonical_unknown_field_float_negative_big_deep` |
//! | B36 | `b36_wrong_type` |
//! | B37 | `b37_non_ascii_target_and_uppercase_hex` |
//! | B38 | `b38_weak_or_missing_digest_algorithm` |
//! | B39 | `b39_extra_missing_truncated_blob` |
//! | B40 | `b40_plan_with_an_in_place_update` |
//! | B41 | `b41_artifact_altered` |
//! | B42 | `b42_engine_version_mismatch` |
//! | C43 | `c43_one_key_counts_once` |
//! | C44 | `c44_trust_root_with_a_key_twice` |
//! | C45 | `c45_revoked_key`, `c45_rotation_rules`, `c45_expired_trust_root` |
//! | C46 | `c46_approval_over_the_plan_body_does_not_count` |
//! | C47 | `c47_wrong_password_scrypt_too_high_zero_checksum` |
//! | D48 | `d48_bad_blob_names` |
//! | D49 | `d49_symlinks` |
//! | D50 | `d50_hard_link_and_fifo` |
//! | D51 | `d51_archive_instead_of_directory` |
//!
//! Classes found beyond the reference's list, tested through the real binaries in
//! `executor.rs` (and `apply.rs`):
//!
//! | class | test |
//! |---|---|
//! | E1 a signed plan whose paths no target can hold (over `NAME_MAX`, over the path bound, over `PATH_MAX` under the target): refused by `plan`, `seal`, and before the claim | `executor::overlong_paths_are_refused_by_plan`, `…_by_seal`, `…_before_the_claim` |
//! | E1 an apply that fails after its claim: the committed releases stay until the commit; `provkey-exec abandon` returns the target to its last committed state | `executor::abandon_after_a_crash_at_every_step_restores_the_committed_state`, `executor::a_crash_at_every_step_of_abandon_is_finished_by_running_it_again`, `executor::a_full_disk_names_the_real_error_and_never_drops_an_audit_line_silently` |
//! | E2 an `--artifact` label that is not what the plan deploys; `approve` hiding the changes | `executor::approve_shows_what_deploys_and_the_executor_refuses_another_artifact_label` |
//! | E3 an old trust-root file that still trusts a revoked key | `executor::an_old_trust_root_does_not_bring_a_revoked_key_back` |
//! | E5 `verify` of a bundle sealed against a deployed state | `executor::verify_checks_every_bundle_against_its_target_or_says_what_it_did_not_check` |
//! | E6 the bundle directory swapped during a claimed apply | `executor::a_bundle_swapped_during_an_apply_is_never_read` |
//! | E7 a release left writable by a crash; drift blind to directory modes | `executor::a_writable_release_is_drift_and_a_resume_rebuilds_it` |
//! | E8 `bundle-link/`, `--target-dir link/` | `executor::a_trailing_slash_does_not_get_past_the_link_refusals` |
//! | E9 "already applied" answered for an unauthenticated copy | `executor::already_applied_is_answered_only_for_an_authentic_bundle` |
//! | E10 signed fields never checked (policy-set version floor, trust-root digest, policy-set digest, issuer key id, input digests) | `executor::signed_fields_are_checked` |
//! | E11 a closed standard output, a full disk | `executor::a_closed_standard_output_is_reported_not_a_panic`, `executor::a_full_disk_names_the_real_error_and_never_drops_an_audit_line_silently`, `executor::a_refusal_the_audit_log_cannot_record_is_named` |
//! | E4 the audit log's tail cut, emptied, or rewritten whole | `executor::the_audit_log_is_anchored_in_the_state_and_outside` |
//! | E12 thousands of signature files | `executor::the_number_of_signature_files_is_capped_before_any_is_read` |

use std::collections::BTreeMap;
use std::path::Path;

use provkey_core::keys::SecretKey;
use provkey_core::minisig::{Minisig, Role, b64};
use provkey_core::trust::{RoleSpec, TRUST_ROOT_TYPE, TrustRoot, TrustRootDoc, TrustedKey};
use provkey_core::verify::{Check, MemoryState, VerifyOptions, verify_bundle};

use crate::bundle_support::*;
use crate::support::{provkey, run};

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

fn join(lines: &[String]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// Replaces line `n` (0-based) of the signature file.
fn edit_line(c: &Copy, n: usize, f: impl FnOnce(&str) -> String) {
    let mut l = lines(&c.sig_text());
    l[n] = f(&l[n]);
    c.set_sig_text(join(&l));
}

/// Decodes line `n`, edits the bytes, re-encodes canonically.
fn edit_line_bytes(c: &Copy, n: usize, f: impl FnOnce(&mut Vec<u8>)) {
    edit_line(c, n, |line| {
        let mut bytes = provkey_core::minisig::b64_strict(line).unwrap();
        f(&mut bytes);
        b64(&bytes)
    });
}

#[test]
fn a01_valid_bundle_is_accepted() {
    let w = world();
    assert_accepted(&verify_simple(&w.simple_copy().bundle, &[]));
    assert_accepted(&verify_rooted(&w.rooted_copy().bundle, &[]));
}

#[test]
fn a02_plan_blob_altered() {
    let c = world().simple_copy();
    let path = c.plan_blob();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    assert_refused(&verify_simple(&c.bundle, &[]), "blobs");
}

#[test]
fn a03_manifest_altered() {
    let c = world().simple_copy();
    let mut bytes = c.manifest();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(c.manifest_path(), bytes).unwrap();
    assert_refused(&verify_simple(&c.bundle, &[]), "signature");
}

#[test]
fn a04_trusted_comment_edited() {
    let c = world().simple_copy();
    edit_line(&c, 2, |l| {
        l.replace(" seq=1 ", " seq=8 ").replace(" seq=", " seq=9")
    });
    assert_refused(&verify_simple(&c.bundle, &[]), "signature");
}

#[test]
fn a05_untrusted_comment_edited_is_accepted() {
    let c = world().simple_copy();
    let before = verify_simple(&c.bundle, &[]);
    edit_line(&c, 0, |_| {
        "untrusted comment: anything at all, even \u{e9}".into()
    });
    let after = verify_simple(&c.bundle, &[]);
    assert_accepted(&after);
    assert_eq!(before.stdout, after.stdout);
}

#[test]
fn a06_global_signature_from_another_signature() {
    let w = world();
    let c = w.simple_copy();
    let key = w.signer.load();
    let tc = lines(&c.sig_text())[2]
        .strip_prefix("trusted comment: ")
        .unwrap()
        .to_owned();
    let other = provkey_core::sign::sign_unchecked(&key, b"another file", &tc);
    edit_line(&c, 3, |_| b64(&other.global_signature));
    assert_refused(&verify_simple(&c.bundle, &[]), "signature");
}

#[test]
fn a07_trusted_comment_swapped_from_a_signature_of_the_same_bytes() {
    let w = world();
    let c = w.simple_copy();
    let key = w.signer.load();
    let manifest = c.manifest();
    let m = c.manifest_json();
    let mut tc = echo_comment(&manifest, &m, Role::PlanSigner);
    tc.seq = 999;
    // Ed25519 is deterministic: a second signature of the same bytes has the same sig64,
    // so its (trusted comment, global signature) pair grafts onto the first.
    let second = provkey_core::sign::sign_unchecked(&key, &manifest, &tc.to_string());
    let first = Minisig::parse(c.sig_text().as_bytes()).unwrap();
    assert_eq!(first.signature, second.signature);
    let grafted = Minisig {
        trusted_comment: second.trusted_comment.clone(),
        global_signature: second.global_signature,
        ..first
    };
    // Every minisign verifier accepts the graft...
    assert!(provkey_core::sign::verify_signature(&key.public(), &manifest, &grafted).is_ok());
    c.set_sig_text(grafted.to_text());
    // ...the engine does not: the comment does not echo the manifest.
    assert_refused(&verify_simple(&c.bundle, &[]), "trusted-comment");
}

#[test]
fn a08_untrusted_key() {
    let w = world();
    let c = w.simple_copy();
    assert_refused(
        &verify_with(&c.bundle, &w.other_signer.public, &[]),
        "signature",
    );
    assert_refused(
        &verify_with(&c.bundle, &w.approver.public, &[]),
        "signature",
    );
}

#[test]
fn a08_another_trusted_plan_signer_is_not_the_issuer() {
    let w = world();
    let c = w.rooted_copy();
    // other_signer is a trusted plan-signer, but the manifest names `signer` as issuer.
    let bytes = c.manifest();
    let m = c.manifest_json();
    c.resign_bytes(&bytes, &w.other_signer.load(), Role::PlanSigner, &m);
    assert_refused(&verify_rooted(&c.bundle, &[]), "issuer");
}

#[test]
fn a09_key_id_rewritten() {
    let w = world();
    let c = w.simple_copy();
    let attacker = SecretKey::generate().unwrap();
    let bytes = c.manifest();
    let m = c.manifest_json();
    c.remove_sigs();
    let tc = echo_comment(&bytes, &m, Role::PlanSigner);
    let mut sig = provkey_core::sign::sign_unchecked(&attacker, &bytes, &tc.to_string());
    sig.key_id = w.signer.load().key_id;
    c.add_sig(&w.signer.load(), &sig);
    assert_refused(&verify_simple(&c.bundle, &[]), "signature");
}

/// Writes a trust root signed by `root` with these keys (and default thresholds).
pub(crate) fn write_trust(
    dir: &Path,
    name: &str,
    version: u64,
    expires_at: u64,
    keys: &[(String, Vec<Role>)],
    root: &[&SecretKey],
    thresholds: &[(Role, u64)],
) -> std::path::PathBuf {
    let mut roles = BTreeMap::from([
        (Role::Root, RoleSpec { threshold: 1 }),
        (Role::PlanSigner, RoleSpec { threshold: 1 }),
        (Role::Approver, RoleSpec { threshold: 0 }),
        (Role::PolicyPublisher, RoleSpec { threshold: 0 }),
    ]);
    for (r, t) in thresholds {
        roles.insert(*r, RoleSpec { threshold: *t });
    }
    let mut keys: Vec<TrustedKey> = keys
        .iter()
        .map(|(pk, roles)| TrustedKey {
            public_key: pk.clone(),
            roles: roles.clone(),
            comment: String::new(),
        })
        .collect();
    keys.sort_by(|a, b| a.public_key.cmp(&b.public_key));
    let doc = TrustRootDoc {
        type_: TRUST_ROOT_TYPE.into(),
        version,
        expires_at,
        keys,
        roles,
    };
    let bytes = provkey_core::canonical::to_canonical(&doc).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    for k in root {
        let tc = doc.trusted_comment(&bytes, Role::Root);
        let sig = provkey_core::sign::sign_unchecked(k, &bytes, &tc.to_string());
        std::fs::write(
            dir.join(format!("{name}.{}.minisig", k.public().key_id_hex())),
            sig.to_text(),
        )
        .unwrap();
    }
    path
}

pub(crate) fn far_future() -> u64 {
    provkey_core::unix_now() + 365 * 86400
}

#[test]
fn a10_two_trusted_keys_share_a_key_id() {
    let w = world();
    let c = w.simple_copy();
    let root = w.root.load();
    let signer = w.signer.load();
    let twin = SecretKey::generate().unwrap().with_key_id(signer.key_id);
    let trust = write_trust(
        c.tmp.path(),
        "trust-root.json",
        1,
        far_future(),
        &[
            (root.public().to_base64(), vec![Role::Root]),
            (signer.public().to_base64(), vec![Role::PlanSigner]),
            (twin.public().to_base64(), vec![Role::PlanSigner]),
        ],
        &[&root],
        &[],
    );
    let t = TrustRoot::parse_unsigned(&std::fs::read(&trust).unwrap()).unwrap();
    // Signed by the twin (same key id as `signer`, listed second or first): both are tried.
    c.resign(&twin, |m| {
        m["issuer"]["pk_blake3"] = twin.public().pk_blake3().into();
        m["trust_root"]["version"] = 1.into();
        m["trust_root"]["blake3"] = t.blake3.clone().into();
    });
    assert_accepted(&verify_with(&c.bundle, &trust, &[]));
}

fn legacy_line2(c: &Copy, key: &SecretKey) -> String {
    let sig = key.sign_raw(&c.manifest());
    let mut raw = b"Ed".to_vec();
    raw.extend_from_slice(&key.key_id);
    raw.extend_from_slice(&sig);
    b64(&raw)
}

#[test]
fn a11_legacy_signature() {
    let w = world();
    let c = w.simple_copy();
    let key = w.signer.load();
    let line2 = legacy_line2(&c, &key);
    let tc = lines(&c.sig_text())[2]
        .strip_prefix("trusted comment: ")
        .unwrap()
        .to_owned();
    let raw = provkey_core::minisig::b64_strict(&line2).unwrap();
    let mut global = raw[10..].to_vec();
    global.extend_from_slice(tc.as_bytes());
    let g = key.sign_raw(&global);
    edit_line(&c, 1, |_| line2);
    edit_line(&c, 3, |_| b64(&g));
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "minisig-parse");
    assert!(r.stderr.contains("legacy"), "{r:?}");
}

#[test]
fn a12_algorithm_label_flipped() {
    let c = world().simple_copy();
    edit_line_bytes(&c, 1, |b| b[1] = b'd');
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "minisig-parse");
    assert!(r.stderr.contains("legacy"), "{r:?}");
}

#[test]
fn a13_unknown_algorithm() {
    let c = world().simple_copy();
    edit_line_bytes(&c, 1, |b| b[1] = b'x');
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "minisig-parse");
    assert!(
        r.stderr.contains("unknown signature algorithm `Ex`"),
        "{r:?}"
    );
}

#[test]
fn a14_truncated_and_signify_style_files() {
    let c = world().simple_copy();
    let full = lines(&c.sig_text());
    for bad in [
        join(&full[..2]),
        join(&full[..3]),
        format!("{}\n{}\n{}\n{}", full[0], full[1], full[2], &full[3][..40]),
        format!(
            "{}\n{}\n{}\n{}\n",
            full[0],
            full[1],
            full[2],
            &full[3][..40]
        ),
        String::new(),
        format!("{}\n{}", full[0], full[1]),
    ] {
        c.set_sig_text(&bad);
        assert_refused(&verify_simple(&c.bundle, &[]), "minisig-parse");
    }
}

#[test]
fn a14_directory_named_minisig() {
    let c = world().simple_copy();
    let path = c.sig_path();
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "open");
    assert!(r.stderr.contains("not a regular file"), "{r:?}");
}

#[test]
fn a15_invalid_base64_character() {
    for line in [1, 3] {
        let c = world().simple_copy();
        edit_line(&c, line, |l| format!("{}*{}", &l[..5], &l[6..]));
        assert_refused(&verify_simple(&c.bundle, &[]), "minisig-parse");
    }
}

#[test]
fn a16_non_canonical_base64() {
    for line in [1, 3] {
        let c = world().simple_copy();
        // The last character before the padding carries unused low bits: set one.
        edit_line(&c, line, |l| {
            let body = l.trim_end_matches('=');
            let pad = &l[body.len()..];
            let last = body.chars().last().unwrap();
            const ALPHA: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let v = ALPHA.find(last).unwrap();
            let flipped = ALPHA.chars().nth(v ^ 1).unwrap();
            format!("{}{flipped}{pad}", &body[..body.len() - 1])
        });
        let r = verify_simple(&c.bundle, &[]);
        assert_refused(&r, "minisig-parse");
        assert!(r.stderr.contains("not canonical base64"), "{r:?}");
    }
}

#[test]
fn a17_trailing_bytes_in_signature_or_global_signature() {
    for line in [1, 3] {
        let c = world().simple_copy();
        edit_line_bytes(&c, line, |b| b.push(0));
        let r = verify_simple(&c.bundle, &[]);
        assert_refused(&r, "minisig-parse");
        assert!(r.stderr.contains("expected exactly"), "{r:?}");
    }
}

#[test]
fn a18_extra_fifth_line() {
    let c = world().simple_copy();
    c.set_sig_text(format!("{}garbage\n", c.sig_text()));
    assert_refused(&verify_simple(&c.bundle, &[]), "minisig-parse");
    let c = world().simple_copy();
    c.set_sig_text(format!("{}\n", c.sig_text()));
    assert_refused(&verify_simple(&c.bundle, &[]), "minisig-parse");
}

#[test]
fn a19_whitespace_around_base64() {
    for (line, f) in [(1, " {}"), (1, "{} "), (3, "{}\t"), (3, " {}")] {
        let c = world().simple_copy();
        edit_line(&c, line, |l| f.replace("{}", l));
        assert_refused(&verify_simple(&c.bundle, &[]), "minisig-parse");
    }
}

#[test]
fn a20_crlf_is_accepted_bare_cr_is_not() {
    let c = world().simple_copy();
    c.set_sig_text(c.sig_text().replace('\n', "\r\n"));
    assert_accepted(&verify_simple(&c.bundle, &[]));
    let c = world().simple_copy();
    let l = lines(&c.sig_text());
    c.set_sig_text(format!("{}\r{}\n{}\n{}\n", l[0], l[1], l[2], l[3]));
    assert_refused(&verify_simple(&c.bundle, &[]), "minisig-parse");
    let c = world().simple_copy();
    c.set_sig_text(format!("{}\r\n{}\n{}\n{}\n", l[0], l[1], l[2], l[3]));
    assert_refused(&verify_simple(&c.bundle, &[]), "minisig-parse");
}

/// Adds the group order L to the little-endian scalar S (bytes 32..64 of a signature).
fn add_l(sig: &mut [u8]) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
        sig[32 + i] = v as u8;
        carry = v >> 8;
    }
}

#[test]
fn a21_non_canonical_s() {
    let c = world().simple_copy();
    edit_line_bytes(&c, 1, |b| add_l(&mut b[10..]));
    assert_refused(&verify_simple(&c.bundle, &[]), "signature");
    let c = world().simple_copy();
    edit_line_bytes(&c, 3, |b| add_l(b));
    assert_refused(&verify_simple(&c.bundle, &[]), "signature");
}

#[test]
fn a22_trust_root_key_with_wrong_algorithm() {
    let w = world();
    let c = w.rooted_copy();
    let root = w.root.load();
    for label in [*b"Xd", *b"ED"] {
        let signer = w.signer.load().public();
        let mut raw = label.to_vec();
        raw.extend_from_slice(&signer.key_id);
        raw.extend_from_slice(&signer.key);
        let dir = tempfile::tempdir().unwrap();
        let trust = write_trust(
            dir.path(),
            "trust-root.json",
            1,
            far_future(),
            &[
                (root.public().to_base64(), vec![Role::Root]),
                (b64(&raw), vec![Role::PlanSigner]),
            ],
            &[&root],
            &[],
        );
        let r = verify_with(&c.bundle, &trust, &[]);
        assert_trust_refused(&r, "only `Ed` is accepted");
    }
}

#[test]
fn a23_bad_trusted_comments() {
    let w = world();
    let key = w.signer.load();
    let c0 = w.simple_copy();
    let tc = lines(&c0.sig_text())[2]
        .strip_prefix("trusted comment: ")
        .unwrap()
        .to_owned();
    for bad in [
        format!("{tc} "),
        format!("{tc}\t"),
        tc.replace(' ', "  "),
        format!("{tc}\u{7}"),
        format!("{tc} {}", "x".repeat(600)),
        format!("{tc} caf\u{e9}"),
    ] {
        let c = w.simple_copy();
        let sig = provkey_core::sign::sign_unchecked(&key, &c.manifest(), &bad);
        c.set_sig_text(sig.to_text());
        assert_refused(&verify_simple(&c.bundle, &[]), "minisig-parse");
    }
    // Non-UTF-8 comment bytes.
    let c = w.simple_copy();
    let mut bytes = c.sig_text().into_bytes();
    let at = bytes.iter().rposition(|b| *b == b'=').unwrap();
    let line3_end = bytes[..at].iter().rposition(|b| *b == b'\n').unwrap();
    bytes.insert(line3_end, 0xff);
    c.set_sig_text(bytes);
    assert_refused(&verify_simple(&c.bundle, &[]), "minisig-parse");
}

#[test]
fn a24_signer_refuses_a_newline_in_the_trusted_comment() {
    let w = world();
    let key = w.signer.load();
    let c = w.simple_copy();
    let tc = lines(&c.sig_text())[2]
        .strip_prefix("trusted comment: ")
        .unwrap()
        .to_owned();
    for bad in [
        format!("{tc}\nrole=root"),
        format!("{tc}\r"),
        format!("{tc} "),
    ] {
        let err = provkey_core::sign::sign_with_comment(&key, &c.manifest(), &bad).unwrap_err();
        assert!(err.to_string().contains("refusing to sign"), "{err}");
    }
}

#[test]
fn a25_oversized_minisig() {
    let c = world().simple_copy();
    let mut big = c.sig_text();
    big.push_str(&"A".repeat(20_000));
    c.set_sig_text(big);
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "open");
    assert!(r.stderr.contains("above the limit"), "{r:?}");
}

#[test]
fn a26_signature_over_another_file() {
    let w = world();
    let c = w.simple_copy();
    let key = w.signer.load();
    let plan = std::fs::read(c.plan_blob()).unwrap();
    let tc = lines(&c.sig_text())[2]
        .strip_prefix("trusted comment: ")
        .unwrap()
        .to_owned();
    let sig = provkey_core::sign::sign_with_comment(&key, &plan, &tc).unwrap();
    c.set_sig_text(sig.to_text());
    assert_refused(&verify_simple(&c.bundle, &[]), "signature");
}

fn lib_verify(
    bundle: &Path,
    state: &MemoryState,
    now: Option<u64>,
) -> Result<provkey_core::verify::Verified, provkey_core::verify::Refused> {
    let trust = TrustRoot::single_key(w_signer_pub());
    let opts = VerifyOptions::new("prod", now.unwrap_or_else(provkey_core::unix_now));
    verify_bundle(bundle, &trust, &opts, state)
}

fn w_signer_pub() -> provkey_core::keys::PublicKey {
    world().signer.load().public()
}

#[test]
fn b27_replay_below_the_high_water_mark() {
    let c = world().simple_copy();
    let mut state = MemoryState::default();
    let verified = lib_verify(&c.bundle, &state, None).unwrap();
    state.record(&verified);
    let again = lib_verify(&c.bundle, &state, None).unwrap_err();
    assert_eq!(again.check, Check::Replay);
    assert!(again.detail.contains("rollback"), "{again}");
}

#[test]
fn b28_fork_and_wrong_previous_manifest() {
    let w = world();
    let c = w.simple_copy();
    let mut state = MemoryState::default();
    let verified = lib_verify(&c.bundle, &state, None).unwrap();
    state.record(&verified);
    // Same sequence, different manifest (a fork): refused.
    let fork = w.simple_copy();
    let seq = verified.manifest.sequence;
    fork.resign(&w.signer.load(), |m| {
        m["nonce"] = "0123456789abcdef0123456789abcdef".into()
    });
    assert_eq!(
        lib_verify(&fork.bundle, &state, None).unwrap_err().check,
        Check::Replay
    );
    // A later sequence whose previous_manifest is not the last applied: refused.
    let next = w.simple_copy();
    next.resign(&w.signer.load(), |m| {
        m["sequence"] = (seq + 1).into();
        m["nonce"] = "0123456789abcdef0123456789abcdee".into();
        m["previous_manifest"] = "f".repeat(64).into();
    });
    let err = lib_verify(&next.bundle, &state, None).unwrap_err();
    assert_eq!(err.check, Check::Replay);
    assert!(err.detail.contains("fork"), "{err}");
    // The same with the right previous_manifest: accepted.
    let good = w.simple_copy();
    good.resign(&w.signer.load(), |m| {
        m["sequence"] = (seq + 1).into();
        m["nonce"] = "0123456789abcdef0123456789abcdee".into();
        m["previous_manifest"] = verified.manifest_blake3.clone().into();
    });
    lib_verify(&good.bundle, &state, None).unwrap();
}

#[test]
fn b29_expired_not_yet_valid_too_long() {
    let c = world().simple_copy();
    let m = c.manifest_json();
    let (issued, expires) = (
        m["issued_at"].as_u64().unwrap(),
        m["expires_at"].as_u64().unwrap(),
    );
    let r = verify_simple(&c.bundle, &["--now", &expires.to_string()]);
    assert_refused(&r, "freshness");
    assert!(r.stderr.contains("expired"), "{r:?}");
    let r = verify_simple(&c.bundle, &["--now", &(issued - 3600).to_string()]);
    assert_refused(&r, "freshness");
    assert!(r.stderr.contains("not valid before"), "{r:?}");
    let r = verify_simple(&c.bundle, &["--max-validity", "60"]);
    assert_refused(&r, "freshness");
    assert!(r.stderr.contains("longer than the maximum"), "{r:?}");
}

#[test]
fn b29_clock_before_last_seen() {
    let c = world().simple_copy();
    let state = MemoryState {
        last_seen: Some(provkey_core::unix_now() + 3600),
        ..MemoryState::default()
    };
    assert_eq!(
        lib_verify(&c.bundle, &state, None).unwrap_err().check,
        Check::Clock
    );
}

#[test]
fn b30_stale_or_wrong_base_state() {
    let w = world();
    let c = w.simple_copy();
    let base = provkey_core::manifest::BaseState {
        lineage: "l-1".into(),
        serial: 4,
        blake3: "a".repeat(64),
    };
    c.resign(&w.signer.load(), |m| {
        m["base_state"] = serde_json::to_value(&base).unwrap()
    });
    let mut state = MemoryState::default();
    state.states.insert("prod".into(), base.clone());
    lib_verify(&c.bundle, &state, None).unwrap();
    state.states.insert(
        "prod".into(),
        provkey_core::manifest::BaseState {
            serial: 5,
            ..base.clone()
        },
    );
    let err = lib_verify(&c.bundle, &state, None).unwrap_err();
    assert_eq!(
        (err.check, err.detail.contains("stale")),
        (Check::BaseState, true),
        "{err}"
    );
    state.states.insert(
        "prod".into(),
        provkey_core::manifest::BaseState {
            lineage: "l-2".into(),
            ..base
        },
    );
    let err = lib_verify(&c.bundle, &state, None).unwrap_err();
    assert_eq!(
        (err.check, err.detail.contains("wrong state")),
        (Check::BaseState, true),
        "{err}"
    );
}

#[test]
fn b31_wrong_target_or_audience() {
    let c = world().simple_copy();
    let r = run(crate::support::provkey_exec()
        .arg("verify")
        .arg(&c.bundle)
        .arg("--trust")
        .arg(&world().signer.public)
        .args(["--target", "staging"]));
    assert_refused(&r, "target");
    assert_refused(
        &verify_simple(&c.bundle, &["--audience", "prod-eu-2"]),
        "target",
    );
    // A staging bundle carries target=staging in its comment and manifest alike.
    let w = world();
    let staging = w.simple_copy();
    staging.resign(&w.signer.load(), |m| {
        m["target"]["environment"] = "staging".into()
    });
    assert_refused(&verify_simple(&staging.bundle, &[]), "target");
}

#[test]
fn b32_denied_verdict_missing_policy_module_not_allowed() {
    let w = world();
    let c = w.simple_copy();
    c.resign(&w.signer.load(), |m| {
        m["policies"][0]["verdict"] = "deny".into()
    });
    assert_refused(&verify_simple(&c.bundle, &[]), "policy");
    let c = w.simple_copy();
    let r = verify_simple(&c.bundle, &["--require-policy", "no-such-policy"]);
    assert_refused(&r, "policy");
    assert!(
        r.stderr.contains("required policy `no-such-policy`"),
        "{r:?}"
    );
    let c = w.simple_copy();
    c.resign(&w.signer.load(), |m| m["policies"] = serde_json::json!([]));
    assert_refused(&verify_simple(&c.bundle, &[]), "policy");
    let c = w.simple_copy();
    let mut opts = VerifyOptions::new("prod", provkey_core::unix_now());
    opts.allowed_modules = Some(["0".repeat(64)].into());
    let err = verify_bundle(
        &c.bundle,
        &TrustRoot::single_key(w_signer_pub()),
        &opts,
        &MemoryState::default(),
    )
    .unwrap_err();
    assert_eq!(err.check, Check::Policy);
}

#[test]
fn b34_duplicate_json_key() {
    let w = world();
    let c = w.simple_copy();
    let m = c.manifest_json();
    let text = String::from_utf8(c.manifest()).unwrap();
    let seq = m["sequence"].as_u64().unwrap();
    let dup = text.replacen(
        &format!("\"sequence\":{seq}"),
        &format!("\"sequence\":{seq},\"sequence\":{}", seq + 1),
        1,
    );
    assert_ne!(dup, text);
    c.resign_bytes(dup.as_bytes(), &w.signer.load(), Role::PlanSigner, &m);
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "canonical");
    assert!(r.stderr.contains("duplicate key `sequence`"), "{r:?}");
}

#[test]
fn b35_non_canonical_unknown_field_float_negative_big_deep() {
    let w = world();
    let key = w.signer.load();
    let base = w.simple_copy();
    let text = String::from_utf8(base.manifest()).unwrap();
    let m = base.manifest_json();
    let seq = m["sequence"].as_u64().unwrap();
    let cases = [
        (text.replacen("{", "{ ", 1), "canonical"),
        (format!("{text}\n"), "canonical"),
        (
            text.replacen(
                &format!("\"sequence\":{seq}"),
                &format!("\"sequence\":{seq}.0"),
                1,
            ),
            "canonical",
        ),
        (
            text.replacen(
                &format!("\"sequence\":{seq}"),
                &format!("\"sequence\":{seq}e0"),
                1,
            ),
            "canonical",
        ),
        (
            text.replacen(&format!("\"sequence\":{seq}"), "\"sequence\":-1", 1),
            "canonical",
        ),
        (
            text.replacen(
                &format!("\"sequence\":{seq}"),
                "\"sequence\":9007199254740992",
                1,
            ),
            "canonical",
        ),
    ];
    for (bytes, check) in cases {
        let c = w.simple_copy();
        c.resign_bytes(bytes.as_bytes(), &key, Role::PlanSigner, &m);
        assert_refused(&verify_simple(&c.bundle, &[]), check);
    }
    let c = w.simple_copy();
    c.resign(&key, |m| m["zzz_extra"] = "x".into());
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "schema");
    assert!(r.stderr.contains("unknown field"), "{r:?}");
    let c = w.simple_copy();
    let deep = (0..40).fold(serde_json::json!(1), |v, _| serde_json::json!([v]));
    c.resign(&key, |m| m["inputs"]["deep"] = deep);
    assert_refused(&verify_simple(&c.bundle, &[]), "canonical");
    // Key order: JCS sorts keys; the same object unsorted is refused.
    let c = w.simple_copy();
    let unsorted = text.replacen("{\"_type\"", "{\"zz\":1,\"_type\"", 1);
    c.resign_bytes(unsorted.as_bytes(), &key, Role::PlanSigner, &m);
    assert_refused(&verify_simple(&c.bundle, &[]), "canonical");
}

#[test]
fn b36_wrong_type() {
    let w = world();
    // A signed trust root presented as a plan statement.
    let c = w.simple_copy();
    let trust = std::fs::read(&w.trust).unwrap();
    let m = c.manifest_json();
    c.resign_bytes(&trust, &w.signer.load(), Role::PlanSigner, &m);
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "type");
    assert!(r.stderr.contains("https://provkey/trust-root/v1"), "{r:?}");
    let c = w.simple_copy();
    c.resign(&w.signer.load(), |m| {
        m["_type"] = "https://provkey/policy-publication/v1".into()
    });
    assert_refused(&verify_simple(&c.bundle, &[]), "type");
}

#[test]
fn b37_non_ascii_target_and_uppercase_hex() {
    let w = world();
    let c = w.simple_copy();
    c.resign(&w.signer.load(), |m| {
        m["target"]["environment"] = "pr\u{43e}d".into()
    });
    assert_refused(&verify_simple(&c.bundle, &[]), "schema");
    let c = w.simple_copy();
    c.resign(&w.signer.load(), |m| {
        let up = m["inputs"]["configs_blake3"]
            .as_str()
            .unwrap()
            .to_uppercase();
        m["inputs"]["configs_blake3"] = up.into();
    });
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "schema");
    assert!(r.stderr.contains("lowercase hex"), "{r:?}");
}

#[test]
fn b38_weak_or_missing_digest_algorithm() {
    let w = world();
    let c = w.simple_copy();
    c.resign(&w.signer.load(), |m| {
        m["artifact"]["digest"]["md5"] = "d41d8cd98f00b204e9800998ecf8427e".into()
    });
    assert_refused(&verify_simple(&c.bundle, &[]), "schema");
    let c = w.simple_copy();
    c.resign(&w.signer.load(), |m| {
        m["artifact"]["digest"]
            .as_object_mut()
            .unwrap()
            .remove("blake3");
        m["artifact"]["digest"]["sha1"] = "da39a3ee5e6b4b0d3255bfef95601890afd80709".into();
    });
    assert_refused(&verify_simple(&c.bundle, &[]), "schema");
}

#[test]
fn b39_extra_missing_truncated_blob() {
    let c = world().simple_copy();
    let extra = b"not listed";
    std::fs::write(c.blob_path(&provkey_core::blake3_hex(extra)), extra).unwrap();
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "blobs");
    assert!(r.stderr.contains("extra blob"), "{r:?}");
    let c = world().simple_copy();
    std::fs::remove_file(c.plan_blob()).unwrap();
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "blobs");
    assert!(r.stderr.contains("missing"), "{r:?}");
    let c = world().simple_copy();
    let bytes = std::fs::read(c.plan_blob()).unwrap();
    std::fs::write(c.plan_blob(), &bytes[..bytes.len() - 1]).unwrap();
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "blobs");
    assert!(r.stderr.contains("bytes, the manifest says"), "{r:?}");
    let c = world().simple_copy();
    let mut longer = bytes.clone();
    longer.push(b' ');
    std::fs::write(c.plan_blob(), &longer).unwrap();
    assert_refused(&verify_simple(&c.bundle, &[]), "blobs");
}

#[test]
fn b40_plan_with_an_in_place_update() {
    let w = world();
    let c = w.simple_copy();
    let update =
        std::fs::read(crate::support::repo("examples/plans/update-in-place.json")).unwrap();
    let old = c.manifest_json()["plan"]["blake3"]
        .as_str()
        .unwrap()
        .to_owned();
    let new = provkey_core::blake3_hex(&update);
    std::fs::remove_file(c.blob_path(&old)).unwrap();
    std::fs::write(c.blob_path(&new), &update).unwrap();
    c.resign(&w.signer.load(), |m| {
        let text = m.to_string().replace(&old, &new);
        *m = serde_json::from_str(&text).unwrap();
        m["plan"]["size"] = (update.len() as u64).into();
        for b in m["blobs"].as_array_mut().unwrap() {
            if b["blake3"] == new.as_str() {
                b["size"] = (update.len() as u64).into();
            }
        }
        m["blobs"]
            .as_array_mut()
            .unwrap()
            .sort_by(|a, b| a["blake3"].as_str().cmp(&b["blake3"].as_str()));
    });
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "plan-semantics");
    assert!(r.stderr.contains("in-place update"), "{r:?}");
}

#[test]
fn b41_artifact_altered() {
    let c = world().simple_copy();
    let digest = c.manifest_json()["artifact"]["digest"]["blake3"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(c.blob_path(&digest), b"another immutable machine image").unwrap();
    assert_refused(&verify_simple(&c.bundle, &[]), "blobs");
}

#[test]
fn b42_engine_version_mismatch() {
    let c = world().simple_copy();
    let r = verify_simple(&c.bundle, &["--engine-version", "9.9.9"]);
    assert_refused(&r, "plan-semantics");
    assert!(r.stderr.contains("engine version"), "{r:?}");
    assert_accepted(&verify_simple(
        &c.bundle,
        &["--engine-version", env!("CARGO_PKG_VERSION")],
    ));
}

#[test]
fn c43_one_key_counts_once() {
    let w = world();
    let c = w.simple_copy();
    let root = w.root.load();
    let (signer, a1, a2) = (w.signer.load(), w.approver.load(), w.approver2.load());
    let trust = write_trust(
        c.tmp.path(),
        "trust-root.json",
        1,
        far_future(),
        &[
            (root.public().to_base64(), vec![Role::Root]),
            (signer.public().to_base64(), vec![Role::PlanSigner]),
            (a1.public().to_base64(), vec![Role::Approver]),
            (a2.public().to_base64(), vec![Role::Approver]),
        ],
        &[&root],
        &[(Role::Approver, 2)],
    );
    let t = TrustRoot::parse_unsigned(&std::fs::read(&trust).unwrap()).unwrap();
    c.resign(&signer, |m| {
        m["trust_root"]["version"] = 1.into();
        m["trust_root"]["blake3"] = t.blake3.clone().into();
    });
    let bytes = c.manifest();
    let m = c.manifest_json();
    let tc = echo_comment(&bytes, &m, Role::Approver).to_string();
    let sig = provkey_core::sign::sign_unchecked(&a1, &bytes, &tc);
    c.add_sig(&a1, &sig);
    // The same approval again, under approver2's key id: it does not verify for a2.
    let mut copy = sig.clone();
    copy.key_id = a2.key_id;
    c.add_sig(&a2, &copy);
    let r = verify_with(&c.bundle, &trust, &[]);
    assert_refused(&r, "threshold");
    assert!(
        r.stderr
            .contains("role `approver` needs 2 distinct trusted key(s), found 1"),
        "{r:?}"
    );
    // Approver 1 also holding the plan-signer id does not make two approvers either.
    c.add_sig(&a2, &provkey_core::sign::sign_unchecked(&a2, &bytes, &tc));
    assert_accepted(&verify_with(&c.bundle, &trust, &[]));
}

#[test]
fn c44_trust_root_with_a_key_twice() {
    let w = world();
    let c = w.rooted_copy();
    let root = w.root.load();
    let signer = w.signer.load();
    let again =
        SecretKey::from_file_text(&std::fs::read_to_string(&w.signer.secret).unwrap(), None)
            .unwrap()
            .with_key_id(*b"12345678");
    let trust = write_trust(
        c.tmp.path(),
        "trust-root.json",
        1,
        far_future(),
        &[
            (root.public().to_base64(), vec![Role::Root]),
            (signer.public().to_base64(), vec![Role::PlanSigner]),
            (again.public().to_base64(), vec![Role::Approver]),
        ],
        &[&root],
        &[],
    );
    assert_trust_refused(
        &verify_with(&c.bundle, &trust, &[]),
        "the same public key is listed twice",
    );
}

#[test]
fn c45_revoked_key() {
    let w = world();
    let c = w.rooted_copy();
    let root = w.root.load();
    let dir = tempfile::tempdir().unwrap();
    // Version 2 drops `signer` (revocation) and trusts other_signer.
    let v2 = write_trust(
        dir.path(),
        "trust-root-2.json",
        2,
        far_future(),
        &[
            (root.public().to_base64(), vec![Role::Root]),
            (
                w.other_signer.load().public().to_base64(),
                vec![Role::PlanSigner],
            ),
        ],
        &[&root],
        &[],
    );
    let r = verify_with(
        &c.bundle,
        &w.trust,
        &["--trust-update", v2.to_str().unwrap()],
    );
    assert_refused(&r, "signature");
}

#[test]
fn c45_rotation_rules() {
    let w = world();
    let c = w.rooted_copy();
    let root = w.root.load();
    let new_root = SecretKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = |r: &SecretKey| {
        vec![
            (r.public().to_base64(), vec![Role::Root]),
            (w.signer.load().public().to_base64(), vec![Role::PlanSigner]),
        ]
    };
    // v2 rotates the root key; signed only by the new key: refused.
    let only_new = write_trust(
        dir.path(),
        "only-new.json",
        2,
        far_future(),
        &keys(&new_root),
        &[&new_root],
        &[],
    );
    let r = verify_with(
        &c.bundle,
        &w.trust,
        &["--trust-update", only_new.to_str().unwrap()],
    );
    assert_trust_refused(&r, "of the root role of version 1");
    // Signed by old and new: accepted (then the bundle, signed under v1, is too old).
    let both = write_trust(
        dir.path(),
        "both.json",
        2,
        far_future(),
        &keys(&new_root),
        &[&root, &new_root],
        &[],
    );
    let r = verify_with(
        &c.bundle,
        &w.trust,
        &["--trust-update", both.to_str().unwrap()],
    );
    assert_refused(&r, "target");
    assert!(r.stderr.contains("this executor holds version 2"), "{r:?}");
    // A jump from 1 to 3: refused.
    let v3 = write_trust(
        dir.path(),
        "v3.json",
        3,
        far_future(),
        &keys(&root),
        &[&root],
        &[],
    );
    let r = verify_with(
        &c.bundle,
        &w.trust,
        &["--trust-update", v3.to_str().unwrap()],
    );
    assert_trust_refused(&r, "only 1+1 is accepted");
    // An older version after a newer one: refused.
    let r = verify_with(
        &c.bundle,
        &both,
        &["--trust-update", w.trust.to_str().unwrap()],
    );
    assert_trust_refused(&r, "refused");
}

#[test]
fn c45_expired_trust_root() {
    let w = world();
    let c = w.rooted_copy();
    let root = w.root.load();
    let dir = tempfile::tempdir().unwrap();
    let old = write_trust(
        dir.path(),
        "trust-root.json",
        1,
        1000,
        &[
            (root.public().to_base64(), vec![Role::Root]),
            (w.signer.load().public().to_base64(), vec![Role::PlanSigner]),
        ],
        &[&root],
        &[],
    );
    assert_trust_refused(&verify_with(&c.bundle, &old, &[]), "expired");
}

#[test]
fn c46_approval_over_the_plan_body_does_not_count() {
    let w = world();
    let tmp = tempfile::tempdir().unwrap();
    let trust = tmp.path().join("trust-root.json");
    std::fs::copy(&w.trust, &trust).unwrap();
    trust_cmd(&[
        "set-threshold",
        trust.to_str().unwrap(),
        "--role",
        "approver",
        "--threshold",
        "1",
    ]);
    trust_cmd(&[
        "sign",
        trust.to_str().unwrap(),
        "--key",
        w.root.secret.to_str().unwrap(),
    ]);
    let out = tmp.path().join("bundle");
    assert_eq!(w.seal(&out, &["--trust", trust.to_str().unwrap()]).code, 0);
    let c = Copy::of(&out);
    let a1 = w.approver.load();
    let plan = std::fs::read(c.plan_blob()).unwrap();
    let tc = echo_comment(&c.manifest(), &c.manifest_json(), Role::Approver).to_string();
    c.add_sig(&a1, &provkey_core::sign::sign_unchecked(&a1, &plan, &tc));
    let r = verify_with(&c.bundle, &trust, &[]);
    assert_refused(&r, "threshold");
}

#[test]
fn c47_wrong_password_scrypt_too_high_zero_checksum() {
    let w = world();
    let tmp = tempfile::tempdir().unwrap();
    let key = SecretKey::generate().unwrap();
    let enc = key.to_file_text(Some(b"right")).unwrap();
    let seal = |key_text: &str, pw: &str| {
        let path = tmp.path().join(format!("k{}", unique()));
        std::fs::write(&path, key_text).unwrap();
        let out = tmp.path().join(format!("b{}", unique()));
        let r = run(provkey()
            .env("PROVKEY_DATA_DIR", tmp.path().join("data"))
            .env("PW", pw)
            .args([
                "seal",
                "--plan",
                good_plan().to_str().unwrap(),
                "--target",
                "prod",
                "--password-env",
                "PW",
                "--key",
            ])
            .arg(&path)
            .arg("--out")
            .arg(&out));
        assert!(!out.exists(), "{r:?}");
        r
    };
    let r = seal(&enc, "wrong");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("wrong password for that key"), "{r:?}");
    // memlimit raised to 2 GiB.
    let mut raw = provkey_core::minisig::b64_strict(enc.lines().nth(1).unwrap()).unwrap();
    raw[46..54].copy_from_slice(&(2u64 << 30).to_le_bytes());
    let r = seal(&format!("untrusted comment: x\n{}\n", b64(&raw)), "right");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("scrypt parameters too high"), "{r:?}");
    // An unencrypted key with an all-zero checksum, as `minisign -G -W` writes them.
    let plain = key.to_file_text(None).unwrap();
    let mut raw = provkey_core::minisig::b64_strict(plain.lines().nth(1).unwrap()).unwrap();
    raw[126..158].fill(0);
    let r = seal(&format!("untrusted comment: x\n{}\n", b64(&raw)), "");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("corrupted key"), "{r:?}");
    assert!(r.stderr.contains("minisign -G -W"), "{r:?}");
    let _ = w;
}

#[test]
fn d48_bad_blob_names() {
    for name in [
        "..",
        "x",
        "ABCDEF",
        "0000000000000000000000000000000000000000000000000000000000000000.bak",
    ] {
        let c = world().simple_copy();
        let path = c.bundle.join("blobs").join(name);
        if name == ".." {
            continue;
        }
        std::fs::write(&path, b"x").unwrap();
        let r = verify_simple(&c.bundle, &[]);
        assert_refused(&r, "open");
        assert!(r.stderr.contains("blob name"), "{r:?}");
    }
    // A manifest naming a path instead of a digest.
    let w = world();
    for bad in [
        "../../etc/passwd",
        "/etc/shadow",
        "./plan",
        "a\\b",
        "a\u{0}b",
    ] {
        let c = w.simple_copy();
        c.resign(&w.signer.load(), |m| m["plan"]["blake3"] = bad.into());
        assert_refused(&verify_simple(&c.bundle, &[]), "schema");
    }
    // A stray top-level file.
    let c = w.simple_copy();
    std::fs::write(c.bundle.join("README"), b"hi").unwrap();
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "open");
    assert!(r.stderr.contains("unexpected entry"), "{r:?}");
}

#[test]
fn d49_symlinks() {
    use std::os::unix::fs::symlink;
    // A blob that is a symlink.
    let c = world().simple_copy();
    let plan = c.plan_blob();
    let real = c.tmp.path().join("real-plan");
    std::fs::rename(&plan, &real).unwrap();
    symlink(&real, &plan).unwrap();
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "open");
    assert!(r.stderr.contains("symbolic link"), "{r:?}");
    // blobs/ itself a symlink.
    let c = world().simple_copy();
    let moved = c.tmp.path().join("elsewhere");
    std::fs::rename(c.bundle.join("blobs"), &moved).unwrap();
    symlink(&moved, c.bundle.join("blobs")).unwrap();
    assert_refused(&verify_simple(&c.bundle, &[]), "open");
    // The manifest a symlink.
    let c = world().simple_copy();
    let m = c.tmp.path().join("m.json");
    std::fs::rename(c.manifest_path(), &m).unwrap();
    symlink(&m, c.manifest_path()).unwrap();
    assert_refused(&verify_simple(&c.bundle, &[]), "open");
    // The bundle path a symlink.
    let c = world().simple_copy();
    let link = c.tmp.path().join("link");
    symlink(&c.bundle, &link).unwrap();
    assert_refused(&verify_simple(&link, &[]), "open");
}

#[test]
fn d50_hard_link_and_fifo() {
    let c = world().simple_copy();
    std::fs::hard_link(c.plan_blob(), c.tmp.path().join("outside")).unwrap();
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "open");
    assert!(r.stderr.contains("more than one hard link"), "{r:?}");
    let c = world().simple_copy();
    let sig = c.sig_path();
    std::fs::remove_file(&sig).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&sig)
        .status()
        .unwrap();
    assert!(status.success());
    let r = verify_simple(&c.bundle, &[]);
    assert_refused(&r, "open");
    assert!(r.stderr.contains("not a regular file"), "{r:?}");
}

#[test]
fn d51_archive_instead_of_directory() {
    let c = world().simple_copy();
    let tar = c.tmp.path().join("bundle.tar");
    let status = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&c.bundle)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let r = verify_simple(&tar, &[]);
    assert_refused(&r, "open");
    assert!(r.stderr.contains("archives are refused"), "{r:?}");
}
