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
//!   (with spaces, or with a tab saphyr takes for indentation) gets spaces inserted at its start.
//!   Such leading white space is never content (a quoted scalar folds it away; in a flow
//!   collection it only separates tokens), so the data cannot change. After the parse, every
//!   inserted space is checked to lie inside a quoted scalar or a flow collection of the tree; if
//!   one does not, the original error stands. The one tab go-yaml does check there, one left of
//!   the block indentation that continues a plain scalar, saphyr checks too, so a line starting
//!   with a tab is padded only when the parser names it, never by speculation (below).
//! - a tab run after a `:` becomes spaces of the same length: both are separation.
//!
//! Positions in the tree (and in an error found on the way) are mapped back to the original
//! text, so diagnostics and edits point at the user's bytes.
//!
//! The work is bounded, since every fix costs a parse of the whole document: at most
//! [`MAX_FIXES`] fixes, and bytes parsed in all (retries included) at most [`WORK_PER_BYTE`]
//! times the document plus [`MIN_WORK`], never more than [`MAX_WORK`] (beyond it: an error
//! saying reconfig gave up). Time is then linear in the document. So that valid documents with
//! many such lines stay well inside that budget, fixes are batched: after a fix that held (the
//! next parse got past it), the next one also fixes, speculatively, twice as many of the lines
//! (or quoted scalars) below that look the same, so a flow collection written across thousands
//! of lines at column 0 takes a few dozen parses, not one per line. A batch the next parse shows
//! went too far is undone and retried with the lines before the one the parser stopped at (or
//! half of them); a document that still fails after batching is tried once more fix by fix, in
//! what is left of the budget.

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
/// A tab left of the block indentation on a line with content: saphyr's check between tokens
/// (never in a plain scalar's continuation, which has a check of its own). Inside a flow
/// collection go-yaml skips tabs there as blanks.
const FLOW_TAB: &str = "tabs disallowed within this context (block indentation)";

/// How far right a line left of the block is padded at most, when the line above is no guide.
const MAX_PAD_COLUMN: usize = 1024;
/// Fixes tried on one document before giving up.
const MAX_FIXES: usize = 10_000;
/// Bytes parsed in all (the retries included) per byte of the document before giving up.
const WORK_PER_BYTE: usize = 32;
/// Bytes parsed in all that a small document may use whatever its size.
const MIN_WORK: usize = 1 << 20;
/// Bytes parsed in all before giving up, whatever the document's size: a few seconds at worst.
const MAX_WORK: usize = 64 << 20;

/// The parsing a document of `len` bytes may cost here.
fn work_budget(len: usize) -> usize {
    len.saturating_mul(WORK_PER_BYTE)
        .saturating_add(MIN_WORK)
        .min(MAX_WORK)
}

/// Parses `text` again after the full parser refused it with `error`, when the error is one
/// that go-yaml does not make; otherwise (or when that does not help) returns `error`.
pub fn reparse<'a>(
    text: &'a str,
    limits: Limits,
    error: SyntaxError,
) -> Result<Vec<Option<Node<'a>>>, SyntaxError> {
    reparse_counting(text, limits, error, &mut 0)
}

/// [`reparse`], adding the bytes it parses to `work` (tests hold the work to its bound).
fn reparse_counting<'a>(
    text: &'a str,
    limits: Limits,
    error: SyntaxError,
    work: &mut usize,
) -> Result<Vec<Option<Node<'a>>>, SyntaxError> {
    if !is_fixable(&error) {
        return Err(error);
    }
    let budget = work_budget(text.len());
    match attempt(text, limits, error.clone(), true, budget, work) {
        Ok(docs) => Ok(docs),
        Err(Failure {
            error,
            speculated: false,
        }) => Err(error),
        // A batch may have padded a line that is not in a flow collection: the fixes one by one
        // decide, in what is left of the budget.
        Err(Failure {
            speculated: true, ..
        }) => attempt(text, limits, error, false, budget, work).map_err(|f| f.error),
    }
}

