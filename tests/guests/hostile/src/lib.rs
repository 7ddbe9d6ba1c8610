//! A policy written directly against the WIT (no SDK) that misbehaves in the way
//! its configuration asks: `{"mode": "loop"}` and so on. The host must stop every
//! one of these with a clear error and never treat it as a pass.

use std::collections::HashMap;
use std::hint::black_box;

wit_bindgen::generate!({
    path: "../../../wit/plan@0.1.0",
    world: "policy",
});

use exports::provkey::plan::policy_api::Guest;
use provkey::plan::types::{
    Enforcement, Finding, GuestError, Plan, PolicyMetadata, RuleInfo, Severity,
};

struct Hostile;

const RULE: &str = "hostile-finding";

fn finding(message: String, address: Option<String>) -> Finding {
    Finding {
        rule: RULE.to_string(),
        severity: Severity::Low,
        enforcement: Enforcement::Advisory,
        message,
        address,
        attribute: None,
        remediation: None,
    }
}

/// Recurses until the wasm stack runs out: scalar locals only, so every frame lives
/// on the engine's stack, and a combine step that is not a single associative
/// operation, so the compiler cannot turn it into a loop.
#[inline(never)]
fn recurse(depth: u64, stop: u64) -> u64 {
    if depth == stop {
        return 1;
    }
    recurse(depth + 1, stop).wrapping_mul(3).wrapping_add(depth)
}

/// Recurses with an address-taken local in every frame, so the frames live on the
/// guest's own shadow stack in linear memory, which overflows into address 0.
#[inline(never)]
fn recurse_in_memory(depth: u64) -> u64 {
    let local = [depth; 16];
    black_box(&local);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse_in_memory(black_box(depth + 1)) + black_box(local[3])
}

/// 128 pages of 64 KiB: 8 MiB, inside the memory a slot keeps resident.
const SCRIBBLE_PAGES: usize = 128;

/// Grows linear memory by `pages`; the new region's address and length.
fn grow(pages: usize) -> Result<(usize, usize), GuestError> {
    let previous = core::arch::wasm32::memory_grow(0, pages);
    if previous == usize::MAX {
        return Err(GuestError::Failed("memory.grow failed".to_string()));
    }
    Ok((previous * 65_536, pages * 65_536))
}

impl Guest for Hostile {
    fn metadata() -> PolicyMetadata {
        PolicyMetadata {
            id: "hostile".to_string(),
            version: "0.0.0".to_string(),
            description: "misbehaves on request, for the host's tests".to_string(),
            rules: vec![RuleInfo {
                id: RULE.to_string(),
                description: "whatever the test asked for".to_string(),
                severity: Severity::Low,
                enforcement: Enforcement::Advisory,
            }],
            config_schema: None,
        }
    }

