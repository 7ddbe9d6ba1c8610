//! The `allowed-regions` stock policy: resources only in the configured regions or
//! locations.
//!
//! The location of a resource is read from its `region`, `location`, `zone` and
//! `availability_zone` attributes (configurable), on every change that creates or
//! updates a managed resource. An AWS resource usually carries no region: the
//! provider's region is not in the plan's resource changes, so only resources that
//! name one (`region`, `availability_zone`) are checked.
//!
//! Locations are compared without case, spaces, `-` and `_` (Azure's `West Europe`
//! is `westeurope`). A zone is allowed when its region is: `eu-west-1a` (AWS) and
//! `europe-west1-b` (Google) are in `eu-west-1` and `europe-west1`. An allowed entry
//! ending in `*` allows every location that starts with it (`eu-*`).
//!
//! Without `regions` the policy has no way to know where a team may deploy: it
//! checks nothing and says so once per plan (`regions-unconfigured`, info,
//! advisory, which never fails a check) instead of passing silently.
//!
//! Configuration (optional, `{}` by default; schema in `config.schema.json`):
//!
//! - `regions`: the allowed regions, locations and zones.
//! - `attributes`: the attributes read, default `["/region", "/location", "/zone",
//!   "/availability_zone"]`.
//! - `ignore_types`: resource types never checked (global resources, for example).

use provkey_sdk::prelude::*;
use provkey_sdk::serde;

/// A resource in a location that is not allowed.
pub const REGION_NOT_ALLOWED: Rule = Rule::new(
    "region-not-allowed",
    "Resources are created only in the allowed regions and locations.",
)
.severity(Severity::High)
.enforcement(Enforcement::HardMandatory);

/// A location known only after apply.
pub const REGION_UNKNOWN: Rule = Rule::new(
    "region-unknown",
    "A resource whose region or location is known only after apply cannot be shown to be \
     in an allowed one.",
)
.severity(Severity::Medium)
.enforcement(Enforcement::SoftMandatory);

/// No `regions` are configured: nothing is checked.
pub const REGIONS_UNCONFIGURED: Rule = Rule::new(
    "regions-unconfigured",
    "The policy has no `regions` to allow, so it checks nothing.",
)
.severity(Severity::Info)
.enforcement(Enforcement::Advisory);

/// The configuration's JSON Schema.
pub const CONFIG_SCHEMA: &str = include_str!("../config.schema.json");

/// The attributes read by default.
pub const DEFAULT_ATTRIBUTES: &[&str] = &["/region", "/location", "/zone", "/availability_zone"];

#[derive(serde::Deserialize, Default)]
#[serde(crate = "provkey_sdk::serde", deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    attributes: Option<Vec<String>>,
    #[serde(default)]
    ignore_types: Vec<String>,
}

/// The policy.
pub struct AllowedRegions;

impl Policy for AllowedRegions {
    fn metadata() -> Metadata {
        Metadata::new(
            "allowed-regions",
            env!("CARGO_PKG_VERSION"),
            "Refuses resources outside the configured regions and locations (says it checks \
             nothing until `regions` is configured).",
        )
        .rules(&[REGION_NOT_ALLOWED, REGION_UNKNOWN, REGIONS_UNCONFIGURED])
        .config_schema(CONFIG_SCHEMA)
    }

