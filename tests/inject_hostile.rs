//! `inject` on what Helm 4 and hand-written charts really hand it (issue 12, items 1, 2, 10–13):
//! YAML that go-yaml accepts and a strict reader refuses, and pod templates in corners of YAML
//! where a text edit goes wrong.
//!
//! The rule held here, by example and over mutated inputs: whenever inject exits 0, its output
//! parses (with reconfig and with the Go oracle of Helm and kubectl), equals the input apart from
//! the annotation, and a second inject leaves it byte-identical. Where an edit cannot be made
//! safely, inject warns and leaves the document alone.

mod support;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use serde_json::Value as Json;
use support::cli::{reconfig, run};

const KEY: &str = "checksum/config";
/// Where reconfig writes its checksum when a chart owns `KEY` (issue 12 item 19).
const OWN_KEY: &str = "reconfig/checksum";

const CONFIG_MAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  k: v\n---\n";

/// A Deployment using ConfigMap `cfg`, with `template` as the lines under `spec.template:`.
fn deployment(template: &str) -> String {
    format!(
        "{CONFIG_MAP}apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n{template}"
    )
}

const SPEC: &str = "    spec:\n      containers: [{name: w, image: x}]\n      volumes: [{name: c, configMap: {name: cfg}}]\n";

/// The oracle (go-yaml v3 + sigs.k8s.io/yaml, as Helm and kubectl read), or `None` to skip.
fn oracle() -> Option<PathBuf> {
    let path = match std::env::var_os("RECONFIG_YAML_ORACLE") {
        Some(path) => PathBuf::from(path),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(
                || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
                PathBuf::from,
            )
            .join("tools/yaml-oracle"),
    };
    if path.is_file() {
        return Some(path);
    }
    support::bins::missing(&format!(
        "the YAML oracle {} is missing: build it with `bash tests/tools/install-yaml-oracle.sh`",
        path.display()
    ));
    None
}

/// The oracle's JSON documents, or `None` when it refuses the stream.
fn oracle_read(oracle: &PathBuf, text: &str) -> Option<Vec<Json>> {
    let mut child = Command::new(oracle)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the oracle");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to the oracle");
    let out = child.wait_with_output().expect("oracle output");
    out.status.success().then(|| {
        String::from_utf8(out.stdout)
            .expect("utf8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("oracle JSON"))
            .collect()
    })
}

/// A document's data with the checksum annotation taken out of its pod template, and the
/// annotations and metadata that are then empty (or were null) taken out too.
fn without_annotation(mut doc: Json) -> Json {
    if let Some(template) = doc
        .pointer_mut("/spec/template")
        .and_then(Json::as_object_mut)
    {
        if let Some(meta) = template.get_mut("metadata").and_then(Json::as_object_mut) {
            if let Some(a) = meta.get_mut("annotations").and_then(Json::as_object_mut) {
                a.remove(KEY);
                a.remove(OWN_KEY);
            }
            if meta
                .get("annotations")
                .is_some_and(|a| a.is_null() || a.as_object().is_some_and(|a| a.is_empty()))
            {
                meta.remove("annotations");
            }
        }
        if template
            .get("metadata")
            .is_some_and(|m| m.is_null() || m.as_object().is_some_and(|m| m.is_empty()))
        {
            template.remove("metadata");
        }
    }
    doc
}

fn annotation(doc: &Json) -> Option<&str> {
    let annotations = doc.pointer("/spec/template/metadata/annotations")?;
    annotations
        .get(OWN_KEY)
        .or_else(|| annotations.get(KEY))?
        .as_str()
}

/// Runs inject on `input` and holds it to the rule. Returns whether the Deployment was
/// annotated, or `None` when inject refused the input (exit 1).
fn hold_the_rule(oracle: &PathBuf, input: &str) -> Result<Option<bool>, String> {
    let first = run(&["inject"], input);
    match first.code {
        0 => {}
        1 => return Ok(None),
        code => return Err(format!("inject exited {code}: {}", first.stderr)),
    }
    let output = &first.stdout;
    let second = run(&["inject"], output);
    if second.code != 0 {
        return Err(format!(
            "inject refuses its own output ({}):\n{output}",
            second.stderr
        ));
    }
    if &second.stdout != output {
        return Err(format!(
            "a second inject changed the output:\n{output}\n---- became ----\n{}",
            second.stdout
        ));
    }
    let annotated = output != input;
    // Input that Helm and kubectl refuse (some mutations make it) proves nothing about the edit.
    if let Some(before) = oracle_read(oracle, input) {
        let Some(after) = oracle_read(oracle, output) else {
            return Err(format!(
                "the oracle refuses inject's output:\n{output}\n---- from ----\n{input}"
            ));
        };
        let strip =
            |docs: &[Json]| -> Vec<Json> { docs.iter().cloned().map(without_annotation).collect() };
        if strip(&before) != strip(&after) {
            return Err(format!(
                "the output's data differs beyond the annotation:\n{output}\n---- from ----\n{input}"
            ));
        }
        if annotated && !after.iter().any(|d| annotation(d).is_some()) {
            return Err(format!("changed, but no annotation:\n{output}"));
        }
    }
    Ok(Some(annotated))
}

