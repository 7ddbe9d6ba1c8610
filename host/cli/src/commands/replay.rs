//! `provkey replay BUNDLE_DIR...`: re-run the policies recorded in sealed bundles on
//! their sealed plans, with their sealed configurations, and confirm that every
//! output digest and verdict matches the manifest (exit 0), or print a precise diff
//! (exit 1). With `--policy CANDIDATE.wasm`, the candidate replaces the sealed policy
//! of the same id: impact analysis, which reports the verdicts that would change.
//!
//! Each module is looked up by its blake3 digest: in the bundle's blobs, in the stock
//! set embedded in this binary, in the component cache (`<cache dir>/components/`),
//! then among the `*.wasm` files of `--modules DIR`. One that cannot be found is
//! named (exit 2 when nothing mismatched).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use provkey_core::bundle;
use provkey_core::manifest::{Manifest, PolicyEntry, WaiverRef};
use provkey_plan::{Finding, Plan};
use provkey_runtime::{PolicyOrigin, Runtime};

use super::check::RuntimeArgs;
use crate::exit::{CliError, CliResult, Exit};
use crate::policy_set::fetch::ComponentCache;

/// The largest blob read (plans, configurations, outputs, modules).
const MAX_BLOB_BYTES: u64 = 1 << 30;

#[derive(Args)]
pub struct ReplayArgs {
    /// Sealed bundles (directories written by `provkey seal`).
    #[arg(required = true)]
    pub bundles: Vec<PathBuf>,
    /// A candidate policy component: re-evaluate in its place the sealed policy with
    /// the same id, and report the verdicts that would change.
    #[arg(long = "policy", value_name = "CANDIDATE.wasm")]
    pub candidate: Option<PathBuf>,
    /// A directory of policy components to look modules up in (by digest).
    #[arg(long, value_name = "DIR")]
    pub modules: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

fn bad(msg: String) -> CliError {
    CliError::bad_input(anyhow!(msg))
}

#[derive(Default)]
struct Tally {
    mismatches: usize,
    missing: usize,
    changed: usize,
}

pub fn execute(args: ReplayArgs) -> CliResult<Exit> {
    let candidate = match &args.candidate {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| bad(format!("cannot read candidate `{}`: {e}", path.display())))?,
        ),
        None => None,
    };
    let mut tally = Tally::default();
    for path in &args.bundles {
        replay_bundle(&args, path, candidate.as_deref(), &mut tally)?;
    }
    if candidate.is_some() {
        println!(
            "{} verdict{} would change",
            tally.changed,
            if tally.changed == 1 { "" } else { "s" }
        );
        return Ok(if tally.changed > 0 {
            Exit::MandatoryFindings
        } else {
            Exit::Pass
        });
    }
    if tally.mismatches > 0 {
        println!(
            "MISMATCH: {} polic{} differ from the sealed manifest",
            tally.mismatches,
            if tally.mismatches == 1 { "y" } else { "ies" }
        );
        Ok(Exit::MandatoryFindings)
    } else if tally.missing > 0 {
        Err(bad(format!(
            "{} module{} could not be found, so the bundle was not fully replayed",
            tally.missing,
            if tally.missing == 1 { "" } else { "s" }
        ))
        .with_help("give the components with `--modules DIR` (files are matched by blake3)"))
    } else {
        println!("MATCH: every output digest and verdict matches the sealed manifest");
        Ok(Exit::Pass)
    }
}

struct Opened {
    raw: bundle::RawBundle,
    manifest: Manifest,
}

impl Opened {
    fn blob(&self, shown: &str, digest: &str, what: &str) -> CliResult<Vec<u8>> {
        let blob = self
            .raw
            .read_blob(digest, MAX_BLOB_BYTES, true)
            .map_err(|e| {
                bad(format!(
                    "bundle `{shown}`: cannot read the {what} blob: {e}"
                ))
            })?;
        match blob.bytes {
            Some(bytes) if blob.blake3 == digest => Ok(bytes),
            _ => Err(bad(format!(
                "bundle `{shown}`: the {what} blob `{digest}` is altered"
            ))),
        }
    }
}

