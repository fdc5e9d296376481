//! The examples do what their READMEs say.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use support::atomic_writer::{payload, AtomicWriter};
use support::reconfig::Reconfig;
use support::wait::wait_for;

const ARGO: &str = "examples/argo-rollouts-config";

fn reconfig(args: &[&str], stdin: &str) -> (i32, String, String) {
    let run = support::cli::run(args, stdin);
    (run.code, run.stdout, run.stderr)
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

const PLUGINS_V1: &str =
    "- name: \"argoproj-labs/gatewayAPI\"\n  location: \"https://example.com/gatewayapi-v0.4.0\"\n";
const PLUGINS_V2: &str =
    "- name: \"argoproj-labs/gatewayAPI\"\n  location: \"https://example.com/gatewayapi-v0.5.0\"\n";
const PLUGINS_BROKEN: &str =
    "- name: \"argoproj-labs/gatewayAPI\"\n  locaton: \"https://example.com/gatewayapi-v0.6.0\"\n";

/// Part 3 of the Argo Rollouts example: the sidecar restarts the controller on a valid edit only.
#[test]
fn argo_rollouts_sidecar_restarts_the_controller_on_valid_edits_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let volume = AtomicWriter::new(tmp.path().join("argo-rollouts-config"));
    volume
        .write(&payload(&[("trafficRouterPlugins", PLUGINS_V1)]))
        .expect("write");
    let mut controller = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .expect("a stand-in controller");
    let pid_file = tmp.path().join("controller.pid");
    std::fs::write(&pid_file, controller.id().to_string()).expect("pid file");

    let schema = format!("trafficRouterPlugins={ARGO}/schemas/plugins.schema.json");
    let dir = volume.root().to_str().expect("path").to_string();
    let pid = pid_file.to_str().expect("path").to_string();
    let sidecar = Reconfig::start(&[
        "--dir",
        &dir,
        "--format",
        "yaml",
        "--schema",
        &schema,
        "--restart",
        "--pid-file",
        &pid,
    ]);
    sidecar.wait_ready(200);

    volume
        .write(&payload(&[("trafficRouterPlugins", PLUGINS_BROKEN)]))
        .expect("write");
    sidecar.wait_log("config rejected", 1);
    sidecar.wait_phase("rejected");
    assert_eq!(
        sidecar.readyz().status,
        200,
        "the controller keeps its config"
    );
    assert!(
        sidecar
            .log()
            .contains("\"location\" is a required property"),
        "{}",
        sidecar.log()
    );
    assert!(
        controller.try_wait().expect("wait").is_none(),
        "an invalid edit must not restart the controller"
    );

    volume
        .write(&payload(&[("trafficRouterPlugins", PLUGINS_V2)]))
        .expect("write");
    let status = wait_for(
        "the controller to be restarted",
        Duration::from_secs(10),
        || {
            controller
                .try_wait()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "still running".to_string())
        },
    );
    assert_eq!(status.signal(), Some(15), "restarted with SIGTERM");
    sidecar.wait_ready(200);
}

/// The Prometheus example's ConfigMap passes promtool through `check`, and a broken one does not.
#[test]
fn prometheus_example_config_is_checked_with_promtool() {
    if support::bins::require("promtool", "prometheus").is_none() {
        return;
    }
    let configmap =
        std::fs::read_to_string("examples/prometheus-hot-reload/configmap.yaml").expect("example");
    let promtool = "promtool check config {dir}/prometheus.yml";
    let (code, _, err) = reconfig(
        &["check", "--manifests", "-", "--validate-cmd", promtool],
        &configmap,
    );
    assert_eq!(code, 0, "{err}");
    let broken = configmap.replace("scrape_interval: 30s", "scrape_interval: soon");
    let (code, _, err) = reconfig(
        &["check", "--manifests", "-", "--validate-cmd", promtool],
        &broken,
    );
    assert_eq!(code, 1);
    assert!(err.contains("promtool check config"), "{err}");

    let deployment =
        std::fs::read_to_string("examples/prometheus-hot-reload/deployment.yaml").expect("example");
    // The ConfigMap is mounted only by the reconfig watch sidecar, which applies every valid
    // version in place: no restart needed, so inject leaves it out (and says so at -v) ...
    let stream = format!("{configmap}---\n{deployment}");
    let (code, out, err) = reconfig(&["inject", "-v"], &stream);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("checksum/config"), "{out}");
    assert!(
        err.contains("ConfigMap prometheus-config") && err.contains("(reconfig watch)"),
        "{err}"
    );
    // ... unless asked to count it.
    let (code, out, err) = reconfig(&["inject", "--include-reloaded"], &stream);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("checksum/config"),
        "the Deployment mounts the ConfigMap, so it gets a checksum"
    );
}

