use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::PlanError;
use crate::json_text::{self, JsonText};
use crate::pointer;

/// The `format` field that marks provkey's own plan JSON.
pub const PROVKEY_PLAN_FORMAT: &str = "provkey-plan";
/// The version of provkey's own plan JSON that this crate reads and writes.
pub const PROVKEY_PLAN_FORMAT_VERSION: &str = "0.1";

/// Where a plan came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanSource {
    /// A provkey planner.
    Provkey,
    /// `terraform show -json` or `tofu show -json`.
    Terraform,
    /// Kubernetes objects (manifests or admission requests), each object a change.
    Kubernetes,
}

impl PlanSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanSource::Provkey => "provkey",
            PlanSource::Terraform => "terraform",
            PlanSource::Kubernetes => "kubernetes",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "provkey" => Some(PlanSource::Provkey),
            "terraform" => Some(PlanSource::Terraform),
            "kubernetes" => Some(PlanSource::Kubernetes),
            _ => None,
        }
    }
}

/// A deployment plan: every change, in the order it is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Always [`PROVKEY_PLAN_FORMAT`] in provkey's JSON.
    pub format: String,
    /// Always [`PROVKEY_PLAN_FORMAT_VERSION`] in provkey's JSON.
    pub format_version: String,
    pub source: PlanSource,
    /// The version of the format the plan was first read from: `0.1` for provkey,
    /// `1.2` for a recent Terraform.
    pub source_version: String,
    pub changes: Vec<ResourceChange>,
}

/// The order of the two halves of a replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplaceOrder {
    DestroyBeforeCreate,
    CreateBeforeDestroy,
}

/// A replacement: why it happens and in which order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replacement {
    pub order: ReplaceOrder,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The attributes whose change forces the replacement, as JSON Pointers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

/// What a plan does to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Replace(Replacement),
    Destroy,
    Read,
    NoOp,
    Forget,
    /// An in-place change: never emitted by provkey's planners, refused by the
    /// `immutable` policy.
    Update,
}

impl Action {
    /// The action's name as it appears in reports: `create`, `replace`, ...
    pub fn name(&self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Replace(_) => "replace",
            Action::Destroy => "destroy",
            Action::Read => "read",
            Action::NoOp => "no-op",
            Action::Forget => "forget",
            Action::Update => "update",
        }
    }

    /// Whether the existing object is destroyed (a destroy or either replacement).
    pub fn destroys(&self) -> bool {
        matches!(self, Action::Destroy | Action::Replace(_))
    }

    /// Whether a new object is created (a create or either replacement).
    pub fn creates(&self) -> bool {
        matches!(self, Action::Create | Action::Replace(_))
    }
}

/// Whether the resource is managed by the plan or only read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceMode {
    #[default]
    Managed,
    Data,
}

/// One planned change to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceChange {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_address: Option<String>,
    #[serde(default)]
    pub module_path: String,
    #[serde(default)]
    pub mode: ResourceMode,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub name: String,
    pub provider: String,
    pub action: Action,
    #[serde(
        default,
        deserialize_with = "json_text::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub before: Option<JsonText>,
    #[serde(
        default,
        deserialize_with = "json_text::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub after: Option<JsonText>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_unknown: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before_sensitive: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_sensitive: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

/// An attribute value as a policy sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Attr<'a> {
    /// Known now. It may still be sensitive: check before printing it.
    Known(&'a Value),
    /// Known only after apply.
    Unknown,
    /// Not set (or the resource has no such side: no `after` for a destroy).
    Absent,
}

impl<'a> Attr<'a> {
    pub fn known(self) -> Option<&'a Value> {
        match self {
            Attr::Known(value) => Some(value),
            _ => None,
        }
    }

    pub fn as_str(self) -> Option<&'a str> {
        self.known().and_then(Value::as_str)
    }

    pub fn is_unknown(self) -> bool {
        matches!(self, Attr::Unknown)
    }

    pub fn is_absent(self) -> bool {
        matches!(self, Attr::Absent)
    }
}

impl ResourceChange {
    /// The value before the change, parsed on first use.
    pub fn before_value(&self) -> Option<&Value> {
        self.before.as_ref().and_then(JsonText::value)
    }

    /// The known value after the change, parsed on first use.
    pub fn after_value(&self) -> Option<&Value> {
        self.after.as_ref().and_then(JsonText::value)
    }

