//! Kubernetes objects as a provkey plan, so that the policies that check Terraform
//! plans check manifests and admission requests too.
//!
//! [`read`] takes YAML (one or many documents separated by `---`) or JSON (one
//! object, a `List` such as `kubectl get -o json` prints, or an array), and
//! admission requests (an `AdmissionReview` of `admission.k8s.io/v1`, or its
//! `request` member alone). Each object becomes one change:
//!
//! | plan field | from the object |
//! |---|---|
//! | `address` | `KIND/NAMESPACE/NAME`, or `KIND/NAME` without a namespace (`Deployment/default/web`) |
//! | `type` | `k8s_` and the kind in snake case (`k8s_deployment`, `k8s_stateful_set`, `k8s_config_map`) |
//! | `name` | `metadata.name` (or `metadata.generateName` with `*`) |
//! | `provider` | `kubernetes/` and the `apiVersion` (`kubernetes/apps/v1`, `kubernetes/v1`) |
//! | `module_path` | the namespace, or empty |
//! | action | a manifest: `create`; an admission request: `CREATE` create, `UPDATE` update, `DELETE` destroy, `CONNECT` read |
//! | `after` / `before` | the object (for an update, `oldObject` is `before`) |
//! | sensitive | a `Secret`'s `/data` and `/stringData` |
//!
//! The `k8s_` prefix keeps these apart from the Terraform Kubernetes provider's
//! types (`kubernetes_deployment`), whose attributes are laid out differently.

use provkey_plan::{Action, JsonText, Plan, PlanSource, ResourceChange, ResourceMode};
use serde_json::{Map, Value};

/// The `source_version` of a plan read from Kubernetes objects.
pub const KUBERNETES_SOURCE_VERSION: &str = "v1";

/// Why a text could not be read as Kubernetes objects.
#[derive(Debug, thiserror::Error)]
pub enum KubernetesError {
    #[error("is not valid YAML{}: {message}", at_position(*.position))]
    Yaml {
        /// 1-based line and column, when the parser says where.
        position: Option<(usize, usize)>,
        message: String,
    },
    #[error("is not valid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("document {document}{at}: {problem}")]
    Object {
        /// 1-based, in the order of the text.
        document: usize,
        /// ` (line N)` when known.
        at: String,
        problem: String,
    },
    #[error("holds no Kubernetes object")]
    Empty,
}

impl KubernetesError {
    /// What the user can do about it.
    pub fn help(&self) -> &'static str {
        match self {
            KubernetesError::Yaml { .. } | KubernetesError::Json { .. } => {
                "check the manifest with `kubectl apply --dry-run=client -f FILE`"
            }
            KubernetesError::Object { .. } => {
                "every object needs `apiVersion`, `kind` and `metadata.name` (or `metadata.generateName`)"
            }
            KubernetesError::Empty => {
                "give a manifest with at least one object, a `List`, or an `AdmissionReview`"
            }
        }
    }
}

/// Whether `text` is worth reading as Kubernetes objects rather than as a plan:
/// YAML with a top-level `apiVersion:` or `kind:` line, or JSON whose top level
/// names an `apiVersion` or is an array. A plan file never does.
pub fn looks_like_kubernetes(text: &str) -> bool {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if let Some(items) = trimmed.strip_prefix('[') {
        // An array of objects; `[1, 2]` is left to the plan reader's error.
        return items.trim_start().starts_with('{');
    }
    if trimmed.starts_with('{') {
        // Only the top level counts; a Terraform plan may hold a manifest deep inside.
        let keys = top_level_json_keys(trimmed);
        let has = |key: &str| keys.iter().any(|k| k == key);
        return has("apiVersion") || has("request") || (has("operation") && has("uid"));
    }
    text.lines().any(|line| {
        line.starts_with("apiVersion:") || line.starts_with("kind:") || line.starts_with("request:")
    })
}

