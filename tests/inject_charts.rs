//! `reconfig inject` on what real charts and `kubectl` emit: chart-shaped renders in
//! `tests/fixtures/charts/` (grafana, prometheus, postgresql), `kind: List`, old API groups,
//! Secrets as the API server decodes them, and flags that match nothing.

mod support;

use support::cli::{run, Run};
use support::manifests::Manifests;

const GRAFANA: &str = "tests/fixtures/charts/grafana.yaml";
const PROMETHEUS: &str = "tests/fixtures/charts/prometheus.yaml";

fn fixture(path: &str) -> String {
    std::fs::read_to_string(path).expect("fixture")
}

fn inject(input: &str, args: &[&str]) -> Run {
    run(&[&["inject"], args].concat(), input)
}

/// Runs inject, which must succeed, and checks that a second run changes nothing.
fn inject_ok(input: &str, args: &[&str]) -> Run {
    let first = inject(input, args);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let second = inject(&first.stdout, args);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(
        second.stdout, first.stdout,
        "a second inject changed the output"
    );
    first
}

/// The document of `text` that holds `needle` (documents split at `---` lines).
fn document<'t>(text: &'t str, needle: &str) -> &'t str {
    let found: Vec<&str> = text
        .split("\n---\n")
        .filter(|d| d.contains(needle))
        .collect();
    assert_eq!(found.len(), 1, "{needle} in {text}");
    found[0]
}

/// Every value of annotation `key` in `text`, in order (block style, double-quoted or plain).
fn annotation_values(text: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}: ");
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix(&prefix))
        .map(|v| v.trim_matches('"').to_string())
        .collect()
}

fn checksum(text: &str) -> String {
    let values = annotation_values(text, "checksum/config");
    assert_eq!(values.len(), 1, "{text}");
    values[0].clone()
}

// ---- item 3: Secret data decoded as the API server decodes it ------------------------------

fn secret_user(data: &str) -> String {
    Manifests::new()
        .raw(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\ndata:\n  pw: {data}\n"
        ))
        .deployment("app")
        .env_secret_key("PW", "s", "pw")
        .render()
}

#[test]
fn secret_base64_is_read_as_go_reads_it() {
    let plain = Manifests::new()
        .secret("s")
        .string_data("pw", "hi")
        .deployment("app")
        .env_secret_key("PW", "s", "pw")
        .render();
    let expected = checksum(&inject_ok(&plain, &[]).stdout);
    // Go's base64.StdEncoding (the API server's) ignores padding bits and skips \r and \n.
    for data in [
        "aGk=",
        "aGl=",
        "\"aGl=\\r\\n\"",
        "|\n    aG\n    k=",
        "\"\"",
    ] {
        let out = inject_ok(&secret_user(data), &[]);
        if data == "\"\"" {
            assert_ne!(checksum(&out.stdout), expected);
        } else {
            assert_eq!(checksum(&out.stdout), expected, "{data}");
        }
    }
    // What Go refuses, the API server refuses: a space, a tab, missing or extra padding.
    for data in ["\"aG k=\"", "\"aGk=\\t\"", "aGk", "aGk==", "aGk=aGk="] {
        let out = inject(&secret_user(data), &[]);
        assert_eq!(out.code, 1, "{data} was accepted: {}", out.stdout);
        assert!(out.stderr.contains("not valid base64"), "{}", out.stderr);
        assert!(out.stdout.is_empty());
    }
}

// ---- item 18: keys are file names ---------------------------------------------------------

#[test]
fn keys_that_are_not_file_names_make_the_object_invalid() {
    let long = "k".repeat(254);
    for key in [
        "../../x",
        "/abs/path",
        "a/b",
        ".",
        "..",
        "..x",
        "with space",
        &long,
        "\"\"",
    ] {
        let stream = Manifests::new()
            .raw(&format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n  {key}: v\n"
            ))
            .deployment("app")
            .mounts_config_map("c")
            .render();
        let out = inject(&stream, &[]);
        assert_eq!(out.code, 1, "key {key:?} accepted");
        assert!(
            out.stderr.contains("document 1") && out.stderr.contains("not a valid key"),
            "{}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
    }
    for key in ["a.b-c_D9", ".hidden", "x..y", &"k".repeat(253)] {
        let stream = Manifests::new()
            .config_map("c")
            .data(key, "v")
            .secret("s")
            .string_data(key, "v")
            .render();
        assert_eq!(inject(&stream, &[]).code, 0, "{key}");
    }
}

