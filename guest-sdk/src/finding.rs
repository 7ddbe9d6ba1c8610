use provkey_plan::{Enforcement, ResourceChange, RuleInfo, Severity};

/// A rule a policy may report, with its default severity and enforcement.
///
/// Declare rules as constants, list them in [`Metadata::rules`](crate::Metadata)
/// and build findings from them, so that metadata and findings cannot disagree:
///
/// ```
/// use provkey_sdk::prelude::*;
///
/// const PUBLIC_BUCKET: Rule = Rule::new("no-public-bucket", "Buckets are never public.")
///     .severity(Severity::Critical)
///     .enforcement(Enforcement::HardMandatory);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    /// A short, stable, kebab-case id, unique within the policy.
    pub id: &'static str,
    /// What the rule requires, in one sentence.
    pub description: &'static str,
    /// The severity of its findings unless a finding says otherwise.
    pub severity: Severity,
    /// The enforcement of its findings unless a finding says otherwise.
    pub enforcement: Enforcement,
}

impl Rule {
    /// A rule with severity `medium` and enforcement `advisory`: a rule fails checks
    /// only when it says so.
    pub const fn new(id: &'static str, description: &'static str) -> Rule {
        Rule {
            id,
            description,
            severity: Severity::Medium,
            enforcement: Enforcement::Advisory,
        }
    }

    /// Sets the default severity.
    #[must_use]
    pub const fn severity(self, severity: Severity) -> Rule {
        Rule { severity, ..self }
    }

    /// Sets the default enforcement.
    #[must_use]
    pub const fn enforcement(self, enforcement: Enforcement) -> Rule {
        Rule {
            enforcement,
            ..self
        }
    }

    /// The rule as the plan model describes it.
    pub fn info(&self) -> RuleInfo {
        RuleInfo {
            id: self.id.to_string(),
            description: self.description.to_string(),
            severity: self.severity,
            enforcement: self.enforcement,
        }
    }
}

/// One thing a policy reports, built from a [`Rule`]:
///
/// ```
/// # use provkey_sdk::prelude::*;
/// # const RULE: Rule = Rule::new("pinned-ami", "Instances name their AMI.");
/// # fn check(change: &ResourceChange) -> Finding {
/// Finding::new(&RULE, change)
///     .attribute("/ami")
///     .message(format!("`{}` has no AMI", change.address))
///     .remediation("set `ami`")
/// # }
/// ```
///
/// Severity and enforcement come from the rule and can be overridden; the message
/// defaults to the rule's description. A message must never contain a sensitive
/// value: see [`ResourceChange::contains_sensitive`] and
/// [`ResourceChange::display_after`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Finding {
    /// The rule's id.
    pub rule: String,
    /// How serious it is.
    pub severity: Severity,
    /// What it does to the verdict.
    pub enforcement: Enforcement,
    /// One line, for a person.
    pub message: String,
    /// The resource it is about; `None` for the whole plan.
    pub address: Option<String>,
    /// The attribute it is about, as a JSON Pointer.
    pub attribute: Option<String>,
    /// What to do about it.
    pub remediation: Option<String>,
}

impl Finding {
    /// A finding of `rule` about one resource change.
    pub fn new(rule: &Rule, change: &ResourceChange) -> Finding {
        Finding {
            address: Some(change.address.clone()),
            ..Finding::for_plan(rule)
        }
    }

    /// A finding of `rule` about the whole plan.
    pub fn for_plan(rule: &Rule) -> Finding {
        Finding {
            rule: rule.id.to_string(),
            severity: rule.severity,
            enforcement: rule.enforcement,
            message: rule.description.to_string(),
            address: None,
            attribute: None,
            remediation: None,
        }
    }

    /// Sets the message (one line, no sensitive value).
    #[must_use]
    pub fn message(mut self, message: impl Into<String>) -> Finding {
        self.message = message.into();
        self
    }

    /// Sets the attribute the finding is about, as a JSON Pointer: `/ami`.
    #[must_use]
    pub fn attribute(mut self, pointer: impl Into<String>) -> Finding {
        self.attribute = Some(pointer.into());
        self
    }

    /// Sets what to do about it.
    #[must_use]
    pub fn remediation(mut self, remediation: impl Into<String>) -> Finding {
        self.remediation = Some(remediation.into());
        self
    }

    /// Overrides the rule's severity.
    #[must_use]
    pub fn severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }

    /// Overrides the rule's enforcement.
    #[must_use]
    pub fn enforcement(mut self, enforcement: Enforcement) -> Finding {
        self.enforcement = enforcement;
        self
    }

    /// Sets the resource address (for a finding about a resource the plan does not
    /// change, for example one named in a dependency).
    #[must_use]
    pub fn address(mut self, address: impl Into<String>) -> Finding {
        self.address = Some(address.into());
        self
    }
}

impl From<Finding> for provkey_plan::Finding {
    fn from(f: Finding) -> Self {
        provkey_plan::Finding {
            rule: f.rule,
            severity: f.severity,
            enforcement: f.enforcement,
            message: f.message,
            address: f.address,
            attribute: f.attribute,
            remediation: f.remediation,
        }
    }
}
