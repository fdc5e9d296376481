//! A small YAML tree that remembers where every node sits in the source text.
//!
//! Generic YAML values forget positions, and we need them twice: to point a
//! user at the exact line of a problem, and to edit one annotation without
//! re-emitting (and so reformatting) the whole document.

use std::borrow::Cow;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};

/// Bounds that keep a hostile document from costing more than a real one.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest nesting accepted; real manifests stay far below it.
    pub max_depth: usize,
    /// Nodes one document may produce, alias expansions included.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 128,
            max_nodes: 2_000_000,
        }
    }
}

/// A position in a document's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Byte offset from the start of the text that was parsed.
    pub offset: usize,
    /// 1-based line within that text.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub value: Value<'a>,
    pub start: Pos,
    pub end: Pos,
    /// Set on a node copied from an anchor: its text lives elsewhere, so it must not be edited in place.
    pub aliased: bool,
}

#[derive(Debug, Clone)]
pub enum Value<'a> {
    Scalar(Cow<'a, str>, ScalarStyle),
    Mapping(Vec<(Node<'a>, Node<'a>)>, Style),
    Sequence(Vec<Node<'a>>, Style),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Block,
    Flow,
}

/// Why a document could not be turned into a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

impl SyntaxError {
    /// An error found at the very end points at the last line of content, not the line after it.
    pub fn at_content_end(self, text: &str) -> SyntaxError {
        let trimmed = text.trim_end();
        if self.pos.offset < trimmed.len() {
            return self;
        }
        let last_line = trimmed.rsplit('\n').next().unwrap_or("");
        SyntaxError {
            pos: Pos {
                offset: trimmed.len(),
                line: 1 + trimmed.bytes().filter(|&b| b == b'\n').count(),
                column: 1 + last_line.chars().count(),
            },
            message: format!("{} (the text ends first)", self.message),
        }
    }
}

impl<'a> Node<'a> {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    pub fn entries(&self) -> Option<&[(Node<'a>, Node<'a>)]> {
        match &self.value {
            Value::Mapping(entries, _) => Some(entries),
            _ => None,
        }
    }

    pub fn items(&self) -> &[Node<'a>] {
        match &self.value {
            Value::Sequence(items, _) => items,
            _ => &[],
        }
    }

    /// The entry whose key is `key`, with the key node itself.
    pub fn entry(&self, key: &str) -> Option<(&Node<'a>, &Node<'a>)> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.entry(key).map(|(_, v)| v)
    }

    /// Follows a dotted path of mapping keys.
    pub fn path(&self, dotted: &str) -> Option<&Node<'a>> {
        dotted.split('.').try_fold(self, |node, key| node.get(key))
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Node::as_str)
    }

    /// A plain `null`, `~` or empty scalar: YAML's ways of writing nothing.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s, ScalarStyle::Plain) if matches!(s.as_ref(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A plain boolean `true`, as Kubernetes' YAML 1.1 reader understands it.
    pub fn is_true(&self) -> bool {
        matches!(&self.value, Value::Scalar(s, ScalarStyle::Plain)
            if matches!(s.as_ref(), "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y"))
    }

    fn count(&self) -> usize {
        1 + match &self.value {
            Value::Scalar(..) => 0,
            Value::Mapping(entries, _) => entries.iter().map(|(k, v)| k.count() + v.count()).sum(),
            Value::Sequence(items, _) => items.iter().map(Node::count).sum(),
        }
    }
}

/// Maps the parser's character positions to byte offsets.
struct Positions<'t> {
    text: &'t str,
    /// Byte offset of every character, built only when the text is not ASCII.
    char_offsets: Option<Vec<usize>>,
}

