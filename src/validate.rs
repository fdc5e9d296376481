//! Validating config files before anything reloads: parse by format, JSON Schema, external command.
//!
//! `watch` runs this on every change and `check` runs it in CI; both must agree,
//! so everything that decides validity lives here.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use saphyr_parser::ScalarStyle;
use serde_json::Value as Json;

use crate::config::ConfigFile;
use crate::manifest::node::{parse_documents, Limits, Node, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Toml,
}

impl Format {
    /// The format a file's extension implies, if any.
    pub fn of(path: &str) -> Option<Format> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Ok(Format::Yaml),
            "json" => Ok(Format::Json),
            "toml" => Ok(Format::Toml),
            _ => Err(format!("`{s}` is not a format (yaml, json or toml)")),
        }
    }
}

/// Why a config is not valid, pointing at the place when it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// What is wrong, in words that quote no value from the file.
    pub reason: String,
    /// The validator's own words, which may quote values (a Secret's, say).
    pub detail: Option<String>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.location(f)?;
        write!(f, ": {}", self.reason)?;
        match &self.detail {
            Some(detail) => write!(f, ": {detail}"),
            None => Ok(()),
        }
    }
}

impl Invalid {
    pub fn new(file: &str, reason: impl Into<String>) -> Self {
        Invalid {
            file: file.to_string(),
            line: None,
            column: None,
            reason: reason.into(),
            detail: None,
        }
    }

    fn location(&self, f: &mut impl fmt::Write) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }

    /// Where and what, without the detail: fit for places readable by more people than the config.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = self.location(&mut out);
        out.push_str(": ");
        out.push_str(&self.reason);
        out
    }
}

/// A `--schema FILE=SCHEMA.json` pairing.
#[derive(Debug, Clone)]
pub struct SchemaSpec {
    /// A file name relative to its folder (`config.yaml`) or a full path.
    pub file: String,
    pub schema: PathBuf,
}

impl FromStr for SchemaSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (file, schema) = s
            .split_once('=')
            .filter(|(f, p)| !f.is_empty() && !p.is_empty())
            .ok_or_else(|| {
                format!("`{s}` should be FILE=SCHEMA.json, e.g. config.yaml=/schemas/config.json")
            })?;
        Ok(SchemaSpec {
            file: file.to_string(),
            schema: PathBuf::from(schema),
        })
    }
}

/// An external validator: `promtool check config {dir}/prometheus.yml`.
#[derive(Debug, Clone)]
pub struct ValidateCommand {
    argv: Vec<String>,
    pub timeout: Duration,
}

impl ValidateCommand {
    /// Splits like a shell would (quotes, escapes) but runs no shell.
    pub fn parse(line: &str, timeout: Duration) -> Result<Self, String> {
        let argv = shell_words::split(line).map_err(|e| format!("cannot split `{line}`: {e}"))?;
        if argv.is_empty() {
            return Err("the validate command is empty".into());
        }
        Ok(ValidateCommand { argv, timeout })
    }

    /// The argv with `{dir}` replaced by the folder that holds the candidate files.
    pub fn argv(&self, dir: &Path) -> Vec<String> {
        let dir = dir.display().to_string();
        self.argv.iter().map(|a| a.replace("{dir}", &dir)).collect()
    }
}

/// Everything that decides whether a set of config files is valid.
pub struct Validator {
    format: Option<Format>,
    schemas: Vec<(String, jsonschema::Validator)>,
    pub command: Option<ValidateCommand>,
}

