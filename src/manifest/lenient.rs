//! What go-yaml accepts and saphyr-parser refuses: lines left of the block indentation inside
//! a quoted scalar or a flow collection, and a tab between a `:` and its value.
//!
//! Helm 4 re-serialises every render with go-yaml before a post-renderer sees it, and go-yaml
//! writes the closing quote of a multi-line single-quoted scalar at column 0, whatever the
//! nesting (kube-prometheus-stack's PrometheusRule descriptions). libyaml and go-yaml never check
//! indentation inside quoted scalars or flow collections, nor refuse a tab as the separation after
//! `:`; saphyr-parser does. What Helm and kubectl accept, reconfig must accept, to the same data.
//!
//! How, without forking the parser: only when the full parser reports one of these errors, a copy
//! of the text is normalised at exactly the place the error names, and parsed again, until it
//! parses or another error shows:
//! - a line inside a quoted scalar or a flow collection that starts left of where saphyr wants it
//!   gets spaces inserted at its start. Such leading white space is never content (a quoted
//!   scalar folds it away; in a flow collection it only separates tokens), so the data cannot
//!   change. After the parse, every inserted space is checked to lie inside a quoted scalar or a
//!   flow collection of the tree; if one does not, the original error stands.
//! - a tab run after a `:` becomes spaces of the same length: both are separation.
//!
//! Positions in the tree (and in an error found on the way) are mapped back to the original
//! text, so diagnostics and edits point at the user's bytes. The work is bounded: at most
//! [`MAX_FIXES`] fixes and [`MAX_WORK`] bytes parsed per document.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use saphyr_parser::ScalarStyle;

use super::full;
use super::node::{Limits, Node, Pos, Style, SyntaxError, Value};

const QUOTED: &str = "invalid indentation in quoted scalar";
const FLOW_TOKEN: &str = "invalid indentation";
const FLOW_PLAIN: &str = "invalid indentation in flow construct";
const TAB_AFTER_COLON: &str = "':' must be followed by a valid YAML whitespace";

/// Fixes tried on one document before giving up.
const MAX_FIXES: usize = 10_000;
/// Bytes parsed in all (the retries included) before giving up: a few seconds at worst.
const MAX_WORK: usize = 64 << 20;

