//! Choosing the parser for a document: the fast path when it accepts, the full parser otherwise.
//!
//! Kept apart from both parsers so that each depends only on the tree types (`node`), and
//! callers see one function that gives the same tree either way.

use saphyr_parser::ScalarStyle;

use super::node::{yaml_lines, Limits, Node, Pos, Style, SyntaxError, Value};
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
    let plain = screen(text)?;
    if let Some(error) = end_before_any_document(text) {
        return Err(error);
    }
    match fast::parse(text, plain, limits) {
        Some(docs) => Ok(docs),
        None => {
            let docs = full::parse(text, limits).or_else(|e| lenient::reparse(text, limits, e));
            match full::go_yaml_document_marker(text) {
                Some(marker) => Err(marker),
                None => docs,
            }
        }
    }
}

pub use fast::Build;

/// The fixture YAML files the fast path's tests read, for other rooms' tests of it.
#[cfg(test)]
pub(crate) use fast::tests::fixture_yaml_files;

/// The fast path alone, building with `B` (for a reader that wants the data, not the tree):
/// `None` when it declines the text, which then takes [`parse_documents`] (whose errors name
/// a line). Accepts exactly what `parse_documents` reads on the fast path, to the same data.
pub fn parse_fast<'a, B: Build<'a>>(text: &'a str, limits: Limits) -> Option<Vec<Option<B::Node>>> {
    let plain = screen(text).ok()?;
    fast::parse_with::<B>(text, plain, limits)
}

/// A `...` line before any document (only blank and comment lines above it): YAML 1.2 reads an
/// empty stream, go-yaml (Helm, kubectl) refuses it ("did not find expected node content").
/// A `...` after a document's end is read as go-yaml reads it (`stream::only_document_ends`).
fn end_before_any_document(text: &str) -> Option<SyntaxError> {
    let mut offset = 0;
    // A comment line ended by a lone `\r` does not hide a `...` after it.
    for (index, line) in yaml_lines(text).enumerate() {
        let content = line.trim_start_matches([' ', '\t', '\u{feff}']);
        if content.trim_end().is_empty() || content.starts_with('#') {
            offset += line.len();
            continue;
        }
        let marker = line
            .strip_prefix("...")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']));
        return marker.then(|| SyntaxError {
            pos: Pos {
                offset,
                line: index + 1,
                column: 1,
            },
            message: "a `...` document end before any document: go-yaml, which Helm and kubectl read with, refuses it".into(),
        });
    }
    None
}

/// Whether `text` is plain ([`fast::is_plain`]), or else the error for its first unprintable
/// character ([`unprintable`]). Every reader looks for those first; one look at a plain text,
/// as nearly every document is, serves that search and the fast path both, since plain text
/// cannot hold one.
fn screen(text: &str) -> Result<bool, SyntaxError> {
    if fast::is_plain(text) {
        return Ok(true);
    }
    unprintable(text).map_or(Ok(false), Err)
}

/// YAML streams hold only printable characters (YAML 1.2 `c-printable`: tab, line breaks,
/// U+0020–U+007E, U+0085, U+00A0–U+D7FF, U+E000–U+FFFD, U+10000 and up). go-yaml, which Helm
/// and kubectl read with, and libyaml refuse the rest anywhere, comments included; so does
/// reconfig, naming the first one.
fn unprintable(text: &str) -> Option<SyntaxError> {
    // Nearly every text is ASCII without control characters, and the rest mostly ASCII: the
    // bytes are skipped by blocks, without a branch per byte so that it compiles to vector
    // instructions, up to the next byte that is not printable ASCII, and only that character
    // is looked at. (Every such byte found is a character's first: each is skipped whole.)
    let suspect = |b: u8| (b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r') | (b >= 0x7f);
    let bytes = text.as_bytes();
    let mut from = 0;
    let (at, c) = loop {
        let block_start = bytes[from..]
            .chunks(64)
            .position(|block| block.iter().fold(false, |found, &b| found | suspect(b)))?;
        let start = from + block_start * 64;
        let at = start + bytes[start..].iter().position(|&b| suspect(b))?;
        // `at` starts a character (the bytes before it are ASCII); were it ever otherwise,
        // U+0000 refuses the text rather than let it through.
        let c = text
            .get(at..)
            .and_then(|t| t.chars().next())
            .unwrap_or('\0');
        let printable = matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}'
            | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
        if !printable {
            break (at, c);
        }
        from = at + c.len_utf8();
    };
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some(SyntaxError {
        pos: Pos {
            offset: at,
            line,
            column,
        },
        message: format!(
            "control characters are not allowed in YAML (U+{:04X}); Helm and kubectl refuse them too",
            u32::from(c)
        ),
    })
}

