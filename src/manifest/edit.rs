//! Writing one annotation into a document's text, touching nothing else.
//!
//! The slot is found while the tree is alive (positions only); the text is made
//! later, once the checksum is known. Block style gets a new line at the
//! indentation of its neighbours; flow style (and JSON) gets a quoted entry
//! before the closing brace; a `null` value is replaced by a flow mapping.
//!
//! A post-renderer must never write a broken stream, and YAML has corners (comments inside
//! flow mappings, complex keys, anchors) where a text edit can go wrong. So every slot is
//! proven when it is found: the edit is made with a stand-in value, the document is parsed
//! again, and it must hold the annotation at the template and equal the original everywhere
//! else. A slot that fails the proof is refused: the template is left alone, with a warning.

use std::ops::Range;

use saphyr_parser::ScalarStyle;

use super::node::{closing_quote_end, Limits, Node, Pos, Style, Value};
use super::parse::parse_documents;

/// The value a slot is proven with: a checksum's shape (the real one is written the same way).
const PROBE: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The path from a pod template to its annotations.
const LEVELS: [&str; 2] = ["metadata", "annotations"];

/// Where and how an annotation goes into a pod template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The value already there, if any.
    pub existing: Option<String>,
    place: Place,
    /// The mappings from the node down to the key (`metadata`, `annotations` for a pod
    /// template's annotation), which the edit creates where they are missing.
    levels: &'static [&'static str],
}

/// Where new lines go above a first key that has comment lines right above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comments {
    /// Above the comments: they belong to the key below (a pod template's first key).
    WithKey,
    /// Between the comments and the key: the comments describe the document (Helm's
    /// `# Source:` line above a document's first key).
    AboveAll,
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
    #[error("its existing `{key}` annotation carries the anchor `&{anchor}`, which an alias uses elsewhere")]
    AnchorUsed { key: String, anchor: String },
    #[error(
        "its first {0} key is written as a complex key (`? `) in a way reconfig does not edit"
    )]
    ComplexKey(&'static str),
    #[error("the edit would not leave the rest of the document as it is ({0}); add the annotation by hand, or write the template in plain block style")]
    Unproven(String),
}

impl SlotError {
    /// The key already holds a value that cannot be rewritten in place (an anchored or a block
    /// scalar): a value reconfig did not write, which another key can sit beside.
    pub fn is_about_existing_value(&self) -> bool {
        matches!(
            self,
            SlotError::AnchorUsed { .. } | SlotError::BlockScalar(_)
        )
    }
}

/// One replacement in a document's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
}

/// Which annotation a pod template's checksum goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumKey {
    /// The run's annotation key (`checksum/config` unless `--annotation` says otherwise).
    Configured,
    /// reconfig's own key, beside a value under the configured key that reconfig did not write.
    Own,
}

/// A pod template's checksum edit, kept as what makes its text: the proven place, the key and
/// the checksum. Its text (the key, the quoted checksum, indentation, and `metadata:` or
/// `annotations:` lines where they are missing: about 120 bytes) is made by [`Self::edit`] as
/// the stream is written, so a stream of many workloads does not hold all of it until output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumEdit {
    place: Place,
    pub key: ChecksumKey,
    checksum: [u8; 32],
}

impl ChecksumEdit {
    /// The edit that writes the checksum under `key` (the name [`Self::key`] stands for).
    pub fn edit(&self, key: &str) -> Edit {
        let slot = Slot {
            existing: None,
            place: self.place.clone(),
            levels: &LEVELS,
        };
        slot.edit(key, &hex::encode(self.checksum))
    }
}

impl Slot {
    /// Finds where `key` goes in the pod template `template` of the document `root`, whose
    /// text is `text`, and proves that the edit leaves everything else as it is.
    pub fn find(
        root: &Node<'_>,
        template: &Node<'_>,
        text: &str,
        key: &str,
    ) -> Result<Slot, SlotError> {
        Slot::find_in(
            root,
            template,
            text,
            "pod template",
            &LEVELS,
            key,
            Comments::WithKey,
        )
    }

