//! The full YAML parser: any YAML, every error message, positions kept.
//!
//! It drives `saphyr-parser`'s events into our position-keeping tree and reads the stream as
//! Helm and kubectl do (go-yaml and sigs.k8s.io/yaml): merge keys (`<<: *base`, a list of
//! them, Helm 4's `!!merge <<:`) are resolved and `!!binary` scalars decoded. Anchored nodes
//! are shared by their aliases, never copied, and what aliases and merges repeat is counted
//! against the limits, so an alias bomb is refused early in little memory. Aliased and
//! merged nodes are marked so they are never edited in place. The fast path (`fast`)
//! handles plain renders; this parser handles everything it declines.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use base64::Engine as _;
use saphyr_parser::{go_yaml_break, Event, Parser, ScalarStyle, ScanError, Span, Tag};

use super::node::{
    closing_quote_end, yaml_lines, Limits, Node, Pos, Style, SyntaxError, Value, GO_BASE64,
    NODE_BYTES,
};

/// Parses every document of `text` with the general YAML parser.
pub fn parse<'a>(text: &'a str, limits: Limits) -> Result<Vec<Option<Node<'a>>>, SyntaxError> {
    let positions = Positions::new(text);
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame<'a>> = Vec::new();
    let mut anchors: Vec<(usize, Rc<Node<'a>>)> = Vec::new();
    let mut root: Option<Node<'a>> = None;
    let mut budget = Budget::new(limits);
    let mut last_end = Pos::default();
    let breaks = go_yaml_breaks(text);
    let mut quoted: Vec<std::ops::Range<usize>> = Vec::new();

    let syntax = |positions: &Positions, e: ScanError| SyntaxError {
        pos: positions.pos(e.marker()),
        message: e.info().to_string(),
    };

    while let Some(event) = parser.next_event() {
        let (event, span): (Event<'a>, Span) = event.map_err(|e| syntax(&positions, e))?;
        let start = positions.pos(&span.start);
        let end = positions.pos(&span.end);
        let previous_end = std::mem::replace(&mut last_end, end);
        let mut merge_key = false;
        let complete = match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::Nothing => continue,
            Event::DocumentStart(_) => {
                // Its directives are the text since the previous event.
                let prolog = text.get(previous_end.offset..start.offset).unwrap_or("");
                if let Some(error) = unsupported_directive(prolog, previous_end) {
                    return Err(error);
                }
                root = None;
                budget = Budget::new(limits);
                anchors.clear();
                continue;
            }
            Event::DocumentEnd => {
                docs.push(root.take());
                continue;
            }
            Event::Scalar(value, style, anchor, tag) => {
                if !breaks.is_empty()
                    && matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted)
                {
                    // saphyr's span runs on over a comment after the scalar, where a NEL, LS or PS ends
                    // the comment for go-yaml and is outside the quotes.
                    let close = closing_quote_end(text, start.offset).unwrap_or(end.offset);
                    quoted.push(start.offset..close.min(end.offset));
                }
                merge_key = value == "<<"
                    && match tag.as_deref() {
                        None => style == ScalarStyle::Plain,
                        Some(tag) => is_core(tag, "merge"),
                    };
                let (value, style) = scalar(text, value, style, tag.as_deref(), start, end)?;
                if unindented_top_level_block(&value, style, stack.is_empty(), start) {
                    // saphyr's span of a block scalar with content starts at its first line.
                    return Err(SyntaxError {
                        pos: start,
                        message: "a block scalar at a document's top level needs its lines \
                                  indented by at least one space: go-yaml (Helm, kubectl) and \
                                  libyaml end it before an unindented line"
                            .into(),
                    });
                }
                budget.real(start)?;
                let node = Node {
                    value: Value::Scalar(value, style),
                    start,
                    end,
                    aliased: false,
                };
                if anchor != 0 {
                    budget.anchor(&mut anchors, anchor, node)
                } else {
                    node
                }
            }
            Event::Alias(id) => {
                let Some((_, target)) = anchors.iter().rev().find(|(a, _)| *a == id) else {
                    return Err(SyntaxError {
                        pos: start,
                        message:
                            "alias refers to an anchor that is not defined before it (or to itself)"
                                .into(),
                    });
                };
                budget.repeat(start, budget.weight_of_shared(target))?;
                Node {
                    start: target.start,
                    end: target.end,
                    value: Value::Shared(Rc::clone(target)),
                    aliased: true,
                }
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
                        merges: Vec::new(),
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
                        merges,
                        ..
                    }) => {
                        let entries = if merges.is_empty() {
                            entries
                        } else {
                            merge(entries, &merges, &mut budget)?
                        };
                        let entries = fitted(entries);
                        (
                            Node {
                                value: Value::Mapping(entries, style),
                                start: s,
                                end,
                                aliased: false,
                            },
                            anchor,
                        )
                    }
                    Some(Frame::Sequence {
                        start: s,
                        style,
                        anchor,
                        items,
                    }) => (
                        Node {
                            value: Value::Sequence(fitted(items), style),
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
                budget.real(start)?;
                if anchor != 0 {
                    budget.anchor(&mut anchors, anchor, node)
                } else {
                    node
                }
            }
        };
        match stack.last_mut() {
            None => root = Some(complete),
            Some(Frame::Sequence { items, .. }) => items.push(complete),
            Some(Frame::Mapping {
                start: mapping_start,
                entries,
                key,
                merges,
                ..
            }) => match key.take() {
                None if empty_implicit_key(text, &complete) => {
                    return Err(SyntaxError {
                        pos: complete.start,
                        message: "a mapping key is missing before `:`: YAML 1.2 reads an empty \
                                  key here, but go-yaml (Helm, kubectl) and libyaml refuse it"
                            .into(),
                    });
                }
                None => {
                    let starts_mapping = text
                        .get(mapping_start.offset..complete.start.offset)
                        .is_some_and(only_properties);
                    if let Some(error) =
                        key_over_go_yaml_break(text, &breaks, &complete, starts_mapping)
                    {
                        return Err(error);
                    }
                    *key = Some((complete, merge_key));
                }
                Some((k, is_merge)) => {
                    if is_merge {
                        merges.push(entries.len());
                    }
                    entries.push((k, complete));
                }
            },
        }
    }
    if !stack.is_empty() {
        return Err(SyntaxError {
            pos: last_end,
            message: "document ends inside an unclosed collection".into(),
        });
    }
    if let Some(error) = unquoted_go_yaml_break(text, &breaks, &quoted) {
        return Err(error);
    }
    Ok(docs)
}

