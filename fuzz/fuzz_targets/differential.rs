//! Differential checks on any input:
//! - the fast path and the full parser build the same tree whenever the fast path accepts;
//! - a document proven valid without a tree (`check_document`: the fast path's check, then
//!   the full parser's event check) parses, as one mapping with no key written twice and the
//!   same `kind`;
//! - the schema check's direct YAML-to-JSON read gives what the tree gives;
//! - whatever reconfig accepts, libyaml (through `yaml_serde`) accepts too, to the same data.
//!
//! The data comparison is of JSON views, and skips what libyaml (through serde) reads unlike
//! Helm's go-yaml, which reconfig follows: merge keys (`<<`), tags, documents after `...`. Scalars whose typing differs between YAML 1.2's core
//! schema (reconfig's `to_json`) and libyaml's resolver (`yes`, `0o17`, `.inf`, …) are compared
//! only where both sides read them as the same kind; strings, structure and keys always are.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reconfig::manifest::node::Limits;
use reconfig::manifest::parse::{compare_check, compare_parsers, parse_documents};
use reconfig::validate::{to_json, yaml_to_json_fast};
use serde_json::Value as Json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(why) = compare_parsers(text, Limits::default()) {
        panic!("fast path and full parser disagree: {why}\n{text}");
    }
    // The stream cuts documents at `---` lines; so does this, roughly.
    for piece in std::iter::once(text).chain(text.split("\n---")) {
        if let Err(why) = compare_check(piece, Limits::default()) {
            panic!("{why}\n{piece}");
        }
    }
    let Ok(docs) = parse_documents(text, Limits::default()) else {
        return;
    };
    let ours: Vec<Json> = docs
        .iter()
        .map(|d| d.as_ref().map_or(Json::Null, to_json))
        .collect();
    if let Some(direct) = yaml_to_json_fast(text) {
        assert_eq!(
            direct, ours,
            "the direct JSON read differs from the tree's\n{text}"
        );
    }
    // Merge keys: reconfig resolves them as go-yaml (Helm, kubectl) does; serde's libyaml
    // reading keeps a `<<` key. Tags: reconfig reads `!!binary` as go-yaml does.
    // A byte order mark: go-yaml reads past it as Helm does; serde's libyaml reading refuses it.
    if text.contains("<<") || text.contains('!') || text.contains('\u{feff}') {
        return;
    }
    let mut theirs = Vec::new();
    for document in yaml_serde::Deserializer::from_str(text) {
        match <yaml_serde::Value as serde::Deserialize>::deserialize(document) {
            Ok(value) => theirs.push(value),
            Err(e) => {
                // Errors libyaml raises where YAML 1.2 (saphyr) is right, or that are about serde's
                // data model rather than the syntax (tags, non-string keys, recursion limits).
                if known_reference_limit(&e.to_string())
                    || implicit_key_over_1024_bytes(text)
                    || bare_document_after_end(text)
                    || tabbed_head_comment(text)
                    || escaped_single_quote(text, &e.to_string())
                {
                    return;
                }
                panic!("reconfig accepted what libyaml rejects: {e}\n{text}");
            }
        }
    }
    // An anchor on an empty node in a flow collection (`[&a, *a]`): go-yaml (Helm), and so
    // reconfig, read a null there and its aliases as null; serde's libyaml reading gives the
    // aliases another anchored node's value (`tests/fixtures/yaml-corpus/anchor-on-empty-flow-node.yaml`).
    if anchor_on_empty_flow_node(text) {
        return;
    }
    if theirs.len() != ours.len() {
        // libyaml yields no document for an empty stream; reconfig reports empty ones as null.
        let nonempty = ours.iter().filter(|d| !d.is_null()).count();
        assert!(
            theirs.iter().filter(|d| !d.is_null()).count() == nonempty,
            "document count: reconfig {} libyaml {}\n{text}",
            ours.len(),
            theirs.len()
        );
        return;
    }
    for (a, b) in ours.iter().zip(&theirs) {
        // Keys JSON cannot hold (null, a sequence): libyaml's reading has no JSON view to compare.
        let Ok(b) = serde_json::to_value(b) else {
            return;
        };
        if let Err(path) = same(a, &b, String::new()) {
            panic!("reconfig and libyaml read different data at {path}: {a} vs {b}\n{text}");
        }
    }
});

/// Whether an anchor stands on an empty node in a flow collection: `&name` followed, past
/// blanks, by `,`, `]` or `}`.
fn anchor_on_empty_flow_node(text: &str) -> bool {
    text.match_indices('&').any(|(at, _)| {
        let rest = &text[at + 1..];
        let name_end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']' | '{' | '}'))
            .unwrap_or(rest.len());
        let after = rest[name_end..].trim_start_matches([' ', '\t']);
        name_end > 0 && after.starts_with([',', ']', '}'])
    })
}

