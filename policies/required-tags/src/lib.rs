//! The `required-tags` stock policy: every taggable resource carries the required
//! tags (AWS, Azure) or labels (Google).
//!
//! Which resources: managed resources being created, replaced or updated in place
//! (the state they end in must carry the tags; destroys, reads, no-ops and forgets
//! are not checked). A resource is taggable when its planned values have one of
//! its provider's tag attributes (even `null`, which Terraform writes for an unset
//! attribute of the schema):
//!
//! | type prefix | attributes whose keys count, in order |
//! |---|---|
//! | `aws_` | `tags`, `tags_all` (which includes the provider's `default_tags`) |
//! | `google_` | `labels`, `terraform_labels` (which includes `default_labels`) |
//! | `azurerm_`, `azuread_` | `tags` |
//! | `k8s_` (Kubernetes objects) | `metadata/labels`; every object is labelable |
//! | any other | `tags`, `labels` |
//!
//! A required key is carried when it is a key of one of those maps, or a key whose
//! value is known only after apply. Rules:
//!
//! - `missing-tags` (medium, soft-mandatory): required keys are absent; the finding
//!   names the resource, the first tag attribute and the missing keys.
//! - `tags-unknown` (low, advisory): required keys are not in the known values and
//!   a whole tag map is known only after apply, so the plan cannot tell.
//! - `tag-value-invalid` (medium, soft-mandatory): with `non_empty`, a required
//!   tag's value is empty or only spaces; with `patterns`, a tag's value does not
//!   match its pattern. Values known only after apply are not judged.
//!
//! Only key names and patterns from the configuration are printed, never a tag
//! value, so a sensitive value cannot leak.
//!
//! Configuration (schema in `config.schema.json`):
//!
//! - `tags`: the required keys, default `["owner", "environment"]`;
//! - `non_empty`: whether a required tag's value must be non-empty, default `false`;
//! - `patterns`: tag key to a regular expression the whole value must match (a
//!   key in `patterns` need not be required: its value is checked when present);
//! - `ignore_types`: resource types that are not checked.

use provkey_sdk::prelude::*;

/// Required keys are absent.
pub const MISSING_TAGS: Rule = Rule::new(
    "missing-tags",
    "Taggable resources carry the required tags (AWS, Azure) or labels (Google).",
)
.severity(Severity::Medium)
.enforcement(Enforcement::SoftMandatory);

/// A tag map is known only after apply: the plan cannot tell.
pub const TAGS_UNKNOWN: Rule = Rule::new(
    "tags-unknown",
    "The required tags cannot be checked because a tag map is known only after apply.",
)
.severity(Severity::Low)
.enforcement(Enforcement::Advisory);

/// A tag's value is empty, or does not match the configured pattern.
pub const TAG_VALUE_INVALID: Rule = Rule::new(
    "tag-value-invalid",
    "Tag values are non-empty (with `non_empty`) and match the configured `patterns`.",
)
.severity(Severity::Medium)
.enforcement(Enforcement::SoftMandatory);

/// The configuration's JSON Schema.
pub const CONFIG_SCHEMA: &str = include_str!("../config.schema.json");

/// The keys required when the configuration names none.
pub const DEFAULT_TAGS: [&str; 2] = ["owner", "environment"];

const TAGS: &str = "tags";
const NON_EMPTY: &str = "non_empty";
const PATTERNS: &str = "patterns";
const IGNORE_TYPES: &str = "ignore_types";

/// What the values of tags must be.
struct ValueRules<'a> {
    /// The required keys' values must be non-empty.
    non_empty: bool,
    /// Key, pattern as configured, the pattern anchored at both ends.
    patterns: Vec<(&'a str, &'a str, regex_lite::Regex)>,
}

impl ValueRules<'_> {
    fn is_empty(&self) -> bool {
        !self.non_empty && self.patterns.is_empty()
    }
}

fn value_rules(config: &Config) -> Result<ValueRules<'_>, Error> {
    let non_empty = config.get_bool(NON_EMPTY)?.unwrap_or(false);
    let mut patterns = Vec::new();
    if let Some(value) = config.get(PATTERNS) {
        let map = value.as_object().ok_or_else(|| {
            Error::invalid_config(format!(
                "field `{PATTERNS}`: expected an object of tag key to regular expression"
            ))
        })?;
        for (key, pattern) in map {
            let pattern = pattern.as_str().ok_or_else(|| {
                Error::invalid_config(format!(
                    "field `{PATTERNS}.{key}`: expected a regular expression (a string)"
                ))
            })?;
            if key.is_empty() {
                return Err(Error::invalid_config(format!(
                    "field `{PATTERNS}`: a tag key cannot be empty"
                )));
            }
            let anchored = regex_lite::Regex::new(&format!("^(?:{pattern})$")).map_err(|err| {
                let reason = err.to_string();
                let reason = reason.lines().last().unwrap_or_default().trim();
                Error::invalid_config(format!(
                    "field `{PATTERNS}.{key}`: `{pattern}` is not a valid regular expression: \
                     {reason}"
                ))
            })?;
            patterns.push((key.as_str(), pattern, anchored));
        }
    }
    Ok(ValueRules {
        non_empty,
        patterns,
    })
}