fn replay_bundle(
    args: &ReplayArgs,
    path: &Path,
    candidate: Option<&[u8]>,
    tally: &mut Tally,
) -> CliResult<()> {
    let shown = path.display().to_string();
    let raw = bundle::open(path).map_err(|e| bad(format!("cannot open bundle `{shown}`: {e}")))?;
    let manifest = Manifest::from_bytes(&raw.manifest)
        .map_err(|e| bad(format!("bundle `{shown}`: manifest.json: {e}")))?;
    let opened = Opened { raw, manifest };
    let m = &opened.manifest;
    let plan_bytes = opened.blob(&shown, &m.plan.blake3, "plan")?;
    let plan = std::str::from_utf8(&plan_bytes)
        .ok()
        .and_then(|t| Plan::from_json(t).ok())
        .map(std::sync::Arc::new)
        .ok_or_else(|| bad(format!("bundle `{shown}`: the sealed plan does not parse")))?;
    let runtime = args.runtime.build_for_input(plan_bytes.len())?;
    let cache = ComponentCache::new(args.runtime.cache_dir());
    println!(
        "bundle `{shown}`: target {}, sequence {}, {} polic{}",
        m.target.environment,
        m.sequence,
        m.policies.len(),
        if m.policies.len() == 1 { "y" } else { "ies" }
    );
    let candidate_id = match candidate {
        Some(bytes) => Some(
            runtime
                .load_policy(
                    "candidate",
                    PolicyOrigin::File(PathBuf::from("candidate")),
                    bytes,
                )
                .map_err(|e| bad(format!("the candidate is not a loadable policy: {e}")))?
                .metadata
                .id,
        ),
        None => None,
    };
    for entry in &m.policies {
        let config = opened.blob(
            &shown,
            &entry.config_blake3,
            &format!("config/{}", entry.id),
        )?;
        let config = String::from_utf8(config).map_err(|_| {
            bad(format!(
                "bundle `{shown}`: config of `{}` is not UTF-8",
                entry.id
            ))
        })?;
        let sealed_output = opened
            .blob(
                &shown,
                &entry.output_blake3,
                &format!("output/{}", entry.id),
            )
            .ok();
        let is_candidate = candidate_id.as_deref() == Some(entry.id.as_str());
        if candidate.is_some() && !is_candidate {
            continue;
        }
        let module = match (is_candidate, candidate) {
            (true, Some(bytes)) => Some(bytes.to_vec()),
            _ => find_module(&opened, entry, &cache, args.modules.as_deref()),
        };
        let Some(module) = module else {
            tally.missing += 1;
            println!(
                "  MISSING  {}: module blake3 {} is not in the bundle, the stock set, the cache{}",
                entry.id,
                entry.module_blake3,
                args.modules
                    .as_ref()
                    .map(|d| format!(" or `{}`", d.display()))
                    .unwrap_or_default()
            );
            continue;
        };
        let (output, findings, verdict) =
            evaluate(&runtime, entry, &module, &plan, &config, &m.waivers);
        let output_blake3 = provkey_core::blake3_hex(&output);
        let sealed: Option<Vec<Finding>> = sealed_output
            .as_deref()
            .and_then(|b| serde_json::from_slice(b).ok());
        if is_candidate {
            let sealed_verdict = &entry.verdict;
            if &verdict != sealed_verdict {
                tally.changed += 1;
                println!(
                    "  CHANGED  {}: verdict {sealed_verdict} -> {verdict}",
                    entry.id
                );
            } else {
                println!("  same     {}: verdict {verdict}", entry.id);
            }
            print_diff(sealed.as_deref(), findings.as_deref());
            continue;
        }
        if output_blake3 == entry.output_blake3 && verdict == entry.verdict {
            println!(
                "  match    {}: output {} verdict {}",
                entry.id, output_blake3, verdict
            );
            continue;
        }
        tally.mismatches += 1;
        println!("  MISMATCH {}:", entry.id);
        if output_blake3 != entry.output_blake3 {
            println!(
                "    output blake3: sealed {}, replayed {}",
                entry.output_blake3, output_blake3
            );
        }
        if verdict != entry.verdict {
            println!(
                "    verdict: sealed {}, replayed {}",
                entry.verdict, verdict
            );
        }
        print_diff(sealed.as_deref(), findings.as_deref());
    }
    Ok(())
}

