//! The desired-state file (TOML) and what the host hands a planner (JSON).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use provkey_plan::ReplaceOrder;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use thiserror::Error;
use toml::Spanned;

use crate::digest::{self, DigestError};

/// The `format` of the planner's desired-state input.
pub const DESIRED_FORMAT: &str = "provkey-desired";
/// The version of the planner's desired-state input.
pub const DESIRED_FORMAT_VERSION: &str = "0.1";

/// Desired-state files larger than this are refused.
pub const MAX_DESIRED_BYTES: u64 = 16 << 20;

/// The kinds of resource a desired state declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An immutable file or directory tree, identified by its digest.
    Artifact,
    /// A service running an artifact with its configuration baked in.
    Instance,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Artifact => "artifact",
            Kind::Instance => "instance",
        }
    }

    /// The address of the resource of this kind with this name: `instance.web`.
    pub fn address(self, name: &str) -> String {
        format!("{}.{name}", self.as_str())
    }
}

/// Why a desired-state file was refused. Every variant names the file; those about
/// one place in it carry its line and column.
#[derive(Debug, Error)]
pub enum DesiredError {
    #[error("cannot read desired state `{}`", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("desired state `{}`{}: {message}", file.display(), at(*line, *column))]
    Invalid {
        file: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
        help: Option<String>,
    },
    #[error("desired state `{}`{}: artifact `{name}`: cannot compute its digest", file.display(), at(*line, *column))]
    Digest {
        file: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        name: String,
        #[source]
        source: DigestError,
    },
}

fn at(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(", line {l}, column {c}"),
        (Some(l), None) => format!(", line {l}"),
        _ => String::new(),
    }
}

impl DesiredError {
    /// What to do about it, when there is something specific to say.
    pub fn help(&self) -> Option<&str> {
        match self {
            DesiredError::Invalid { help, .. } => help.as_deref(),
            DesiredError::Read { .. } => Some("check the path given to `--desired`"),
            DesiredError::Digest { .. } => Some(
                "an artifact's `path` must name a regular file or a directory of regular \
                 files and directories, relative to the desired-state file",
            ),
        }
    }

    /// The line the error is about, when it is about one place.
    pub fn line(&self) -> Option<usize> {
        match self {
            DesiredError::Invalid { line, .. } | DesiredError::Digest { line, .. } => *line,
            DesiredError::Read { .. } => None,
        }
    }
}

/// The desired state, resolved: digests computed, dependencies inferred, checked.
/// Serialized, it is the `desired` JSON a planner receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    /// Always [`DESIRED_FORMAT`].
    pub format: String,
    /// Always [`DESIRED_FORMAT_VERSION`].
    pub format_version: String,
    /// The target's name.
    pub target: String,
    /// Every resource, sorted by address.
    pub resources: Vec<DesiredResource>,
}

/// One desired resource, as a planner sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredResource {
    /// `artifact.NAME` or `instance.NAME`.
    pub address: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub name: String,
    /// The explicit dependencies and the inferred one (an instance's artifact),
    /// sorted, without duplicates.
    pub depends_on: Vec<String>,
    /// How the two halves of a replacement are ordered.
    pub replace: ReplaceOrder,
    /// The artifact's digest (an artifact's own, or the one an instance runs);
    /// `None` when the artifact is named only by a mutable reference.
    pub artifact_digest: Option<String>,
    /// An instance's configuration digest (see [`digest::config_digest`]).
    pub config_digest: Option<String>,
    /// The attribute values the plan carries as `after` (see the crate docs).
    pub attributes: Value,
}