/// The offsets of the characters go-yaml reads as line breaks and YAML 1.2 as content: NEL
/// (U+0085), LS (U+2028) and PS (U+2029).
///
/// In a quoted scalar the scanner reads them as go-yaml does (go-yaml v3, which Helm 4
/// re-serialises a render with, writes LS raw in a single-quoted scalar); anywhere else they
/// are refused ([`unquoted_go_yaml_break`]). Three searches for rare bytes first: this runs
/// on every document the full parser reads.
fn go_yaml_breaks(text: &str) -> Vec<usize> {
    if !(text.contains('\u{2028}') || text.contains('\u{2029}') || text.contains('\u{85}')) {
        return Vec::new();
    }
    text.char_indices()
        .filter(|&(_, c)| go_yaml_break(c))
        .map(|(at, _)| at)
        .collect()
}

/// The first of `breaks` (offsets, in order) outside every `quoted` span (in order), as an
/// error: go-yaml (Helm, kubectl) breaks the line there, YAML 1.2 does not, and the two
/// readings differ (a plain scalar's folding, a comment's end, a block scalar's lines).
fn unquoted_go_yaml_break(
    text: &str,
    breaks: &[usize],
    quoted: &[std::ops::Range<usize>],
) -> Option<SyntaxError> {
    let mut spans = quoted.iter().peekable();
    let at = *breaks.iter().find(|&&at| {
        while spans.next_if(|span| span.end <= at).is_some() {}
        !spans.peek().is_some_and(|span| span.contains(&at))
    })?;
    let c = text[at..].chars().next().unwrap_or_default();
    let name = match c {
        '\u{85}' => "NEXT LINE",
        '\u{2028}' => "LINE SEPARATOR",
        _ => "PARAGRAPH SEPARATOR",
    };
    Some(error_at(
        text,
        at,
        format!(
            "U+{:04X} ({name}) outside a quoted string: go-yaml, which Helm and kubectl read \
             with, takes it for a line break, YAML 1.2 for a character; reconfig refuses it \
             rather than read it otherwise than Helm (write it escaped in a double-quoted \
             string: \\N, \\L, \\P)",
            u32::from(c)
        ),
    ))
}