// ---- item 9: old API groups ----------------------------------------------------------------

#[test]
fn old_api_groups_are_annotated_like_apps_v1() {
    let current = inject_ok(
        &Manifests::new()
            .config_map("c")
            .data("a", "1")
            .workload("apps/v1", "Deployment", "w")
            .mounts_config_map("c")
            .render(),
        &[],
    );
    let expected = checksum(&current.stdout);
    for (api, kind) in [
        ("extensions/v1beta1", "Deployment"),
        ("extensions/v1beta1", "DaemonSet"),
        ("extensions/v1beta1", "ReplicaSet"),
        ("apps/v1beta1", "Deployment"),
        ("apps/v1beta1", "StatefulSet"),
        ("apps/v1beta2", "Deployment"),
        ("apps/v1beta2", "DaemonSet"),
        ("apps/v1beta2", "StatefulSet"),
        ("apps/v1beta2", "ReplicaSet"),
    ] {
        let stream = Manifests::new()
            .config_map("c")
            .data("a", "1")
            .workload(api, kind, "w")
            .mounts_config_map("c")
            .render();
        let out = inject_ok(&stream, &[]);
        assert_eq!(checksum(&out.stdout), expected, "{api} {kind}");
    }
}

// ---- item 8: kind: List --------------------------------------------------------------------

/// What `kubectl get cm,deploy -o yaml` prints: one List document with the objects as items.
const KUBECTL_LIST: &str = "apiVersion: v1
items:
- apiVersion: v1
  data:
    app.conf: port=8080
  kind: ConfigMap
  metadata:
    name: app
    namespace: prod
    resourceVersion: \"1234\"
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web
    namespace: prod
  spec:
    selector:
      matchLabels:
        app: web
    template:
      metadata:
        labels:
          app: web
      spec:
        containers:
        - image: nginx
          name: web
          volumeMounts:
          - mountPath: /etc/app
            name: config
        volumes:
        - configMap:
            name: app
          name: config
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: other
    namespace: prod
  spec:
    template:
      spec:
        containers:
        - image: nginx
          name: other
          envFrom:
          - configMapRef:
              name: app
kind: List
metadata:
  resourceVersion: \"\"
";

#[test]
fn list_items_are_objects() {
    let out = inject_ok(KUBECTL_LIST, &[]);
    // Both Deployments inside the List get the checksum of the ConfigMap inside it.
    let sums = annotation_values(&out.stdout, "checksum/config");
    assert_eq!(sums.len(), 2, "{}", out.stdout);
    let separate = Manifests::new()
        .config_map("app")
        .namespace("prod")
        .data("app.conf", "port=8080")
        .deployment("web")
        .namespace("prod")
        .mounts_config_map("app")
        .render();
    assert_eq!(sums[0], checksum(&inject_ok(&separate, &[]).stdout));
    // Only annotation lines were added.
    let added: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !KUBECTL_LIST.lines().any(|x| x == *l))
        .map(str::trim)
        .collect();
    assert!(
        added.iter().all(|l| l.starts_with("checksum/config: \"")
            || *l == "annotations:"
            || *l == "metadata:"),
        "{added:?}"
    );
    // The JSON form (`kubectl get -o json`) too.
    let json = r#"{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"}, "data": {"k": "v"}},
  {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
   "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
     {"name": "web", "image": "nginx", "envFrom": [{"configMapRef": {"name": "app"}}]}]}}}}
]}
"#;
    let out = inject_ok(json, &[]);
    assert_eq!(
        out.stdout.matches("\"checksum/config\": \"").count(),
        1,
        "{}",
        out.stdout
    );
    // A typed list (`DeploymentList`) and a ConfigMap outside the List mix like any stream.
    let typed = Manifests::new()
        .config_map("app")
        .data("k", "v")
        .raw(
            "apiVersion: apps/v1\nkind: DeploymentList\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata:\n    name: web\n  spec:\n    template:\n      spec:\n        containers:\n        - name: web\n          envFrom:\n          - configMapRef:\n              name: app\n",
        )
        .render();
    assert_eq!(
        annotation_values(&inject_ok(&typed, &[]).stdout, "checksum/config").len(),
        1
    );
}

