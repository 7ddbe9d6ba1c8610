//! The `create-before-destroy` stock policy: a serving resource is replaced by
//! creating the new one first, so that something serves during the change.
//!
//! A replacement in `destroy-before-create` order (Terraform's default, `["delete",
//! "create"]`) of a serving resource is a finding; `create-before-destroy`
//! replacements (`lifecycle { create_before_destroy = true }`) pass. Which resources
//! serve: by default every managed resource except `skip_types`; with `types`, only
//! those. The policy reads actions only, so nothing in it can be unknown until
//! apply.
//!
//! Configuration (optional, `{}` by default; schema in `config.schema.json`):
//!
//! - `types`: the serving resource types (a trailing `*` matches any suffix); when
//!   absent, every managed resource serves.
//! - `skip_types`: types never reported (for resources whose unique names forbid two
//!   at once, for example).

use provkey_sdk::prelude::*;
use provkey_sdk::serde;

/// A serving resource replaced destroy-first.
pub const DESTROY_BEFORE_CREATE: Rule = Rule::new(
    "destroy-before-create",
    "Serving resources are replaced create-first (`create_before_destroy`), never \
     destroyed before their replacement exists.",
)
.severity(Severity::Medium)
.enforcement(Enforcement::SoftMandatory);

/// The configuration's JSON Schema.
pub const CONFIG_SCHEMA: &str = include_str!("../config.schema.json");

#[derive(serde::Deserialize, Default)]
#[serde(crate = "provkey_sdk::serde", deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    types: Option<Vec<String>>,
    #[serde(default)]
    skip_types: Vec<String>,
}

/// The policy.
pub struct CreateBeforeDestroy;

impl Policy for CreateBeforeDestroy {
    fn metadata() -> Metadata {
        Metadata::new(
            "create-before-destroy",
            env!("CARGO_PKG_VERSION"),
            "Reports serving resources that would be destroyed before their replacement is \
             created.",
        )
        .rules(&[DESTROY_BEFORE_CREATE])
        .config_schema(CONFIG_SCHEMA)
    }

    fn evaluate(plan: &Plan, config: &Config) -> Result<Vec<Finding>, Error> {
        let settings: Settings = config.parse()?;
        if let Some(types) = &settings.types
            && types.is_empty()
        {
            return Err(Error::invalid_config(
                "field `types`: give at least one type, or leave `types` out to check every \
                 resource",
            ));
        }
        let serving = |change: &ResourceChange| {
            let listed = settings
                .types
                .as_ref()
                .is_none_or(|types| types.iter().any(|t| type_matches(t, &change.resource_type)));
            listed
                && !settings
                    .skip_types
                    .iter()
                    .any(|t| type_matches(t, &change.resource_type))
        };
        Ok(plan
            .managed_changes()
            .filter(|c| {
                matches!(&c.action, Action::Replace(r) if r.order == ReplaceOrder::DestroyBeforeCreate)
            })
            .filter(|c| serving(c))
            .map(finding)
            .collect())
    }
}

fn finding(change: &ResourceChange) -> Finding {
    let mut finding = Finding::new(&DESTROY_BEFORE_CREATE, change)
        .message(format!(
            "`{}` would be destroyed before its replacement is created, so it serves nothing \
             in between",
            change.address
        ))
        .remediation(
            "add `lifecycle { create_before_destroy = true }` to the resource (with a name \
             prefix instead of a fixed name where names must be unique), or list its type in \
             `skip_types` if it serves nothing",
        );
    if let Action::Replace(replacement) = &change.action
        && let Some(path) = replacement.paths.first()
    {
        finding = finding.attribute(path.clone());
    }
    finding
}

fn type_matches(pattern: &str, resource_type: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => resource_type.starts_with(prefix),
        None => pattern == resource_type,
    }
}

provkey_sdk::export_policy!(CreateBeforeDestroy);

#[cfg(test)]
mod tests {
    use provkey_sdk::testing::{self, change};

    use super::*;

    fn run(plan: &Plan, config: &str) -> Result<Vec<Finding>, Error> {
        testing::evaluate::<CreateBeforeDestroy>(plan, config)
    }

    fn replace(order: ReplaceOrder) -> Action {
        Action::Replace(Replacement {
            order,
            reason: Some("replace_because_cannot_update".to_string()),
            paths: vec!["/ami".to_string()],
        })
    }

    fn plan() -> Plan {
        testing::plan_of([
            change(
                "aws_instance.dbc",
                replace(ReplaceOrder::DestroyBeforeCreate),
            ),
            change(
                "aws_instance.cbd",
                replace(ReplaceOrder::CreateBeforeDestroy),
            ),
            change("aws_lb.front", replace(ReplaceOrder::DestroyBeforeCreate)),
            change("aws_instance.gone", Action::Destroy),
            change("aws_instance.new", Action::Create),
            change("aws_instance.up", Action::Update),
        ])
    }

    #[test]
    fn metadata_is_well_formed() {
        testing::check_metadata::<CreateBeforeDestroy>();
    }

    #[test]
    fn destroy_first_replacements_are_reported() {
        let findings = run(&plan(), "{}").unwrap();
        assert_eq!(
            testing::addresses(&findings),
            ["aws_instance.dbc", "aws_lb.front"]
        );
        assert_eq!(findings[0].attribute.as_deref(), Some("/ami"));
        assert_eq!(
            findings[0].message,
            "`aws_instance.dbc` would be destroyed before its replacement is created, so it \
             serves nothing in between"
        );
    }

    #[test]
    fn types_and_skip_types() {
        let only = run(&plan(), r#"{"types": ["aws_lb*"]}"#).unwrap();
        assert_eq!(testing::addresses(&only), ["aws_lb.front"]);
        let skip = run(&plan(), r#"{"skip_types": ["aws_lb"]}"#).unwrap();
        assert_eq!(testing::addresses(&skip), ["aws_instance.dbc"]);
        let err = |config| run(&plan(), config).unwrap_err().message().to_string();
        assert!(err(r#"{"types": []}"#).starts_with("field `types`"));
        assert!(err(r#"{"skip": []}"#).contains("unknown field `skip`"));
    }
}
