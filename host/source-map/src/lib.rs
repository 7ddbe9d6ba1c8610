//! Maps Terraform resource addresses to the `.tf` lines that declare them, so that
//! review comments land on the configuration a pull request changes instead of on
//! line 1 of a generated `plan.json`.
//!
//! [`SourceMap::load`] parses the `.tf` files of a configuration root and, through
//! module calls whose `source` is a local path, of every module it calls. Then
//! [`SourceMap::locate`] answers, for an address such as
//! `module.net["eu"].aws_security_group.web[0]`, the file and line of its
//! `resource` block (or of the attribute a finding names), or of the outermost
//! module call that leads out of the local files (a registry or git module).
//!
//! Instance keys (`count`, `for_each`) are dropped: every instance is declared by
//! the same block.

mod address;

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use hcl_edit::Span as _;
use hcl_edit::structure::{Block, BlockLabel, Body};

pub use address::{Address, Mode};

/// How deep local module calls are followed (Terraform itself has no limit, but a
/// call cycle through symlinks must end).
const MAX_MODULE_DEPTH: usize = 64;

/// What can go wrong reading a configuration.
#[derive(Debug, thiserror::Error)]
pub enum SourceMapError {
    #[error("cannot read the Terraform configuration `{}`: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` holds no `.tf` file", .path.display())]
    NoConfiguration { path: PathBuf },
    #[error("`{}` is not valid HCL at line {line}, column {column}: {message}", .path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

impl SourceMapError {
    /// What the user can do about it.
    pub fn help(&self) -> &'static str {
        match self {
            SourceMapError::Read { .. } | SourceMapError::NoConfiguration { .. } => {
                "pass the directory of the Terraform configuration the plan was made from with `--source-dir DIR`"
            }
            SourceMapError::Parse { .. } => {
                "run `terraform validate` there; findings point at the plan file until the configuration parses"
            }
        }
    }
}

/// Where a finding is declared in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLocation<'a> {
    /// The file, as the configuration root was given joined with the file's path
    /// below it (relative when the root was relative), as reports print it.
    pub file: &'a str,
    /// 1-based.
    pub line: usize,
}

/// The declarations of a configuration root and of the local modules it calls.
#[derive(Debug, Default)]
pub struct SourceMap {
    /// Modules by their directory (lexically normalized); the root is `root`.
    modules: HashMap<PathBuf, Module>,
    root: PathBuf,
}

#[derive(Debug, Default)]
struct Module {
    /// `(mode, type, name)` to the block's declaration.
    resources: HashMap<(Mode, String, String), Declaration>,
    /// Module call name to its declaration and, for a local source, its directory.
    calls: HashMap<String, (Declaration, Option<PathBuf>)>,
}

#[derive(Debug, Clone)]
struct Declaration {
    /// The file, as reports print it.
    file: String,
    /// 1-based line of the block.
    line: usize,
    /// Top-level attribute or nested block name to its line.
    attributes: BTreeMap<String, usize>,
}

impl SourceMap {
    /// Reads the configuration root `dir` and every module it calls by a local path.
    /// A called module that cannot be read or parsed is skipped (its findings point
    /// at the module call); the root itself must read and parse.
    pub fn load(dir: &Path) -> Result<SourceMap, SourceMapError> {
        let root = normalize(dir);
        let module = read_module(&root)?;
        if module.is_none() {
            return Err(SourceMapError::NoConfiguration { path: root });
        }
        let mut map = SourceMap {
            modules: HashMap::new(),
            root: root.clone(),
        };
        let mut pending = vec![(root, module.unwrap_or_default(), 0usize)];
        while let Some((dir, module, depth)) = pending.pop() {
            if depth < MAX_MODULE_DEPTH {
                for (_, source) in module.calls.values() {
                    let Some(source) = source else { continue };
                    if *source == dir
                        || map.modules.contains_key(source)
                        || pending.iter().any(|(d, _, _)| d == source)
                    {
                        continue;
                    }
                    if let Ok(Some(called)) = read_module(source) {
                        pending.push((source.clone(), called, depth + 1));
                    }
                }
            }
            map.modules.insert(dir, module);
        }
        Ok(map)
    }