/// The cases issue 12 lists: inject exited 0 on each, and its output did not parse.
#[test]
fn never_writes_a_broken_stream() {
    let Some(oracle) = oracle() else { return };
    let cases = [
        // Item 10: a trailing comma then a comment gave `, ,`.
        (
            "comma then comment",
            deployment(&format!("    metadata: {{annotations: {{a: b, # note\n    }}}}\n{SPEC}")),
        ),
        // Item 10: a comment ending in `,` or `{` gave no comma at all.
        (
            "comment ending in a comma",
            deployment(&format!("    metadata: {{annotations: {{a: b # x,\n    }}}}\n{SPEC}")),
        ),
        (
            "comment ending in a brace",
            deployment(&format!("    metadata: {{annotations: {{a: b # {{\n    }}}}\n{SPEC}")),
        ),
        // Item 11: a complex key first in the pod template or its metadata.
        (
            "complex key in the template",
            deployment("    ? spec\n    : containers: [{name: w, image: x}]\n      volumes: [{name: c, configMap: {name: cfg}}]\n"),
        ),
        (
            "complex key in the metadata",
            deployment(&format!("    metadata:\n      ? labels\n      : {{app: web}}\n{SPEC}")),
        ),
        // Item 13: the quoted value in a flow mapping closed at column 0.
        (
            "flow mapping closed at column 0",
            deployment(&format!(
                "    metadata: {{labels: {{app: web,\n      tier: \"front\"\n}}}}\n{SPEC}"
            )),
        ),
    ];
    for (name, input) in cases {
        let annotated = hold_the_rule(&oracle, &input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(annotated, Some(true), "{name}: the Deployment is annotated");
    }
}

/// Item 12: an existing annotation carrying an anchor that an alias uses: changing it would
/// change the alias too. inject warns and leaves the document alone. (reconfig replaces only
/// a value it owns, a key under `reconfig/`: a chart's own `checksum/config` is kept as it is,
/// anchor and all, and reconfig's checksum goes beside it, see item 19.)
#[test]
fn an_anchored_annotation_that_an_alias_uses_is_left_alone() {
    const OWNED: &str = "reconfig/hash";
    let input = deployment(&format!(
        "    metadata:\n      annotations:\n        {OWNED}: &o old\n        other: *o\n{SPEC}"
    ));
    let out = run(&["inject", "-a", OWNED], &input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, input);
    assert!(
        out.stderr
            .contains("carries the anchor `&o`, which an alias uses elsewhere"),
        "{}",
        out.stderr
    );
    // Not used elsewhere: the anchor stays and the value is replaced.
    let input = deployment(&format!(
        "    metadata:\n      annotations:\n        {OWNED}: &o old\n{SPEC}"
    ));
    let out = run(&["inject", "-a", OWNED], &input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("        {OWNED}: &o \"")),
        "{}",
        out.stdout
    );
    // A chart's own anchored `checksum/config` is kept byte for byte, alias and all.
    let charts = deployment(&format!(
        "    metadata:\n      annotations:\n        {KEY}: &o old\n        other: *o\n{SPEC}"
    ));
    let out = run(&["inject"], &charts);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("        {KEY}: &o old\n"))
            && out.stdout.contains("        other: *o\n")
            && out.stdout.contains(&format!("{OWN_KEY}: \"")),
        "{}",
        out.stdout
    );
    if let Some(oracle) = oracle() {
        hold_the_rule(&oracle, &input).unwrap_or_else(|e| panic!("{e}"));
        hold_the_rule(&oracle, &charts).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Item 1: what Helm 4 hands a post-renderer (go-yaml's closing quote at column 0,
/// kube-prometheus-stack's PrometheusRules) is read, to the data Helm reads, and annotated.
#[test]
fn reads_go_yaml_closing_quotes_at_column_0() {
    let rule = "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n    name: rel-rules\nspec:\n    groups:\n        - name: node\n          rules:\n            - alert: NodeDown\n              annotations:\n                description: 'Node {{ $labels.instance }} is down.\n\n                    It has been unreachable for 5 minutes.\n\n'\n                summary: Node down\n---\n";
    let config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n    name: cfg\ndata:\n    motd: 'hello\n\n        world\n\n'\n---\n";
    let input = format!(
        "{rule}{config}apiVersion: apps/v1\nkind: Deployment\nmetadata:\n    name: web\nspec:\n    template:\n        spec:\n            containers:\n                - name: w\n                  image: x\n                  env:\n                    - name: M\n                      value: 'x\n\n'\n            volumes:\n                - name: c\n                  configMap:\n                    name: cfg\n"
    );
    let out = run(&["inject"], &input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(KEY), "{}", out.stdout);
    if let Some(oracle) = oracle() {
        assert_eq!(
            hold_the_rule(&oracle, &input).unwrap_or_else(|e| panic!("{e}")),
            Some(true)
        );
    }
    // The ConfigMap's value is the one Helm reads: a change of it is a change of the checksum.
    let changed = run(
        &["inject"],
        &input.replace("        world", "        there"),
    );
    assert_eq!(changed.code, 0, "{}", changed.stderr);
    assert_ne!(checksum(&changed.stdout), checksum(&out.stdout));
    // Spaces of indentation inside the quoted value are no change at all.
    let reindented = run(
        &["inject"],
        &input.replace("        world", "            world"),
    );
    assert_eq!(checksum(&reindented.stdout), checksum(&out.stdout));
}

/// A ConfigMap whose `kind` is a block scalar ending the stream with no line break is a
/// ConfigMap to go-yaml (`kind: |` + `  ConfigMap` is "ConfigMap" there); with a flow mapping
/// in it the fast path declines it, and the tree-less check once read "ConfigMap\n", a kind
/// no reader needs, so the Deployment lost the object (a differential fuzz finding).
#[test]
fn a_block_scalar_kind_at_the_end_of_the_stream_is_read() {
    let input = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n{SPEC}---\napiVersion: v1\nmetadata: {{name: cfg}}\ndata: {{k: v}}\nkind: |\n  ConfigMap"
    );
    let out = run(&["inject"], &input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("not in the stream"), "{}", out.stderr);
    let edited = run(&["inject"], &input.replace("{k: v}", "{k: w}"));
    assert_ne!(checksum(&edited.stdout), checksum(&out.stdout));
    if let Some(oracle) = oracle() {
        let docs = oracle_read(&oracle, &input).expect("the oracle reads it");
        assert_eq!(docs[1]["kind"], "ConfigMap");
    }
}

fn checksum(stream: &str) -> String {
    stream
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(&format!("{KEY}: ")))
        .unwrap_or_else(|| panic!("no checksum in:\n{stream}"))
        .to_string()
}

