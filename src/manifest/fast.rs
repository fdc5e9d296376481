//! A fast path for the plain block YAML that Helm and kubectl render.
//!
//! General YAML parsers run at 20–50 MB/s here; a render of thousands of
//! documents would spend most of `inject`'s time in them. This parser accepts a
//! strict, line-oriented subset (block mappings and sequences, single-line plain
//! and quoted scalars, literal block scalars, one-line flow collections) and
//! declines everything else by returning `None`: anchors, tags, folded or
//! multi-line scalars, tabs, directives, unusual keys. Declined documents go to
//! the full parser, which also produces every error message.
//!
//! When it accepts a document it builds the same tree the full parser builds;
//! the differential tests below hold it to that. Its `check` mode reads the same
//! subset without keeping a tree (a CRD's schema is text no reader needs, yet it
//! must be valid YAML); the same tests hold it to the same verdict. It depends only on the tree types:
//! `parse` decides which parser a document gets.

use std::borrow::Cow;
use std::marker::PhantomData;

use saphyr_parser::ScalarStyle;

use super::node::{Limits, Node, Pos, Style, Value};

/// What the fast path makes of what it reads: the tree ([`Tree`]), or the same data in
/// another form. A schema check builds JSON directly ([`crate::validate`]): the tree it would
/// otherwise build first only serves to name an error's line, and costs as much as the read.
pub trait Build<'a> {
    type Node;
    /// A scalar; `key` when it is a mapping key (whose text a builder may want unresolved).
    fn scalar(
        text: Cow<'a, str>,
        style: ScalarStyle,
        key: bool,
        start: Pos,
        end: Pos,
    ) -> Self::Node;
    fn mapping(
        entries: Vec<(Self::Node, Self::Node)>,
        style: Style,
        start: Pos,
        end: Pos,
    ) -> Self::Node;
    fn sequence(items: Vec<Self::Node>, style: Style, start: Pos, end: Pos) -> Self::Node;
    /// A scalar's text, for the validation-only mode's `kind` ([`check`]).
    fn as_str(node: &Self::Node) -> Option<&str>;
    /// Whether a mapping in `node` has a key twice, for the validation-only mode.
    fn has_duplicate_keys(node: &Self::Node) -> bool;
}

/// Builds the tree every reader shares.
pub struct Tree;

impl<'a> Build<'a> for Tree {
    type Node = Node<'a>;

    fn scalar(text: Cow<'a, str>, style: ScalarStyle, _: bool, start: Pos, end: Pos) -> Node<'a> {
        Node {
            value: Value::Scalar(text, style),
            start,
            end,
            aliased: false,
        }
    }

    fn mapping(entries: Vec<(Node<'a>, Node<'a>)>, style: Style, start: Pos, end: Pos) -> Node<'a> {
        Node {
            value: Value::Mapping(entries, style),
            start,
            end,
            aliased: false,
        }
    }

    fn sequence(items: Vec<Node<'a>>, style: Style, start: Pos, end: Pos) -> Node<'a> {
        Node {
            value: Value::Sequence(items, style),
            start,
            end,
            aliased: false,
        }
    }

    fn as_str<'n>(node: &'n Node<'a>) -> Option<&'n str> {
        node.as_str()
    }

    fn has_duplicate_keys(node: &Node<'a>) -> bool {
        !node.duplicate_keys().is_empty()
    }
}

/// Parses `text` as one document, or declines with `None`. `plain` is [`is_plain`] of
/// `text`, which callers look at already (see `parse::screen`).
pub fn parse(text: &str, plain: bool, limits: Limits) -> Option<Vec<Option<Node<'_>>>> {
    parse_with::<Tree>(text, plain, limits)
}

/// [`parse`], building with `B`.
pub fn parse_with<'a, B: Build<'a>>(
    text: &'a str,
    plain: bool,
    limits: Limits,
) -> Option<Vec<Option<B::Node>>> {
    run::<B>(text, plain, limits, false).map(|(docs, _)| docs)
}

/// Proves `text` one valid document without building its tree, or declines with `None`.
///
/// Accepts exactly what [`parse`] accepts, less documents with a key written twice (their
/// doubts need the tree) and documents that are empty or not a mapping. Gives the text of
/// the top-level `kind` (`None` when there is none or it is not a scalar), so a caller can
/// tell a document no reader needs from one it must parse in full.
///
/// `plain` is [`is_plain`] of `text`, which the caller looked at already.
pub fn check(text: &str, plain: bool, limits: Limits) -> Option<Option<String>> {
    let (docs, kind) = run::<Tree>(text, plain, limits, true)?;
    match docs.first() {
        Some(Some(root)) if root.entries().is_some() => Some(kind),
        _ => None,
    }
}

type Run<N> = (Vec<Option<N>>, Option<String>);

/// Whether `bytes` hold a CR, a byte order mark, or NEL, LS or PS (U+0085, U+2028, U+2029:
/// line breaks to go-yaml, content to YAML 1.2), which the full parser reads as go-yaml does
/// or refuses (`full::go_yaml_breaks`). This runs on every document: one search for CR and
/// one for the three lead bytes of the others, not one search a character.
fn has_breaks_for_the_full_parser(bytes: &[u8]) -> bool {
    const BREAKS: [&str; 4] = ["\u{feff}", "\u{85}", "\u{2028}", "\u{2029}"];
    memchr::memchr(b'\r', bytes).is_some()
        || memchr::memchr3_iter(0xC2, 0xE2, 0xEF, bytes)
            .any(|at| BREAKS.iter().any(|b| bytes[at..].starts_with(b.as_bytes())))
}

/// Reads `text`; `plain` is [`is_plain`] of it.
fn run<'a, B: Build<'a>>(
    text: &'a str,
    plain: bool,
    limits: Limits,
    check_only: bool,
) -> Option<Run<B::Node>> {
    // Plain text holds none of them.
    if !plain && has_breaks_for_the_full_parser(text.as_bytes()) {
        return None;
    }
    let mut p = Parser::<B> {
        text,
        lines: lines(text, plain)?,
        i: 0,
        nodes: 0,
        depth: 0,
        limits,
        check_only,
        keys: Vec::new(),
        kind: None,
        pairs: Vec::new(),
        items: Vec::new(),
        build: PhantomData,
    };
    p.prelude()?;
    if p.i >= p.lines.len() {
        let docs = if text.starts_with("---") {
            vec![None]
        } else {
            Vec::new()
        };
        return Some((docs, None));
    }
    let line = p.lines[p.i];
    let root = p.block(line.indent(), line.start() + line.indent())?;
    p.skip_blank()?;
    (p.i >= p.lines.len()).then_some((vec![Some(root)], p.kind))
}

/// 20 bytes, with offsets of 32 bits: a CRD of 800 KB has some 30,000 lines, and the list of
/// them is made for every document. ([`lines`] declines a text of 4 GiB or more.)
#[derive(Debug, Clone, Copy)]
struct Line {
    start: u32,
    /// End of the line's text, before its `\n`.
    end: u32,
    /// Leading spaces.
    indent: u32,
    number: u32,
    ascii: bool,
    /// Free of control characters (tab aside), checked for ASCII lines only.
    clean: bool,
}

