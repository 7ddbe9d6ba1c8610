//! Kubernetes objects as plans: manifests (multi-document YAML, JSON lists) and
//! admission requests, checked by the stock set through the real binary.

use std::collections::BTreeMap;

use crate::support::*;

/// The addresses each rule flagged, from a JSON report; the notes of policies that
/// have no configuration to check with (`allowed-regions`, `allowed-types`) aside.
fn flagged(report: &serde_json::Value) -> BTreeMap<String, Vec<String>> {
    let mut by_rule: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in report["findings"].as_array().unwrap() {
        if f["rule"].as_str().unwrap().ends_with("-unconfigured") {
            assert_eq!(f["enforcement"], "advisory", "{f}");
            continue;
        }
        let rule = format!(
            "{}/{}",
            f["policy"].as_str().unwrap(),
            f["rule"].as_str().unwrap()
        );
        by_rule
            .entry(rule)
            .or_default()
            .push(f["address"].as_str().unwrap_or("(plan)").to_string());
    }
    for addresses in by_rule.values_mut() {
        addresses.sort();
    }
    by_rule
}

#[test]
fn a_multi_document_manifest_is_checked_object_by_object() {
    let manifest = repo("tests/fixtures/kubernetes/shop.yaml");
    let out = check(&["--plan", manifest.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let report = out.json();
    assert_eq!(report["plan"]["source"], "kubernetes");
    assert_eq!(report["plan"]["changes"], 3);
    // Only the tag-referenced container fails; the digests and the cron job's
    // nested template pass. Every object needs the `owner` and `environment`
    // labels; the deployment has only `owner`.
    let expected: BTreeMap<String, Vec<String>> = [
        (
            "pinned-artifacts/image-not-pinned".to_string(),
            vec!["Deployment/prod/shop".to_string()],
        ),
        (
            "required-tags/missing-tags".to_string(),
            vec![
                "CronJob/prod/report".to_string(),
                "Deployment/prod/shop".to_string(),
                "Secret/prod/shop-db".to_string(),
            ],
        ),
    ]
    .into();
    assert_eq!(flagged(&report), expected, "{out:?}");
    // Annotations point at the line of each object's document.
    let out = check(&["--plan", manifest.to_str().unwrap(), "--format", "github"]);
    assert!(
        out.stdout.contains(
            "shop.yaml,line=2,title=pinned-artifacts/image-not-pinned%3A Deployment/prod/shop"
        ),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("shop.yaml,line=26,title=required-tags/missing-tags%3A CronJob/prod/report"),
        "{out:?}"
    );
    // A Secret's data is sensitive: no report prints it.
    for format in ["text", "json", "sarif", "markdown", "junit", "github"] {
        let out = check(&["--plan", manifest.to_str().unwrap(), "--format", format]);
        assert!(
            !out.stdout.contains("correct-horse-battery-staple"),
            "{format} printed the secret"
        );
    }
}

#[test]
fn json_lists_and_admission_requests_are_read_too() {
    let list = r#"{"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "d"},
         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}]}"#;
    let (_dir, path) = temp_file("list.json", list.as_bytes());
    let out = check(&["--plan", path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let expected: BTreeMap<String, Vec<String>> = [
        (
            "pinned-artifacts/image-not-pinned".to_string(),
            vec!["Pod/d/a".to_string()],
        ),
        (
            "required-tags/missing-tags".to_string(),
            vec!["Pod/d/a".to_string()],
        ),
    ]
    .into();
    assert_eq!(flagged(&out.json()), expected);

    // An UPDATE through admission is an in-place change: `immutable` refuses it.
    let review = r#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
      "request": {"uid": "7", "operation": "UPDATE",
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "name": "web", "namespace": "prod",
        "object": {"metadata": {"name": "web"}, "spec": {"replicas": 3, "template": {"spec":
          {"containers": [{"name": "w", "image": "web@sha256:0000000000000000000000000000000000000000000000000000000000000003"}]}}}},
        "oldObject": {"metadata": {"name": "web"}, "spec": {"replicas": 2, "template": {"spec":
          {"containers": [{"name": "w", "image": "web@sha256:0000000000000000000000000000000000000000000000000000000000000003"}]}}}}}}"#;
    let (_dir, path) = temp_file("review.json", review.as_bytes());
    let out = check(&["--plan", path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let flagged = flagged(&out.json());
    assert_eq!(
        flagged.keys().map(String::as_str).collect::<Vec<_>>(),
        ["immutable/no-update-in-place", "required-tags/missing-tags"],
        "{out:?}"
    );
    assert_eq!(
        flagged["immutable/no-update-in-place"],
        ["Deployment/prod/web"]
    );
}

#[test]
fn a_bad_manifest_is_refused_with_its_document_and_line() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {}\n";
    let (_dir, path) = temp_file("bad.yaml", text.as_bytes());
    let out = check(&["--plan", path.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("bad.yaml"), "{out:?}");
    assert!(out.stderr.contains("document 2 (line 6)"), "{out:?}");
    assert!(out.stderr.contains("metadata.name"), "{out:?}");
    assert!(out.stderr.contains("help:"), "{out:?}");

    let (_dir, path) = temp_file("broken.yaml", b"apiVersion: v1\nkind: Pod\nmetadata: [\n");
    let out = check(&["--plan", path.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("is not valid YAML at line"), "{out:?}");

    // Text that is neither a plan nor a manifest keeps the plan reader's message.
    let (_dir, path) = temp_file("notes.txt", b"hello\n");
    let out = check(&["--plan", path.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(!out.stderr.contains("Kubernetes"), "{out:?}");
}

/// What a reviewer expects of the shared real manifests: an image by tag or by no
/// tag fails `pinned-artifacts`, digests pass; no object carries the `owner` and
/// `environment` labels that `required-tags` asks of every object; nothing else fires.
#[test]
fn the_shared_manifests_get_the_verdicts_a_reviewer_expects() {
    let Some(dir) = shared_data("kubernetes") else {
        return;
    };
    let expectations: &[(&str, i32, &[&str])] = &[
        (
            "FairwindsOps__polaris__tagNotSpecified_failure.yaml",
            1,
            &["Pod/nginx"],
        ),
        (
            "FairwindsOps__polaris__tagNotSpecified_failure.latest.yaml",
            1,
            &["Pod/nginx"],
        ),
        // A tag is still movable: provkey asks for a digest where polaris asks for a tag.
        (
            "FairwindsOps__polaris__tagNotSpecified_success.yaml",
            1,
            &["Pod/nginx"],
        ),
        (
            "kubernetes__examples__guestbook-all-in-one.yaml",
            1,
            &[
                "Deployment/frontend",
                "Deployment/redis-master",
                "Deployment/redis-replica",
            ],
        ),
        // ingress-nginx pins every image by digest.
        (
            "kubernetes__ingress-nginx__ingress-nginx_cloud_deploy.yaml",
            1,
            &[],
        ),
        (
            "open-policy-agent__conftest__k8s_deployment.yaml",
            1,
            &["Deployment/hello-kubernetes"],
        ),
        ("open-policy-agent__conftest__k8s_service.yaml", 1, &[]),
        (
            "admission/kubewarden__pod-privileged-policy__deployment_with_privileged_containers.json",
            1,
            &["Deployment/nginx"],
        ),
        (
            "admission/kubewarden__pod-privileged-policy__no_privileged_containers.json",
            1,
            &["Pod/default/nginx", "Pod/default/nginx"],
        ),
        (
            "admission/kubewarden__pod-privileged-policy__privileged_container.json",
            1,
            &["Pod/default/nginx", "Pod/default/nginx"],
        ),
    ];
    for (file, code, addresses) in expectations {
        let path = dir.join(file);
        let out = check(&["--plan", path.to_str().unwrap(), "--format", "json"]);
        assert_eq!(out.code, *code, "{file}: {out:?}");
        let report = out.json();
        let mut flagged = flagged(&report);
        let labels = flagged
            .remove("required-tags/missing-tags")
            .unwrap_or_default();
        assert_eq!(
            labels.len() as u64,
            report["plan"]["changes"].as_u64().unwrap(),
            "{file}: every object lacks the labels"
        );
        let expected: BTreeMap<String, Vec<String>> = if addresses.is_empty() {
            BTreeMap::new()
        } else {
            [(
                "pinned-artifacts/image-not-pinned".to_string(),
                addresses.iter().map(|a| a.to_string()).collect(),
            )]
            .into()
        };
        assert_eq!(flagged, expected, "{file}");
    }
}
