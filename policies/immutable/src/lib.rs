//! The `immutable` stock policy: resources are replaced, never updated in place.
//!
//! Every change whose action is `update` is a hard-mandatory finding naming the
//! resource and the attributes that would change (names only, never values).
//! Creates, replaces, destroys, reads, no-ops and forgets pass.
//!
//! Configuration (optional, `{}` by default; schema in `config.schema.json`):
//!
//! - `ignore_types`: a list of resource types whose in-place updates are allowed,
//!   for example `["aws_autoscaling_group"]`.
//!
//! Any other field is an invalid configuration.

use provkey_sdk::prelude::*;

/// The policy's one rule.
pub const NO_UPDATE_IN_PLACE: Rule = Rule::new(
    "no-update-in-place",
    "Resources are replaced, never updated in place.",
)
.severity(Severity::High)
.enforcement(Enforcement::HardMandatory);

/// The configuration's JSON Schema.
pub const CONFIG_SCHEMA: &str = include_str!("../config.schema.json");

const IGNORE_TYPES: &str = "ignore_types";

/// The policy.
pub struct Immutable;

impl Policy for Immutable {
    fn metadata() -> Metadata {
        Metadata::new(
            "immutable",
            env!("CARGO_PKG_VERSION"),
            "Refuses in-place updates: every change to an existing resource must replace it.",
        )
        .rules(&[NO_UPDATE_IN_PLACE])
        .config_schema(CONFIG_SCHEMA)
    }

    fn evaluate(plan: &Plan, config: &Config) -> Result<Vec<Finding>, Error> {
        config.deny_unknown_fields(&[IGNORE_TYPES])?;
        let ignored = config.get_str_list(IGNORE_TYPES)?.unwrap_or_default();
        if ignored.iter().any(|t| t.is_empty()) {
            return Err(Error::invalid_config(format!(
                "field `{IGNORE_TYPES}`: a resource type cannot be empty"
            )));
        }
        Ok(plan
            .changes_where(|c| c.action.is_update() && !ignored.contains(&c.resource_type.as_str()))
            .map(finding)
            .collect())
    }
}

fn finding(change: &ResourceChange) -> Finding {
    let changed = change.changed_attributes();
    let names: Vec<String> = changed.iter().map(|p| format!("`{}`", name(p))).collect();
    let message = if names.is_empty() {
        format!("`{}` would be updated in place", change.address)
    } else {
        format!(
            "`{}` would be updated in place (changes {})",
            change.address,
            names.join(", ")
        )
    };
    let mut finding = Finding::new(&NO_UPDATE_IN_PLACE, change)
        .message(message)
        .remediation(format!(
            "replace it instead: make the change force a new resource (for example \
             `terraform apply -replace={}` or `lifecycle {{ replace_triggered_by = [...] }}`), \
             with `lifecycle {{ create_before_destroy = true }}` so that the new one \
             exists before the old one is destroyed",
            change.address
        ));
    // The finding points at the first attribute that changes; the message names all.
    if let Some(first) = changed.into_iter().next() {
        finding = finding.attribute(first);
    }
    finding
}

/// A top-level attribute's name from its JSON Pointer: `/tags` gives `tags`.
fn name(pointer: &str) -> String {
    let segment = pointer.strip_prefix('/').unwrap_or(pointer);
    segment.replace("~1", "/").replace("~0", "~")
}

provkey_sdk::export_policy!(Immutable);

#[cfg(test)]
mod tests {
    use provkey_sdk::testing::{self, change};

    use super::*;

    fn run(plan: &Plan, config: &str) -> Result<Vec<Finding>, Error> {
        testing::evaluate::<Immutable>(plan, config)
    }

    fn replace(order: ReplaceOrder) -> Action {
        Action::Replace(Replacement {
            order,
            reason: Some("replace_because_cannot_update".to_string()),
            paths: vec!["/ami".to_string()],
        })
    }

    #[test]
    fn metadata_is_well_formed() {
        testing::check_metadata::<Immutable>();
        let metadata = Immutable::metadata();
        assert_eq!((metadata.id, metadata.version), ("immutable", "0.1.0"));
        let rule = metadata.rule("no-update-in-place").unwrap();
        assert_eq!(rule.severity, Severity::High);
        assert_eq!(rule.enforcement, Enforcement::HardMandatory);
    }

    #[test]
    fn every_action_but_update_passes() {
        let plan = testing::plan_of([
            change("aws_instance.create", Action::Create),
            change(
                "aws_instance.dbc",
                replace(ReplaceOrder::DestroyBeforeCreate),
            ),
            change(
                "aws_instance.cbd",
                replace(ReplaceOrder::CreateBeforeDestroy),
            ),
            change("aws_instance.destroy", Action::Destroy),
            change("data.aws_ami.read", Action::Read),
            change("aws_instance.noop", Action::NoOp),
            change("aws_instance.forget", Action::Forget),
        ]);
        assert_eq!(run(&plan, "{}").unwrap(), []);
    }