/// A quoted implicit key that NEL, LS or PS breaks, as an error: to go-yaml (Helm, kubectl) the
/// key runs over two lines, and an implicit key must sit on one (`"a<NEL>b": 1`). The scanner
/// counts lines at CR and LF only, so it cannot tell. An explicit key (`? "a<NEL>b"`) may span
/// lines. A key that `starts_mapping` (only its anchor and tag before it) is no mapping's
/// explicit key even after a `?`: that `?` is an outer mapping's, whose key is this mapping
/// (`? "a<NEL>b": 1`, a differential fuzz finding).
fn key_over_go_yaml_break(
    text: &str,
    breaks: &[usize],
    key: &Node<'_>,
    starts_mapping: bool,
) -> Option<SyntaxError> {
    // An alias used as a key sits on one line, wherever its anchor's scalar runs.
    let scalar = match &key.value {
        Value::Shared(anchored) if !key.aliased => &anchored.value,
        value => value,
    };
    let span = key.start.offset..key.end.offset;
    let at = *breaks.iter().find(|&&at| span.contains(&at))?;
    if !matches!(
        scalar,
        Value::Scalar(_, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted)
    ) || (!starts_mapping && explicit_key(text, key.start.offset))
    {
        return None;
    }
    Some(error_at(
        text,
        at,
        "a quoted key that NEL, LS or PS breaks: go-yaml, which Helm and kubectl read with, \
         takes the character for a line break, and a key without `?` must be on one line"
            .into(),
    ))
}

/// Whether `text` holds nothing but node properties (anchors, tags) and spaces: what may stand
/// between where a mapping starts and its first key.
fn only_properties(text: &str) -> bool {
    text.split([' ', '\t'])
        .all(|word| word.is_empty() || word.starts_with('&') || word.starts_with('!'))
}

/// Whether the node at `start` follows a `?` indicator (blanks, line breaks, an anchor and a
/// tag may come between).
fn explicit_key(text: &str, start: usize) -> bool {
    let mut before = text[..start].trim_end_matches([' ', '\t', '\r', '\n']);
    for _ in 0..2 {
        let word = before
            .rsplit([' ', '\t', '\r', '\n'])
            .next()
            .unwrap_or_default();
        if !(word.starts_with('&') || word.starts_with('!')) {
            break;
        }
        before = before[..before.len() - word.len()].trim_end_matches([' ', '\t', '\r', '\n']);
    }
    before.strip_suffix('?').is_some_and(|rest| {
        rest.is_empty() || rest.ends_with([' ', '\t', '\r', '\n', '{', '[', ','])
    })
}

/// An error at byte `at` of `text`, its line and column counted as the scanner counts them
/// before the go-yaml breaks (LF ends a line).
fn error_at(text: &str, at: usize, message: String) -> SyntaxError {
    let before = &text[..at];
    SyntaxError {
        pos: Pos {
            offset: at,
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
        },
        message,
    }
}

