//! Terraform and OpenTofu `show -json` plans, format versions 0.1 to 1.2, and
//! later 1.x minors (read with a warning).

use serde::Deserialize;
use serde_json::Value;

use crate::error::PlanError;
use crate::json_text::{self, JsonText};
use crate::model::{
    Action, PROVKEY_PLAN_FORMAT, PROVKEY_PLAN_FORMAT_VERSION, Plan, PlanSource, ReplaceOrder,
    Replacement, ResourceChange, ResourceMode,
};
use crate::pointer;

/// The `format_version` values this crate knows. A later minor of major 1 is read
/// too: within a major version the format only adds fields (Terraform's JSON output
/// compatibility promise). Another major may change what fields mean, so it is
/// refused rather than half-understood.
pub const SUPPORTED_TERRAFORM_FORMAT_VERSIONS: &[&str] = &["0.1", "0.2", "1.0", "1.1", "1.2"];

/// How this crate reads a Terraform plan's `format_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerraformFormatVersion {
    /// One of [`SUPPORTED_TERRAFORM_FORMAT_VERSIONS`].
    Known,
    /// A later minor of a known major (`1.3`, `1.10`): read, fields it adds are ignored.
    NewerMinor,
    /// Anything else (`2.0`, `0.3`, `1`, `x`): refused.
    Unsupported,
}

impl TerraformFormatVersion {
    /// Classifies a `format_version` value.
    pub fn of(version: &str) -> Self {
        if SUPPORTED_TERRAFORM_FORMAT_VERSIONS.contains(&version) {
            return TerraformFormatVersion::Known;
        }
        let newest_known_minor = |major: &str| {
            SUPPORTED_TERRAFORM_FORMAT_VERSIONS
                .iter()
                .filter_map(|v| v.split_once('.'))
                .filter(|(m, _)| *m == major)
                .filter_map(|(_, minor)| minor.parse::<u32>().ok())
                .max()
        };
        // Only major 1 promises compatible additions; 0.x predates that promise.
        match version.split_once('.') {
            Some(("1", minor))
                if !minor.is_empty()
                    && !minor.starts_with('0')
                    && minor.bytes().all(|b| b.is_ascii_digit())
                    && minor.parse::<u32>().ok() > newest_known_minor("1") =>
            {
                TerraformFormatVersion::NewerMinor
            }
            _ => TerraformFormatVersion::Unsupported,
        }
    }
}

/// The warning a caller prints (on standard error) for a plan whose Terraform
/// `format_version` is a later 1.x minor than this crate knows; `None` otherwise.
pub fn format_version_warning(plan: &Plan) -> Option<String> {
    if plan.source != PlanSource::Terraform
        || TerraformFormatVersion::of(&plan.source_version) != TerraformFormatVersion::NewerMinor
    {
        return None;
    }
    let newest = SUPPORTED_TERRAFORM_FORMAT_VERSIONS
        .last()
        .copied()
        .unwrap_or_default();
    Some(format!(
        "the plan's Terraform JSON format version `{}` is newer than the newest this \
         provkey knows (`{newest}`): it is read as `{newest}`, and fields added since are \
         ignored\nhelp: upgrade provkey if a policy needs what the newer format adds",
        plan.source_version
    ))
}

#[derive(Deserialize)]
pub(crate) struct TfResourceChange {
    address: String,
    #[serde(default)]
    previous_address: Option<String>,
    #[serde(default)]
    module_address: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(rename = "type")]
    resource_type: String,
    name: String,
    #[serde(default)]
    provider_name: Option<String>,
    #[serde(default)]
    deposed: Option<String>,
    #[serde(default)]
    action_reason: Option<String>,
    change: TfChange,
}

#[derive(Deserialize)]
struct TfChange {
    actions: Vec<String>,
    #[serde(default, deserialize_with = "json_text::optional")]
    before: Option<JsonText>,
    #[serde(default, deserialize_with = "json_text::optional")]
    after: Option<JsonText>,
    #[serde(default)]
    after_unknown: Option<Value>,
    #[serde(default)]
    before_sensitive: Option<Value>,
    #[serde(default)]
    after_sensitive: Option<Value>,
    #[serde(default)]
    replace_paths: Option<Vec<Vec<Value>>>,
}