/// An error found after such a line still points at the user's line and column.
#[test]
fn errors_after_a_column_0_quote_point_at_the_input() {
    let input =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: 'x\n\n'\n  b: [1, 2\n";
    let out = run(&["inject"], input);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("document 1, line 9, column"),
        "{}",
        out.stderr
    );
}

/// Item 2: a tab right after a colon, and a later input file that starts with a byte order
/// mark or a directive (each of which is accepted alone).
#[test]
fn valid_yaml_is_accepted() {
    let input = deployment(&format!(
        "    metadata:\n      labels:\n        app:\tweb\n{SPEC}"
    ))
    .replace("  k: v", "  k:\tv");
    let out = run(&["inject"], &input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(KEY));

    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let first = write("cm.yaml", CONFIG_MAP.trim_end_matches("---\n"));
    let body = deployment(SPEC)
        .strip_prefix(CONFIG_MAP)
        .expect("prefix")
        .to_string();
    let bom = write("bom.yaml", &format!("\u{feff}{body}"));
    let directive = write("directive.yaml", &format!("%YAML 1.1\n---\n{body}"));
    for second in [&bom, &directive] {
        let alone = reconfig().arg("inject").arg(second).output().expect("run");
        assert!(
            alone.status.success(),
            "{}",
            String::from_utf8_lossy(&alone.stderr)
        );
        let joined = reconfig()
            .arg("inject")
            .arg(&first)
            .arg(second)
            .output()
            .expect("run");
        let stdout = String::from_utf8_lossy(&joined.stdout);
        assert!(
            joined.status.success(),
            "{}: {}",
            second.display(),
            String::from_utf8_lossy(&joined.stderr)
        );
        assert_eq!(stdout.matches(KEY).count(), 1, "{stdout}");
        let again = run(&["inject"], &stdout);
        assert_eq!(again.code, 0, "{}", again.stderr);
        assert_eq!(again.stdout, stdout);
    }
}

