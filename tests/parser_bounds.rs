//! The YAML reader never blows up in time (issue 12, "Never blow up"): the real binary on the
//! inputs the fuzz targets timed out on (tests/fixtures/hostile/), on that shape grown to 64
//! KiB, and on valid documents go-yaml (Helm, kubectl) reads that need a fix on nearly every
//! line. Bounds are generous (a debug build on a loaded machine); the work itself is held to
//! its budget by the unit tests of `manifest::lenient`.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::cli::{run, Run};

/// Far above what any of these takes (tens of milliseconds in a debug build), far below what
/// they took before (seconds each in a debug build, unbounded in the fuzz build).
const GENEROUS: Duration = Duration::from_secs(10);

fn hostile(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hostile")
        .join(name)
}

const TIMEOUTS: [&str; 2] = [
    "timeout-0bc1e40be63701a073ba94fda1799fd949c46705",
    "timeout-338d1c8c0567849a4775ab1f9af32458a68e802f",
];

/// `run`, failing if it takes longer than [`GENEROUS`].
fn timed(args: &[&str], stdin: &str) -> Run {
    let started = Instant::now();
    let out = run(args, stdin);
    let took = started.elapsed();
    assert!(took < GENEROUS, "{args:?} took {took:?}");
    out
}

/// `line(i)` for i = 0, 1, … after `head` until the text is `size` bytes long, then `tail`.
fn grown(head: &str, line: impl Fn(usize) -> String, size: usize, tail: &str) -> String {
    let mut text = head.to_string();
    let mut i = 0;
    while text.len() < size {
        text.push_str(&line(i));
        i += 1;
    }
    text.push_str(tail);
    text
}

/// A Deployment `web` mounting ConfigMap `app`.
const DEPLOYMENT: &str = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n\
    spec:\n  template:\n    spec:\n      volumes:\n        - name: c\n          configMap:\n            \
    name: app\n      containers:\n        - name: main\n          image: x\n";

#[test]
fn fuzz_timeouts_are_refused_quickly_by_every_command() {
    for name in TIMEOUTS {
        let path = hostile(name);
        let file = path.to_str().expect("utf-8 path");
        let text = std::fs::read_to_string(&path).expect("fixture");

        let out = timed(&["check", "--format", "yaml", file], "");
        assert_eq!(out.code, 1, "{name}: {}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("{name}:4:1: invalid indentation")),
            "{name}: {}",
            out.stderr
        );

        let out = timed(&["inject"], &text);
        assert_eq!(out.code, 1, "{name}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "inject wrote {:?}", out.stdout);
        assert!(
            out.stderr.contains("line 4, column 1: invalid indentation"),
            "{name}: {}",
            out.stderr
        );

        let out = timed(&["check", "--manifests", file], "");
        assert_eq!(out.code, 1, "{name}: {}", out.stderr);
        assert!(out.stderr.contains("invalid indentation"), "{}", out.stderr);
    }
}

#[test]
fn their_shape_grown_to_64_kib_is_refused_quickly() {
    let text = grown(
        "a:\n  labels: {app: w,\n",
        |i| format!("tier:Vera[ata:\n  ne{i}\n  labels:pp:a{{  w,\n"),
        64 << 10,
        "",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hostile.yaml");
    std::fs::write(&path, &text).expect("write");
    let out = timed(
        &["check", "--format", "yaml", path.to_str().expect("utf-8")],
        "",
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("hostile.yaml:3:1: invalid indentation"),
        "{}",
        out.stderr
    );
    let out = timed(&["inject"], &text);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

/// Helm 4 writes the closing quote of a multi-line quoted scalar at column 0: 64 KiB of such
/// ConfigMap values, one fix each. Before, reconfig gave up after the 64 MiB budget of
/// reparsing ("reconfig gave up re-indenting this document") and inject exited 1.
#[test]
fn a_64_kib_document_of_column_0_quotes_is_read() {
    let config = grown(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n",
        |i| format!("  k{i}: 'line {i}\n\n'\n"),
        64 << 10,
        "",
    );
    let out = timed(&["inject"], &format!("{config}{DEPLOYMENT}"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.matches("checksum/config: ").count(), 1);
    // The same data written plainly hashes the same.
    let plain = grown(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n",
        |i| format!("  k{i}: \"line {i}\\n\"\n"),
        64 << 10,
        "",
    );
    let sum = |out: &Run| {
        out.stdout.lines().find_map(|l| {
            l.trim()
                .strip_prefix("checksum/config: ")
                .map(str::to_owned)
        })
    };
    let plain = timed(&["inject"], &format!("{plain}{DEPLOYMENT}"));
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert_eq!(sum(&out), sum(&plain));
}

/// A flow sequence written across thousands of lines at column 0 (go-yaml reads it), in a
/// pod template. Before, every line cost a parse of the document and reconfig gave up.
#[test]
fn a_64_kib_flow_sequence_at_column_0_is_read() {
    let deployment = grown(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    \
         spec:\n      volumes:\n        - name: c\n          configMap:\n            name: app\n      \
         containers:\n        - name: main\n          image: x\n          args: [a,\n",
        |i| format!("--flag-{i},\n"),
        64 << 10,
        "z]\n",
    );
    let config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  k: v\n---\n";
    let out = timed(&["inject"], &format!("{config}{deployment}"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.matches("checksum/config: ").count(), 1);
}

/// A long valid document, then a flow sequence left open across lines at column 0: every fix
/// costs a parse of everything before it. Before, reparsing ran up to its 64 MiB budget (11 s
/// in a debug build); now the budget is linear in the document (about 1 s here).
#[test]
fn fixes_deep_in_a_long_document_are_bounded() {
    let prefix: String = (0..3500)
        .map(|i| format!("  key{i}: value {i}\n"))
        .collect();
    let tail: String = (0..1600).map(|i| format!("b{i},\n")).collect();
    let text = format!("a:\n{prefix}  list: [a,\n{tail}");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("deep.yaml");
    std::fs::write(&path, &text).expect("write");
    let started = Instant::now();
    let out = run(
        &["check", "--format", "yaml", path.to_str().expect("utf-8")],
        "",
    );
    let took = started.elapsed();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("deep.yaml:3503:1: invalid indentation"),
        "{}",
        out.stderr
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}
