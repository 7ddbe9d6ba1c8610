//! The `destroy-budget` stock policy: a plan destroys (or replaces) at most
//! `max_destroys` resources, and never destroys a stateful one.
//!
//! A destroy and either kind of replacement both count against the budget (both
//! destroy an object); a plan over budget gets one plan-wide finding that names the
//! count and the first addresses. Destroying or replacing a resource of a stateful
//! type (databases, buckets, volumes, keys, ...: [`DEFAULT_STATEFUL_TYPES`]) loses
//! its data and is a hard-mandatory finding, unless its address is waived in
//! `allow_addresses`. The policy reads actions only, never attribute values, so
//! nothing in it can be unknown until apply.
//!
//! Configuration (optional, `{}` by default; schema in `config.schema.json`):
//!
//! - `max_destroys`: the budget, default 10.
//! - `stateful_types`: the stateful resource types (a trailing `*` matches any
//!   suffix), replacing the defaults.
//! - `extra_stateful_types`: types added to the stateful ones.
//! - `allow_addresses`: addresses whose destruction is waived (for example a
//!   database being retired on purpose).

use provkey_sdk::prelude::*;
use provkey_sdk::serde;

/// Too many destroys in one plan.
pub const OVER_BUDGET: Rule = Rule::new(
    "destroy-budget-exceeded",
    "A plan destroys or replaces at most `max_destroys` resources.",
)
.severity(Severity::High)
.enforcement(Enforcement::SoftMandatory);

/// A stateful resource destroyed or replaced.
pub const STATEFUL_DESTROY: Rule = Rule::new(
    "stateful-destroy",
    "Stateful resources (databases, buckets, volumes, keys) are never destroyed or replaced \
     unless waived.",
)
.severity(Severity::Critical)
.enforcement(Enforcement::HardMandatory);

/// The configuration's JSON Schema.
pub const CONFIG_SCHEMA: &str = include_str!("../config.schema.json");

/// The default budget.
pub const DEFAULT_MAX_DESTROYS: u64 = 10;

/// The resource types that hold data, unless configured otherwise.
pub const DEFAULT_STATEFUL_TYPES: &[&str] = &[
    // AWS
    "aws_db_instance",
    "aws_rds_cluster",
    "aws_rds_global_cluster",
    "aws_dynamodb_table",
    "aws_dynamodb_global_table",
    "aws_s3_bucket",
    "aws_s3_directory_bucket",
    "aws_ebs_volume",
    "aws_ebs_snapshot",
    "aws_efs_file_system",
    "aws_fsx_*",
    "aws_kms_key",
    "aws_secretsmanager_secret",
    "aws_elasticache_cluster",
    "aws_elasticache_replication_group",
    "aws_redshift_cluster",
    "aws_docdb_cluster",
    "aws_neptune_cluster",
    "aws_opensearch_domain",
    "aws_elasticsearch_domain",
    "aws_msk_cluster",
    "aws_kinesis_stream",
    "aws_backup_vault",
    "aws_glacier_vault",
    "aws_ecr_repository",
    // Azure
    "azurerm_mssql_server",
    "azurerm_mssql_database",
    "azurerm_postgresql_server",
    "azurerm_postgresql_database",
    "azurerm_postgresql_flexible_server",
    "azurerm_mysql_server",
    "azurerm_mysql_flexible_server",
    "azurerm_cosmosdb_account",
    "azurerm_storage_account",
    "azurerm_storage_container",
    "azurerm_storage_share",
    "azurerm_managed_disk",
    "azurerm_key_vault",
    "azurerm_key_vault_key",
    "azurerm_key_vault_secret",
    "azurerm_redis_cache",
    // Google
    "google_sql_database_instance",
    "google_sql_database",
    "google_storage_bucket",
    "google_compute_disk",
    "google_compute_region_disk",
    "google_kms_key_ring",
    "google_kms_crypto_key",
    "google_secret_manager_secret",
    "google_bigquery_dataset",
    "google_bigquery_table",
    "google_spanner_instance",
    "google_spanner_database",
    "google_bigtable_instance",
    "google_bigtable_table",
    "google_filestore_instance",
    "google_redis_instance",
    "google_alloydb_cluster",
    "google_firestore_database",
    // Kubernetes
    "kubernetes_persistent_volume",
    "kubernetes_persistent_volume_claim",
    "kubernetes_persistent_volume_v1",
    "kubernetes_persistent_volume_claim_v1",
];

#[derive(serde::Deserialize, Default)]
#[serde(crate = "provkey_sdk::serde", deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    max_destroys: Option<u64>,
    #[serde(default)]
    stateful_types: Option<Vec<String>>,
    #[serde(default)]
    extra_stateful_types: Vec<String>,
    #[serde(default)]
    allow_addresses: Vec<String>,
}

/// How many addresses the plan-wide finding names.
const NAMED: usize = 5;

/// The policy.
pub struct DestroyBudget;

impl Policy for DestroyBudget {
    fn metadata() -> Metadata {
        Metadata::new(
            "destroy-budget",
            env!("CARGO_PKG_VERSION"),
            "Limits how many resources one plan destroys or replaces, and refuses to destroy \
             or replace stateful resources.",
        )
        .rules(&[OVER_BUDGET, STATEFUL_DESTROY])
        .config_schema(CONFIG_SCHEMA)
    }

