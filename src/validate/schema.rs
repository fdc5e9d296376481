//! JSON Schemas: `--schema FILE=SCHEMA.json`, loaded and compiled once at start, applied to
//! one parsed file or (in `check --manifests`) to a whole ConfigMap's or Secret's data.

use std::borrow::Borrow;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::Value as Json;

use super::format::{find, to_json, Parsed};
use super::invalid::Invalid;
use crate::config::ConfigFile;

/// A `--schema FILE=SCHEMA.json` pairing.
#[derive(Debug, Clone)]
pub struct SchemaSpec {
    /// A file name relative to its folder (`config.yaml`) or a full path;
    /// `configmap/NAME` or `secret/NAME` names a whole object's data.
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

/// A schema that cannot be used: a usage error, reported at start.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("reading schema {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("schema {} is not JSON: {error}", path.display())]
    NotJson {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("schema {} is not a valid JSON Schema: {message}", path.display())]
    NotASchema { path: PathBuf, message: String },
}

/// Reads and compiles a JSON Schema.
pub fn load(path: &Path) -> Result<jsonschema::Validator, SchemaError> {
    let text = std::fs::read_to_string(path).map_err(|error| SchemaError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let json: Json = serde_json::from_str(&text).map_err(|error| SchemaError::NotJson {
        path: path.to_path_buf(),
        error,
    })?;
    jsonschema::validator_for(&json).map_err(|e| SchemaError::NotASchema {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// `configmap/NAME` or `secret/NAME` in a `--schema` means the object's whole data.
pub fn names_object(file: &str) -> bool {
    file.split_once('/')
        .is_some_and(|(kind, name)| matches!(kind, "configmap" | "secret") && !name.contains('/'))
}

/// The schema's complaints about one parsed file, each YAML one at the line of its node.
pub fn errors(path: &str, parsed: &Parsed<'_>, schema: &jsonschema::Validator) -> Vec<Invalid> {
    match parsed {
        Parsed::Yaml(docs) => {
            let mut problems = Vec::new();
            for doc in docs {
                let json = doc.as_ref().map_or(Json::Null, to_json);
                // The common case, valid, without building error iterators (several times faster).
                if schema.is_valid(&json) {
                    continue;
                }
                for error in schema.iter_errors(&json) {
                    let pointer = error.instance_path().to_string();
                    let node = doc.as_ref().and_then(|d| find(d, &pointer));
                    problems.push(Invalid {
                        line: node.map(|n| n.start.line),
                        column: node.map(|n| n.start.column),
                        detail: Some(error.to_string()),
                        ..Invalid::new(path, reason(&pointer))
                    });
                }
            }
            problems
        }
        Parsed::Data(json) => schema
            .iter_errors(json)
            .map(|e| Invalid {
                detail: Some(e.to_string()),
                ..Invalid::new(path, reason(&e.instance_path().to_string()))
            })
            .collect(),
    }
}

/// Applies a whole-object schema to the data object (key → string) of the files named `OBJECT/KEY`.
pub fn object_errors<F: Borrow<ConfigFile>>(
    object: &str,
    files: &[F],
    schema: &jsonschema::Validator,
) -> Vec<Invalid> {
    let prefix = format!("{object}/");
    let data: serde_json::Map<String, Json> = files
        .iter()
        .map(Borrow::borrow)
        .filter(|file: &&ConfigFile| file.path.starts_with(&prefix))
        .map(|file| {
            let value = String::from_utf8_lossy(&file.bytes).into_owned();
            (file.name.clone(), Json::String(value))
        })
        .collect();
    if data.is_empty() {
        return vec![Invalid::new(object, "has a schema but is not in the input")];
    }
    errors(object, &Parsed::Data(Json::Object(data)), schema)
}

/// JSON Schema messages quote the offending value, so they go in the detail; the pointer names keys only.
fn reason(pointer: &str) -> String {
    if pointer.is_empty() {
        "schema".to_string()
    } else {
        format!("schema: at {pointer}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_object_schemas_are_named_by_kind_and_name() {
        assert!(names_object("configmap/app"));
        assert!(names_object("secret/app"));
        assert!(!names_object("configmap/app/key"));
        assert!(!names_object("app.yaml"));
    }

    #[test]
    fn object_schemas_see_the_keys_as_strings() {
        let schema = jsonschema::validator_for(&serde_json::json!({
            "type": "object", "required": ["LEVEL"], "properties": {"LEVEL": {"enum": ["info"]}}
        }))
        .expect("schema");
        let file = |path: &str, name: &str, value: &str| ConfigFile {
            path: path.into(),
            name: name.into(),
            bytes: value.as_bytes().to_vec(),
            mode: crate::config::DEFAULT_MODE,
        };
        let files = vec![
            file("configmap/app/LEVEL", "LEVEL", "loud"),
            file("configmap/other/LEVEL", "LEVEL", "info"),
        ];
        let problems = object_errors("configmap/app", &files, &schema);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].summary(), "configmap/app: schema: at /LEVEL");
        assert!(object_errors("configmap/other", &files, &schema).is_empty());
        let missing = object_errors("configmap/nope", &files, &schema);
        assert!(
            missing[0].reason.contains("not in the input"),
            "{missing:?}"
        );
    }

    #[test]
    fn broken_schemas_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json");
        std::fs::write(&path, "{").expect("write");
        assert!(matches!(load(&path), Err(SchemaError::NotJson { .. })));
        std::fs::write(&path, r#"{"type": 12}"#).expect("write");
        assert!(matches!(load(&path), Err(SchemaError::NotASchema { .. })));
        let gone = dir.path().join("gone.json");
        let error = load(&gone).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.starts_with("reading schema "), "{error}");
    }
}