/// Parses `text` again after the full parser refused it with `error`, when the error is one
/// that go-yaml does not make; otherwise (or when that does not help) returns `error`.
pub fn reparse<'a>(
    text: &'a str,
    limits: Limits,
    error: SyntaxError,
) -> Result<Vec<Option<Node<'a>>>, SyntaxError> {
    if ![QUOTED, FLOW_TOKEN, FLOW_PLAIN, TAB_AFTER_COLON].contains(&error.message.as_str()) {
        return Err(error);
    }
    let mut copy = Normalised {
        text: text.to_string(),
        pads: Vec::new(),
    };
    // The error to report if this fails: the last one found before a guess was made (a fix of
    // a flow line guesses that the line is inside a flow collection; the check after the parse
    // or the next error tells).
    let mut reported = error;
    let mut current = reported.clone();
    let mut guessed = false;
    let mut work = text.len();
    for _ in 0..MAX_FIXES {
        let Some(fix) = copy.fix(&current) else {
            return Err(if guessed {
                reported
            } else {
                copy.original_error(current)
            });
        };
        if fix == Fix::Guess && !guessed {
            reported = copy.original_error(current.clone());
            guessed = true;
        }
        work += copy.text.len();
        if work > MAX_WORK {
            break;
        }
        match full::parse(&copy.text, limits) {
            Ok(docs) => {
                if !copy.pads_inside(&docs) {
                    return Err(reported);
                }
                return Ok(docs
                    .into_iter()
                    .map(|doc| doc.map(|node| copy.restore(node)))
                    .collect());
            }
            Err(e) => current = e,
        }
    }
    let reported = if guessed {
        reported
    } else {
        copy.original_error(current)
    };
    Err(SyntaxError {
        message: format!(
            "{} (reconfig gave up re-indenting this document for go-yaml compatibility)",
            reported.message
        ),
        ..reported
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fix {
    /// The error named the construct: a quoted scalar, or the `:` before a tab.
    Certain,
    /// The line is taken to be inside a flow collection.
    Guess,
}

/// Spaces inserted at the start of a line of the original text.
#[derive(Debug, Clone, Copy)]
struct Pad {
    /// Offset of the line start in the original text.
    original: usize,
    count: usize,
    /// 1-based line.
    line: usize,
}

/// The normalised copy of a document and how it differs from the original.
struct Normalised {
    text: String,
    /// Sorted by `original`, one per line.
    pads: Vec<Pad>,
}

impl Normalised {
    fn fix(&mut self, error: &SyntaxError) -> Option<Fix> {
        match error.message.as_str() {
            QUOTED => self.fix_quoted(error.pos).then_some(Fix::Certain),
            FLOW_TOKEN | FLOW_PLAIN => self.fix_flow_line(error.pos).then_some(Fix::Guess),
            TAB_AFTER_COLON => self.fix_tab(error.pos.offset).then_some(Fix::Certain),
            _ => None,
        }
    }

    /// Indents every continuation line of the quoted scalar that starts at `at` to the
    /// scalar's own column, which is always right of the block indentation.
    fn fix_quoted(&mut self, at: Pos) -> bool {
        let bytes = self.text.as_bytes();
        let Some(&quote) = bytes.get(at.offset) else {
            return false;
        };
        if quote != b'\'' && quote != b'"' {
            return false;
        }
        let target = at.column.saturating_sub(1);
        let mut lines = Vec::new();
        let mut i = at.offset + 1;
        loop {
            let Some(&b) = bytes.get(i) else {
                return false;
            };
            match b {
                // An escaped line break still starts a continuation line: only skip other escapes.
                b'\\' if quote == b'"' => {
                    i += if matches!(bytes.get(i + 1), Some(b'\n' | b'\r')) {
                        1
                    } else {
                        2
                    };
                    continue;
                }
                b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => {
                    i += 2;
                    continue;
                }
                b if b == quote => break,
                b'\n' => lines.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        let mut pads = Vec::new();
        for start in lines {
            // A `---` or `...` line ends the document inside the scalar for go-yaml and libyaml
            // too: indenting it would make a marker content. The error stands.
            if is_document_marker(&bytes[start..]) {
                return false;
            }
            let leading = leading_blanks(&bytes[start..]);
            let first = bytes.get(start + leading).copied();
            if leading < target && !matches!(first, None | Some(b'\n' | b'\r')) {
                pads.push((start, target - leading));
            }
        }
        if pads.is_empty() {
            return false;
        }
        // From the last line up, so earlier offsets stay valid.
        for (start, count) in pads.into_iter().rev() {
            self.pad(start, count);
        }
        true
    }

    /// Indents the line whose first token is at `at` one column right of the content of the
    /// line above (after its `- `, `? `, `: ` indicators), which is right of the block
    /// indentation when the line is inside a flow collection.
    fn fix_flow_line(&mut self, at: Pos) -> bool {
        let start = line_start(&self.text, at.offset);
        let bytes = self.text.as_bytes();
        if !bytes[start..at.offset]
            .iter()
            .all(|b| matches!(b, b' ' | b'\t'))
        {
            return false;
        }
        let Some(above) = content_column_above(&self.text, start) else {
            return false;
        };
        let leading = at.offset - start;
        if leading > above || is_document_marker(&bytes[start..]) {
            return false;
        }
        self.pad(start, above + 1 - leading);
        true
    }

    /// Turns the tabs between a `:` and the value at `at` into spaces.
    fn fix_tab(&mut self, at: usize) -> bool {
        let bytes = self.text.as_bytes();
        let mut from = at.min(bytes.len());
        while from > 0 && matches!(bytes[from - 1], b' ' | b'\t') {
            from -= 1;
        }
        if from == 0 || bytes[from - 1] != b':' || !bytes[from..at].contains(&b'\t') {
            return false;
        }
        let spaces = " ".repeat(at - from);
        self.text.replace_range(from..at, &spaces);
        true
    }

    /// Inserts `count` spaces at `start`, a line start of the copy.
    fn pad(&mut self, start: usize, count: usize) {
        let original = self.original_offset(start);
        let line = 1 + self.text[..start].bytes().filter(|&b| b == b'\n').count();
        self.text.insert_str(start, &" ".repeat(count));
        match self.pads.binary_search_by_key(&original, |p| p.original) {
            Ok(i) => self.pads[i].count += count,
            Err(i) => self.pads.insert(
                i,
                Pad {
                    original,
                    count,
                    line,
                },
            ),
        }
    }

    /// Where each pad starts in the copy.
    fn copy_starts(&self) -> Vec<usize> {
        let mut shift = 0;
        self.pads
            .iter()
            .map(|p| {
                let at = p.original + shift;
                shift += p.count;
                at
            })
            .collect()
    }

    fn original_offset(&self, offset: usize) -> usize {
        self.original_pos_with(
            &self.copy_starts(),
            Pos {
                offset,
                ..Pos::default()
            },
        )
        .offset
    }

    /// Maps a position of the copy to the original text; a position inside inserted spaces
    /// maps to the start of their line.
    fn original_pos_with(&self, starts: &[usize], pos: Pos) -> Pos {
        let i = starts.partition_point(|&s| s <= pos.offset);
        if i == 0 {
            return pos;
        }
        let pad = self.pads[i - 1];
        let start = starts[i - 1];
        let within = (pos.offset - start).min(pad.count);
        Pos {
            offset: pos.offset - (start - pad.original) - within,
            line: pos.line,
            column: if pad.line == pos.line {
                pos.column.saturating_sub(within).max(1)
            } else {
                pos.column
            },
        }
    }

    fn original_error(&self, error: SyntaxError) -> SyntaxError {
        SyntaxError {
            pos: self.original_pos_with(&self.copy_starts(), error.pos),
            message: error.message,
        }
    }

    /// Whether every inserted space lies inside a quoted scalar or a flow collection.
    fn pads_inside(&self, docs: &[Option<Node<'_>>]) -> bool {
        let mut spans = Vec::new();
        for doc in docs.iter().flatten() {
            collect_spans(&self.text, doc, &mut spans, &mut HashSet::new());
        }
        spans.sort_unstable();
        let mut spans = spans.into_iter().peekable();
        let mut reach = 0;
        for at in self.copy_starts() {
            while let Some(&(start, end)) = spans.peek() {
                if start >= at {
                    break;
                }
                reach = reach.max(end);
                spans.next();
            }
            if reach < at {
                return false;
            }
        }
        true
    }

    /// The tree with positions of the original text and scalars of its own.
    fn restore<'a>(&self, node: Node<'_>) -> Node<'a> {
        let starts = self.copy_starts();
        self.restore_with(&starts, node, &mut HashMap::new())
    }

    /// `shared` keeps each shared (anchored) node restored once, so aliases stay shared.
    fn restore_with<'a>(
        &self,
        starts: &[usize],
        node: Node<'_>,
        shared: &mut HashMap<*const (), Rc<Node<'a>>>,
    ) -> Node<'a> {
        let value = match node.value {
            Value::Scalar(s, style) => Value::Scalar(Cow::Owned(s.into_owned()), style),
            Value::Mapping(entries, style) => Value::Mapping(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            self.restore_with(starts, k, shared),
                            self.restore_with(starts, v, shared),
                        )
                    })
                    .collect(),
                style,
            ),
            Value::Sequence(items, style) => Value::Sequence(
                items
                    .into_iter()
                    .map(|item| self.restore_with(starts, item, shared))
                    .collect(),
                style,
            ),
            Value::Shared(rc) => {
                let key = Rc::as_ptr(&rc).cast::<()>();
                let restored = match shared.get(&key) {
                    Some(done) => done.clone(),
                    None => {
                        let done = Rc::new(self.restore_with(starts, (*rc).clone(), shared));
                        shared.insert(key, done.clone());
                        done
                    }
                };
                Value::Shared(restored)
            }
        };
        Node {
            value,
            start: self.original_pos_with(starts, node.start),
            end: self.original_pos_with(starts, node.end),
            aliased: node.aliased,
        }
    }
}