    /// Finds where `key` goes under `levels` of `node` (any mapping of the document `root`,
    /// the root itself included), and proves the edit as [`Slot::find`] does.
    pub fn find_in(
        root: &Node<'_>,
        node: &Node<'_>,
        text: &str,
        what: &'static str,
        levels: &'static [&'static str],
        key: &str,
        comments: Comments,
    ) -> Result<Slot, SlotError> {
        let slot = Slot::locate(node, text, what, levels, key, comments)?;
        if !slot.routine(text) {
            slot.prove(root, node, text, key)?;
        }
        Ok(slot)
    }

    /// Whether this slot and `other` insert at the same place (the same missing mapping, or
    /// the same existing one), so that their entries can go in as one edit.
    pub fn same_insertion(&self, other: &Slot) -> bool {
        !matches!(self.place, Place::Value(_) | Place::EmptyValue(_)) && self.place == other.place
    }

    /// The two edits of nearly every render, which the tests hold to the rule on every shape,
    /// need no proof (it would cost a second parse of every workload): new lines above a
    /// first key that stands alone at the start of its line, and a one-line scalar value
    /// replaced. Everything else (flow style, `null`, `- ` or `? ` before the key, anchors,
    /// tags, values over several lines) is proven, and so is every edit in a document that may
    /// hold an anchor (an edit under one would change its aliases too).
    fn routine(&self, text: &str) -> bool {
        if text.contains('&') {
            return false;
        }
        match &self.place {
            Place::Block {
                at, own_line: true, ..
            } => {
                let key = text[*at..].trim_start_matches([' ', '\r', '\n']);
                !key.starts_with(['&', '!', '*', '?', '#', '{', '[', '-', ':'])
                    && !text[*at..].trim_start().starts_with('#')
            }
            Place::Value(range) => {
                let value = &text[range.clone()];
                !value.contains('\n') && !value.starts_with(['&', '!', '*'])
            }
            _ => false,
        }
    }

    fn locate(
        start: &Node<'_>,
        text: &str,
        what: &'static str,
        levels: &'static [&'static str],
        key: &str,
        comments: Comments,
    ) -> Result<Slot, SlotError> {
        let mut node = start;
        let mut what = what;
        for (depth, level) in levels.iter().enumerate() {
            check(node, what)?;
            if node.is_null() {
                return Ok(Slot::null(node, text, levels, levels.len() - depth));
            }
            match node.entry(level) {
                Some((_, value)) => {
                    node = value;
                    what = level;
                }
                None => return insert(node, text, levels, levels.len() - depth, what, comments),
            }
        }
        check(node, what)?;
        if node.is_null() {
            return Ok(Slot::null(node, text, levels, 0));
        }
        let Some((_, value)) = node.entry(key) else {
            return insert(node, text, levels, 0, what, comments);
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
                    // An anchor or a tag before the value stays; the scalar after it is replaced.
                    let (start, anchor) = past_properties(text, value.start.offset);
                    if let Some(anchor) = anchor {
                        if text.contains(&format!("*{anchor}")) {
                            return Err(SlotError::AnchorUsed {
                                key: key.to_string(),
                                anchor: anchor.to_string(),
                            });
                        }
                    }
                    Place::Value(start..scalar_end(text, start, value))
                };
                Ok(Slot {
                    existing,
                    place,
                    levels,
                })
            }
            Value::Scalar(..) => Err(SlotError::BlockScalar(key.to_string())),
            _ => Err(SlotError::NotMapping("annotation value")),
        }
    }

    /// Makes the edit with a stand-in value and checks the result: it parses, the template
    /// holds the annotation, and the rest of the document is unchanged.
    fn prove(
        &self,
        root: &Node<'_>,
        template: &Node<'_>,
        text: &str,
        key: &str,
    ) -> Result<(), SlotError> {
        let edited = apply(text, &mut [self.edit(key, PROBE)]);
        let docs = parse_documents(&edited, Limits::default())
            .map_err(|e| SlotError::Unproven(format!("the result does not parse: {e}")))?;
        // The edit comes after the object's start, so the object (a document, or an item of a
        // `kind: List`) starts where it did.
        let Some(new_root) = docs
            .iter()
            .flatten()
            .find_map(|d| node_at(d, root.start.offset))
        else {
            return Err(SlotError::Unproven("the document moved".into()));
        };
        let proof = Proof {
            template: (template.start.offset, template.end.offset),
            key,
            levels: self.levels,
        };
        if proof.same(root, new_root) {
            Ok(())
        } else {
            Err(SlotError::Unproven(
                "the result differs elsewhere, or lacks the annotation".into(),
            ))
        }
    }

    fn null(node: &Node<'_>, text: &str, levels: &'static [&'static str], missing: usize) -> Slot {
        let range = if node.start.offset == node.end.offset {
            after_colon(text, node.start.offset)
        } else {
            node.start.offset..node.end.offset
        };
        Slot {
            existing: None,
            place: Place::Null { range, missing },
            levels,
        }
    }

    /// The checksum edit of a pod template's slot (one [`Slot::find`] found), made into text
    /// only as it is written.
    pub fn checksum_edit(&self, key: ChecksumKey, checksum: [u8; 32]) -> ChecksumEdit {
        debug_assert_eq!(
            self.levels, LEVELS,
            "a checksum goes to a pod template's annotations"
        );
        ChecksumEdit {
            place: self.place.clone(),
            key,
            checksum,
        }
    }

    /// The edit that sets the annotation to `value`.
    pub fn edit(&self, key: &str, value: &str) -> Edit {
        self.edit_entries(&[(key, quote(value))])
    }

    /// The edit that writes `entries`, each a key and its value as YAML text (see [`quote`]):
    /// one entry where the key is already there (the slot of that key), several where they
    /// go into the same place (slots for which [`Slot::same_insertion`] holds).
    pub fn edit_entries(&self, entries: &[(&str, String)]) -> Edit {
        let levels = self.levels;
        let value = entries.first().map_or("", |(_, value)| value.as_str());
        match &self.place {
            Place::Value(range) => Edit {
                range: range.clone(),
                text: value.to_string(),
            },
            Place::EmptyValue(at) => Edit {
                range: *at..*at,
                text: format!(" {value}"),
            },
            Place::Null { range, missing } => {
                let space = if range.is_empty() { " " } else { "" };
                Edit {
                    range: range.clone(),
                    text: format!("{space}{{{}}}", flow_entry(levels, entries, *missing)),
                }
            }
            Place::Flow { at, comma, missing } => Edit {
                range: *at..*at,
                text: format!(
                    "{}{}",
                    if *comma { ", " } else { "" },
                    flow_entry(levels, entries, *missing)
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
                let added = &levels[levels.len() - missing..];
                for (i, level) in added.iter().enumerate() {
                    text.push_str(level);
                    text.push(':');
                    text.push_str(newline);
                    text.push_str(&" ".repeat(indent + 2 * (i + 1)));
                }
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        text.push_str(&" ".repeat(indent + 2 * added.len()));
                    }
                    text.push_str(key);
                    text.push_str(": ");
                    text.push_str(value);
                    text.push_str(newline);
                }
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

/// The mapping that starts at `offset`: the node itself, or one nested in it.
fn node_at<'n, 'a>(node: &'n Node<'a>, offset: usize) -> Option<&'n Node<'a>> {
    if node.start.offset == offset && matches!(node.value(), Value::Mapping(..)) {
        return Some(node);
    }
    if offset < node.start.offset || offset >= node.end.offset.max(node.start.offset + 1) {
        return None;
    }
    match node.value() {
        Value::Mapping(entries, _) => entries.iter().find_map(|(_, v)| node_at(v, offset)),
        Value::Sequence(items, _) => items.iter().find_map(|v| node_at(v, offset)),
        Value::Scalar(..) | Value::Shared(_) => None,
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
    levels: &'static [&'static str],
    missing: usize,
    what: &'static str,
    comments: Comments,
) -> Result<Slot, SlotError> {
    let Value::Mapping(entries, style) = mapping.value() else {
        return Err(SlotError::NotMapping(what));
    };
    // Keys a merge key (`<<`) brought in are written elsewhere: place the new line by the
    // mapping's own keys, and leave a mapping that has none alone.
    let mut own_first = entries.iter().find(|(key, _)| !key.aliased);
    if *style == Style::Block && !entries.is_empty() && own_first.is_none() {
        return Err(SlotError::Aliased(what));
    }
    if comments == Comments::AboveAll {
        // A document's new top-level field goes above the first key that stands alone on its
        // line: in a `kind: List` item the first key follows the `- `.
        let alone = |key: &Node<'_>| {
            let line_start = text[..key.start.offset].rfind('\n').map_or(0, |i| i + 1);
            text[line_start..key.start.offset]
                .bytes()
                .all(|b| b == b' ')
        };
        if let Some(entry) = entries.iter().find(|(key, _)| !key.aliased && alone(key)) {
            own_first = Some(entry);
        }
    }
    let place = match (style, own_first) {
        (Style::Block, Some((first, _))) => {
            let mut indent = first.start.column - 1;
            let mut key_at = first.start.offset;
            let line_start = text[..key_at].rfind('\n').map_or(0, |i| i + 1);
            let before_key = &text[line_start..key_at];
            let mut own_line = before_key.bytes().all(|b| b == b' ');
            if before_key.contains('?') {
                // `? key`: the new lines go above the `?`, at its column, never inside the key.
                let body = before_key.trim_start_matches(' ');
                if !body.starts_with('?') || !body[1..].bytes().all(|b| b == b' ') {
                    return Err(SlotError::ComplexKey(what));
                }
                indent = before_key.len() - body.len();
                key_at = line_start + indent;
                own_line = true;
            }
            let crlf = text[key_at..]
                .find('\n')
                .is_some_and(|end| text[..key_at + end].ends_with('\r'));
            Place::Block {
                at: if own_line && comments == Comments::WithKey {
                    above_comments(text, line_start, indent)
                } else if own_line {
                    line_start
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
            Place::Flow {
                at,
                comma: needs_comma(text, entries, at),
                missing,
            }
        }
    };
    Ok(Slot {
        existing: None,
        place,
        levels,
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

/// Whether a new entry before the `}` at `at` needs a comma: the mapping has entries and no
/// comma follows the last one. Comments between them are skipped (a `,` or `{` in a comment
/// is no comma).
fn needs_comma(text: &str, entries: &[(Node<'_>, Node<'_>)], at: usize) -> bool {
    let Some((key, value)) = entries.last() else {
        return false;
    };
    let last = if value.start.offset == value.end.offset {
        key
    } else {
        value
    };
    let from = match last.value() {
        Value::Scalar(..) => scalar_end(text, past_properties(text, last.start.offset).0, last),
        // A nested collection ends at its closing bracket (its end may be a trailing comma).
        _ => text[last.end.offset..at]
            .find(['}', ']'])
            .map_or(last.end.offset, |i| last.end.offset + i + 1),
    };
    let Some(between) = text.get(from..at) else {
        return true;
    };
    let mut in_comment = false;
    for b in between.bytes() {
        match b {
            b'\n' => in_comment = false,
            _ if in_comment => {}
            b'#' => in_comment = true,
            b',' => return false,
            _ => {}
        }
    }
    true
}

/// Skips a node's anchor (`&name`) and tag (`!tag`) at `start`: where its own text starts, and
/// the anchor's name.
fn past_properties(text: &str, mut start: usize) -> (usize, Option<&str>) {
    let mut anchor = None;
    while let Some(rest) = text.get(start..) {
        let Some(sigil) = rest.chars().next().filter(|c| matches!(c, '&' | '!')) else {
            break;
        };
        let token = rest.find([' ', '\t', '\r', '\n']).unwrap_or(rest.len());
        if sigil == '&' {
            anchor = Some(&rest[1..token]);
        }
        let blanks = rest[token..]
            .find(|c| c != ' ' && c != '\t')
            .unwrap_or(rest.len() - token);
        start += token + blanks;
    }
    (start, anchor)
}

/// Where a scalar's own text, starting at `start`, ends: the parser's span of a quoted scalar runs on over a trailing comment.
fn scalar_end(text: &str, start: usize, node: &Node<'_>) -> usize {
    // By the text, not the style: a tag can make a plain scalar a string (`!!str 12`) and a
    // quoted one a number (`!!int "12"`).
    if !matches!(node.value(), Value::Scalar(..)) {
        return node.end.offset;
    }
    closing_quote_end(text, start).unwrap_or(node.end.offset)
}

/// The empty range just after the `:` that follows a key ending at `from`.
fn after_colon(text: &str, from: usize) -> Range<usize> {
    let at = text[from..].find(':').map_or(from, |i| from + i + 1);
    at..at
}

/// The rule an edited document is held to: equal to the original, except that the pod
/// template spanning `template` (its first key starts where it does, but ends before it)
/// holds `metadata.annotations[key]` = [`PROBE`].
struct Proof<'k> {
    template: (usize, usize),
    key: &'k str,
    levels: &'static [&'static str],
}

impl Proof<'_> {
    fn same(&self, old: &Node<'_>, new: &Node<'_>) -> bool {
        if (old.start.offset, old.end.offset) == self.template && !old.aliased {
            return self.annotated(Some(old), new, self.levels);
        }
        match (old.value(), new.value()) {
            (Value::Scalar(a, x), Value::Scalar(b, y)) => {
                a == b && (*x == ScalarStyle::Plain) == (*y == ScalarStyle::Plain)
            }
            (Value::Sequence(a, _), Value::Sequence(b, _)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(a, b)| self.same(a, b))
            }
            (Value::Mapping(a, _), Value::Mapping(b, _)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((k, v), (l, w))| self.same(k, l) && self.same(v, w))
            }
            _ => false,
        }
    }

    /// `new` is `old` (absent or null: an empty mapping) with `levels` down to the annotation
    /// added or set, and nothing else changed.
    fn annotated(&self, old: Option<&Node<'_>>, new: &Node<'_>, levels: &[&str]) -> bool {
        let old = old.filter(|o| !o.is_null());
        let empty = Vec::new();
        let (old_entries, new_entries) = match (old.map(Node::value), new.value()) {
            (None, Value::Mapping(b, _)) => (&empty, b),
            (Some(Value::Mapping(a, _)), Value::Mapping(b, _)) => (a, b),
            _ => return false,
        };
        let name = levels.first().copied().unwrap_or(self.key);
        let (old_rest, new_rest) = (others(old_entries, name), others(new_entries, name));
        let rest_same = old_rest.len() == new_rest.len()
            && old_rest
                .iter()
                .zip(&new_rest)
                .all(|((k, v), (l, w))| self.same(k, l) && self.same(v, w));
        let new_level: Vec<&Node<'_>> = new_entries
            .iter()
            .filter(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v)
            .collect();
        let [new_level] = new_level[..] else {
            return false;
        };
        rest_same
            && match levels.split_first() {
                None => new_level.as_str() == Some(PROBE),
                Some((_, deeper)) => {
                    self.annotated(old.and_then(|o| o.get(name)), new_level, deeper)
                }
            }
    }
}

/// A mapping's entries whose key is not `name`.
fn others<'n, 'a>(
    entries: &'n [(Node<'a>, Node<'a>)],
    name: &str,
) -> Vec<&'n (Node<'a>, Node<'a>)> {
    entries
        .iter()
        .filter(|(k, _)| k.as_str() != Some(name))
        .collect()
}

fn flow_entry(levels: &[&str], entries: &[(&str, String)], missing: usize) -> String {
    let mut inner = entries
        .iter()
        .map(|(key, value)| format!("{}: {value}", quote(key)))
        .collect::<Vec<_>>()
        .join(", ");
    for level in levels[levels.len() - missing..].iter().rev() {
        inner = format!("{}: {{{inner}}}", quote(level));
    }
    inner
}

/// Double-quoted, so a checksum of digits only stays a string (and JSON stays JSON).
pub fn quote(s: &str) -> String {
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

const LABELS: [&str; 2] = ["metadata", "labels"];

/// Where versioning a ConfigMap or Secret edits its text: its name, a label, annotations,
/// and `immutable`. Found while the tree is alive; the edits are made once the new name is
/// known (`manifest::version`).
#[derive(Debug, Clone)]
pub struct RenameSlots {
    /// `metadata.name`'s text and quote, or `None` when it cannot be replaced in place.
    pub name: Option<(Range<usize>, Option<char>)>,
    /// The slot of the label key asked for.
    pub label: Result<Slot, SlotError>,
    /// One slot per annotation key asked for, in the order asked.
    pub annotations: Vec<(String, Result<Slot, SlotError>)>,
    /// The slot of the top-level `immutable` field.
    pub immutable: Result<Slot, SlotError>,
    /// The document may hold a YAML anchor, whose aliases an edit would change too.
    pub anchors: bool,
    /// Where the object starts, for messages.
    pub pos: Pos,
}

impl RenameSlots {
    /// Finds the slots in the object `root` (a document, or an item of a `kind: List`).
    pub fn find(root: &Node<'_>, text: &str, label: &str, annotations: &[&str]) -> Self {
        let name = root
            .path("metadata.name")
            .and_then(|node| replaceable_scalar(text, node));
        let slot = |levels: &'static [&'static str], key: &str, comments| {
            Slot::find_in(root, root, text, "object", levels, key, comments)
        };
        RenameSlots {
            name,
            label: slot(&LABELS, label, Comments::WithKey),
            annotations: annotations
                .iter()
                .map(|key| (key.to_string(), slot(&LEVELS, key, Comments::WithKey)))
                .collect(),
            immutable: slot(&[], "immutable", Comments::AboveAll),
            anchors: may_hold_anchor(text),
            pos: root.start,
        }
    }
}

/// Whether `text` may hold a YAML anchor: an `&` that starts a token and is followed by a
/// name. Errs towards yes (an `&x` inside a quoted string counts), never towards no.
pub fn may_hold_anchor(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, b)| {
        *b == b'&'
            && (i == 0
                || matches!(
                    bytes[i - 1],
                    b' ' | b'\t' | b'\n' | b'[' | b'{' | b',' | b'!'
                ))
            && bytes
                .get(i + 1)
                .is_some_and(|n| !matches!(n, b' ' | b'\t' | b'\r' | b'\n'))
    })
}