#[test]
fn list_items_are_checked_like_documents() {
    let broken = KUBECTL_LIST.replace("    app.conf: ", "    ../app.conf: ");
    let out = inject(&broken, &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("line 5"), "{}", out.stderr);
}

// ---- item 19: a chart's own checksum/config -------------------------------------------------

#[test]
fn a_charts_own_checksum_is_kept_and_reconfigs_goes_beside_it() {
    let render = fixture(GRAFANA);
    let out = inject_ok(&render, &[]);
    let renderer = document(&out.stdout, "name: grafana-image-renderer\n  namespace");
    // The chart's value is untouched, and reconfig's checksum is written beside it.
    assert_eq!(
        annotation_values(renderer, "checksum/config"),
        vec!["0ea23ec6f2b9c4a9e4c1e7d8ab07e5c1f2d3b4a5968778695a4b3c2d1e0f9a8b"]
    );
    let ours = annotation_values(renderer, "reconfig/checksum");
    assert_eq!(ours.len(), 1, "{renderer}");
    assert_eq!(ours[0].len(), 64);
    assert!(
        out.stderr
            .contains("Deployment monitoring/grafana-image-renderer")
            && out.stderr.contains("already has checksum/config"),
        "{}",
        out.stderr
    );
    let grafana = document(
        &out.stdout,
        "kind: Deployment\nmetadata:\n  name: grafana\n",
    );
    assert_eq!(
        annotation_values(grafana, "checksum/config"),
        vec!["9a1f3c0e2b7d84f6a5c3e1d0b9a8f7e6d5c4b3a291807f6e5d4c3b2a1908f7e6"]
    );
    assert_eq!(annotation_values(grafana, "reconfig/checksum").len(), 1);
    // Only the two reconfig lines were added.
    let added: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !render.lines().any(|x| x == *l))
        .collect();
    assert_eq!(added.len(), 2, "{added:?}");

    // Either hash changing rolls the renderer: the chart's (grafana.ini) and reconfig's (the token).
    let token = inject_ok(&render.replace("c2VjcmV0LXJlbmRlcmVyLXRva2Vu", "bmV3"), &[]);
    let renderer_after = document(&token.stdout, "name: grafana-image-renderer\n  namespace");
    assert_ne!(annotation_values(renderer_after, "reconfig/checksum"), ours);

    // A key reconfig owns (`-a reconfig/…`) is reconfig's to replace, and the chart's key is
    // left alone when reconfig writes elsewhere anyway.
    let own = inject_ok(&render, &["-a", "example.com/config-hash"]);
    assert_eq!(
        annotation_values(&own.stdout, "checksum/config"),
        annotation_values(&render, "checksum/config")
    );
    assert_eq!(
        annotation_values(&own.stdout, "example.com/config-hash").len(),
        2
    );
}

#[test]
fn reconfigs_own_key_is_updated_and_the_charts_value_kept() {
    // An old value under reconfig/checksum is reconfig's own: it is updated; the chart's stays.
    let stream = Manifests::new()
        .config_map("c")
        .data("a", "1")
        .deployment("app")
        .template_annotation("checksum/config", "chart-owned")
        .template_annotation("reconfig/checksum", "0000")
        .mounts_config_map("c")
        .render();
    let out = inject_ok(&stream, &[]);
    assert_eq!(
        annotation_values(&out.stdout, "checksum/config"),
        vec!["chart-owned"]
    );
    let ours = annotation_values(&out.stdout, "reconfig/checksum");
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].len(), 64);
}

