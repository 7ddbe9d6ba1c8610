//! Seal and verify timings for a 100,000-change plan and a 1 GiB artifact, and blake3
//! throughput against `b3sum` on the same file.
//!
//! Run: `cargo bench -p provkey-core --bench seal_verify` (release build). Set
//! `PROVKEY_BENCH_ARTIFACT_MIB` to change the artifact size (default 1024) and
//! `PROVKEY_BENCH_CHANGES` the number of plan changes (default 100000).
//!
//! "Seal" here is the signing half of `provkey seal`: hash every blob, build and check
//! the canonical manifest, sign it (and self-verify), write the bundle. Policy
//! evaluation is `provkey check`'s cost and is measured by `host/bench`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark harness")]

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use provkey_core::keys::SecretKey;
use provkey_core::manifest::*;
use provkey_core::minisig::{Role, StatementKind, TrustedComment};
use provkey_core::trust::TrustRoot;
use provkey_core::verify::{MemoryState, VerifyOptions, verify_bundle};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn make_plan(changes: u64) -> Vec<u8> {
    let mut s =
        String::from(r#"{"format_version":"1.2","terraform_version":"1.9.5","resource_changes":["#);
    for i in 0..changes {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"address":"aws_instance.web[{i}]","mode":"managed","type":"aws_instance","name":"web","index":{i},"provider_name":"registry.terraform.io/hashicorp/aws","change":{{"actions":["create","delete"],"before":{{"ami":"ami-1"}},"after":{{"ami":"ami-2"}},"after_unknown":{{}}}}}}"#
        ));
    }
    s.push_str("]}");
    s.into_bytes()
}

/// Hashes a file the way the verifier does ([`provkey_core::digest::hash_stream`]).
fn hash_file(path: &Path) -> (String, u64) {
    let f = std::fs::File::open(path).unwrap();
    let streamed = provkey_core::digest::hash_stream(f, u64::MAX - 1, |_| {}).unwrap();
    (streamed.blake3.to_hex().to_string(), streamed.size)
}

/// Seals `plan` (and an artifact file) into `out`; returns the elapsed time.
fn seal(out: &Path, key: &SecretKey, plan: &[u8], artifact: Option<&Path>) -> Duration {
    let start = Instant::now();
    let plan_b3 = provkey_core::blake3_hex(plan);
    let config = b"{}".to_vec();
    let output = b"[]".to_vec();
    let mut blobs = vec![
        (plan_b3.clone(), plan.len() as u64, "plan".to_owned()),
        (provkey_core::blake3_hex(&config), 2, "config/p".to_owned()),
        (provkey_core::blake3_hex(&output), 2, "output/p".to_owned()),
    ];
    let artifact_ref = artifact.map(|path| {
        let (b3, size) = hash_file(path);
        blobs.push((b3.clone(), size, "artifact".into()));
        Artifact {
            uri: "file:artifact".into(),
            digest: ArtifactDigest {
                blake3: b3,
                sha256: "0".repeat(64),
            },
            size,
        }
    });
    blobs.sort();
    let now = provkey_core::unix_now();
    let public = key.public();
    let manifest = Manifest {
        type_: PLAN_STATEMENT_TYPE.into(),
        plan: PlanRef {
            name: "plan".into(),
            blake3: plan_b3.clone(),
            size: plan.len() as u64,
            media_type: "application/json".into(),
        },
        artifact: artifact_ref,
        base_state: None,
        previous_manifest: None,
        inputs: Inputs {
            plan_file_blake3: plan_b3.clone(),
            configs_blake3: "0".repeat(64),
        },
        policies: vec![PolicyEntry {
            id: "p".into(),
            policy_version: "1".into(),
            module_blake3: "0".repeat(64),
            config_blake3: provkey_core::blake3_hex(&config),
            input_blake3: plan_b3,
            output_blake3: provkey_core::blake3_hex(&output),
            verdict: "allow".into(),
        }],
        policy_set: PolicySet {
            version: 1,
            blake3: "0".repeat(64),
        },
        engine: Engine {
            id: "provkey".into(),
            version: "0.1.0".into(),
            wasmtime_version: "48.0.8".into(),
        },
        target: Target {
            environment: "prod".into(),
            executor_audience: vec!["prod".into()],
        },
        mode: MODE_REPLACE_ONLY.into(),
        issued_at: now,
        expires_at: now + 3600,
        sequence: 1,
        nonce: "0".repeat(32),
        trust_root: TrustRootRef {
            version: 0,
            blake3: public.pk_blake3(),
        },
        signers_required: SignersRequired {
            role: Role::PlanSigner,
            threshold: 1,
        },
        issuer: Issuer {
            role: Role::PlanSigner,
            minisign_keyid: public.key_id_hex(),
            pk_blake3: public.pk_blake3(),
        },
        blobs: blobs
            .iter()
            .map(|(b, s, n)| BlobRef {
                blake3: b.clone(),
                size: *s,
                name: n.clone(),
            })
            .collect(),
        waivers: Vec::new(),
    };
    let bytes = manifest.to_bytes().unwrap();
    let tc = TrustedComment {
        kind: StatementKind::PlanStatement,
        manifest: provkey_core::blake3_hex(&bytes),
        target: "prod".into(),
        seq: 1,
        exp: manifest.expires_at,
        role: Role::PlanSigner,
    };
    let sig = provkey_core::sign::sign(key, &bytes, &tc).unwrap();
    std::fs::create_dir_all(out.join("blobs")).unwrap();
    std::fs::write(out.join("manifest.json"), &bytes).unwrap();
    std::fs::write(
        out.join(format!("manifest.json.{}.minisig", public.key_id_hex())),
        sig.to_text(),
    )
    .unwrap();
    for (digest, bytes) in [
        (&blobs_digest(plan), plan),
        (&blobs_digest(&config), &config[..]),
        (&blobs_digest(&output), &output[..]),
    ] {
        std::fs::write(out.join("blobs").join(digest), bytes).unwrap();
    }
    if let (Some(path), Some(a)) = (artifact, &manifest.artifact) {
        std::fs::copy(path, out.join("blobs").join(&a.digest.blake3)).unwrap();
    }
    start.elapsed()
}

