//! The `pinned-artifacts` stock policy: every container image and every artifact a
//! plan deploys is pinned by digest, so that what was checked is what runs.
//!
//! Container images are read from the attributes listed per resource type (see
//! [`DEFAULT_IMAGE_ATTRIBUTES`]); an image is pinned when it carries a digest
//! (`repo@sha256:<64 hex>`) or is a content-addressed image id (`sha256:<64 hex>`).
//! A bare name (which means `:latest`), `:latest` and any other tag are refused: a
//! tag can be moved. An image reference known only after apply cannot be checked
//! and is reported under its own rule. provkey's own artifact resources
//! (`artifact_types`) must carry a known `digest`.
//!
//! Only changes that create or update a managed resource are read (creates,
//! replaces, updates); destroys, reads and no-ops pass.
//!
//! Configuration (optional, `{}` by default; schema in `config.schema.json`):
//!
//! - `image_attributes`: resource type (a trailing `*` matches any suffix) to the
//!   list of attribute paths holding image references, merged over the defaults (an
//!   empty list switches a default off). A path is a JSON Pointer whose segment `*`
//!   matches any list element or key and `**` any depth; a string holding JSON (like
//!   `aws_ecs_task_definition.container_definitions`) is read as JSON.
//! - `artifact_types`: the resource types of digest-addressed artifacts, default
//!   `["artifact", "provkey_artifact"]`; each must have a `digest` of the form
//!   `sha256:<64 hex>`.
//! - `ignore_types`: resource types never checked.

use std::collections::BTreeMap;

use provkey_sdk::prelude::*;
use provkey_sdk::{pointer, serde, serde_json};

/// An image referenced by tag (or by no tag: `latest`).
pub const IMAGE_NOT_PINNED: Rule = Rule::new(
    "image-not-pinned",
    "Container images are referenced by digest (`@sha256:`), never by a tag alone.",
)
.severity(Severity::High)
.enforcement(Enforcement::SoftMandatory);

/// An image reference known only after apply.
pub const IMAGE_UNKNOWN: Rule = Rule::new(
    "image-unknown",
    "An image reference known only after apply cannot be shown to be pinned.",
)
.severity(Severity::High)
.enforcement(Enforcement::SoftMandatory);

/// An artifact without a digest.
pub const ARTIFACT_NOT_PINNED: Rule = Rule::new(
    "artifact-not-pinned",
    "Artifacts carry a content digest (`blake3:` or `sha256:`).",
)
.severity(Severity::High)
.enforcement(Enforcement::SoftMandatory);

/// An artifact whose digest is known only after apply.
pub const ARTIFACT_DIGEST_UNKNOWN: Rule = Rule::new(
    "artifact-digest-unknown",
    "An artifact whose digest is known only after apply is not pinned.",
)
.severity(Severity::High)
.enforcement(Enforcement::SoftMandatory);

/// The configuration's JSON Schema.
pub const CONFIG_SCHEMA: &str = include_str!("../config.schema.json");