/// Pod templates in the corners of YAML, which the mutations below roughen further.
const TEMPLATES: &[&str] = &[
    "    metadata:\n      labels:\n        app: web\n      annotations:\n        a: b\n    spec:\n      containers:\n        - name: w\n          image: x\n      volumes:\n        - name: c\n          configMap:\n            name: cfg\n",
    "    metadata: {labels: {app: web}, annotations: {a: b}}\n    spec: {containers: [{name: w, image: x}], volumes: [{name: c, configMap: {name: cfg}}]}\n",
    "    metadata: {annotations: {a: b,\n    }}\n    spec: {containers: [{name: w, image: x}],\n      volumes: [{name: c, configMap: {name: cfg}}]}\n",
    "    ? spec\n    : containers: [{name: w, image: x}]\n      volumes: [{name: c, configMap: {name: cfg}}]\n",
    "    metadata:\n      ? labels\n      : {app: web}\n    spec:\n      containers: [{name: w, image: x}]\n      volumes: [{name: c, configMap: {name: cfg}}]\n",
    "    metadata:\n      annotations:\n        checksum/config: &o old\n        note: 'x\n\n'\n    spec:\n      containers: [{name: w, image: x}]\n      volumes: [{name: c, configMap: {name: cfg}}]\n",
    "    metadata: {labels: {app: web,\n      tier: \"front\"\n}}\n    spec:\n      containers: [{name: w, image: x}]\n      volumes: [{name: c, configMap: {name: cfg}}]\n",
    "    metadata:\n    spec: {\"containers\": [{\"name\": \"w\", \"image\": \"x\"}], \"volumes\": [{\"name\": \"c\", \"configMap\": {\"name\": \"cfg\"}}]}\n",
    "    {\"metadata\": {\"annotations\": {}}, \"spec\": {\"containers\": [], \"volumes\": [{\"name\": \"c\", \"configMap\": {\"name\": \"cfg\"}}]}}\n",
    "    # the pod\n    metadata: &m\n      labels: {app: web}\n    spec:\n      containers: [{name: w, image: x}]\n      volumes: [{name: c, configMap: {name: cfg}}]\n",
];

/// Text put at the end of a line, or on a line of its own.
const MUTATIONS: &[&str] = &[
    " # x,",
    " # {",
    " # }",
    " #",
    "\n    # c",
    "\n# c",
    "\n",
    ",",
    " &a",
    "\n    ? k\n    : v",
    "\n      ? k\n      : v",
    "\n}",
    "\n'",
];

fn mutate(template: &str, edits: &[(usize, usize)]) -> String {
    let mut lines: Vec<String> = template.lines().map(str::to_string).collect();
    for &(line, mutation) in edits {
        let i = line % lines.len();
        lines[i].push_str(MUTATIONS[mutation % MUTATIONS.len()]);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// The rule, over mutated pod templates: exit 0 means a valid, faithful, stable output.
    #[test]
    fn whenever_inject_succeeds_its_output_is_faithful(
        template in 0..TEMPLATES.len(),
        edits in prop::collection::vec((0usize..20, 0usize..MUTATIONS.len()), 0..4),
    ) {
        let Some(oracle) = oracle() else { return Ok(()) };
        let input = deployment(&mutate(TEMPLATES[template], &edits));
        if let Err(e) = hold_the_rule(&oracle, &input) {
            return Err(TestCaseError::fail(e));
        }
    }
}

/// Every template above, unmutated, is annotated.
#[test]
fn every_template_is_annotated() {
    let Some(oracle) = oracle() else { return };
    for template in TEMPLATES {
        let input = deployment(template);
        assert_eq!(
            hold_the_rule(&oracle, &input).unwrap_or_else(|e| panic!("{e}")),
            Some(true),
            "{input}"
        );
    }
}