/// The text of a one-line plain or quoted scalar that can be replaced as a whole (a name a
/// versioned object is renamed in), with its quote character (`None` when plain); `None` for
/// anything else: a scalar from an alias or a merge key, with an anchor or a tag, a block
/// scalar, or one over several lines.
pub fn replaceable_scalar(text: &str, node: &Node<'_>) -> Option<(Range<usize>, Option<char>)> {
    if node.aliased || node.start.offset >= node.end.offset {
        return None;
    }
    let quote = match node.value() {
        Value::Scalar(_, ScalarStyle::Plain) => None,
        Value::Scalar(_, ScalarStyle::SingleQuoted) => Some('\''),
        Value::Scalar(_, ScalarStyle::DoubleQuoted) => Some('"'),
        _ => return None,
    };
    let start = node.start.offset;
    let range = start..scalar_end(text, start, node);
    let written = text.get(range.clone())?;
    let plain_ok = quote.is_some() || written == node.as_str()?;
    (plain_ok && !written.contains('\n') && !written.starts_with(['&', '!', '*']))
        .then_some((range, quote))
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

    /// The slot of the document's `spec.template`.
    fn find(text: &str) -> Result<Slot, SlotError> {
        let docs = parse_documents(text, Limits::default()).expect("yaml");
        let root = docs[0].as_ref().expect("doc");
        let template = root.path("spec.template").expect("template");
        Slot::find(root, template, text, KEY)
    }

    /// Annotates the document's `spec.template` and returns the new text.
    fn annotate(text: &str, value: &str) -> String {
        let slot = find(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
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
    fn replaces_a_tagged_value_and_keeps_its_tag_and_comment() {
        // Tags change how a scalar is typed (`!!int "5"` is a number), not where its text ends.
        for (value, tag) in [
            ("!!int \"5\"", "!!int "),
            ("!!str old", "!!str "),
            ("!x 'o'", "!x "),
        ] {
            let text = format!(
                "spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: {value} # keep\n"
            );
            assert_eq!(
                annotate(&text, "new"),
                format!("spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: {tag}\"new\" # keep\n")
            );
        }
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
        assert_eq!(find(text), Err(SlotError::Aliased("pod template")));

        let text = "spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: |\n          x\n";
        assert!(matches!(find(text), Err(SlotError::BlockScalar(_))));
    }

    #[test]
    fn comments_before_a_closing_brace_do_not_decide_the_comma() {
        let t = |annotations: &str| {
            format!("spec:\n  template:\n    metadata: {{annotations: {annotations}\n    }}}}\n")
        };
        assert_eq!(
            annotate(&t("{a: b, # note"), "1"),
            t("{a: b, # note").replace("\n    }}", "\n    \"checksum/config\": \"1\"}}")
        );
        assert_eq!(
            annotate(&t("{a: b # x,"), "1"),
            t("{a: b # x,").replace("\n    }}", "\n    , \"checksum/config\": \"1\"}}")
        );
        assert_eq!(
            annotate(&t("{a: 'b' # {"), "1"),
            t("{a: 'b' # {").replace("\n    }}", "\n    , \"checksum/config\": \"1\"}}")
        );
        assert_eq!(
            annotate(&t("{a: {x: 1} # ,"), "1"),
            t("{a: {x: 1} # ,").replace("\n    }}", "\n    , \"checksum/config\": \"1\"}}")
        );
        assert_eq!(
            annotate(&t("{ # only a comment"), "1"),
            t("{ # only a comment").replace("\n    }}", "\n    \"checksum/config\": \"1\"}}")
        );
    }

    #[test]
    fn complex_keys_get_the_new_lines_above_them() {
        assert_eq!(
            annotate("spec:\n  template:\n    ? spec\n    : containers: []\n", "1"),
            "spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: \"1\"\n    ? spec\n    : containers: []\n"
        );
        assert_eq!(
            annotate("spec:\n  template:\n    metadata:\n      ? labels\n      : {a: b}\n", "1"),
            "spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: \"1\"\n      ? labels\n      : {a: b}\n"
        );
    }

    #[test]
    fn an_anchor_on_the_annotation_stays_or_refuses() {
        let text = "spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: &o old\n        other: *o\n";
        assert_eq!(
            find(text),
            Err(SlotError::AnchorUsed {
                key: KEY.into(),
                anchor: "o".into()
            })
        );
        assert_eq!(
            annotate("spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: &o !!str 'old' # c\n", "1"),
            "spec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: &o !!str \"1\" # c\n"
        );
    }

    #[test]
    fn an_edit_that_would_change_anything_else_is_refused() {
        // The template is anchored and aliased elsewhere: annotating it would annotate the copy too.
        let text = "spec:\n  template: &t\n    spec: {}\n  other: *t\n";
        assert!(
            matches!(find(text), Err(SlotError::Unproven(_))),
            "{:?}",
            find(text)
        );
    }
}