    /// The attribute at `path` (a JSON Pointer) before the change.
    pub fn before_at(&self, path: &str) -> Attr<'_> {
        match self.before.as_ref().and_then(|v| v.pointer(path)) {
            Some(Value::Null) | None => Attr::Absent,
            Some(value) => Attr::Known(value),
        }
    }

    /// The attribute at `path` after the change: known, unknown until apply, or absent.
    pub fn after_at(&self, path: &str) -> Attr<'_> {
        if self.is_unknown(path) {
            return Attr::Unknown;
        }
        match self.after.as_ref().and_then(|v| v.pointer(path)) {
            Some(Value::Null) | None => Attr::Absent,
            Some(value) => Attr::Known(value),
        }
    }

    /// Whether the value at `path` after the change is known only after apply.
    pub fn is_unknown(&self, path: &str) -> bool {
        self.after_unknown
            .iter()
            .any(|u| pointer::is_within(path, u))
    }

    /// Whether the value after the change is an object with a top-level member
    /// `key`, whatever its value (`null` included). Cheaper than
    /// [`ResourceChange::after_value`]: no value is parsed.
    pub fn after_has_key(&self, key: &str) -> bool {
        self.after.as_ref().is_some_and(|after| after.has_key(key))
    }

    /// Whether the value at `path` (before or after) is sensitive.
    pub fn is_sensitive(&self, path: &str) -> bool {
        self.before_sensitive
            .iter()
            .chain(&self.after_sensitive)
            .any(|s| pointer::is_within(path, s))
    }

    /// The top-level attributes whose known values differ between before and after,
    /// plus those that become unknown. Sorted, as JSON Pointers.
    ///
    /// When the values are remote (in a guest), the host that holds them answers, for
    /// the change as it sent it: the values are then neither copied nor parsed here.
    pub fn changed_attributes(&self) -> Vec<String> {
        let remote = self
            .before
            .iter()
            .chain(&self.after)
            .find_map(JsonText::remote_origin);
        if let Some((values, change)) = remote
            && let Some(changed) = values.changed_attributes(change)
        {
            return changed;
        }
        self.changed_attributes_here()
    }

    /// [`ResourceChange::changed_attributes`] worked out from the values as this
    /// process reads them.
    fn changed_attributes_here(&self) -> Vec<String> {
        let empty = JsonText::new("{}");
        let before = self.before.as_ref().unwrap_or(&empty);
        let after = self.after.as_ref().unwrap_or(&empty);
        // Each key is compared once: before's keys, then the keys only after has
        // (which differ by definition). A key's pointer is built only when it is
        // listed or an unknown path must be matched against it.
        let unknown = |key: &str| {
            !self.after_unknown.is_empty() && self.is_unknown(&pointer::from_segments([key]))
        };
        let mut changed: Vec<String> = before
            .keys()
            .into_iter()
            .flatten()
            .filter(|key| unknown(key) || before.member_differs(after, key))
            .chain(
                after
                    .keys()
                    .into_iter()
                    .flatten()
                    .filter(|key| !before.has_key(key)),
            )
            .map(|key| pointer::from_segments([key]))
            .collect();
        for unknown in &self.after_unknown {
            let top = unknown
                .split('/')
                .nth(1)
                .map(|segment| format!("/{segment}"))
                .unwrap_or_default();
            if !top.is_empty() {
                changed.push(top);
            }
        }
        changed.sort();
        changed.dedup();
        changed
    }
}

impl Plan {
    /// An empty provkey plan.
    pub fn new(source: PlanSource) -> Self {
        Plan {
            format: PROVKEY_PLAN_FORMAT.to_string(),
            format_version: PROVKEY_PLAN_FORMAT_VERSION.to_string(),
            source,
            source_version: PROVKEY_PLAN_FORMAT_VERSION.to_string(),
            changes: Vec::new(),
        }
    }

