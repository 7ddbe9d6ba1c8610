use provkey_plan::PolicyMetadata;

use crate::Rule;

/// What a policy says about itself: returned by [`Policy::metadata`](crate::Policy).
///
/// ```
/// use provkey_sdk::prelude::*;
///
/// const RULE: Rule = Rule::new("no-public-bucket", "Buckets are never public.");
/// const METADATA: Metadata = Metadata::new("buckets", "0.1.0", "Checks storage buckets.")
///     .rules(&[RULE])
///     .config_schema(r#"{"type": "object", "additionalProperties": false}"#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// A short, stable, kebab-case id: `immutable`.
    pub id: &'static str,
    /// The policy's own version (semver); `env!("CARGO_PKG_VERSION")` is a good value.
    pub version: &'static str,
    /// What the policy checks, in a sentence or two.
    pub description: &'static str,
    /// Every rule the policy may report.
    pub rules: &'static [Rule],
    /// A JSON Schema for the configuration, as JSON text (`include_str!` it from a
    /// file if it is long); `None` when the policy takes no configuration.
    pub config_schema: Option<&'static str>,
}

impl Metadata {
    /// Metadata with no rules and no configuration schema yet.
    pub const fn new(
        id: &'static str,
        version: &'static str,
        description: &'static str,
    ) -> Metadata {
        Metadata {
            id,
            version,
            description,
            rules: &[],
            config_schema: None,
        }
    }

    /// Sets the rules.
    #[must_use]
    pub const fn rules(self, rules: &'static [Rule]) -> Metadata {
        Metadata { rules, ..self }
    }

    /// Sets the configuration's JSON Schema.
    #[must_use]
    pub const fn config_schema(self, schema: &'static str) -> Metadata {
        Metadata {
            config_schema: Some(schema),
            ..self
        }
    }

    /// The rule with this id.
    pub fn rule(&self, id: &str) -> Option<&'static Rule> {
        self.rules.iter().find(|rule| rule.id == id)
    }

    /// The metadata as the plan model describes it.
    pub fn to_policy_metadata(&self) -> PolicyMetadata {
        PolicyMetadata {
            id: self.id.to_string(),
            version: self.version.to_string(),
            description: self.description.to_string(),
            rules: self.rules.iter().map(Rule::info).collect(),
            config_schema: self.config_schema.map(str::to_string),
        }
    }
}

/// What a planner says about itself: returned by [`Planner::metadata`](crate::Planner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannerMetadata {
    /// A short, stable, kebab-case id.
    pub id: &'static str,
    /// The planner's own version (semver).
    pub version: &'static str,
    /// What the planner plans.
    pub description: &'static str,
}