/// Re-evaluates one policy: the output bytes as `seal` writes them, the findings and
/// the verdict (`allow` unless a mandatory finding is left that no recorded waiver or
/// override covers; `error` when the policy fails).
fn evaluate(
    runtime: &Runtime,
    entry: &PolicyEntry,
    module: &[u8],
    plan: &std::sync::Arc<Plan>,
    config: &str,
    waivers: &[WaiverRef],
) -> (Vec<u8>, Option<Vec<Finding>>, String) {
    let loaded = match runtime.load_policy(&entry.id, PolicyOrigin::Stock, module) {
        Ok(loaded) => loaded,
        Err(err) => {
            let text = format!("load failed: {err}");
            return (text.into_bytes(), None, "error".into());
        }
    };
    let configs = BTreeMap::from([(loaded.metadata.id.clone(), config.to_owned())]);
    let outcomes =
        provkey_runtime::check_plan(runtime, plan, std::slice::from_ref(&loaded), &configs);
    match outcomes.into_iter().next().map(|o| o.result) {
        Some(Ok(findings)) => {
            let output = serde_json::to_vec(&findings).unwrap_or_default();
            let denied = findings.iter().any(|f| {
                f.enforcement.is_mandatory()
                    && !waivers.iter().any(|w| {
                        w.policy == entry.id
                            && (w.rule == "*" || w.rule == f.rule)
                            && wildmatch::WildMatch::new(&w.address)
                                .matches(f.address.as_deref().unwrap_or(""))
                    })
            });
            let verdict = if denied { "deny" } else { "allow" };
            (output, Some(findings), verdict.into())
        }
        Some(Err(err)) => (format!("failed: {err}").into_bytes(), None, "error".into()),
        None => (Vec::new(), None, "error".into()),
    }
}

/// `-` a sealed finding the replay did not give, `+` one it gave anew.
fn print_diff(sealed: Option<&[Finding]>, replayed: Option<&[Finding]>) {
    let describe = |f: &Finding| {
        format!(
            "{} {} {} {}: {}",
            f.rule,
            f.severity.as_str(),
            f.enforcement.as_str(),
            f.address.as_deref().unwrap_or("(plan)"),
            crate::text::sanitize(&f.message)
        )
    };
    let (Some(sealed), Some(replayed)) = (sealed, replayed) else {
        if sealed.is_none() {
            println!("    (the sealed output is not a list of findings)");
        }
        if replayed.is_none() {
            println!("    (the replay produced no findings: the policy failed)");
        }
        return;
    };
    for f in sealed.iter().filter(|f| !replayed.contains(f)) {
        println!("    - {}", describe(f));
    }
    for f in replayed.iter().filter(|f| !sealed.contains(f)) {
        println!("    + {}", describe(f));
    }
}

fn find_module(
    opened: &Opened,
    entry: &PolicyEntry,
    cache: &ComponentCache,
    modules: Option<&Path>,
) -> Option<Vec<u8>> {
    let digest = entry.module_blake3.as_str();
    if opened.raw.blob_names.iter().any(|n| n == digest)
        && let Ok(blob) = opened.raw.read_blob(digest, MAX_BLOB_BYTES, true)
        && blob.blake3 == digest
        && let Some(bytes) = blob.bytes
    {
        return Some(bytes);
    }
    if let Some(stock) = provkey_stock::STOCK_POLICIES
        .iter()
        .find(|s| provkey_core::blake3_hex(s.bytes) == digest)
    {
        return Some(stock.bytes.to_vec());
    }
    if let Some(bytes) = cache.get(digest) {
        return Some(bytes);
    }
    let dir = modules?;
    let entries = std::fs::read_dir(dir).ok()?;
    for file in entries.flatten() {
        let path = file.path();
        if path.extension().is_some_and(|e| e == "wasm")
            && let Ok(bytes) = std::fs::read(&path)
            && provkey_core::blake3_hex(&bytes) == digest
        {
            return Some(bytes);
        }
    }
    None
}