// ---- item 20: reload sidecars --------------------------------------------------------------

#[test]
fn volumes_a_reload_sidecar_watches_are_left_out() {
    let render = fixture(PROMETHEUS);
    let out = inject_ok(&render, &["-v"]);
    let server = document(
        &out.stdout,
        "name: prometheus-server\n  namespace: monitoring\nspec:",
    );
    // The config volume is reloaded by prometheus-config-reloader: only the Secret (env) counts.
    let only_secret = Manifests::new()
        .secret("prometheus-scrape")
        .namespace("monitoring")
        .string_data("token", "scrape-me")
        .deployment("x")
        .namespace("monitoring")
        .env_secret_key("SCRAPE_TOKEN", "prometheus-scrape", "token")
        .render();
    assert_eq!(
        checksum(server),
        checksum(&inject_ok(&only_secret, &[]).stdout)
    );
    assert!(
        out.stderr.contains("ConfigMap prometheus-server")
            && out.stderr.contains("prometheus-server-configmap-reload"),
        "-v says what was left out and why: {}",
        out.stderr
    );
    // A prometheus.yml change no longer rolls the server.
    let changed = inject_ok(
        &render.replace("scrape_interval: 1m", "scrape_interval: 2m"),
        &[],
    );
    assert_eq!(
        checksum(document(
            &changed.stdout,
            "name: prometheus-server\n  namespace: monitoring\nspec:"
        )),
        checksum(server)
    );

    // --include-reloaded, or reconfig/include on the template, puts it back.
    let with_config = |out: &Run| {
        checksum(document(
            &out.stdout,
            "name: prometheus-server\n  namespace: monitoring\nspec:",
        ))
    };
    let flag = inject_ok(&render, &["--include-reloaded"]);
    assert_ne!(with_config(&flag), checksum(server));
    let annotated = render.replace(
        "        app.kubernetes.io/instance: prometheus\n    spec:\n      enableServiceLinks",
        "        app.kubernetes.io/instance: prometheus\n      annotations:\n        reconfig/include: configmap/prometheus-server\n    spec:\n      enableServiceLinks",
    );
    assert_ne!(annotated, render);
    assert_eq!(with_config(&inject_ok(&annotated, &[])), with_config(&flag));
}

#[test]
fn known_reload_sidecars_by_image_and_by_command() {
    let pod = |sidecar: &str| {
        Manifests::new()
            .config_map("c")
            .data("a", "1")
            .secret("s")
            .string_data("b", "2")
            .raw(&format!(
                "apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  template:
    spec:
      containers:
      - name: app
        image: app:1
        envFrom:
        - secretRef:
            name: s
        volumeMounts:
        - name: config
          mountPath: /etc/app
{sidecar}      volumes:
      - name: config
        configMap:
          name: c
"
            ))
            .render()
    };
    let plain = inject_ok(&pod(""), &[]);
    let sidecars = [
        "      - name: reload\n        image: ghcr.io/jimmidyson/configmap-reload:v0.13.1\n        args: [--volume-dir=/etc/app, --webhook-url=http://127.0.0.1:8080/-/reload]\n        volumeMounts: [{name: config, mountPath: /etc/app}]\n",
        "      - name: reload\n        image: quay.io/prometheus-operator/prometheus-config-reloader@sha256:abcd\n        volumeMounts: [{name: config, mountPath: /etc/app}]\n",
        "      - name: reload\n        image: kiwigrid/k8s-sidecar:1.27.4\n        volumeMounts: [{name: config, mountPath: /etc/app}]\n",
        "      - name: reload\n        image: registry.example.com/tools/reconfig:0.3\n        args: [watch, --dir, /etc/app]\n        volumeMounts: [{name: config, mountPath: /etc/app}]\n",
        // reconfig copied into the app's own image (examples/prometheus-hot-reload)
        "      - name: reload\n        image: prom/prometheus:v2.54.1\n        command: [/reconfig/reconfig, watch]\n        args: [--dir=/etc/app]\n        volumeMounts: [{name: config, mountPath: /etc/app}]\n",
    ];
    let secret_only = checksum(
        &inject_ok(
            &Manifests::new()
                .secret("s")
                .string_data("b", "2")
                .deployment("app")
                .env_from_secret("s")
                .render(),
            &[],
        )
        .stdout,
    );
    for sidecar in sidecars {
        let out = inject_ok(&pod(sidecar), &[]);
        assert_eq!(checksum(&out.stdout), secret_only, "{sidecar}");
        assert_ne!(checksum(&out.stdout), checksum(&plain.stdout));
    }
    // A container that is not a reload sidecar changes nothing, even with a similar name.
    let other = "      - name: reload\n        image: example.com/configmap-reloader-fork-not-known:1\n        volumeMounts: [{name: config, mountPath: /etc/app}]\n";
    assert_eq!(
        checksum(&inject_ok(&pod(other), &[]).stdout),
        checksum(&plain.stdout)
    );
    // Everything the template uses is hot-reloaded: nothing to hash, and -v says why.
    let only_config = Manifests::new()
        .config_map("c")
        .data("a", "1")
        .raw("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: app, image: app, volumeMounts: [{name: config, mountPath: /c}]}\n      - {name: reload, image: jimmidyson/configmap-reload, volumeMounts: [{name: config, mountPath: /c}]}\n      volumes: [{name: config, configMap: {name: c}}]\n")
        .render();
    let out = inject_ok(&only_config, &["-v"]);
    assert!(!out.stdout.contains("checksum/config"), "{}", out.stdout);
    assert!(out.stderr.contains("reloaded in place"), "{}", out.stderr);
}

