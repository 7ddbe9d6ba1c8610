//! `provkey inspect POLICY.wasm|ID`: what a policy component says about itself (id,
//! version, description, rules, configuration schema), the WIT interfaces it was
//! built against, and its blake3 digest. Without an argument, the stock catalog.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use provkey_plan::PolicyMetadata;
use provkey_runtime::{LoadedPolicy, PolicyOrigin, Runtime};
use serde_json::{Value, json};

use crate::commands::check::{self, RuntimeArgs};
use crate::commands::policies::{self, CatalogFormat, PoliciesArgs};
use crate::exit::{CliError, CliResult, Exit};

/// The export every policy component has; its version is the WIT version.
const POLICY_API: &str = "provkey:plan/policy-api@";

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The policy: a component file, or the id of a stock policy. Without one, the
    /// catalog of the stock policies (as `provkey policies`).
    #[arg(value_name = "POLICY.wasm|ID")]
    pub policy: Option<PathBuf>,
    /// How to print it.
    #[arg(long, value_enum, default_value_t = InspectFormat::Text)]
    pub format: InspectFormat,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Output formats of `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    Text,
    Json,
}

/// Everything `inspect` prints.
pub struct Inspection {
    pub metadata: PolicyMetadata,
    pub origin: PolicyOrigin,
    pub digest: blake3::Hash,
    pub size: usize,
    /// The version of `provkey:plan/policy-api` the component exports.
    pub wit_version: Option<String>,
    pub exports: Vec<String>,
    pub imports: Vec<String>,
}

pub fn execute(args: InspectArgs) -> CliResult<Exit> {
    let Some(policy) = &args.policy else {
        let format = match args.format {
            InspectFormat::Text => CatalogFormat::Text,
            InspectFormat::Json => CatalogFormat::Json,
        };
        return policies::execute(PoliciesArgs {
            format,
            runtime: args.runtime,
        });
    };
    let runtime = args.runtime.build()?;
    let inspection = inspect(&runtime, policy)?;
    match args.format {
        InspectFormat::Json => {
            let text = serde_json::to_string_pretty(&to_json(&inspection))
                .map_err(|err| CliError::bad_input(anyhow!("cannot write JSON: {err}")))?;
            emit(&format!("{text}\n"));
        }
        InspectFormat::Text => emit(&to_text(&inspection)),
    }
    Ok(Exit::Pass)
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
pub fn emit(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Loads the policy (checking its metadata as `check` does) and reads its WIT exports.
pub fn inspect(runtime: &Runtime, policy: &Path) -> CliResult<Inspection> {
    let loaded = load_one(runtime, policy)?;
    let bytes = component_bytes(policy, &loaded)?;
    let (component, _) = runtime
        .component(&loaded.metadata.id, &bytes, &loaded.digest)
        .map_err(|err| CliError {
            exit: Exit::PolicyFailed,
            error: err.into(),
            help: None,
        })?;
    let engine = component.engine();
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let wit_version = exports
        .iter()
        .find_map(|name| name.strip_prefix(POLICY_API))
        .map(str::to_string);
    Ok(Inspection {
        metadata: loaded.metadata.clone(),
        origin: loaded.origin.clone(),
        digest: loaded.digest,
        size: bytes.len(),
        wit_version,
        exports,
        imports,
    })
}

/// Loads one policy as `check --policy` does; a policy that fails to load is exit 3.
pub fn load_one(runtime: &Runtime, policy: &Path) -> CliResult<LoadedPolicy> {
    if !policy.exists() && policy.to_str().and_then(provkey_stock::find).is_none() {
        return Err(policies::unknown_policy(policy));
    }
    let (mut loaded, failed) = check::load_policies(runtime, &[policy.to_path_buf()])?;
    if let Some(outcome) = failed.into_iter().next()
        && let Err(err) = outcome.result
    {
        return Err(CliError {
            exit: Exit::PolicyFailed,
            error: anyhow::Error::new(err)
                .context(format!("cannot load policy `{}`", policy.display())),
            help: Some(
                "a policy is a component that exports `provkey:plan/policy` (build one with \
                 `provkey build`)"
                    .to_string(),
            ),
        });
    }
    loaded
        .pop()
        .ok_or_else(|| CliError::bad_input(anyhow!("no policy loaded from `{}`", policy.display())))
}

fn component_bytes(policy: &Path, loaded: &LoadedPolicy) -> CliResult<Vec<u8>> {
    match &loaded.origin {
        PolicyOrigin::File(path) => std::fs::read(path)
            .map_err(|err| CliError::bad_input(anyhow!("cannot read `{}`: {err}", path.display()))),
        PolicyOrigin::Stock => policy
            .to_str()
            .and_then(provkey_stock::find)
            .map(|stock| stock.bytes.to_vec())
            .ok_or_else(|| {
                CliError::bad_input(anyhow!("`{}` is no stock policy", policy.display()))
            }),
    }
}

fn schema_value(metadata: &PolicyMetadata) -> Value {
    match &metadata.config_schema {
        None => Value::Null,
        Some(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone())),
    }
}

pub fn to_json(inspection: &Inspection) -> Value {
    let metadata = &inspection.metadata;
    json!({
        "id": metadata.id,
        "version": metadata.version,
        "description": metadata.description,
        "rules": metadata.rules,
        "config_schema": schema_value(metadata),
        "wit_version": inspection.wit_version,
        "exports": inspection.exports,
        "imports": inspection.imports,
        "blake3": inspection.digest.to_hex().to_string(),
        "size": inspection.size,
        "origin": check::origin_text(&inspection.origin),
    })
}

pub fn to_text(inspection: &Inspection) -> String {
    use std::fmt::Write as _;
    let metadata = &inspection.metadata;
    let mut out = String::new();
    let _ = writeln!(out, "{} {}", metadata.id, metadata.version);
    let _ = writeln!(out, "  {}", metadata.description);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "origin:       {}",
        check::origin_text(&inspection.origin)
    );
    let _ = writeln!(out, "blake3:       {}", inspection.digest.to_hex());
    let _ = writeln!(out, "size:         {} bytes", inspection.size);
    let _ = writeln!(
        out,
        "wit version:  {}",
        inspection.wit_version.as_deref().unwrap_or("(unknown)")
    );
    let _ = writeln!(out, "exports:      {}", inspection.exports.join(", "));
    let imports = if inspection.imports.is_empty() {
        "(none)".to_string()
    } else {
        inspection.imports.join(", ")
    };
    let _ = writeln!(out, "imports:      {imports}");
    let _ = writeln!(out);
    let _ = writeln!(out, "rules:");
    for rule in &metadata.rules {
        let _ = writeln!(
            out,
            "  {}  [{}, {}]",
            rule.id,
            rule.severity.as_str(),
            rule.enforcement.as_str()
        );
        let _ = writeln!(out, "      {}", rule.description);
    }
    let _ = writeln!(out);
    match schema_value(metadata) {
        Value::Null => {
            let _ = writeln!(out, "configuration schema: (none)");
        }
        schema => {
            let _ = writeln!(out, "configuration schema:");
            let text = serde_json::to_string_pretty(&schema).unwrap_or_default();
            for line in text.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    out
}