/// The policy.
pub struct RequiredTags;

impl Policy for RequiredTags {
    fn metadata() -> Metadata {
        Metadata::new(
            "required-tags",
            env!("CARGO_PKG_VERSION"),
            "Requires tags (AWS, Azure) or labels (Google) on every taggable resource that is created, replaced or updated.",
        )
        .rules(&[MISSING_TAGS, TAGS_UNKNOWN, TAG_VALUE_INVALID])
        .config_schema(CONFIG_SCHEMA)
    }

    fn evaluate(plan: &Plan, config: &Config) -> Result<Vec<Finding>, Error> {
        config.deny_unknown_fields(&[TAGS, NON_EMPTY, PATTERNS, IGNORE_TYPES])?;
        let required = match config.get_str_list(TAGS)? {
            Some(tags) if tags.is_empty() => {
                return Err(Error::invalid_config(format!(
                    "field `{TAGS}`: name at least one tag"
                )));
            }
            Some(tags) => tags,
            None => DEFAULT_TAGS.to_vec(),
        };
        if required.iter().any(|t| t.is_empty()) {
            return Err(Error::invalid_config(format!(
                "field `{TAGS}`: a tag key cannot be empty"
            )));
        }
        let values = value_rules(config)?;
        let ignored = config.get_str_list(IGNORE_TYPES)?.unwrap_or_default();
        let mut findings = Vec::new();
        for change in plan.changes_where(|c| {
            c.is_managed()
                && (c.action.creates() || c.action.is_update())
                && !ignored.contains(&c.resource_type.as_str())
        }) {
            findings.extend(check(change, &required));
            if !values.is_empty() {
                findings.extend(check_values(change, &required, &values));
            }
        }
        Ok(findings)
    }
}

/// The attributes holding tags for a resource type, in order.
pub fn tag_attributes(resource_type: &str) -> &'static [&'static str] {
    if resource_type.starts_with("aws_") {
        &["tags", "tags_all"]
    } else if resource_type.starts_with("google_") {
        &["labels", "terraform_labels"]
    } else if resource_type.starts_with("azurerm_") || resource_type.starts_with("azuread_") {
        &["tags"]
    } else if resource_type.starts_with(KUBERNETES_PREFIX) {
        &["metadata/labels"]
    } else {
        &["tags", "labels"]
    }
}

fn check(change: &ResourceChange, required: &[&str]) -> Option<Finding> {
    let present = present_attributes(change);
    let primary = present.first()?;
    let unknown_map = present.iter().find(|a| change.is_unknown(&format!("/{a}")));
    let carried = |key: &str| {
        present.iter().any(|a| {
            if change.is_unknown(&format!("/{a}")) {
                return false;
            }
            let path = format!("/{a}/{}", provkey_sdk::pointer::escape(key));
            !change.after_at(&path).is_absent()
        })
    };
    let missing: Vec<&str> = required.iter().copied().filter(|k| !carried(k)).collect();
    if missing.is_empty() {
        return None;
    }
    let noun = if primary.ends_with("labels") {
        "labels"
    } else {
        "tags"
    };
    let list = missing
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let address = &change.address;
    Some(match unknown_map {
        Some(attr) => Finding::new(&TAGS_UNKNOWN, change)
            .attribute(format!("/{attr}"))
            .message(format!(
                "`{address}`: required {noun} {list} cannot be checked: `{attr}` is known only after apply"
            ))
            .remediation(format!(
                "give `{attr}` known values in the configuration, or check the {noun} after apply"
            )),
        None => Finding::new(&MISSING_TAGS, change)
            .attribute(format!("/{primary}"))
            .message(format!("`{address}` is missing required {noun} {list}"))
            .remediation(format!("add {list} to `{primary}` of `{address}`")),
    })
}

/// The tag attributes of `change` present in its planned values (known or not).
/// The type prefix of Kubernetes objects read from manifests or admission requests.
const KUBERNETES_PREFIX: &str = "k8s_";

