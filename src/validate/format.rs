//! Parsing a file by its format (YAML, JSON, TOML), and YAML to JSON for the schemas.
//!
//! A syntax error is reported with its line and column; YAML keeps its tree so
//! a schema error can be reported at the line of the offending node.

use std::str::FromStr;

use saphyr_parser::ScalarStyle;
use serde_json::Value as Json;

use super::invalid::Invalid;
use crate::manifest::node::{Limits, Node, Value};
use crate::manifest::parse::parse_documents;

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

/// A file that parsed: YAML documents keep their tree (for lines), the other formats are data.
pub enum Parsed<'a> {
    Yaml(Vec<Option<Node<'a>>>),
    Data(Json),
}

/// Parses `text` as `format`; a syntax error names the file, line and column.
pub fn parse<'a>(path: &str, text: &'a str, format: Format) -> Result<Parsed<'a>, Invalid> {
    match format {
        Format::Yaml => parse_documents(text, Limits::default())
            .map(Parsed::Yaml)
            .map_err(|e| {
                let e = e.at_content_end(text);
                Invalid {
                    line: Some(e.pos.line),
                    column: Some(e.pos.column),
                    ..Invalid::new(path, e.message)
                }
            }),
        Format::Json => serde_json::from_str::<Json>(text)
            .map(Parsed::Data)
            .map_err(|e| Invalid {
                line: Some(e.line()),
                column: Some(e.column()),
                ..Invalid::new(path, e.to_string())
            }),
        Format::Toml => {
            let table = toml::from_str::<toml::Table>(text).map_err(|e| {
                let (line, column) = e.span().map_or((None, None), |span| {
                    let (l, c) = line_column(text, span.start);
                    (Some(l), Some(c))
                });
                Invalid {
                    line,
                    column,
                    ..Invalid::new(path, e.message())
                }
            })?;
            serde_json::to_value(table)
                .map(Parsed::Data)
                .map_err(|e| Invalid::new(path, format!("cannot check against the schema: {e}")))
        }
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Follows a JSON pointer through the YAML tree, to report a schema error's line.
pub fn find<'n, 'a>(node: &'n Node<'a>, pointer: &str) -> Option<&'n Node<'a>> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .try_fold(node, |node, segment| match node.value() {
            Value::Mapping(..) => node.get(&segment),
            Value::Sequence(items, _) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            Value::Scalar(..) | Value::Shared(_) => None,
        })
}

/// Converts a YAML tree to JSON with YAML 1.2 core-schema typing, so schemas see numbers and booleans.
pub fn to_json(node: &Node<'_>) -> Json {
    match node.value() {
        Value::Scalar(s, ScalarStyle::Plain) => plain_scalar(s),
        Value::Scalar(s, _) => Json::String(s.to_string()),
        Value::Shared(shared) => to_json(shared),
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
}