/// A `---` or `...` line that NEL, LS or PS ends or starts (in a quoted scalar: elsewhere
/// they are refused): a document marker to go-yaml, which refuses it there ("found unexpected
/// document indicator"); saphyr, for which such a break is no line end, reads on. Checked on
/// the text as written, after [`parse`] or `lenient`'s re-indented copy read it: re-indenting
/// a `---` at column 0 hides the marker.
pub fn go_yaml_document_marker(text: &str) -> Option<SyntaxError> {
    let breaks = go_yaml_breaks(text);
    let is_break = |c: char| matches!(c, '\n' | '\r') || go_yaml_break(c);
    let marker_at = |rest: &str| {
        (rest.starts_with("---") || rest.starts_with("..."))
            && rest[3..]
                .chars()
                .next()
                .is_none_or(|c| matches!(c, ' ' | '\t') || is_break(c))
    };
    let at = breaks.into_iter().find_map(|at| {
        let before = &text[..at];
        let line_start = before
            .char_indices()
            .rev()
            .find(|&(_, c)| is_break(c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let after = at + text[at..].chars().next().map_or(1, char::len_utf8);
        if marker_at(&text[line_start..]) && line_start + 3 == at {
            Some(line_start)
        } else {
            marker_at(&text[after..]).then_some(after)
        }
    })?;
    Some(error_at(
        text,
        at,
        "found unexpected document indicator: a `---` or `...` line, which NEL, LS or PS (a \
         line break to go-yaml, as Helm and kubectl read) ends or starts, inside a quoted scalar"
            .into(),
    ))
}

/// Proves `text` one document that [`parse`] accepts, a mapping with no key written twice,
/// without building its tree, and reads its top-level `kind` (`None` when there is none or it
/// is not a scalar); declines with `None` whatever it cannot decide that way.
///
/// For documents no reader needs that the fast path declines: flow collections above all. A
/// 13 MiB one-document flow mapping took 140 MiB as a tree; here only the keys of the open
/// mappings are held. It declines anchors, aliases, merge keys and `!!binary` (what they
/// mean needs the nodes), NEL, LS and PS ([`go_yaml_breaks`]), more than one document, and
/// every error, so the caller's full
/// parse is what reports one; it never accepts what [`parse`] refuses. Keys are held as
/// hashes: two keys with one hash are taken as written twice, and so declined.
pub fn check(text: &str, limits: Limits) -> Option<Option<String>> {
    if !go_yaml_breaks(text).is_empty() {
        return None;
    }
    let positions = Positions::new(text);
    let mut parser = Parser::new_from_str(text);
    let mut open: Vec<Open> = Vec::new();
    let mut documents = 0usize;
    let mut root_is_mapping = false;
    let mut kind = None;
    let mut nodes = 0usize;
    let mut last_end = Pos::default();
    while let Some(event) = parser.next_event() {
        let (event, span) = event.ok()?;
        let start = positions.pos(&span.start);
        let end = positions.pos(&span.end);
        let previous_end = std::mem::replace(&mut last_end, end);
        let scalar = match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                let prolog = text.get(previous_end.offset..start.offset).unwrap_or("");
                if documents > 1 || unsupported_directive(prolog, previous_end).is_some() {
                    return None;
                }
                continue;
            }
            Event::Alias(_) => return None,
            Event::Scalar(value, style, anchor, tag) => {
                let special = tag
                    .as_deref()
                    .is_some_and(|tag| is_core(tag, "binary") || is_core(tag, "merge"));
                if anchor != 0 || special || value == "<<" {
                    return None;
                }
                let (value, style) = scalar(text, value, style, tag.as_deref(), start, end).ok()?;
                if unindented_top_level_block(&value, style, open.is_empty(), start) {
                    return None;
                }
                Some((value, style))
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                if anchor != 0 || open.len() >= limits.max_depth {
                    return None;
                }
                let mapping = matches!(event, Event::MappingStart(..));
                if open.is_empty() {
                    root_is_mapping = mapping;
                }
                open.push(if mapping {
                    Open::Mapping {
                        keys: Vec::new(),
                        key_next: true,
                        kind_next: false,
                    }
                } else {
                    Open::Sequence
                });
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Open::Mapping { mut keys, .. } = open.pop()? {
                    if written_twice(&mut keys) {
                        return None;
                    }
                }
                None
            }
        };
        nodes += 1;
        if nodes > limits.max_nodes {
            return None;
        }
        let depth = open.len();
        let Some(Open::Mapping {
            keys,
            key_next,
            kind_next,
        }) = open.last_mut()
        else {
            continue;
        };
        if *key_next {
            *kind_next = false;
            if let Some((key, style)) = scalar {
                if key.is_empty()
                    && style == ScalarStyle::Plain
                    && text.as_bytes().get(start.offset) == Some(&b':')
                {
                    return None;
                }
                *kind_next = depth == 1 && key == "kind";
                keys.push(key_hash(&key));
            }
        } else if *kind_next {
            kind = scalar.map(|(value, _)| value.into_owned());
        }
        *key_next = !*key_next;
    }
    (documents == 1 && root_is_mapping && open.is_empty()).then_some(kind)
}

