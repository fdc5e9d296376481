//! Writing one annotation into a document's text, touching nothing else.
//!
//! The slot is found while the tree is alive (positions only); the text is made
//! later, once the checksum is known. Block style gets a new line at the
//! indentation of its neighbours; flow style (and JSON) gets a quoted entry
//! before the closing brace; a `null` value is replaced by a flow mapping.

use std::ops::Range;

use saphyr_parser::ScalarStyle;

use super::node::{Node, Style, Value};

/// The path from a pod template to its annotations.
const LEVELS: [&str; 2] = ["metadata", "annotations"];

/// Where and how an annotation goes into a pod template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The value already there, if any.
    pub existing: Option<String>,
    place: Place,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// Replace the existing value's text.
    Value(Range<usize>),
    /// The key is there with nothing after its colon.
    EmptyValue(usize),
    /// New lines before the first key of a block mapping, at that key's column.
    Block {
        at: usize,
        indent: usize,
        missing: usize,
        /// `at` starts a line (above the first key's comments); otherwise it is the key itself, after a `- `.
        own_line: bool,
        /// The key's line ends in `\r\n`, so the new lines do too.
        crlf: bool,
    },
    /// A new entry before a flow mapping's closing brace.
    Flow {
        at: usize,
        comma: bool,
        missing: usize,
    },
    /// Replace a `null` (or, when `at` is empty, insert after the colon) with a flow mapping.
    Null { range: Range<usize>, missing: usize },
}

/// Why a pod template cannot be annotated in place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("its {0} comes from a YAML alias or merge key, so it cannot be edited in place")]
    Aliased(&'static str),
    #[error("its {0} is not a mapping")]
    NotMapping(&'static str),
    #[error(
        "its existing `{0}` annotation is a block scalar; write it as a plain or quoted string"
    )]
    BlockScalar(String),
}

/// One replacement in a document's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
}

impl Slot {
    /// Finds where `key` goes in the pod template `template`, whose text is `text`.
    pub fn find(template: &Node<'_>, text: &str, key: &str) -> Result<Slot, SlotError> {
        let mut node = template;
        let mut what = "pod template";
        for (depth, level) in LEVELS.iter().enumerate() {
            check(node, what)?;
            if node.is_null() {
                return Ok(Slot::null(node, text, LEVELS.len() - depth));
            }
            match node.entry(level) {
                Some((_, value)) => {
                    node = value;
                    what = level;
                }
                None => return insert(node, text, LEVELS.len() - depth, what),
            }
        }
        check(node, what)?;
        if node.is_null() {
            return Ok(Slot::null(node, text, 0));
        }
        let Some((_, value)) = node.entry(key) else {
            return insert(node, text, 0, what);
        };
        if value.aliased {
            return Err(SlotError::Aliased("annotation"));
        }
        match value.value() {
            Value::Scalar(
                s,
                ScalarStyle::Plain | ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted,
            ) => {
                let existing = Some(s.to_string());
                let place = if value.start.offset == value.end.offset {
                    Place::EmptyValue(after_colon(text, value.start.offset).start)
                } else {
                    Place::Value(value.start.offset..scalar_end(text, value))
                };
                Ok(Slot { existing, place })
            }
            Value::Scalar(..) => Err(SlotError::BlockScalar(key.to_string())),
            _ => Err(SlotError::NotMapping("annotation value")),
        }
    }

    fn null(node: &Node<'_>, text: &str, missing: usize) -> Slot {
        let range = if node.start.offset == node.end.offset {
            after_colon(text, node.start.offset)
        } else {
            node.start.offset..node.end.offset
        };
        Slot {
            existing: None,
            place: Place::Null { range, missing },
        }
    }

