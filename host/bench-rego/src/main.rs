//! `provkey-rego --plan PLAN.json [--warmup W] [--iters I] [--keys]`: regorus as a
//! process, one arm of `provkey-bench compare`. Parses the Rego, reads the plan,
//! evaluates `data.tf.deny` W + I times (each time from the plan's bytes), and
//! prints one JSON line: the median, the peak RSS, the number of findings and the
//! digest of their sorted (rule, address) pairs (`--keys`: the pairs too). Exits
//! 1 when there are findings, as a policy check would.

use std::process::ExitCode;
use std::time::Instant;

use provkey_bench_rego::findings::{digest, normalize, per_rule};
use provkey_bench_rego::rego::Rego;

struct Args {
    plan: String,
    warmup: usize,
    iters: usize,
    keys: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        plan: String::new(),
        warmup: 0,
        iters: 1,
        keys: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("`{name}` needs a number"))
        };
        match arg.as_str() {
            "--plan" => args.plan = it.next().ok_or("`--plan` needs a file")?,
            "--warmup" => args.warmup = number("--warmup")?,
            "--iters" => args.iters = number("--iters")?.max(1),
            "--keys" => args.keys = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if args.plan.is_empty() {
        return Err(
            "usage: provkey-rego --plan PLAN.json [--warmup W] [--iters I] [--keys]".into(),
        );
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(&args.plan) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("error: cannot read `{}`: {err}", args.plan);
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut rego = match Rego::new() {
        Ok(rego) => rego,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(3);
        }
    };
    let setup_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut times = Vec::new();
    let mut keys = Vec::new();
    for i in 0..args.warmup + args.iters {
        let t = Instant::now();
        keys = match rego.check(&text) {
            Ok(keys) => keys,
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(3);
            }
        };
        if i >= args.warmup {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median = if n % 2 == 1 {
        times.get(n / 2).copied().unwrap_or(0.0)
    } else {
        (times.get(n / 2 - 1).copied().unwrap_or(0.0) + times.get(n / 2).copied().unwrap_or(0.0))
            / 2.0
    };
    let keys = normalize(keys);
    let mut report = serde_json::json!({
        "arm": "regorus",
        "median_ms": median,
        "times_ms": times,
        "setup_ms": setup_ms,
        "count": keys.len(),
        "digest": digest(&keys),
        "per_rule": per_rule(&keys),
        "rss_kb": provkey_bench_rego::rss::peak_rss_kib().unwrap_or(0),
    });
    if args.keys {
        report["keys"] = serde_json::json!(keys);
    }
    println!("{report}");
    ExitCode::from(u8::from(!keys.is_empty()))
}