/// The fast path held to the full parser on `text`: `Ok(true)` when the fast path accepted it
/// and built the same trees, `Ok(false)` when it declined, `Err` saying where they differ.
/// The differential tests and the `differential` fuzz target run it; nothing else needs it.
///
/// Like every reader here, it refuses control characters before either parser runs: the
/// fast path counts on that check (it reads a flow collection's scalars without it).
#[doc(hidden)]
pub fn compare_parsers(text: &str, limits: Limits) -> Result<bool, String> {
    let Ok(plain) = screen(text) else {
        return Ok(false);
    };
    let Some(fast) = fast::parse(text, plain, limits) else {
        return Ok(false);
    };
    let full = full::parse(text, limits)
        .map_err(|e| format!("the fast path accepted text the full parser rejects: {e}"))?;
    if fast.len() != full.len() {
        return Err(format!(
            "document count: fast path {}, full parser {}",
            fast.len(),
            full.len()
        ));
    }
    for (a, b) in fast.iter().zip(&full) {
        match (a, b) {
            (Some(a), Some(b)) => same_tree(a, b)?,
            (None, None) => {}
            (a, b) => {
                let null = |n: &Option<Node<'_>>| n.as_ref().is_none_or(Node::is_null);
                if !(null(a) && null(b)) {
                    return Err("one parser found an empty document, the other did not".into());
                }
            }
        }
    }
    Ok(true)
}

/// [`check_document`] held to the tree on `text`: `Ok(true)` when it proved the text valid
/// and [`parse_documents`] reads one mapping with no key written twice and the same `kind`,
/// `Ok(false)` when it declined, `Err` saying where they differ. The parse tests and the
/// `differential` fuzz target run it; nothing else needs it.
#[doc(hidden)]
pub fn compare_check(text: &str, limits: Limits) -> Result<bool, String> {
    let Some(kind) = check_document(text, limits) else {
        return Ok(false);
    };
    let docs = parse_documents(text, limits)
        .map_err(|e| format!("checked without a tree, but parsing refuses it: {e}"))?;
    let [Some(root)] = docs.as_slice() else {
        return Err("checked without a tree, but not one document".into());
    };
    if root.entries().is_none() {
        return Err("checked without a tree, but not a mapping".into());
    }
    if !root.duplicate_keys().is_empty() {
        return Err("checked without a tree, with a key written twice".into());
    }
    let tree_kind = root.get("kind").and_then(Node::as_str);
    if kind.as_deref() != tree_kind {
        return Err(format!("checked kind {kind:?}, the tree's {tree_kind:?}"));
    }
    Ok(true)
}

/// Compares what callers rely on: structure, values, styles, starts, and plain scalar ends.
fn same_tree(a: &Node<'_>, b: &Node<'_>) -> Result<(), String> {
    let here = || format!("at line {} column {}", a.start.line, a.start.column);
    match (a.value(), b.value()) {
        (Value::Scalar(x, sx), Value::Scalar(y, sy)) => {
            if x != y || sx != sy {
                return Err(format!("scalar {x:?}/{sx:?} vs {y:?}/{sy:?} {}", here()));
            }
            if *sx == ScalarStyle::Plain && !x.is_empty() && a.end != b.end {
                return Err(format!(
                    "plain scalar end {:?} vs {:?} {}",
                    a.end,
                    b.end,
                    here()
                ));
            }
        }
        (Value::Mapping(x, fx), Value::Mapping(y, fy)) => {
            if x.len() != y.len() || fx != fy {
                return Err(format!(
                    "mapping of {} vs {} ({fx:?}/{fy:?}) {}",
                    x.len(),
                    y.len(),
                    here()
                ));
            }
            if *fx == Style::Flow && a.end.offset != b.end.offset {
                return Err(format!("flow mapping end {:?} vs {:?}", a.end, b.end));
            }
            for ((ka, va), (kb, vb)) in x.iter().zip(y) {
                same_tree(ka, kb)?;
                same_tree(va, vb)?;
            }
        }
        (Value::Sequence(x, fx), Value::Sequence(y, fy)) => {
            if x.len() != y.len() || fx != fy {
                return Err(format!("sequence of {} vs {} {}", x.len(), y.len(), here()));
            }
            for (va, vb) in x.iter().zip(y) {
                same_tree(va, vb)?;
            }
            return Ok(());
        }
        _ => return Err(format!("different node kinds {}", here())),
    }
    if a.start != b.start {
        return Err(format!("start {:?} vs {:?}", a.start, b.start));
    }
    Ok(())
}