/// A collection [`check`] is inside of.
enum Open {
    Mapping {
        /// The hashes of its scalar keys so far, to find one written twice when it ends.
        keys: Vec<u64>,
        /// The next node finishing in it is a key (else a value).
        key_next: bool,
        /// The value about to finish is the document's top-level `kind`.
        kind_next: bool,
    },
    Sequence,
}

/// A key's hash for [`check`]: 8 bytes a key (a flow mapping may have half a million).
fn key_hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// Whether a hash is there twice among `keys` (which it sorts).
fn written_twice(keys: &mut [u64]) -> bool {
    keys.sort_unstable();
    keys.windows(2).any(|pair| pair[0] == pair[1])
}

/// A scalar's text as the tree keeps it: borrowed from the document where it is written there
/// as is (a plain scalar on one line, a quoted one without escapes or line breaks), else
/// saphyr's copy without its spare capacity. saphyr copies every scalar into a `String` with
/// room for a buffer's worth more (~130 bytes for `key: value`: 135 MiB of a 13 MiB flow
/// mapping); a tree holds them all at once.
fn lean<'a>(text: &'a str, value: Cow<'a, str>, start: Pos, end: Pos) -> Cow<'a, str> {
    let Cow::Owned(mut owned) = value else {
        return value;
    };
    let span = text.get(start.offset..end.offset).unwrap_or("");
    if span == owned {
        return Cow::Borrowed(span);
    }
    let inner = span
        .strip_prefix(['"', '\''])
        .and_then(|s| s.strip_suffix(['"', '\'']));
    if let Some(inner) = inner.filter(|inner| *inner == owned) {
        return Cow::Borrowed(inner);
    }
    if owned.capacity() > owned.len() + 16 {
        owned.shrink_to_fit();
    }
    Cow::Owned(owned)
}

/// A scalar's value and style as the tree holds them, for [`parse`] and [`check`] alike: typed
/// as its tag says (`!!binary` decoded), and a block scalar that ends the text unterminated
/// without a break go-yaml does not read.
fn scalar<'a>(
    text: &'a str,
    value: Cow<'a, str>,
    style: ScalarStyle,
    tag: Option<&Tag>,
    start: Pos,
    end: Pos,
) -> Result<(Cow<'a, str>, ScalarStyle), SyntaxError> {
    let value = lean(text, value, start, end);
    let (value, style) = match tag {
        Some(tag) if is_core(tag, "binary") => (binary(&value, start)?, ScalarStyle::DoubleQuoted),
        Some(tag) => (value, tagged_style(tag, style)),
        None => (value, style),
    };
    let block = matches!(style, ScalarStyle::Literal | ScalarStyle::Folded);
    let value = if block && end.offset == text.len() {
        block_scalar_at_unterminated_end(text, start, value)
    } else {
        value
    };
    Ok((value, style))
}

/// A block scalar with content at a document's top level that starts at column 1, which
/// go-yaml and libyaml end before its first unindented line and saphyr reads on.
fn unindented_top_level_block(value: &str, style: ScalarStyle, top: bool, start: Pos) -> bool {
    matches!(style, ScalarStyle::Literal | ScalarStyle::Folded)
        && top
        && start.column == 1
        && value.contains(|c| c != '\n')
}

/// A collection's children without the spare room of the last doubling (up to as much again
/// as it holds), when that room is large: trees of large flow collections are held whole.
fn fitted<T>(mut children: Vec<T>) -> Vec<T> {
    if children.capacity() > children.len() + children.len() / 4 + 16 {
        children.shrink_to_fit();
    }
    children
}