/// The top-level member names of the JSON object in `text` (none when it is not
/// one), read with a streaming deserializer that skips every value.
fn top_level_json_keys(text: &str) -> Vec<String> {
    struct Keys;
    impl<'de> serde::de::DeserializeSeed<'de> for Keys {
        type Value = Vec<String>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some(name) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                keys.push(name);
            }
            Ok(keys)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde::de::DeserializeSeed::deserialize(Keys, &mut de).unwrap_or_default()
}

/// Reads Kubernetes objects (YAML or JSON) as a plan, one change per object.
pub fn read(text: &str) -> Result<Plan, KubernetesError> {
    read_located(text).map(|(plan, _)| plan)
}

/// The line of the YAML document that declares each object, by address (the
/// first, when two objects share one), for reports that point into the file. JSON
/// objects and texts that do not read have none.
pub fn object_lines(text: &str) -> Vec<(String, usize)> {
    let Ok((plan, lines)) = read_located(text) else {
        return Vec::new();
    };
    plan.changes
        .into_iter()
        .zip(lines)
        .filter_map(|(change, line)| Some((change.address, line?)))
        .collect()
}

/// [`read`], with the line of each change's document (aligned with the changes).
fn read_located(text: &str) -> Result<(Plan, Vec<Option<usize>>), KubernetesError> {
    let text = text.trim_start_matches('\u{feff}');
    let trimmed = text.trim_start();
    let documents: Vec<(Value, Option<usize>)> =
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            let value: Value = serde_json::from_str(text).map_err(|err| KubernetesError::Json {
                line: err.line(),
                column: err.column(),
                message: json_message(&err),
            })?;
            vec![(value, None)]
        } else {
            yaml_documents(text)?
        };
    let mut plan = Plan::new(PlanSource::Kubernetes);
    plan.source_version = KUBERNETES_SOURCE_VERSION.to_string();
    let mut lines = Vec::new();
    for (index, (document, line)) in documents.into_iter().enumerate() {
        let at = line.map(|n| format!(" (line {n})")).unwrap_or_default();
        let fail = |problem: String| KubernetesError::Object {
            document: index + 1,
            at: at.clone(),
            problem,
        };
        collect(document, &mut plan.changes).map_err(fail)?;
        lines.resize(plan.changes.len(), line);
    }
    if plan.changes.is_empty() {
        return Err(KubernetesError::Empty);
    }
    Ok((plan, lines))
}

fn at_position(position: Option<(usize, usize)>) -> String {
    position
        .map(|(line, column)| format!(" at line {line}, column {column}"))
        .unwrap_or_default()
}

/// serde_json's message without its own ` at line L column C`.
fn json_message(err: &serde_json::Error) -> String {
    without_positions(&err.to_string())
}

