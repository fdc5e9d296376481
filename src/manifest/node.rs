//! A small YAML tree that remembers where every node sits in the source text.
//!
//! Generic YAML values forget positions, and we need them twice: to point a
//! user at the exact line of a problem, and to edit one annotation without
//! re-emitting (and so reformatting) the whole document.
//!
//! Only the types live here; both parsers (`fast`, `full`) build them, and `parse`
//! chooses between the two.

use std::borrow::Cow;
use std::rc::Rc;

use saphyr_parser::ScalarStyle;

/// Go's `base64.StdEncoding`, which decodes both what go-yaml reads as `!!binary` and a Secret's
/// `data` in the API server: padded, but lenient about the unused bits of the last character
/// (`aGl=` is "hi", like `aGk=`).
pub const GO_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
);

/// Just after the closing quote of the quoted scalar whose opening quote is at `start`, or
/// `None` when no quote is there or it never closes. saphyr's span of a quoted scalar runs on
/// over a comment after it on its line, so readers that need the scalar's own text end it here.
pub fn closing_quote_end(text: &str, start: usize) -> Option<usize> {
    let quote @ ('\'' | '"') = text.get(start..)?.chars().next()? else {
        return None;
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
            c if c == quote => return Some(start + i + 1),
            _ => {}
        }
    }
    None
}

/// Bounds that keep a hostile document from costing more than a real one.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest nesting accepted; real manifests stay far below it.
    pub max_depth: usize,
    /// Nodes one document may produce, alias expansions included.
    pub max_nodes: usize,
    /// Bytes that aliases and merge keys may add to one document, as its readers see it:
    /// the text of every scalar they repeat plus [`NODE_BYTES`] per repeated node.
    ///
    /// Aliased nodes are shared, not copied, so this bounds the time of every walk over the
    /// tree (hashing, JSON conversion) and the entries merge keys copy, not the tree itself.
    pub max_expanded_bytes: usize,
}

/// What one node costs in memory, counted against `Limits::max_expanded_bytes`.
pub const NODE_BYTES: usize = std::mem::size_of::<Node<'static>>();

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 128,
            max_nodes: 2_000_000,
            max_expanded_bytes: 64 << 20,
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

/// The lines of `text` as YAML (and go-yaml) reads them, each with its break: ended by LF,
/// CR LF or a lone CR. The stream's cutter cuts at LF only; the checks that look at whole
/// lines (directives, `...` and `---` lines) read them this way.
pub fn yaml_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = match rest.find(['\n', '\r']) {
            Some(i) if rest[i..].starts_with("\r\n") => i + 2,
            Some(i) => i + 1,
            None => rest.len(),
        };
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}

#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub value: Value<'a>,
    pub start: Pos,
    pub end: Pos,
    /// Set on a node reached through an alias or a merge key (`<<: *base`): its text lives
    /// elsewhere, so it must not be edited in place.
    pub aliased: bool,
}

#[derive(Debug, Clone)]
pub enum Value<'a> {
    Scalar(Cow<'a, str>, ScalarStyle),
    Mapping(Vec<(Node<'a>, Node<'a>)>, Style),
    Sequence(Vec<Node<'a>>, Style),
    /// An anchored node, or an alias to one: the content is shared by every use rather than
    /// copied, so an alias costs a pointer whatever it refers to. Read through [`Node::value`].
    Shared(Rc<Node<'a>>),
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
    /// The node's content, through any sharing: never [`Value::Shared`].
    pub fn value(&self) -> &Value<'a> {
        match &self.value {
            Value::Shared(node) => node.value(),
            value => value,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self.value() {
            Value::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    pub fn entries(&self) -> Option<&[(Node<'a>, Node<'a>)]> {
        match self.value() {
            Value::Mapping(entries, _) => Some(entries),
            _ => None,
        }
    }

    pub fn items(&self) -> &[Node<'a>] {
        match self.value() {
            Value::Sequence(items, _) => items,
            _ => &[],
        }
    }

    /// The entry whose key is `key`, with the key node itself.
    ///
    /// When a key is written twice the last one counts, as for the API server
    /// (sigs.k8s.io/yaml keeps the last); [`Node::duplicate_keys`] finds such keys.
    pub fn entry(&self, key: &str) -> Option<(&Node<'a>, &Node<'a>)> {
        self.entries()?
            .iter()
            .rfind(|(k, _)| k.as_str() == Some(key))
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
        matches!(self.value(), Value::Scalar(s, ScalarStyle::Plain) if matches!(s.as_ref(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A plain boolean `true`, as Kubernetes' YAML 1.1 reader understands it.
    pub fn is_true(&self) -> bool {
        matches!(self.value(), Value::Scalar(s, ScalarStyle::Plain)
            if matches!(s.as_ref(), "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y"))
    }

    /// Keys written more than once in one mapping, anywhere in the tree: `(first, last)`.
    ///
    /// Each mapping is looked at once: what an alias or a merge key repeats was looked at
    /// where it is written, and a key a merge key brings in may be overridden on purpose.
    pub fn duplicate_keys(&self) -> Vec<(&Node<'a>, &Node<'a>)> {
        let mut found = Vec::new();
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            if node.aliased {
                continue;
            }
            match node.value() {
                Value::Scalar(..) | Value::Shared(_) => {}
                Value::Sequence(items, _) => stack.extend(items.iter().rev()),
                Value::Mapping(entries, _) => {
                    duplicates_in(entries, &mut found);
                    for (k, v) in entries.iter().rev() {
                        stack.push(v);
                        stack.push(k);
                    }
                }
            }
        }
        found
    }
}

/// Scalar keys of one mapping written more than once (merged-in keys aside): `(first, last)`.
fn duplicates_in<'n, 'a>(
    entries: &'n [(Node<'a>, Node<'a>)],
    found: &mut Vec<(&'n Node<'a>, &'n Node<'a>)>,
) {
    let keys = entries
        .iter()
        .filter(|(k, _)| !k.aliased)
        .filter_map(|(k, _)| Some((k, k.as_str()?)));
    if entries.len() <= 16 {
        let keys: Vec<_> = keys.collect();
        for (i, (k, name)) in keys.iter().enumerate() {
            let first = keys[..i].iter().find(|(_, n)| n == name);
            let later = keys[i + 1..].iter().any(|(_, n)| n == name);
            if let (Some((first, _)), false) = (first, later) {
                found.push((*first, *k));
            }
        }
        return;
    }
    // Sorted by name, then by position: each run of one name gives its first and last key.
    // A list rather than a map: a few words a key (flow mappings of half a million keys).
    let mut sorted: Vec<(&str, usize, &'n Node<'a>)> = keys
        .enumerate()
        .map(|(i, (k, name))| (name, i, k))
        .collect();
    sorted.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut pairs = Vec::new();
    for run in sorted.chunk_by(|a, b| a.0 == b.0) {
        if let [(_, at, first), .., (_, _, last)] = run {
            pairs.push((*at, *first, *last));
        }
    }
    // In the order of the first occurrence, as before.
    pairs.sort_unstable_by_key(|&(at, _, _)| at);
    found.extend(pairs.into_iter().map(|(_, first, last)| (first, last)));
}