/// A directive in a document's prolog (which starts at `from`) that libyaml and go-yaml (Helm,
/// kubectl) refuse and saphyr reads on: a name that is not letters, digits, `-` and `_` followed
/// by a blank, a directive other than `%YAML` and `%TAG` (YAML 1.2 reserves them for later use,
/// both readers refuse them), and a `%YAML` version other than 1.1 or 1.2 or followed by more
/// than a comment (libyaml reads 1.1 and 1.2, go-yaml 1.1 only).
fn unsupported_directive(prolog: &str, from: Pos) -> Option<SyntaxError> {
    let mut offset = from.offset;
    // A lone CR ends a line too, to saphyr and to go-yaml: a directive may follow one.
    for (i, line) in yaml_lines(prolog).enumerate() {
        let at = offset;
        offset += line.len();
        let Some(directive) = line.strip_prefix('%') else {
            continue;
        };
        let directive = directive.trim_end_matches(['\n', '\r']);
        let name_len = directive
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
            .count();
        let (name, rest) = directive.split_at(name_len);
        let message = if name.is_empty() {
            "could not find expected directive name".to_string()
        } else if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            "found unexpected non-alphabetical character in a directive name".to_string()
        } else if name == "YAML" {
            let rest = rest.trim_start_matches([' ', '\t']);
            // go-yaml starts a comment at a `#` right after the version too.
            let (version, after) = rest.split_at(rest.find([' ', '\t', '#']).unwrap_or(rest.len()));
            let after = after.trim_start_matches([' ', '\t']);
            if !(after.is_empty() || after.starts_with('#')) {
                "did not find expected comment or line break after the %YAML version".to_string()
            } else if matches!(version, "1.1" | "1.2") {
                continue;
            } else {
                format!(
                    "found incompatible YAML document: `%YAML {version}` (libyaml reads YAML \
                     1.1 and 1.2, go-yaml, which Helm and kubectl use, 1.1 only)"
                )
            }
        } else if name == "TAG" {
            continue;
        } else {
            format!(
                "found unknown directive name `%{name}`: libyaml and go-yaml (Helm, kubectl) \
                 read only %YAML and %TAG"
            )
        };
        return Some(SyntaxError {
            pos: Pos {
                offset: at,
                line: from.line + i,
                column: 1,
            },
            message,
        });
    }
    None
}

/// Whether `tag` is the YAML core tag `!!name`.
fn is_core(tag: &Tag, name: &str) -> bool {
    core_name(tag) == Some(name)
}

/// The name of a YAML core tag (`!!int`, or verbatim `!<tag:yaml.org,2002:int>`).
fn core_name(tag: &Tag) -> Option<&str> {
    if tag.is_yaml_core_schema() {
        Some(&tag.suffix)
    } else if tag.handle.is_empty() {
        tag.suffix.strip_prefix("tag:yaml.org,2002:")
    } else {
        None
    }
}

/// The style that makes a tagged scalar read as go-yaml v2 (sigs.k8s.io/yaml) types it, since
/// the readers (`to_json`, the non-string check of ConfigMap values, null) type a plain scalar
/// and take a quoted or block one as a string: `!!str 123` and any tag of the user's own
/// (`!thing 2`, `!e!thing 2`, the non-specific `!`) are strings; `!!int "12"`, `!!float`,
/// `!!bool`, `!!null` are typed from their text. Other core tags (`!!timestamp`, `!!map`)
/// change nothing that JSON shows.
fn tagged_style(tag: &Tag, style: ScalarStyle) -> ScalarStyle {
    match core_name(tag) {
        Some("int" | "float" | "bool" | "null") => ScalarStyle::Plain,
        Some("str") | None if style == ScalarStyle::Plain => ScalarStyle::DoubleQuoted,
        _ => style,
    }
}

/// A `!!binary` scalar's bytes, as go-yaml decodes them (line breaks and spaces ignored, the
/// unused bits of the last character too);
/// bytes that are not UTF-8 become U+FFFD, as in the JSON sigs.k8s.io/yaml makes of them.
fn binary<'a>(text: &str, pos: Pos) -> Result<Cow<'a, str>, SyntaxError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = GO_BASE64.decode(compact).map_err(|e| SyntaxError {
        pos,
        message: format!("!!binary value is not valid base64: {e}"),
    })?;
    Ok(Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()))
}

