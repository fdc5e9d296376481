//! `reconfig inject` on what the API server reads differently from the text, and on hostile
//! input (issue 12, items 4–7 and 14–17): the real binary, streams on stdin.

mod support;

use support::cli::{run, Run};

/// The ConfigMap `app` and a Deployment `web` mounting it, with `data` written as given.
fn config_and_user(data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n{data}---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    \
         metadata:\n      labels:\n        app: web\n    spec:\n      volumes:\n        - name: c\n          \
         configMap:\n            name: app\n      containers:\n        - name: main\n          image: x\n"
    )
}

/// The one checksum written, or a failure naming what came out instead.
fn checksum(out: &Run) -> String {
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let sums: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("checksum/config: "))
        .collect();
    assert_eq!(sums.len(), 1, "expected one checksum in:\n{}", out.stdout);
    sums[0].trim_matches('"').to_string()
}

#[test]
fn merge_key_in_a_pod_spec_is_followed() {
    let input = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {a: one}\n---\n\
        apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    \
        metadata:\n      labels: {app: web}\n    spec:\n      containers:\n        - name: main\n          \
        image: x\n          <<: &env\n            envFrom:\n              - configMapRef: {name: app}\n";
    let out = run(&["inject"], input);
    assert_eq!(checksum(&out).len(), 64);
}

#[test]
fn merge_key_in_config_map_data_is_resolved() {
    let merged = run(
        &["inject"],
        &config_and_user("  <<: &base {a: one, b: two}\n  c: three\n"),
    );
    let plain = run(
        &["inject"],
        &config_and_user("  a: one\n  b: two\n  c: three\n"),
    );
    assert_eq!(checksum(&merged), checksum(&plain));
    // Helm 4 re-emits a merge key with its tag.
    let tagged = run(
        &["inject"],
        &config_and_user("  !!merge <<: {a: one, b: two}\n  c: three\n"),
    );
    assert_eq!(checksum(&tagged), checksum(&plain));
}

#[test]
fn null_data_values_hash_as_the_empty_string() {
    let empty = checksum(&run(&["inject"], &config_and_user("  k: \"\"\n")));
    for null in ["~", "null", "Null", "NULL", ""] {
        let sum = checksum(&run(
            &["inject"],
            &config_and_user(&format!("  k: {null}\n")),
        ));
        assert_eq!(sum, empty, "k: {null}");
    }
    let tilde = checksum(&run(&["inject"], &config_and_user("  k: \"~\"\n")));
    assert_ne!(tilde, empty, "a quoted ~ is the string ~");
}

#[test]
fn duplicate_keys_take_the_last_with_a_warning_naming_both_lines() {
    // metadata.name written twice: the API server creates `app`, which the Deployment mounts.
    let input =
        config_and_user("  a: one\n").replacen("  name: app\n", "  name: old\n  name: app\n", 1);
    let out = run(&["inject"], &input);
    assert_eq!(checksum(&out).len(), 64);
    assert!(
        out.stderr
            .contains("key \"name\" is written twice in one mapping (lines 4 and 5)"),
        "{}",
        out.stderr
    );
    let strict = run(&["inject", "--strict"], &input);
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    assert!(strict.stdout.is_empty());
    assert!(strict.stderr.contains("lines 4 and 5"), "{}", strict.stderr);
}

#[test]
fn duplicate_template_metadata_gets_the_annotation_in_the_one_that_counts() {
    let input = config_and_user("  a: one\n").replacen(
        "    metadata:\n      labels:\n        app: web\n",
        "    metadata:\n      annotations:\n        checksum/config: stale\n    metadata:\n      labels:\n        app: web\n",
        1,
    );
    let out = run(&["inject"], &input);
    let sum = checksum(&Run {
        stdout: out.stdout.replace("checksum/config: stale", "stale"),
        ..out.clone()
    });
    // The one written sits in the last `metadata`, the one the API server keeps; the stale
    // one in the first is left as it was.
    let last_metadata = out.stdout.rfind("    metadata:\n").expect("metadata");
    let written = out.stdout.find(&sum).expect("checksum");
    assert!(written > last_metadata, "{}", out.stdout);
    assert!(out.stdout.contains("checksum/config: stale"));
    assert!(
        out.stderr.contains("\"metadata\" is written twice"),
        "{}",
        out.stderr
    );
    // And a second run changes nothing.
    let again = run(&["inject"], &out.stdout);
    assert_eq!(again.stdout, out.stdout);
}