    /// The edit that sets the annotation to `value`.
    pub fn edit(&self, key: &str, value: &str) -> Edit {
        match &self.place {
            Place::Value(range) => Edit {
                range: range.clone(),
                text: quote(value),
            },
            Place::EmptyValue(at) => Edit {
                range: *at..*at,
                text: format!(" {}", quote(value)),
            },
            Place::Null { range, missing } => {
                let space = if range.is_empty() { " " } else { "" };
                Edit {
                    range: range.clone(),
                    text: format!("{space}{{{}}}", flow_entry(key, value, *missing)),
                }
            }
            Place::Flow { at, comma, missing } => Edit {
                range: *at..*at,
                text: format!(
                    "{}{}",
                    if *comma { ", " } else { "" },
                    flow_entry(key, value, *missing)
                ),
            },
            Place::Block {
                at,
                indent,
                missing,
                own_line,
                crlf,
            } => {
                let newline = if *crlf { "\r\n" } else { "\n" };
                let mut text = String::new();
                if *own_line {
                    text.push_str(&" ".repeat(*indent));
                }
                let levels = &LEVELS[LEVELS.len() - missing..];
                for (i, level) in levels.iter().enumerate() {
                    text.push_str(level);
                    text.push(':');
                    text.push_str(newline);
                    text.push_str(&" ".repeat(indent + 2 * (i + 1)));
                }
                text.push_str(key);
                text.push_str(": ");
                text.push_str(&quote(value));
                text.push_str(newline);
                if !*own_line {
                    text.push_str(&" ".repeat(*indent));
                }
                Edit {
                    range: *at..*at,
                    text,
                }
            }
        }
    }
}

fn check(node: &Node<'_>, what: &'static str) -> Result<(), SlotError> {
    if node.aliased {
        return Err(SlotError::Aliased(what));
    }
    if node.entries().is_none() && !node.is_null() {
        return Err(SlotError::NotMapping(what));
    }
    Ok(())
}

fn insert(
    mapping: &Node<'_>,
    text: &str,
    missing: usize,
    what: &'static str,
) -> Result<Slot, SlotError> {
    let Value::Mapping(entries, style) = mapping.value() else {
        return Err(SlotError::NotMapping(what));
    };
    // Keys a merge key (`<<`) brought in are written elsewhere: place the new line by the
    // mapping's own keys, and leave a mapping that has none alone.
    let own_first = entries.iter().find(|(key, _)| !key.aliased);
    if *style == Style::Block && !entries.is_empty() && own_first.is_none() {
        return Err(SlotError::Aliased(what));
    }
    let place = match (style, own_first) {
        (Style::Block, Some((first, _))) => {
            let indent = first.start.column - 1;
            let key_at = first.start.offset;
            let line_start = text[..key_at].rfind('\n').map_or(0, |i| i + 1);
            let own_line = text[line_start..key_at].bytes().all(|b| b == b' ');
            let crlf = text[key_at..]
                .find('\n')
                .is_some_and(|end| text[..key_at + end].ends_with('\r'));
            Place::Block {
                at: if own_line {
                    above_comments(text, line_start, indent)
                } else {
                    key_at
                },
                indent,
                missing,
                own_line,
                crlf,
            }
        }
        _ => {
            let at = closing_brace(text, mapping.end.offset);
            let before = text[..at].trim_end();
            Place::Flow {
                at,
                comma: !(before.ends_with('{') || before.ends_with(',')),
                missing,
            }
        }
    };
    Ok(Slot {
        existing: None,
        place,
    })
}

/// The start of the comment lines (at `indent`) right above the line at `line_start`: they belong to the key below.
fn above_comments(text: &str, line_start: usize, indent: usize) -> usize {
    let mut at = line_start;
    while at > 0 {
        let previous = text[..at - 1].rfind('\n').map_or(0, |i| i + 1);
        let line = &text[previous..at - 1];
        let body = line.trim_start_matches(' ');
        if body.starts_with('#') && line.len() - body.len() == indent {
            at = previous;
        } else {
            break;
        }
    }
    at
}

