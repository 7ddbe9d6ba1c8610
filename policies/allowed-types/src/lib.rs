//! The `allowed-types` stock policy: a plan creates or updates only the allowed
//! resource types, and none of the denied ones.
//!
//! Which resources: managed resources being created, replaced or updated in place
//! (the resources the plan leaves in place; destroying a type that is not allowed
//! is what its owners want, so destroys, reads, no-ops and forgets are not checked).
//!
//! A pattern is a resource type (`aws_s3_bucket`) or a prefix ending in `*`
//! (`aws_*`, `google_compute_*`), compared exactly (types are lowercase in every
//! provider). A type is refused when it matches a `deny` pattern, or when `allow` is
//! given and it matches none of its patterns: `deny` wins over `allow`, so `{"allow":
//! ["aws_*"], "deny": ["aws_iam_user"]}` allows AWS except IAM users.
//!
//! Without `allow` or `deny` the policy has nothing to check, and says so once per
//! plan (`types-unconfigured`, info, advisory) instead of passing silently.
//!
//! Configuration (schema in `config.schema.json`):
//!
//! - `allow`: the allowed types and prefixes;
//! - `deny`: the denied types and prefixes.

use provkey_sdk::prelude::*;
use provkey_sdk::serde;

/// A resource of a type that is not allowed.
pub const TYPE_NOT_ALLOWED: Rule = Rule::new(
    "type-not-allowed",
    "Plans create and update only resources of the allowed types, and none of the denied ones.",
)
.severity(Severity::High)
.enforcement(Enforcement::HardMandatory);

/// Neither `allow` nor `deny` is configured.
pub const TYPES_UNCONFIGURED: Rule = Rule::new(
    "types-unconfigured",
    "The policy has no `allow` or `deny` list, so it checks nothing.",
)
.severity(Severity::Info)
.enforcement(Enforcement::Advisory);

/// The configuration's JSON Schema.
pub const CONFIG_SCHEMA: &str = include_str!("../config.schema.json");

#[derive(serde::Deserialize, Default)]
#[serde(crate = "provkey_sdk::serde", deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    allow: Option<Vec<String>>,
    #[serde(default)]
    deny: Vec<String>,
}

/// A type or a `prefix*`.
enum Pattern<'a> {
    Exact(&'a str),
    Prefix(&'a str),
}

impl<'a> Pattern<'a> {
    fn parse(field: &str, text: &'a str) -> Result<Self, Error> {
        let (body, prefix) = match text.strip_suffix('*') {
            Some(body) => (body, true),
            None => (text, false),
        };
        if body.is_empty() || body.contains('*') || body.trim() != body {
            return Err(Error::invalid_config(format!(
                "field `{field}`: `{text}` is not a resource type or a prefix ending in `*` \
                 (`aws_s3_bucket`, `aws_*`)"
            )));
        }
        Ok(if prefix {
            Pattern::Prefix(body)
        } else {
            Pattern::Exact(body)
        })
    }

    fn matches(&self, resource_type: &str) -> bool {
        match self {
            Pattern::Exact(t) => resource_type == *t,
            Pattern::Prefix(p) => resource_type.starts_with(p),
        }
    }
}

fn patterns<'a>(field: &str, texts: &'a [String]) -> Result<Vec<Pattern<'a>>, Error> {
    texts.iter().map(|t| Pattern::parse(field, t)).collect()
}

fn quoted(texts: &[String]) -> String {
    texts
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The policy.
pub struct AllowedTypes;

impl Policy for AllowedTypes {
    fn metadata() -> Metadata {
        Metadata::new(
            "allowed-types",
            env!("CARGO_PKG_VERSION"),
            "Refuses resources of types outside `allow` or inside `deny` (prefixes like \
             `aws_*` allowed); says it checks nothing until one is configured.",
        )
        .rules(&[TYPE_NOT_ALLOWED, TYPES_UNCONFIGURED])
        .config_schema(CONFIG_SCHEMA)
    }

    fn evaluate(plan: &Plan, config: &Config) -> Result<Vec<Finding>, Error> {
        let settings: Settings = config.parse()?;
        if settings.allow.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::invalid_config(
                "field `allow`: an empty list would refuse every resource; name at least one \
                 type or prefix, or leave `allow` out",
            ));
        }
        let allow = settings
            .allow
            .as_deref()
            .map(|a| patterns("allow", a))
            .transpose()?;
        let deny = patterns("deny", &settings.deny)?;
        if allow.is_none() && deny.is_empty() {
            return Ok(vec![
                Finding::for_plan(&TYPES_UNCONFIGURED)
                    .message(
                        "`allowed-types` checks nothing: it has no `allow` or `deny` list of \
                         resource types",
                    )
                    .remediation(
                        "configure `allow` and/or `deny` (for example `{\"deny\": \
                         [\"aws_iam_user\"]}`), or leave the policy out of the policy set",
                    ),
            ]);
        }
        let mut findings = Vec::new();
        for change in plan.managed_changes() {
            if !(change.action.creates() || change.action.is_update()) {
                continue;
            }
            let resource_type = change.resource_type.as_str();
            let denied = settings
                .deny
                .iter()
                .zip(&deny)
                .find(|(_, pattern)| pattern.matches(resource_type));
            let message = match (denied, &allow, &settings.allow) {
                (Some((pattern, _)), _, _) => format!(
                    "`{}` has the denied resource type `{resource_type}` (denied by `{pattern}`)",
                    change.address
                ),
                (None, Some(allow), Some(texts))
                    if !allow.iter().any(|p| p.matches(resource_type)) =>
                {
                    format!(
                        "`{}` has the resource type `{resource_type}`, which is not allowed \
                         (allowed: {})",
                        change.address,
                        quoted(texts)
                    )
                }
                _ => continue,
            };
            findings.push(
                Finding::new(&TYPE_NOT_ALLOWED, change)
                    .message(message)
                    .remediation(format!(
                        "remove `{}` from the configuration, or change the policy's `allow` / \
                         `deny` if `{resource_type}` is meant to be allowed",
                        change.address
                    )),
            );
        }
        Ok(findings)
    }
}