    fn evaluate(plan: Plan, config: String) -> Result<Vec<Finding>, GuestError> {
        let config: serde_json::Value =
            serde_json::from_str(&config).map_err(|e| GuestError::InvalidConfig(e.to_string()))?;
        let mode = config
            .get("mode")
            .and_then(|m| m.as_str())
            .unwrap_or("pass");
        match mode {
            "pass" => Ok(Vec::new()),
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            // The plan never has u64::MAX changes: the recursion never stops by itself.
            "recursion" => Ok(vec![finding(
                recurse(0, u64::MAX - plan.changes.len() as u64).to_string(),
                None,
            )]),
            "shadow-recursion" => Ok(vec![finding(recurse_in_memory(0).to_string(), None)]),
            "trap" => panic!("deliberate panic from the hostile guest"),
            "oversized" => Ok(vec![finding("x".repeat(64 << 20), None)]),
            "many" => Ok((0..2_000_000)
                .map(|i| finding(i.to_string(), None))
                .collect()),
            // A finding of 120 bytes about every change: output that grows with the plan.
            "one-per-change" => Ok(plan
                .changes
                .iter()
                .map(|c| finding("x".repeat(120), Some(c.address.clone())))
                .collect()),
            "undeclared-rule" => {
                let mut f = finding("a rule nobody declared".to_string(), None);
                f.rule = "not-declared".to_string();
                Ok(vec![f])
            }
            "unknown-address" => Ok(vec![finding(
                "about a resource that is not there".to_string(),
                Some("aws_instance.does_not_exist".to_string()),
            )]),
            "escape" => Ok(vec![finding(
                "\u{1b}[2J\u{1b}[31mfake PASS\r\nline".to_string(),
                plan.changes.first().map(|c| c.address.clone()),
            )]),
            "error" => Err(GuestError::Failed("the guest gave up".to_string())),
            // Echoes every sensitive value of the plan in its findings and its error,
            // as a careless policy might: the host must keep them out of every report.
            "leak-sensitive" | "leak-sensitive-error" => {
                let mut leaks = Vec::new();
                for change in &plan.changes {
                    let paths: Vec<&String> = change
                        .before_sensitive
                        .iter()
                        .chain(&change.after_sensitive)
                        .collect();
                    for side in [&change.before, &change.after] {
                        let Some(value) = side
                            .as_deref()
                            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                        else {
                            continue;
                        };
                        for path in &paths {
                            let text = match value.pointer(path) {
                                None | Some(serde_json::Value::Null) => continue,
                                Some(serde_json::Value::String(s)) => s.clone(),
                                Some(other) => other.to_string(),
                            };
                            let mut f = finding(
                                format!("the value at {path} is «{text}»"),
                                Some(change.address.clone()),
                            );
                            f.remediation = Some(format!("stop printing «{text}»"));
                            f.attribute = Some(format!("{path}/«{text}»"));
                            leaks.push((f, text));
                        }
                    }
                }
                if mode == "leak-sensitive-error" {
                    let all: Vec<String> = leaks.iter().map(|(_, t)| format!("«{t}»")).collect();
                    return Err(GuestError::Failed(format!("gave up on {}", all.join(" "))));
                }
                Ok(leaks.into_iter().map(|(f, _)| f).collect())
            }
            // Leaves a mark in memory that the allocator never handed out: 8 MiB
            // grown and filled with 0xA5. The next instance in this memory's slot
            // must not see it.
            "scribble" => {
                let (start, len) = grow(SCRIBBLE_PAGES)?;
                // SAFETY: the pages were just grown for this instance and nothing else
                // uses them.
                unsafe { std::ptr::write_bytes(start as *mut u8, 0xA5, len) };
                Ok(vec![finding(
                    format!("scribbled {len} bytes at {start}"),
                    None,
                )])
            }
            // Reads the same amount of freshly grown memory: how many bytes are not
            // zero (another instance's residue).
            "residue" => {
                let (start, len) = grow(SCRIBBLE_PAGES)?;
                // SAFETY: as above; reading grown memory, which wasm defines as zero.
                let bytes = unsafe { std::slice::from_raw_parts(start as *const u8, len) };
                let dirty = bytes.iter().filter(|b| **b != 0).count();
                Ok(vec![finding(
                    format!("dirty={dirty} of {len} at {start}"),
                    None,
                )])
            }
            // Reports what the guest can observe of the outside world; two runs must agree.
            "observe" => {
                let mut map = HashMap::new();
                for i in 0..16 {
                    map.insert(i, i);
                }
                let order: Vec<i32> = map.keys().copied().collect();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                let env: Vec<(String, String)> = std::env::vars().collect();
                let files = std::fs::read_dir("/").map(|d| d.count()).unwrap_or(0);
                let read = std::fs::read("/etc/passwd").is_ok();
                Ok(vec![finding(
                    format!(
                        "changes={} order={order:?} now={now} env={env:?} root_entries={files} read_passwd={read}",
                        plan.changes.len()
                    ),
                    None,
                )])
            }
            // Waits on the clock through every WASI call that can wait; the host must
            // never block past the deadline. A wait that returns reports how long it
            // seemed to take.
            "sleep" => {
                let started = std::time::Instant::now();
                std::thread::sleep(std::time::Duration::from_secs(3_600));
                Ok(vec![finding(
                    format!("slept {} s", started.elapsed().as_secs()),
                    None,
                )])
            }
            "sleep-forever" => {
                std::thread::sleep(std::time::Duration::MAX);
                Ok(vec![finding("woke up".to_string(), None)])
            }
            "sleep-loop" => loop {
                std::thread::sleep(black_box(std::time::Duration::from_secs(1)));
            },
            "wait-duration" => {
                wasip2::clocks::monotonic_clock::subscribe_duration(u64::MAX).block();
                Ok(vec![finding("woke up".to_string(), None)])
            }
            "wait-instant" => {
                wasip2::clocks::monotonic_clock::subscribe_instant(u64::MAX).block();
                Ok(vec![finding("woke up".to_string(), None)])
            }
            "poll-clocks" => {
                let never = wasip2::clocks::monotonic_clock::subscribe_instant(u64::MAX);
                let later = wasip2::clocks::monotonic_clock::subscribe_duration(u64::MAX / 2);
                let ready = wasip2::io::poll::poll(&[&never, &later]);
                Ok(vec![finding(format!("ready {ready:?}"), None)])
            }
            // Writes far more than the host keeps of stderr.
            "chatty" => {
                for line in 0..2_000 {
                    eprintln!("line {line}: {}", "x".repeat(64));
                }
                Ok(Vec::new())
            }
            "read-stdin" => {
                let stdin = wasip2::cli::stdin::get_stdin();
                let read = stdin.blocking_read(1);
                stdin.subscribe().block();
                Ok(vec![finding(format!("stdin {}", read.is_ok()), None)])
            }
            other => Err(GuestError::InvalidConfig(format!("unknown mode `{other}`"))),
        }
    }
}

export!(Hostile);
