//! Parsing a file by its format (YAML, JSON, TOML), and YAML to JSON for the schemas.
//!
//! A syntax error is reported with its line and column; YAML keeps its tree so
//! a schema error can be reported at the line of the offending node.

use std::borrow::Cow;
use std::str::FromStr;

use saphyr_parser::ScalarStyle;
use serde_json::Value as Json;

use super::invalid::Invalid;
use crate::manifest::node::{Limits, Node, Pos, Style, Value};
use crate::manifest::parse::{parse_documents, parse_fast, Build};

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

/// Reads a YAML text straight to JSON (one entry per document, `Null` for an empty one) when
/// the manifest reader's fast path accepts it, skipping the tree: `None` otherwise. Gives
/// exactly what [`to_json`] gives of [`parse`]'s tree (tested below).
pub fn yaml_to_json_fast(text: &str) -> Option<Vec<Json>> {
    let docs = parse_fast::<JsonBuild>(text, Limits::default())?;
    Some(docs.into_iter().map(|d| d.unwrap_or(Json::Null)).collect())
}

/// Builds what [`to_json`] makes of a tree, as the fast path reads.
struct JsonBuild;

impl<'a> Build<'a> for JsonBuild {
    type Node = Json;

    fn scalar(text: Cow<'a, str>, style: ScalarStyle, key: bool, _: Pos, _: Pos) -> Json {
        // A key stays its text, as `to_json` takes a scalar key's text.
        if style == ScalarStyle::Plain && !key {
            plain_scalar(&text)
        } else {
            Json::String(text.into_owned())
        }
    }

    fn mapping(entries: Vec<(Json, Json)>, _: Style, _: Pos, _: Pos) -> Json {
        let mut entries: Vec<(String, Json)> = entries
            .into_iter()
            .map(|(k, v)| match k {
                Json::String(s) => (s, v),
                other => (other.to_string(), v),
            })
            .collect();
        // Sorted (stably) and rid of repeated keys first, the last of a key written twice
        // winning as in `to_json`: the map is then built in one pass, where inserting entry by
        // entry would compare keys at every step.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, earlier| {
            let repeated = later.0 == earlier.0;
            if repeated {
                std::mem::swap(later, earlier);
            }
            repeated
        });
        Json::Object(entries.into_iter().collect())
    }

    fn sequence(items: Vec<Json>, _: Style, _: Pos, _: Pos) -> Json {
        Json::Array(items)
    }

    fn as_str(node: &Json) -> Option<&str> {
        node.as_str()
    }

    fn has_duplicate_keys(_: &Json) -> bool {
        false
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

    /// The direct read gives what the tree gives, wherever the fast path reads: the tricky
    /// keys (kept as text, never typed), scalars, flow keys, duplicates, and every fixture.
    #[test]
    fn direct_json_agrees_with_the_tree() {
        let agrees = |text: &str| -> bool {
            let Some(direct) = yaml_to_json_fast(text) else {
                return false;
            };
            let tree: Vec<Json> = parse_documents(text, Limits::default())
                .expect("the fast path read it")
                .iter()
                .map(|d| d.as_ref().map_or(Json::Null, to_json))
                .collect();
            assert_eq!(direct, tree, "{text}");
            true
        };
        for text in [
            "1: b\n0x1F: c\n1e3: e\n'': f\ntrue: g\nnull: h\nx: ~\ny:\nz: 0o17\n'~': i\n",
            "a: {1: x, ~: y, 'q': z, +1: n, 1e3: w, 0x1F: v}\nb: [1, -2, 1.5, true, ~, '', \"s\"]\n",
            "a: 1\na: 2\nb: {c: 1, c: 2}\n",
            "z: 0\na: 1\nm: x\na: 2\nz: 9\na: 3\n",
            "d: |\n  literal\n  text\ne: |-\n  x\nf: \"esc \\u00e9\"\ng: 'it''s'\n",
            "- a\n- b: 1\n  c: [x]\n- 3\n",
            "---\n",
            "",
            "a: 1 # comment\nb: x #y\nc: 'q' # z\n",
        ] {
            assert!(agrees(text), "the fast path should read {text:?}");
        }
        let mut read = 0;
        for path in crate::manifest::parse::fixture_yaml_files() {
            if let Ok(text) = std::fs::read_to_string(&path) {
                for doc in text.split("\n---") {
                    read += usize::from(agrees(doc));
                }
            }
        }
        assert!(read > 40, "only {read} fixture documents read directly");
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