impl Validator {
    /// Loads and compiles the schemas; a broken schema is a usage error, reported at start.
    pub fn new(
        format: Option<Format>,
        schemas: &[SchemaSpec],
        command: Option<ValidateCommand>,
    ) -> anyhow::Result<Self> {
        let mut compiled = Vec::new();
        for spec in schemas {
            let text = std::fs::read_to_string(&spec.schema)
                .map_err(|e| anyhow::anyhow!("reading schema {}: {e}", spec.schema.display()))?;
            let json: Json = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!("schema {} is not JSON: {e}", spec.schema.display())
            })?;
            let validator = jsonschema::validator_for(&json).map_err(|e| {
                anyhow::anyhow!(
                    "schema {} is not a valid JSON Schema: {e}",
                    spec.schema.display()
                )
            })?;
            compiled.push((spec.file.clone(), validator));
        }
        Ok(Validator {
            format,
            schemas: compiled,
            command,
        })
    }

    /// Parses every file and applies the schemas.
    pub fn check_files(&self, files: &[ConfigFile]) -> Vec<Invalid> {
        let mut problems: Vec<Invalid> = self
            .schemas
            .iter()
            .filter(|(file, _)| !files.iter().any(|f| &f.path == file || &f.name == file))
            .map(|(file, _)| Invalid::new(file, "is missing, but a --schema names it"))
            .collect();
        for ConfigFile { path, name, bytes } in files {
            let schema = self
                .schemas
                .iter()
                .find(|(file, _)| file == path || file == name)
                .map(|(_, v)| v);
            let format = self.format.or_else(|| Format::of(name));
            let Some(format) = format else {
                if schema.is_some() {
                    problems.push(Invalid::new(
                        path,
                        "has a schema but no known format (use --format)",
                    ));
                }
                continue;
            };
            let Ok(text) = std::str::from_utf8(bytes) else {
                problems.push(Invalid::new(path, "is not UTF-8 text"));
                continue;
            };
            problems.extend(check_text(path, text, format, schema));
        }
        problems
    }
}

/// Parses one file and applies its schema.
pub fn check_text(
    path: &str,
    text: &str,
    format: Format,
    schema: Option<&jsonschema::Validator>,
) -> Vec<Invalid> {
    match format {
        Format::Yaml => {
            match parse_documents(text, Limits::default()).map_err(|e| e.at_content_end(text)) {
                Err(e) => vec![Invalid {
                    file: path.to_string(),
                    line: Some(e.pos.line),
                    column: Some(e.pos.column),
                    reason: e.message,
                    detail: None,
                }],
                Ok(docs) => {
                    let Some(schema) = schema else {
                        return Vec::new();
                    };
                    let mut problems = Vec::new();
                    for doc in docs.iter() {
                        let json = doc.as_ref().map_or(Json::Null, to_json);
                        for error in schema.iter_errors(&json) {
                            let pointer = error.instance_path().to_string();
                            let node = doc.as_ref().and_then(|d| find(d, &pointer));
                            problems.push(Invalid {
                                file: path.to_string(),
                                line: node.map(|n| n.start.line),
                                column: node.map(|n| n.start.column),
                                reason: schema_reason(&pointer),
                                detail: Some(error.to_string()),
                            });
                        }
                    }
                    problems
                }
            }
        }
        Format::Json => match serde_json::from_str::<Json>(text) {
            Err(e) => vec![Invalid {
                file: path.to_string(),
                line: Some(e.line()),
                column: Some(e.column()),
                reason: e.to_string(),
                detail: None,
            }],
            Ok(json) => schema_errors(path, &json, schema),
        },
        Format::Toml => match toml::from_str::<toml::Table>(text) {
            Err(e) => {
                let (line, column) = e.span().map_or((None, None), |span| {
                    let (l, c) = line_column(text, span.start);
                    (Some(l), Some(c))
                });
                vec![Invalid {
                    file: path.to_string(),
                    line,
                    column,
                    reason: e.message().to_string(),
                    detail: None,
                }]
            }
            Ok(table) => match serde_json::to_value(table) {
                Ok(json) => schema_errors(path, &json, schema),
                Err(e) => vec![Invalid::new(
                    path,
                    format!("cannot check against the schema: {e}"),
                )],
            },
        },
    }
}

