//! The whole cycle at scale: plan, seal and apply N instance replacements (default
//! 1,000) on a real target directory, and the peak memory of each step.
//!
//! `cargo bench -p provkey --bench apply [-- N [ROUNDS]]`
//!
//! Each round, in a fresh directory: `provkey plan` + `provkey seal` version 1 (N
//! instances of one artifact tree) and apply it (N creates); then version 2 (a new
//! artifact, so N replacements): `provkey plan`, `provkey seal`, apply. Planning and
//! sealing run as `provkey` processes (so their figures include process start and
//! the warm compile cache); applying runs `provkey-exec`'s library in this process,
//! as the `provkey-exec` binary does. Medians over the rounds are printed.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use provkey_core::keys::SecretKey;
use provkey_core::trust::TrustRoot;
use provkey_exec::ApplyOptions;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Default)]
struct Round {
    plan_v1: Duration,
    apply_v1: Duration,
    plan_v2: Duration,
    seal_v2: Duration,
    apply_v2: Duration,
    plan_rss_kib: u64,
    seal_rss_kib: u64,
}

fn main() -> Res<()> {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let cache = tempfile::tempdir()?;
    let mut results = Vec::new();
    for round in 0..rounds {
        results.push(run_round(n, cache.path())?);
        eprintln!("round {}/{rounds} done", round + 1);
    }
    let med = |f: &dyn Fn(&Round) -> Duration| {
        let mut v: Vec<Duration> = results.iter().map(f).collect();
        v.sort();
        v[v.len() / 2]
    };
    let med_kib = |f: &dyn Fn(&Round) -> u64| {
        let mut v: Vec<u64> = results.iter().map(f).collect();
        v.sort();
        v[v.len() / 2]
    };
    println!("{n} instances of one artifact tree; medians of {rounds} round(s):");
    println!("  version 1 (N creates)");
    println!(
        "    provkey plan (process):        {:>9.1} ms",
        ms(med(&|r| r.plan_v1))
    );
    println!(
        "    apply (provkey-exec library):  {:>9.1} ms",
        ms(med(&|r| r.apply_v1))
    );
    println!("  version 2 (N replacements, create before destroy)");
    println!(
        "    provkey plan (process):        {:>9.1} ms",
        ms(med(&|r| r.plan_v2))
    );
    println!(
        "    provkey seal (process, stock policies): {:>9.1} ms",
        ms(med(&|r| r.seal_v2))
    );
    println!(
        "    apply (provkey-exec library):  {:>9.1} ms",
        ms(med(&|r| r.apply_v2))
    );
    println!("  peak memory");
    println!(
        "    provkey plan process:          {:>9.1} MiB",
        med_kib(&|r| r.plan_rss_kib) as f64 / 1024.0
    );
    println!(
        "    provkey seal process:          {:>9.1} MiB",
        med_kib(&|r| r.seal_rss_kib) as f64 / 1024.0
    );
    match provkey_bench::rss::peak_rss_kib() {
        Some(kib) => println!(
            "    this process (the applies):    {:>9.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("    this process: unavailable on this platform"),
    }
    Ok(())
}

fn run_round(n: usize, cache: &Path) -> Res<Round> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    for (version, text) in [("v1", "version 1"), ("v2", "version 2")] {
        let app = dir.join("app").join(version);
        std::fs::create_dir_all(app.join("bin"))?;
        std::fs::write(app.join("README.txt"), format!("hello, {text}\n"))?;
        std::fs::write(
            app.join("bin/hello"),
            format!("#!/bin/sh\necho 'hello {text}'\n"),
        )?;
        std::fs::write(dir.join(format!("{version}.toml")), desired(n, version))?;
    }
    std::fs::write(
        dir.join("budget.json"),
        format!("{{\"max_destroys\": {}}}", n + 1),
    )?;
    let secret = SecretKey::generate()?;
    let key = dir.join("plan-signer.key");
    std::fs::write(&key, secret.to_file_text(None)?)?;
    set_private(&key)?;
    let trust = TrustRoot::single_key(secret.public());
    let target = dir.join("target");
    std::fs::create_dir_all(&target)?;
    let data = dir.join("data");

    let mut r = Round::default();
    let (t, _) = provkey(cache, &data, &plan_args(dir, "v1", "none"))?;
    r.plan_v1 = t;
    provkey(cache, &data, &seal_args(dir, "v1", "none", &key))?;
    let started = Instant::now();
    let report = provkey_exec::apply(&dir.join("b-v1"), &trust, &opts(), &target)?;
    r.apply_v1 = started.elapsed();
    expect_steps(&report, "create", n)?;

    let state = provkey_exec::read_state(&target)?.ok_or("no state after apply")?;
    let state_file = dir.join("state-v1.json");
    std::fs::write(&state_file, provkey_exec::state_json(&state.state))?;
    let state_arg = state_file.to_string_lossy().into_owned();
    let (t, rss) = provkey(cache, &data, &plan_args(dir, "v2", &state_arg))?;
    r.plan_v2 = t;
    r.plan_rss_kib = rss;
    let (t, rss) = provkey(cache, &data, &seal_args(dir, "v2", &state_arg, &key))?;
    r.seal_v2 = t;
    r.seal_rss_kib = rss;
    let started = Instant::now();
    let report = provkey_exec::apply(&dir.join("b-v2"), &trust, &opts(), &target)?;
    r.apply_v2 = started.elapsed();
    expect_steps(&report, "replace", n)?;
    Ok(r)
}