    /// Whether `dir` holds a Terraform configuration (a `.tf` file).
    pub fn is_configuration(dir: &Path) -> bool {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|entry| is_tf_file(&entry.path()))
        })
    }

    /// The declaration of `address`, at the line of `attribute` (a name or a JSON
    /// Pointer whose first segment names it) when the block sets it.
    pub fn locate(&self, address: &str, attribute: Option<&str>) -> Option<SourceLocation<'_>> {
        let address = Address::parse(address)?;
        let mut dir = &self.root;
        let mut last_call: Option<&Declaration> = None;
        for call in &address.modules {
            let module = self.modules.get(dir)?;
            let (declaration, source) = module.calls.get(call)?;
            match source.as_ref().filter(|s| self.modules.contains_key(*s)) {
                Some(source) => {
                    last_call = Some(declaration);
                    dir = source;
                }
                // A registry or git module, or one that did not read: the call is
                // the closest line a reviewer can see.
                None => return Some(declaration.at(None)),
            }
        }
        let key = (address.mode, address.resource_type, address.name);
        match self.modules.get(dir).and_then(|m| m.resources.get(&key)) {
            Some(declaration) => Some(declaration.at(attribute)),
            None => last_call.map(|call| call.at(None)),
        }
    }
}

impl Declaration {
    fn at(&self, attribute: Option<&str>) -> SourceLocation<'_> {
        let line = attribute
            .and_then(first_segment)
            .and_then(|name| self.attributes.get(name))
            .copied()
            .unwrap_or(self.line);
        SourceLocation {
            file: &self.file,
            line,
        }
    }
}

/// `ami` from `ami`, `/ingress/0/cidr_blocks`, `ingress.0.cidr_blocks` or `tags["Name"]`.
fn first_segment(attribute: &str) -> Option<&str> {
    let trimmed = attribute.strip_prefix('/').unwrap_or(attribute);
    trimmed
        .split(['/', '.', '['])
        .next()
        .filter(|name| !name.is_empty())
}

fn is_tf_file(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "tf") && path.is_file()
}

/// Parses every `.tf` file of `dir`; `None` when it has none.
fn read_module(dir: &Path) -> Result<Option<Module>, SourceMapError> {
    let read_err = |source| SourceMapError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(Result::ok)
        // `dir` is normalized, so `./main.tf` is named `main.tf`, as a review tool names it.
        .map(|entry| normalize(&dir.join(entry.file_name())))
        .filter(|path| is_tf_file(path))
        .collect();
    if files.is_empty() {
        return Ok(None);
    }
    // Terraform reads files in name order; the first declaration wins here too.
    files.sort();
    let mut module = Module::default();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| SourceMapError::Read {
            path: path.clone(),
            source,
        })?;
        let body = hcl_edit::parser::parse_body(&text).map_err(|err| SourceMapError::Parse {
            path: path.clone(),
            line: err.location().line(),
            column: err.location().column(),
            message: err.message().to_string(),
        })?;
        let lines = LineIndex::new(&text);
        collect(&body, &path, &lines, dir, &mut module);
    }
    Ok(Some(module))
}

fn collect(body: &Body, file: &Path, lines: &LineIndex, dir: &Path, module: &mut Module) {
    for block in body.blocks() {
        let labels: Vec<&str> = block.labels.iter().map(label_str).collect();
        match (block.ident.as_str(), labels.as_slice()) {
            ("resource", [resource_type, name]) | ("data", [resource_type, name]) => {
                let mode = if block.ident.as_str() == "data" {
                    Mode::Data
                } else {
                    Mode::Managed
                };
                let key = (mode, resource_type.to_string(), name.to_string());
                module
                    .resources
                    .entry(key)
                    .or_insert_with(|| declaration(block, file, lines));
            }
            ("module", [name]) => {
                let source = block
                    .body
                    .get_attribute("source")
                    .and_then(|attr| attr.value.as_str())
                    .filter(|source| source.starts_with("./") || source.starts_with("../"))
                    .map(|source| normalize(&dir.join(source)));
                module
                    .calls
                    .entry(name.to_string())
                    .or_insert_with(|| (declaration(block, file, lines), source));
            }
            _ => {}
        }
    }
}

fn label_str(label: &BlockLabel) -> &str {
    match label {
        BlockLabel::Ident(ident) => ident.as_str(),
        BlockLabel::String(string) => string.as_str(),
    }
}

fn declaration(block: &Block, file: &Path, lines: &LineIndex) -> Declaration {
    let line = block.span().map_or(1, |span| lines.line(span.start));
    let mut attributes = BTreeMap::new();
    for structure in block.body.iter() {
        let (name, span) = if let Some(attr) = structure.as_attribute() {
            (attr.key.as_str().to_string(), attr.span())
        } else if let Some(nested) = structure.as_block() {
            (nested.ident.as_str().to_string(), nested.span())
        } else {
            continue;
        };
        if let Some(span) = span {
            attributes
                .entry(name)
                .or_insert_with(|| lines.line(span.start));
        }
    }
    Declaration {
        file: file.display().to_string(),
        line,
        attributes,
    }
}

/// Byte offset to 1-based line.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }
}