fn schema_errors(path: &str, json: &Json, schema: Option<&jsonschema::Validator>) -> Vec<Invalid> {
    let Some(schema) = schema else {
        return Vec::new();
    };
    schema
        .iter_errors(json)
        .map(|e| Invalid {
            detail: Some(e.to_string()),
            ..Invalid::new(path, schema_reason(&e.instance_path().to_string()))
        })
        .collect()
}

/// JSON Schema messages quote the offending value, so they go in the detail; the pointer names keys only.
fn schema_reason(pointer: &str) -> String {
    if pointer.is_empty() {
        "schema".to_string()
    } else {
        format!("schema: at {pointer}")
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Follows a JSON pointer through the YAML tree, to report a schema error's line.
fn find<'n, 'a>(node: &'n Node<'a>, pointer: &str) -> Option<&'n Node<'a>> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .try_fold(node, |node, segment| match &node.value {
            Value::Mapping(..) => node.get(&segment),
            Value::Sequence(items, _) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            Value::Scalar(..) => None,
        })
}

/// Converts a YAML tree to JSON with YAML 1.2 core-schema typing, so schemas see numbers and booleans.
pub fn to_json(node: &Node<'_>) -> Json {
    match &node.value {
        Value::Scalar(s, ScalarStyle::Plain) => plain_scalar(s),
        Value::Scalar(s, _) => Json::String(s.to_string()),
        Value::Sequence(items, _) => Json::Array(items.iter().map(to_json).collect()),
        Value::Mapping(entries, _) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match k.as_str() {
                        Some(s) => s.to_string(),
                        None => to_json(k).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

fn plain_scalar(s: &str) -> Json {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Json::Null,
        "true" | "True" | "TRUE" => return Json::Bool(true),
        "false" | "False" | "FALSE" => return Json::Bool(false),
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Json::from(i);
        }
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Json::from(i);
        }
    }
    if let Some(oct) = s.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Json::from(i);
        }
    }
    let looks_float = s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if looks_float {
        if let Some(n) = s.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            return Json::Number(n);
        }
    }
    Json::String(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::run_command;

    fn schema(json: &str) -> jsonschema::Validator {
        jsonschema::validator_for(&serde_json::from_str(json).expect("json")).expect("schema")
    }

    #[test]
    fn formats_from_extensions() {
        assert_eq!(Format::of("a/config.YAML"), Some(Format::Yaml));
        assert_eq!(Format::of("x.yml"), Some(Format::Yaml));
        assert_eq!(Format::of("x.json"), Some(Format::Json));
        assert_eq!(Format::of("x.toml"), Some(Format::Toml));
        assert_eq!(Format::of("nginx.conf"), None);
        assert_eq!(Format::of("Makefile"), None);
    }

    #[test]
    fn parse_errors_point_at_the_line() {
        let yaml = check_text("c.yaml", "a: 1\nb: [\n", Format::Yaml, None);
        assert_eq!(yaml.len(), 1);
        assert_eq!(yaml[0].file, "c.yaml");
        assert!(yaml[0].line.is_some());
        let json = check_text("c.json", "{\"a\": 1,\n \"b\": }", Format::Json, None);
        assert_eq!((json[0].line, json[0].column), (Some(2), Some(7)));
        let toml = check_text("c.toml", "a = 1\nb = \n", Format::Toml, None);
        assert_eq!(toml[0].line, Some(2));
        assert!(check_text("c.yaml", "a:\n\tb: 1\n", Format::Yaml, None)[0]
            .reason
            .contains("tab"));
    }

    #[test]
    fn schemas_apply_to_yaml_with_typed_scalars_and_lines() {
        let s = schema(
            r#"{"type": "object", "properties": {"port": {"type": "integer"}, "debug": {"type": "boolean"}, "name": {"type": "string"}}, "required": ["port"]}"#,
        );
        assert!(check_text(
            "c.yaml",
            "port: 8080\ndebug: true\nname: '123'\n",
            Format::Yaml,
            Some(&s)
        )
        .is_empty());
        let problems = check_text(
            "c.yaml",
            "debug: true\nport: \"8080\"\n",
            Format::Yaml,
            Some(&s),
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, Some(2));
        assert!(
            problems[0].reason.contains("/port"),
            "{}",
            problems[0].reason
        );
        assert_eq!(
            check_text("c.yaml", "debug: true\n", Format::Yaml, Some(&s)).len(),
            1
        );
        assert_eq!(
            check_text("c.json", "{\"port\": \"x\"}", Format::Json, Some(&s)).len(),
            1
        );
        assert!(check_text("c.toml", "port = 1\n", Format::Toml, Some(&s)).is_empty());
    }

    #[test]
    fn core_schema_scalars() {
        assert_eq!(plain_scalar("42"), Json::from(42));
        assert_eq!(plain_scalar("-7"), Json::from(-7));
        assert_eq!(plain_scalar("0x1F"), Json::from(31));
        assert_eq!(plain_scalar("1.5"), serde_json::json!(1.5));
        assert_eq!(plain_scalar("~"), Json::Null);
        assert_eq!(plain_scalar("yes"), Json::String("yes".into()));
        assert_eq!(plain_scalar("1.2.3"), Json::String("1.2.3".into()));
        assert_eq!(plain_scalar("30s"), Json::String("30s".into()));
    }

    #[test]
    fn validator_matches_schemas_by_name_or_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let schema_path = dir.path().join("s.json");
        std::fs::write(&schema_path, r#"{"type": "object", "required": ["x"]}"#).expect("write");
        let v = Validator::new(
            None,
            &[SchemaSpec {
                file: "app.yaml".into(),
                schema: schema_path,
            }],
            None,
        )
        .expect("validator");
        let file = |path: &str, name: &str, bytes: &[u8]| ConfigFile {
            path: path.into(),
            name: name.into(),
            bytes: bytes.to_vec(),
        };
        let mut files = vec![
            file("/etc/app/app.yaml", "app.yaml", &b"y: 1\n"[..]),
            file("/etc/app/other.yaml", "other.yaml", &b"y: 1\n"[..]),
            file("/etc/app/blob.bin", "blob.bin", &[0xff, 0][..]),
        ];
        let problems = v.check_files(&files);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].file, "/etc/app/app.yaml");
        files.remove(0);
        let problems = v.check_files(&files);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].reason.contains("missing"),
            "{}",
            problems[0].reason
        );
        assert!(v.command.is_none());
    }

    #[test]
    fn broken_schemas_are_refused_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json");
        std::fs::write(&path, r#"{"type": 12}"#).expect("write");
        let spec = SchemaSpec {
            file: "a.yaml".into(),
            schema: path,
        };
        assert!(Validator::new(None, &[spec], None).is_err());
        assert!("nofile".parse::<SchemaSpec>().is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn commands_run_without_a_shell_and_time_out() {
        let cmd =
            ValidateCommand::parse("sh -c 'echo checked {dir}; exit 3'", Duration::from_secs(5))
                .expect("parse");
        let outcome = run_command(&cmd.argv(Path::new("/tmp/x")), cmd.timeout).await;
        assert!(!outcome.success);
        assert_eq!(outcome.output, "checked /tmp/x");
        assert!(outcome.status.contains('3'), "{}", outcome.status);

        let ok = run_command(&["true".to_string()], Duration::from_secs(5)).await;
        assert!(ok.success);

        let slow = run_command(
            &["sleep".to_string(), "5".to_string()],
            Duration::from_millis(100),
        )
        .await;
        assert!(
            !slow.success && slow.status.contains("timed out"),
            "{}",
            slow.status
        );

        let missing = run_command(
            &["/nonexistent/validator".to_string()],
            Duration::from_secs(1),
        )
        .await;
        assert!(!missing.success && missing.status.contains("cannot start"));
        assert!(ValidateCommand::parse("unbalanced 'quote", Duration::from_secs(1)).is_err());
    }
}