/// The tag attributes the resource has (a path such as `metadata/labels` names a
/// nested map). Every Kubernetes object can carry labels, set or not.
fn present_attributes(change: &ResourceChange) -> Vec<&'static str> {
    let attributes = tag_attributes(&change.resource_type);
    if change.resource_type.starts_with(KUBERNETES_PREFIX) {
        return attributes.to_vec();
    }
    attributes
        .iter()
        .copied()
        .filter(|a| change.is_unknown(&format!("/{a}")) || change.after_has_key(a))
        .collect()
}

/// The values of the required keys (with `non_empty`) and of the keys with a
/// pattern, where the plan knows them: one finding per resource naming each bad key.
fn check_values(
    change: &ResourceChange,
    required: &[&str],
    rules: &ValueRules<'_>,
) -> Option<Finding> {
    let present = present_attributes(change);
    // The first known value of `key` in the tag attributes, with its pointer; none
    // when the key is absent everywhere or its value is known only after apply.
    let value_of = |key: &str| {
        for attribute in &present {
            let path = format!("/{attribute}/{}", provkey_sdk::pointer::escape(key));
            match change.after_at(&path) {
                Attr::Known(value) => return Some((path, value)),
                Attr::Unknown => return None,
                Attr::Absent => {}
            }
        }
        None
    };
    let text = |value: &Value| match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut problems = Vec::new();
    let mut first_path = None;
    if rules.non_empty {
        for key in required {
            if let Some((path, value)) = value_of(key)
                && text(value).trim().is_empty()
            {
                problems.push(format!("`{key}` is empty"));
                first_path.get_or_insert(path);
            }
        }
    }
    for (key, pattern, anchored) in &rules.patterns {
        if let Some((path, value)) = value_of(key)
            && !anchored.is_match(&text(value))
        {
            problems.push(format!("`{key}` does not match `{pattern}`"));
            first_path.get_or_insert(path);
        }
    }
    let path = first_path?;
    let noun = if path.starts_with("/labels") || path.starts_with("/terraform_labels") {
        "label"
    } else {
        "tag"
    };
    Some(
        Finding::new(&TAG_VALUE_INVALID, change)
            .attribute(path)
            .message(format!(
                "`{}`: {noun} {}",
                change.address,
                problems.join(format!(", {noun} ").as_str())
            ))
            .remediation(format!(
                "give each {noun} a value that is non-empty and matches its pattern in the \
                 policy's configuration"
            )),
    )
}

provkey_sdk::export_policy!(RequiredTags);

#[cfg(test)]
mod tests {
    use provkey_sdk::testing::{self, change};

    use super::*;

    fn run(plan: &Plan, config: &str) -> Result<Vec<Finding>, Error> {
        testing::evaluate::<RequiredTags>(plan, config)
    }

    #[test]
    fn metadata_is_well_formed() {
        testing::check_metadata::<RequiredTags>();
        let metadata = RequiredTags::metadata();
        assert_eq!(metadata.id, "required-tags");
        let rule = metadata.rule("missing-tags").unwrap();
        assert_eq!(rule.enforcement, Enforcement::SoftMandatory);
        let rule = metadata.rule("tags-unknown").unwrap();
        assert_eq!(rule.enforcement, Enforcement::Advisory);
    }