impl<'t> Positions<'t> {
    fn new(text: &'t str) -> Self {
        let char_offsets = (!text.is_ascii()).then(|| {
            text.char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(text.len()))
                .collect()
        });
        Positions { text, char_offsets }
    }

    fn pos(&self, marker: &saphyr_parser::Marker) -> Pos {
        let index = marker.index();
        let offset = match &self.char_offsets {
            None => index.min(self.text.len()),
            Some(offsets) => offsets.get(index).copied().unwrap_or(self.text.len()),
        };
        Pos {
            offset,
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

enum Frame<'a> {
    Mapping {
        start: Pos,
        style: Style,
        anchor: usize,
        entries: Vec<(Node<'a>, Node<'a>)>,
        key: Option<Node<'a>>,
    },
    Sequence {
        start: Pos,
        style: Style,
        anchor: usize,
        items: Vec<Node<'a>>,
    },
}

/// Parses every document of `text` (usually one) into trees.
///
/// Empty documents come back as `None`, so document numbering stays that of the stream.
/// Plain block YAML takes the fast path; everything else, errors included, the full parser.
pub fn parse_documents<'a>(
    text: &'a str,
    limits: Limits,
) -> Result<Vec<Option<Node<'a>>>, SyntaxError> {
    match super::simple::parse(text, limits) {
        Some(docs) => Ok(docs),
        None => parse_full(text, limits),
    }
}

/// Parses with the general YAML parser only.
pub fn parse_full<'a>(text: &'a str, limits: Limits) -> Result<Vec<Option<Node<'a>>>, SyntaxError> {
    let positions = Positions::new(text);
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame<'a>> = Vec::new();
    let mut anchors: Vec<(usize, Node<'a>, usize)> = Vec::new();
    let mut root: Option<Node<'a>> = None;
    let mut nodes = 0usize;
    let mut last_end = Pos::default();

    let syntax = |positions: &Positions, e: ScanError| SyntaxError {
        pos: positions.pos(e.marker()),
        message: e.info().to_string(),
    };

    while let Some(event) = parser.next_event() {
        let (event, span): (Event<'a>, Span) = event.map_err(|e| syntax(&positions, e))?;
        let start = positions.pos(&span.start);
        let end = positions.pos(&span.end);
        last_end = end;
        let complete = match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::Nothing => continue,
            Event::DocumentStart(_) => {
                root = None;
                nodes = 0;
                anchors.clear();
                continue;
            }
            Event::DocumentEnd => {
                docs.push(root.take());
                continue;
            }
            Event::Scalar(value, style, anchor, _tag) => {
                let node = Node {
                    value: Value::Scalar(value, style),
                    start,
                    end,
                    aliased: false,
                };
                if anchor != 0 {
                    anchors.push((anchor, node.clone(), 1));
                }
                node
            }
            Event::Alias(id) => {
                let Some((_, target, size)) = anchors.iter().rev().find(|(a, _, _)| *a == id)
                else {
                    return Err(SyntaxError {
                        pos: start,
                        message:
                            "alias refers to an anchor that is not defined before it (or to itself)"
                                .into(),
                    });
                };
                nodes += size;
                if nodes > limits.max_nodes {
                    return Err(too_many_nodes(start, limits));
                }
                let mut node = target.clone();
                node.aliased = true;
                node
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                if stack.len() >= limits.max_depth {
                    return Err(SyntaxError {
                        pos: start,
                        message: format!("nesting deeper than {} levels", limits.max_depth),
                    });
                }
                let style = if span_text(text, start, end).trim_end().ends_with(['{', '[']) {
                    Style::Flow
                } else {
                    Style::Block
                };
                stack.push(if matches!(event, Event::MappingStart(..)) {
                    Frame::Mapping {
                        start,
                        style,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    }
                } else {
                    Frame::Sequence {
                        start,
                        style,
                        anchor,
                        items: Vec::new(),
                    }
                });
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                // A collection ends where its closing event starts: at `}` or `]`, or the `,` before it.
                let end = start;
                let (node, anchor) = match stack.pop() {
                    Some(Frame::Mapping {
                        start: s,
                        style,
                        anchor,
                        entries,
                        ..
                    }) => (
                        Node {
                            value: Value::Mapping(entries, style),
                            start: s,
                            end,
                            aliased: false,
                        },
                        anchor,
                    ),
                    Some(Frame::Sequence {
                        start: s,
                        style,
                        anchor,
                        items,
                    }) => (
                        Node {
                            value: Value::Sequence(items, style),
                            start: s,
                            end,
                            aliased: false,
                        },
                        anchor,
                    ),
                    None => {
                        return Err(SyntaxError {
                            pos: start,
                            message: "unbalanced collection end".into(),
                        })
                    }
                };
                if anchor != 0 {
                    let size = node.count();
                    anchors.push((anchor, node.clone(), size));
                }
                node
            }
        };
        nodes += 1;
        if nodes > limits.max_nodes {
            return Err(too_many_nodes(start, limits));
        }
        match stack.last_mut() {
            None => root = Some(complete),
            Some(Frame::Sequence { items, .. }) => items.push(complete),
            Some(Frame::Mapping { entries, key, .. }) => match key.take() {
                None => *key = Some(complete),
                Some(k) => entries.push((k, complete)),
            },
        }
    }
    if !stack.is_empty() {
        return Err(SyntaxError {
            pos: last_end,
            message: "document ends inside an unclosed collection".into(),
        });
    }
    Ok(docs)
}