/// The `}` that closes a flow mapping: the parser's end marker may stop at a trailing `,` before it.
fn closing_brace(text: &str, from: usize) -> usize {
    let mut in_comment = false;
    for (i, c) in text[from..].char_indices() {
        match c {
            '\n' => in_comment = false,
            '#' => in_comment = true,
            '}' if !in_comment => return from + i,
            _ => {}
        }
    }
    from
}

/// Where a scalar's own text ends: the parser's span of a quoted scalar runs on over a trailing comment.
fn scalar_end(text: &str, node: &Node<'_>) -> usize {
    let start = node.start.offset;
    let quote = match node.value() {
        Value::Scalar(_, ScalarStyle::SingleQuoted) => '\'',
        Value::Scalar(_, ScalarStyle::DoubleQuoted) => '"',
        _ => return node.end.offset,
    };
    let mut chars = text[start..].char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if quote == '"' => {
                chars.next();
            }
            '\'' if quote == '\'' && chars.peek().is_some_and(|(_, n)| *n == '\'') => {
                chars.next();
            }
            c if c == quote => return start + i + 1,
            _ => {}
        }
    }
    node.end.offset
}

/// The empty range just after the `:` that follows a key ending at `from`.
fn after_colon(text: &str, from: usize) -> Range<usize> {
    let at = text[from..].find(':').map_or(from, |i| from + i + 1);
    at..at
}

fn flow_entry(key: &str, value: &str, missing: usize) -> String {
    let mut inner = format!("{}: {}", quote(key), quote(value));
    for level in LEVELS[LEVELS.len() - missing..].iter().rev() {
        inner = format!("{}: {{{inner}}}", quote(level));
    }
    inner
}

