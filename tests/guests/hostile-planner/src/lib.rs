//! A planner that misbehaves on request. The mode is the desired state's `target`:
//! `update`, `duplicate`, `unknown-dependency`, `cycle`, `trap`, `guest-error`,
//! `sleep-forever`, `sleep-loop`;
//! any other target gives a well-formed plan creating every desired resource.

#![allow(clippy::panic, reason = "a test guest that traps on request")]

use provkey_sdk::prelude::*;
use provkey_sdk::{JsonText, PlanSource};

struct Hostile;

fn change(address: &str, action: Action, deps: &[&str]) -> ResourceChange {
    let (kind, name) = address.split_once('.').unwrap_or(("instance", address));
    ResourceChange {
        address: address.to_string(),
        previous_address: None,
        module_path: String::new(),
        mode: ResourceMode::Managed,
        resource_type: kind.to_string(),
        name: name.to_string(),
        provider: "provkey".to_string(),
        action,
        before: None,
        after: Some(JsonText::new("{}")),
        after_unknown: Vec::new(),
        before_sensitive: Vec::new(),
        after_sensitive: Vec::new(),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
    }
}

impl Planner for Hostile {
    fn metadata() -> PlannerMetadata {
        PlannerMetadata {
            id: "hostile-planner",
            version: "0.0.0",
            description: "Misbehaves on request.",
        }
    }

    fn plan(desired: &str, _current: &str) -> Result<Plan, Error> {
        let desired: Value =
            serde_json::from_str(desired).map_err(|e| Error::invalid_input(e.to_string()))?;
        let mode = desired["target"].as_str().unwrap_or_default();
        let mut plan = Plan::new(PlanSource::Provkey);
        plan.changes = match mode {
            "update" => vec![change("instance.a", Action::Update, &[])],
            "duplicate" => vec![
                change("instance.a", Action::Create, &[]),
                change("instance.a", Action::Create, &[]),
            ],
            "unknown-dependency" => vec![change("instance.a", Action::Create, &["instance.ghost"])],
            "cycle" => vec![
                change("instance.a", Action::Create, &["instance.b"]),
                change("instance.b", Action::Create, &["instance.a"]),
            ],
            "trap" => panic!("the hostile planner traps on request"),
            // Waits on the clock: the host must not block past the deadline.
            "sleep-forever" => {
                std::thread::sleep(std::time::Duration::MAX);
                Vec::new()
            }
            "sleep-loop" => loop {
                std::thread::sleep(std::hint::black_box(std::time::Duration::from_secs(1)));
            },
            "guest-error" => return Err(Error::failed("the hostile planner fails on request")),
            _ => desired["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["address"].as_str())
                .map(|a| change(a, Action::Create, &[]))
                .collect(),
        };
        Ok(plan)
    }
}

provkey_sdk::export_planner!(Hostile);
