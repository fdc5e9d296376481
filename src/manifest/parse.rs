//! Choosing the parser for a document: the fast path when it accepts, the full parser otherwise.
//!
//! Kept apart from both parsers so that each depends only on the tree types (`node`), and
//! callers see one function that gives the same tree either way.

use super::node::{Limits, Node, SyntaxError};
use super::{fast, full, lenient};

/// Parses every document of `text` (usually one) into trees.
///
/// Empty documents come back as `None`, so document numbering stays that of the stream.
/// Plain block YAML takes the fast path; everything else, errors included, the full parser,
/// and what it refuses but go-yaml accepts is read again leniently (`lenient`).
pub fn parse_documents<'a>(
    text: &'a str,
    limits: Limits,
) -> Result<Vec<Option<Node<'a>>>, SyntaxError> {
    match fast::parse(text, limits) {
        Some(docs) => Ok(docs),
        None => full::parse(text, limits).or_else(|e| lenient::reparse(text, limits, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::{Style, Value};

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

    #[test]
    fn parse_documents_uses_either_path_alike() {
        let doc = fast::tests::TYPICAL.strip_suffix("---\n").expect("marker");
        let a = parse_documents(doc, Limits::default()).expect("valid");
        let b = full::parse(doc, Limits::default()).expect("valid");
        fast::tests::same(a[0].as_ref().expect("doc"), b[0].as_ref().expect("doc"))
            .expect("same tree");
    }
}
