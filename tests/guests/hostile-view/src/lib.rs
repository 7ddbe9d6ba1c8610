//! A `provkey:plan@0.2.0` policy written directly against the WIT (no SDK) that
//! asks the host's `plan-view` for what its configuration says: `{"mode": "probe"}`
//! reports what the host answers to questions about values that do not exist;
//! `flood` asks for the same value until the deadline; `hoard` keeps every answer
//! until the memory limit. The host must answer `none`, or stop the guest with a
//! clear error, and never crash or pass.

use std::hint::black_box;

wit_bindgen::generate!({
    path: "../../../wit/plan@0.2.0",
    world: "policy",
});

use exports::provkey::plan::policy_api::Guest;
use provkey::plan::plan_view::{PlanSummary, Side, value};
use provkey::plan::types::{Enforcement, Finding, GuestError, PolicyMetadata, RuleInfo, Severity};

struct HostileView;

const RULE: &str = "answer";

fn finding(message: String) -> Finding {
    Finding {
        rule: RULE.to_string(),
        severity: Severity::Low,
        enforcement: Enforcement::Advisory,
        message,
        address: None,
        attribute: None,
        remediation: None,
    }
}

/// What the host answered, as `question => answer` (`none`, or the text's length
/// and first characters).
fn ask(question: &str, change: u32, side: Side, pointer: &str) -> Finding {
    let answer = match value(change, side, pointer) {
        None => "none".to_string(),
        Some(text) => format!(
            "{} bytes: {}",
            text.len(),
            text.chars().take(24).collect::<String>()
        ),
    };
    finding(format!("{question} => {answer}"))
}

impl Guest for HostileView {
    fn metadata() -> PolicyMetadata {
        PolicyMetadata {
            id: "hostile-view".to_string(),
            version: "0.0.0".to_string(),
            description: "asks plan-view what it should not, for the host's tests".to_string(),
            rules: vec![RuleInfo {
                id: RULE.to_string(),
                description: "what the host answered".to_string(),
                severity: Severity::Low,
                enforcement: Enforcement::Advisory,
            }],
            config_schema: None,
        }
    }

    fn evaluate(plan: PlanSummary, config: String) -> Result<Vec<Finding>, GuestError> {
        let config: serde_json::Value =
            serde_json::from_str(&config).map_err(|e| GuestError::InvalidConfig(e.to_string()))?;
        let mode = config
            .get("mode")
            .and_then(|m| m.as_str())
            .unwrap_or("probe");
        let last = u32::try_from(plan.changes.len()).unwrap_or(u32::MAX);
        match mode {
            "probe" => Ok(vec![
                ask("whole after of change 0", 0, Side::After, ""),
                ask("member of change 0", 0, Side::After, "/ami"),
                ask("deep pointer of change 0", 0, Side::After, "/tags/Name"),
                ask("missing member", 0, Side::After, "/no-such-attribute"),
                ask("pointer without a slash", 0, Side::After, "ami"),
                ask("index past the end", last, Side::After, ""),
                ask("largest index", u32::MAX, Side::Before, "/ami"),
                ask("pointer of 1 MB", 0, Side::After, &"/x".repeat(1 << 19)),
            ]),
            "flood" => loop {
                black_box(value(0, Side::After, ""));
            },
            "hoard" => {
                let mut kept = Vec::new();
                loop {
                    kept.push(value(0, Side::After, ""));
                    black_box(&kept);
                }
            }
            other => Err(GuestError::InvalidConfig(format!("unknown mode `{other}`"))),
        }
    }
}

export!(HostileView);
