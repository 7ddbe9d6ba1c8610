//! A policy whose metadata lies in the way its package's name says, for the host's
//! tests: `many-rules` declares 200,000 rules and returns 120,000 findings of the
//! last one; `bad-schema` declares a configuration schema that does not compile;
//! `claims-immutable` declares the id of the stock `immutable` and passes
//! everything. The host must report each as that policy's failure and run the
//! others.

wit_bindgen::generate!({
    path: "../../../wit/plan@0.1.0",
    world: "policy",
});

use exports::provkey::plan::policy_api::Guest;
use provkey::plan::types::{
    Enforcement, Finding, GuestError, Plan, PolicyMetadata, RuleInfo, Severity,
};

struct Lying;

const NAME: &str = env!("CARGO_PKG_NAME");

fn rule_count() -> usize {
    if NAME == "many-rules" { 200_000 } else { 1 }
}

impl Guest for Lying {
    fn metadata() -> PolicyMetadata {
        PolicyMetadata {
            id: if NAME == "claims-immutable" {
                "immutable".to_string()
            } else {
                NAME.to_string()
            },
            version: "0.0.0".to_string(),
            description: "lies about itself, for the host's tests".to_string(),
            rules: (0..rule_count())
                .map(|i| RuleInfo {
                    id: format!("rule-{i}"),
                    description: String::new(),
                    severity: Severity::Low,
                    enforcement: Enforcement::Advisory,
                })
                .collect(),
            config_schema: (NAME == "bad-schema")
                .then(|| r#"{"type": "no-such-type"}"#.to_string()),
        }
    }

    fn evaluate(_plan: Plan, _config: String) -> Result<Vec<Finding>, GuestError> {
        if NAME != "many-rules" {
            return Ok(Vec::new());
        }
        let last = format!("rule-{}", rule_count() - 1);
        Ok((0..120_000)
            .map(|i| Finding {
                rule: last.clone(),
                severity: Severity::Low,
                enforcement: Enforcement::Advisory,
                message: i.to_string(),
                address: None,
                attribute: None,
                remediation: None,
            })
            .collect())
    }
}

export!(Lying);