    fn evaluate(plan: &Plan, config: &Config) -> Result<Vec<Finding>, Error> {
        let settings: Settings = config.parse()?;
        let max = settings.max_destroys.unwrap_or(DEFAULT_MAX_DESTROYS);
        let mut stateful: Vec<String> = settings.stateful_types.unwrap_or_else(|| {
            DEFAULT_STATEFUL_TYPES
                .iter()
                .map(|t| t.to_string())
                .collect()
        });
        stateful.extend(settings.extra_stateful_types);
        if stateful.iter().any(|t| t.is_empty() || t == "*") {
            return Err(Error::invalid_config(
                "field `stateful_types`: a type cannot be empty or `*`",
            ));
        }
        let destroyed: Vec<&ResourceChange> = plan
            .managed_changes()
            .filter(|c| c.action.destroys())
            .collect();
        let mut findings = Vec::new();
        for change in &destroyed {
            if !stateful
                .iter()
                .any(|t| type_matches(t, &change.resource_type))
                || settings.allow_addresses.contains(&change.address)
            {
                continue;
            }
            let verb = if matches!(change.action, Action::Destroy) {
                "destroys"
            } else {
                "replaces"
            };
            findings.push(
                Finding::new(&STATEFUL_DESTROY, change)
                    .message(format!(
                        "the plan {verb} `{}`, a stateful `{}`: its data would be lost",
                        change.address, change.resource_type
                    ))
                    .remediation(format!(
                        "keep the resource (`lifecycle {{ prevent_destroy = true }}`, or move \
                         it with a `moved` block instead of renaming it); if it must go, \
                         back it up and waive it with `allow_addresses: [\"{}\"]` in the \
                         policy's configuration",
                        change.address
                    )),
            );
        }
        if u64::try_from(destroyed.len()).unwrap_or(u64::MAX) > max {
            let mut named: Vec<String> = destroyed
                .iter()
                .take(NAMED)
                .map(|c| format!("`{}`", c.address))
                .collect();
            if destroyed.len() > NAMED {
                named.push(format!("and {} more", destroyed.len() - NAMED));
            }
            findings.push(
                Finding::for_plan(&OVER_BUDGET)
                    .message(format!(
                        "the plan destroys or replaces {} resources, over the budget of {max}: \
                         {}",
                        destroyed.len(),
                        named.join(", ")
                    ))
                    .remediation(
                        "split the change into smaller plans, or raise `max_destroys` in the \
                         policy's configuration if this many destroys are intended",
                    ),
            );
        }
        Ok(findings)
    }
}

fn type_matches(pattern: &str, resource_type: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => resource_type.starts_with(prefix),
        None => pattern == resource_type,
    }
}

provkey_sdk::export_policy!(DestroyBudget);

#[cfg(test)]
mod tests {
    use provkey_sdk::testing::{self, change};

    use super::*;

    fn run(plan: &Plan, config: &str) -> Result<Vec<Finding>, Error> {
        testing::evaluate::<DestroyBudget>(plan, config)
    }

    fn replace() -> Action {
        Action::Replace(Replacement {
            order: ReplaceOrder::CreateBeforeDestroy,
            reason: None,
            paths: Vec::new(),
        })
    }

    #[test]
    fn metadata_is_well_formed() {
        testing::check_metadata::<DestroyBudget>();
    }

    #[test]
    fn stateful_destroys_and_replaces() {
        let plan = testing::plan_of([
            change("aws_s3_bucket.logs", Action::Destroy),
            change("aws_db_instance.main", replace()),
            change("aws_fsx_lustre_file_system.f", Action::Destroy),
            change("aws_instance.web", Action::Destroy),
            change("aws_s3_bucket.new", Action::Create),
            change("aws_ebs_volume.data", Action::Update),
        ]);
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(
            testing::addresses(&findings),
            [
                "aws_s3_bucket.logs",
                "aws_db_instance.main",
                "aws_fsx_lustre_file_system.f"
            ]
        );
        assert!(
            findings.iter().all(
                |f| f.rule == "stateful-destroy" && f.enforcement == Enforcement::HardMandatory
            )
        );
        assert_eq!(
            findings[1].message,
            "the plan replaces `aws_db_instance.main`, a stateful `aws_db_instance`: its data \
             would be lost"
        );
        let waived = run(&plan, r#"{"allow_addresses": ["aws_s3_bucket.logs"]}"#).unwrap();
        assert_eq!(waived.len(), 2);
        let only = run(&plan, r#"{"stateful_types": ["aws_instance"]}"#).unwrap();
        assert_eq!(testing::addresses(&only), ["aws_instance.web"]);
        let extra = run(&plan, r#"{"extra_stateful_types": ["aws_instance"]}"#).unwrap();
        assert_eq!(extra.len(), 4);
    }

    #[test]
    fn the_budget() {
        let plan =
            testing::plan_of((0..12).map(|i| change(&format!("aws_instance.i{i}"), replace())));
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule, "destroy-budget-exceeded");
        assert_eq!(findings[0].address, None);
        assert_eq!(
            findings[0].message,
            "the plan destroys or replaces 12 resources, over the budget of 10: \
             `aws_instance.i0`, `aws_instance.i1`, `aws_instance.i2`, `aws_instance.i3`, \
             `aws_instance.i4`, and 7 more"
        );
        assert_eq!(run(&plan, r#"{"max_destroys": 12}"#).unwrap(), []);
        assert_eq!(run(&plan, r#"{"max_destroys": 0}"#).unwrap().len(), 1);
        let err = |config| run(&plan, config).unwrap_err().message().to_string();
        assert!(err(r#"{"max_destroys": -1}"#).starts_with("field `max_destroys`"));
        assert!(err(r#"{"max_destroy": 1}"#).contains("unknown field `max_destroy`"));
        assert!(err(r#"{"stateful_types": ["*"]}"#).starts_with("field `stateful_types`"));
    }
}