fn desired(n: usize, version: &str) -> String {
    let mut toml = format!("target = \"bench\"\n[artifact.app]\npath = \"app/{version}\"\n");
    for i in 0..n {
        let _ = write!(
            toml,
            "[instance.svc-{i:05}]\nartifact = \"app\"\n[instance.svc-{i:05}.config]\nport = {}\nname = \"service {i}\"\n",
            10_000 + i
        );
    }
    toml
}

fn plan_args(dir: &Path, version: &str, state: &str) -> Vec<String> {
    vec![
        "plan".into(),
        "--desired".into(),
        path(&dir.join(format!("{version}.toml"))),
        "--state".into(),
        state.into(),
        "--out".into(),
        path(&dir.join(format!("plan-{version}.json"))),
    ]
}

fn seal_args(dir: &Path, version: &str, state: &str, key: &Path) -> Vec<String> {
    vec![
        "seal".into(),
        "--plan".into(),
        path(&dir.join(format!("plan-{version}.json"))),
        "--desired".into(),
        path(&dir.join(format!("{version}.toml"))),
        "--state".into(),
        state.into(),
        "--key".into(),
        path(key),
        "--target".into(),
        "bench".into(),
        // A release of N replacements is the point here: raise the stock budget.
        "--config".into(),
        format!("destroy-budget={}", path(&dir.join("budget.json"))),
        "--out".into(),
        path(&dir.join(format!("b-{version}"))),
    ]
}

fn opts() -> ApplyOptions {
    ApplyOptions::new("bench", provkey_core::unix_now())
}

fn expect_steps(report: &provkey_exec::ApplyReport, action: &str, n: usize) -> Res<()> {
    let count = report
        .steps
        .iter()
        .filter(|s| s.action == action && s.address.starts_with("instance."))
        .count();
    if count != n {
        return Err(format!("expected {n} instance {action}s, the apply did {count}").into());
    }
    Ok(())
}

/// Runs `provkey ARGS`; returns its wall time and peak RSS (KiB).
fn provkey(cache: &Path, data: &Path, args: &[String]) -> Res<(Duration, u64)> {
    // A file, not a pipe: a pipe left unread while polling could fill and block it.
    let mut err_file = tempfile::tempfile()?;
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_provkey"))
        .args(args)
        .env("PROVKEY_CACHE_DIR", cache)
        .env("PROVKEY_DATA_DIR", data)
        .stdout(std::process::Stdio::null())
        .stderr(err_file.try_clone()?)
        .spawn()?;
    // VmHWM only grows: polled until exit, its last reading is the child's peak
    // (short of the last 2 ms, where nothing large happens).
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            peak = peak.max(provkey_bench::rss::vm_hwm_kib(&text).unwrap_or(0));
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = started.elapsed();
    let mut stderr = String::new();
    {
        use std::io::{Read as _, Seek as _};
        err_file.rewind()?;
        let _ = err_file.read_to_string(&mut stderr);
    }
    if !status.success() {
        return Err(format!("`provkey {}` failed:\n{stderr}", args.join(" ")).into());
    }
    Ok((elapsed, peak))
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn set_private(p: &Path) -> Res<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}