fn blobs_digest(bytes: &[u8]) -> String {
    provkey_core::blake3_hex(bytes)
}

fn verify(dir: &Path, key: &SecretKey) -> Duration {
    let trust = TrustRoot::single_key(key.public());
    let opts = VerifyOptions::new("prod", provkey_core::unix_now());
    let start = Instant::now();
    verify_bundle(dir, &trust, &opts, &MemoryState::default()).unwrap();
    start.elapsed()
}

fn main() {
    let changes = env_num("PROVKEY_BENCH_CHANGES", 100_000);
    let mib = env_num("PROVKEY_BENCH_ARTIFACT_MIB", 1024);
    let tmp = tempfile::tempdir().unwrap();
    let key = SecretKey::generate().unwrap();

    let plan = make_plan(changes);
    let seal_plan = seal(&tmp.path().join("plan-bundle"), &key, &plan, None);
    let verify_plan = verify(&tmp.path().join("plan-bundle"), &key);
    println!(
        "plan of {changes} changes ({:.1} MiB): seal {:.3} s, verify {:.3} s",
        plan.len() as f64 / 1048576.0,
        seal_plan.as_secs_f64(),
        verify_plan.as_secs_f64()
    );

    let artifact = tmp.path().join("artifact.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&artifact).unwrap());
        let mut xof = blake3::Hasher::new()
            .update(b"provkey bench")
            .finalize_xof();
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..mib {
            xof.fill(&mut buf);
            f.write_all(&buf).unwrap();
        }
    }
    let small = make_plan(10);
    let seal_art = seal(
        &tmp.path().join("artifact-bundle"),
        &key,
        &small,
        Some(&artifact),
    );
    let verify_art = verify(&tmp.path().join("artifact-bundle"), &key);
    println!(
        "artifact of {mib} MiB: seal {:.3} s (hash + copy), verify {:.3} s",
        seal_art.as_secs_f64(),
        verify_art.as_secs_f64()
    );

    // blake3 throughput: ours (streaming on all cores, as the verifier hashes) vs b3sum.
    let start = Instant::now();
    let (ours_digest, size) = hash_file(&artifact);
    let ours = start.elapsed().as_secs_f64();
    let ours_mbs = size as f64 / 1048576.0 / ours;
    let start = Instant::now();
    match std::process::Command::new("b3sum")
        .arg("--no-names")
        .arg(&artifact)
        .output()
    {
        Ok(out) if out.status.success() => {
            let theirs = start.elapsed().as_secs_f64();
            let digest = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            assert_eq!(digest, ours_digest, "b3sum disagrees with blake3");
            let theirs_mbs = size as f64 / 1048576.0 / theirs;
            println!(
                "blake3: ours {ours_mbs:.0} MiB/s, b3sum {theirs_mbs:.0} MiB/s, ratio ours/b3sum {:.2}",
                ours_mbs / theirs_mbs
            );
        }
        _ => println!(
            "blake3: ours {ours_mbs:.0} MiB/s; b3sum not found (apt-get install b3sum): ratio skipped"
        ),
    }
}
