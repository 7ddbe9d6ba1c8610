//! Bench only: counts the in-place updates of a plan handed over as the typed
//! `plan` record, as one JSON string, or as JSON bytes, plus no-ops that only
//! receive the typed plan or the JSON string. `provkey-bench` times each export to decide how plans
//! should cross into guests.
//!
//! The JSON exports parse the whole change, typed and borrowed (strings borrowed
//! where they hold no escapes, attribute values kept as raw JSON), so that they do
//! the work the typed record's lifting does, and no more.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

wit_bindgen::generate!({
    path: "wit",
    world: "boundary",
    generate_all,
});

use provkey::plan::types::Action;

struct Boundary;

impl Guest for Boundary {
    fn count_typed(plan: Plan) -> u32 {
        let updates = plan
            .changes
            .iter()
            .filter(|c| matches!(c.action, Action::Update))
            .count();
        u32::try_from(updates).unwrap_or(u32::MAX)
    }

    fn count_json_string(json: String) -> Result<u32, String> {
        count(serde_json::from_str(&json))
    }

    fn count_json_bytes(json: Vec<u8>) -> Result<u32, String> {
        count(serde_json::from_slice(&json))
    }

    fn transfer_only(plan: Plan) -> u32 {
        u32::try_from(plan.changes.len()).unwrap_or(u32::MAX)
    }

    fn transfer_only_string(json: String) -> u32 {
        u32::try_from(json.len()).unwrap_or(u32::MAX)
    }
}

fn count(parsed: Result<PlanDoc<'_>, serde_json::Error>) -> Result<u32, String> {
    let plan = parsed.map_err(|err| err.to_string())?;
    let updates = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, JsonAction::Update))
        .count();
    Ok(u32::try_from(updates).unwrap_or(u32::MAX))
}

/// provkey plan JSON (`provkey_plan::Plan`'s serde form), borrowed from the input.
#[derive(Deserialize)]
#[expect(dead_code, reason = "parsed like a policy would, not all read here")]
struct PlanDoc<'a> {
    #[serde(borrow)]
    format: Cow<'a, str>,
    #[serde(borrow)]
    format_version: Cow<'a, str>,
    #[serde(borrow)]
    source: Cow<'a, str>,
    #[serde(borrow)]
    source_version: Cow<'a, str>,
    #[serde(borrow)]
    changes: Vec<Change<'a>>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "parsed like a policy would, not all read here")]
struct Change<'a> {
    #[serde(borrow)]
    address: Cow<'a, str>,
    #[serde(borrow, default)]
    previous_address: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    module_path: Cow<'a, str>,
    #[serde(borrow, default)]
    mode: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    resource_type: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    provider: Cow<'a, str>,
    #[serde(borrow)]
    action: JsonAction<'a>,
    #[serde(borrow, default)]
    before: Option<&'a RawValue>,
    #[serde(borrow, default)]
    after: Option<&'a RawValue>,
    #[serde(borrow, default)]
    after_unknown: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    before_sensitive: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    after_sensitive: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    depends_on: Vec<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
#[expect(dead_code, reason = "parsed like a policy would, not all read here")]
enum JsonAction<'a> {
    Create,
    Replace(#[serde(borrow)] Replacement<'a>),
    Destroy,
    Read,
    NoOp,
    Forget,
    Update,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "parsed like a policy would, not all read here")]
struct Replacement<'a> {
    #[serde(borrow)]
    order: Cow<'a, str>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    paths: Vec<Cow<'a, str>>,
}

export!(Boundary);