    #[test]
    fn kubernetes_objects_need_the_labels_whether_they_have_labels_or_not() {
        let plan = testing::plan_of([
            change("Deployment/prod/web", Action::Create)
                .resource_type("k8s_deployment")
                .after(json!({"metadata": {"name": "web", "labels": {"owner": "a", "environment": "p"}}})),
            change("Service/prod/web", Action::Create)
                .resource_type("k8s_service")
                .after(json!({"metadata": {"name": "web", "labels": {"owner": "a"}}})),
            change("ConfigMap/c", Action::Create)
                .resource_type("k8s_config_map")
                .after(json!({"metadata": {"name": "c"}})),
        ]);
        let findings = run(&plan, "{}").unwrap();
        let found: Vec<(&str, Option<&str>, &str)> = findings
            .iter()
            .map(|f| {
                (
                    f.address.as_deref().unwrap(),
                    f.attribute.as_deref(),
                    f.message.as_str(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                (
                    "Service/prod/web",
                    Some("/metadata/labels"),
                    "`Service/prod/web` is missing required labels `environment`"
                ),
                (
                    "ConfigMap/c",
                    Some("/metadata/labels"),
                    "`ConfigMap/c` is missing required labels `owner`, `environment`"
                ),
            ]
        );
    }

    #[test]
    fn missing_tags_are_reported_per_provider() {
        let plan = testing::plan_of([
            change("aws_instance.ok", Action::Create)
                .after(json!({"tags": {"owner": "a", "environment": "p"}, "tags_all": {}})),
            change("aws_instance.none", Action::Create)
                .after(json!({"tags": null, "tags_all": {}})),
            change("aws_instance.defaults", Action::Create).after(
                json!({"tags": {"owner": "a"}, "tags_all": {"owner": "a", "environment": "p"}}),
            ),
            change("google_compute_instance.g", Action::Create)
                .after(json!({"labels": {"owner": "a"}})),
            change("azurerm_resource_group.z", Action::Create).after(json!({"tags": {}})),
            change("aws_iam_policy_document.not_taggable", Action::Create)
                .after(json!({"json": "{}"})),
        ]);
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(
            testing::addresses(&findings),
            [
                "aws_instance.none",
                "google_compute_instance.g",
                "azurerm_resource_group.z"
            ]
        );
        assert_eq!(findings[0].rule, "missing-tags");
        assert_eq!(
            findings[0].message,
            "`aws_instance.none` is missing required tags `owner`, `environment`"
        );
        assert_eq!(findings[0].attribute.as_deref(), Some("/tags"));
        assert_eq!(
            findings[1].message,
            "`google_compute_instance.g` is missing required labels `environment`"
        );
        assert_eq!(findings[1].attribute.as_deref(), Some("/labels"));
        assert_eq!(findings[2].severity, Severity::Medium);
    }

    #[test]
    fn only_creates_replaces_and_updates_are_checked() {
        let replace = Action::Replace(Replacement {
            order: ReplaceOrder::CreateBeforeDestroy,
            reason: None,
            paths: vec![],
        });
        let plan = testing::plan_of([
            change("aws_s3_bucket.c", Action::Create).after(json!({"tags": {}})),
            change("aws_s3_bucket.r", replace).after(json!({"tags": {}})),
            change("aws_s3_bucket.u", Action::Update).after(json!({"tags": {}})),
            change("aws_s3_bucket.d", Action::Destroy).before(json!({"tags": {}})),
            change("aws_s3_bucket.n", Action::NoOp).after(json!({"tags": {}})),
        ]);
        let findings = run(&plan, r#"{"tags": ["owner"]}"#).unwrap();
        assert_eq!(
            testing::addresses(&findings),
            ["aws_s3_bucket.c", "aws_s3_bucket.r", "aws_s3_bucket.u"]
        );
    }

    #[test]
    fn unknown_maps_are_undecidable_and_unknown_values_count_as_carried() {
        let plan = testing::plan_of([
            change("aws_instance.a", Action::Create)
                .after(json!({"tags": {"owner": "x"}}))
                .unknown("/tags_all"),
            change("aws_instance.b", Action::Create)
                .after(json!({"tags": {}, "tags_all": {}}))
                .unknown("/tags/owner")
                .unknown("/tags/environment"),
            change("azurerm_linux_virtual_machine.c", Action::Create).unknown("/tags"),
        ]);
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(
            testing::addresses(&findings),
            ["aws_instance.a", "azurerm_linux_virtual_machine.c"]
        );
        assert_eq!(findings[0].rule, "tags-unknown");
        assert_eq!(findings[0].enforcement, Enforcement::Advisory);
        assert_eq!(findings[0].attribute.as_deref(), Some("/tags_all"));
        assert_eq!(
            findings[0].message,
            "`aws_instance.a`: required tags `environment` cannot be checked: `tags_all` is known only after apply"
        );
        assert_eq!(findings[1].attribute.as_deref(), Some("/tags"));
    }

    #[test]
    fn never_prints_tag_values() {
        let plan = testing::plan_of([change("aws_instance.a", Action::Create)
            .after(json!({"tags": {"token": "hunter2"}}))
            .sensitive("/tags")]);
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(findings.len(), 1);
        assert!(!format!("{findings:?}").contains("hunter2"));
    }

    #[test]
    fn configuration() {
        let plan = testing::plan_of([
            change("aws_instance.a", Action::Create).after(json!({"tags": {"team": "x"}})),
            change("aws_iam_role.b", Action::Create).after(json!({"tags": {}})),
        ]);
        let findings = run(&plan, r#"{"tags": ["team"]}"#).unwrap();
        assert_eq!(testing::addresses(&findings), ["aws_iam_role.b"]);
        let findings = run(&plan, r#"{"ignore_types": ["aws_iam_role"]}"#).unwrap();
        assert_eq!(testing::addresses(&findings), ["aws_instance.a"]);
        let err = |config| run(&plan, config).unwrap_err();
        assert_eq!(
            err(r#"{"tag": []}"#),
            Error::invalid_config(
                "unknown field `tag` (expected one of `tags`, `non_empty`, `patterns`, \
                 `ignore_types`)"
            )
        );
        assert_eq!(
            err(r#"{"tags": []}"#),
            Error::invalid_config("field `tags`: name at least one tag")
        );
        assert_eq!(
            err(r#"{"tags": [""]}"#),
            Error::invalid_config("field `tags`: a tag key cannot be empty")
        );
        assert!(matches!(
            err(r#"{"tags": "owner"}"#),
            Error::InvalidConfig(_)
        ));
    }

    fn value_plan() -> Plan {
        testing::plan_of([
            change("aws_instance.good", Action::Create).after(json!({
                "tags": {"owner": "ops", "environment": "prod"}, "tags_all": {}
            })),
            change("aws_instance.blank", Action::Create).after(json!({
                "tags": {"owner": "  ", "environment": "prod"}, "tags_all": {}
            })),
            change("aws_instance.wrong_env", Action::Create).after(json!({
                "tags": {"owner": "", "environment": "Production"}, "tags_all": {}
            })),
            change("aws_instance.default_tags", Action::Update).after(json!({
                "tags": {"owner": "ops"}, "tags_all": {"owner": "ops", "environment": "qa"}
            })),
            change("aws_instance.later", Action::Create)
                .after(json!({"tags": {"owner": "ops", "environment": "prod"}}))
                .unknown("/tags/environment")
                .unknown("/tags/owner"),
            change("google_compute_instance.g", Action::Create)
                .after(json!({"labels": {"owner": "ops", "environment": "dev", "cost": "x1"}})),
        ])
    }

    #[test]
    fn non_empty_values() {
        // Without `non_empty`, an empty value still carries the key.
        assert_eq!(run(&value_plan(), "{}").unwrap(), []);
        let findings = run(&value_plan(), r#"{"non_empty": true}"#).unwrap();
        assert_eq!(
            testing::addresses(&findings),
            ["aws_instance.blank", "aws_instance.wrong_env"]
        );
        assert_eq!(findings[0].rule, "tag-value-invalid");
        assert_eq!(findings[0].enforcement, Enforcement::SoftMandatory);
        assert_eq!(findings[0].attribute.as_deref(), Some("/tags/owner"));
        assert_eq!(
            findings[0].message,
            "`aws_instance.blank`: tag `owner` is empty"
        );
    }

    #[test]
    fn value_patterns_match_the_whole_value() {
        let config = r#"{"non_empty": true,
                         "patterns": {"environment": "prod|dev", "cost": "[a-z]+"}}"#;
        let findings = run(&value_plan(), config).unwrap();
        assert_eq!(
            testing::addresses(&findings),
            [
                "aws_instance.blank",
                "aws_instance.wrong_env",
                "aws_instance.default_tags",
                "google_compute_instance.g"
            ]
        );
        assert_eq!(
            findings[1].message,
            "`aws_instance.wrong_env`: tag `owner` is empty, tag `environment` does not \
             match `prod|dev`"
        );
        // `tags_all` holds the provider's default tags.
        assert_eq!(
            findings[2].attribute.as_deref(),
            Some("/tags_all/environment")
        );
        assert_eq!(
            findings[3].message,
            "`google_compute_instance.g`: label `cost` does not match `[a-z]+`"
        );
        assert_eq!(findings[3].attribute.as_deref(), Some("/labels/cost"));
        // The value is never printed.
        assert!(!format!("{findings:?}").contains("Production"));
    }

    #[test]
    fn value_configuration_errors_name_the_field() {
        let err = |config| {
            run(&value_plan(), config)
                .unwrap_err()
                .message()
                .to_string()
        };
        assert_eq!(
            err(r#"{"non_empty": "yes"}"#),
            "field `non_empty`: expected `true` or `false`, found a string"
        );
        assert_eq!(
            err(r#"{"patterns": ["prod"]}"#),
            "field `patterns`: expected an object of tag key to regular expression"
        );
        assert_eq!(
            err(r#"{"patterns": {"environment": 3}}"#),
            "field `patterns.environment`: expected a regular expression (a string)"
        );
        let bad = err(r#"{"patterns": {"environment": "(prod"}}"#);
        assert!(
            bad.starts_with(
                "field `patterns.environment`: `(prod` is not a valid regular expression: "
            ),
            "{bad}"
        );
        assert_eq!(
            err(r#"{"patterns": {"": "x"}}"#),
            "field `patterns`: a tag key cannot be empty"
        );
    }
}