/// Proves `text` one valid document without building its tree, when the fast path or the
/// full parser's tree-less check can: `Some(kind)` (its top-level `kind`, if a scalar) or
/// `None` for "parse it in full".
///
/// A document it accepts, [`parse_documents`] accepts too, as one mapping with no key
/// written twice; it declines everything else, so no syntax error is ever skipped.
pub fn check_document(text: &str, limits: Limits) -> Option<Option<String>> {
    let plain = screen(text).ok()?;
    if end_before_any_document(text).is_some() {
        return None;
    }
    fast::check(text, plain, limits).or_else(|| full::check(text, limits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::{Style, Value};
    use crate::manifest::parse::fixture_yaml_files;

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

    /// go-yaml allows tabs at the start of comment lines only before a stream's first token;
    /// a quoted scalar first under a head comment ends the head too (a `differential` fuzz
    /// finding: the scanner skipped the lines after the scalar before it counted as a token).
    #[test]
    fn tabs_in_head_comments_only_before_the_first_token() {
        let limits = Limits::default();
        assert!(parse_documents("# c\n\t# d\na: 1\n", limits).is_ok());
        for text in [
            "#c e\n\"q20\"\n \t ## \n",
            "#c\n'q'\n\t# d\n",
            "\"q\"\n \t# d\n",
        ] {
            let err = parse_documents(text, limits).expect_err(text);
            assert!(err.message.contains("tab"), "{text:?}: {err}");
        }
    }

    #[test]
    fn rejects_control_characters_as_go_yaml_does() {
        for text in [
            "a: 1\n# note \u{15}\nb: 2\n",
            "a: \"x\u{7f}\"\n",
            "a: \u{9b}\n",
        ] {
            let err = parse_documents(text, Limits::default()).expect_err(text);
            assert!(err.message.contains("control characters"), "{err}");
            assert!(check_document(text, Limits::default()).is_none());
        }
        let err = parse_documents("a: 1\n# note \u{15}\n", Limits::default()).unwrap_err();
        assert_eq!((err.pos.line, err.pos.column), (2, 8));
        // Printable beyond ASCII, and a byte order mark, are fine.
        for text in [
            "a: caf\u{e9} \u{2713} \u{1f600}\n",
            "\u{feff}a: 1\n",
            "a: \"\u{85}\"\n",
        ] {
            assert!(parse_documents(text, Limits::default()).is_ok(), "{text:?}");
        }
    }

    #[test]
    fn rejects_an_empty_implicit_key_as_go_yaml_does() {
        for text in ["a: 1\n: 2\n", "a: |\n  x\n:\n"] {
            let err = parse_documents(text, Limits::default()).expect_err(text);
            assert!(err.message.contains("key is missing"), "{err}");
        }
        assert!(parse_documents("? a\n: b\n", Limits::default()).is_ok());
    }

    #[test]
    fn rejects_unclosed_flow_mapping() {
        assert!(parse_documents("a: {b: 1\nc: 2\n", Limits::default()).is_err());
    }

    #[test]
    fn implicit_keys_in_flow_collections_are_at_most_1024_characters_as_go_yaml_reads_them() {
        // Checked against tests/tools/yaml-oracle: go-yaml refuses a longer one ("did not find
        // expected ',' or '}'"). The patched saphyr-parser (vendor/saphyr-parser/PATCHED.md)
        // gives up on such a key, which is what keeps it from queueing a whole flow collection.
        for long in [1100, 5000] {
            let key = "k".repeat(long);
            for text in [
                format!("{{{key}: 1}}\n"),
                format!("{{\"{key}\": 1}}\n"),
                format!("[{key}: 1]\n"),
                format!("a: {{b: [{key}: 1]}}\n"),
            ] {
                assert!(
                    parse_documents(&text, Limits::default()).is_err(),
                    "{}",
                    &text[..12]
                );
            }
        }
        let key = "k".repeat(1000);
        let text = format!("{{{key}: 1, \"{key}x\": 2}}\n");
        assert_eq!(one(&text).get_str(&key), Some("1"));
        // A flow collection far longer than that, on one line or many, still parses.
        let long: String = (0..20_000)
            .map(|i| format!("k{i}: [v{i}, {{x: y}}], "))
            .collect();
        let text = format!("a: {{{long}last: z}}\n");
        assert_eq!(one(&text).path("a.last").and_then(Node::as_str), Some("z"));
        let many: String = (0..2_000).map(|i| format!("  k{i}: v{i},\n")).collect();
        let text = format!("a: {{\n{many}  last: z\n}}\n");
        assert_eq!(
            one(&text).path("a.k1999").and_then(Node::as_str),
            Some("v1999")
        );
    }

    #[test]
    fn parse_documents_uses_either_path_alike() {
        let doc = fast::tests::TYPICAL.strip_suffix("---\n").expect("marker");
        let a = parse_documents(doc, Limits::default()).expect("valid");
        let b = full::parse(doc, Limits::default()).expect("valid");
        same_tree(a[0].as_ref().expect("doc"), b[0].as_ref().expect("doc")).expect("same tree");
    }

    /// Holds `check_document` to its contract on one text: when it accepts, `parse_documents`
    /// reads one mapping with no key written twice, and the same `kind`. Returns whether the
    /// full parser's tree-less check was what accepted it.
    fn check_holds(text: &str) -> bool {
        let checked =
            compare_check(text, Limits::default()).unwrap_or_else(|why| panic!("{why}:\n{text:?}"));
        checked && fast::check(text, fast::is_plain(text), Limits::default()).is_none()
    }

    /// NEL, LS and PS are line breaks to go-yaml (Helm, kubectl): read as go-yaml reads them
    /// in quoted scalars, refused elsewhere with what and where (a differential fuzz finding:
    /// a PS in a plain scalar was read as a character). `yaml-corpus/go-yaml-break-*.yaml`
    /// holds the readings to the Go oracle.
    #[test]
    fn go_yaml_line_breaks_are_read_in_quotes_and_refused_elsewhere() {
        let json = |text: &str| {
            let docs = parse_documents(text, Limits::default()).expect(text);
            crate::validate::to_json(docs[0].as_ref().expect("a document"))
        };
        assert_eq!(
            json("a: 'x\u{2028}    y'\n"),
            serde_json::json!({"a": "x\u{2028}y"})
        );
        assert_eq!(
            json("a: \"p \u{2029}  q\"\n"),
            serde_json::json!({"a": "p\u{2029}q"})
        );
        assert_eq!(json("a: \"n\u{85}m\"\n"), serde_json::json!({"a": "n m"}));
        for (text, column) in [
            // In a comment after a quoted scalar (saphyr's span of the scalar runs on over it).
            ("a: \"\"  # c\u{85} d\nb: 1\n", 11),
            ("a: 'x' # c\u{2028}\n", 11),
            ("a: x \u{2029}y\n", 6),
            ("a: 1 # c\u{2028}b: 2\n", 9),
            ("a: |\n  x\u{85}y\n", 4),
        ] {
            let err = parse_documents(text, Limits::default()).expect_err(text);
            assert!(err.message.contains("outside a quoted string"), "{err}");
            assert_eq!(err.pos.column, column, "{text:?}");
            assert!(check_document(text, Limits::default()).is_none());
        }
        // A `---` or `...` line such a break ends or starts is a document marker to go-yaml,
        // which refuses it in a quoted scalar (differential fuzz finding: a `---` at column 0
        // ended by NEL, which the re-indenting of `lenient` had hidden).
        for (text, line) in [
            ("a: 'x\n---\u{85}y'\n", 2),
            ("a: 'x\u{2028}...\u{2029}y'\n", 1),
            ("a: 'x\u{85}--- y'\n", 1),
            ("a:\n  b: 'x\n...\u{2028}'\n", 3),
        ] {
            let err = parse_documents(text, Limits::default()).expect_err(text);
            assert!(
                err.message.contains("document indicator"),
                "{text:?}: {err}"
            );
            assert_eq!(err.pos.line, line, "{text:?}");
        }
        for text in [
            "a: 'x\u{2028}---y'\n",
            "a: \"x\u{85}...\"\n",
            "a: 'x\n----\u{85}y'\n",
        ] {
            assert!(parse_documents(text, Limits::default()).is_ok(), "{text:?}");
        }
        // A key such a break runs over two lines: go-yaml refuses it unless it is explicit
        // (differential fuzz finding: `{"meta<NEL>data": ...}` was read).
        for text in [
            "{\"a\u{85}b\": 1}\n",
            "m:\n  'a\u{2028}b': 1\n",
            "- \"a\u{2029} b\": 1\n",
            "&k \"a\u{85}b\": 1\n",
            // The first key of a mapping that is itself an explicit key: the `?` is the outer
            // mapping's (differential fuzz finding, with lone CRs for line ends).
            "? \"a\u{85}b\": 1\n",
            "?\r \"a\u{85}b\":\r",
            "? &k !!str 'a\u{2028}b': 1\n",
            "- ? \"a\u{85}b\": 1\n",
            "k: 1\n? &m\n  \"a\u{2029}b\": 1\n",
        ] {
            let err = parse_documents(text, Limits::default()).expect_err(text);
            assert!(err.message.contains("a quoted key"), "{text:?}: {err}");
        }
        for text in [
            "? \"a\u{85}b\"\n: 1\n",
            "? &k !!str 'a\u{2028}b'\n: 1\n",
            "x: {? \"a\u{85}b\": 1}\n",
            "x: \"a\u{85}b\"\n",
        ] {
            assert!(parse_documents(text, Limits::default()).is_ok(), "{text:?}");
        }
    }

    #[test]
    fn the_tree_less_check_never_accepts_what_parsing_refuses() {
        let mut by_full = 0;
        for file in fixture_yaml_files() {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            by_full += usize::from(check_holds(&text));
            for doc in text.split("\n---") {
                by_full += usize::from(check_holds(doc));
                by_full += usize::from(check_holds(&format!("---{doc}\n")));
            }
        }
        assert!(
            by_full > 20,
            "the full parser's check accepted only {by_full}"
        );
    }

    #[test]
    fn the_tree_less_check_reads_flow_documents_and_declines_what_needs_a_tree() {
        let check = |text: &str| check_document(text, Limits::default());
        let accepted = [
            ("{kind: Big, a: [1, 2, {b: c}], d: 'e'}\n", Some("Big")),
            (
                "kind: \"CRD\"\nspec: {a: 1,\n  b: [x,\n  y]}\n",
                Some("CRD"),
            ),
            ("a: {kind: X}\nb: !thing {c: 1}\n", None),
            ("kind: {x: 1,\n  y: 2}\nb: [1]\n", None),
            ("%YAML 1.2\n---\n{a: 1}\n", None),
            ("{\"a\": 1, 'b': 2, c: 3}\n", None),
            // A block scalar ending the text with no break: go-yaml reads none (the
            // differential fuzz target found the check keeping one).
            ("a: {b: c}\nkind: |\n  Foo", Some("Foo")),
            ("a: {b: c}\nkind: >-\n  Foo\n  Bar", Some("Foo Bar")),
            (
                "kind:1  a:apiVersion: v2\nkind:  |\n    port: 8080\n    ctkindrue}'",
                Some("port: 8080\nctkindrue}'"),
            ),
        ];
        for (text, kind) in accepted {
            assert_eq!(check(text), Some(kind.map(str::to_string)), "{text:?}");
            assert!(check_holds(text), "the fast path took {text:?}");
        }
        for text in [
            // Written twice, by the same key in another style too.
            "{a: 1, b: 2, a: 3}\n",
            "{a: 1, \"a\": 2}\n",
            "x: [{k: 1, k: 1}]\n",
            // What needs the nodes.
            "{a: &x 1, b: *x}\n",
            "{a: {b: 1}, <<: {c: 2}}\n",
            "{a: !!binary aGk=}\n",
            // Not one mapping.
            "[1, 2]\n",
            "{a: 1}\n--- {b: 2}\n",
            "--- \"x\"\n",
            // Refused: an error, an empty key, a directive, `...` first, control characters.
            "{a: 1\n",
            "{a: 1, : 2}\n",
            ": 1\nb: {c: 2}\n",
            "%FOO bar\n---\n{a: 1}\n",
            "...\n{a: 1}\n",
            "{a: \"\u{1}\"}\n",
        ] {
            assert_eq!(check(text), None, "{text:?}");
        }
        // Deeper than the limit, and more nodes than the limit: left to the full parse.
        let limits = Limits {
            max_depth: 3,
            max_nodes: 10,
            ..Limits::default()
        };
        assert!(check_document("{a: [[[1]]]}\n", limits).is_none());
        assert!(check_document("{a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n", limits).is_none());
        assert!(check_document("{a: [[1]]}\n", limits).is_some());
    }
}

#[cfg(test)]
mod merge_and_alias_tests {
    use super::*;
    use crate::validate::to_json;

    /// The document's JSON, keys sorted.
    fn json(text: &str) -> String {
        let docs = parse_documents(text, Limits::default()).expect("valid yaml");
        let value = to_json(docs[0].as_ref().expect("one document"));
        serde_json::from_str::<std::collections::BTreeMap<String, serde_json::Value>>(
            &value.to_string(),
        )
        .map_or_else(
            |_| value.to_string(),
            |sorted| serde_json::to_string(&sorted).unwrap_or_default(),
        )
    }

    #[test]
    fn merge_keys_resolve_as_sigs_k8s_yaml_does() {
        // Checked against tests/tools/yaml-oracle (go-yaml v2 under sigs.k8s.io/yaml).
        assert_eq!(json("{a: 1, <<: {a: 2, b: 3}}"), r#"{"a":2,"b":3}"#);
        assert_eq!(json("{<<: {a: 2, b: 3}, a: 1}"), r#"{"a":1,"b":3}"#);
        assert_eq!(
            json("{<<: [{a: 1}, {a: 2, b: 2}], c: 3}"),
            r#"{"a":1,"b":2,"c":3}"#
        );
        assert_eq!(
            json("x: &x {a: 1}\ny: {<<: *x, <<: {b: 2}}\n"),
            r#"{"x":{"a":1},"y":{"a":1,"b":2}}"#
        );
        assert_eq!(json("{\"<<\": {a: 1}}"), r#"{"<<":{"a":1}}"#);
        assert_eq!(json("{!!merge <<: {a: 1}}"), r#"{"a":1}"#);
        assert_eq!(json("a: {<<: {b: 1}}\n"), r#"{"a":{"b":1}}"#);
        assert_eq!(json("{<<: []}"), "{}");
        for bad in ["{<<: 1}", "{<<: [1]}", "{<<: ~}", "x: &x 1\ny: {<<: *x}\n"] {
            let err = parse_documents(bad, Limits::default()).expect_err(bad);
            assert!(err.message.contains("merge key"), "{bad}: {err}");
        }
    }

    #[test]
    fn duplicate_keys_take_the_last_and_are_found() {
        let docs =
            parse_documents("a: 1\nb: {c: 1, c: 2}\na: 3\n", Limits::default()).expect("valid");
        let root = docs[0].as_ref().expect("doc");
        assert_eq!(root.get_str("a"), Some("3"));
        assert_eq!(root.path("b.c").and_then(Node::as_str), Some("2"));
        let lines: Vec<_> = root
            .duplicate_keys()
            .iter()
            .map(|(first, last)| {
                (
                    first.as_str().unwrap_or(""),
                    first.start.line,
                    last.start.line,
                )
            })
            .collect();
        assert_eq!(lines, vec![("a", 1, 3), ("c", 2, 2)]);
        // A key a merge brings in may be overridden: that is no duplicate.
        let docs =
            parse_documents("b: &b {c: 1}\nd: {<<: *b, c: 2}\n", Limits::default()).expect("valid");
        assert!(docs[0].as_ref().expect("doc").duplicate_keys().is_empty());
    }

    #[test]
    fn block_scalars_at_an_unterminated_end_read_as_go_yaml_does() {
        // Each checked against tests/tools/yaml-oracle: a line break counts only where one was
        // read (the differential fuzz target found the first one).
        let cases = [
            ("a: |+\n  ", r#"{"a":""}"#),
            ("a: >+\n  ", r#"{"a":""}"#),
            ("a: |2+\n  ", r#"{"a":""}"#),
            ("a: |+\r\n  ", r#"{"a":""}"#),
            ("a: |+\n\n  ", r#"{"a":"\n"}"#),
            ("a: |+\n  \n  ", r#"{"a":"\n"}"#),
            ("a: |\n  x", r#"{"a":"x"}"#),
            ("a: |+\n  x", r#"{"a":"x"}"#),
            ("a: >\n  x\n  y", r#"{"a":"x y"}"#),
            ("a: |+\n  x\n  ", r#"{"a":"x\n"}"#),
            ("a: |+\n  x\n\n  ", r#"{"a":"x\n\n"}"#),
            ("a: |+\n  x\n   ", r#"{"a":"x\n "}"#),
            ("a: |+\r\n  x\r\n  ", r#"{"a":"x\n"}"#),
            ("a: |\n  x\n  ", r#"{"a":"x\n"}"#),
            ("a: |+\n    x\n  ", r#"{"a":"x\n"}"#),
            ("a:\n  b: |1+\n    x\n  ", r#"{"a":{"b":" x\n"}}"#),
            ("a: |-\n  x\n  ", r#"{"a":"x"}"#),
            ("a: |+\n  x\n", r#"{"a":"x\n"}"#),
        ];
        for (text, want) in cases {
            assert_eq!(json(text), want, "{text:?}");
        }
        let docs = parse_documents("- |+\n  ", Limits::default()).expect("valid");
        assert_eq!(docs[0].as_ref().expect("doc").items()[0].as_str(), Some(""));
    }

    #[test]
    fn the_differential_fuzz_crash_reads_as_go_yaml_reads_it() {
        // fuzz/artifacts/differential/crash-1d38…: reconfig read {"a":"\n"}, libyaml and
        // tests/tools/yaml-oracle (go-yaml) {"a":""}. Fixed by block_scalar_at_unterminated_end.
        let text = include_str!(
            "../../tests/fixtures/hostile/crash-1d38b9bca9b1005da5b065f7345ab71f8e25a664"
        );
        assert_eq!(text, "a: |+\n  ");
        assert_eq!(json(text), r#"{"a":""}"#);
        compare_parsers(text, Limits::default()).expect("both parsers agree");
    }

    #[test]
    fn control_characters_are_refused_before_either_parser_runs() {
        // fuzz/artifacts/differential/crash-49ef…: NULs inside a flow sequence on the line
        // after its key. Every reader refuses them first (`unprintable`); the differential
        // check ran the fast path on them and found it accepting what the full parser refuses.
        let text = format!("s: \n [--{}  ]\n", "\0".repeat(100));
        assert_eq!(compare_parsers(&text, Limits::default()), Ok(false));
        let error = parse_documents(&text, Limits::default()).expect_err("refused");
        assert!(error.message.contains("U+0000"), "{}", error.message);
    }

    #[test]
    fn directives_libyaml_refuses_are_refused() {
        // Found by the differential fuzz target (`%YAML 0.2`).
        for bad in [
            "%YAML 0.2\n---\na: 1\n",
            "%YAML 2.0\n---\na: 1\n",
            "a: 1\n...\n%YAML 1.3 # new\n---\nb: 1\n",
        ] {
            let err = parse_documents(bad, Limits::default()).expect_err(bad);
            assert!(
                err.message.contains("incompatible YAML document"),
                "{bad}: {err}"
            );
            assert_eq!(err.pos.column, 1, "{bad}");
        }
        let err = parse_documents("a: 1\n...\n%YAML 1.3\n---\nb: 1\n", Limits::default())
            .expect_err("1.3");
        assert_eq!(err.pos.line, 3);
        // And the directives both refuse, which saphyr reads (`%YAML;0.2` found by the fuzzer).
        for bad in [
            "%YAML;0.2\n---\na: 1\n",
            "%\n---\na: 1\n",
            "%FOO-bar_1 x\n---\na: 1\n",
            "%YAMLX 0.2\n---\na: 1\n",
            "%YAML 1.1 x\n---\na: 1\n",
            "%YAML 1.1.1\n---\na: 1\n",
            // After a lone CR, which ends a line (`\r%%re`, found by the fuzzer).
            "\r%%re\n---\na: 1\n",
            "# c\r%FOO\r---\ra: 1\r",
            "a: 1\r...\r%YAML 2.0\r\n---\nb: 1\n",
        ] {
            assert!(parse_documents(bad, Limits::default()).is_err(), "{bad:?}");
            assert_eq!(check_document(bad, Limits::default()), None, "{bad:?}");
        }
        let err = parse_documents("# c\r\r%FOO\r\n---\na: 1\n", Limits::default())
            .expect_err("after CRs");
        assert!(err.message.contains("`%FOO`"), "{err}");
        assert_eq!((err.pos.line, err.pos.column), (3, 1), "{err}");
        for good in [
            "%YAML 1.1\n---\na: 1\n",
            "%YAML 1.2 # c\n---\na: 1\n",
            "%YAML\t1.1\r\n---\na: 1\n",
            "# c\r%YAML 1.1\r---\ra: 1\r",
            "%TAG ! tag:x,2000:\n---\na: 1\n",
            "--- |\n %YAML 0.2\n",
        ] {
            assert!(parse_documents(good, Limits::default()).is_ok(), "{good}");
        }
    }

    #[test]
    fn a_top_level_block_scalar_needs_indented_lines_as_go_yaml_does() {
        // Found by the differential fuzz target; checked against tests/tools/yaml-oracle.
        for bad in ["--- |\nfoo\n", " |+\n\nte \np ", "--- >\nfoo\n"] {
            let err = parse_documents(bad, Limits::default()).expect_err(bad);
            assert!(
                err.message.contains("indented by at least one space"),
                "{bad}: {err}"
            );
        }
        assert_eq!(json_any("--- |\n foo\n"), r#""foo\n""#);
        assert_eq!(json_any("--- |+\n\n"), r#""\n""#);
        assert_eq!(json("a: |\n foo\n"), r#"{"a":"foo\n"}"#);
    }

    /// The first document's JSON, whatever its type.
    fn json_any(text: &str) -> String {
        let docs = parse_documents(text, Limits::default()).expect("valid yaml");
        to_json(docs[0].as_ref().expect("one document")).to_string()
    }

    #[test]
    fn tags_type_scalars_as_go_yaml_does() {
        // Checked against tests/tools/yaml-oracle (go-yaml v2 under sigs.k8s.io/yaml).
        assert_eq!(
            json("{a: !!str 123, b: !!int \"12\", c: !!str true, d: !!float '1.5', e: !!null ''}"),
            r#"{"a":"123","b":12,"c":"true","d":1.5,"e":null}"#
        );
        assert_eq!(
            json("{a: !thing 2, b: ! 12, c: !<tag:yaml.org,2002:int> '7', d: !!str ~, e: !x [1]}"),
            r#"{"a":"2","b":"12","c":7,"d":"~","e":[1]}"#
        );
        assert_eq!(
            json("%TAG !e! tag:yaml.org,2002:\n---\na: !e!int \"5\"\nb: !!timestamp 2001-01-01\n"),
            r#"{"a":5,"b":"2001-01-01"}"#
        );
    }

    #[test]
    fn an_escaped_single_quote_is_read_as_go_yaml_reads_it() {
        // Block (the fast path) and flow (the full parser) alike.
        assert_eq!(json("a: \"don\\'t\"\n"), r#"{"a":"don't"}"#);
        assert_eq!(json("{a: \"don\\'t\"}\n"), r#"{"a":"don't"}"#);
        assert_eq!(
            compare_parsers("a: \"don\\'t\"\nb: [\"\\'\"]\n", Limits::default()),
            Ok(true)
        );
    }

    #[test]
    fn a_dash_before_a_flow_indicator_is_a_scalar_as_go_yaml_reads_it() {
        assert_eq!(json("a: [-, -x, a -]\n"), r#"{"a":["-","-x","a -"]}"#);
        assert_eq!(json("a: {-: 1}\n"), r#"{"a":{"-":1}}"#);
        // A `-` and a blank is still a block entry, which no flow collection may hold.
        assert!(parse_documents("a: [- x]\n", Limits::default()).is_err());
    }

    #[test]
    fn a_comment_right_after_a_token_as_go_yaml_reads_it() {
        assert_eq!(
            json("a: \"x\"#c\nb: [p,#c\n  q]#c\nc: |#c\n  t\nd: e#f\n"),
            r#"{"a":"x","b":["p","q"],"c":"t\n","d":"e#f"}"#
        );
        assert!(compare_parsers("a: \"x\"#c\nb: 'y'#c\n", Limits::default()).is_ok());
    }

    #[test]
    fn binary_scalars_are_decoded_as_go_yaml_does() {
        assert_eq!(
            json("{a: !!binary aGk=, b: !!binary \"MTIz\"}"),
            r#"{"a":"hi","b":"123"}"#
        );
        // Go's decoder ignores the unused bits of the last character; the padding it needs.
        assert_eq!(json("a: !!binary aGl=\n"), r#"{"a":"hi"}"#);
        assert!(parse_documents("a: !!binary aGk\n", Limits::default()).is_err());
        assert!(parse_documents("a: !!binary '!!'\n", Limits::default()).is_err());
    }

    #[test]
    fn aliases_share_long_scalars_and_the_budget_counts_bytes() {
        // 1 MiB aliased 100 times is 100 MiB to every reader: refused, and quickly.
        let big = "x".repeat(1 << 20);
        let mut text = format!("a: &a \"{big}\"\nb: [");
        for _ in 0..100 {
            text.push_str("*a, ");
        }
        text.push_str("]\n");
        let err = parse_documents(&text, Limits::default()).expect_err("over the byte budget");
        assert!(err.message.contains("MiB through aliases"), "{err}");
        // 10 times is fine, and shares the one copy.
        let text = format!("a: &a \"{big}\"\nb: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n");
        let docs = parse_documents(&text, Limits::default()).expect("within the budget");
        let root = docs[0].as_ref().expect("doc");
        let items = root.get("b").expect("b").items();
        assert_eq!(items.len(), 10);
        let first = items[0].as_str().expect("scalar").as_ptr();
        assert!(items
            .iter()
            .all(|i| i.as_str().expect("scalar").as_ptr() == first));
        assert!(items.iter().all(|i| i.aliased));
    }

    #[test]
    fn merge_bombs_are_refused() {
        let mut text = String::from("a0: &a0 {");
        for k in 0..100 {
            text.push_str(&format!("k{k}: \"{}\", ", "v".repeat(1000)));
        }
        text.push_str("}\n");
        for i in 1..2000 {
            text.push_str(&format!("a{i}: {{<<: *a0}}\n"));
        }
        let err = parse_documents(&text, Limits::default()).expect_err("merge bomb");
        assert!(err.message.contains("alias bomb"), "{err}");
    }
}
