//! `reconfig inject --versioned` and `plan` over versioned renders, as users run them: the
//! real binary, fixtures on stdin.

mod support;

use support::cli::reconfig;
use support::manifests::Manifests;

const HELM3: &str = "tests/fixtures/helm3-render.yaml";

/// Runs inject and returns (stdout, stderr); the exit code must be 0.
fn inject(input: &str, args: &[&str]) -> (String, String) {
    let out = reconfig()
        .arg("inject")
        .args(args)
        .write_stdin(input)
        .assert()
        .success();
    let output = out.get_output();
    (
        String::from_utf8(output.stdout.clone()).expect("utf8"),
        String::from_utf8(output.stderr.clone()).expect("utf8"),
    )
}

/// Splits a stream at document markers, keeping every byte.
fn documents(text: &str) -> Vec<&str> {
    let mut starts: Vec<usize> = text.match_indices("\n---\n").map(|(i, _)| i + 1).collect();
    starts.insert(0, 0);
    starts.push(text.len());
    starts.windows(2).map(|w| &text[w[0]..w[1]]).collect()
}

#[test]
fn helm3_render_is_versioned_exactly() {
    let input = std::fs::read_to_string(HELM3).expect("fixture");
    let (output, stderr) = inject(&input, &["--versioned", "--keep"]);
    insta::assert_snapshot!(output);
    assert_eq!(stderr, "", "no warnings for this render");

    // Untouched documents are byte for byte; a changed one differs by name lines and added
    // lines only.
    let (before, after) = (documents(&input), documents(&output));
    assert_eq!(before.len(), after.len());
    let mut untouched = 0;
    for (b, a) in before.iter().zip(&after) {
        if b == a {
            untouched += 1;
            continue;
        }
        let removed: Vec<&str> = b.lines().filter(|l| !a.lines().any(|x| x == *l)).collect();
        for line in removed {
            let name_line = line
                .trim_start()
                .trim_start_matches("- ")
                .starts_with("name:")
                || line.contains("{name: ")
                || line.contains("metadata: {");
            assert!(name_line, "a changed document lost {line:?}:\n{a}");
        }
    }
    assert_eq!(untouched, 3, "the ServiceAccount, the Service and the Job");

    // Running it on its own output changes nothing, with or without the flag.
    assert_eq!(inject(&output, &["--versioned", "--keep"]).0, output);
    assert_eq!(inject(&output, &[]).0, output);
}

#[test]
fn annotated_objects_are_versioned_without_the_flag() {
    let input = Manifests::new()
        .config_map("pinned")
        .annotation("reconfig/versioned", "true")
        .data("a", "one")
        .config_map("plain")
        .data("b", "two")
        .deployment("web")
        .mounts_config_map("pinned")
        .mounts_config_map("plain")
        .render();
    let (output, _) = inject(&input, &[]);
    assert!(output.contains("  name: pinned-"), "{output}");
    assert!(output.contains("  name: plain\n"), "{output}");
    assert!(
        output.contains("    name: pinned-"),
        "the reference: {output}"
    );
    assert_eq!(inject(&input, &["--versioned=annotated"]).0, output);
    let (all, _) = inject(&input, &["--versioned"]);
    assert!(all.contains("  name: plain-"), "{all}");
    let (none, _) = inject(&input, &["--versioned=none"]);
    assert!(!none.contains("pinned-"), "{none}");
    // `--versioned all` (without `=`) is not the flag's value: it is a file name.
    reconfig()
        .args(["inject", "--versioned", "all"])
        .write_stdin(input.as_str())
        .assert()
        .code(2);
}

#[test]
fn a_reader_that_is_not_a_pod_template_keeps_the_name_with_a_warning() {
    let input = Manifests::new()
        .secret("tls")
        .string_data("tls.crt", "x")
        .object("networking.k8s.io/v1", "Ingress", "web")
        .spec("tls", "[{secretName: tls}]")
        .deployment("web")
        .mounts_secret("tls")
        .render();
    let (output, stderr) = inject(&input, &["--versioned"]);
    assert!(!output.contains("tls-"), "{output}");
    assert!(
        stderr.contains(
            "Secret tls is not versioned: Ingress web names it in spec.tls[0].secretName; it keeps its name"
        ),
        "{stderr}"
    );
    // --strict makes it an error, and nothing is written.
    let out = reconfig()
        .args(["inject", "--versioned", "--strict"])
        .write_stdin(input)
        .assert()
        .code(1);
    assert!(out.get_output().stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        stderr.contains("1 object(s) to version keep their names (--strict)"),
        "{stderr}"
    );
}