#[test]
fn non_string_config_map_values_are_warned_about_and_refused_under_strict() {
    let input = config_and_user("  port: 8080\n  debug: true\n  name: \"8080\"\n");
    let out = run(&["inject"], &input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("ConfigMap data key \"port\" has a number value (8080)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("\"debug\" has a boolean value"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("\"name\" has"), "{}", out.stderr);
    let strict = run(&["inject", "--strict"], &input);
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    assert!(strict.stdout.is_empty());
}

#[test]
fn binary_tags_are_decoded_as_go_yaml_does() {
    let tagged = checksum(&run(&["inject"], &config_and_user("  k: !!binary aGk=\n")));
    let plain = checksum(&run(&["inject"], &config_and_user("  k: hi\n")));
    assert_eq!(tagged, plain);
}

/// Runs `reconfig ARGS` on `input` with its address space capped at `limit_mib`, so that a
/// run needing more memory fails (abort, exit 134) instead of passing.
fn run_capped(args: &[&str], input: &str, limit_mib: usize) -> Run {
    use std::io::Write;
    use std::process::Stdio;
    let script = format!("ulimit -v {} && exec \"$0\" \"$@\"", limit_mib * 1024);
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .arg(support::cli::BINARY)
        .args(args);
    support::cli::clear_env(&mut cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let text = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().expect("output");
    writer.join().expect("writer");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn aliases_of_a_long_scalar_are_refused_in_little_memory() {
    // 1 MiB aliased 4,000 times: 4 GiB to a reader that copies, refused within 1 GiB.
    let mut input = format!("a: &a \"{}\"\nb: [", "x".repeat(1 << 20));
    for _ in 0..4000 {
        input.push_str("*a, ");
    }
    input.push_str("]\n");
    let out = run_capped(&["inject"], &input, 1024);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("alias bomb"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn billion_laughs_is_refused_in_little_memory() {
    let mut input = String::from(
        "a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n",
    );
    let mut prev = 'a';
    for name in 'b'..='i' {
        input.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        prev = name;
    }
    let out = run_capped(&["inject"], &input, 256);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("alias bomb"), "{}", out.stderr);
}

#[test]
fn a_document_after_document_end_needs_its_own_marker() {
    let input = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n...\n\
                 apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\n";
    let out = run(&["inject"], input);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("document 2, line 5, column 1: a document after a `...` line must start with a `---` line"),
        "{}",
        out.stderr
    );
    let marked = input.replace("...\n", "...\n---\n");
    let out = run(&["inject"], &marked);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, marked);
}

#[test]
fn many_documents_ended_by_dots_alone_are_refused_in_little_memory() {
    // 20,000 ConfigMaps of 1 KiB each, separated by `...` lines only: ~21 MiB, which a
    // reader holding them all at once turns into gigabytes. Cut at each `...`, every bare
    // document is refused on its own.
    let one = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n  k: \"{}\"\n...\n",
        "v".repeat(1000)
    );
    let input = one.repeat(20_000);
    let out = run_capped(&["inject"], &input, 400);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .contains("document 2, line 7, column 1: a document after a `...` line"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("… and 19979 more"), "{}", out.stderr);
    // With a `---` after each `...`, the same stream is read, one document at a time.
    let marked = input.replace("...\n", "...\n---\n");
    let out = run_capped(&["inject"], &marked, 400);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.len(), marked.len());
}

#[test]
fn a_size_limit_no_input_can_reach_is_refused() {
    let out = run(
        &["inject", "--max-input-size", "18446744073709551615"],
        "a: 1\n",
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("larger than any input can be"),
        "{}",
        out.stderr
    );
    let out = run(&["inject", "--max-input-size", "17179869184GiB"], "a: 1\n");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("larger than any input can be"),
        "{}",
        out.stderr
    );
    // Positions in a stream are kept in 32 bits: a limit beyond 4 GiB is refused as well, for
    // each command that reads manifests, and the largest limit allowed still reads.
    for command in [
        &["inject"][..],
        &["plan", "-"],
        &["check", "--manifests", "-"],
    ] {
        let args = [command, &["--max-input-size", "4GiB"]].concat();
        let out = run(&args, "a: 1\n");
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("over the largest manifest stream reconfig reads (4294967295 bytes"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let out = run(&["inject", "--max-input-size", "4294967295"], "a: 1\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn pod_template_metadata_made_only_of_merge_keys_is_left_alone_with_a_warning() {
    let input = config_and_user("  a: one\n").replacen(
        "    metadata:\n      labels:\n        app: web\n",
        "    metadata:\n      <<: {labels: {app: web}}\n",
        1,
    );
    let out = run(&["inject"], &input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, input, "the document must stay as it was");
    assert!(out.stderr.contains("merge key"), "{}", out.stderr);
    // With a key of its own, the annotation goes next to it.
    let input = input.replacen(
        "      <<: {labels: {app: web}}\n",
        "      <<: {labels: {app: web}}\n      name: x\n",
        1,
    );
    let out = run(&["inject"], &input);
    let sum = checksum(&out);
    assert!(out.stdout.contains(&format!("      <<: {{labels: {{app: web}}}}\n      annotations:\n        checksum/config: \"{sum}\"\n      name: x\n")), "{}", out.stdout);
}
