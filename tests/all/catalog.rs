//! `provkey policies`: the catalog of the stock policies, read from their own
//! metadata; `docs/policies.md` is that catalog; an unknown policy id gets the
//! closest stock id and the list.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::*;

/// The stock policies as the repository lays them out: the members of `policies/`.
fn stock_ids_from_sources() -> BTreeSet<String> {
    std::fs::read_dir(repo("policies"))
        .unwrap()
        .flatten()
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .map(|entry| entry.file_name().to_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_catalog_lists_every_stock_policy_from_its_metadata() {
    let run = run(provkey().args(["policies", "--format", "json"]));
    assert_eq!(run.code, 0, "{run:?}");
    let catalog = run.json();
    let policies = catalog.as_array().unwrap();
    let ids: BTreeSet<String> = policies
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, stock_ids_from_sources());
    assert!(ids.contains("allowed-types"), "{ids:?}");
    for policy in policies {
        let id = policy["id"].as_str().unwrap();
        // The same rules and schema as the component itself declares.
        let inspected = crate::support::run(provkey().args(["inspect", id, "--format", "json"]));
        assert_eq!(inspected.code, 0, "{inspected:?}");
        let inspected = inspected.json();
        assert_eq!(policy["rules"], inspected["rules"], "{id}");
        assert_eq!(policy["config_schema"], inspected["config_schema"], "{id}");
        assert!(!policy["rules"].as_array().unwrap().is_empty(), "{id}");
        // One configuration field per schema property, with its type and default.
        let fields: BTreeSet<&str> = policy["config"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        let properties: BTreeSet<&str> = inspected["config_schema"]["properties"]
            .as_object()
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(fields, properties, "{id}");
    }
    let regions = policies
        .iter()
        .find(|p| p["id"] == "allowed-regions")
        .unwrap();
    let field = regions["config"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "regions")
        .unwrap();
    assert_eq!(field["type"], "array of string");
    assert_eq!(field["default"], Value::Array(vec![]));
    let rule = &regions["rules"][0];
    assert_eq!(rule["id"], "region-not-allowed");
    assert_eq!(rule["enforcement"], "hard-mandatory");

    // Text: every policy, rule and field, with the default enforcement.
    let text = crate::support::run(provkey().arg("policies"));
    assert_eq!(text.code, 0, "{text:?}");
    for policy in policies {
        assert!(
            text.stdout.contains(&format!(
                "{} {}",
                policy["id"].as_str().unwrap(),
                policy["version"].as_str().unwrap()
            )),
            "{text:?}"
        );
        for rule in policy["rules"].as_array().unwrap() {
            let line = format!(
                "    {}  [{}, {}]",
                rule["id"].as_str().unwrap(),
                rule["severity"].as_str().unwrap(),
                rule["enforcement"].as_str().unwrap()
            );
            assert!(text.stdout.contains(&line), "{line}: {text:?}");
        }
    }
    assert!(
        text.stdout
            .contains("    ignore_types  (array of string)\n"),
        "{text:?}"
    );
    // `inspect` without an argument prints the same catalog.
    let inspect = crate::support::run(provkey().arg("inspect"));
    assert_eq!(inspect.code, 0, "{inspect:?}");
    assert_eq!(inspect.stdout, text.stdout);
    let inspect = crate::support::run(provkey().args(["inspect", "--format", "json"]));
    assert_eq!(inspect.json(), catalog);
}

#[test]
fn docs_policies_md_is_the_generated_catalog() {
    let run = run(provkey().args(["policies", "--format", "markdown"]));
    assert_eq!(run.code, 0, "{run:?}");
    let path = repo("docs/policies.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == run.stdout,
        "`{}` differs from the stock policies' metadata: regenerate it with \
         `provkey policies --format markdown > docs/policies.md`\n--- generated:\n{}",
        path.display(),
        run.stdout
    );
    for id in stock_ids_from_sources() {
        assert!(run.stdout.contains(&format!("\n## {id}\n")), "{id}");
        assert!(run.stdout.contains(&format!("| [`{id}`](#{id}) |")), "{id}");
    }
    assert!(run.stdout.contains(
        "| `type-not-allowed` | high | hard-mandatory | Plans create and update only resources \
         of the allowed types, and none of the denied ones. |"
    ));
}

#[test]
fn an_unknown_policy_id_gets_did_you_mean_and_the_list() {
    let plan = repo("examples/plans/replace-only.json");
    let plan = plan.to_str().unwrap();
    for (value, suggestion) in [
        ("alowed-regions", Some("allowed-regions")),
        ("required-tag", Some("required-tags")),
        ("regions", Some("allowed-regions")),
        ("nosuch", None),
    ] {
        let run = check(&["--plan", plan, "--policy", value]);
        assert_eq!(run.code, 2, "{value}: {run:?}");
        assert!(
            run.stderr.contains(&format!(
                "error: `{value}` is neither a component file nor a stock policy"
            )),
            "{value}: {run:?}"
        );
        assert!(
            !run.stderr.contains("No such file or directory"),
            "{value}: {run:?}"
        );
        match suggestion {
            Some(id) => assert!(
                run.stderr.contains(&format!(
                    "help: did you mean `{id}`? the stock policies are "
                )),
                "{value}: {run:?}"
            ),
            None => assert!(
                run.stderr.contains("help: the stock policies are ")
                    && !run.stderr.contains("did you mean"),
                "{value}: {run:?}"
            ),
        }
        for id in stock_ids_from_sources() {
            assert!(run.stderr.contains(&format!("`{id}`")), "{id}: {run:?}");
        }
        assert!(run.stdout.is_empty(), "{run:?}");
    }
    // `inspect` says the same.
    let run = run(provkey().args(["inspect", "immutible"]));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("help: did you mean `immutable`?"),
        "{run:?}"
    );
    // A stock id in `provkey.toml` too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("provkey.toml"),
        "[policy.tags]\nstock = \"required-tag\"\n",
    )
    .unwrap();
    let run = crate::support::run(provkey().current_dir(dir.path()).arg("lock"));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("`required-tag` is not a stock policy")
            && run.stderr.contains("did you mean `required-tags`?"),
        "{run:?}"
    );
}
