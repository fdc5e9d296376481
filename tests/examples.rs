//! The examples do what their READMEs say.

use assert_cmd::Command;

const ARGO: &str = "examples/argo-rollouts-config";

fn reconfig(args: &[&str], stdin: &str) -> (i32, String, String) {
    let out = Command::cargo_bin("reconfig")
        .expect("binary")
        .args(args)
        .write_stdin(stdin)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The checksum value, in block (`checksum/config: "…"`) or flow (`"checksum/config": "…"`) style.
fn checksum_of(text: &str) -> String {
    let at = text.find("checksum/config").expect("a checksum annotation");
    let rest = &text[at..];
    let start = rest.find(": \"").expect("a quoted value") + 3;
    rest[start..start + 64].to_string()
}

#[test]
fn argo_rollouts_controller_rolls_on_its_api_read_config() {
    let manifest = std::fs::read_to_string(format!("{ARGO}/controller.yaml")).expect("example");
    let (code, out, err) = reconfig(&["inject"], &manifest);
    assert_eq!(code, 0, "{err}");
    let before = checksum_of(&out);

    let changed = manifest.replace("v0.4.0", "v0.5.0");
    let (_, out, _) = reconfig(&["inject"], &changed);
    assert_ne!(
        checksum_of(&out),
        before,
        "a plugin change rolls the controller"
    );

    // The upstream chart cannot carry the annotation: --depends gives the same checksum.
    let plain = manifest.replace("        reconfig/configmaps: argo-rollouts-config\n", "");
    assert!(!plain.contains("reconfig/configmaps"));
    let (_, out, _) = reconfig(&["inject"], &plain);
    assert!(
        !out.contains("checksum/config"),
        "without the declaration nothing ties the controller to its config"
    );
    let (_, out, _) = reconfig(
        &[
            "inject",
            "--depends",
            "deployment/argo-rollouts=configmap/argo-rollouts-config",
        ],
        &plain,
    );
    assert_eq!(checksum_of(&out), before);
}

fn argo_check(manifest: &str) -> (i32, String) {
    let whole =
        format!("configmap/argo-rollouts-config={ARGO}/schemas/argo-rollouts-config.schema.json");
    let routers = format!("trafficRouterPlugins={ARGO}/schemas/plugins.schema.json");
    let metrics = format!("metricProviderPlugins={ARGO}/schemas/plugins.schema.json");
    let (code, _, err) = reconfig(
        &[
            "check",
            "--manifests",
            "-",
            "--format",
            "yaml",
            "--schema",
            &whole,
            "--schema",
            &routers,
            "--schema",
            &metrics,
        ],
        manifest,
    );
    (code, err)
}

#[test]
fn argo_rollouts_config_is_checked_against_its_schemas() {
    let manifest = std::fs::read_to_string(format!("{ARGO}/controller.yaml")).expect("example");
    let (code, err) = argo_check(&manifest);
    assert_eq!(code, 0, "{err}");

    let (code, err) = argo_check(&manifest.replace(
        "      location: \"https://github.com/argoproj-labs/rollouts-plugin-trafficrouter",
        "      locaton: \"https://github.com/argoproj-labs/rollouts-plugin-trafficrouter",
    ));
    assert_eq!(code, 1);
    assert!(err.contains("configmap/argo-rollouts-config/trafficRouterPlugins:1:3: schema: at /0: \"location\" is a required property"), "{err}");

    let (code, err) =
        argo_check(&manifest.replace("  trafficRouterPlugins: |-", "  trafficRouterPlugin: |-"));
    assert_eq!(code, 1);
    assert!(err.contains("trafficRouterPlugin"), "{err}");

    let (code, err) = argo_check(&manifest.replace("sha256: \"dac10cbf", "sha256: \"not-hex"));
    assert_eq!(code, 1, "{err}");
}
