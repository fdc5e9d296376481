//! The one judge of validity: whether a set of config files may reach the app.
//!
//! `watch` runs this on every change and `check` runs it in CI; both must agree,
//! so everything that decides validity lives here: parsing by format, JSON
//! Schemas (per file, and per whole ConfigMap/Secret in `check --manifests`)
//! and the external validator's verdict. How a folder is read (and which read
//! errors make a config invalid) is `config`'s part.

mod command;
mod format;
mod invalid;
mod schema;

pub use command::ValidateCommand;
pub use format::{find as find_node, to_json, yaml_to_json_fast, Format};
pub use invalid::Invalid;
pub use schema::{load as load_schema, SchemaError, SchemaSpec};

use std::borrow::Borrow;

use crate::config::ConfigFile;
use format::parse;

/// Everything that decides whether a set of config files is valid.
pub struct Validator {
    format: Option<Format>,
    /// Schemas for one file, by its name or path.
    file_schemas: Vec<(String, jsonschema::Validator)>,
    /// Schemas for a whole object's data, by `configmap/NAME` or `secret/NAME`.
    object_schemas: Vec<(String, jsonschema::Validator)>,
    /// A schema for every file given (a policy rule's, applied to the keys it selects).
    every_file_schema: Option<jsonschema::Validator>,
    command: Option<ValidateCommand>,
}

impl Validator {
    /// Loads and compiles the schemas; a broken schema is a usage error, reported at start.
    pub fn new(
        format: Option<Format>,
        schemas: &[SchemaSpec],
        command: Option<ValidateCommand>,
    ) -> Result<Self, SchemaError> {
        let mut file_schemas = Vec::new();
        let mut object_schemas = Vec::new();
        for spec in schemas {
            let compiled = schema::load(&spec.schema)?;
            if schema::names_object(&spec.file) {
                object_schemas.push((spec.file.clone(), compiled));
            } else {
                file_schemas.push((spec.file.clone(), compiled));
            }
        }
        Ok(Validator {
            format,
            file_schemas,
            object_schemas,
            every_file_schema: None,
            command,
        })
    }

    /// A policy rule's checks: one format (by extension when `None`), one schema for every
    /// file given, and the external command.
    pub fn for_every_file(
        format: Option<Format>,
        schema: Option<jsonschema::Validator>,
        command: Option<ValidateCommand>,
    ) -> Self {
        Validator {
            format,
            file_schemas: Vec::new(),
            object_schemas: Vec::new(),
            every_file_schema: schema,
            command,
        }
    }

    /// The external validator, if any: it needs the files in a folder, and runs last.
    pub fn command(&self) -> Option<&ValidateCommand> {
        self.command.as_ref()
    }

    /// Parses every file and applies the schemas: every problem but the external validator's.
    ///
    /// Files are borrowed (`&[ConfigFile]` or `&[&ConfigFile]`): a rule that selects some keys
    /// of an object checks them without copying their bytes.
    pub fn check_files<F: Borrow<ConfigFile>>(&self, files: &[F]) -> Vec<Invalid> {
        let mut problems: Vec<Invalid> = self
            .file_schemas
            .iter()
            .filter(|(file, _)| {
                !files
                    .iter()
                    .map(Borrow::borrow)
                    .any(|f: &ConfigFile| &f.path == file || &f.name == file)
            })
            .map(|(file, _)| Invalid::new(file, "is missing, but a --schema names it"))
            .collect();
        for file in files {
            problems.extend(self.check_file(file.borrow()));
        }
        for (object, schema) in &self.object_schemas {
            problems.extend(schema::object_errors(object, files, schema));
        }
        problems
    }

    fn check_file(&self, file: &ConfigFile) -> Vec<Invalid> {
        let path = file.path.as_str();
        let schema = self
            .file_schemas
            .iter()
            .find(|(name, _)| name == path || *name == file.name)
            .map(|(_, v)| v)
            .or(self.every_file_schema.as_ref());
        let Some(format) = self.format.or_else(|| Format::of(&file.name)) else {
            return match schema {
                Some(_) => vec![Invalid::new(
                    path,
                    "has a schema but no known format (use --format)",
                )],
                None => Vec::new(),
            };
        };
        let Ok(text) = std::str::from_utf8(&file.bytes) else {
            return vec![Invalid::new(path, "is not UTF-8 text")];
        };
        check_text(path, text, format, schema)
    }
}

/// Parses one file and applies its schema.
fn check_text(
    path: &str,
    text: &str,
    format: Format,
    schema: Option<&jsonschema::Validator>,
) -> Vec<Invalid> {
    // The common case, a YAML text the fast path reads that the schema accepts, needs no
    // tree: the tree only serves to name the line of an error, so it is built when one shows.
    if let (Format::Yaml, Some(schema)) = (format, schema) {
        if format::yaml_to_json_fast(text)
            .is_some_and(|docs| docs.iter().all(|d| schema.is_valid(d)))
        {
            return Vec::new();
        }
    }
    match (parse(path, text, format), schema) {
        (Err(problem), _) => vec![problem],
        (Ok(parsed), Some(schema)) => schema::errors(path, &parsed, schema),
        (Ok(_), None) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(json: &str) -> jsonschema::Validator {
        jsonschema::validator_for(&serde_json::from_str(json).expect("json")).expect("schema")
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
    fn validator_matches_schemas_by_name_or_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let schema_path = dir.path().join("s.json");
        std::fs::write(&schema_path, r#"{"type": "object", "required": ["x"]}"#).expect("write");
        let v = Validator::new(
            None,
            &[SchemaSpec {
                file: "app.yaml".into(),
                schema: schema_path.clone(),
            }],
            None,
        )
        .expect("validator");
        let file = |path: &str, name: &str, bytes: &[u8]| ConfigFile {
            path: path.into(),
            name: name.into(),
            bytes: bytes.to_vec(),
            mode: crate::config::DEFAULT_MODE,
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

        // A schema named by its full path applies to that file, and only to it.
        let by_path = Validator::new(
            None,
            &[SchemaSpec {
                file: "/etc/app/other.yaml".into(),
                schema: schema_path.clone(),
            }],
            None,
        )
        .expect("validator");
        let problems = by_path.check_files(&files);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].summary(), "/etc/app/other.yaml:1:1: schema");
    }

    #[test]
    fn whole_object_schemas_are_set_apart_from_file_schemas() {
        let dir = tempfile::tempdir().expect("tempdir");
        let schema_path = dir.path().join("s.json");
        std::fs::write(&schema_path, r#"{"type": "object", "required": ["x"]}"#).expect("write");
        let v = Validator::new(
            None,
            &[SchemaSpec {
                file: "configmap/app".into(),
                schema: schema_path,
            }],
            None,
        )
        .expect("validator");
        let file = |key: &str| ConfigFile {
            path: format!("configmap/app/{key}"),
            name: key.into(),
            bytes: b"1".to_vec(),
            mode: crate::config::DEFAULT_MODE,
        };
        assert!(v.check_files(&[file("x")]).is_empty());
        let problems = v.check_files(&[file("y")]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].summary(), "configmap/app: schema");
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
}