provkey_sdk::export_policy!(AllowedTypes);

#[cfg(test)]
mod tests {
    use provkey_sdk::testing::{self, change};

    use super::*;

    fn run(plan: &Plan, config: &str) -> Result<Vec<Finding>, Error> {
        testing::evaluate::<AllowedTypes>(plan, config)
    }

    fn plan() -> Plan {
        let replace = Action::Replace(Replacement {
            order: ReplaceOrder::CreateBeforeDestroy,
            reason: None,
            paths: vec![],
        });
        testing::plan_of([
            change("aws_s3_bucket.logs", Action::Create).after(json!({})),
            change("aws_iam_user.ci", Action::Create).after(json!({})),
            change("google_storage_bucket.b", Action::Update)
                .before(json!({}))
                .after(json!({})),
            change("module.net.azurerm_virtual_network.v", replace)
                .before(json!({}))
                .after(json!({})),
            change("aws_instance.old", Action::Destroy).before(json!({})),
            change("google_compute_instance.same", Action::NoOp)
                .before(json!({}))
                .after(json!({})),
        ])
    }

    #[test]
    fn metadata_is_well_formed() {
        testing::check_metadata::<AllowedTypes>();
        let metadata = AllowedTypes::metadata();
        assert_eq!(metadata.id, "allowed-types");
        assert_eq!(
            metadata.rule("type-not-allowed").unwrap().enforcement,
            Enforcement::HardMandatory
        );
        assert_eq!(
            metadata.rule("types-unconfigured").unwrap().enforcement,
            Enforcement::Advisory
        );
    }

    #[test]
    fn unconfigured_says_it_checks_nothing() {
        let findings = run(&plan(), "{}").unwrap();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule, "types-unconfigured");
        assert_eq!(findings[0].address, None);
        assert_eq!(findings[0].severity, Severity::Info);
        assert!(
            findings[0].message.contains("checks nothing"),
            "{findings:?}"
        );
        // `deny: []` alone configures nothing either.
        assert_eq!(
            run(&plan(), r#"{"deny": []}"#).unwrap()[0].rule,
            "types-unconfigured"
        );
    }

    #[test]
    fn allow_list_with_prefixes() {
        let findings = run(&plan(), r#"{"allow": ["aws_*", "google_storage_bucket"]}"#).unwrap();
        assert_eq!(
            testing::addresses(&findings),
            ["module.net.azurerm_virtual_network.v"]
        );
        assert_eq!(findings[0].rule, "type-not-allowed");
        assert_eq!(findings[0].enforcement, Enforcement::HardMandatory);
        assert_eq!(
            findings[0].message,
            "`module.net.azurerm_virtual_network.v` has the resource type \
             `azurerm_virtual_network`, which is not allowed (allowed: `aws_*`, \
             `google_storage_bucket`)"
        );
        // An exact type is not a prefix.
        let findings = run(&plan(), r#"{"allow": ["aws_s3", "azurerm_*", "google_*"]}"#).unwrap();
        assert_eq!(
            testing::addresses(&findings),
            ["aws_s3_bucket.logs", "aws_iam_user.ci"]
        );
    }

    #[test]
    fn deny_list_wins_over_allow() {
        let findings = run(&plan(), r#"{"deny": ["aws_iam_*"]}"#).unwrap();
        assert_eq!(testing::addresses(&findings), ["aws_iam_user.ci"]);
        assert_eq!(
            findings[0].message,
            "`aws_iam_user.ci` has the denied resource type `aws_iam_user` (denied by \
             `aws_iam_*`)"
        );
        let findings = run(
            &plan(),
            r#"{"allow": ["aws_*", "google_*", "azurerm_*"], "deny": ["aws_iam_user"]}"#,
        )
        .unwrap();
        assert_eq!(testing::addresses(&findings), ["aws_iam_user.ci"]);
    }

    #[test]
    fn destroys_and_no_ops_are_not_checked() {
        let findings = run(&plan(), r#"{"deny": ["aws_instance", "google_compute_*"]}"#).unwrap();
        assert_eq!(findings, []);
    }

    #[test]
    fn configuration_errors_name_the_field() {
        let err = |config| run(&plan(), config).unwrap_err().message().to_string();
        assert!(err(r#"{"allowed": []}"#).contains("unknown field `allowed`"));
        assert!(err(r#"{"allow": "aws_*"}"#).contains("allow"));
        assert!(err(r#"{"allow": []}"#).starts_with("field `allow`: an empty list"));
        assert_eq!(
            err(r#"{"deny": ["aws_*_user"]}"#),
            "field `deny`: `aws_*_user` is not a resource type or a prefix ending in `*` \
             (`aws_s3_bucket`, `aws_*`)"
        );
        assert!(err(r#"{"allow": ["*"]}"#).starts_with("field `allow`: `*`"));
        assert!(err(r#"{"deny": [" aws_instance"]}"#).starts_with("field `deny`"));
    }
}