#[test]
fn a_name_too_long_for_the_label_is_an_error_and_nothing_is_written() {
    let long = "n".repeat(64);
    let input = Manifests::new()
        .config_map(&long)
        .data("a", "one")
        .deployment("web")
        .mounts_config_map(&long)
        .render();
    let out = reconfig()
        .args(["inject", "--versioned"])
        .write_stdin(input)
        .assert()
        .code(1);
    let output = out.get_output();
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("64 characters, over the 63 a label value may have"),
        "{stderr}"
    );
}

#[test]
fn plan_sees_two_versions_as_one_changed_config() {
    let render = |b: &str| {
        let input = Manifests::new()
            .config_map("app")
            .data("a", "one")
            .data("b", b)
            .deployment("web")
            .mounts_config_map("app")
            .render();
        inject(&input, &["--versioned"]).0
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (old, new) = (dir.path().join("old.yaml"), dir.path().join("new.yaml"));
    let (old_text, new_text) = (render("two"), render("2"));
    std::fs::write(&old, &old_text).expect("write");
    std::fs::write(&new, &new_text).expect("write");
    let name = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("  name: app-"))
            .map(|hash| format!("app-{hash}"))
            .expect("versioned")
    };
    let out = reconfig()
        .arg("plan")
        .arg(&old)
        .arg(&new)
        .assert()
        .success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).expect("utf8");
    let reason = format!(
        "ConfigMap app ({} → {}): b changed",
        name(&old_text),
        name(&new_text)
    );
    assert!(stdout.contains(&reason), "{stdout}");
    assert!(!stdout.contains("removed"), "{stdout}");
}

/// The fenced block after the marker line `<!-- tested: NAME -->` in the README.
fn readme_block(name: &str) -> String {
    let readme = std::fs::read_to_string("README.md").expect("README");
    let marker = format!("<!-- tested: {name} -->\n");
    let after = readme
        .split_once(&marker)
        .unwrap_or_else(|| panic!("README has no {marker}"))
        .1;
    let body = after.split_once('\n').expect("a fence line").1;
    body.split_once("\n```")
        .expect("a closing fence")
        .0
        .to_string()
}

/// `plan`'s stdout for two streams written to files.
fn plan(old: &str, new: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("old.yaml"), dir.path().join("new.yaml"));
    std::fs::write(&a, old).expect("write");
    std::fs::write(&b, new).expect("write");
    let out = reconfig().arg("plan").arg(&a).arg(&b).assert().success();
    String::from_utf8(out.get_output().stdout.clone()).expect("utf8")
}

/// A new version renames the references in pod templates: `plan` says it is the config that
/// changed, with its keys, and no template change (the README's sample, exactly).
#[test]
fn plan_names_the_keys_of_a_new_version_not_a_template_change() {
    let input = std::fs::read_to_string(HELM3).expect("fixture");
    let debug = input.replace("LOG_LEVEL: \"info\"", "LOG_LEVEL: \"debug\"");
    assert_ne!(debug, input);
    let (v1, v2) = (
        inject(&input, &["--versioned"]).0,
        inject(&debug, &["--versioned"]).0,
    );
    let out = plan(&v1, &v2);
    let restarts: Vec<&str> = out.lines().filter(|l| l.starts_with("RESTART")).collect();
    assert_eq!(restarts.join("\n"), readme_block("plan versioned"), "{out}");
    assert!(
        !out.contains("; template: ") && !out.contains(": template: "),
        "{out}"
    );
    assert!(
        out.ends_with(
            "3 of 7 pod template(s) restart: 3 for config, 0 for other template changes only.\n"
        ),
        "{out}"
    );

    // Against a render before the post-renderer only the data counts: the Rollout that reads
    // no changed key keeps, and no other name is a template change.
    let out = plan(&v1, &debug);
    let restarts: Vec<&str> = out.lines().filter(|l| l.starts_with("RESTART")).collect();
    assert_eq!(
        restarts,
        vec![
            "RESTART   CronJob shop-report spec.jobTemplate.spec.template: config: ConfigMap shop-config (shop-config-5c84c1a1c4 → shop-config): LOG_LEVEL changed",
            "RESTART   Deployment shop-web spec.template: config: ConfigMap shop-config (shop-config-5c84c1a1c4 → shop-config): LOG_LEVEL changed",
        ],
        "{out}"
    );
    assert!(
        out.contains("keep      Rollout shop-api spec.template\n"),
        "{out}"
    );
    assert!(
        !out.contains("; template: ") && !out.contains(": template: "),
        "{out}"
    );
    // And the same data under two names is no change at all, either way round.
    let same = plan(&input, &v1);
    assert!(!same.contains("RESTART"), "{same}");
    let same = plan(&v1, &input);
    assert!(!same.contains("RESTART"), "{same}");
}