/// Why [`attempt`] failed, and whether a speculative batch was kept on the way.
struct Failure {
    error: SyntaxError,
    speculated: bool,
}

/// Fixes and parses again until the document parses or cannot be fixed; with `speculate`, flow
/// lines are fixed in growing batches.
fn attempt<'a>(
    text: &'a str,
    limits: Limits,
    error: SyntaxError,
    speculate: bool,
    budget: usize,
    work: &mut usize,
) -> Result<Vec<Option<Node<'a>>>, Failure> {
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
    // Lines (or scalars) the next fix may pad; doubled while batches hold. Once one went too
    // far, `ceiling` is the size known to go too far from the current error on, and the next
    // batches search below it by halves.
    let mut batch: usize = 1;
    let mut ceiling: Option<usize> = None;
    // Whether a batch of more than one line was ever kept.
    let mut speculated = false;
    let fail = |error, speculated| Failure { error, speculated };
    for _ in 0..MAX_FIXES {
        // The copy and error before this fix, to undo a batch of more than one line that the
        // next parse shows went too far.
        let before = (batch > 1).then(|| (copy.clone(), current.clone()));
        let Some(fix) = copy.fix(&current, batch) else {
            let error = if guessed {
                reported
            } else {
                copy.original_error(current)
            };
            return Err(fail(error, speculated));
        };
        if fix.kind == Fix::Guess && !guessed {
            reported = copy.original_error(current.clone());
            guessed = true;
        }
        if *work + copy.text.len() > budget {
            break;
        }
        *work += copy.text.len();
        let parsed = full::parse(&copy.text, limits);
        let held = match &parsed {
            Ok(docs) => copy.pads_inside(docs),
            // The parser got past every line of the batch, and the next line to fix is below.
            Err(e) => e.pos.offset >= fix.end && is_fixable(e),
        };
        let lines = fix.starts.len();
        match before.filter(|_| lines > 1) {
            Some((saved, error)) if !held => {
                // Retry with the lines before the one the parser stopped at (that one is
                // likely where the batch went too far), or else with half of them.
                let ahead = parsed.as_ref().err().map_or(0, |e| {
                    fix.starts
                        .partition_point(|&start| start <= e.pos.offset)
                        .saturating_sub(1)
                });
                copy = saved;
                current = error;
                ceiling = Some(lines);
                batch = if (1..lines).contains(&ahead) {
                    ahead
                } else {
                    (lines / 2).max(1)
                };
                continue;
            }
            Some(_) => speculated = true,
            None => {}
        }
        (batch, ceiling) = match ceiling {
            _ if !(held && speculate) => (1, None),
            None => (batch.saturating_mul(2), None),
            Some(c) => match c.saturating_sub(lines) {
                left @ 2.. => ((left / 2).max(1), Some(left)),
                _ => (1, None),
            },
        };
        match parsed {
            Ok(docs) => {
                if !held {
                    return Err(fail(reported, speculated));
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
    Err(fail(
        SyntaxError {
            message: format!(
                "{} (reconfig gave up re-indenting this document for go-yaml compatibility)",
                reported.message
            ),
            ..reported
        },
        speculated,
    ))
}

/// The pads that indent the continuation lines of the quoted scalar whose opening quote is at
/// `at` to `target` columns, and the offset after its closing quote; `None` when there is no
/// quoted scalar there, it is not closed, or a document marker line is inside it (go-yaml and
/// libyaml end the document there too: indenting it would make a marker content).
fn quoted_pads(bytes: &[u8], at: usize, target: usize) -> Option<(Vec<(usize, usize)>, usize)> {
    let quote = *bytes.get(at)?;
    if quote != b'\'' && quote != b'"' {
        return None;
    }
    let mut pads = Vec::new();
    let mut i = at + 1;
    loop {
        match *bytes.get(i)? {
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
            b if b == quote => return Some((pads, i + 1)),
            b'\n' | b'\r' if ends_line(bytes, i) => {
                let start = i + 1;
                if is_document_marker(&bytes[start..]) {
                    return None;
                }
                let leading = leading_blanks(&bytes[start..]);
                let first = bytes.get(start + leading).copied();
                if leading < target && !matches!(first, None | Some(b'\n' | b'\r')) {
                    pads.push((start, target - leading));
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// The next quote from `from` on that starts a token: first on its line, or after `: `, `- `,
/// `? `, `,`, `[` or `{`. Quotes in comments are skipped. A guess (a quote in a block scalar
/// looks the same); the parse after the fix tells.
fn next_quote(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'#' if i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'\n' | b'\r') => {
                i = next_line(bytes, i);
                continue;
            }
            b'\'' | b'"' => {
                let mut j = i;
                while j > 0 && matches!(bytes[j - 1], b' ' | b'\t') {
                    j -= 1;
                }
                let token_start = match j.checked_sub(1).map(|k| bytes[k]) {
                    None | Some(b'\n' | b'\r' | b',' | b'[' | b'{') => true,
                    Some(b':' | b'-' | b'?') => j < i,
                    Some(_) => false,
                };
                if token_start {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// An error that a fix may cure.
fn is_fixable(error: &SyntaxError) -> bool {
    [QUOTED, FLOW_TOKEN, FLOW_PLAIN, FLOW_TAB, TAB_AFTER_COLON].contains(&error.message.as_str())
}

/// A fix made: its kind, how many lines it padded, and where in the copy its last one ends.
struct Fixed {
    kind: Fix,
    /// Where each line (or quoted scalar) fixed starts in the copy.
    starts: Vec<usize>,
    end: usize,
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
#[derive(Clone)]
struct Normalised {
    text: String,
    /// Sorted by `original`, one per line.
    pads: Vec<Pad>,
}

impl Normalised {
    /// Fixes what `error` names; a flow line together with up to `batch - 1` lines below it.
    fn fix(&mut self, error: &SyntaxError, batch: usize) -> Option<Fixed> {
        let certain = |end| Fixed {
            kind: Fix::Certain,
            starts: vec![end],
            end,
        };
        match error.message.as_str() {
            QUOTED => self
                .fix_quoted(error.pos, batch)
                .map(|(starts, end)| Fixed {
                    kind: Fix::Certain,
                    starts,
                    end,
                }),
            FLOW_TOKEN | FLOW_PLAIN | FLOW_TAB => {
                self.fix_flow_lines(error.pos, batch)
                    .map(|(starts, end)| Fixed {
                        kind: Fix::Guess,
                        starts,
                        end,
                    })
            }
            TAB_AFTER_COLON => self
                .fix_tab(error.pos.offset)
                .then(|| certain(error.pos.offset)),
            _ => None,
        }
    }

    /// Indents every continuation line of the quoted scalar that starts at `at` to the
    /// scalar's own column, which is always right of the block indentation; and, up to `batch`
    /// scalars in all, those of the next quoted scalars below that need it (speculation: a
    /// quote that starts a token there is taken to start a quoted scalar). Returns where the
    /// scalars fixed start and where the last one ends, in the copy.
    fn fix_quoted(&mut self, at: Pos, batch: usize) -> Option<(Vec<usize>, usize)> {
        let bytes = self.text.as_bytes();
        let (mut pads, mut end) = quoted_pads(bytes, at.offset, at.column.saturating_sub(1))?;
        if pads.is_empty() {
            return None;
        }
        let mut fixed = vec![at.offset];
        let mut from = end;
        while fixed.len() < batch {
            let Some(quote) = next_quote(bytes, from) else {
                break;
            };
            let column = self.text[line_start(&self.text, quote)..quote]
                .chars()
                .count();
            let Some((more, close)) = quoted_pads(bytes, quote, column) else {
                break;
            };
            if !more.is_empty() {
                let shift: usize = pads.iter().map(|&(_, count)| count).sum();
                pads.extend(more);
                fixed.push(quote + shift);
                end = close;
            }
            from = close;
        }
        let added: usize = pads.iter().map(|&(_, count)| count).sum();
        self.pad_lines(&pads);
        Some((fixed, end + added))
    }

    /// Indents the line of the token at `at` one column right of the content of the line above
    /// (after its `- `, `? `, `: ` indicators), which is right of the block indentation when
    /// the line is inside a flow collection; and, up to `batch` lines in all,
    /// the lines below that start left of that column too (blank and comment lines skipped),
    /// taken to be in the same flow collection. Returns where the lines padded start and where
    /// the last one ends, in the copy.
    fn fix_flow_lines(&mut self, at: Pos, batch: usize) -> Option<(Vec<usize>, usize)> {
        let start = line_start(&self.text, at.offset);
        let bytes = self.text.as_bytes();
        let (above_start, above) = content_column_above(&self.text, start)?;
        // The token named may follow another on its line (`z]`, where `z` continues a plain
        // scalar of the line above): the whole line moves right, which changes no data inside
        // a flow collection either.
        let leading = leading_blanks(&bytes[start..at.offset]);
        // A tab that saphyr took for indentation must itself end up right of the block.
        let reach = bytes[start..start + leading]
            .iter()
            .position(|&b| b == b'\t')
            .unwrap_or(leading);
        if is_document_marker(&bytes[start..]) {
            return None;
        }
        let starts = self.copy_starts();
        let target = if reach <= above {
            // Right of a line of the block; level with a line fixed before (which is right of
            // the block already), so that fixes in turn do not indent ever deeper.
            let fixed_above = starts.binary_search(&above_start).is_ok();
            if fixed_above && reach == leading && leading < above {
                above
            } else {
                above + 1
            }
        } else if starts.binary_search(&start).is_ok() && reach < MAX_PAD_COLUMN {
            // Padded already and still left of the block: the line above was no guide (it is
            // itself left of the block, a plain scalar's continuation). Twice as far right
            // each time, a few parses at most.
            2 * reach + 1
        } else {
            return None;
        };
        let mut lines = vec![(start, target - reach)];
        let mut end = next_line(bytes, start);
        let mut next = end;
        while lines.len() < batch && next < bytes.len() {
            let rest = &bytes[next..];
            let lead = leading_blanks(rest);
            let after = next_line(bytes, next);
            match rest.get(lead) {
                None => break,
                Some(b'\n' | b'\r' | b'#') => {}
                // A tab left of the block indentation after a plain scalar is refused by go-yaml
                // (the scalar's continuation is checked), and padding would move it right of it:
                // such a line is padded only when the parser names it.
                Some(_) if rest[..lead].contains(&b'\t') => break,
                Some(_) if lead >= target || is_document_marker(rest) => break,
                Some(_) => {
                    lines.push((next, target - lead));
                    end = after;
                }
            }
            next = after;
        }
        let mut added = 0;
        let starts = lines
            .iter()
            .map(|&(start, count)| {
                added += count;
                start + added - count
            })
            .collect();
        self.pad_lines(&lines);
        Some((starts, end + added))
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

    /// Inserts `count` spaces at each `start`, line starts of the copy in ascending order, in
    /// one pass over the copy (a batch may pad thousands of lines).
    fn pad_lines(&mut self, lines: &[(usize, usize)]) {
        let starts = self.copy_starts();
        let added: usize = lines.iter().map(|&(_, count)| count).sum();
        let mut text = String::with_capacity(self.text.len() + added);
        let mut new = Vec::with_capacity(lines.len());
        let (mut from, mut line) = (0, 1);
        for &(start, count) in lines {
            let between = &self.text[from..start];
            line += (0..between.len())
                .filter(|&i| ends_line(between.as_bytes(), i))
                .count();
            text.push_str(between);
            text.extend(std::iter::repeat_n(' ', count));
            from = start;
            let original = self.original_pos_with(
                &starts,
                Pos {
                    offset: start,
                    ..Pos::default()
                },
            );
            new.push(Pad {
                original: original.offset,
                count,
                line,
            });
        }
        text.push_str(&self.text[from..]);
        self.text = text;
        // Both sorted by original offset: merge, adding up pads of one line.
        let old = std::mem::take(&mut self.pads);
        let mut merged = Vec::with_capacity(old.len() + new.len());
        let (mut old, mut new) = (old.into_iter().peekable(), new.into_iter().peekable());
        loop {
            let pad = match (old.peek(), new.peek()) {
                (Some(a), Some(b)) if a.original == b.original => {
                    let count = b.count;
                    new.next();
                    old.next().map(|a| Pad {
                        count: a.count + count,
                        ..a
                    })
                }
                (Some(a), Some(b)) if a.original < b.original => old.next(),
                (Some(_), None) => old.next(),
                (_, Some(_)) => new.next(),
                (None, None) => None,
            };
            match pad {
                Some(pad) => merged.push(pad),
                None => break,
            }
        }
        self.pads = merged;
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

/// Whether the byte at `i` ends a line: LF, or a CR that no LF follows (YAML's lone CR, which
/// go-yaml and saphyr read as a line break too).
fn ends_line(bytes: &[u8], i: usize) -> bool {
    match bytes.get(i) {
        Some(b'\n') => true,
        Some(b'\r') => bytes.get(i + 1) != Some(&b'\n'),
        _ => false,
    }
}

/// The offset of the line after the one that starts at `start` (the end of `bytes` if none).
fn next_line(bytes: &[u8], start: usize) -> usize {
    (start..bytes.len())
        .find(|&i| ends_line(bytes, i))
        .map_or(bytes.len(), |i| i + 1)
}

fn line_start(text: &str, at: usize) -> usize {
    let bytes = text.as_bytes();
    (0..at)
        .rev()
        .find(|&i| ends_line(bytes, i))
        .map_or(0, |i| i + 1)
}

/// The start and the column (0-based) of the content of the nearest line above `start` that is
/// neither blank nor a comment, past its block indicators (`- `, `? `, `: `).
fn content_column_above(text: &str, mut start: usize) -> Option<(usize, usize)> {
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
        return Some((start, column));
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
    fn tabs_at_the_start_of_flow_lines() {
        // Left of the block indentation, a tab between tokens of a flow collection is a blank
        // to go-yaml.
        let doc = root("m:\n  l: [a,\n\tb]\n  e: [\n\t]\nk: v\n");
        assert_eq!(doc.path("m.l").map(|l| l.items().len()), Some(2));
        assert_eq!(doc.path("m.e").map(|e| e.items().len()), Some(0));
        assert_eq!(doc.get_str("k"), Some("v"));
        // Where it continues a plain scalar, go-yaml refuses it; padding the lines above must not
        // carry it right of the indentation (a differential fuzz finding).
        for text in ["? a\n: [a,\nb,\nc\n\t]\n", "m:\n  l: [a,\nb,\nc,\nd\n\t]\n"] {
            assert!(parse(text).is_err(), "{text:?} must stay an error");
        }
    }

    #[test]
    fn lines_a_lone_cr_ends() {
        // YAML, go-yaml and saphyr read a lone CR as a line break: so must the fixes.
        let doc = root("m:\r  q: \"x\ry\"\r  s: 'p\r\rq'\r  f: [a,\rb]\rk: v\r");
        assert_eq!(doc.path("m.q").and_then(Node::as_str), Some("x y"));
        assert_eq!(doc.path("m.s").and_then(Node::as_str), Some("p\nq"));
        assert_eq!(doc.path("m.f").map(|f| f.items().len()), Some(2));
        assert_eq!(doc.get_str("k"), Some("v"));
        // Positions still point at the user's bytes.
        let text = "m:\r  q: \"x\ry\"\r  bad: [\r";
        let e = parse(text).expect_err("unclosed");
        assert!(
            e.pos.offset <= text.len() && e.pos.line >= 3,
            "{e} at {:?}",
            e.pos
        );
    }

    #[test]
    fn a_flow_line_whose_first_token_continues_a_scalar() {
        // `z` continues the plain scalar `a`; the `]` after it is what saphyr names.
        let doc = root("  t: [a\nz]\n  r: x\n");
        assert_eq!(
            doc.get("t")
                .map(|t| t.items()[0].as_str().map(str::to_string)),
            Some(Some("a z".to_string()))
        );
        assert_eq!(doc.get_str("r"), Some("x"));
    }

    #[test]
    fn a_line_below_a_continuation_left_of_the_block() {
        // The line above `]` is itself left of the block: padding goes further right until the
        // parse gets past it.
        let doc = root("        t: [a\nb\",\n]\n        r: x\n");
        assert_eq!(
            doc.get("t")
                .map(|t| t.items()[0].as_str().map(str::to_string)),
            Some(Some("a b\"".to_string()))
        );
        assert_eq!(doc.get_str("r"), Some("x"));
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

#[cfg(test)]
mod bounds {
    use super::*;

    /// `line` repeated after `head` until the text is `size` bytes long, then `tail`.
    pub(super) fn grown(
        head: &str,
        line: impl Fn(usize) -> String,
        size: usize,
        tail: &str,
    ) -> String {
        let mut text = head.to_string();
        let mut i = 0;
        while text.len() < size {
            text.push_str(&line(i));
            i += 1;
        }
        text.push_str(tail);
        text
    }

    /// The full parser then this module, as `parse` runs them, and the bytes this module parsed.
    fn parse_counting(text: &str) -> (Result<Vec<Option<Node<'_>>>, SyntaxError>, usize) {
        let mut work = 0;
        let result = full::parse(text, Limits::default())
            .or_else(|e| reparse_counting(text, Limits::default(), e, &mut work));
        (result, work)
    }

    /// Generated documents that need a fix on nearly every line, at growing sizes: each valid
    /// one parses to its data, and the bytes parsed grow with the size times a slowly growing
    /// factor (fixes are batched), never past the budget. Before the batches, one parse per line
    /// ran into the old 64 MiB budget and gave up on the valid ones from 8 KiB on.
    #[test]
    fn documents_that_need_many_fixes_cost_bounded_work() {
        for size in [4 << 10, 64 << 10, 256 << 10] {
            let flow = grown(
                "m:\n  list: [a,\n",
                |i| format!("b{i},\n"),
                size,
                "z]\nk: v\n",
            );
            let (docs, work) = parse_counting(&flow);
            let doc = docs.expect("valid").remove(0).expect("doc");
            let list = doc.path("m.list").expect("list").items();
            assert_eq!(list.last().and_then(Node::as_str), Some("z"));
            assert_eq!(doc.get_str("k"), Some("v"));
            assert!(work <= 24 * flow.len(), "flow {size}: {work} bytes parsed");

            let quoted = grown(
                "d:\n",
                |i| format!("  k{i}: 'x{i}\n\n'\n"),
                size,
                "  z: 1\n",
            );
            let (docs, work) = parse_counting(&quoted);
            let doc = docs.expect("valid").remove(0).expect("doc");
            assert_eq!(doc.path("d.k7").and_then(Node::as_str), Some("x7\n"));
            assert_eq!(doc.path("d.z").and_then(Node::as_str), Some("1"));
            assert!(
                work <= 24 * quoted.len(),
                "quoted {size}: {work} bytes parsed"
            );
        }
    }

    /// The shape the inject fuzz target timed out on (tests/fixtures/hostile/): flow
    /// collections left open across lines at column 0. Refused within the budget.
    #[test]
    fn hostile_documents_are_refused_within_the_budget() {
        for size in [4 << 10, 64 << 10, 256 << 10] {
            let hostile = grown(
                "a:\n  labels: {app: w,\n",
                |i| format!("tier:Vera[ata:\n  ne{i}\n  labels:pp:a{{  w,\n"),
                size,
                "",
            );
            let (docs, work) = parse_counting(&hostile);
            let e = docs.expect_err("unclosed");
            assert_eq!((e.pos.line, e.pos.column), (3, 1), "{e}");
            assert!(work <= work_budget(hostile.len()), "{size}: {work}");
        }
    }
}

#[cfg(test)]
mod batching {
    use super::*;

    /// The data of a tree, positions aside.
    fn data(node: &Node<'_>) -> String {
        match node.value() {
            Value::Scalar(s, style) => format!("{s:?}/{style:?}"),
            Value::Sequence(items, _) => {
                let items: Vec<_> = items.iter().map(data).collect();
                format!("[{}]", items.join(","))
            }
            Value::Mapping(entries, _) => {
                let entries: Vec<_> = entries
                    .iter()
                    .map(|(k, v)| format!("{}:{}", data(k), data(v)))
                    .collect();
                format!("{{{}}}", entries.join(","))
            }
            Value::Shared(_) => unreachable!("value() sees through shared nodes"),
        }
    }

    /// What reading `text` gives, `None` when the full parser reads it with no fix.
    fn outcome(text: &str, speculate: bool) -> Option<Result<Vec<String>, (usize, usize)>> {
        let error = full::parse(text, Limits::default()).err()?;
        Some(outcome_of(text, error, speculate))
    }

    fn outcome_of(
        text: &str,
        error: SyntaxError,
        speculate: bool,
    ) -> Result<Vec<String>, (usize, usize)> {
        if !is_fixable(&error) {
            return Err((error.pos.line, error.pos.column));
        }
        let budget = work_budget(text.len());
        attempt(text, Limits::default(), error, speculate, budget, &mut 0)
            .map(|docs| docs.iter().flatten().map(data).collect())
            .map_err(|f| (f.error.pos.line, f.error.pos.column))
    }

    /// Batches read every document single fixes read, to the same data: the YAML corpus with
    /// runs of lines moved to column 0 (what go-yaml writes, and what it does not).
    #[test]
    fn batches_read_what_single_fixes_read() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/yaml-corpus");
        let mut files: Vec<_> = std::fs::read_dir(dir).expect("corpus").flatten().collect();
        files.sort_by_key(std::fs::DirEntry::path);
        let (mut compared, mut fixed) = (0, 0);
        for file in files {
            let Ok(text) = std::fs::read_to_string(file.path()) else {
                continue;
            };
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            for (from, step) in [(0, 2), (1, 3), (2, 1), (3, 5)] {
                let moved: String = lines
                    .iter()
                    .enumerate()
                    .map(|(i, line)| {
                        if i >= from && (i - from) % step == 0 {
                            line.trim_start_matches(' ')
                        } else {
                            line
                        }
                    })
                    .collect();
                for variant in [&text, &moved] {
                    let Some(single) = outcome(variant, false) else {
                        continue;
                    };
                    let batched = outcome(variant, true).expect("the same parse");
                    if let Ok(data) = &single {
                        assert_eq!(batched.as_ref(), Ok(data), "{:?}:\n{variant}", file.path());
                        fixed += 1;
                    }
                    compared += 1;
                }
            }
        }
        // Documents that needed fixes, and those read with them.
        assert!(compared > 100 && fixed > 20, "{compared} {fixed}");
    }
}
