//! Queries over a plan, as policies ask them. The guest SDKs of every language offer
//! the same set: filter changes by resource type or by a predicate, and print an
//! attribute without ever printing a sensitive value.

use serde_json::Value;

use crate::model::{Action, Attr, Plan, ResourceChange, ResourceMode};
use crate::pointer;

impl Plan {
    /// The changes to resources of one type (`aws_instance`), in plan order.
    pub fn changes_of_type<'a>(
        &'a self,
        resource_type: &'a str,
    ) -> impl Iterator<Item = &'a ResourceChange> + 'a {
        self.changes
            .iter()
            .filter(move |change| change.resource_type == resource_type)
    }

    /// The changes for which `predicate` holds, in plan order:
    /// `plan.changes_where(|c| c.action.destroys())`.
    pub fn changes_where<'a, F>(
        &'a self,
        predicate: F,
    ) -> impl Iterator<Item = &'a ResourceChange> + 'a
    where
        F: FnMut(&&'a ResourceChange) -> bool + 'a,
    {
        self.changes.iter().filter(predicate)
    }

    /// The changes to managed resources (data sources left out), in plan order.
    pub fn managed_changes(&self) -> impl Iterator<Item = &ResourceChange> + '_ {
        self.changes.iter().filter(|change| change.is_managed())
    }
}

impl Action {
    /// Whether this is an in-place update.
    pub fn is_update(&self) -> bool {
        matches!(self, Action::Update)
    }

    /// Whether the plan leaves the resource as it is (a no-op or a read).
    pub fn is_noop(&self) -> bool {
        matches!(self, Action::NoOp | Action::Read)
    }
}

impl ResourceChange {
    /// Whether the resource is managed by the plan (not a data source).
    pub fn is_managed(&self) -> bool {
        self.mode == ResourceMode::Managed
    }

    /// Whether the value at `path` is sensitive or holds a sensitive value, before or
    /// after the change: printing it would reveal a secret. Unlike
    /// [`ResourceChange::is_sensitive`], `/tags` counts when only `/tags/token` is
    /// sensitive.
    pub fn contains_sensitive(&self, path: &str) -> bool {
        self.before_sensitive
            .iter()
            .chain(&self.after_sensitive)
            .any(|s| pointer::is_within(path, s) || pointer::is_within(s, path))
    }

    /// The value at `path` after the change, as text safe to print: a string as is,
    /// any other value as compact JSON, or `(sensitive)`, `(known after apply)`,
    /// `(absent)`.
    pub fn display_after(&self, path: &str) -> String {
        self.display(path, self.after_at(path))
    }

    /// The value at `path` before the change, as text safe to print: a string as is,
    /// any other value as compact JSON, or `(sensitive)`, `(absent)`.
    pub fn display_before(&self, path: &str) -> String {
        self.display(path, self.before_at(path))
    }

    fn display(&self, path: &str, attr: Attr<'_>) -> String {
        match attr {
            _ if self.contains_sensitive(path) => "(sensitive)".to_string(),
            Attr::Known(Value::String(s)) => s.clone(),
            Attr::Known(value) => value.to_string(),
            Attr::Unknown => "(known after apply)".to_string(),
            Attr::Absent => "(absent)".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Action, Plan};

    const PLAN: &str = r#"{
      "format_version": "1.2",
      "resource_changes": [
        {"address": "aws_instance.a", "type": "aws_instance", "name": "a", "mode": "managed",
         "change": {"actions": ["update"], "before": {"ami": "x", "tags": {"t": "s"}},
                    "after": {"ami": "y", "tags": {"t": "s2"}, "n": 3},
                    "after_unknown": {"arn": true}, "after_sensitive": {"tags": {"t": true}}}},
        {"address": "aws_instance.b", "type": "aws_instance", "name": "b",
         "change": {"actions": ["delete"], "before": {}, "after": null}},
        {"address": "data.aws_ami.c", "type": "aws_ami", "name": "c", "mode": "data",
         "change": {"actions": ["read"], "before": null, "after": {}}}
      ]
    }"#;

    fn addresses(changes: Vec<&crate::ResourceChange>) -> Vec<&str> {
        changes.into_iter().map(|c| c.address.as_str()).collect()
    }

    #[test]
    fn filters() {
        let plan = Plan::from_json(PLAN).unwrap();
        assert_eq!(
            addresses(plan.changes_of_type("aws_instance").collect()),
            ["aws_instance.a", "aws_instance.b"]
        );
        assert_eq!(
            addresses(plan.changes_where(|c| c.action.destroys()).collect()),
            ["aws_instance.b"]
        );
        assert_eq!(
            addresses(plan.managed_changes().collect()),
            ["aws_instance.a", "aws_instance.b"]
        );
        assert!(plan.changes[0].action.is_update());
        assert!(plan.changes[2].action.is_noop());
        assert_eq!(plan.changes[1].action, Action::Destroy);
    }

    #[test]
    fn never_displays_sensitive_values() {
        let plan = Plan::from_json(PLAN).unwrap();
        let a = &plan.changes[0];
        assert!(a.contains_sensitive("/tags"));
        assert!(a.contains_sensitive("/tags/t/x"));
        assert!(!a.contains_sensitive("/ami"));
        assert_eq!(a.display_after("/tags"), "(sensitive)");
        assert_eq!(a.display_before("/tags/t"), "(sensitive)");
        assert_eq!(a.display_after("/ami"), "y");
        assert_eq!(a.display_after("/n"), "3");
        assert_eq!(a.display_after("/arn"), "(known after apply)");
        assert_eq!(a.display_after("/nope"), "(absent)");
    }
}