// ---- item 21: flags that match nothing -------------------------------------------------------

#[test]
fn depends_and_template_paths_that_match_nothing_are_reported() {
    let stream = Manifests::new()
        .config_map("argo-rollouts-config")
        .data("a", "one")
        .deployment("rel-argo-rollouts")
        .render();
    let depends = "deployment/argo-rollouts=configmap/argo-rollouts-config";
    let out = inject(&stream, &["--depends", depends]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("warning:")
            && out.stderr.contains("--depends")
            && out.stderr.contains("argo-rollouts")
            && out.stderr.contains("no workload"),
        "{}",
        out.stderr
    );
    let strict = inject(&stream, &["--depends", depends, "--strict"]);
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    assert!(strict.stdout.is_empty());
    // The right name matches and nothing is said.
    let ok = inject(
        &stream,
        &[
            "--depends",
            "deployment/rel-argo-rollouts=configmap/argo-rollouts-config",
            "--strict",
        ],
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(!ok.stderr.contains("--depends"), "{}", ok.stderr);

    let workflow = Manifests::new()
        .config_map("c")
        .data("a", "one")
        .workload("example.com/v1", "Workflow", "wf")
        .template_at("spec.podTemplate")
        .mounts_config_map("c")
        .render();
    let wrong = inject(
        &workflow,
        &["--template-path", "Workflow.example.com=spec.template"],
    );
    assert_eq!(wrong.code, 0);
    assert!(
        wrong.stderr.contains("--template-path")
            && wrong.stderr.contains("Workflow.example.com=spec.template"),
        "{}",
        wrong.stderr
    );
    let strict = inject(
        &workflow,
        &[
            "--template-path",
            "Workflow.example.com=spec.template",
            "--strict",
        ],
    );
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    let right = inject(
        &workflow,
        &[
            "--template-path",
            "Workflow.example.com=spec.podTemplate",
            "--strict",
        ],
    );
    assert_eq!(right.code, 0, "{}", right.stderr);
    assert!(right.stdout.contains("checksum/config"));
}

// ---- item 23: Helm 3 and Helm 4 both hide a successful post-render's warnings ---------------

/// Helm 3 and Helm 4 from `tests/tools/install-helm.sh` (cached in `target/tools/`).
fn helms() -> (std::path::PathBuf, std::path::PathBuf) {
    let out = std::process::Command::new("bash")
        .arg("tests/tools/install-helm.sh")
        .output()
        .expect("run install-helm.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    let get = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| panic!("no {key}= in {stdout}"))
    };
    (get("HELM3"), get("HELM4"))
}

#[test]
fn helm_3_and_4_hide_warnings_of_a_successful_post_render_but_the_log_file_keeps_them() {
    let (helm3, helm4) = helms();
    let work = tempfile::tempdir().expect("tempdir");
    let chart = work.path().join("chart");
    std::fs::create_dir_all(chart.join("templates")).expect("chart");
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: warn\nversion: 0.1.0\n",
    )
    .expect("write");
    std::fs::write(
        chart.join("templates/all.yaml"),
        Manifests::new()
            .config_map("app")
            .data("a", "1")
            .deployment("web")
            .mounts_config_map("app")
            .mounts_config_map("not-in-the-chart")
            .render(),
    )
    .expect("write");
    let bin_dir = std::path::Path::new(support::cli::BINARY)
        .parent()
        .expect("dir")
        .to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let helm = |exe: &std::path::Path, home: &str, args: &[&str]| {
        let home = work.path().join(home);
        let mut cmd = std::process::Command::new(exe);
        cmd.args(args)
            .env("HELM_DATA_HOME", home.join("data"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("KUBECONFIG", home.join("none"))
            .env("PATH", &path)
            .env_remove("HELM_PLUGINS");
        support::cli::clear_env(&mut cmd);
        let out = cmd.output().expect("run helm");
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let chart = chart.to_str().expect("utf8");
    let warning = "not-in-the-chart";

    // Helm 3: the binary is the post-renderer; its warning is not shown ...
    let (out, err) = helm(
        &helm3,
        "h3",
        &[
            "template",
            "rel",
            chart,
            "--post-renderer",
            "reconfig",
            "--post-renderer-args",
            "inject",
        ],
    );
    assert!(out.contains("checksum/config"), "{out}");
    assert!(!err.contains(warning), "Helm 3 showed it after all: {err}");
    // ... and --log-file keeps it.
    let log3 = work.path().join("helm3.log");
    let log_arg = format!("--post-renderer-args=--log-file={}", log3.display());
    helm(
        &helm3,
        "h3",
        &[
            "template",
            "rel",
            chart,
            "--post-renderer",
            "reconfig",
            "--post-renderer-args",
            "inject",
            &log_arg,
        ],
    );
    let logged = std::fs::read_to_string(&log3).expect("Helm 3 log file");
    assert!(logged.contains(warning), "{logged}");

    // Helm 4: the plugin; same story.
    let plugin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("helm-snippets/helm-plugin");
    helm(
        &helm4,
        "h4",
        &["plugin", "install", plugin.to_str().expect("utf8")],
    );
    let (out, err) = helm(
        &helm4,
        "h4",
        &["template", "rel", chart, "--post-renderer", "reconfig"],
    );
    assert!(out.contains("checksum/config"), "{out}");
    assert!(!err.contains(warning), "Helm 4 showed it after all: {err}");
    let log4 = work.path().join("helm4.log");
    let log_arg = format!("--post-renderer-args=--log-file={}", log4.display());
    helm(
        &helm4,
        "h4",
        &[
            "template",
            "rel",
            chart,
            "--post-renderer",
            "reconfig",
            &log_arg,
        ],
    );
    let logged = std::fs::read_to_string(&log4).expect("Helm 4 log file");
    assert!(logged.contains(warning), "{logged}");
}

#[test]
fn plan_says_when_a_depends_matches_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("old.yaml");
    let stream = Manifests::new()
        .config_map("argo-rollouts-config")
        .data("a", "1")
        .deployment("rel-argo-rollouts")
        .render();
    std::fs::write(&old, &stream).expect("write");
    let out = run(
        &[
            "plan",
            old.to_str().expect("utf8"),
            "-",
            "--depends",
            "deployment/argo-rollouts=configmap/argo-rollouts-config",
        ],
        &stream,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr
            .matches("no workload deployment/argo-rollouts")
            .count(),
        1,
        "{}",
        out.stderr
    );
}