/// An implicit key of at most 1024 characters but more bytes (`é` is two): go-yaml (Helm,
/// kubectl), and so reconfig, bound a key's length in characters; libyaml in bytes, so it
/// alone refuses it ("mapping values are not allowed in this context";
/// `tests/fixtures/yaml-corpus/implicit-key-1024-characters-more-bytes.yaml`).
fn implicit_key_over_1024_bytes(text: &str) -> bool {
    text.lines().any(|line| {
        line.match_indices(':')
            .any(|(at, _)| at > 1024 && line[..at].chars().count() <= 1025)
    })
}

/// A document after `...` with no `---` of its own: YAML 1.2 and reconfig's parser read it,
/// libyaml and go-yaml do not (the commands refuse it; `tests/yaml_oracle.rs` lists it).
fn bare_document_after_end(text: &str) -> bool {
    let mut after_end = false;
    // A lone `\r` ends a line too, to YAML.
    for line in text.split(['\n', '\r']) {
        let line = line.trim_end();
        if line == "..." || line.starts_with("... ") || line.starts_with("...\t") {
            after_end = true;
        } else if line == "---" || line.starts_with("--- ") || line.starts_with("---\t") {
            after_end = false;
        } else if after_end && !line.is_empty() && !line.starts_with('#') && !line.starts_with('%')
        {
            return true;
        }
    }
    false
}

/// A comment line indented by a tab at the head of the stream: go-yaml (Helm, kubectl), and so
/// reconfig, read past it; libyaml refuses it (`tests/fixtures/yaml-corpus/tab-in-head-comments.yaml`).
fn tabbed_head_comment(text: &str) -> bool {
    text.split(['\n', '\r'])
        .take_while(|l| {
            let rest = l.trim_start_matches([' ', '\t']);
            rest.is_empty() || rest.starts_with('#')
        })
        .any(|l| l.contains('\t') && l.trim_start_matches([' ', '\t']).starts_with('#'))
}

fn known_reference_limit(message: &str) -> bool {
    [
        "recursion limit",
        // yaml_serde's bound on alias expansion; reconfig has its own (node and byte budgets).
        "repetition limit",
        "invalid type",
        "untagged",
        "tag",
        "not supported",
        "invalid value",
        // serde refuses duplicate keys; go-yaml (sigs.k8s.io/yaml) keeps the last, as reconfig does.
        "duplicate entry",
        // `{a:}`, `{a :}`: go-yaml v3 (Helm 4), and so reconfig, reads the keys `a:` and `a :`;
        // libyaml refuses them (vendor/saphyr-parser/PATCHED.md).
        "found unexpected ':'",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// `\'` in double quotes: go-yaml (Helm, kubectl) reads a single quote, and so does reconfig
/// (vendor/saphyr-parser/PATCHED.md, the seventh); libyaml knows no such escape.
fn escaped_single_quote(text: &str, message: &str) -> bool {
    message.contains("unknown escape character") && text.contains("\\'")
}

/// Structure and strings must agree; numbers, booleans and nulls only when both sides typed the
/// scalar the same way (the two readers resolve plain scalars by different schemas).
fn same(a: &Json, b: &Json, at: String) -> Result<(), String> {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            if x.len() != y.len() {
                return Err(format!("{at} (keys {:?} vs {:?})", x.keys(), y.keys()));
            }
            for (k, v) in x {
                let Some(w) = y.get(k) else {
                    // A key that is a number: each side spells it as its schema types it
                    // (`.5` is "0.5" to libyaml through serde), as values are typed.
                    if numeric(k) {
                        continue;
                    }
                    return Err(format!("{at}/{k} (missing in libyaml's reading)"));
                };
                same(v, w, format!("{at}/{k}"))?;
            }
            Ok(())
        }
        (Json::Array(x), Json::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!("{at} (lengths {} vs {})", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .try_for_each(|(i, (v, w))| same(v, w, format!("{at}/{i}")))
        }
        (Json::String(x), Json::String(y)) => (x == y).then_some(()).ok_or(at),
        (Json::Number(x), Json::Number(y)) => (x.as_f64() == y.as_f64()).then_some(()).ok_or(at),
        (Json::Object(_) | Json::Array(_), _) | (_, Json::Object(_) | Json::Array(_)) => Err(at),
        // A plain scalar typed differently by the two schemas: not a disagreement about syntax.
        _ => Ok(()),
    }
}

/// Whether a key reads as a number to YAML 1.1 or 1.2 (decimal, float, `0x`, `0o`, `0b`, `_`).
fn numeric(key: &str) -> bool {
    let digits: String = key
        .strip_prefix(['-', '+'])
        .unwrap_or(key)
        .chars()
        .filter(|&c| c != '_')
        .collect();
    let radix = |prefix: &str, radix: u32| {
        digits
            .strip_prefix(prefix)
            .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_digit(radix)))
    };
    digits.parse::<f64>().is_ok_and(f64::is_finite) && !digits.contains(['i', 'I', 'n', 'N'])
        || radix("0x", 16)
        || radix("0o", 8)
        || radix("0b", 2)
}
