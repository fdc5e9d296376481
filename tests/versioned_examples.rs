//! `examples/argo-rollouts-canary-config/`: the rendered manifests are exactly what its
//! README shows, and `plan` tells the story it tells.

mod support;

const DIR: &str = "examples/argo-rollouts-canary-config";

fn read(file: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{file}")).expect("example file")
}

#[test]
fn the_canary_example_renders_exactly() {
    for version in ["v1", "v2"] {
        let run = support::cli::run(
            &["inject", "--keep"],
            &read(&format!("render-{version}.yaml")),
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.stderr, "");
        assert_eq!(
            run.stdout,
            read(&format!("injected-{version}.yaml")),
            "injected-{version}.yaml is out of date: regenerate it as the README says"
        );
    }
}

#[test]
fn the_canary_example_plans_one_changed_config() {
    let readme = read("README.md");
    let run = support::cli::run(
        &[
            "plan",
            &format!("{DIR}/injected-v1.yaml"),
            &format!("{DIR}/injected-v2.yaml"),
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    for line in run.stdout.lines() {
        assert!(readme.contains(line), "the README shows {line:?}");
    }
    let (v1, v2) = (read("injected-v1.yaml"), read("injected-v2.yaml"));
    // The Rollout's template names the version of its render; both are immutable and kept.
    for (text, name) in [
        (&v1, "shop-config-6115827ad1"),
        (&v2, "shop-config-154b5dea00"),
    ] {
        assert!(text.contains(&format!("  name: {name}\n")), "{text}");
        assert!(
            text.contains(&format!("            name: {name}\n")),
            "{text}"
        );
        assert!(text.contains("immutable: true\n"));
        assert!(text.contains("argocd.argoproj.io/sync-options: \"Prune=false\""));
        assert!(text.contains("helm.sh/resource-policy: \"keep\""));
        assert!(readme.contains(name), "the README names {name}");
    }
}