/// Byte ranges `(start, end)` of the tree's quoted scalars and flow collections, in which
/// leading white space of a line is not content.
/// A shared (anchored) node's text is written once, where its anchor is: it is walked once.
fn collect_spans(
    text: &str,
    node: &Node<'_>,
    out: &mut Vec<(usize, usize)>,
    seen: &mut HashSet<*const ()>,
) {
    match &node.value {
        Value::Shared(rc) => {
            if seen.insert(Rc::as_ptr(rc).cast::<()>()) {
                collect_spans(text, rc, out, seen);
            }
        }
        Value::Scalar(_, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted) => {
            out.push((node.start.offset, node.end.offset));
        }
        Value::Scalar(..) => {}
        Value::Mapping(entries, style) => {
            if *style == Style::Flow {
                out.push((node.start.offset, closing_bracket(text, node.end.offset)));
            }
            for (k, v) in entries {
                collect_spans(text, k, out, seen);
                collect_spans(text, v, out, seen);
            }
        }
        Value::Sequence(items, style) => {
            if *style == Style::Flow {
                out.push((node.start.offset, closing_bracket(text, node.end.offset)));
            }
            for item in items {
                collect_spans(text, item, out, seen);
            }
        }
    }
}

/// A flow collection's end is where its closing event starts, which may be a trailing `,`:
/// the bracket is the first one from there.
fn closing_bracket(text: &str, from: usize) -> usize {
    text.get(from..)
        .and_then(|rest| rest.find(['}', ']']))
        .map_or(from, |i| from + i)
}