impl Desired {
    /// Reads, parses and resolves a desired-state file. Artifact paths are relative
    /// to the file's directory.
    pub fn load(file: &Path) -> Result<Desired, DesiredError> {
        use std::io::Read as _;
        let read = |source| DesiredError::Read {
            file: file.to_path_buf(),
            source,
        };
        let handle = std::fs::File::open(file).map_err(read)?;
        let mut bytes = Vec::new();
        handle
            .take(MAX_DESIRED_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() as u64 > MAX_DESIRED_BYTES {
            return Err(invalid(
                file,
                None,
                format!("the file is larger than {MAX_DESIRED_BYTES} bytes"),
                None,
            ));
        }
        let text = String::from_utf8(bytes).map_err(|err| {
            invalid(
                file,
                None,
                format!(
                    "the file is not UTF-8 text (invalid byte at offset {})",
                    err.utf8_error().valid_up_to()
                ),
                None,
            )
        })?;
        let base = file.parent().unwrap_or(Path::new("."));
        Desired::parse(&text, file, base)
    }

    /// Parses and resolves desired-state text; `file` is only used in errors.
    pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Desired, DesiredError> {
        Resolver { text, file, base }.resolve()
    }

    /// The planner's `desired` input.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The resource at this address.
    pub fn resource(&self, address: &str) -> Option<&DesiredResource> {
        self.resources.iter().find(|r| r.address == address)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    target: Option<Spanned<String>>,
    #[serde(default)]
    artifact: BTreeMap<String, Spanned<ArtifactToml>>,
    #[serde(default)]
    instance: BTreeMap<String, Spanned<InstanceToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArtifactToml {
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    digest: Option<Spanned<String>>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    #[serde(default)]
    replace: Option<ReplaceOrder>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstanceToml {
    artifact: Spanned<String>,
    #[serde(default)]
    config: Option<Spanned<Value>>,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    #[serde(default)]
    replace: Option<ReplaceOrder>,
}

struct Resolver<'a> {
    text: &'a str,
    file: &'a Path,
    base: &'a Path,
}

impl Resolver<'_> {
    fn resolve(&self) -> Result<Desired, DesiredError> {
        let parsed: FileToml = toml::from_str(self.text).map_err(|err| {
            let (line, column) = err
                .span()
                .map(|span| self.position(span.start))
                .map_or((None, None), |(l, c)| (Some(l), Some(c)));
            DesiredError::Invalid {
                file: self.file.to_path_buf(),
                line,
                column,
                message: err.message().trim_end().to_string(),
                help: Some(
                    "the desired state has `target`, `[artifact.NAME]` tables (`path`, \
                     `digest`, `uri`, `depends_on`, `replace`) and `[instance.NAME]` tables \
                     (`artifact`, `config`, `files`, `depends_on`, `replace`); see the README"
                        .to_string(),
                ),
            }
        })?;
        let target = match &parsed.target {
            Some(t) => {
                self.check_name(t.get_ref(), "target", t.span())?;
                t.get_ref().clone()
            }
            None => "default".to_string(),
        };
        let mut resources = Vec::new();
        // Where each resource is declared, for errors about its dependencies.
        let mut spans: BTreeMap<String, std::ops::Range<usize>> = BTreeMap::new();
        let mut artifact_refs: BTreeMap<&str, Value> = BTreeMap::new();
        for (name, artifact) in &parsed.artifact {
            self.check_name(name, "artifact", artifact.span())?;
            let (resource, reference) = self.artifact(name, artifact)?;
            artifact_refs.insert(name, reference);
            spans.insert(resource.address.clone(), artifact.span());
            resources.push(resource);
        }
        for (name, instance) in &parsed.instance {
            self.check_name(name, "instance", instance.span())?;
            let resource = self.instance(name, instance, &parsed, &artifact_refs)?;
            spans.insert(resource.address.clone(), instance.span());
            resources.push(resource);
        }
        self.check_dependencies(&parsed, &spans)?;
        resources.sort_by(|a, b| a.address.cmp(&b.address));
        Ok(Desired {
            format: DESIRED_FORMAT.to_string(),
            format_version: DESIRED_FORMAT_VERSION.to_string(),
            target,
            resources,
        })
    }

    fn artifact(
        &self,
        name: &str,
        artifact: &Spanned<ArtifactToml>,
    ) -> Result<(DesiredResource, Value), DesiredError> {
        let field = |f: &str| format!("artifact.{name}.{f}");
        let a = artifact.get_ref();
        let declared = match &a.digest {
            Some(d) if !digest::is_digest(d.get_ref()) => {
                return Err(self.error(
                    d.span(),
                    format!(
                        "field `{}`: `{}` is not a digest",
                        field("digest"),
                        d.get_ref()
                    ),
                    "write `blake3:` and 64 lowercase hex digits, or give `path` and let \
                     provkey compute it",
                ));
            }
            Some(d) => Some(d.get_ref().clone()),
            None => None,
        };
        let computed = match &a.path {
            Some(p) => {
                let (line, column) = self.line_column(p.span());
                let digest =
                    digest::tree_digest(&self.base.join(p.get_ref())).map_err(|source| {
                        DesiredError::Digest {
                            file: self.file.to_path_buf(),
                            line,
                            column,
                            name: name.to_string(),
                            source,
                        }
                    })?;
                Some(digest)
            }
            None => None,
        };
        if let (Some(declared), Some(computed), Some(d)) = (&declared, &computed, &a.digest)
            && declared != computed
        {
            return Err(self.error(
                d.span(),
                format!(
                    "field `{}`: `{declared}` does not match the content of `{}`, whose digest \
                     is `{computed}`",
                    field("digest"),
                    a.path
                        .as_ref()
                        .map(|p| p.get_ref().as_str())
                        .unwrap_or_default()
                ),
                "rebuild the artifact or update `digest` (or drop it: `path` alone suffices)",
            ));
        }
        if declared.is_none() && computed.is_none() && a.uri.is_none() {
            return Err(self.error(
                artifact.span(),
                format!("artifact `{name}` has neither `path`, `digest` nor `uri`"),
                "give `path` (a build output, digest computed by provkey) or `digest`",
            ));
        }
        let digest = computed.or(declared);
        let mut reference = serde_json::Map::new();
        reference.insert("name".into(), json!(name));
        if let Some(d) = &digest {
            reference.insert("digest".into(), json!(d));
        }
        if let Some(u) = &a.uri {
            reference.insert("uri".into(), json!(u));
        }
        let reference = Value::Object(reference);
        let mut own = reference.clone();
        if let (Some(p), Some(map)) = (&a.path, own.as_object_mut()) {
            map.insert("path".into(), json!(p.get_ref()));
        }
        let depends_on = sorted(a.depends_on.iter().map(|d| d.get_ref().clone()));
        Ok((
            DesiredResource {
                address: Kind::Artifact.address(name),
                kind: Kind::Artifact,
                name: name.to_string(),
                depends_on,
                replace: a.replace.unwrap_or(ReplaceOrder::CreateBeforeDestroy),
                artifact_digest: digest,
                config_digest: None,
                attributes: own,
            },
            reference,
        ))
    }

    fn instance(
        &self,
        name: &str,
        instance: &Spanned<InstanceToml>,
        parsed: &FileToml,
        artifact_refs: &BTreeMap<&str, Value>,
    ) -> Result<DesiredResource, DesiredError> {
        let i = instance.get_ref();
        let artifact = i.artifact.get_ref();
        let Some(reference) = artifact_refs.get(artifact.as_str()) else {
            let known: Vec<String> = parsed.artifact.keys().map(|k| format!("`{k}`")).collect();
            return Err(self.error(
                i.artifact.span(),
                format!("field `instance.{name}.artifact`: there is no artifact `{artifact}`"),
                if known.is_empty() {
                    "declare it in an `[artifact.NAME]` table".to_string()
                } else {
                    format!("declared artifacts: {}", known.join(", "))
                },
            ));
        };
        let config = match &i.config {
            Some(c) if !c.get_ref().is_object() => {
                return Err(self.error(
                    c.span(),
                    format!("field `instance.{name}.config` must be a table"),
                    "write `[instance.NAME.config]` with one key per setting",
                ));
            }
            Some(c) => c.get_ref().clone(),
            None => json!({}),
        };
        for path in i.files.keys() {
            if let Err(why) = check_relative_file_path(path) {
                return Err(self.error(
                    instance.span(),
                    format!("field `instance.{name}.files`: {why}"),
                    "use `/`-separated relative paths without `.`, `..` or empty components, \
                     at most 255 bytes a part and 1024 bytes in all",
                ));
            }
        }
        let files = json!(i.files);
        let config_digest = digest::config_digest(&config, &files).map_err(|err| {
            self.error(
                instance.span(),
                format!("instance `{name}`: {err}"),
                "config values are strings, numbers, booleans, arrays and tables",
            )
        })?;
        let mut depends_on: Vec<String> =
            i.depends_on.iter().map(|d| d.get_ref().clone()).collect();
        depends_on.push(Kind::Artifact.address(artifact));
        Ok(DesiredResource {
            address: Kind::Instance.address(name),
            kind: Kind::Instance,
            name: name.to_string(),
            depends_on: sorted(depends_on),
            replace: i.replace.unwrap_or(ReplaceOrder::CreateBeforeDestroy),
            artifact_digest: reference
                .get("digest")
                .and_then(Value::as_str)
                .map(String::from),
            config_digest: Some(config_digest.clone()),
            attributes: json!({
                "artifact": reference,
                "config": config,
                "files": files,
                "config_digest": config_digest,
            }),
        })
    }

    /// Every `depends_on` names a declared resource; the graph has no cycle.
    fn check_dependencies(
        &self,
        parsed: &FileToml,
        spans: &BTreeMap<String, std::ops::Range<usize>>,
    ) -> Result<(), DesiredError> {
        let explicit = parsed
            .artifact
            .iter()
            .map(|(n, a)| (Kind::Artifact.address(n), &a.get_ref().depends_on))
            .chain(
                parsed
                    .instance
                    .iter()
                    .map(|(n, i)| (Kind::Instance.address(n), &i.get_ref().depends_on)),
            );
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (address, deps) in explicit {
            let entry = graph.entry(address.clone()).or_default();
            for dep in deps {
                if !spans.contains_key(dep.get_ref()) {
                    return Err(self.error(
                        dep.span(),
                        format!(
                            "field `{address}.depends_on`: `{}` is not declared in this file",
                            dep.get_ref()
                        ),
                        "name a resource by its address: `artifact.NAME` or `instance.NAME`",
                    ));
                }
                if dep.get_ref() == &address {
                    return Err(self.error(
                        dep.span(),
                        format!("field `{address}.depends_on`: `{address}` depends on itself"),
                        "remove it from its own `depends_on`",
                    ));
                }
                entry.insert(dep.get_ref().clone());
            }
        }
        for (name, instance) in &parsed.instance {
            graph
                .entry(Kind::Instance.address(name))
                .or_default()
                .insert(Kind::Artifact.address(instance.get_ref().artifact.get_ref()));
        }
        if let Some(cycle) = find_cycle(&graph) {
            let first = cycle.first().cloned().unwrap_or_default();
            let span = spans.get(&first).cloned().unwrap_or(0..0);
            let path: Vec<String> = cycle.iter().map(|a| format!("`{a}`")).collect();
            return Err(self.error(
                span,
                format!("dependency cycle: {} → `{first}`", path.join(" → ")),
                "remove one of these dependencies: resources are created in dependency order",
            ));
        }
        Ok(())
    }

    fn check_name(
        &self,
        name: &str,
        what: &str,
        span: std::ops::Range<usize>,
    ) -> Result<(), DesiredError> {
        let ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(())
        } else {
            Err(self.error(
                span,
                format!("{what} name `{name}` is not allowed"),
                "names are 1 to 64 lowercase letters, digits, `-` and `_`, starting with a letter or digit",
            ))
        }
    }

    fn error(
        &self,
        span: std::ops::Range<usize>,
        message: String,
        help: impl Into<String>,
    ) -> DesiredError {
        let (line, column) = self.line_column(span);
        DesiredError::Invalid {
            file: self.file.to_path_buf(),
            line,
            column,
            message,
            help: Some(help.into()),
        }
    }

    fn line_column(&self, span: std::ops::Range<usize>) -> (Option<usize>, Option<usize>) {
        let (l, c) = self.position(span.start);
        (Some(l), Some(c))
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }
}

fn invalid(
    file: &Path,
    line: Option<usize>,
    message: String,
    help: Option<String>,
) -> DesiredError {
    DesiredError::Invalid {
        file: file.to_path_buf(),
        line,
        column: None,
        message,
        help,
    }
}

fn sorted(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let set: BTreeSet<String> = items.into_iter().collect();
    set.into_iter().collect()
}

/// The longest name of one path component, in bytes: Linux's `NAME_MAX`.
pub const MAX_NAME_BYTES: usize = 255;

/// The longest path inside an instance or an artifact, in bytes. The executor places
/// it under `<target-dir>/releases/<name>-<id>/files/` (or `tmp/…` while staging);
/// this bound leaves 3 KiB of the 4 KiB `PATH_MAX` for the target directory's own
/// prefix, so that no path a plan names can fail on the target for its length.
pub const MAX_PATH_BYTES: usize = 1024;

/// The most components a path inside an instance or an artifact has.
pub const MAX_PATH_DEPTH: usize = 64;

/// A path inside an instance: relative, `/`-separated, no `.`/`..`/empty parts,
/// within [`MAX_NAME_BYTES`], [`MAX_PATH_BYTES`] and [`MAX_PATH_DEPTH`].
pub fn is_relative_file_path(path: &str) -> bool {
    check_relative_file_path(path).is_ok()
}

/// Why `path` is not a path inside an instance or an artifact, if it is not one (see
/// [`is_relative_file_path`]).
pub fn check_relative_file_path(path: &str) -> Result<(), String> {
    let shown = || {
        let mut s: String = path.chars().take(80).collect::<String>();
        if s.len() < path.len() {
            s.push('…');
        }
        s.escape_default().to_string()
    };
    if path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path.contains('\0')
        || !path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
    {
        return Err(format!(
            "`{}` is not a relative path: use `/`-separated parts without `.`, `..`, \
             empty parts, backslashes or NUL",
            shown()
        ));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "`{}` is {} bytes long, more than the {MAX_PATH_BYTES} a path may have",
            shown(),
            path.len()
        ));
    }
    if let Some(long) = path.split('/').find(|c| c.len() > MAX_NAME_BYTES) {
        return Err(format!(
            "`{}` has a part of {} bytes, more than the {MAX_NAME_BYTES} a file name may have",
            shown(),
            long.len()
        ));
    }
    let depth = path.split('/').count();
    if depth > MAX_PATH_DEPTH {
        return Err(format!(
            "`{}` has {depth} parts, more than the {MAX_PATH_DEPTH} a path may have",
            shown()
        ));
    }
    Ok(())
}