    fn evaluate(plan: &Plan, config: &Config) -> Result<Vec<Finding>, Error> {
        let settings: Settings = config.parse()?;
        if let Some(bad) = settings.regions.iter().find(|r| normalize(r).is_empty()) {
            return Err(Error::invalid_config(format!(
                "field `regions`: `{bad}` is not a region"
            )));
        }
        let attributes = settings
            .attributes
            .unwrap_or_else(|| DEFAULT_ATTRIBUTES.iter().map(|a| a.to_string()).collect());
        if let Some(bad) = attributes.iter().find(|a| !a.starts_with('/')) {
            return Err(Error::invalid_config(format!(
                "field `attributes`: `{bad}` is not a JSON Pointer (it must start with `/`)"
            )));
        }
        if settings.regions.is_empty() {
            return Ok(vec![
                Finding::for_plan(&REGIONS_UNCONFIGURED)
                    .message("`allowed-regions` checks nothing: it has no `regions` to allow")
                    .remediation(
                        "configure the allowed `regions` (for example `{\"regions\": \
                         [\"eu-west-1\", \"westeurope\"]}`), or leave the policy out of the \
                         policy set",
                    ),
            ]);
        }
        let mut findings = Vec::new();
        for change in plan.managed_changes() {
            if !(change.action.creates() || change.action.is_update())
                || settings.ignore_types.contains(&change.resource_type)
            {
                continue;
            }
            for attribute in &attributes {
                match change.after_at(attribute) {
                    Attr::Absent => {}
                    Attr::Unknown => findings.push(
                        Finding::new(&REGION_UNKNOWN, change)
                            .attribute(attribute.clone())
                            .message(format!(
                                "`{}`: `{attribute}` is known only after apply, so the \
                                 resource cannot be shown to be in an allowed location",
                                change.address
                            ))
                            .remediation(
                                "set the location explicitly (a literal or a variable), so \
                                 that it is known at plan time",
                            ),
                    ),
                    Attr::Known(value) => {
                        // Google may give a zone's full path: `projects/p/zones/us-central1-a`.
                        let Some(location) = value.as_str().and_then(|l| l.rsplit('/').next())
                        else {
                            continue;
                        };
                        if location.is_empty() || allowed(&settings.regions, location) {
                            continue;
                        }
                        findings.push(
                            Finding::new(&REGION_NOT_ALLOWED, change)
                                .attribute(attribute.clone())
                                .message(format!(
                                    "`{}` is in `{}` (`{attribute}`), which is not an allowed \
                                     location (allowed: {})",
                                    change.address,
                                    change.display_after(attribute),
                                    settings
                                        .regions
                                        .iter()
                                        .map(|r| format!("`{r}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ))
                                .remediation(
                                    "create the resource in an allowed region, or add the \
                                     region to the policy's `regions` if it is meant to be \
                                     allowed",
                                ),
                        );
                    }
                }
            }
        }
        Ok(findings)
    }
}

fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `location` is one of `regions`, in one of them (a zone), or matches a
/// `prefix*` entry.
fn allowed(regions: &[String], location: &str) -> bool {
    let lower = location.trim().to_ascii_lowercase();
    let location_n = normalize(location);
    regions.iter().any(|region| {
        if let Some(prefix) = region.strip_suffix('*') {
            return lower.starts_with(&prefix.trim().to_ascii_lowercase());
        }
        let region_n = normalize(region);
        if location_n == region_n {
            return true;
        }
        // A zone: the region and one trailing letter (AWS `eu-west-1a`) or `-` and
        // one letter (Google `europe-west1-b`).
        let region_l = region.trim().to_ascii_lowercase();
        lower.strip_prefix(&region_l).is_some_and(|rest| {
            let rest = rest.strip_prefix('-').unwrap_or(rest);
            rest.len() == 1 && rest.bytes().all(|b| b.is_ascii_lowercase())
        })
    })
}

provkey_sdk::export_policy!(AllowedRegions);

#[cfg(test)]
mod tests {
    use provkey_sdk::testing::{self, change};

    use super::*;

    fn run(plan: &Plan, config: &str) -> Result<Vec<Finding>, Error> {
        testing::evaluate::<AllowedRegions>(plan, config)
    }

    fn found(findings: &[Finding]) -> Vec<(&str, &str, &str)> {
        findings
            .iter()
            .map(|f| {
                (
                    f.rule.as_str(),
                    f.address.as_deref().unwrap_or_default(),
                    f.attribute.as_deref().unwrap_or_default(),
                )
            })
            .collect()
    }

    fn plan() -> Plan {
        testing::plan_of([
            change("azurerm_resource_group.ok", Action::Create)
                .after(json!({"location": "West Europe"})),
            change("azurerm_resource_group.us", Action::Create)
                .after(json!({"location": "eastus"})),
            change("aws_instance.az", Action::Create)
                .after(json!({"availability_zone": "eu-west-1b"})),
            change("aws_instance.far", Action::Create)
                .after(json!({"availability_zone": "us-east-1a"})),
            change("google_compute_instance.z", Action::Create)
                .after(json!({"zone": "europe-west1-c"})),
            change("google_storage_bucket.later", Action::Create)
                .after(json!({}))
                .unknown("/location"),
            change("aws_instance.none", Action::Create).after(json!({"ami": "x"})),
            change("azurerm_resource_group.gone", Action::Destroy)
                .before(json!({"location": "eastus"})),
        ])
    }

    #[test]
    fn metadata_is_well_formed() {
        testing::check_metadata::<AllowedRegions>();
    }

    #[test]
    fn without_regions_says_it_checks_nothing() {
        for config in ["{}", r#"{"regions": []}"#, r#"{"ignore_types": ["x"]}"#] {
            let findings = run(&plan(), config).unwrap();
            assert_eq!(
                found(&findings),
                [("regions-unconfigured", "", "")],
                "{config}"
            );
            assert_eq!(findings[0].severity, Severity::Info);
            assert_eq!(findings[0].enforcement, Enforcement::Advisory);
            assert_eq!(
                findings[0].message,
                "`allowed-regions` checks nothing: it has no `regions` to allow"
            );
        }
        // Even on an empty plan: the configuration is what is missing.
        let empty = testing::plan_of(Vec::<ResourceChange>::new());
        assert_eq!(run(&empty, "{}").unwrap().len(), 1);
    }

    #[test]
    fn regions_zones_and_unknown_locations() {
        let config = r#"{"regions": ["westeurope", "eu-west-1", "europe-west1"]}"#;
        let findings = run(&plan(), config).unwrap();
        assert_eq!(
            found(&findings),
            [
                (
                    "region-not-allowed",
                    "azurerm_resource_group.us",
                    "/location"
                ),
                (
                    "region-not-allowed",
                    "aws_instance.far",
                    "/availability_zone"
                ),
                ("region-unknown", "google_storage_bucket.later", "/location"),
            ]
        );
        assert_eq!(
            findings[0].message,
            "`azurerm_resource_group.us` is in `eastus` (`/location`), which is not an allowed \
             location (allowed: `westeurope`, `eu-west-1`, `europe-west1`)"
        );
    }

    #[test]
    fn prefixes_and_configuration() {
        let config = r#"{"regions": ["eu*", "West Europe", "us-east-1"],
                         "ignore_types": ["azurerm_resource_group"]}"#;
        assert_eq!(
            found(&run(&plan(), config).unwrap()),
            [("region-unknown", "google_storage_bucket.later", "/location")]
        );
        assert!(!allowed(&["eu-west-1".to_string()], "eu-west-10"));
        assert!(allowed(&["eu-west-1".to_string()], "eu-west-1a"));
        let google = testing::plan_of([change("google_compute_disk.d", Action::Create)
            .after(json!({"zone": "projects/p/global/zones/us-central1-a"}))]);
        assert_eq!(run(&google, r#"{"regions": ["us-central1"]}"#).unwrap(), []);
        let err = |config| run(&plan(), config).unwrap_err().message().to_string();
        assert!(err(r#"{"region": []}"#).contains("unknown field `region`"));
        assert!(err(r#"{"regions": "eu-west-1"}"#).starts_with("field `regions`"));
        assert!(err(r#"{"regions": [" "]}"#).starts_with("field `regions`"));
        assert!(err(r#"{"attributes": ["zone"]}"#).starts_with("field `attributes`"));
    }
}