/// A block scalar (`|`, `>`) that runs to the end of a text whose last line has no line break,
/// read as go-yaml and libyaml read it: a line break is content only where one was read.
///
/// saphyr counts one break too many there (`a: |+\n  ` is `"\n"` to it, `""` to go-yaml;
/// `a: |\n  x` is `"x\n"`, not `"x"`): when the scalar has no content lines and the header's
/// break is the text's only one, or when it has content and the unterminated last line is at
/// least as long as the content's indentation (the column where saphyr's span starts). That
/// break is taken off here.
fn block_scalar_at_unterminated_end<'a>(
    text: &str,
    start: Pos,
    value: Cow<'a, str>,
) -> Cow<'a, str> {
    if !value.ends_with('\n') || text.ends_with(['\n', '\r']) {
        return value;
    }
    let last_line = &text[text.rfind(['\n', '\r']).map_or(0, |i| i + 1)..];
    let phantom = if value.bytes().all(|b| b == b'\n') {
        // No content lines (a content line holds more than its break): the span starts at the
        // `|` or `>` header, and saphyr adds a break only when it read none at all. Breaks it
        // did read are real (`a: |+\n\n \n   ` is `"\n\n"` to go-yaml too).
        let rest = &text[start.offset..];
        value == "\n"
            && rest.matches('\n').count() + rest.matches('\r').count()
                - rest.matches("\r\n").count()
                == 1
    } else {
        last_line.chars().count() >= (start.column - 1).max(1)
    };
    if !phantom {
        return value;
    }
    match value {
        Cow::Borrowed(s) => Cow::Borrowed(&s[..s.len() - 1]),
        Cow::Owned(mut s) => {
            s.pop();
            Cow::Owned(s)
        }
    }
}

/// A key that is nothing at all, right where its `:` stands (`: value` at the start of an
/// entry). YAML 1.2 allows it as an empty key; the readers Helm and kubectl use do not.
fn empty_implicit_key(text: &str, key: &Node<'_>) -> bool {
    matches!(&key.value, Value::Scalar(s, ScalarStyle::Plain) if s.is_empty())
        && text.as_bytes().get(key.start.offset) == Some(&b':')
}

/// Resolves the merge keys (`<<`) of one mapping as sigs.k8s.io/yaml (go-yaml v2) does.
///
/// Entries apply in order and a later one overrides an earlier one, so a merge overrides the
/// keys written before it, not those after it; in a list of mappings the first one wins.
/// The merged entries take the place of the `<<` entry, last winning as everywhere
/// ([`Node::entry`]), and are marked as aliased: their text is elsewhere.
fn merge<'a>(
    entries: Vec<(Node<'a>, Node<'a>)>,
    merges: &[usize],
    budget: &mut Budget<'a>,
) -> Result<Vec<(Node<'a>, Node<'a>)>, SyntaxError> {
    let mut out = Vec::with_capacity(entries.len());
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if !merges.contains(&i) {
            out.push((key, value));
            continue;
        }
        let wrong = || SyntaxError {
            pos: value.start,
            message: "a merge key (`<<`) needs a mapping or a list of mappings as its value".into(),
        };
        let sources: Vec<&Node<'a>> = match value.value() {
            Value::Mapping(..) => vec![&value],
            Value::Sequence(items, _) => items.iter().rev().collect(),
            _ => return Err(wrong()),
        };
        for source in sources {
            let Some(merged) = source.entries() else {
                return Err(wrong());
            };
            let repeated = value.aliased || source.aliased;
            for (k, v) in merged {
                if repeated {
                    let weight = budget.weight(k).add(budget.weight(v));
                    budget.repeat(k.start, weight)?;
                }
                let mut k = k.clone();
                let mut v = v.clone();
                k.aliased = true;
                v.aliased = true;
                out.push((k, v));
            }
        }
    }
    Ok(out)
}

/// What a node costs its readers: nodes, and bytes (scalar text plus `NODE_BYTES` a node).
#[derive(Debug, Clone, Copy, Default)]
struct Weight {
    nodes: usize,
    bytes: usize,
}

impl Weight {
    fn add(self, other: Weight) -> Weight {
        Weight {
            nodes: self.nodes.saturating_add(other.nodes),
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}

/// One document's spending against the limits, and the weight of each shared node.
struct Budget<'a> {
    limits: Limits,
    nodes: usize,
    expanded_bytes: usize,
    /// Weight of every shared node by address, so that repeating one costs no walk (the
    /// pointer is kept so that the address stays its own for the whole document).
    shared: HashMap<*const Node<'a>, (Rc<Node<'a>>, Weight)>,
}

impl<'a> Budget<'a> {
    fn new(limits: Limits) -> Self {
        Budget {
            limits,
            nodes: 0,
            expanded_bytes: 0,
            shared: HashMap::new(),
        }
    }