/// Where images are referenced, per resource type, unless configured otherwise.
pub const DEFAULT_IMAGE_ATTRIBUTES: &[(&str, &[&str])] = &[
    // Kubernetes through Terraform's provider: pods, deployments, stateful sets,
    // daemon sets, jobs, cron jobs...
    (
        "kubernetes_*",
        &["/**/container/*/image", "/**/init_container/*/image"],
    ),
    // Kubernetes objects read from manifests or admission requests (`k8s_deployment`):
    // the pod spec of a pod, of a workload's template, and of a cron job's job
    // template. Named exactly, not with `**`: annotations such as
    // `kubectl.kubernetes.io/last-applied-configuration` hold an older copy of the
    // object as JSON text, which is not what runs.
    (
        "k8s_*",
        &[
            "/spec/containers/*/image",
            "/spec/initContainers/*/image",
            "/spec/ephemeralContainers/*/image",
            "/spec/template/spec/containers/*/image",
            "/spec/template/spec/initContainers/*/image",
            "/template/spec/containers/*/image",
            "/template/spec/initContainers/*/image",
            "/spec/jobTemplate/spec/template/spec/containers/*/image",
            "/spec/jobTemplate/spec/template/spec/initContainers/*/image",
        ],
    ),
    ("docker_container", &["/image"]),
    ("docker_service", &["/task_spec/*/container_spec/*/image"]),
    (
        "aws_ecs_task_definition",
        &["/container_definitions/*/image"],
    ),
    ("aws_lambda_function", &["/image_uri"]),
    (
        "aws_apprunner_service",
        &["/source_configuration/*/image_repository/*/image_identifier"],
    ),
    ("aws_batch_job_definition", &["/container_properties/image"]),
    (
        "google_cloud_run_service",
        &["/template/*/spec/*/containers/*/image"],
    ),
    (
        "google_cloud_run_v2_service",
        &["/template/*/containers/*/image"],
    ),
    (
        "google_cloud_run_v2_job",
        &["/template/*/template/*/containers/*/image"],
    ),
    (
        "azurerm_container_group",
        &["/container/*/image", "/init_container/*/image"],
    ),
    (
        "azurerm_container_app",
        &[
            "/template/*/container/*/image",
            "/template/*/init_container/*/image",
        ],
    ),
    (
        "azurerm_container_app_job",
        &["/template/*/container/*/image"],
    ),
];

/// The default artifact resource types.
pub const DEFAULT_ARTIFACT_TYPES: &[&str] = &["artifact", "provkey_artifact"];

#[derive(serde::Deserialize, Default)]
#[serde(crate = "provkey_sdk::serde", deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    image_attributes: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    artifact_types: Option<Vec<String>>,
    #[serde(default)]
    ignore_types: Vec<String>,
}

/// The policy.
pub struct PinnedArtifacts;

impl Policy for PinnedArtifacts {
    fn metadata() -> Metadata {
        Metadata::new(
            "pinned-artifacts",
            env!("CARGO_PKG_VERSION"),
            "Refuses container images and artifacts that are not pinned by digest.",
        )
        .rules(&[
            IMAGE_NOT_PINNED,
            IMAGE_UNKNOWN,
            ARTIFACT_NOT_PINNED,
            ARTIFACT_DIGEST_UNKNOWN,
        ])
        .config_schema(CONFIG_SCHEMA)
    }

    fn evaluate(plan: &Plan, config: &Config) -> Result<Vec<Finding>, Error> {
        let settings: Settings = config.parse()?;
        let mut attributes: BTreeMap<String, Vec<String>> = DEFAULT_IMAGE_ATTRIBUTES
            .iter()
            .map(|(t, paths)| (t.to_string(), paths.iter().map(|p| p.to_string()).collect()))
            .collect();
        for (resource_type, paths) in settings.image_attributes {
            if resource_type.is_empty() {
                return Err(Error::invalid_config(
                    "field `image_attributes`: a resource type cannot be empty",
                ));
            }
            if let Some(bad) = paths.iter().find(|p| !p.starts_with('/')) {
                return Err(Error::invalid_config(format!(
                    "field `image_attributes.{resource_type}`: `{bad}` is not a JSON Pointer \
                     (it must start with `/`)"
                )));
            }
            attributes.insert(resource_type, paths);
        }
        let artifact_types = settings.artifact_types.unwrap_or_else(|| {
            DEFAULT_ARTIFACT_TYPES
                .iter()
                .map(|t| t.to_string())
                .collect()
        });
        let mut findings = Vec::new();
        for change in plan.managed_changes() {
            if !(change.action.creates() || change.action.is_update())
                || settings
                    .ignore_types
                    .iter()
                    .any(|t| type_matches(t, &change.resource_type))
            {
                continue;
            }
            if artifact_types.contains(&change.resource_type) {
                findings.extend(check_artifact(change));
            }
            for (pattern, paths) in &attributes {
                if !type_matches(pattern, &change.resource_type) {
                    continue;
                }
                for path in paths {
                    let segments: Vec<String> = split(path);
                    let mut hits = Vec::new();
                    if let Some(root) = change.after_value() {
                        walk(
                            change,
                            root,
                            &segments,
                            String::new(),
                            None,
                            false,
                            &mut hits,
                        );
                    } else if change.is_unknown("") {
                        hits.push(Hit::Unknown(String::new()));
                    }
                    findings.extend(hits.into_iter().filter_map(|hit| check_image(change, hit)));
                }
            }
        }
        Ok(findings)
    }
}

