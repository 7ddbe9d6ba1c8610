# The ten stock rules of the side-by-side benchmark, in Rego, over Terraform
# `show -json` plans. Equivalent to the stock policies with the benchmark's
# configuration (host/bench/src/floor.rs, `CONFIGS`) on the shapes the generator
# writes: `provkey-bench compare` refuses to print a time unless regorus, OPA,
# the native floor and provkey return the same (rule, address) findings.
#
#   immutable              no-update-in-place
#   no-remote-shell        remote-shell-open, remote-shell-undecidable (aws_security_group)
#   required-tags          missing-tags, tags-unknown (tags: env, team, cost-center)
#   allowed-regions        region-not-allowed, region-unknown (regions: eu-west-1, eu-central-1)
#   destroy-budget         destroy-budget-exceeded (max 10), stateful-destroy
#   create-before-destroy  destroy-before-create
#
# Query: data.tf.deny, a set of {"rule", "address", "attribute", "message"}.
package tf

import rego.v1

required_tags := ["env", "team", "cost-center"]

allowed_regions := ["eu-west-1", "eu-central-1"]

region_attributes := ["region", "location", "zone", "availability_zone"]

remote_shell_ports := [22, 23, 3389, 5985, 5986]

open_sources := {"0.0.0.0/0", "::/0", "*", "internet", "any"}

max_destroys := 10

stateful_types := {
	"aws_db_instance", "aws_rds_cluster", "aws_rds_global_cluster", "aws_dynamodb_table",
	"aws_dynamodb_global_table", "aws_s3_bucket", "aws_s3_directory_bucket", "aws_ebs_volume",
	"aws_ebs_snapshot", "aws_efs_file_system", "aws_kms_key", "aws_secretsmanager_secret",
	"aws_elasticache_cluster", "aws_elasticache_replication_group", "aws_redshift_cluster",
	"aws_docdb_cluster", "aws_neptune_cluster", "aws_opensearch_domain",
	"aws_elasticsearch_domain", "aws_msk_cluster", "aws_kinesis_stream", "aws_backup_vault",
	"aws_glacier_vault", "aws_ecr_repository", "azurerm_mssql_server", "azurerm_mssql_database",
	"azurerm_postgresql_server", "azurerm_postgresql_database",
	"azurerm_postgresql_flexible_server", "azurerm_mysql_server",
	"azurerm_mysql_flexible_server", "azurerm_cosmosdb_account", "azurerm_storage_account",
	"azurerm_storage_container", "azurerm_storage_share", "azurerm_managed_disk",
	"azurerm_key_vault", "azurerm_key_vault_key", "azurerm_key_vault_secret",
	"azurerm_redis_cache", "google_sql_database_instance", "google_sql_database",
	"google_storage_bucket", "google_compute_disk", "google_compute_region_disk",
	"google_kms_key_ring", "google_kms_crypto_key", "google_secret_manager_secret",
	"google_bigquery_dataset", "google_bigquery_table", "google_spanner_instance",
	"google_spanner_database", "google_bigtable_instance", "google_bigtable_table",
	"google_filestore_instance", "google_redis_instance", "google_alloydb_cluster",
	"google_firestore_database", "kubernetes_persistent_volume",
	"kubernetes_persistent_volume_claim", "kubernetes_persistent_volume_v1",
	"kubernetes_persistent_volume_claim_v1",
}

# --- the plan model ---------------------------------------------------------

managed(rc) if not rc.mode

managed(rc) if rc.mode == "managed"

is_update(rc) if rc.change.actions == ["update"]

creates(rc) if rc.change.actions == ["create"]

creates(rc) if replaces(rc)

replaces(rc) if rc.change.actions == ["delete", "create"]

replaces(rc) if rc.change.actions == ["create", "delete"]

destroys(rc) if rc.change.actions == ["delete"]

destroys(rc) if replaces(rc)

# Created or updated: what the attribute rules look at.
shaped(rc) if creates(rc)

shaped(rc) if is_update(rc)

