//! The full YAML parser: any YAML, every error message, positions kept.
//!
//! It drives `saphyr-parser`'s events into our position-keeping tree, expands aliases
//! (counting them against the limits, so an alias bomb is refused), and marks aliased
//! nodes so they are never edited in place. The fast path (`fast`) handles plain renders;
//! this parser handles everything it declines.

use saphyr_parser::{Event, Parser, ScanError, Span};

use super::node::{Limits, Node, Pos, Style, SyntaxError, Value};

/// Parses every document of `text` with the general YAML parser.
pub fn parse<'a>(text: &'a str, limits: Limits) -> Result<Vec<Option<Node<'a>>>, SyntaxError> {
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