fn too_many_nodes(pos: Pos, limits: Limits) -> SyntaxError {
    SyntaxError {
        pos,
        message: format!(
            "document expands to more than {} nodes (alias bomb or runaway input)",
            limits.max_nodes
        ),
    }
}

fn span_text(text: &str, start: Pos, end: Pos) -> &str {
    text.get(start.offset..end.offset).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node<'_> {
        parse_documents(text, Limits::default())
            .expect("valid yaml")
            .into_iter()
            .next()
            .flatten()
            .expect("one document")
    }

    #[test]
    fn keeps_byte_positions_after_non_ascii_text() {
        let text = "a: \"héllo wörld\"\nb: x\n";
        let root = one(text);
        let (key, value) = root.entry("b").expect("b");
        assert_eq!(&text[key.start.offset..key.end.offset], "b");
        assert_eq!(&text[value.start.offset..value.end.offset], "x");
        assert_eq!((key.start.line, key.start.column), (2, 1));
    }

    #[test]
    fn tells_flow_from_block() {
        let root = one("a: {x: 1}\nb:\n  y: 2\nc: { z: 3 }\n");
        assert!(matches!(
            root.get("c").map(|n| &n.value),
            Some(Value::Mapping(_, Style::Flow))
        ));
        assert!(matches!(
            root.get("a").map(|n| &n.value),
            Some(Value::Mapping(_, Style::Flow))
        ));
        assert!(matches!(
            root.get("b").map(|n| &n.value),
            Some(Value::Mapping(_, Style::Block))
        ));
    }

    #[test]
    fn empty_documents_keep_their_number() {
        let docs = parse_documents("---\n---\na: 1\n", Limits::default()).expect("valid");
        assert_eq!(docs.len(), 2);
        assert!(docs[0].is_none() || docs[0].as_ref().is_some_and(Node::is_null));
        assert!(docs[1].is_some());
    }

    #[test]
    fn rejects_recursive_alias() {
        let err = parse_documents("a: &x [1, *x]\n", Limits::default()).unwrap_err();
        assert!(err.message.contains("anchor"), "{err}");
    }

    #[test]
    fn rejects_alias_bomb() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for name in 'b'..='j' {
            text.push_str(&format!(
                "{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
            prev = name;
        }
        let err = parse_documents(&text, Limits::default()).unwrap_err();
        assert!(err.message.contains("alias bomb"), "{err}");
    }

    #[test]
    fn rejects_deep_nesting() {
        let text = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let err = parse_documents(&text, Limits::default()).unwrap_err();
        assert!(err.message.contains("nesting"), "{err}");
    }

    #[test]
    fn rejects_tab_indentation() {
        let err = parse_documents("a:\n\tb: 1\n", Limits::default()).unwrap_err();
        assert_eq!(err.pos.line, 2);
    }

    #[test]
    fn rejects_unclosed_flow_mapping() {
        assert!(parse_documents("a: {b: 1\nc: 2\n", Limits::default()).is_err());
    }
}