obj(x) := x if is_object(x)

obj(x) := {} if not is_object(x)

after(rc) := obj(object.get(rc.change, "after", null))

before(rc) := obj(object.get(rc.change, "before", null))

unknown(rc, key) if obj(object.get(rc.change, "after_unknown", null))[key] == true

# Known and not null.
known(rc, key) := v if {
	v := after(rc)[key]
	v != null
	not unknown(rc, key)
}

# --- immutable ----------------------------------------------------------------

changed(rc) := sort([k |
	some k in {b | some b, _ in before(rc)} | {a | some a, _ in after(rc)}
	not unknown(rc, k)
	object.get(before(rc), k, null) != object.get(after(rc), k, null)
])

deny contains f if {
	some rc in input.resource_changes
	is_update(rc)
	names := [sprintf("`%s`", [k]) | some k in changed(rc)]
	f := {
		"rule": "no-update-in-place",
		"address": rc.address,
		"attribute": "",
		"message": sprintf("`%s` would be updated in place (changes %s)", [rc.address, concat(", ", names)]),
	}
}

# --- no-remote-shell (aws_security_group inline ingress) -------------------------

tcp(rule) if object.get(rule, "protocol", null) == null

tcp(rule) if {
	is_string(rule.protocol)
	lower(rule.protocol) in {"tcp", "6", "-1", "all"}
}

all_ports(rule) if {
	is_string(rule.protocol)
	lower(rule.protocol) in {"-1", "all"}
}

port_hit(rule, p) if all_ports(rule)

port_hit(rule, p) if {
	not all_ports(rule)
	is_number(rule.from_port)
	is_number(rule.to_port)
	rule.from_port <= p
	p <= rule.to_port
}

sources(rule) := array.concat(
	[s | some s in object.get(rule, "cidr_blocks", []); is_string(s)],
	[s | some s in object.get(rule, "ipv6_cidr_blocks", []); is_string(s)],
)

deny contains f if {
	some rc in input.resource_changes
	rc.type == "aws_security_group"
	managed(rc)
	shaped(rc)
	not unknown(rc, "ingress")
	some i, rule in known(rc, "ingress")
	tcp(rule)
	open := [s | some s in sources(rule); lower(s) in open_sources]
	count(open) > 0
	hit := [p | some p in remote_shell_ports; port_hit(rule, p)]
	count(hit) > 0
	f := {
		"rule": "remote-shell-open",
		"address": rc.address,
		"attribute": sprintf("/ingress/%d/cidr_blocks", [i]),
		"message": sprintf("`%s` (rule `/ingress/%d`) opens ports %v to `%s`", [rc.address, i, hit, concat("`, `", open)]),
	}
}

deny contains f if {
	some rc in input.resource_changes
	rc.type == "aws_security_group"
	managed(rc)
	shaped(rc)
	unknown(rc, "ingress")
	f := {
		"rule": "remote-shell-undecidable",
		"address": rc.address,
		"attribute": "/ingress",
		"message": sprintf("`%s` (rule `/ingress`): cannot tell whether a remote-shell port is open to anywhere, because `/ingress` is known only after apply", [rc.address]),
	}
}

# --- required-tags ------------------------------------------------------------------

tag_attributes(t) := ["tags", "tags_all"] if startswith(t, "aws_")

tag_attributes(t) := ["labels", "terraform_labels"] if startswith(t, "google_")

tag_attributes(t) := ["tags"] if {
	not startswith(t, "aws_")
	not startswith(t, "google_")
	has_prefix(t, ["azurerm_", "azuread_"])
}

tag_attributes(t) := ["tags", "labels"] if {
	not startswith(t, "aws_")
	not startswith(t, "google_")
	not has_prefix(t, ["azurerm_", "azuread_"])
}

has_prefix(t, prefixes) if {
	some p in prefixes
	startswith(t, p)
}

present(rc, a) if unknown(rc, a)

present(rc, a) if _ = after(rc)[a]