/// A line that starts with a document marker (`---` or `...` at column 1, then a blank, a line
/// break or the end).
fn is_document_marker(line: &[u8]) -> bool {
    (line.starts_with(b"---") || line.starts_with(b"..."))
        && matches!(line.get(3), None | Some(b' ' | b'\t' | b'\n' | b'\r'))
}

fn leading_blanks(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count()
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// The column (0-based) of the content of the nearest line above `start` that is neither blank
/// nor a comment, past its block indicators (`- `, `? `, `: `).
fn content_column_above(text: &str, mut start: usize) -> Option<usize> {
    while start > 0 {
        let above = line_start(text, start - 1);
        let line = text[above..start - 1].trim_end_matches('\r').as_bytes();
        start = above;
        let mut column = leading_blanks(line);
        if column == line.len() || line[column] == b'#' {
            continue;
        }
        while matches!(line.get(column), Some(b'-' | b'?' | b':'))
            && matches!(line.get(column + 1), Some(b' ' | b'\t'))
        {
            column += 1 + leading_blanks(&line[column + 1..]);
        }
        return Some(column);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full parser, then this module, as `parse` runs them (not imported: `parse` uses this module).
    fn parse(text: &str) -> Result<Vec<Option<Node<'_>>>, SyntaxError> {
        full::parse(text, Limits::default()).or_else(|e| reparse(text, Limits::default(), e))
    }

    fn root(text: &str) -> Node<'_> {
        parse(text)
            .unwrap_or_else(|e| panic!("{text:?}: {e} at {:?}", e.pos))
            .into_iter()
            .next()
            .flatten()
            .expect("one document")
    }

    #[test]
    fn closing_quote_at_column_0_as_helm_4_writes_it() {
        let text = "data:\n  a: 'line one\n\n    line two\n\n'\n  b: plain\n";
        let doc = root(text);
        let a = doc.path("data.a").expect("a");
        assert_eq!(a.as_str(), Some("line one\nline two\n"));
        // Positions are the original text's: the scalar runs from its quote to the closing one.
        assert_eq!(&text[a.start.offset..a.start.offset + 9], "'line one");
        assert_eq!((a.end.line, a.end.column), (6, 2));
        let (b_key, b) = doc.get("data").and_then(|d| d.entry("b")).expect("b");
        assert_eq!(&text[b_key.start.offset..b.end.offset], "b: plain");
        assert_eq!((b.start.line, b.start.column), (7, 6));
    }

    #[test]
    fn a_document_marker_inside_a_quoted_scalar_stays_an_error() {
        // go-yaml and libyaml end the document at a `---` or `...` line, quoted scalar or not
        // (found by the differential fuzz target: the line was indented and so read as content).
        for text in [
            "m:\n  a: \"x\nkind: y\n---\nz\"\n",
            "m:\n  a: 'x\nkind: y\n...\nz'\n",
            "m:\n  a: \"x\n--- \"\n",
            "m:\n  n: [a,\n---\n]\n",
        ] {
            assert!(parse(text).is_err(), "{text:?}");
        }
        // A longer run of dashes, or dashes the quote follows, is no marker: content, as for
        // go-yaml.
        let text = "m:\n  a: \"x\n----\nz\"\n";
        assert_eq!(
            root(text).path("m.a").and_then(Node::as_str),
            Some("x ---- z")
        );
        let text = "m:\n  a: \"x\n---\"\n";
        assert_eq!(root(text).path("m.a").and_then(Node::as_str), Some("x ---"));
    }

    #[test]
    fn double_quoted_and_escaped_line_breaks() {
        let text = "m:\n  a: \"x\\\ny \\\" z\n\"\n  b: 1\n";
        assert_eq!(
            root(text).path("m.a").and_then(Node::as_str),
            Some("xy \" z ")
        );
        let text = "m:\n  - k: 'it''s\nfine'\n";
        let doc = root(text);
        let item = &doc.get("m").expect("m").items()[0];
        assert_eq!(item.get_str("k"), Some("it's fine"));
    }

    #[test]
    fn flow_collection_lines_left_of_the_block() {
        let text = "m:\n  labels: {app: web,\n    tier: \"front\"\n}\n  n: [a,\nb]\nk: v\n";
        let doc = root(text);
        let labels = doc.path("m.labels").expect("labels");
        assert_eq!(labels.get_str("tier"), Some("front"));
        assert_eq!(&text[labels.end.offset..labels.end.offset + 1], "}");
        assert_eq!((labels.end.line, labels.end.column), (4, 1));
        let n = doc.path("m.n").expect("n");
        assert_eq!(n.items().len(), 2);
        assert_eq!(doc.get_str("k"), Some("v"));
        let text = "- l: {a: 1,\n}\n";
        assert_eq!(
            root(text).items()[0].path("l.a").and_then(Node::as_str),
            Some("1")
        );
    }

    #[test]
    fn tab_after_a_colon() {
        let text = "a:\tb\nc:\t \td e\n";
        let doc = root(text);
        assert_eq!(doc.get_str("a"), Some("b"));
        let c = doc.get("c").expect("c");
        assert_eq!(c.as_str(), Some("d e"));
        assert_eq!(&text[c.start.offset..c.end.offset], "d e");
        // As go-yaml: a block sequence cannot start there, tab or not.
        assert!(parse("c:\t- d\n").is_err());
    }

    #[test]
    fn block_indentation_errors_stay_errors() {
        for text in [
            "a:\n  b: 1\n c: 2\n",
            "a:\n  b: 1\n c\n",
            "a:\n  - 1\n - 2\n",
            "a:\n\tb: 1\n",
            "a: {b: 1\nc: 2\n",
            "a: 'x\n",
        ] {
            assert!(parse(text).is_err(), "{text:?} must stay an error");
        }
    }

    #[test]
    fn a_later_error_points_at_the_original_text() {
        let text = "data:\n  a: 'x\n'\n  b: [1, 2\n";
        let e = parse(text).expect_err("unclosed sequence");
        assert!(e.message.contains("flow sequence"), "{e}");
        assert!(
            e.pos.line >= 4 && e.pos.offset <= text.len(),
            "{e}: {:?}",
            e.pos
        );
    }

    #[test]
    fn many_scalars_in_one_document() {
        let mut text = String::from("d:\n");
        for i in 0..200 {
            text.push_str(&format!("  k{i}: 'x\n\n'\n"));
        }
        let doc = root(&text);
        assert_eq!(doc.path("d.k199").and_then(Node::as_str), Some("x\n"));
    }
}
