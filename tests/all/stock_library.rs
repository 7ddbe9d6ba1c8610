//! The stock policies' verdicts on the real plans in `../shared/data/terraform-plans/`,
//! through the real `provkey check` binary, and configuration validation against each
//! policy's schema.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::*;

/// Every finding in a JSON report, as (rule, address).
fn findings(report: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    collect(report, &mut out);
    out
}

fn collect(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(rule)), Some(_)) = (map.get("rule"), map.get("enforcement"))
            {
                let address = map
                    .get("address")
                    .and_then(Value::as_str)
                    .unwrap_or("(plan)")
                    .to_string();
                out.push((rule.clone(), address));
            }
            map.values().for_each(|v| collect(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
        _ => {}
    }
}

fn with_rule(report: &Value, rule: &str) -> BTreeSet<String> {
    findings(report)
        .into_iter()
        .filter(|(r, _)| r == rule)
        .map(|(_, a)| a)
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn plan(name: &str) -> Option<String> {
    let dir = shared_data("terraform-plans")?;
    Some(dir.join(name).to_str().unwrap().to_string())
}

fn read_plan_json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn ssh_open_to_the_world_in_aws_security_groups_matches_regula() {
    let Some(path) = plan("fugue__regula__ingress_anywhere_ssh_infra.json") else {
        return;
    };
    let run = check(&[
        "--plan",
        &path,
        "--policy",
        "no-remote-shell",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    // regula rego/tests/rules/tf/aws/security_group/ingress_anywhere_ssh_test.rego
    // (fugue/regula 653e15b): `deny` for invalid_sg_1 (22 from 0.0.0.0/0) and
    // invalid_sg_2 (20-25 from 0.0.0.0/0); not for valid_sg_1 (443) nor valid_sg_2
    // (22 from 10.10.0.0/16).
    assert_eq!(
        with_rule(&run.json(), "remote-shell-open"),
        set(&[
            "aws_security_group.invalid_sg_1",
            "aws_security_group.invalid_sg_2"
        ])
    );
    assert!(with_rule(&run.json(), "remote-shell-undecidable").is_empty());
    // The text report names the resource, the attribute and the value.
    let text = check(&["--plan", &path, "--policy", "no-remote-shell"]);
    assert!(
        text.stdout.contains(
            "`aws_security_group.invalid_sg_2` (rule `/ingress/0`) opens port 22 (SSH), port \
             23 (telnet) to `0.0.0.0/0`"
        ),
        "{text:?}"
    );
}

#[test]
fn ssh_open_to_the_world_in_azure_security_groups_matches_regula() {
    let Some(path) = plan("fugue__regula__azurerm_security_group_no_inbound_22_infra.json") else {
        return;
    };
    let run = check(&[
        "--plan",
        &path,
        "--policy",
        "no-remote-shell",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    // regula rego/tests/rules/tf/azurerm/network/security_group_no_inbound_22_test.rego
    // (fugue/regula 653e15b): invalidnsg1, invalidnsg2 and invalidrule1..3 are not
    // valid; validnsg1, validrule1 and validrule2 are.
    assert_eq!(
        with_rule(&run.json(), "remote-shell-open"),
        set(&[
            "azurerm_network_security_group.invalidnsg1",
            "azurerm_network_security_group.invalidnsg2",
            "azurerm_network_security_rule.invalidrule1",
            "azurerm_network_security_rule.invalidrule2",
            "azurerm_network_security_rule.invalidrule3",
        ])
    );
    // regula's test says nothing of `testnsg`: its inline `security_rule` is known
    // only after apply (`after_unknown`), which provkey reports, never passes.
    assert_eq!(
        with_rule(&run.json(), "remote-shell-undecidable"),
        set(&["azurerm_network_security_group.testnsg"])
    );
}

#[test]
fn disallowed_regions() {
    let Some(path) = plan("infracost__infracost__azure_firewall_plan.json") else {
        return;
    };
    // Without `regions` the policy checks nothing, says so, and passes.
    let run = check(&[
        "--plan",
        &path,
        "--policy",
        "allowed-regions",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        findings(&run.json()),
        [("regions-unconfigured".to_string(), "(plan)".to_string())]
    );
    assert_eq!(run.json()["findings"][0]["enforcement"], "advisory");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("regions.json");
    std::fs::write(&config, r#"{"regions": ["West Europe"]}"#).unwrap();
    let config_arg = format!("allowed-regions={}", config.display());
    let run = check(&[
        "--plan",
        &path,
        "--policy",
        "allowed-regions",
        "--config",
        &config_arg,
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    // Independently of provkey: the created or updated resources whose `location`
    // is set and is not westeurope.
    let expected: BTreeSet<String> = read_plan_json(&path)["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rc| rc["mode"] == "managed")
        .filter(|rc| {
            let actions = &rc["change"]["actions"];
            actions
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "create" || a == "update")
        })
        .filter(|rc| {
            rc["change"]["after"]["location"]
                .as_str()
                .is_some_and(|l| l != "westeurope")
        })
        .map(|rc| rc["address"].as_str().unwrap().to_string())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(with_rule(&run.json(), "region-not-allowed"), expected);
}

/// The created or updated managed resources of a real plan, by type.
fn created_or_updated(plan: &Value) -> Vec<(String, String)> {
    plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rc| rc["mode"] == "managed")
        .filter(|rc| {
            rc["change"]["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "create" || a == "update")
        })
        .map(|rc| {
            (
                rc["type"].as_str().unwrap().to_string(),
                rc["address"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn check_with_config(path: &str, policy: &str, config: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    std::fs::write(&file, config).unwrap();
    let arg = format!("{policy}={}", file.display());
    check(&[
        "--plan", path, "--policy", policy, "--config", &arg, "--format", "json",
    ])
}

#[test]
fn allowed_and_denied_resource_types() {
    let Some(path) = plan("cycloidio__terracost__aws_terraform-plan.json") else {
        return;
    };
    let resources = created_or_updated(&read_plan_json(&path));
    let types: BTreeSet<&str> = resources.iter().map(|(t, _)| t.as_str()).collect();
    assert!(types.len() > 1, "{types:?}");
    // Unconfigured: it says it checks nothing, and passes.
    let run = check(&[
        "--plan",
        &path,
        "--policy",
        "allowed-types",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        findings(&run.json()),
        [("types-unconfigured".to_string(), "(plan)".to_string())]
    );
    // Allowing every AWS type passes; denying one type flags exactly its resources.
    let run = check_with_config(&path, "allowed-types", r#"{"allow": ["aws_*"]}"#);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(findings(&run.json()).is_empty(), "{run:?}");
    let denied = *types.iter().next().unwrap();
    let config = serde_json::json!({"allow": ["aws_*"], "deny": [denied]}).to_string();
    let run = check_with_config(&path, "allowed-types", &config);
    assert_eq!(run.code, 1, "{run:?}");
    let expected: BTreeSet<String> = resources
        .iter()
        .filter(|(t, _)| t == denied)
        .map(|(_, a)| a.clone())
        .collect();
    assert_eq!(with_rule(&run.json(), "type-not-allowed"), expected);
    // Allowing only that type flags every other one.
    let config = serde_json::json!({"allow": [denied]}).to_string();
    let run = check_with_config(&path, "allowed-types", &config);
    let others: BTreeSet<String> = resources
        .iter()
        .filter(|(t, _)| t != denied)
        .map(|(_, a)| a.clone())
        .collect();
    assert_eq!(with_rule(&run.json(), "type-not-allowed"), others);
    // A pattern that is neither a type nor a prefix is refused by the schema.
    let run = check_with_config(&path, "allowed-types", r#"{"deny": ["aws_*_user"]}"#);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("field `deny"), "{run:?}");
}

#[test]
fn tag_values_must_be_non_empty_and_match_their_patterns() {
    let Some(path) = plan("fugue__regula__tag_all_resources_infra.json") else {
        return;
    };
    let plan_json = read_plan_json(&path);
    // Independently of provkey: every created or updated resource with a `tags` map,
    // and its `Name` tag.
    let tagged: Vec<(String, Option<String>)> = plan_json["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rc| rc["mode"] == "managed")
        .filter(|rc| rc["change"]["after"]["tags"].is_object())
        .filter(|rc| {
            rc["change"]["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "create" || a == "update")
        })
        .map(|rc| {
            (
                rc["address"].as_str().unwrap().to_string(),
                rc["change"]["after"]["tags"]["Name"]
                    .as_str()
                    .map(str::to_string),
            )
        })
        .collect();
    let named: Vec<&(String, Option<String>)> =
        tagged.iter().filter(|(_, n)| n.is_some()).collect();
    assert!(!named.is_empty(), "{tagged:?}");
    // Only keys: every `Name` is carried.
    let run = check_with_config(&path, "required-tags", r#"{"tags": ["Name"]}"#);
    let missing = with_rule(&run.json(), "missing-tags");
    for (address, _) in &named {
        assert!(!missing.contains(address), "{address}: {run:?}");
    }
    // Names of at least six digits: the others are flagged, without printing values.
    let run = check_with_config(
        &path,
        "required-tags",
        r#"{"tags": ["Name"], "patterns": {"Name": "[0-9]{6,}"}}"#,
    );
    assert_eq!(run.code, 1, "{run:?}");
    let flagged = with_rule(&run.json(), "tag-value-invalid");
    let expected: BTreeSet<String> = named
        .iter()
        .filter(|(_, n)| {
            let n = n.as_deref().unwrap();
            !(n.len() >= 6 && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|(a, _)| a.clone())
        .collect();
    assert_eq!(flagged, expected);
    assert!(
        !expected.is_empty() && expected.len() < named.len(),
        "{expected:?}"
    );
    for (_, name) in &named {
        let name = name.as_deref().unwrap();
        if !name.trim().is_empty() {
            assert!(
                !run.stdout.contains(&format!("`{name}`")),
                "a tag value is printed: {name}"
            );
        }
    }
    // A pattern every value matches flags nothing.
    let run = check_with_config(
        &path,
        "required-tags",
        r#"{"tags": ["Name"], "non_empty": true, "patterns": {"Name": ".+"}}"#,
    );
    assert!(
        with_rule(&run.json(), "tag-value-invalid").is_empty(),
        "{run:?}"
    );
    // A pattern that is not a regular expression is refused naming the field.
    let run = check_with_config(&path, "required-tags", r#"{"patterns": {"Name": "(x"}}"#);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "the configuration of policy `required-tags` does not match its schema: field \
             `patterns.Name`: \"(x\" is not a \"regex\""
        ),
        "{run:?}"
    );
}

#[test]
fn destroying_stateful_resources_is_hard_mandatory() {
    let Some(path) = plan("StackGuardian__tirith__input_s3_destroy.json") else {
        return;
    };
    let run = check(&[
        "--plan",
        &path,
        "--policy",
        "destroy-budget",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    let buckets: BTreeSet<String> = read_plan_json(&path)["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rc| rc["type"] == "aws_s3_bucket" && rc["mode"] == "managed")
        .filter(|rc| {
            rc["change"]["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "delete")
        })
        .map(|rc| rc["address"].as_str().unwrap().to_string())
        .collect();
    assert!(!buckets.is_empty());
    assert_eq!(with_rule(&run.json(), "stateful-destroy"), buckets);
    // A waiver in the configuration lets them go.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("waive.json");
    let waived: Vec<&String> = buckets.iter().collect();
    std::fs::write(
        &config,
        serde_json::json!({"allow_addresses": waived}).to_string(),
    )
    .unwrap();
    let config_arg = format!("destroy-budget={}", config.display());
    let run = check(&[
        "--plan",
        &path,
        "--policy",
        "destroy-budget",
        "--config",
        &config_arg,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn replacements_destroy_first_and_updates_in_place() {
    let Some(path) = plan("breml__tfreveal__advanced.plan.json") else {
        return;
    };
    let run = check(&[
        "--plan",
        &path,
        "--policy",
        "create-before-destroy",
        "--policy",
        "immutable",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    let plan = read_plan_json(&path);
    let changes = plan["resource_changes"].as_array().unwrap();
    let with_actions = |want: Value| -> BTreeSet<String> {
        changes
            .iter()
            .filter(|rc| rc["mode"] == "managed" && rc["change"]["actions"] == want)
            .map(|rc| rc["address"].as_str().unwrap().to_string())
            .collect()
    };
    let destroy_first = with_actions(serde_json::json!(["delete", "create"]));
    assert!(!destroy_first.is_empty());
    assert_eq!(
        with_rule(&run.json(), "destroy-before-create"),
        destroy_first
    );
    assert_eq!(
        with_rule(&run.json(), "no-update-in-place"),
        with_actions(serde_json::json!(["update"]))
    );
}

#[test]
fn the_whole_stock_set_runs_on_every_real_plan() {
    let Some(plans) = terraform_plans() else {
        return;
    };
    for path in &plans {
        let run = check(&["--plan", path.to_str().unwrap(), "--format", "json"]);
        assert!(
            run.code == 0 || run.code == 1,
            "{}: {run:?}",
            path.display()
        );
        let report = run.json();
        for policy in report["policies"].as_array().unwrap() {
            assert_eq!(policy["status"], "ok", "{}: {policy}", path.display());
        }
    }
}

#[test]
fn a_configuration_that_does_not_match_the_schema_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let plan = repo("examples/plans/replace-only.json");
    let plan = plan.to_str().unwrap();
    for (policy, config, field) in [
        (
            "destroy-budget",
            r#"{"max_destroys": "ten"}"#,
            "field `max_destroys`",
        ),
        (
            "no-remote-shell",
            r#"{"ports": [22, 70000]}"#,
            "field `ports.1`",
        ),
        ("immutable", r#"{"ignore_type": []}"#, "`ignore_type`"),
        (
            "allowed-regions",
            r#"{"regions": "eu-west-1"}"#,
            "field `regions`",
        ),
    ] {
        let file = dir.path().join(format!("{policy}.json"));
        std::fs::write(&file, config).unwrap();
        let arg = format!("{policy}={}", file.display());
        let run = check(&["--plan", plan, "--config", &arg]);
        assert_eq!(run.code, 2, "{policy}: {run:?}");
        assert!(
            run.stderr.contains(&format!(
                "error: the configuration of policy `{policy}` does not match its schema"
            )) && run.stderr.contains(field),
            "{policy}: {run:?}"
        );
        assert!(
            run.stderr
                .contains(&format!("help: `provkey inspect {policy}`"))
        );
        assert!(run.stdout.is_empty(), "nothing evaluated: {run:?}");
    }
    // The default `{}` of every stock policy matches its schema.
    let run = check(&["--plan", plan]);
    assert!(run.code == 0 || run.code == 1, "{run:?}");
}

#[test]
fn inspect_prints_metadata_wit_version_and_digest() {
    let run = run(provkey().args(["inspect", "no-remote-shell", "--format", "json"]));
    assert_eq!(run.code, 0, "{run:?}");
    let json = run.json();
    assert_eq!(json["id"], "no-remote-shell");
    assert_eq!(json["version"], "0.1.0");
    // Stock policies are built on 0.6.0: they read attribute values through the
    // host's `plan-view` instead of receiving them all.
    assert_eq!(json["wit_version"], "0.6.0");
    assert!(
        json["exports"]
            .as_array()
            .unwrap()
            .contains(&Value::from("provkey:plan/policy-api@0.6.0"))
    );
    assert!(
        json["imports"]
            .as_array()
            .unwrap()
            .contains(&Value::from("provkey:plan/plan-view@0.6.0")),
        "{json}"
    );
    let rules: Vec<&str> = json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["remote-shell-open", "remote-shell-undecidable"]);
    assert_eq!(json["rules"][0]["enforcement"], "hard-mandatory");
    assert_eq!(
        json["config_schema"]["properties"]["ports"]["default"][0],
        22
    );
    // The digest is the one `check` reports for the same component.
    let report = check(&[
        "--plan",
        repo("examples/plans/replace-only.json").to_str().unwrap(),
        "--policy",
        "no-remote-shell",
        "--format",
        "json",
    ])
    .json();
    assert_eq!(json["blake3"], report["policies"][0]["blake3"]);
    // Text.
    let text = crate::support::run(provkey().args(["inspect", "destroy-budget"]));
    assert_eq!(text.code, 0, "{text:?}");
    for line in [
        "destroy-budget 0.1.0",
        "wit version:  0.6.0",
        "stateful-destroy  [critical, hard-mandatory]",
        "\"max_destroys\"",
    ] {
        assert!(text.stdout.contains(line), "{line}: {text:?}");
    }
    let missing = crate::support::run(provkey().args(["inspect", "no-such-policy"]));
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(
        missing
            .stderr
            .contains("neither a component file nor a stock policy")
    );
}

/// `terraform show -json` of a plan made by the real Terraform on the PATH, of a
/// configuration that needs no provider download (`terraform_data`, a local module);
/// `None` (said on stderr) when there is no `terraform`.
fn real_terraform_plan(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let terraform = |args: &[&str]| {
        std::process::Command::new("terraform")
            .args(args)
            .current_dir(dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_CLI_CONFIG_FILE", dir.join("terraformrc"))
            .output()
    };
    if terraform(&["version"]).is_err() {
        eprintln!("skipped: no `terraform` on the PATH");
        return None;
    }
    std::fs::write(dir.join("terraformrc"), "").unwrap();
    std::fs::create_dir_all(dir.join("net")).unwrap();
    std::fs::write(
        dir.join("main.tf"),
        r#"variable "region" {
  default = "eu-west-1"
}
resource "terraform_data" "web" {
  input = { region = var.region, name = "web" }
}
resource "terraform_data" "far" {
  input = { region = "us-east-1", name = "far" }
}
module "net" {
  source = "./net"
}
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("net/main.tf"),
        "resource \"terraform_data\" \"vpc\" {\n  input = \"vpc\"\n}\n",
    )
    .unwrap();
    for args in [
        &["init", "-input=false", "-no-color"][..],
        &["plan", "-input=false", "-no-color", "-out=plan.bin"],
    ] {
        let out = terraform(args).unwrap();
        assert!(out.status.success(), "terraform {args:?}: {out:?}");
    }
    let show = terraform(&["show", "-json", "plan.bin"]).unwrap();
    assert!(show.status.success(), "{show:?}");
    let path = dir.join("plan.json");
    std::fs::write(&path, &show.stdout).unwrap();
    Some(path)
}

#[test]
fn region_and_type_rules_on_a_real_terraform_plan() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = real_terraform_plan(dir.path()) else {
        return;
    };
    let path = path.to_str().unwrap();
    let all = set(&[
        "terraform_data.web",
        "terraform_data.far",
        "module.net.terraform_data.vpc",
    ]);
    // The default stock set: the two rules that need configuration say so, and pass.
    let run = check(&["--plan", path, "--format", "json"]);
    assert!(run.code == 0 || run.code == 1, "{run:?}");
    let report = run.json();
    assert_eq!(with_rule(&report, "regions-unconfigured"), set(&["(plan)"]));
    assert_eq!(with_rule(&report, "types-unconfigured"), set(&["(plan)"]));
    // allowed-types: denied by prefix, in the root module and a child module.
    let run = check_with_config(path, "allowed-types", r#"{"deny": ["terraform_*"]}"#);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(with_rule(&run.json(), "type-not-allowed"), all);
    let run = check_with_config(path, "allowed-types", r#"{"allow": ["terraform_data"]}"#);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(findings(&run.json()).is_empty(), "{run:?}");
    // allowed-regions reads the attributes it is told to, a variable's value included.
    let run = check_with_config(
        path,
        "allowed-regions",
        r#"{"regions": ["eu-*"], "attributes": ["/input/region"]}"#,
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        with_rule(&run.json(), "region-not-allowed"),
        set(&["terraform_data.far"])
    );
    // The same plan with a later 1.x format version: read, with the same findings.
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(r#""format_version":"1.2""#), "{text}");
    let newer = dir.path().join("newer.json");
    std::fs::write(
        &newer,
        text.replace(r#""format_version":"1.2""#, r#""format_version":"1.9""#),
    )
    .unwrap();
    let run = check_with_config(
        newer.to_str().unwrap(),
        "allowed-types",
        r#"{"deny": ["terraform_*"]}"#,
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(with_rule(&run.json(), "type-not-allowed"), all);
    assert!(
        run.stderr
            .contains("Terraform JSON format version `1.9` is newer"),
        "{run:?}"
    );
}