    /// Counts a node written in the text.
    fn real(&mut self, pos: Pos) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(1);
        self.check(pos)
    }

    /// Counts what an alias or a merge repeats.
    fn repeat(&mut self, pos: Pos, weight: Weight) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(weight.nodes);
        self.expanded_bytes = self.expanded_bytes.saturating_add(weight.bytes);
        self.check(pos)
    }

    fn check(&self, pos: Pos) -> Result<(), SyntaxError> {
        let too_much = if self.nodes > self.limits.max_nodes {
            format!("more than {} nodes", self.limits.max_nodes)
        } else if self.expanded_bytes > self.limits.max_expanded_bytes {
            format!(
                "more than {} MiB through aliases and merge keys",
                self.limits.max_expanded_bytes >> 20
            )
        } else {
            return Ok(());
        };
        Err(SyntaxError {
            pos,
            message: format!("document expands to {too_much} (alias bomb or runaway input)"),
        })
    }

    fn weight_of_shared(&self, node: &Rc<Node<'a>>) -> Weight {
        self.shared
            .get(&Rc::as_ptr(node))
            .map_or_else(|| self.weight(node), |(_, w)| *w)
    }

    /// A node's weight: a walk that stops at shared nodes, whose weight is known.
    fn weight(&self, node: &Node<'a>) -> Weight {
        let mut total = Weight::default();
        let mut stack = vec![node];
        while let Some(node) = stack.pop() {
            match &node.value {
                Value::Shared(shared) => match self.shared.get(&Rc::as_ptr(shared)) {
                    Some((_, w)) => total = total.add(*w),
                    None => stack.push(shared),
                },
                Value::Scalar(s, _) => {
                    total = total.add(Weight {
                        nodes: 1,
                        bytes: NODE_BYTES + s.len(),
                    })
                }
                Value::Sequence(items, _) => {
                    total = total.add(Weight {
                        nodes: 1,
                        bytes: NODE_BYTES,
                    });
                    stack.extend(items);
                }
                Value::Mapping(entries, _) => {
                    total = total.add(Weight {
                        nodes: 1,
                        bytes: NODE_BYTES,
                    });
                    for (k, v) in entries {
                        stack.push(k);
                        stack.push(v);
                    }
                }
            }
        }
        total
    }

    /// Puts `node` behind a shared pointer, so that its aliases and the merge keys that name
    /// it repeat it for the cost of a pointer, and registers it as `anchor`.
    fn anchor(
        &mut self,
        anchors: &mut Vec<(usize, Rc<Node<'a>>)>,
        anchor: usize,
        mut node: Node<'a>,
    ) -> Node<'a> {
        if let Value::Mapping(entries, _) = &mut node.value {
            // A merge key copies the entries: sharing each value keeps that copy small.
            for (_, value) in entries.iter_mut() {
                let worth_sharing = match &value.value {
                    Value::Scalar(s, _) => matches!(s, Cow::Owned(_)),
                    Value::Shared(_) => false,
                    Value::Mapping(..) | Value::Sequence(..) => true,
                };
                if worth_sharing {
                    let placeholder = Node {
                        value: Value::Sequence(Vec::new(), Style::Flow),
                        start: value.start,
                        end: value.end,
                        aliased: value.aliased,
                    };
                    let inner = std::mem::replace(value, placeholder);
                    *value = self.share(inner);
                }
            }
        }
        let shared = self.share(node);
        if let Value::Shared(rc) = &shared.value {
            anchors.push((anchor, Rc::clone(rc)));
        }
        shared
    }

    /// Wraps `node` in a shared pointer, keeping its place in the text.
    fn share(&mut self, node: Node<'a>) -> Node<'a> {
        let weight = self.weight(&node);
        let (start, end, aliased) = (node.start, node.end, node.aliased);
        let rc = Rc::new(node);
        self.shared
            .insert(Rc::as_ptr(&rc), (Rc::clone(&rc), weight));
        Node {
            value: Value::Shared(rc),
            start,
            end,
            aliased,
        }
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
        /// The key waiting for its value, and whether it is a merge key.
        key: Option<(Node<'a>, bool)>,
        /// Indexes in `entries` of merge keys.
        merges: Vec<usize>,
    },
    Sequence {
        start: Pos,
        style: Style,
        anchor: usize,
        items: Vec<Node<'a>>,
    },
}