/// Checks every path of the `files` table of an instance's attributes (a plan's
/// `after`, a state's `attributes`): what the executor will write must be writable
/// on any target, so that a plan is refused before it is signed, not after a claim.
pub fn check_instance_files(attributes: &Value) -> Result<(), String> {
    let Some(files) = attributes.get("files") else {
        return Ok(());
    };
    let files = files
        .as_object()
        .ok_or_else(|| "`files` is not a table".to_owned())?;
    for path in files.keys() {
        check_relative_file_path(path).map_err(|e| format!("file {e}"))?;
    }
    Ok(())
}

/// The resources of one dependency cycle, in order, when there is one.
pub fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    for start in graph.keys() {
        if marks.contains_key(start.as_str()) {
            continue;
        }
        // Iterative depth-first search; `stack` is the current path.
        let mut stack: Vec<(&str, Vec<&str>)> = vec![(start, deps_of(graph, start))];
        marks.insert(start, Mark::Open);
        while let Some((node, pending)) = stack.last_mut() {
            let node = *node;
            match pending.pop() {
                Some(next) => match marks.get(next) {
                    Some(Mark::Open) => {
                        let from = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                        return Some(stack[from..].iter().map(|(n, _)| n.to_string()).collect());
                    }
                    Some(Mark::Done) => {}
                    None => {
                        marks.insert(next, Mark::Open);
                        stack.push((next, deps_of(graph, next)));
                    }
                },
                None => {
                    marks.insert(node, Mark::Done);
                    stack.pop();
                }
            }
        }
    }
    None
}

fn deps_of<'a>(graph: &'a BTreeMap<String, BTreeSet<String>>, node: &str) -> Vec<&'a str> {
    graph
        .get(node)
        .map(|deps| deps.iter().rev().map(String::as_str).collect())
        .unwrap_or_default()
}