/// Whether a configured type (`kubernetes_*` or an exact type) matches.
fn type_matches(pattern: &str, resource_type: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => resource_type.starts_with(prefix),
        None => pattern == resource_type,
    }
}

fn split(path: &str) -> Vec<String> {
    path.split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// A value found at a concrete path.
enum Hit {
    /// A string: the pointer, the plan attribute it lies in, the text.
    Text(String, String, String),
    /// Known only after apply.
    Unknown(String),
}

/// Follows `segments` through `value`; `inside` is the attribute whose JSON string
/// is being read, when the walk went into one.
fn walk(
    change: &ResourceChange,
    value: &Value,
    segments: &[String],
    at: String,
    inside: Option<&str>,
    deep: bool,
    hits: &mut Vec<Hit>,
) {
    if inside.is_none() && !at.is_empty() && change.is_unknown(&at) {
        // A value reached by `**` is only a candidate: its being unknown says nothing.
        if !deep {
            hits.push(Hit::Unknown(at));
        }
        return;
    }
    let Some((first, rest)) = segments.split_first() else {
        if let Value::String(text) = value {
            let attribute = inside.map_or_else(|| at.clone(), str::to_string);
            hits.push(Hit::Text(at, attribute, text.clone()));
        }
        return;
    };
    if let Value::String(text) = value {
        // A JSON document held in a string attribute.
        if let Ok(inner @ (Value::Array(_) | Value::Object(_))) =
            serde_json::from_str::<Value>(text)
        {
            let attribute = inside.map_or_else(|| at.clone(), str::to_string);
            walk(change, &inner, segments, at, Some(&attribute), false, hits);
        }
        return;
    }
    let child_at = |key: &str| format!("{at}/{}", pointer::escape(key));
    match first.as_str() {
        "*" => {
            for (key, child) in children(value) {
                walk(change, child, rest, child_at(&key), inside, false, hits);
            }
        }
        "**" => {
            walk(change, value, rest, at.clone(), inside, deep, hits);
            for (key, child) in children(value) {
                walk(change, child, segments, child_at(&key), inside, true, hits);
            }
        }
        key => {
            let child = match value {
                Value::Object(map) => map.get(key),
                Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match child {
                Some(child) if !child.is_null() => {
                    walk(change, child, rest, child_at(key), inside, false, hits);
                }
                _ => {
                    let missing = child_at(key);
                    if inside.is_none() && change.is_unknown(&missing) {
                        hits.push(Hit::Unknown(missing));
                    }
                }
            }
        }
    }
}

fn children(value: &Value) -> Vec<(String, &Value)> {
    match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    }
}

fn check_image(change: &ResourceChange, hit: Hit) -> Option<Finding> {
    match hit {
        Hit::Unknown(at) => Some(
            Finding::new(&IMAGE_UNKNOWN, change)
                .attribute(at.clone())
                .message(format!(
                    "`{}`: the image at `{at}` is known only after apply, so it cannot be \
                     shown to be pinned by digest",
                    change.address
                ))
                .remediation(
                    "reference the image by a digest known at plan time \
                     (`registry/name@sha256:<digest>`), for example from a data source \
                     or a variable, instead of a value computed during apply",
                ),
        ),
        Hit::Text(at, attribute, image) => {
            let why = unpinned(&image)?;
            let sensitive = change.contains_sensitive(&attribute);
            let message = if sensitive {
                format!(
                    "`{}`: the image at `{at}` is not pinned by digest (the value is \
                     sensitive and not shown)",
                    change.address
                )
            } else {
                format!(
                    "`{}`: image `{image}` at `{at}` is not pinned by digest: it {why}",
                    change.address
                )
            };
            let name = if sensitive {
                "IMAGE".to_string()
            } else {
                repository(&image).to_string()
            };
            Some(
                Finding::new(&IMAGE_NOT_PINNED, change)
                    .attribute(at)
                    .message(message)
                    .remediation(format!(
                        "reference the image by digest, `{name}@sha256:<digest>` (`docker \
                         buildx imagetools inspect {name}:<tag>` prints the digest)"
                    )),
            )
        }
    }
}

/// Why an image reference is not pinned, or `None` when it is.
fn unpinned(image: &str) -> Option<String> {
    let image = image.trim();
    if image.is_empty() {
        return Some("is empty".to_string());
    }
    if is_digest(image) {
        return None;
    }
    if let Some((_, digest)) = image.rsplit_once('@') {
        return if is_digest(digest) {
            None
        } else {
            Some(format!("has a malformed digest `{digest}`"))
        };
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    Some(match last.split_once(':') {
        Some((_, "latest")) => "uses the tag `latest`, which moves with every push".to_string(),
        Some((_, tag)) => format!("uses the tag `{tag}`, which can be moved to another image"),
        None => "has no tag or digest, which means `latest`".to_string(),
    })
}

/// The image's name without tag or digest.
fn repository(image: &str) -> &str {
    let image = image.trim();
    let without_digest = image.split('@').next().unwrap_or(image);
    let slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[slash..].find(':') {
        Some(colon) => &without_digest[..slash + colon],
        None => without_digest,
    }
}

/// `sha256:` and 64 lowercase hex digits (or `sha512:` and 128).
fn is_digest(text: &str) -> bool {
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match text.split_once(':') {
        Some(("sha256", h)) => hex(h, 64),
        Some(("sha512", h)) => hex(h, 128),
        _ => false,
    }
}

/// Artifacts may also be pinned by provkey's own content digest, `blake3:<64 hex>`.
fn is_artifact_digest(text: &str) -> bool {
    match text.split_once(':') {
        Some(("blake3", h)) => {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        _ => is_digest(text),
    }
}

fn check_artifact(change: &ResourceChange) -> Option<Finding> {
    const DIGEST: &str = "/digest";
    let remediation = "give the artifact its content digest (`blake3:<digest>` or \
                       `sha256:<digest>`) at plan time: build it before planning, and pass its \
                       digest in";
    match change.after_at(DIGEST) {
        Attr::Unknown => Some(
            Finding::new(&ARTIFACT_DIGEST_UNKNOWN, change)
                .attribute(DIGEST)
                .message(format!(
                    "`{}`: the artifact's `digest` is known only after apply, so the \
                     artifact is not pinned",
                    change.address
                ))
                .remediation(remediation),
        ),
        Attr::Absent => Some(
            Finding::new(&ARTIFACT_NOT_PINNED, change)
                .attribute(DIGEST)
                .message(format!(
                    "`{}`: the artifact has no `digest`",
                    change.address
                ))
                .remediation(remediation),
        ),
        Attr::Known(value) => {
            if value.as_str().is_some_and(is_artifact_digest) {
                return None;
            }
            Some(
                Finding::new(&ARTIFACT_NOT_PINNED, change)
                    .attribute(DIGEST)
                    .message(format!(
                        "`{}`: the artifact's digest `{}` is not of the form \
                         `blake3:<64 hex digits>` or `sha256:<64 hex digits>`",
                        change.address,
                        change.display_after(DIGEST)
                    ))
                    .remediation(remediation),
            )
        }
    }
}

provkey_sdk::export_policy!(PinnedArtifacts);

#[cfg(test)]
mod tests {
    use provkey_sdk::testing::{self, change};

    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn run(plan: &Plan, config: &str) -> Result<Vec<Finding>, Error> {
        testing::evaluate::<PinnedArtifacts>(plan, config)
    }

    fn rules(findings: &[Finding]) -> Vec<(&str, &str, &str)> {
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

    #[test]
    fn metadata_is_well_formed() {
        testing::check_metadata::<PinnedArtifacts>();
        assert_eq!(PinnedArtifacts::metadata().rules.len(), 4);
    }

    #[test]
    fn classifies_references() {
        let pinned = format!("nginx@{DIGEST}");
        assert_eq!(unpinned(&pinned), None);
        assert_eq!(unpinned(&format!("ghcr.io/a/b:1.2@{DIGEST}")), None);
        assert_eq!(unpinned(DIGEST), None);
        assert!(unpinned("nginx").unwrap().contains("no tag"));
        assert!(unpinned("nginx:latest").unwrap().contains("`latest`"));
        assert!(
            unpinned("localhost:5000/app:1.2")
                .unwrap()
                .contains("`1.2`")
        );
        assert!(unpinned("localhost:5000/app").unwrap().contains("no tag"));
        assert!(unpinned("app@sha256:abc").unwrap().contains("malformed"));
        assert_eq!(repository("localhost:5000/app:1.2"), "localhost:5000/app");
        assert_eq!(repository(&pinned), "nginx");
    }

    #[test]
    fn kubernetes_ecs_docker_and_cloud_run() {
        let containers = json!([
            {"name": "definition", "image": "nginx:latest"},
            {"name": "pinned", "image": format!("redis@{DIGEST}")}
        ])
        .to_string();
        let plan = testing::plan_of([
            change("kubernetes_deployment.web", Action::Create).after(json!({
                "spec": [{"template": [{"spec": [{
                    "container": [{"image": "nginx"}, {"image": format!("nginx@{DIGEST}")}],
                    "init_container": [{"image": "busybox:1.36"}]
                }]}]}]
            })),
            change("aws_ecs_task_definition.app", Action::Create)
                .after(json!({"container_definitions": containers})),
            change("docker_container.c", Action::Update).after(json!({"image": DIGEST})),
            change("google_cloud_run_v2_service.s", Action::Create).after(json!({
                "template": [{"containers": [{"image": "gcr.io/p/app:v1"}]}]
            })),
            change("docker_container.gone", Action::Destroy).before(json!({"image": "nginx"})),
            change("docker_container.same", Action::NoOp)
                .before(json!({"image": "nginx"}))
                .after(json!({"image": "nginx"})),
        ]);
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(
            rules(&findings),
            [
                (
                    "image-not-pinned",
                    "kubernetes_deployment.web",
                    "/spec/0/template/0/spec/0/container/0/image"
                ),
                (
                    "image-not-pinned",
                    "kubernetes_deployment.web",
                    "/spec/0/template/0/spec/0/init_container/0/image"
                ),
                (
                    "image-not-pinned",
                    "aws_ecs_task_definition.app",
                    "/container_definitions/0/image"
                ),
                (
                    "image-not-pinned",
                    "google_cloud_run_v2_service.s",
                    "/template/0/containers/0/image"
                ),
            ]
        );
        assert_eq!(
            findings[2].message,
            "`aws_ecs_task_definition.app`: image `nginx:latest` at \
             `/container_definitions/0/image` is not pinned by digest: it uses the tag \
             `latest`, which moves with every push"
        );
        assert!(
            findings[0]
                .remediation
                .as_deref()
                .unwrap()
                .contains("nginx@sha256:")
        );
    }

    #[test]
    fn kubernetes_objects_from_manifests_ignore_the_last_applied_copy() {
        let last_applied = json!({"spec": {"containers": [{"image": "old:1"}]}}).to_string();
        let plan = testing::plan_of([
            change("Pod/p", Action::Create)
                .resource_type("k8s_pod")
                .after(json!({
                    "metadata": {"annotations": {
                        "kubectl.kubernetes.io/last-applied-configuration": last_applied
                    }},
                    "spec": {
                        "containers": [{"image": format!("app@{DIGEST}")}],
                        "initContainers": [{"image": "busybox"}]
                    }
                })),
            change("CronJob/c", Action::Create)
                .resource_type("k8s_cron_job")
                .after(
                    json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
                        "containers": [{"image": "report:2"}]
                    }}}}}}),
                ),
        ]);
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(
            rules(&findings),
            [
                ("image-not-pinned", "Pod/p", "/spec/initContainers/0/image"),
                (
                    "image-not-pinned",
                    "CronJob/c",
                    "/spec/jobTemplate/spec/template/spec/containers/0/image"
                ),
            ]
        );
    }

    #[test]
    fn unknown_images_are_reported_not_passed() {
        let plan = testing::plan_of([
            change("docker_container.c", Action::Create)
                .after(json!({}))
                .unknown("/image"),
            change("aws_ecs_task_definition.t", Action::Create)
                .after(json!({}))
                .unknown("/container_definitions"),
            change("azurerm_container_group.g", Action::Create)
                .after(json!({"container": [{"name": "x"}]}))
                .unknown("/container/0/image"),
        ]);
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(
            rules(&findings),
            [
                ("image-unknown", "docker_container.c", "/image"),
                (
                    "image-unknown",
                    "aws_ecs_task_definition.t",
                    "/container_definitions"
                ),
                (
                    "image-unknown",
                    "azurerm_container_group.g",
                    "/container/0/image"
                ),
            ]
        );
    }

    #[test]
    fn sensitive_images_are_never_printed() {
        let plan = testing::plan_of([change("docker_container.c", Action::Create)
            .after(json!({"image": "secret.example/app:hunter2"}))
            .sensitive("/image")]);
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(findings.len(), 1);
        assert!(!format!("{findings:?}").contains("hunter2"));
    }

    #[test]
    fn artifacts_need_a_known_digest() {
        let plan = testing::plan_of([
            change("artifact.ok", Action::Create).after(json!({"digest": DIGEST})),
            change("artifact.none", Action::Create).after(json!({"uri": "s3://b/k"})),
            change("artifact.bad", Action::Create).after(json!({"digest": "md5:abc"})),
            change("provkey_artifact.later", Action::Create)
                .after(json!({}))
                .unknown("/digest"),
        ]);
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(
            rules(&findings),
            [
                ("artifact-not-pinned", "artifact.none", "/digest"),
                ("artifact-not-pinned", "artifact.bad", "/digest"),
                (
                    "artifact-digest-unknown",
                    "provkey_artifact.later",
                    "/digest"
                ),
            ]
        );
        assert!(findings[1].message.contains("`md5:abc`"));
    }

    #[test]
    fn configuration() {
        let plan = testing::plan_of([
            change("my_app.a", Action::Create).after(json!({"spec": {"img": "app:1"}})),
            change("docker_container.c", Action::Create).after(json!({"image": "nginx"})),
            change("widget.w", Action::Create).after(json!({})),
        ]);
        let config = r#"{"image_attributes": {"my_*": ["/spec/img"], "docker_container": []},
                         "artifact_types": ["widget"]}"#;
        let findings = run(&plan, config).unwrap();
        assert_eq!(
            rules(&findings),
            [
                ("image-not-pinned", "my_app.a", "/spec/img"),
                ("artifact-not-pinned", "widget.w", "/digest"),
            ]
        );
        let findings = run(&plan, r#"{"ignore_types": ["docker_container"]}"#).unwrap();
        assert_eq!(findings, []);
        let err = |config| run(&plan, config).unwrap_err().message().to_string();
        assert!(err(r#"{"image_attribute": {}}"#).contains("unknown field `image_attribute`"));
        assert!(err(r#"{"image_attributes": {"x": ["img"]}}"#).contains("`img`"));
        assert!(err(r#"{"ignore_types": "x"}"#).starts_with("field `ignore_types`"));
    }
}
