//! A small YAML tree that remembers where every node sits in the source text.
//!
//! Generic YAML values forget positions, and we need them twice: to point a
//! user at the exact line of a problem, and to edit one annotation without
//! re-emitting (and so reformatting) the whole document.
//!
//! Only the types live here; both parsers (`fast`, `full`) build them, and `parse`
//! chooses between the two.

use std::borrow::Cow;

use saphyr_parser::ScalarStyle;

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

    /// Nodes in this tree, itself included: what an alias to it costs against `Limits::max_nodes`.
    pub fn count(&self) -> usize {
        1 + match &self.value {
            Value::Scalar(..) => 0,
            Value::Mapping(entries, _) => entries.iter().map(|(k, v)| k.count() + v.count()).sum(),
            Value::Sequence(items, _) => items.iter().map(Node::count).sum(),
        }
    }
}