/// A parser's message without the ` at line L column C` fragments it embeds: the
/// error names the position once, in the file's own lines.
fn without_positions(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" at line ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + " at line ".len()..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let tail = &after[digits..];
        match tail.strip_prefix(" column ") {
            Some(column) if digits > 0 => {
                let col_digits = column.len()
                    - column
                        .trim_start_matches(|c: char| c.is_ascii_digit())
                        .len();
                rest = &column[col_digits..];
            }
            _ => {
                out.push_str(" at line ");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every non-empty YAML document with the line its content starts on. The text is
/// split at document markers (`---` or `...` at the start of a line, which no
/// scalar's content can be: block scalars are indented) and each part parsed alone,
/// so that errors and objects are named by their line in the whole file.
fn yaml_documents(text: &str) -> Result<Vec<(Value, Option<usize>)>, KubernetesError> {
    let mut documents = Vec::new();
    let mut part = String::new();
    let mut part_start = 1;
    let mut content_line = None;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (index, line) in lines.iter().enumerate() {
        let number = index + 1;
        let marker = line.starts_with("---") || line.starts_with("...");
        let marker = marker && line[3..].chars().next().is_none_or(|c| c.is_whitespace());
        if marker {
            parse_part(&part, part_start, content_line, &mut documents)?;
            part.clear();
            content_line = None;
            // `--- {inline: document}` keeps its content on the marker's line.
            let rest = &line[3..];
            part_start = number;
            part.push_str("   ");
            part.push_str(rest);
            if line.starts_with("---") && !rest.trim().is_empty() && !rest.trim().starts_with('#') {
                content_line = Some(number);
            }
            continue;
        }
        let trimmed = line.trim();
        if content_line.is_none() && !trimmed.is_empty() && !trimmed.starts_with('#') {
            content_line = Some(number);
        }
        part.push_str(line);
    }
    parse_part(&part, part_start, content_line, &mut documents)?;
    Ok(documents)
}

/// Parses one YAML document that starts at line `first` of the file.
fn parse_part(
    part: &str,
    first: usize,
    content_line: Option<usize>,
    documents: &mut Vec<(Value, Option<usize>)>,
) -> Result<(), KubernetesError> {
    if content_line.is_none() {
        return Ok(());
    }
    let value: Value = serde_yaml_ng::from_str(part).map_err(|err| {
        let position = err
            .location()
            .map(|loc| (loc.line() + first - 1, loc.column()));
        let message = without_positions(&err.to_string());
        KubernetesError::Yaml { position, message }
    })?;
    if !value.is_null() {
        documents.push((value, content_line));
    }
    Ok(())
}

/// Adds the changes one document holds: an object, a list of objects, or an
/// admission request.
fn collect(document: Value, changes: &mut Vec<ResourceChange>) -> Result<(), String> {
    match document {
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                collect(item, changes).map_err(|e| format!("item {i}: {e}"))?;
            }
            Ok(())
        }
        Value::Object(object) => {
            let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
            if kind == "AdmissionReview" {
                let request = object
                    .get("request")
                    .ok_or("an `AdmissionReview` without a `request`")?;
                return admission_request(request, changes);
            }
            if !object.contains_key("apiVersion")
                && object.contains_key("operation")
                && object.contains_key("uid")
            {
                // The `request` member of an AdmissionReview on its own.
                return admission_request(&Value::Object(object), changes);
            }
            if !object.contains_key("apiVersion")
                && let Some(request) = object.get("request")
            {
                return admission_request(request, changes);
            }
            // A `List`'s items are read as an array of documents.
            if kind.ends_with("List")
                && let Some(items @ Value::Array(_)) = object.get("items")
            {
                return collect(items.clone(), changes);
            }
            let change = change_of(&object, Action::Create, None, Some(&object))?;
            changes.push(change);
            Ok(())
        }
        other => Err(format!(
            "is {}, not a Kubernetes object",
            json_kind_name(&other)
        )),
    }
}

fn json_kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The change an admission request asks for.
fn admission_request(request: &Value, changes: &mut Vec<ResourceChange>) -> Result<(), String> {
    let request = request
        .as_object()
        .ok_or("the admission `request` is not an object")?;
    let operation = request
        .get("operation")
        .and_then(Value::as_str)
        .ok_or("the admission request has no `operation`")?;
    let object = request.get("object").and_then(Value::as_object);
    let old = request.get("oldObject").and_then(Value::as_object);
    let (action, named) = match operation {
        "CREATE" => (Action::Create, object),
        "UPDATE" => (Action::Update, object),
        "DELETE" => (Action::Destroy, old.or(object)),
        "CONNECT" => (Action::Read, object.or(old)),
        other => {
            return Err(format!(
                "the admission request's operation `{other}` is not CREATE, UPDATE, DELETE or CONNECT"
            ));
        }
    };
    let named = named.ok_or_else(|| {
        format!("the admission request ({operation}) carries no `object` or `oldObject`")
    })?;
    // The API server may send objects without their type or name: the request
    // names them.
    let named = completed(named, request);
    let before = match action {
        Action::Update | Action::Destroy => old,
        _ => None,
    };
    let after = match action {
        Action::Destroy => None,
        _ => object,
    };
    changes.push(change_of(&named, action, before, after)?);
    Ok(())
}

/// `object` with `apiVersion` and `kind` from the request's `kind`
/// (`{group, version, kind}`), and `metadata.name` / `namespace` from the
/// request's `name` / `namespace`, where the object lacks them.
fn completed(object: &Map<String, Value>, request: &Map<String, Value>) -> Map<String, Value> {
    let mut object = object.clone();
    let gvk = request.get("kind").and_then(Value::as_object);
    let gvk_field = |name: &str| {
        gvk.and_then(|k| k.get(name))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    if !object.contains_key("apiVersion")
        && let Some(version) = gvk_field("version")
    {
        let api_version = match gvk_field("group") {
            Some(group) => format!("{group}/{version}"),
            None => version.to_string(),
        };
        object.insert("apiVersion".to_string(), Value::from(api_version));
    }
    if !object.contains_key("kind")
        && let Some(kind) = gvk_field("kind")
    {
        object.insert("kind".to_string(), Value::from(kind));
    }
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(metadata) = metadata {
        for field in ["name", "namespace"] {
            if !metadata.contains_key(field)
                && let Some(value) = request.get(field).and_then(Value::as_str)
            {
                metadata.insert(field.to_string(), Value::from(value));
            }
        }
    }
    object
}

fn change_of(
    object: &Map<String, Value>,
    action: Action,
    before: Option<&Map<String, Value>>,
    after: Option<&Map<String, Value>>,
) -> Result<ResourceChange, String> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or("the object has no `apiVersion`")?;
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or("the object has no `kind`")?;
    let metadata = object.get("metadata").and_then(Value::as_object);
    let field = |name: &str| {
        metadata
            .and_then(|m| m.get(name))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let name = match (field("name"), field("generateName")) {
        (Some(name), _) => name.to_string(),
        (None, Some(prefix)) => format!("{prefix}*"),
        (None, None) => {
            return Err(format!(
                "the `{kind}` has no `metadata.name` (nor `metadata.generateName`)"
            ));
        }
    };
    let namespace = field("namespace");
    let address = match namespace {
        Some(namespace) => format!("{kind}/{namespace}/{name}"),
        None => format!("{kind}/{name}"),
    };
    let sensitive: Vec<String> = if kind == "Secret" && api_version == "v1" {
        vec!["/data".to_string(), "/stringData".to_string()]
    } else {
        Vec::new()
    };
    let text = |side: Option<&Map<String, Value>>| {
        side.map(|object| JsonText::new(Value::Object(object.clone()).to_string()))
    };
    Ok(ResourceChange {
        address,
        previous_address: None,
        module_path: namespace.unwrap_or_default().to_string(),
        mode: ResourceMode::Managed,
        resource_type: resource_type(kind),
        name,
        provider: format!("kubernetes/{api_version}"),
        action,
        before: text(before),
        after: text(after),
        after_unknown: Vec::new(),
        before_sensitive: if before.is_some() {
            sensitive.clone()
        } else {
            Vec::new()
        },
        after_sensitive: if after.is_some() {
            sensitive
        } else {
            Vec::new()
        },
        depends_on: Vec::new(),
    })
}

/// `k8s_` and the kind in snake case: `StatefulSet` is `k8s_stateful_set`,
/// `HTTPRoute` is `k8s_http_route`.
pub fn resource_type(kind: &str) -> String {
    let mut out = String::from("k8s_");
    let chars: Vec<char> = kind.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else if c.is_alphanumeric() {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

    use super::*;

    #[test]
    fn kinds_become_snake_case_types() {
        for (kind, expected) in [
            ("Deployment", "k8s_deployment"),
            ("StatefulSet", "k8s_stateful_set"),
            ("ConfigMap", "k8s_config_map"),
            ("HTTPRoute", "k8s_http_route"),
            ("CronJob", "k8s_cron_job"),
            ("ClusterRoleBinding", "k8s_cluster_role_binding"),
            ("HorizontalPodAutoscaler", "k8s_horizontal_pod_autoscaler"),
            ("PodDisruptionBudget", "k8s_pod_disruption_budget"),
            ("Pod", "k8s_pod"),
        ] {
            assert_eq!(resource_type(kind), expected);
        }
    }

    const TWO: &str = "# a comment\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: nginx:1.25\n---\n\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: hunter2\n";

    #[test]
    fn multi_document_yaml_gives_one_create_per_object() {
        assert!(looks_like_kubernetes(TWO));
        let plan = read(TWO).unwrap();
        assert_eq!(plan.source, PlanSource::Kubernetes);
        let addresses: Vec<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(addresses, ["Deployment/prod/web", "Secret/creds"]);
        let web = &plan.changes[0];
        assert_eq!(web.resource_type, "k8s_deployment");
        assert_eq!(web.provider, "kubernetes/apps/v1");
        assert_eq!(web.module_path, "prod");
        assert_eq!(web.action, Action::Create);
        assert_eq!(
            web.after_value()
                .and_then(|v| v.pointer("/spec/template/spec/containers/0/image")),
            Some(&Value::from("nginx:1.25"))
        );
        let secret = &plan.changes[1];
        assert!(secret.is_sensitive("/stringData/password"));
        assert!(!web.is_sensitive("/spec"));
        // Each object's document starts at its first line of content.
        assert_eq!(
            object_lines(TWO),
            [
                ("Deployment/prod/web".to_string(), 3),
                ("Secret/creds".to_string(), 17)
            ]
        );
    }

    #[test]
    fn json_lists_arrays_and_admission_requests() {
        let list = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"Service","metadata":{"name":"a"}},
            {"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"job-"}}]}"#;
        assert!(looks_like_kubernetes(list));
        let plan = read(list).unwrap();
        let addresses: Vec<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(addresses, ["Service/a", "Pod/job-*"]);

        let array = r#"[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}}]"#;
        assert_eq!(read(array).unwrap().changes.len(), 1);

        let update = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
            "uid":"1","operation":"UPDATE",
            "object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"d"},"spec":{"x":2}},
            "oldObject":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"d"},"spec":{"x":1}}}}"#;
        let plan = read(update).unwrap();
        let change = &plan.changes[0];
        assert_eq!(change.action, Action::Update);
        assert_eq!(change.changed_attributes(), ["/spec"]);

        let bare = r#"{"uid":"1","operation":"DELETE","oldObject":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}}"#;
        assert!(looks_like_kubernetes(bare));
        let plan = read(bare).unwrap();
        assert_eq!(plan.changes[0].action, Action::Destroy);
        assert!(plan.changes[0].after.is_none());
    }

    #[test]
    fn plans_are_not_taken_for_manifests() {
        assert!(!looks_like_kubernetes("[1, 2, 3]"));
        assert!(looks_like_kubernetes(" [ {\"apiVersion\": \"v1\"}]"));
        let terraform = r#"{"format_version":"1.2","resource_changes":[{"change":{"after":{"manifest":{"apiVersion":"v1"}}}}]}"#;
        assert!(!looks_like_kubernetes(terraform));
        assert!(!looks_like_kubernetes(
            r#"{"format":"provkey-plan","format_version":"0.1"}"#
        ));
        assert!(!looks_like_kubernetes("not json"));
    }

    #[test]
    fn bad_objects_are_named_by_document_and_line() {
        let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: ok\n---\napiVersion: v1\nkind: Service\nmetadata: {}\n";
        let err = read(text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 2 (line 6): the `Service` has no `metadata.name` (nor `metadata.generateName`)"
        );
        let err = read("apiVersion: v1\nkind: [unclosed\n").unwrap_err();
        // The parser notices the unclosed list where the text ends.
        assert_eq!(
            err.to_string(),
            "is not valid YAML at line 3, column 1: did not find expected ',' or ']', while parsing a flow sequence"
        );
        let err = read("apiVersion: v1\n---\n- 1\n").unwrap_err();
        assert!(err.to_string().starts_with("document 1"), "{err}");
        assert!(matches!(
            read("# nothing\n---\n"),
            Err(KubernetesError::Empty)
        ));
        let err = read("{\"apiVersion\": \"v1\",}").unwrap_err();
        assert!(
            matches!(err, KubernetesError::Json { line: 1, .. }),
            "{err}"
        );
        let err =
            read(r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#).unwrap_err();
        assert!(err.to_string().contains("without a `request`"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_read_or_refused_without_panicking(text in ".{0,200}") {
            let _ = looks_like_kubernetes(&text);
            let _ = read(&text);
        }
    }
}
