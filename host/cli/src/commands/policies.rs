//! `provkey policies`: the catalog of the stock policies, each with its rules, their
//! default severity and enforcement, and its configuration fields, all read from
//! the policies' own metadata (the embedded components are loaded and asked).
//! `--format markdown` writes `docs/policies.md`.
//!
//! Also the error for a `--policy` value that is neither a file nor a stock id,
//! with the closest stock id ("did you mean") and the list.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use provkey_plan::PolicyMetadata;
use provkey_runtime::{PolicyOrigin, Runtime};
use serde_json::{Value, json};

use crate::commands::check::RuntimeArgs;
use crate::commands::inspect::emit;
use crate::exit::{CliError, CliResult, Exit};

#[derive(Args, Debug)]
pub struct PoliciesArgs {
    /// How to print the catalog.
    #[arg(long, value_enum, default_value_t = CatalogFormat::Text)]
    pub format: CatalogFormat,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Output formats of `policies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CatalogFormat {
    Text,
    Json,
    /// The page `docs/policies.md`.
    Markdown,
}

/// One configuration field, as the policy's JSON Schema describes it.
struct ConfigField {
    name: String,
    /// `array of string`, `boolean`, `object`, ...
    kind: String,
    default: Option<Value>,
    description: String,
}

pub fn execute(args: PoliciesArgs) -> CliResult<Exit> {
    let runtime = args.runtime.build()?;
    let catalog = catalog(&runtime)?;
    let text = match args.format {
        CatalogFormat::Text => to_text(&catalog),
        CatalogFormat::Markdown => to_markdown(&catalog),
        CatalogFormat::Json => {
            let list: Vec<Value> = catalog.iter().map(to_json).collect();
            let text = serde_json::to_string_pretty(&list)
                .map_err(|err| CliError::bad_input(anyhow!("cannot write JSON: {err}")))?;
            format!("{text}\n")
        }
    };
    emit(&text);
    Ok(Exit::Pass)
}

/// The metadata of every stock policy, sorted by id, as each component declares it.
fn catalog(runtime: &Runtime) -> CliResult<Vec<PolicyMetadata>> {
    provkey_stock::STOCK_POLICIES
        .iter()
        .map(|stock| {
            runtime
                .load_policy(stock.id, PolicyOrigin::Stock, stock.bytes)
                .map(|loaded| loaded.metadata)
                .map_err(|err| CliError {
                    exit: Exit::PolicyFailed,
                    error: anyhow::Error::new(err)
                        .context(format!("cannot load the stock policy `{}`", stock.id)),
                    help: Some("this build of provkey is broken: rebuild it".to_string()),
                })
        })
        .collect()
}

fn schema(metadata: &PolicyMetadata) -> Option<Value> {
    metadata
        .config_schema
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
}

fn config_fields(metadata: &PolicyMetadata) -> Vec<ConfigField> {
    let Some(schema) = schema(metadata) else {
        return Vec::new();
    };
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| ConfigField {
            name: name.clone(),
            kind: kind(property),
            default: property.get("default").cloned(),
            description: property
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
        .collect()
}

/// A property's type in a few words: `integer`, `array of string`, `object of string`.
fn kind(property: &Value) -> String {
    let name = match property.get("type") {
        Some(Value::String(name)) => name.clone(),
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => return "any".to_string(),
    };
    let inner = match name.as_str() {
        "array" => property.get("items"),
        "object" => property.get("additionalProperties"),
        _ => None,
    };
    match inner.filter(|inner| inner.is_object()) {
        Some(inner) => format!("{name} of {}", kind(inner)),
        None => name,
    }
}

fn to_json(metadata: &PolicyMetadata) -> Value {
    let fields: Vec<Value> = config_fields(metadata)
        .into_iter()
        .map(|field| {
            json!({
                "name": field.name,
                "type": field.kind,
                "default": field.default,
                "description": field.description,
            })
        })
        .collect();
    json!({
        "id": metadata.id,
        "version": metadata.version,
        "description": metadata.description,
        "rules": metadata.rules,
        "config": fields,
        "config_schema": schema(metadata),
    })
}

fn to_text(catalog: &[PolicyMetadata]) -> String {
    let mut out = String::new();
    for (i, metadata) in catalog.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{} {}", metadata.id, metadata.version);
        let _ = writeln!(out, "  {}", metadata.description);
        let _ = writeln!(out, "  rules:");
        for rule in &metadata.rules {
            let _ = writeln!(
                out,
                "    {}  [{}, {}]",
                rule.id,
                rule.severity.as_str(),
                rule.enforcement.as_str()
            );
            let _ = writeln!(out, "        {}", rule.description);
        }
        let fields = config_fields(metadata);
        if fields.is_empty() {
            let _ = writeln!(out, "  configuration: none");
            continue;
        }
        let _ = writeln!(out, "  configuration:");
        for field in fields {
            let default = field
                .default
                .map(|d| format!(", default {d}"))
                .unwrap_or_default();
            let _ = writeln!(out, "    {}  ({}{default})", field.name, field.kind);
            if !field.description.is_empty() {
                let _ = writeln!(out, "        {}", field.description);
            }
        }
    }
    out.push_str(
        "\n`provkey inspect ID` prints a policy's whole configuration schema; \
         `--config ID=FILE.json` configures it.\n",
    );
    out
}

/// Text for a Markdown table cell: `|` escaped, one line.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn to_markdown(catalog: &[PolicyMetadata]) -> String {
    let mut out = String::from(
        "<!-- Generated by `provkey policies --format markdown > docs/policies.md`; \
         tests/all/catalog.rs fails when it differs from the policies' metadata. -->\n\n\
         # Stock policies\n\n\
         The stock policies are embedded in `provkey`. `provkey check` without `--policy` \
         runs all of them; `--policy ID` runs one, `--config ID=FILE.json` configures it \
         (or `config = {…}` under `[policy.ID]` in `provkey.toml`). Each rule's enforcement \
         is its default: a policy set can change it (see the README's policy sets). \
         `provkey policies` prints this catalog (`--format json` for scripts) and \
         `provkey inspect ID` a policy's whole configuration schema.\n\n\
         | policy | what it does |\n|---|---|\n",
    );
    for metadata in catalog {
        let _ = writeln!(
            out,
            "| [`{id}`](#{id}) | {} |",
            cell(&metadata.description),
            id = metadata.id
        );
    }
    for metadata in catalog {
        let _ = write!(
            out,
            "\n## {}\n\nVersion {}. {}\n\n\
             | rule | severity | default enforcement | what it means |\n|---|---|---|---|\n",
            metadata.id, metadata.version, metadata.description
        );
        for rule in &metadata.rules {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                rule.id,
                rule.severity.as_str(),
                rule.enforcement.as_str(),
                cell(&rule.description)
            );
        }
        let fields = config_fields(metadata);
        if fields.is_empty() {
            out.push_str("\nNo configuration.\n");
            continue;
        }
        out.push_str("\n| configuration field | type | default | meaning |\n|---|---|---|---|\n");
        for field in fields {
            let default = field
                .default
                .map(|d| format!("`{}`", cell(&d.to_string())))
                .unwrap_or_else(|| "none".to_string());
            let _ = writeln!(
                out,
                "| `{}` | {} | {default} | {} |",
                field.name,
                field.kind,
                cell(&field.description)
            );
        }
    }
    out
}

/// The stock id closest to `value`, when one is close enough to be a typo.
pub fn closest_stock_id(value: &str) -> Option<&'static str> {
    let value = value.trim().to_ascii_lowercase();
    provkey_stock::STOCK_POLICIES
        .iter()
        .map(|stock| (stock.id, strsim::jaro_winkler(&value, stock.id)))
        .filter(|(id, score)| *score >= 0.85 || (value.len() >= 4 && id.contains(value.as_str())))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(id, _)| id)
}

/// The list of stock ids, each in backticks.
pub fn stock_id_list() -> String {
    provkey_stock::STOCK_POLICIES
        .iter()
        .map(|p| format!("`{}`", p.id))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The error for a policy value that is neither an existing file nor a stock id.
pub fn unknown_policy(value: &Path) -> CliError {
    let shown = value.display().to_string();
    let suggestion = value
        .to_str()
        .and_then(closest_stock_id)
        .map(|id| format!("did you mean `{id}`? "))
        .unwrap_or_default();
    CliError::bad_input(anyhow!(
        "`{shown}` is neither a component file nor a stock policy"
    ))
    .with_help(format!(
        "{suggestion}the stock policies are {} (`provkey policies` describes them); \
         otherwise give the path of a policy component (`.wasm`)",
        stock_id_list()
    ))
}