/// Double-quoted, so a checksum of digits only stays a string (and JSON stays JSON).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Applies non-overlapping edits to `text`.
pub fn apply(text: &str, edits: &mut [Edit]) -> String {
    edits.sort_by_key(|e| e.range.start);
    let mut out =
        String::with_capacity(text.len() + edits.iter().map(|e| e.text.len() + 8).sum::<usize>());
    let mut at = 0;
    for edit in edits.iter() {
        out.push_str(&text[at..edit.range.start]);
        out.push_str(&edit.text);
        at = edit.range.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::Limits;
    use crate::manifest::parse::parse_documents;

    const KEY: &str = "checksum/config";

    /// Annotates the document's `spec.template` and returns the new text.
    fn annotate(text: &str, value: &str) -> String {
        let docs = parse_documents(text, Limits::default()).expect("yaml");
        let root = docs[0].as_ref().expect("doc");
        let template = root.path("spec.template").expect("template");
        let slot = Slot::find(template, text, KEY).expect("slot");
        let out = apply(text, &mut [slot.edit(KEY, value)]);
        let reparsed = parse_documents(&out, Limits::default()).expect("output is valid YAML");
        let annotation = reparsed[0]
            .as_ref()
            .and_then(|r| r.path("spec.template.metadata.annotations"))
            .and_then(|a| a.get_str(KEY))
            .map(str::to_string);
        assert_eq!(annotation.as_deref(), Some(value), "{out}");
        out
    }

    #[test]
    fn new_lines_keep_the_documents_line_ending() {
        assert_eq!(
            annotate("spec:\r\n  template:\r\n    spec: {}\r\n", "1"),
            "spec:\r\n  template:\r\n    metadata:\r\n      annotations:\r\n        checksum/config: \"1\"\r\n    spec: {}\r\n"
        );
        assert_eq!(
            annotate("spec:\r\n  template:\r\n    metadata:\r\n      annotations:\r\n        a: b\r\n", "1"),
            "spec:\r\n  template:\r\n    metadata:\r\n      annotations:\r\n        checksum/config: \"1\"\r\n        a: b\r\n"
        );
    }

    #[test]
    fn adds_to_existing_block_annotations() {
        let out = annotate(
            "spec:\n  template:\n    metadata:\n      annotations:\n        a: b\n    spec: {}\n",
            "123",
        );
        assert_eq!(
            out,
            "spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: \"123\"\n        a: b\n    spec: {}\n"
        );
    }

    #[test]
    fn replaces_existing_value_only() {
        let out = annotate(
            "spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: 'old' # keep\n",
            "new",
        );
        assert_eq!(
            out,
            "spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: \"new\" # keep\n"
        );
    }

    #[test]
    fn creates_annotations_and_metadata() {
        assert_eq!(
            annotate("spec:\n  template:\n    metadata:\n      labels: {a: b}\n", "1"),
            "spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: \"1\"\n      labels: {a: b}\n"
        );
        assert_eq!(
            annotate("spec:\n  template:\n    spec:\n      containers: []\n", "1"),
            "spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: \"1\"\n    spec:\n      containers: []\n"
        );
    }

    #[test]
    fn keeps_comments_with_their_key() {
        assert_eq!(
            annotate("spec:\n  template:\n    metadata:\n      annotations:\n        # about a\n        a: b\n", "1"),
            "spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: \"1\"\n        # about a\n        a: b\n"
        );
    }

    #[test]
    fn inserts_above_the_comments_of_the_first_key() {
        assert_eq!(
            annotate("spec:\n  template:\n    # comment\n    spec: {}\n", "1"),
            "spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: \"1\"\n    # comment\n    spec: {}\n"
        );
    }

    #[test]
    fn flow_and_json() {
        assert_eq!(
            annotate("spec: {template: {metadata: {annotations: {a: b}}}}\n", "1"),
            "spec: {template: {metadata: {annotations: {a: b, \"checksum/config\": \"1\"}}}}\n"
        );
        assert_eq!(
            annotate("{\"spec\": {\"template\": {\"spec\": {}}}}\n", "1"),
            "{\"spec\": {\"template\": {\"spec\": {}, \"metadata\": {\"annotations\": {\"checksum/config\": \"1\"}}}}}\n"
        );
        assert_eq!(
            annotate("spec:\n  template: {metadata: {annotations: {}, }}\n", "1"),
            "spec:\n  template: {metadata: {annotations: {\"checksum/config\": \"1\"}, }}\n"
        );
    }

    #[test]
    fn null_levels() {
        assert_eq!(
            annotate("spec:\n  template:\n    metadata:\n      annotations:\n    spec: {}\n", "1"),
            "spec:\n  template:\n    metadata:\n      annotations: {\"checksum/config\": \"1\"}\n    spec: {}\n"
        );
        assert_eq!(
            annotate("spec:\n  template:\n    metadata: null\n", "1"),
            "spec:\n  template:\n    metadata: {\"annotations\": {\"checksum/config\": \"1\"}}\n"
        );
        assert_eq!(
            annotate("spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config:\n", "1"),
            "spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: \"1\"\n"
        );
    }

    #[test]
    fn non_ascii_neighbours() {
        annotate(
            "spec:\n  template:\n    metadata:\n      annotations:\n        note: \"ünïcödé\"\n        x: y\n",
            "1",
        );
    }

    #[test]
    fn refuses_aliases_and_block_scalars() {
        let text = "t: &t {metadata: {annotations: {}}}\nspec:\n  template: *t\n";
        let docs = parse_documents(text, Limits::default()).expect("yaml");
        let template = docs[0]
            .as_ref()
            .and_then(|r| r.path("spec.template"))
            .expect("template");
        assert_eq!(
            Slot::find(template, text, KEY),
            Err(SlotError::Aliased("pod template"))
        );

        let text = "spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: |\n          x\n";
        let docs = parse_documents(text, Limits::default()).expect("yaml");
        let template = docs[0]
            .as_ref()
            .and_then(|r| r.path("spec.template"))
            .expect("template");
        assert!(matches!(
            Slot::find(template, text, KEY),
            Err(SlotError::BlockScalar(_))
        ));
    }
}
