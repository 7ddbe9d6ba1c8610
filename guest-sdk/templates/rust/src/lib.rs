//! The `{{name}}` policy: S3 buckets are never public.
//!
//! Build it with `provkey build .`, test it with `cargo test`.

use provkey_sdk::prelude::*;

/// The policy's one rule.
pub const NO_PUBLIC_ACL: Rule = Rule::new("no-public-acl", "S3 buckets are never public.")
    .severity(Severity::High)
    .enforcement(Enforcement::HardMandatory);

const PUBLIC: [&str; 2] = ["public-read", "public-read-write"];

/// The policy.
pub struct MyPolicy;

impl Policy for MyPolicy {
    fn metadata() -> Metadata {
        Metadata::new("{{name}}", env!("CARGO_PKG_VERSION"), "S3 buckets are never public.")
            .rules(&[NO_PUBLIC_ACL])
    }

    fn evaluate(plan: &Plan, config: &Config) -> Result<Vec<Finding>, Error> {
        config.deny_unknown_fields(&[])?;
        let mut findings = Vec::new();
        for change in plan.changes_where(|c| c.resource_type == "aws_s3_bucket" && c.action.creates()) {
            match change.after_at("/acl") {
                Attr::Unknown => findings.push(
                    Finding::new(&NO_PUBLIC_ACL, change)
                        .attribute("/acl")
                        .severity(Severity::Low)
                        .enforcement(Enforcement::Advisory)
                        .message(format!("`{}`: the ACL is known only after apply", change.address)),
                ),
                Attr::Known(acl) if acl.as_str().is_some_and(|a| PUBLIC.contains(&a)) => findings.push(
                    Finding::new(&NO_PUBLIC_ACL, change)
                        .attribute("/acl")
                        .message(format!(
                            "`{}` would be public (ACL `{}`)",
                            change.address,
                            change.display_after("/acl")
                        ))
                        .remediation("set `acl` to `private`"),
                ),
                _ => {}
            }
        }
        Ok(findings)
    }
}

provkey_sdk::export_policy!(MyPolicy);

#[cfg(test)]
mod tests {
    use provkey_sdk::testing::{self, change};

    use super::*;

    #[test]
    fn public_and_unknown_acls_are_reported() {
        testing::check_metadata::<MyPolicy>();
        let plan = testing::plan_of([
            change("aws_s3_bucket.public", Action::Create).after(json!({"acl": "public-read"})),
            change("aws_s3_bucket.private", Action::Create).after(json!({"acl": "private"})),
            change("aws_s3_bucket.later", Action::Create).unknown("/acl"),
            change("aws_s3_bucket.gone", Action::Destroy).before(json!({"acl": "public-read"})),
        ]);
        let findings = testing::evaluate::<MyPolicy>(&plan, "{}").unwrap();
        assert_eq!(testing::addresses(&findings), ["aws_s3_bucket.public", "aws_s3_bucket.later"]);
        assert_eq!(findings[0].enforcement, Enforcement::HardMandatory);
        assert_eq!(findings[0].message, "`aws_s3_bucket.public` would be public (ACL `public-read`)");
        assert_eq!(findings[1].enforcement, Enforcement::Advisory);
    }

    #[test]
    fn unknown_configuration_fields_are_refused() {
        let plan = testing::plan_of([change("aws_s3_bucket.a", Action::Create)]);
        assert!(testing::evaluate::<MyPolicy>(&plan, r#"{"typo": 1}"#).is_err());
    }
}