    /// Reads provkey's plan JSON or Terraform / OpenTofu `show -json` output, in
    /// one pass over the text.
    pub fn from_json(text: &str) -> Result<Plan, PlanError> {
        let blank = text.trim().is_empty();
        let any: AnyPlan =
            serde_json::from_str(text).map_err(|err| PlanError::from_json(&err, blank))?;
        // One verdict for every value: readable in full now, or the plan is refused
        // here, never a value read as absent later.
        crate::readable::check_fully_readable(text).map_err(|err| PlanError::Unreadable {
            line: err.line(),
            column: err.column(),
            message: crate::error::strip_position(&err.to_string()),
        })?;
        let plan = match (any.format.as_deref(), any.format_version) {
            (Some(PROVKEY_PLAN_FORMAT), Some(version)) => {
                if version != PROVKEY_PLAN_FORMAT_VERSION {
                    return Err(PlanError::UnsupportedProvkeyVersion {
                        version,
                        supported: PROVKEY_PLAN_FORMAT_VERSION.to_string(),
                    });
                }
                Plan {
                    format: PROVKEY_PLAN_FORMAT.to_string(),
                    source: any.source.unwrap_or(PlanSource::Provkey),
                    source_version: any.source_version.unwrap_or_else(|| version.clone()),
                    format_version: version,
                    changes: any.changes.unwrap_or_default(),
                }
            }
            (Some(PROVKEY_PLAN_FORMAT), None) => {
                return Err(PlanError::NotAPlan {
                    detail: "a provkey plan needs a `format_version`".to_string(),
                });
            }
            (Some(other), _) => {
                return Err(PlanError::NotAPlan {
                    detail: format!("unknown `format` value `{other}`"),
                });
            }
            (None, Some(version)) if any.resource_changes.is_some() || any.planned_values => {
                crate::terraform::convert(version, any.resource_changes.unwrap_or_default())?
            }
            (None, _) => {
                return Err(PlanError::NotAPlan {
                    detail: "expected provkey plan JSON (`\"format\": \"provkey-plan\"`) or the \
                             output of `terraform show -json` (`format_version` with \
                             `resource_changes` or `planned_values`)"
                        .to_string(),
                });
            }
        };
        plan.validate()?;
        Ok(plan)
    }

    /// Serializes to provkey's plan JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// Checks what every consumer relies on: unique addresses, and well-formed pointers.
    pub fn validate(&self) -> Result<(), PlanError> {
        let mut seen = HashSet::with_capacity(self.changes.len());
        for change in &self.changes {
            if change.address.is_empty() {
                return Err(PlanError::InvalidChange {
                    address: String::new(),
                    message: "the address is empty".to_string(),
                });
            }
            if !seen.insert(change.address.as_str()) {
                return Err(PlanError::DuplicateAddress {
                    address: change.address.clone(),
                });
            }
            // A resource's attributes are an object on either side; anything else
            // would read as a resource with no attributes at all.
            for (side, value) in [("before", &change.before), ("after", &change.after)] {
                if let Some(value) = value
                    && !value.as_str().trim_start().starts_with('{')
                {
                    let text = value.as_str().trim();
                    let shown: String = text.chars().take(40).collect();
                    return Err(PlanError::InvalidChange {
                        address: change.address.clone(),
                        message: format!(
                            "the value {side} the change must be an object, not `{shown}{}`",
                            if shown.len() < text.len() { "…" } else { "" }
                        ),
                    });
                }
            }
            let pointers = change
                .after_unknown
                .iter()
                .chain(&change.before_sensitive)
                .chain(&change.after_sensitive);
            for path in pointers {
                if !(path.is_empty() || path.starts_with('/')) {
                    return Err(PlanError::InvalidChange {
                        address: change.address.clone(),
                        message: format!("`{path}` is not a JSON Pointer (it must start with `/`)"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Counts the changes by action name, in a fixed order.
    pub fn action_counts(&self) -> Vec<(&'static str, usize)> {
        let names = [
            "create", "replace", "destroy", "update", "read", "forget", "no-op",
        ];
        names
            .iter()
            .map(|name| {
                let count = self
                    .changes
                    .iter()
                    .filter(|c| c.action.name() == *name)
                    .count();
                (*name, count)
            })
            .collect()
    }

    /// The change with this address.
    pub fn change(&self, address: &str) -> Option<&ResourceChange> {
        self.changes.iter().find(|c| c.address == address)
    }
}

/// Both formats' top-level fields, so that a plan is read in one pass.
#[derive(Deserialize)]
struct AnyPlan {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    format_version: Option<String>,
    #[serde(default)]
    source: Option<PlanSource>,
    #[serde(default)]
    source_version: Option<String>,
    #[serde(default)]
    changes: Option<Vec<ResourceChange>>,
    #[serde(default)]
    resource_changes: Option<Vec<crate::terraform::TfResourceChange>>,
    #[serde(default, deserialize_with = "present")]
    planned_values: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer)?;
    Ok(true)
}