/// The `reconfig watch` arguments of `sidecar.yaml`, as the container gets them.
fn sidecar_yaml_args() -> Vec<String> {
    let text = std::fs::read_to_string(format!("{ARGO}/sidecar.yaml")).expect("sidecar.yaml");
    let start = text.find("            - watch\n").expect("the watch args");
    text[start..]
        .lines()
        .map(str::trim)
        .take_while(|l| l.starts_with("- ") || l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("- "))
        .map(str::to_string)
        .collect()
}

/// `sidecar.yaml`'s command line is one `reconfig watch` accepts (clap parses it all before `--help`).
#[test]
fn argo_rollouts_sidecar_yaml_args_are_accepted() {
    let args = sidecar_yaml_args();
    assert!(args.contains(&"--events".to_string()), "{args:?}");
    let run = |extra: &str| {
        support::cli::reconfig()
            .args(&args)
            .arg(extra)
            .arg("--help")
            .output()
            .expect("runs")
    };
    assert!(
        run("-v").status.success(),
        "sidecar.yaml's arguments: {args:?}"
    );
    assert_eq!(run("--no-such-flag").status.code(), Some(2));
}

/// Part 3 with `--events`: a rejected edit becomes a Warning event on the pod, through the
/// Kubernetes API (a loopback stand-in), with sidecar.yaml's own flags.
#[cfg(feature = "kube")]
#[test]
fn argo_rollouts_sidecar_reports_a_rejected_edit_as_an_event() {
    let args = sidecar_yaml_args();

    let tmp = tempfile::tempdir().expect("tempdir");
    let api = support::kube_api::FakeApi::start();
    let kubeconfig = api.kubeconfig(tmp.path(), "argo-rollouts");
    let volume = AtomicWriter::new(tmp.path().join("argo-rollouts-config"));
    volume
        .write(&payload(&[("trafficRouterPlugins", PLUGINS_V1)]))
        .expect("write");
    let dir = volume.root().to_str().expect("path").to_string();
    let schema = format!("--schema=trafficRouterPlugins={ARGO}/schemas/plugins.schema.json");
    // sidecar.yaml's flags, with this test's folders and no target to restart.
    let local: Vec<String> = args
        .iter()
        .skip(1)
        .filter_map(|a| match a {
            a if a.starts_with("--restart") || a.starts_with("--process") => None,
            a if a.starts_with("--dir=") => Some(format!("--dir={dir}")),
            a if a.starts_with("--schema=trafficRouterPlugins=") => Some(schema.clone()),
            a if a.starts_with("--schema=") => None,
            a => Some(a.clone()),
        })
        .collect();
    let local: Vec<&str> = local.iter().map(String::as_str).collect();
    let mut cmd = support::reconfig::command(&local);
    cmd.env("KUBECONFIG", &kubeconfig)
        .env("POD_NAME", "argo-rollouts-7c9d-x2kq")
        .env("POD_NAMESPACE", "argo-rollouts")
        .env("POD_UID", "5d1e")
        .env_remove("KUBERNETES_SERVICE_HOST");
    let sidecar = Reconfig::spawn(cmd);
    sidecar.wait_ready(200);

    volume
        .write(&payload(&[("trafficRouterPlugins", PLUGINS_BROKEN)]))
        .expect("write");
    let events = wait_for("a ConfigRejected event", Duration::from_secs(30), || {
        let events = api.events();
        events.first().cloned().ok_or_else(|| sidecar.log())
    });
    assert_eq!(events["type"], "Warning");
    assert_eq!(events["reason"], "ConfigRejected");
    assert_eq!(events["regarding"]["name"], "argo-rollouts-7c9d-x2kq");
    assert_eq!(events["regarding"]["uid"], "5d1e");
    let note = events["note"].as_str().expect("note");
    assert!(
        note.contains("rejected, the app keeps its last good config: ")
            && note.contains(
                "trafficRouterPlugins:1:3: schema: at /0: \"location\" is a required property"
            ),
        "{note}"
    );
}