    #[test]
    fn every_update_is_a_hard_mandatory_finding() {
        let plan = testing::plan_of([
            change("aws_instance.a", Action::Update)
                .before(json!({"ami": "ami-1", "tags": {"x": "1"}, "size": "s"}))
                .after(json!({"ami": "ami-2", "tags": {"x": "2"}, "size": "s"})),
            change("aws_instance.b", Action::Create),
            change("module.m.aws_s3_bucket.c", Action::Update)
                .before(json!({"acl": "private"}))
                .after(json!({"acl": "public-read"})),
        ]);
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(
            testing::addresses(&findings),
            ["aws_instance.a", "module.m.aws_s3_bucket.c"]
        );
        let a = &findings[0];
        assert_eq!(a.rule, "no-update-in-place");
        assert_eq!(a.severity, Severity::High);
        assert_eq!(a.enforcement, Enforcement::HardMandatory);
        assert_eq!(
            a.message,
            "`aws_instance.a` would be updated in place (changes `ami`, `tags`)"
        );
        assert_eq!(a.attribute.as_deref(), Some("/ami"));
        assert!(
            a.remediation
                .as_deref()
                .unwrap()
                .contains("create_before_destroy")
        );
        let c = &findings[1];
        assert_eq!(c.attribute.as_deref(), Some("/acl"));
        assert_eq!(
            c.message,
            "`module.m.aws_s3_bucket.c` would be updated in place (changes `acl`)"
        );
    }

    #[test]
    fn names_unknown_and_sensitive_attributes_but_never_values() {
        let plan = testing::plan_of([change("aws_db_instance.db", Action::Update)
            .before(json!({"password": "hunter2", "arn": "arn:1"}))
            .after(json!({"password": "correct-horse"}))
            .sensitive("/password")
            .unknown("/arn")]);
        let findings = run(&plan, "{}").unwrap();
        let text = format!("{findings:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("correct-horse"),
            "{text}"
        );
        assert_eq!(
            findings[0].message,
            "`aws_db_instance.db` would be updated in place (changes `arn`, `password`)"
        );
    }

    #[test]
    fn an_update_with_no_visible_change_is_still_reported() {
        let plan = testing::plan_of([change("aws_instance.a", Action::Update)]);
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(
            findings[0].message,
            "`aws_instance.a` would be updated in place"
        );
    }

    #[test]
    fn ignore_types_skips_those_types() {
        let plan = testing::plan_of([
            change("aws_autoscaling_group.a", Action::Update),
            change("aws_instance.b", Action::Update),
        ]);
        let findings = run(&plan, r#"{"ignore_types": ["aws_autoscaling_group"]}"#).unwrap();
        assert_eq!(testing::addresses(&findings), ["aws_instance.b"]);
        assert_eq!(run(&plan, "").unwrap().len(), 2);
        assert_eq!(run(&plan, r#"{"ignore_types": null}"#).unwrap().len(), 2);
    }

    #[test]
    fn bad_configuration_names_the_field() {
        let plan = testing::plan_of([change("aws_instance.a", Action::Update)]);
        let err = |config| run(&plan, config).unwrap_err();
        assert_eq!(
            err(r#"{"ignore_type": []}"#),
            Error::invalid_config("unknown field `ignore_type` (expected `ignore_types`)")
        );
        assert_eq!(
            err(r#"{"ignore_types": "aws_instance"}"#),
            Error::invalid_config(
                "field `ignore_types`: expected a list of strings, found a string"
            )
        );
        assert_eq!(
            err(r#"{"ignore_types": [""]}"#),
            Error::invalid_config("field `ignore_types`: a resource type cannot be empty")
        );
        assert!(matches!(err("[]"), Error::InvalidConfig(_)));
    }

    #[test]
    fn reads_terraform_plans() {
        let plan = testing::plan(
            r#"{
              "format_version": "1.2",
              "resource_changes": [
                {"address": "aws_instance.web", "mode": "managed", "type": "aws_instance", "name": "web",
                 "provider_name": "registry.terraform.io/hashicorp/aws",
                 "change": {"actions": ["update"], "before": {"ami": "a", "user_data": "s"},
                            "after": {"ami": "a", "user_data": "t"},
                            "before_sensitive": {"user_data": true}, "after_sensitive": {"user_data": true}}},
                {"address": "aws_instance.db", "mode": "managed", "type": "aws_instance", "name": "db",
                 "change": {"actions": ["delete", "create"], "before": {}, "after": {}}},
                {"address": "aws_instance.new", "mode": "managed", "type": "aws_instance", "name": "new",
                 "change": {"actions": ["create"], "before": null, "after": {}}}
              ]
            }"#,
        );
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(testing::addresses(&findings), ["aws_instance.web"]);
        assert_eq!(findings[0].attribute.as_deref(), Some("/user_data"));
        assert!(!findings[0].message.contains("\"t\""));
    }

    #[test]
    fn the_example_plans() {
        let plan = testing::plan(include_str!("../../../examples/plans/update-in-place.json"));
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(testing::addresses(&findings), ["aws_instance.bastion"]);
        assert_eq!(findings[0].attribute.as_deref(), Some("/instance_type"));
        assert_eq!(
            findings[0].message,
            "`aws_instance.bastion` would be updated in place (changes `instance_type`, `user_data`)"
        );
        assert!(!format!("{findings:?}").contains("secret-bootstrap"));
        let plan = testing::plan(include_str!("../../../examples/plans/replace-only.json"));
        assert_eq!(run(&plan, "{}").unwrap(), []);
    }
}