carried(rc, present_attrs, key) if {
	some a in present_attrs
	not unknown(rc, a)
	v := after(rc)[a][key]
	v != null
}

deny contains f if {
	some rc in input.resource_changes
	managed(rc)
	shaped(rc)
	attrs := [a | some a in tag_attributes(rc.type); present(rc, a)]
	count(attrs) > 0
	missing := [k | some k in required_tags; not carried(rc, attrs, k)]
	count(missing) > 0
	unknown_maps := [a | some a in attrs; unknown(rc, a)]
	list := concat(", ", [sprintf("`%s`", [k]) | some k in missing])
	f := tag_finding(rc, attrs[0], unknown_maps, list)
}

tag_finding(rc, primary, unknown_maps, list) := {
	"rule": "missing-tags",
	"address": rc.address,
	"attribute": sprintf("/%s", [primary]),
	"message": sprintf("`%s` is missing required tags %s", [rc.address, list]),
} if count(unknown_maps) == 0

tag_finding(rc, primary, unknown_maps, list) := {
	"rule": "tags-unknown",
	"address": rc.address,
	"attribute": sprintf("/%s", [unknown_maps[0]]),
	"message": sprintf("`%s`: required tags %s cannot be checked: `%s` is known only after apply", [rc.address, list, unknown_maps[0]]),
} if count(unknown_maps) > 0

# --- allowed-regions ------------------------------------------------------------------

norm(s) := lower(replace(replace(replace(s, " ", ""), "-", ""), "_", ""))

region_allowed(loc) if {
	some r in allowed_regions
	norm(loc) == norm(r)
}

region_allowed(loc) if {
	some r in allowed_regions
	l := lower(trim_space(loc))
	startswith(l, r)
	rest := trim_prefix(substring(l, count(r), -1), "-")
	count(rest) == 1
	indexof("abcdefghijklmnopqrstuvwxyz", rest) >= 0
}

deny contains f if {
	some rc in input.resource_changes
	managed(rc)
	shaped(rc)
	some a in region_attributes
	v := known(rc, a)
	is_string(v)
	parts := split(v, "/")
	loc := parts[count(parts) - 1]
	loc != ""
	not region_allowed(loc)
	f := {
		"rule": "region-not-allowed",
		"address": rc.address,
		"attribute": sprintf("/%s", [a]),
		"message": sprintf("`%s` is in `%s` (`/%s`), which is not an allowed location", [rc.address, v, a]),
	}
}

deny contains f if {
	some rc in input.resource_changes
	managed(rc)
	shaped(rc)
	some a in region_attributes
	unknown(rc, a)
	f := {
		"rule": "region-unknown",
		"address": rc.address,
		"attribute": sprintf("/%s", [a]),
		"message": sprintf("`%s`: `/%s` is known only after apply", [rc.address, a]),
	}
}

# --- destroy-budget -----------------------------------------------------------------------

stateful(t) if t in stateful_types

stateful(t) if startswith(t, "aws_fsx_")

destroyed := [rc | some rc in input.resource_changes; managed(rc); destroys(rc)]

deny contains f if {
	some rc in destroyed
	stateful(rc.type)
	f := {
		"rule": "stateful-destroy",
		"address": rc.address,
		"attribute": "",
		"message": sprintf("the plan destroys or replaces `%s`, a stateful `%s`: its data would be lost", [rc.address, rc.type]),
	}
}

deny contains f if {
	count(destroyed) > max_destroys
	f := {
		"rule": "destroy-budget-exceeded",
		"address": "-",
		"attribute": "",
		"message": sprintf("the plan destroys or replaces %d resources, over the budget of %d", [count(destroyed), max_destroys]),
	}
}

# --- create-before-destroy -----------------------------------------------------------------

deny contains f if {
	some rc in input.resource_changes
	managed(rc)
	rc.change.actions == ["delete", "create"]
	f := {
		"rule": "destroy-before-create",
		"address": rc.address,
		"attribute": "",
		"message": sprintf("`%s` would be destroyed before its replacement is created", [rc.address]),
	}
}