impl Line {
    fn start(&self) -> usize {
        self.start as usize
    }

    fn end(&self) -> usize {
        self.end as usize
    }

    fn indent(&self) -> usize {
        self.indent as usize
    }

    fn number(&self) -> usize {
        self.number as usize
    }

    /// Only spaces, or nothing.
    fn blank(&self) -> bool {
        self.indent == self.end - self.start
    }
}

/// Cuts `text` into lines in one pass, noting what the parser needs to know about each.
/// What bytes are made of: their bits or'ed together (ASCII when under 0x80), and whether one
/// is a control character other than tab and newline. One pass without a branch per byte.
fn look(bytes: &[u8]) -> (u8, bool) {
    bytes.iter().fold((0u8, false), |(high, control), &b| {
        (
            high | b,
            control | ((b < b' ') & (b != b'\t') & (b != b'\n')) | (b == 0x7f),
        )
    })
}

/// Whether `text` is plain: ASCII with no control character but tab and newline, as nearly
/// every document is. A look at the whole text, by blocks that compile to vector
/// instructions, spares each line its own (a third of the time the fast path spent on a
/// CRD); plain text holds nothing a YAML stream may not, so it spares callers their own look
/// for unprintable characters too.
pub fn is_plain(text: &str) -> bool {
    !text.as_bytes().chunks(64).any(|block| {
        let (high, control) = look(block);
        high >= 0x80 || control
    })
}

/// How many spaces `bytes` start with, eight bytes at a time: a CRD's schema lines are
/// indented by 20 to 40 spaces, and counting them one by one was most of [`lines`]' time.
fn leading_spaces(bytes: &[u8]) -> usize {
    const SPACES: u64 = u64::from_le_bytes([b' '; 8]);
    let mut chunks = bytes.chunks_exact(8);
    let mut count = 0;
    for chunk in chunks.by_ref() {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        // Zero bytes where there were spaces; the lowest other byte is the first non-space.
        let differs = u64::from_le_bytes(word) ^ SPACES;
        if differs != 0 {
            return count + differs.trailing_zeros() as usize / 8;
        }
        count += 8;
    }
    count
        + chunks
            .remainder()
            .iter()
            .take_while(|&&b| b == b' ')
            .count()
}

/// The lines of `text`; `plain` is [`is_plain`] of it. `None` when `text` is too long for
/// [`Line`]'s offsets.
fn lines(text: &str, plain: bool) -> Option<Vec<Line>> {
    let len = u32::try_from(text.len())
        .ok()
        .filter(|&len| len < u32::MAX)?;
    let mut out = Vec::with_capacity(text.len() / 24 + 1);
    let bytes = text.as_bytes();
    let mut ends = memchr::memchr_iter(b'\n', bytes);
    let mut start = 0u32;
    let mut number = 1u32;
    // Each line but the last ends with a `\n`, so there are at most `len` of them: with `len`
    // under `u32::MAX`, neither `end + 1` nor a line's number overflows.
    while start < len {
        let end = ends.next().map_or(len, |at| at as u32);
        let line = &bytes[start as usize..end as usize];
        let (ascii, clean) = if plain {
            (true, true)
        } else {
            let (high, control) = look(line);
            (high < 0x80, !control)
        };
        out.push(Line {
            start,
            end,
            indent: leading_spaces(line) as u32,
            number,
            ascii,
            clean,
        });
        start = end + 1;
        number += 1;
    }
    Some(out)
}

struct Parser<'a, B: Build<'a>> {
    text: &'a str,
    lines: Vec<Line>,
    /// The current line.
    i: usize,
    nodes: usize,
    depth: usize,
    limits: Limits,
    /// Validate only (see [`check`]): collections come back empty, block scalars unread.
    check_only: bool,
    /// In `check_only` mode, the keys of the mappings being read, innermost last.
    keys: Vec<Cow<'a, str>>,
    /// In `check_only` mode, the root mapping's `kind`.
    kind: Option<String>,
    /// The entries and items of the collections being read, innermost last: each collection
    /// takes its own off the top when it ends, in one allocation of its exact size, instead
    /// of growing a list of its own by doubling.
    pairs: Vec<(B::Node, B::Node)>,
    items: Vec<B::Node>,
    build: PhantomData<B>,
}

/// How one line of a quoted scalar ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    /// At the closing quote, at this offset.
    Closed(usize),
    /// At the line's end: the scalar goes on, folded.
    Goes,
    /// At a `\` ending the line: the next line joins it with nothing between.
    Joined,
}

/// A scalar read, before it becomes a node.
struct Scalar<'a> {
    text: Cow<'a, str>,
    style: ScalarStyle,
    start: Pos,
    end: Pos,
}

impl<'a> Scalar<'a> {
    fn build<B: Build<'a>>(self, key: bool) -> B::Node {
        B::scalar(self.text, self.style, key, self.start, self.end)
    }
}

fn is_indicator(c: u8) -> bool {
    matches!(
        c,
        b'-' | b'?'
            | b':'
            | b','
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'#'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b'@'
            | b'`'
    )
}

/// Characters a key may have without quotes, kept conservative on purpose.
fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b'-')
}