pub(crate) fn convert(version: String, changes: Vec<TfResourceChange>) -> Result<Plan, PlanError> {
    if TerraformFormatVersion::of(&version) == TerraformFormatVersion::Unsupported {
        return Err(PlanError::UnsupportedFormatVersion {
            version,
            supported: SUPPORTED_TERRAFORM_FORMAT_VERSIONS
                .iter()
                .map(|v| format!("`{v}`"))
                .chain(["a later `1.x`".to_string()])
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let changes = changes
        .into_iter()
        .map(convert_change)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Plan {
        format: PROVKEY_PLAN_FORMAT.to_string(),
        format_version: PROVKEY_PLAN_FORMAT_VERSION.to_string(),
        source: PlanSource::Terraform,
        source_version: version,
        changes,
    })
}

fn convert_change(rc: TfResourceChange) -> Result<ResourceChange, PlanError> {
    let address = match &rc.deposed {
        // A deposed object shares its address with the current one; keep addresses unique.
        Some(key) => format!("{} (deposed {key})", rc.address),
        None => rc.address,
    };
    let mode = match rc.mode.as_deref() {
        None | Some("managed") => ResourceMode::Managed,
        Some("data") => ResourceMode::Data,
        Some(other) => {
            return Err(PlanError::InvalidChange {
                address,
                message: format!("unknown mode `{other}`"),
            });
        }
    };
    let actions: Vec<&str> = rc.change.actions.iter().map(String::as_str).collect();
    let replacement = |order| {
        Action::Replace(Replacement {
            order,
            reason: rc.action_reason.clone(),
            paths: rc
                .change
                .replace_paths
                .iter()
                .flatten()
                .map(|segments| pointer::from_segments(segments.iter().map(segment_text)))
                .collect(),
        })
    };
    let action = match actions.as_slice() {
        ["create"] => Action::Create,
        ["delete"] => Action::Destroy,
        ["update"] => Action::Update,
        ["read"] => Action::Read,
        ["no-op"] => Action::NoOp,
        ["forget"] => Action::Forget,
        ["delete", "create"] => replacement(ReplaceOrder::DestroyBeforeCreate),
        ["create", "delete"] => replacement(ReplaceOrder::CreateBeforeDestroy),
        _ => {
            return Err(PlanError::UnknownActions {
                address,
                actions: format!("{:?}", rc.change.actions),
            });
        }
    };
    let marked = |markers: &Option<Value>| {
        markers
            .as_ref()
            .map(pointer::marked_paths)
            .unwrap_or_default()
    };
    Ok(ResourceChange {
        previous_address: rc.previous_address,
        module_path: rc.module_address.unwrap_or_default(),
        mode,
        resource_type: rc.resource_type,
        name: rc.name,
        provider: rc.provider_name.unwrap_or_default(),
        action,
        after_unknown: marked(&rc.change.after_unknown),
        before_sensitive: marked(&rc.change.before_sensitive),
        after_sensitive: marked(&rc.change.after_sensitive),
        before: rc.change.before,
        after: rc.change.after,
        depends_on: Vec::new(),
        address,
    })
}

fn segment_text(segment: &Value) -> String {
    match segment {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{TerraformFormatVersion, format_version_warning};
    use crate::{Action, Attr, Plan, PlanError, ReplaceOrder};

    const PLAN: &str = r#"{
      "format_version": "1.2",
      "terraform_version": "1.9.0",
      "resource_changes": [
        {"address": "aws_instance.web", "mode": "managed", "type": "aws_instance", "name": "web",
         "provider_name": "registry.terraform.io/hashicorp/aws",
         "change": {"actions": ["update"], "before": {"ami": "a", "tags": {"x": "1"}},
                    "after": {"ami": "b", "tags": {"x": "1"}},
                    "after_unknown": {"arn": true}, "before_sensitive": {}, "after_sensitive": {"tags": {"x": true}}}},
        {"address": "module.db.aws_db_instance.main", "module_address": "module.db", "mode": "managed",
         "type": "aws_db_instance", "name": "main", "provider_name": "aws", "action_reason": "replace_because_cannot_update",
         "change": {"actions": ["delete", "create"], "before": {}, "after": {}, "replace_paths": [["engine"], ["x", 0]]}}
      ]
    }"#;

    #[test]
    fn imports_terraform() {
        let plan = Plan::from_json(PLAN).unwrap();
        assert_eq!(plan.source_version, "1.2");
        let web = &plan.changes[0];
        assert_eq!(web.action, Action::Update);
        assert_eq!(web.changed_attributes(), ["/ami", "/arn"]);
        assert_eq!(web.after_at("/arn"), Attr::Unknown);
        assert!(web.is_sensitive("/tags/x"));
        assert_eq!(web.after_at("/ami").as_str(), Some("b"));
        let Action::Replace(r) = &plan.changes[1].action else {
            panic!()
        };
        assert_eq!(r.order, ReplaceOrder::DestroyBeforeCreate);
        assert_eq!(r.paths, ["/engine", "/x/0"]);
        assert_eq!(plan.changes[1].module_path, "module.db");
    }

    #[test]
    fn round_trips_through_provkey_json() {
        let plan = Plan::from_json(PLAN).unwrap();
        let json = plan.to_json().unwrap();
        let again = Plan::from_json(&json).unwrap();
        assert_eq!(plan.changes, again.changes);
    }

    #[test]
    fn reads_a_later_1x_minor_with_a_warning() {
        for newer in ["1.3", "1.10"] {
            let plan = Plan::from_json(&PLAN.replace("\"1.2\"", &format!("\"{newer}\""))).unwrap();
            assert_eq!(plan.source_version, newer);
            assert_eq!(plan.changes.len(), 2);
            let warning = format_version_warning(&plan).unwrap();
            assert!(
                warning.starts_with(&format!(
                    "the plan's Terraform JSON format version `{newer}` is newer than the \
                     newest this provkey knows (`1.2`)"
                )),
                "{warning}"
            );
            assert!(warning.contains("\nhelp: "), "{warning}");
        }
        for known in ["1.2", "1.0", "0.1"] {
            let plan = Plan::from_json(&PLAN.replace("\"1.2\"", &format!("\"{known}\""))).unwrap();
            assert_eq!(format_version_warning(&plan), None, "{known}");
        }
        assert_eq!(
            TerraformFormatVersion::of("1.1"),
            TerraformFormatVersion::Known
        );
        assert_eq!(
            TerraformFormatVersion::of("1.01"),
            TerraformFormatVersion::Unsupported
        );
        assert_eq!(
            TerraformFormatVersion::of("2.1"),
            TerraformFormatVersion::Unsupported
        );
    }

    #[test]
    fn refuses_bad_documents() {
        assert_eq!(Plan::from_json("  \n"), Err(PlanError::Empty));
        assert!(matches!(
            Plan::from_json(&PLAN[..100]),
            Err(PlanError::Truncated { .. })
        ));
        assert!(matches!(
            Plan::from_json("{\"a\": 1}"),
            Err(PlanError::NotAPlan { .. })
        ));
        assert!(matches!(
            Plan::from_json("[1]"),
            Err(PlanError::Invalid { .. })
        ));
        let future = PLAN.replace("\"1.2\"", "\"9.0\"");
        assert!(matches!(
            Plan::from_json(&future),
            Err(PlanError::UnsupportedFormatVersion { .. })
        ));
        for refused in ["2.0", "0.3", "1", "1.", "1.x", "1.-3", "x"] {
            let other = PLAN.replace("\"1.2\"", &format!("\"{refused}\""));
            assert!(
                matches!(
                    Plan::from_json(&other),
                    Err(PlanError::UnsupportedFormatVersion { .. })
                ),
                "{refused}"
            );
        }
        let dup = PLAN.replace("module.db.aws_db_instance.main", "aws_instance.web");
        assert!(matches!(
            Plan::from_json(&dup),
            Err(PlanError::DuplicateAddress { .. })
        ));
        let bad = PLAN.replace("[\"update\"]", "[\"update\", \"read\"]");
        assert!(matches!(
            Plan::from_json(&bad),
            Err(PlanError::UnknownActions { .. })
        ));
    }
}