/// Removes `.` and resolves `..` lexically, keeping the path relative when it was:
/// `./infra/../modules/net` is `modules/net`, as a reviewer's tools name it.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let popped =
                    matches!(out.components().next_back(), Some(Component::Normal(_))) && out.pop();
                if !popped && !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[test]
    fn normalize_keeps_relative_paths_relative() {
        assert_eq!(
            normalize(Path::new("./infra/../modules/net")),
            PathBuf::from("modules/net")
        );
        assert_eq!(normalize(Path::new(".")), PathBuf::from("."));
        assert_eq!(normalize(Path::new("../x/./y")), PathBuf::from("../x/y"));
        assert_eq!(normalize(Path::new("/a/b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/..")), PathBuf::from("/"));
    }

    #[test]
    fn line_index_counts_from_one() {
        let index = LineIndex::new("a\nbc\n\nd");
        assert_eq!(index.line(0), 1);
        assert_eq!(index.line(2), 2);
        assert_eq!(index.line(5), 3);
        assert_eq!(index.line(6), 4);
    }

    #[test]
    fn first_segment_of_each_attribute_form() {
        for (attribute, name) in [
            ("ami", "ami"),
            ("/ingress/0/cidr_blocks", "ingress"),
            ("ingress.0.cidr_blocks", "ingress"),
            ("tags[\"Name\"]", "tags"),
        ] {
            assert_eq!(first_segment(attribute), Some(name));
        }
        assert_eq!(first_segment("/"), None);
    }

    fn write(dir: &Path, file: &str, text: &str) {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn resources_attributes_local_modules_and_remote_modules() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(
            root,
            "main.tf",
            "# comment\n\
             resource \"terraform_data\" \"web\" {\n\
             \x20 count = 2\n\
             \x20 input = \"x\"\n\
             \x20 lifecycle {\n\
             \x20   create_before_destroy = true\n\
             \x20 }\n\
             }\n\
             \n\
             module \"net\" {\n\
             \x20 source   = \"./modules/net\"\n\
             \x20 for_each = toset([\"a\", \"b\"])\n\
             }\n\
             module \"remote\" {\n\
             \x20 source = \"hashicorp/consul/aws\"\n\
             }\n",
        );
        write(
            root,
            "modules/net/net.tf",
            "\n\ndata \"terraform_data\" \"d\" {}\n\
             resource \"terraform_data\" \"rule\" {\n\
             \x20 input = 1\n\
             }\n",
        );
        let map = SourceMap::load(root).unwrap();
        let main = root.join("main.tf").display().to_string();
        let net = root.join("modules/net/net.tf").display().to_string();
        fn at(file: &str, line: usize) -> Option<SourceLocation<'_>> {
            Some(SourceLocation { file, line })
        }

        assert_eq!(map.locate("terraform_data.web[1]", None), at(&main, 2));
        assert_eq!(
            map.locate("terraform_data.web[0]", Some("input")),
            at(&main, 4)
        );
        assert_eq!(
            map.locate("terraform_data.web", Some("/lifecycle/0")),
            at(&main, 5)
        );
        assert_eq!(
            map.locate("terraform_data.web", Some("unset")),
            at(&main, 2)
        );
        assert_eq!(
            map.locate("module.net[\"a\"].terraform_data.rule", Some("input")),
            at(&net, 5)
        );
        assert_eq!(
            map.locate("module.net[\"b\"].data.terraform_data.d", None),
            at(&net, 3)
        );
        // Undeclared in the module: the call that leads there.
        assert_eq!(
            map.locate("module.net[\"a\"].terraform_data.gone", None),
            at(&main, 10)
        );
        // A registry module: its call.
        assert_eq!(
            map.locate("module.remote.aws_instance.x", None),
            at(&main, 14)
        );
        assert_eq!(map.locate("terraform_data.absent", None), None);
        assert_eq!(map.locate("not an address", None), None);
    }

    #[test]
    fn a_configuration_that_does_not_parse_is_named_with_its_position() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "bad.tf", "resource \"a\" \"b\" {\n  x = \n");
        let err = SourceMap::load(tmp.path()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("bad.tf"), "{text}");
        assert!(text.contains("line 2"), "{text}");
    }

    #[test]
    fn a_directory_without_tf_files_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            SourceMap::load(tmp.path()),
            Err(SourceMapError::NoConfiguration { .. })
        ));
        assert!(matches!(
            SourceMap::load(&tmp.path().join("missing")),
            Err(SourceMapError::Read { .. })
        ));
        assert!(!SourceMap::is_configuration(tmp.path()));
    }

    #[test]
    fn a_module_cycle_ends() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "main.tf",
            "module \"self\" {\n  source = \"./\"\n}\n",
        );
        let map = SourceMap::load(tmp.path()).unwrap();
        let main = tmp.path().join("main.tf").display().to_string();
        assert_eq!(
            map.locate("module.self.module.self.terraform_data.x", None),
            Some(SourceLocation {
                file: &main,
                line: 1
            })
        );
    }
}