impl<'a, B: Build<'a>> Parser<'a, B> {
    fn pos(&self, line: &Line, offset: usize) -> Pos {
        let column = if line.ascii {
            offset - line.start() + 1
        } else {
            self.text[line.start()..offset].chars().count() + 1
        };
        Pos {
            offset,
            line: line.number(),
            column,
        }
    }

    fn line_text(&self, line: &Line) -> &'a str {
        &self.text[line.start()..line.end()]
    }

    /// Rejects control characters and the line separators some parsers treat specially.
    fn printable(&self, line: &Line) -> Option<()> {
        let ok = line.clean
            && (line.ascii
                || self.line_text(line).chars().all(|c| {
                    c == '\t'
                        || (!c.is_control()
                            && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}'))
                }));
        ok.then_some(())
    }

    /// Skips the `---` marker, comments and blank lines before the content.
    fn prelude(&mut self) -> Option<()> {
        if let Some(first) = self.lines.first().copied() {
            let text = self.line_text(&first);
            if let Some(rest) = text.strip_prefix("---") {
                let rest = rest.trim_start_matches(' ');
                if !(rest.is_empty() || rest.starts_with('#'))
                    || rest.len() == text.len() - 3 && !rest.is_empty()
                {
                    return None;
                }
                self.i = 1;
            }
        }
        self.skip_blank()
    }

    /// Moves past blank and comment lines; declines on tabs in indentation and on markers.
    fn skip_blank(&mut self) -> Option<()> {
        while let Some(line) = self.lines.get(self.i).copied() {
            let text = self.line_text(&line);
            let rest = &text[line.indent()..];
            if rest.is_empty() {
                self.i += 1;
                continue;
            }
            if rest.starts_with('\t') {
                return None;
            }
            if rest.starts_with('#') {
                self.printable(&line)?;
                self.i += 1;
                continue;
            }
            if line.indent() == 0
                && (text.starts_with("---") || text.starts_with("...") || text.starts_with('%'))
            {
                return None;
            }
            return Some(());
        }
        Some(())
    }

    fn count(&mut self) -> Option<()> {
        self.nodes += 1;
        (self.nodes <= self.limits.max_nodes).then_some(())
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth < self.limits.max_depth).then_some(())
    }

    /// A block mapping or sequence whose first entry starts at byte `at`, column `col` (0-based).
    fn block(&mut self, col: usize, at: usize) -> Option<B::Node> {
        let line = self.lines[self.i];
        self.printable(&line)?;
        let bytes = self.text.as_bytes();
        if bytes.get(at) == Some(&b'-') && matches!(bytes.get(at + 1), Some(b' ') | None)
            || at + 1 == line.end() && bytes[at] == b'-'
        {
            self.sequence(col, at)
        } else {
            self.mapping(col, at)
        }
    }

    fn mapping(&mut self, col: usize, first_at: usize) -> Option<B::Node> {
        self.enter()?;
        let base = self.pairs.len();
        let mut at = first_at;
        let start = self.pos(&self.lines[self.i], first_at);
        let keys_base = self.keys.len();
        loop {
            let line = self.lines[self.i];
            self.printable(&line)?;
            let (key, after_colon) = self.key(&line, at)?;
            let key_end = key.end;
            if self.check_only {
                let name = key.text;
                // A key written twice needs the tree for its doubt: decline.
                if self.keys[keys_base..].contains(&name) {
                    return None;
                }
                let is_kind = self.depth == 1 && name == "kind";
                self.keys.push(name);
                let value = self.value(&line, after_colon, col, key_end)?;
                if is_kind {
                    self.kind = B::as_str(&value).map(str::to_string);
                }
                self.count()?;
            } else {
                let key = key.build::<B>(true);
                let value = self.value(&line, after_colon, col, key_end)?;
                self.count()?;
                self.pairs.push((key, value));
            }
            self.skip_blank()?;
            let Some(next) = self.lines.get(self.i).copied() else {
                break;
            };
            if next.indent() < col {
                break;
            }
            if next.indent() > col {
                return None;
            }
            if self.dash_at(&next, next.start() + col) {
                break;
            }
            at = next.start() + col;
        }
        self.keys.truncate(keys_base);
        self.depth -= 1;
        self.count()?;
        let entries = self.pairs.split_off(base);
        Some(B::mapping(entries, Style::Block, start, start))
    }

    fn dash_at(&self, line: &Line, at: usize) -> bool {
        let bytes = self.text.as_bytes();
        bytes.get(at) == Some(&b'-') && (at + 1 == line.end() || bytes.get(at + 1) == Some(&b' '))
    }

    fn sequence(&mut self, col: usize, first_at: usize) -> Option<B::Node> {
        self.enter()?;
        let base = self.items.len();
        let mut at = first_at;
        let start = self.pos(&self.lines[self.i], first_at);
        loop {
            let line = self.lines[self.i];
            self.printable(&line)?;
            let bytes = self.text.as_bytes();
            if at + 1 >= line.end() {
                return None;
            }
            let spaces = bytes[at + 1..line.end()]
                .iter()
                .take_while(|&&b| b == b' ')
                .count();
            let item_at = at + 1 + spaces;
            if item_at >= line.end() || bytes[item_at] == b'#' || bytes[item_at] == b'\t' {
                return None;
            }
            let item_col = col + 1 + spaces;
            let item = if self.dash_at(&line, item_at) {
                return None;
            } else if self.key(&line, item_at).is_some() {
                self.mapping(item_col, item_at)?
            } else if bytes[item_at] == b'|' {
                self.literal(&line, item_at, col)?
            } else {
                let node = self.inline(&line, item_at)?;
                self.i += 1;
                node
            };
            self.count()?;
            if !self.check_only {
                self.items.push(item);
            }
            self.skip_blank()?;
            let Some(next) = self.lines.get(self.i).copied() else {
                break;
            };
            if next.indent() < col {
                break;
            }
            if next.indent() > col {
                return None;
            }
            if !self.dash_at(&next, next.start() + col) {
                break;
            }
            at = next.start() + col;
        }
        self.depth -= 1;
        self.count()?;
        let items = self.items.split_off(base);
        Some(B::sequence(items, Style::Block, start, start))
    }

    /// A `key:` at `at`: the key node and the offset just past the colon.
    fn key(&self, line: &Line, at: usize) -> Option<(Scalar<'a>, usize)> {
        let bytes = self.text.as_bytes();
        let (key, end) = match bytes.get(at)? {
            b'"' | b'\'' => self.quoted(line, at)?,
            &c if is_key_char(c) && c != b'-' => {
                let len = bytes[at..line.end()]
                    .iter()
                    .take_while(|&&b| is_key_char(b))
                    .count();
                let end = at + len;
                let key = Scalar {
                    text: Cow::Borrowed(&self.text[at..end]),
                    style: ScalarStyle::Plain,
                    start: self.pos(line, at),
                    end: self.pos(line, end),
                };
                (key, end)
            }
            _ => return None,
        };
        if bytes.get(end) != Some(&b':') {
            return None;
        }
        match bytes.get(end + 1) {
            None | Some(b' ') => Some((key, end + 1)),
            Some(b'\n') => Some((key, end + 1)),
            _ if end + 1 == line.end() => Some((key, end + 1)),
            _ => None,
        }
    }

    /// The value after a mapping key's colon; `indent` is the mapping's column.
    fn value(
        &mut self,
        line: &Line,
        after_colon: usize,
        indent: usize,
        key_end: Pos,
    ) -> Option<B::Node> {
        let bytes = self.text.as_bytes();
        let rest = &bytes[after_colon..line.end()];
        let spaces = rest.iter().take_while(|&&b| b == b' ').count();
        if rest.get(spaces) == Some(&b'\t') {
            return None;
        }
        let at = after_colon + spaces;
        if at >= line.end() || (bytes[at] == b'#' && spaces > 0) {
            self.i += 1;
            self.skip_blank()?;
            if let Some(next) = self.lines.get(self.i).copied() {
                let next_at = next.start() + next.indent();
                if next.indent() > indent && matches!(bytes.get(next_at), Some(b'{' | b'[')) {
                    // `annotations:` over `{}`: what Helm charts render from an empty value.
                    let node = self.inline(&next, next_at)?;
                    self.i += 1;
                    return Some(node);
                }
                if next.indent() > indent {
                    return self.block(next.indent(), next_at);
                }
                if next.indent() == indent && self.dash_at(&next, next.start() + indent) {
                    return self.sequence(indent, next.start() + indent);
                }
            }
            return Some(B::scalar(
                Cow::Borrowed(""),
                ScalarStyle::Plain,
                false,
                key_end,
                key_end,
            ));
        }
        if bytes[at] == b'|' {
            return self.literal(line, at, indent);
        }
        if !matches!(bytes[at], b'"' | b'\'' | b'{' | b'[') {
            return self.plain_lines(line, at, indent);
        }
        if matches!(bytes[at], b'"' | b'\'') {
            // Read once: a scalar that closes on its line is done here, else it goes on.
            let Some((scalar, end)) = self.quoted(line, at) else {
                return self.quoted_lines(line, at, indent);
            };
            self.count()?;
            if !self.only_comment_after(end, line.end()) {
                return None;
            }
            self.i += 1;
            return Some(scalar.build::<B>(false));
        }
        let node = self.inline(line, at)?;
        self.i += 1;
        Some(node)
    }

    /// A mapping value's quoted scalar that does not close on its first line (CRD
    /// descriptions again): its lines fold as a plain scalar's do (a line break is a space,
    /// a blank line a newline, the blanks around a break dropped), and in double quotes a
    /// `\` ending a line joins it to the next. Continuation lines must be indented past the
    /// mapping's column `indent`; a tab, a quote alone at the start of a line, or a blank
    /// line after a `\` break are left to the full parser.
    fn quoted_lines(&mut self, line: &Line, at: usize, indent: usize) -> Option<B::Node> {
        let quote = self.text.as_bytes()[at];
        let start = self.pos(line, at);
        let mut value = String::new();
        let first = self.quoted_segment(quote, at + 1, line.end(), &mut value)?;
        if value.trim_start_matches(' ').is_empty() || matches!(first, Segment::Closed(_)) {
            return None;
        }
        let mut joined = first == Segment::Joined;
        let mut blank_lines = 0;
        loop {
            self.i += 1;
            let next = *self.lines.get(self.i)?;
            self.printable(&next)?;
            if next.blank() {
                if joined {
                    return None;
                }
                blank_lines += 1;
                continue;
            }
            if next.indent() <= indent {
                return None;
            }
            if !joined {
                if blank_lines == 0 {
                    value.push(' ');
                }
                value.extend(std::iter::repeat_n('\n', blank_lines));
            }
            blank_lines = 0;
            let from = next.start() + next.indent();
            match self.quoted_segment(quote, from, next.end(), &mut value)? {
                Segment::Goes => joined = false,
                Segment::Joined => joined = true,
                Segment::Closed(close) if close > from => {
                    if !self.only_comment_after(close + 1, next.end()) {
                        return None;
                    }
                    let end = self.pos(&next, close + 1);
                    self.i += 1;
                    self.count()?;
                    let style = if quote == b'"' {
                        ScalarStyle::DoubleQuoted
                    } else {
                        ScalarStyle::SingleQuoted
                    };
                    return Some(B::scalar(Cow::Owned(value), style, false, start, end));
                }
                Segment::Closed(_) => return None,
            }
        }
    }

    /// Appends to `value` one line's text of a quoted scalar, from `from` to the line's end
    /// `to` or its closing quote, escapes resolved; blanks before a line break are dropped.
    fn quoted_segment(
        &self,
        quote: u8,
        from: usize,
        to: usize,
        value: &mut String,
    ) -> Option<Segment> {
        let bytes = self.text.as_bytes();
        if bytes[from..to].contains(&b'\t') {
            return None;
        }
        // Past `blanks_from` the line holds only the spaces a line break drops.
        let blanks_from = to
            - bytes[from..to]
                .iter()
                .rev()
                .take_while(|&&b| b == b' ')
                .count();
        let mut run = from;
        let mut j = from;
        while j < to {
            if j >= blanks_from {
                value.push_str(&self.text[run..blanks_from.max(run)]);
                return Some(Segment::Goes);
            }
            match bytes[j] {
                b'\'' if quote == b'\'' => {
                    value.push_str(&self.text[run..j]);
                    if bytes.get(j + 1) == Some(&b'\'') && j + 1 < to {
                        value.push('\'');
                        j += 2;
                        run = j;
                        continue;
                    }
                    return Some(Segment::Closed(j));
                }
                b'"' if quote == b'"' => {
                    value.push_str(&self.text[run..j]);
                    return Some(Segment::Closed(j));
                }
                b'\\' if quote == b'"' => {
                    value.push_str(&self.text[run..j]);
                    if j + 1 == to {
                        return Some(Segment::Joined);
                    }
                    let (c, len) = escape(&bytes[j + 1..to])?;
                    value.push(c);
                    j += 1 + len;
                    run = j;
                }
                _ => j += 1,
            }
        }
        value.push_str(&self.text[run..to.min(blanks_from).max(run)]);
        Some(Segment::Goes)
    }

    /// A mapping value's plain scalar, which may go on over lines indented past the mapping's
    /// column `indent` (CRD descriptions are wrapped so): each line break between two lines
    /// becomes a space, and each blank line between them a newline. Lines the fast path
    /// cannot be sure of (a comment, a `: `, a tab, a block indicator) are declined.
    fn plain_lines(&mut self, line: &Line, at: usize, indent: usize) -> Option<B::Node> {
        let bytes = self.text.as_bytes();
        let (first, end) = self.plain(line, at)?;
        self.count()?;
        self.i += 1;
        let rest = &bytes[end..line.end()];
        if !rest.iter().all(|&b| b == b' ' || b == b'\t') {
            // A comment ends the scalar; `plain` cut at ` #`, so only blanks come before it.
            return Some(first.build::<B>(false));
        }
        let mut folded: Option<String> = None;
        let mut end_pos = first.end;
        let mut blank_lines = 0;
        let mut j = self.i;
        while let Some(next) = self.lines.get(j).copied() {
            if next.blank() {
                blank_lines += 1;
                j += 1;
                continue;
            }
            if next.indent() <= indent {
                break;
            }
            self.printable(&next)?;
            let content = self.text[next.start() + next.indent()..next.end()].trim_end_matches(' ');
            let doubtful = content.starts_with('#')
                || content.starts_with("- ")
                || content.starts_with("? ")
                || content.ends_with(':')
                || indicator_inside(content.as_bytes());
            if doubtful {
                return None;
            }
            let text = folded.get_or_insert_with(|| first.text.to_string());
            if blank_lines == 0 {
                text.push(' ');
            }
            text.extend(std::iter::repeat_n('\n', blank_lines));
            text.push_str(content);
            blank_lines = 0;
            end_pos = self.pos(&next, next.start() + next.indent() + content.len());
            j += 1;
            // Blank lines after the last of its lines are not the scalar's.
            self.i = j;
        }
        let scalar = match folded {
            None => first,
            Some(text) => Scalar {
                text: Cow::Owned(text),
                end: end_pos,
                ..first
            },
        };
        Some(scalar.build::<B>(false))
    }

    /// A scalar or flow collection that ends on this line.
    fn inline(&mut self, line: &Line, at: usize) -> Option<B::Node> {
        let bytes = self.text.as_bytes();
        let (node, end) = match bytes[at] {
            b'"' | b'\'' => {
                let (scalar, end) = self.quoted(line, at)?;
                (scalar.build::<B>(false), end)
            }
            b'{' | b'[' => self.flow(line, at)?,
            _ => {
                let (scalar, end) = self.plain(line, at)?;
                (scalar.build::<B>(false), end)
            }
        };
        self.count()?;
        self.only_comment_after(end, line.end()).then_some(node)
    }

    /// Whether the text from `end` to the line's end `line_end` is blanks, or blanks and then
    /// a comment: nothing more may follow a node that ends on its line.
    fn only_comment_after(&self, end: usize, line_end: usize) -> bool {
        let rest = &self.text.as_bytes()[end..line_end];
        let spaces = rest
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        spaces == rest.len() || (spaces > 0 && rest[spaces] == b'#')
    }

    /// A plain scalar running to the end of the line or a comment.
    fn plain(&self, line: &Line, at: usize) -> Option<(Scalar<'a>, usize)> {
        let bytes = self.text.as_bytes();
        let first = bytes[at];
        if is_indicator(first) {
            let next = bytes.get(at + 1).copied();
            let safe_dash =
                matches!(first, b'-' | b'?' | b':') && !matches!(next, None | Some(b' ' | b'\t'));
            if !safe_dash || at + 1 >= line.end() {
                return None;
            }
        }
        let rest = &self.text[at..line.end()];
        // One pass finds where a comment cuts the value (` #`) and whether a `: ` comes
        // before it (a mapping the fast path does not read); substring searches here took a
        // tenth of a schema check's time.
        let blank = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
        let mut cut = rest.len();
        let mut colon_blank = false;
        for (i, &b) in rest.as_bytes().iter().enumerate() {
            if b == b'#' && i > 0 && blank(rest.as_bytes().get(i - 1)) {
                cut = i - 1;
                break;
            }
            colon_blank |= b == b':' && blank(rest.as_bytes().get(i + 1));
        }
        let value = rest[..cut].trim_end_matches([' ', '\t']);
        if value.is_empty() || colon_blank || value.ends_with(':') {
            return None;
        }
        let end = at + value.len();
        Some((
            Scalar {
                text: Cow::Borrowed(value),
                style: ScalarStyle::Plain,
                start: self.pos(line, at),
                end: self.pos(line, end),
            },
            end,
        ))
    }

    /// A single- or double-quoted scalar closed on this line: the node and the offset past its quote.
    fn quoted(&self, line: &Line, at: usize) -> Option<(Scalar<'a>, usize)> {
        let bytes = self.text.as_bytes();
        let quote = bytes[at];
        let body_start = at + 1;
        let mut owned: Option<String> = None;
        let mut i = body_start;
        let mut run_start = body_start;
        while i < line.end() {
            let b = bytes[i];
            if b == quote {
                if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&self.text[run_start..=i]);
                    i += 2;
                    run_start = i;
                    continue;
                }
                let value = match owned {
                    None => Cow::Borrowed(&self.text[body_start..i]),
                    Some(mut s) => {
                        s.push_str(&self.text[run_start..i]);
                        Cow::Owned(s)
                    }
                };
                let style = if quote == b'"' {
                    ScalarStyle::DoubleQuoted
                } else {
                    ScalarStyle::SingleQuoted
                };
                return Some((
                    Scalar {
                        text: value,
                        style,
                        start: self.pos(line, at),
                        end: self.pos(line, i + 1),
                    },
                    i + 1,
                ));
            }
            if b == b'\\' && quote == b'"' {
                let s = owned.get_or_insert_with(String::new);
                s.push_str(&self.text[run_start..i]);
                let (c, len) = escape(&bytes[i + 1..line.end()])?;
                s.push(c);
                i += 1 + len;
                run_start = i;
                continue;
            }
            i += 1;
        }
        None
    }

    /// A flow collection that closes on this line, without trailing commas or implicit keys.
    fn flow(&mut self, line: &Line, at: usize) -> Option<(B::Node, usize)> {
        self.enter()?;
        let bytes = self.text.as_bytes();
        let open = bytes[at];
        let close = if open == b'{' { b'}' } else { b']' };
        let skip = |mut i: usize| {
            while i < line.end() && bytes[i] == b' ' {
                i += 1;
            }
            i
        };
        let mut i = skip(at + 1);
        let (pairs_base, items_base) = (self.pairs.len(), self.items.len());
        if bytes.get(i) != Some(&close) {
            loop {
                if i >= line.end() {
                    return None;
                }
                let (item, end) = self.flow_item(line, i, open == b'{')?;
                i = skip(end);
                if open == b'{' {
                    if bytes.get(i) != Some(&b':') || bytes.get(i + 1) != Some(&b' ') {
                        return None;
                    }
                    i = skip(i + 1);
                    if i >= line.end() {
                        return None;
                    }
                    let (value, end) = self.flow_item(line, i, false)?;
                    i = skip(end);
                    self.pairs.push((item, value));
                } else {
                    self.items.push(item);
                }
                self.count()?;
                match bytes.get(i) {
                    Some(b',') => {
                        i = skip(i + 1);
                        if matches!(bytes.get(i), Some(b'}' | b']') | None) {
                            return None;
                        }
                    }
                    Some(&c) if c == close => break,
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        let start = self.pos(line, at);
        let end = self.pos(line, i);
        let node = if open == b'{' {
            B::mapping(self.pairs.split_off(pairs_base), Style::Flow, start, end)
        } else {
            B::sequence(self.items.split_off(items_base), Style::Flow, start, end)
        };
        // One line's worth of nodes: kept in `check_only` mode too, for the duplicate check.
        if self.check_only && B::has_duplicate_keys(&node) {
            return None;
        }
        Some((node, i + 1))
    }

    /// One item of a flow collection; `key` when it is a flow mapping's key.
    fn flow_item(&mut self, line: &Line, at: usize, key: bool) -> Option<(B::Node, usize)> {
        let bytes = self.text.as_bytes();
        match bytes[at] {
            b'"' | b'\'' => {
                let (scalar, end) = self.quoted(line, at)?;
                self.count()?;
                Some((scalar.build::<B>(key), end))
            }
            b'{' | b'[' => self.flow(line, at),
            c if is_indicator(c)
                && !(c == b'-'
                    && bytes
                        .get(at + 1)
                        .is_some_and(|n| n.is_ascii_alphanumeric() || *n == b'-')) =>
            {
                None
            }
            _ => {
                let len = bytes[at..line.end()]
                    .iter()
                    .take_while(|&&b| {
                        !matches!(
                            b,
                            b',' | b'[' | b']' | b'{' | b'}' | b':' | b'#' | b'\t' | b'\'' | b'"'
                        )
                    })
                    .count();
                let value = self.text[at..at + len].trim_end_matches(' ');
                // `<<` may be a merge key, which the full parser resolves.
                if value.is_empty() || value == "<<" {
                    return None;
                }
                let end = at + value.len();
                self.count()?;
                let (start, end_pos) = (self.pos(line, at), self.pos(line, end));
                Some((
                    B::scalar(
                        Cow::Borrowed(value),
                        ScalarStyle::Plain,
                        key,
                        start,
                        end_pos,
                    ),
                    end,
                ))
            }
        }
    }

    /// A literal block scalar (`|`, `|-`, `|+`) whose header is at `at`; `parent` is the mapping's column.
    fn literal(&mut self, line: &Line, at: usize, parent: usize) -> Option<B::Node> {
        let bytes = self.text.as_bytes();
        let mut h = at + 1;
        let chomp = match bytes.get(h) {
            Some(b'-') => {
                h += 1;
                b'-'
            }
            Some(b'+') => {
                h += 1;
                b'+'
            }
            _ => b' ',
        };
        let rest = &self.text[h..line.end()];
        let trimmed = rest.trim_start_matches(' ');
        if !(trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < rest.len())) {
            return None;
        }
        self.i += 1;
        let first = *self.lines.get(self.i)?;
        // A tab right after the first line's indentation: go-yaml refuses it there.
        if first.indent() <= parent
            || first.blank()
            || self.text.as_bytes()[first.start() + first.indent()] == b'\t'
        {
            return None;
        }
        let indent = first.indent();
        // In `check_only` mode only a root value (`kind` may be one) is read.
        let build = !self.check_only || self.depth <= 1;
        let mut value = String::new();
        let mut trailing = 0usize;
        let mut last = first;
        while let Some(l) = self.lines.get(self.i).copied() {
            let text = self.line_text(&l);
            if l.blank() {
                if l.indent() > indent {
                    return None;
                }
                trailing += 1;
            } else if l.indent() >= indent {
                self.printable(&l)?;
                if build {
                    for _ in 0..trailing {
                        value.push('\n');
                    }
                    value.push_str(&text[indent..]);
                    value.push('\n');
                }
                trailing = 0;
                last = l;
            } else {
                break;
            }
            self.i += 1;
        }
        if last.end() >= self.text.len() {
            return None;
        }
        match chomp {
            b'-' => {
                value.pop();
            }
            b'+' => value.extend(std::iter::repeat_n('\n', trailing)),
            _ => {}
        }
        if trailing > 0 && chomp == b'+' && self.i >= self.lines.len() {
            return None;
        }
        self.count()?;
        let start = self.pos(&first, first.start() + indent);
        Some(B::scalar(
            Cow::Owned(value),
            ScalarStyle::Literal,
            false,
            start,
            start,
        ))
    }
}

/// Decodes one double-quoted escape (after the backslash): the character and the bytes it used.
fn escape(rest: &[u8]) -> Option<(char, usize)> {
    let simple = match rest.first()? {
        b'0' => '\0',
        b'a' => '\u{7}',
        b'b' => '\u{8}',
        b't' | b'\t' => '\t',
        b'n' => '\n',
        b'v' => '\u{b}',
        b'f' => '\u{c}',
        b'r' => '\r',
        b'e' => '\u{1b}',
        b' ' => ' ',
        b'"' => '"',
        b'/' => '/',
        b'\\' => '\\',
        // go-yaml's, not YAML 1.2's (the vendored scanner takes it too: its PATCHED.md).
        b'\'' => '\'',
        b'N' => '\u{85}',
        b'_' => '\u{a0}',
        b'L' => '\u{2028}',
        b'P' => '\u{2029}',
        b'x' => return hex_escape(rest, 2),
        b'u' => return hex_escape(rest, 4),
        b'U' => return hex_escape(rest, 8),
        _ => return None,
    };
    Some((simple, 1))
}

fn hex_escape(rest: &[u8], digits: usize) -> Option<(char, usize)> {
    let hex = rest.get(1..1 + digits)?;
    // `from_str_radix` would also take a sign (`\u+0e9`), which YAML does not.
    if !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let hex = std::str::from_utf8(hex).ok()?;
    let code = u32::from_str_radix(hex, 16).ok()?;
    Some((char::from_u32(code)?, 1 + digits))
}

/// Whether a continuation line of a plain scalar holds `: `, ` #` or a tab, any of which
/// the fast path leaves to the full parser: one pass over the line (these lines are most of
/// a CRD's text), not one per pattern.
fn indicator_inside(line: &[u8]) -> bool {
    memchr::memchr3_iter(b':', b'#', b'\t', line).any(|at| match line[at] {
        b':' => line.get(at + 1) == Some(&b' '),
        b'#' => at > 0 && line[at - 1] == b' ',
        _ => true,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The one-pass look agrees with the three searches it replaced.
    #[test]
    fn a_line_takes_20_bytes() {
        assert_eq!(std::mem::size_of::<Line>(), 20);
    }

    #[test]
    fn leading_spaces_counts_what_a_byte_by_byte_count_does() {
        for len in 0..40 {
            for spaces in 0..=len {
                for after in [b'a', b'\t', b'\n', 0x80, 0xff, 0x00] {
                    // Spaces, one other byte, then spaces again that must not count.
                    let mut bytes = vec![b' '; len];
                    if spaces < len {
                        bytes[spaces] = after;
                    }
                    let expected = bytes.iter().take_while(|&&b| b == b' ').count();
                    assert_eq!(leading_spaces(&bytes), expected, "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn breaks_for_the_full_parser_are_found_in_one_pass() {
        let by_search = |s: &str| {
            s.contains('\r')
                || ['\u{feff}', '\u{85}', '\u{2028}', '\u{2029}']
                    .iter()
                    .any(|&c| s.contains(c))
        };
        for text in [
            "a: 1\n",
            "a: 1\r\n",
            "\u{feff}a: 1",
            "a: x\u{85}y",
            "a: x\u{2028}",
            "\u{2029}",
            "a: \u{a0}\u{a9}\u{2019}\u{20ac}\u{fefe}\u{ff21}",
            "a: \u{2027}\u{202a}\u{84}\u{86}",
            "",
            "\u{c2}\u{e2}\u{ef}",
            "a: é€“”\u{feff}",
        ] {
            assert_eq!(
                has_breaks_for_the_full_parser(text.as_bytes()),
                by_search(text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn indicator_inside_finds_what_three_searches_found() {
        let by_search = |s: &str| s.contains(": ") || s.contains(" #") || s.contains('\t');
        let samples = [
            "",
            ":",
            "#",
            " #",
            "a: b",
            "a:b",
            "a #b",
            "a#b",
            ":#",
            "# ",
            ": ",
            "x\ty",
            "a:",
            "url: http://x",
            "50% of #1",
            "a :b",
            "trailing #",
            "::",
            "a:  b",
            "\t",
            "é: x",
        ];
        for s in samples {
            assert_eq!(indicator_inside(s.as_bytes()), by_search(s), "{s:?}");
        }
    }

    /// Holds the validation-only mode to its contract: it accepts exactly the one-mapping
    /// documents without a key written twice that `parse` accepts, and reads their `kind`.
    fn check_only_agrees(text: &str, parsed: Option<&[Option<Node<'_>>]>) {
        let checked = super::check(text, is_plain(text), Limits::default());
        let expected = match parsed {
            Some([Some(root)]) if root.entries().is_some() && root.duplicate_keys().is_empty() => {
                Some(root.get("kind").and_then(Node::as_str).map(str::to_string))
            }
            _ => None,
        };
        assert_eq!(checked, expected, "check-only verdict or kind:\n{text}");
    }

    /// Holds the fast path to its contracts on one text (the full parser's tree, and the
    /// validation-only mode's verdict); returns whether it accepted.
    fn check(text: &str) -> bool {
        check_only_agrees(
            text,
            parse(text, is_plain(text), Limits::default()).as_deref(),
        );
        crate::manifest::parse::compare_parsers(text, Limits::default())
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    pub(crate) const TYPICAL: &str = r#"---
# Source: chart/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app.kubernetes.io/name: "web"
    helm.sh/chart: 'web-1.0.0'
  annotations: {}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web, tier: "front"}
  template:
    metadata:
      annotations:
        checksum/config: "abc"   # trailing comment
        note: it's a value with spaces, commas [and] brackets
    spec:
      containers:
      - name: web
        image: "nginx:1.27"
        args: ["--port", "8080", --verbose]
        env:
          - name: A
            value: "tab\there \"quoted\" \u00e9"
          - name: B
            valueFrom:
              configMapKeyRef: {name: cm, key: b}
        resources: {}
        ports:
          -   containerPort: 80
              name: http
      volumes:
        - name: c
          configMap:
            name: cm
            items: []
---
"#;

    #[test]
    fn accepts_typical_helm_output_and_agrees() {
        let doc = TYPICAL.strip_suffix("---\n").expect("marker");
        assert!(check(doc));
        let literal = "apiVersion: v1\nkind: ConfigMap\ndata:\n  a.conf: |\n    line 1\n\n      indented\n    last\n  b: |-\n    no newline\n  c: |+\n    keep\n\n  d: x\n";
        assert!(check(literal));
        assert!(check("---\n# only a comment\n"));
        // Wrapped plain scalars (CRD descriptions) and a flow collection under its key.
        for wrapped in [
            "description: A long\n  description, wrapped\n  over three lines.\nb: 1\n",
            "a:\n  b: first\n    second\n\n\n    after two blank lines\n\n  c: x\n",
            "a: one\n   two   \n\n# comment\nb: 1\n",
            "a: x\n  ---\n  ...\n  'q' \"d\" [s] {m} *a &b !t |l >f %p @a `b\n",
            "a: 'Container name: required for volumes,\n  optional for env vars'\nb: 1\n",
            "a: 'it''s\n\n   ''wrapped''  \n   # not a comment: x  '  # comment\nb: 1\n",
            "a: \"roundRobinDNS controls\n  the DNS.\\nWhen enabled:\\n  - it\n\n  \\\"resolves\\\"\\ \n  joined\\\n    here \\\n  and  \"\nb: 1\n",
            "metadata:\n  annotations:\n    {}\n  labels:\n    [a, b]\n",
        ] {
            assert!(check(wrapped), "declined: {wrapped:?}");
        }
        assert!(check(
            "a: ünïcödé\nb: 'it''s'\nc: \"\\x41\\u00e9\\U0001F600\"\n"
        ));
    }

    #[test]
    fn declines_what_it_does_not_know() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: >\n  folded\n",
            "a: multi\n  line: x\n",
            "a: multi\n  line # comment\n  more\n",
            "a: multi\n  # comment\n  more\n",
            "a: multi\n  - dash\n",
            "a: multi\n  \tline\n",
            "a: multi # comment\n  line\n",
            "- multi\n  line\n",
            "a:\n  {b: 1}: c\n",
            "a: \"multi\\\n\n  line\"\n",
            "a: \"multi \\q\n  line\"\n",
            "a: 'multi\nline'\n",
            "a: 'multi\n  '\n",
            "a: '\n  multi'\n",
            "a: 'multi\n  line' x\n",
            "a: 'multi\n\tline'\n",
            "a: 'never closed\n  b: 1\n",
            "a: {b: 1,\n  c: 2}\n",
            "a:\n\tb: 1\n",
            "%YAML 1.2\n---\na: 1\n",
            "? complex\n: key\n",
            "a: 1\n...\n",
            "a: 1\r\nb: 2\r\n",
            "key with space: 1\n",
            "a: b: c\n",
            "- - nested\n",
            "a: {b: 1, }\n",
            "a: |2\n   x\n",
            "a: [1, 2",
            "a: 'unterminated\n",
            "a: \"\\u+0e9\"\n",
            "a: |\n  \tx\n",
            "a: |+\n \t\n",
            "a: \"\\x+1\"\n",
        ] {
            assert!(
                parse(text, is_plain(text), Limits::default()).is_none(),
                "should decline: {text:?}"
            );
        }
    }

    #[test]
    fn fast_path_is_taken_for_fixtures() {
        for file in [
            "tests/fixtures/helm3-render.yaml",
            "tests/fixtures/helm4-render.yaml",
        ] {
            let text = std::fs::read_to_string(file).expect("fixture");
            for doc in text.split("\n---\n") {
                let doc = format!("---\n{}\n", doc.trim_start_matches("---\n").trim_end());
                assert!(check(&doc), "fast path declined a fixture document:\n{doc}");
            }
        }
    }

    /// Every document of every fixture and corpus file: the validation-only mode gives the
    /// verdict (and `kind`) that building the tree gives.
    /// Every `.yaml`/`.yml` file under tests/fixtures, corpus folders included.
    pub(crate) fn fixture_yaml_files() -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from("tests/fixtures")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("fixtures") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    files.push(path);
                }
            }
        }
        files
    }

    #[test]
    fn check_only_agrees_on_fixtures_and_corpus() {
        let files = fixture_yaml_files();
        assert!(files.len() > 60, "{} fixture files", files.len());
        let mut accepted = 0;
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            for doc in text.split("\n---") {
                check(doc);
                check(&format!("---{doc}\n"));
                accepted +=
                    usize::from(super::check(doc, is_plain(doc), Limits::default()).is_some());
            }
        }
        assert!(
            accepted > 40,
            "only {accepted} documents checked without a tree"
        );
    }

    #[test]
    fn check_only_declines_duplicates_and_reads_kind() {
        let limits = Limits::default();
        let kind = |text| super::check(text, is_plain(text), limits);
        assert_eq!(
            kind("kind: CustomResourceDefinition\nspec: {}\n"),
            Some(Some("CustomResourceDefinition".into()))
        );
        assert_eq!(kind("kind: 'ConfigMap'\n"), Some(Some("ConfigMap".into())));
        assert_eq!(
            kind("kind: |-\n  ConfigMap\n"),
            Some(Some("ConfigMap".into()))
        );
        assert_eq!(kind("kind: {a: b}\n"), Some(None));
        assert_eq!(kind("a:\n  kind: ConfigMap\n"), Some(None));
        assert_eq!(kind("kind: X\nkind: ConfigMap\n"), None);
        assert_eq!(kind("a:\n  b: 1\n  c: 2\n  b: 3\n"), None);
        assert_eq!(kind("a: [{b: 1, b: 2}]\n"), None);
        assert_eq!(kind("a: {b: 1}\nc: {b: 1}\n"), Some(None));
        assert_eq!(kind("- kind: X\n"), None);
        assert_eq!(kind("---\n"), None);
        assert_eq!(kind("a: b: c\n"), None);
        assert_eq!(kind("a: |\n  x\n\tbad: 1\n"), None);
    }

    mod differential {
        use super::*;
        use proptest::prelude::*;
        use proptest::strategy::ValueTree;

        /// Pieces of Kubernetes-flavoured YAML, some valid, some subtly not.
        fn fragment() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("key: value".to_string()),
                Just("key:".to_string()),
                Just("- item".to_string()),
                Just("- key: value".to_string()),
                Just("-   key: 'single ''quoted'''".to_string()),
                Just("key: \"dq \\\" \\n \\t\"".to_string()),
                Just("key: |".to_string()),
                Just("key: |-".to_string()),
                Just("key: |+".to_string()),
                Just("- |".to_string()),
                Just("- |-".to_string()),
                Just("  literal text".to_string()),
                Just("key: {a: 1, b: [x, 'y'], c: {}}".to_string()),
                Just("key: [a, {b: c}]".to_string()),
                Just("key: value # comment".to_string()),
                Just("key: value#not-comment".to_string()),
                Just("# comment".to_string()),
                Just(String::new()),
                Just("key: a: b".to_string()),
                Just("key: -1".to_string()),
                Just("key: - x".to_string()),
                Just("key: ? x".to_string()),
                Just("key: :x".to_string()),
                Just("\"quoted key\": v".to_string()),
                Just("'k': v".to_string()),
                Just("key: [a, b".to_string()),
                Just("key: {a: b}}".to_string()),
                Just("key: 'x' y".to_string()),
                Just("key:  spaced  ".to_string()),
                Just("key: \ttab".to_string()),
                Just("key: x\ty".to_string()),
                Just("-".to_string()),
                Just("---".to_string()),
                Just("key: @at".to_string()),
                Just("key: %pct".to_string()),
                Just("key: ,comma".to_string()),
                Just("key: a,b".to_string()),
                Just("key: [a: b]".to_string()),
                Just("key: {a}".to_string()),
                Just("key: \"\\q\"".to_string()),
                "[a-z:#' \"{}\\[\\],|-]{0,12}",
            ]
        }

        fn document() -> impl Strategy<Value = String> {
            prop::collection::vec((0..4usize, fragment()), 1..14).prop_map(|lines| {
                lines
                    .into_iter()
                    .map(|(indent, text)| format!("{}{text}\n", "  ".repeat(indent)))
                    .collect()
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            #[test]
            fn agrees_with_the_full_parser_or_declines(text in document()) {
                check(&text);
            }
        }

        /// Mappings whose plain values wrap over more-indented lines, with blank lines,
        /// comments and look-alikes between, and flow collections under their key.
        fn wrapped() -> impl Strategy<Value = String> {
            let line = prop_oneof![
                6 => Just("key: words".to_string()),
                1 => Just("key:".to_string()),
                6 => Just("wrapped words".to_string()),
                1 => Just("wrapped, more. words".to_string()),
                1 => Just(String::new()),
                1 => Just("   ".to_string()),
                1 => Just("# comment".to_string()),
                1 => Just("words # comment".to_string()),
                1 => Just("more: words".to_string()),
                1 => Just("- dash".to_string()),
                1 => Just("{}".to_string()),
                1 => Just("[a, {b: c}]".to_string()),
                1 => Just("'quoted' \"words\"".to_string()),
                1 => Just("key: 'opens".to_string()),
                1 => Just("closes' # c".to_string()),
                1 => Just("it''s: 'x".to_string()),
                1 => Just("key: \"opens \\\" \\t".to_string()),
                1 => Just("key: \"joins\\".to_string()),
                1 => Just("esc\\ \\\\ \\\" \\x41 \"".to_string()),
                1 => "[a-z:#' \t-]{0,8}",
            ];
            prop::collection::vec((0..4usize, line), 1..9).prop_map(|lines| {
                let body: String = lines
                    .into_iter()
                    .map(|(indent, text)| format!("{}{text}\n", "  ".repeat(indent)))
                    .collect();
                format!("top: first\n{body}")
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            #[test]
            fn agrees_on_wrapped_values_or_declines(text in wrapped()) {
                check(&text);
            }
        }

        /// Small edits to a realistic document: the places where a subset parser goes wrong.
        fn mutated() -> impl Strategy<Value = String> {
            let base = TYPICAL.strip_suffix("---\n").unwrap_or(TYPICAL).to_string();
            let len = base.len();
            let edit = (
                0..len,
                0..3u8,
                prop::sample::select(vec![
                    " ", "  ", "\t", ":", "#", "-", "'", "\"", "{", "}", "[", "]", ",", "|", "\n",
                    "a", "&", "*", "!", "?", "\\",
                ]),
            );
            prop::collection::vec(edit, 1..4).prop_map(move |edits| {
                let mut text = base.clone();
                for (at, op, s) in edits {
                    let mut at = at.min(text.len());
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    match op {
                        0 => text.insert_str(at, s),
                        1 => {
                            let end = (at + 1..=text.len())
                                .find(|&e| text.is_char_boundary(e))
                                .unwrap_or(text.len());
                            text.replace_range(at..end, "");
                        }
                        _ => {
                            let end = (at + 1..=text.len())
                                .find(|&e| text.is_char_boundary(e))
                                .unwrap_or(text.len());
                            text.replace_range(at..end, s);
                        }
                    }
                }
                text
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            #[test]
            fn agrees_on_edited_documents_or_declines(text in mutated()) {
                check(&text);
            }
        }

        #[test]
        fn accepts_enough_to_matter() {
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let (fragments, edits, wrapped) = (document(), mutated(), wrapped());
            let accepted = |strategy: &dyn Fn(&mut proptest::test_runner::TestRunner) -> String,
                            runner: &mut _| {
                (0..2000).filter(|_| check(&strategy(runner))).count()
            };
            let from_fragments = accepted(
                &|r| fragments.new_tree(r).expect("value").current(),
                &mut runner,
            );
            let from_edits = accepted(
                &|r| edits.new_tree(r).expect("value").current(),
                &mut runner,
            );
            let from_wrapped = accepted(
                &|r| wrapped.new_tree(r).expect("value").current(),
                &mut runner,
            );
            assert!(
                from_wrapped > 100,
                "the wrapped-value test only saw {from_wrapped} accepted documents"
            );
            assert!(
                from_fragments > 100,
                "the fragment test only saw {from_fragments} accepted documents"
            );
            assert!(
                from_edits > 200,
                "the edit test only saw {from_edits} accepted documents"
            );
        }
    }
}
