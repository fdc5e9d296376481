//! The cluster as an input: `plan --live` (the old side read through the API) and
//! `inject --lookup` (ConfigMaps and Secrets the render lacks), against the loopback API
//! stand-in, with the exact requests each makes, and none at all without these flags.

#![cfg(feature = "kube")]
mod support;

use std::path::PathBuf;

use serde_json::{json, Value};
use support::kube_api::{FakeApi, Recorded};

/// A Deployment in namespace `shop` as the API server returns it: the render's fields plus
/// what the server fills in (defaults, status, managedFields), and a checksum `inject`
/// wrote at install time (`checksum`).
fn live_deployment(name: &str, image: &str, spec: Value, checksum: Option<&str>) -> Value {
    let mut container = json!({
        "name": "app", "image": image,
        "imagePullPolicy": "IfNotPresent",
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "resources": {},
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
    });
    for (k, v) in spec["container"].as_object().cloned().unwrap_or_default() {
        container[k] = v;
    }
    let mut template = json!({
        "metadata": {"labels": {"app": name}, "creationTimestamp": null},
        "spec": {
            "containers": [container],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler", "securityContext": {},
            "terminationGracePeriodSeconds": 30,
        },
    });
    if let Some(volumes) = spec.get("volumes") {
        template["spec"]["volumes"] = volumes.clone();
    }
    if let Some(sum) = checksum {
        template["metadata"]["annotations"] = json!({"checksum/config": sum});
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "generation": 3,
                     "managedFields": [{"manager": "helm", "operation": "Update"}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": template, "revisionHistoryLimit": 10},
        "status": {"replicas": 1, "readyReplicas": 1},
    })
}

/// The render's Deployment: `extra` goes into the container.
fn rendered_deployment(name: &str, image: &str, extra: &str, volumes: &str) -> String {
    format!(
        "---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: app
        image: {image}
        ports:
        - containerPort: 8080
{extra}{volumes}"
    )
}

const MOUNT_APP: &str = "      volumes:\n      - name: config\n        configMap: {name: app}\n";
const ENV_CREDS: &str = "        env:\n        - name: PASSWORD\n          valueFrom: {secretKeyRef: {name: creds, key: password}}\n";

fn config_map(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "app", "namespace": "shop"}, "data": data})
}

fn secret(password: &str) -> Value {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(password);
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
           "metadata": {"name": "creds", "namespace": "shop"}, "data": {"password": encoded}})
}

fn rendered_config_map(ttl: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: shop\ndata:\n  ttl: \"{ttl}\"\n"
    )
}

fn rendered_secret(password: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: shop\nstringData:\n  password: \"{password}\"\n"
    )
}

/// `reconfig ARGS` with KUBECONFIG pointing at `api` (namespace `shop`).
fn run(api: &FakeApi, dir: &tempfile::TempDir, args: &[&str], stdin: &str) -> support::cli::Run {
    run_with(&api.kubeconfig(dir.path(), "shop"), args, stdin)
}

fn run_with(kubeconfig: &PathBuf, args: &[&str], stdin: &str) -> support::cli::Run {
    let out = support::cli::reconfig()
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .write_stdin(stdin)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("run reconfig");
    support::cli::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn requests(api: &FakeApi) -> Vec<String> {
    api.requests()
        .iter()
        .map(|r: &Recorded| {
            if r.query.is_empty() {
                format!("{} {}", r.method, r.path)
            } else {
                format!("{} {}?{}", r.method, r.path, r.query)
            }
        })
        .collect()
}

/// The checksum inject writes for `render` (which holds its ConfigMaps and Secrets).
fn checksum_of(render: &str, workload: &str) -> String {
    let out = support::cli::run(&["inject"], render);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out
        .stdout
        .split("---\n")
        .find(|d| d.contains(&format!("name: {workload}\n")) && d.contains("kind: Deployment"))
        .expect("the workload");
    let line = doc
        .lines()
        .find(|l| l.trim_start().starts_with("checksum/config:"))
        .unwrap_or_else(|| panic!("no checksum in {doc}"));
    line.split('"').nth(1).expect("quoted").to_string()
}

#[test]
fn plan_live_reads_existing_changed_and_new_workloads() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // What runs: web mounts ConfigMap app (ttl 30s), api reads creds' password, img runs image
    // img:1; each was installed through inject, so carries its checksum.
    let old_render = [
        rendered_config_map("30s"),
        rendered_secret("s3cr3t"),
        rendered_deployment("web", "web:1", "", MOUNT_APP),
        rendered_deployment("api", "api:1", ENV_CREDS, ""),
    ]
    .concat();
    let web_sum = checksum_of(&old_render, "web");
    let api_sum = checksum_of(&old_render, "api");
    api.put(config_map(json!({"ttl": "30s"})));
    api.put(secret("s3cr3t"));
    api.put(live_deployment(
        "web",
        "web:1",
        json!({"volumes": [{"name": "config", "configMap": {"name": "app", "defaultMode": 420}}]}),
        Some(&web_sum),
    ));
    api.put(live_deployment(
        "api",
        "api:1",
        json!({"container": {"env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}]}}),
        Some(&api_sum),
    ));
    api.put(live_deployment("img", "img:1", json!({}), None));
    // Helm's release history: listed with the Secrets, never read as config.
    api.put(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                   "metadata": {"name": "sh.helm.release.v1.shop.v1", "namespace": "shop"},
                   "data": {"release": "H4sI"}}),
    );

    // The upgrade: ttl changes (web restarts for config), api is the same, img gets a new
    // image (a template change), and new is not in the cluster yet.
    let new_render = [
        rendered_config_map("60s"),
        rendered_secret("s3cr3t"),
        rendered_deployment("web", "web:1", "", MOUNT_APP),
        rendered_deployment("api", "api:1", ENV_CREDS, ""),
        rendered_deployment("img", "img:2", "", ""),
        rendered_deployment("new", "new:1", "", MOUNT_APP),
    ]
    .concat();
    let out = run(&api, &dir, &["plan", "--live", "-"], &new_render);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "keep      Deployment shop/api spec.template
RESTART   Deployment shop/img spec.template: template: container app image
NEW       Deployment shop/new spec.template
RESTART   Deployment shop/web spec.template: config: ConfigMap app: ttl changed
2 of 4 pod template(s) restart: 1 for config, 1 for other template changes only.
",
        "{}",
        out.stderr
    );
    // One list per kind and namespace, and only reads.
    assert_eq!(
        requests(&api),
        vec![
            "GET /apis/apps/v1/namespaces/shop/deployments",
            "GET /api/v1/namespaces/shop/configmaps",
            "GET /api/v1/namespaces/shop/secrets",
        ]
    );

    let verbose = run(&api, &dir, &["plan", "--live", "-", "-vv"], &new_render);
    assert_eq!(verbose.stdout, out.stdout);
    assert!(
        verbose.stderr.contains("read 3 workload(s)"),
        "{}",
        verbose.stderr
    );
    for secret in ["s3cr3t", "czNjcjN0"] {
        assert!(!verbose.stderr.contains(secret), "{}", verbose.stderr);
    }

    // The same render piped through inject first (the checksums it would write) plans alike.
    let injected = support::cli::run(&["inject"], &new_render);
    assert_eq!(injected.code, 0, "{}", injected.stderr);
    let again = run(&api, &dir, &["plan", "--live", "-"], &injected.stdout);
    assert_eq!(again.stdout, out.stdout, "{}", again.stderr);

    // A changed Secret shows by key, never by value.
    let rotated = new_render.replace("s3cr3t", "hunter2");
    let out = run(
        &api,
        &dir,
        &["plan", "--live", "-", "--output", "json"],
        &rotated,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains(r#"{"cause":"config","text":"Secret creds: password changed"}"#),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("hunter2") && !out.stdout.contains("s3cr3t"));
}

#[test]
fn plan_live_refused_or_unserved() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let render = rendered_deployment("web", "web:1", "", MOUNT_APP);
    api.refuse("GET", "secrets", 403);
    let out = run(&api, &dir, &["plan", "--live", "-"], &render);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("cannot list secrets in namespace shop: 403 Forbidden"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("`list` on secrets"), "{}", out.stderr);

    // A kind the cluster does not serve (no CRD installed): its workloads are new.
    let api = FakeApi::start();
    let knative = "---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: hello, namespace: shop}
spec:
  template:
    spec:
      containers: [{name: app, image: hello:1}]
";
    let out = run(&api, &dir, &["plan", "--live", "-"], knative);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("NEW       Service shop/hello spec.template\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("does not serve services.serving.knative.dev"),
        "{}",
        out.stderr
    );
}

/// `plan --live` on 500 workloads: one list per kind and namespace, never a get per object.
#[test]
fn plan_live_on_500_workloads_lists_once_per_kind_and_namespace() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut render = String::new();
    for ns in ["a", "b"] {
        render.push_str(
            &rendered_config_map("30s").replace("namespace: shop", &format!("namespace: {ns}")),
        );
        api.put(config_map(json!({"ttl": "30s"})).tap_namespace(ns));
    }
    for i in 0..500 {
        let ns = if i % 2 == 0 { "a" } else { "b" };
        let (kind, plural) = if i % 5 == 0 {
            ("StatefulSet", "statefulsets")
        } else {
            ("Deployment", "deployments")
        };
        let name = format!("w{i}");
        render.push_str(
            &rendered_deployment(&name, "app:1", "", MOUNT_APP)
                .replace("kind: Deployment", &format!("kind: {kind}"))
                .replace("namespace: shop", &format!("namespace: {ns}")),
        );
        // Half of them exist.
        if i % 2 == 0 || i % 3 == 0 {
            let mut live = live_deployment(&name, "app:1", json!({}), None);
            live["kind"] = json!(kind);
            live["metadata"]["namespace"] = json!(ns);
            let _ = plural;
            api.put(live);
        }
    }
    let started = std::time::Instant::now();
    let out = run(&api, &dir, &["plan", "--live", "-"], &render);
    let took = started.elapsed();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 501, "{}", out.stdout);
    let mut got = requests(&api);
    got.sort();
    assert_eq!(
        got,
        vec![
            "GET /api/v1/namespaces/a/configmaps",
            "GET /api/v1/namespaces/a/secrets",
            "GET /api/v1/namespaces/b/configmaps",
            "GET /api/v1/namespaces/b/secrets",
            "GET /apis/apps/v1/namespaces/a/deployments",
            "GET /apis/apps/v1/namespaces/a/statefulsets",
            "GET /apis/apps/v1/namespaces/b/deployments",
            "GET /apis/apps/v1/namespaces/b/statefulsets",
        ]
    );
    eprintln!(
        "plan --live on 500 workloads: {} requests, {took:?}",
        got.len()
    );
}

trait Namespaced {
    fn tap_namespace(self, ns: &str) -> Self;
}

impl Namespaced for Value {
    fn tap_namespace(mut self, ns: &str) -> Self {
        self["metadata"]["namespace"] = json!(ns);
        self
    }
}

/// A workload using a ConfigMap and a Secret made in the cluster (shared, External Secrets).
fn lookup_render() -> String {
    rendered_deployment(
        "web",
        "web:1",
        "        envFrom:\n        - secretRef: {name: creds}\n",
        MOUNT_APP,
    )
}

#[test]
fn inject_lookup_hashes_what_the_cluster_has() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    api.put(config_map(json!({"ttl": "30s"})));
    api.put(secret("s3cr3t"));
    // -vv: the libraries' own logs too, and still no Secret value.
    let out = run(&api, &dir, &["inject", "--lookup", "-vv"], &lookup_render());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("read from the cluster"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("czNjcjN0"),
        "base64 of the value: {}",
        out.stderr
    );
    // The same checksum as with both objects in the stream.
    let whole = [
        rendered_config_map("30s"),
        rendered_secret("s3cr3t"),
        lookup_render(),
    ]
    .concat();
    let expected = checksum_of(&whole, "web");
    assert!(
        out.stdout
            .contains(&format!("checksum/config: \"{expected}\"")),
        "{}",
        out.stdout
    );
    // Only the render comes out, annotated: not the objects read.
    assert!(!out.stdout.contains("kind: Secret") && !out.stdout.contains("s3cr3t"));
    assert!(!out.stderr.contains("s3cr3t"), "{}", out.stderr);
    assert!(!out.stderr.contains("not in the stream"), "{}", out.stderr);
    assert_eq!(
        requests(&api),
        vec![
            "GET /api/v1/namespaces/shop/configmaps/app",
            "GET /api/v1/namespaces/shop/secrets/creds",
        ]
    );
    // Rotating the Secret in the cluster rolls the pods at the next render.
    api.put(secret("hunter2"));
    let rotated = run(&api, &dir, &["inject", "--lookup"], &lookup_render());
    assert!(!rotated.stdout.contains(&expected), "{}", rotated.stdout);
}

#[test]
fn inject_lookup_of_an_object_the_cluster_lacks() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    api.put(config_map(json!({"ttl": "30s"})));
    let out = run(&api, &dir, &["inject", "--lookup"], &lookup_render());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Secret \"creds\" (envFrom of container \"app\") is not in the stream"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("checksum/config"), "{}", out.stdout);
    let strict = run(
        &api,
        &dir,
        &["inject", "--lookup", "--strict"],
        &lookup_render(),
    );
    assert_eq!(strict.code, 1, "{}", strict.stderr);
}

#[test]
fn inject_lookup_refused_fails_unless_best_effort() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    api.put(config_map(json!({"ttl": "30s"})));
    api.put(secret("s3cr3t"));
    api.refuse("GET", "secrets", 403);
    let out = run(&api, &dir, &["inject", "--lookup"], &lookup_render());
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "nothing is written: {}", out.stdout);
    assert!(
        out.stderr
            .contains("cannot read Secret shop/creds: 403 Forbidden"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`get` on secrets in namespace shop"),
        "{}",
        out.stderr
    );

    let out = run(
        &api,
        &dir,
        &["inject", "--lookup=best-effort"],
        &lookup_render(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("--lookup=best-effort: going on"),
        "{}",
        out.stderr
    );
    // Without the cluster's objects, as without --lookup.
    let plain = support::cli::run(&["inject"], &lookup_render());
    assert_eq!(out.stdout, plain.stdout);
}

#[test]
fn inject_lookup_unreachable_fails_unless_best_effort() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let kubeconfig = support::kube_api::kubeconfig(dir.path(), &url, "shop");
    let out = run_with(
        &kubeconfig,
        &["inject", "--lookup", "--request-timeout", "2s"],
        &lookup_render(),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("cannot read ConfigMap shop/app"),
        "{}",
        out.stderr
    );
    let out = run_with(
        &kubeconfig,
        &["inject", "--lookup=best-effort", "--request-timeout", "2s"],
        &lookup_render(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("kind: Deployment"));
}

/// Without `--live` or `--lookup`, nothing talks to the API server, even with a kubeconfig.
#[test]
fn no_request_without_the_flags() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    api.put(config_map(json!({"ttl": "30s"})));
    let render = lookup_render();
    let file = dir.path().join("old.yaml");
    std::fs::write(&file, &render).expect("write");
    let old = file.to_str().expect("path");
    for args in [
        vec!["inject"],
        vec!["inject", "--strict"],
        vec!["plan", old, "-"],
        vec!["check", "--manifests", "-"],
    ] {
        let out = run(&api, &dir, &args, &render);
        assert!(
            out.code == 0 || args.contains(&"--strict"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(requests(&api), Vec::<String>::new());
}

/// `--context` reads through another kubeconfig context than the current one.
#[test]
fn a_named_context_is_used_instead_of_the_current_one() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    api.put(config_map(json!({"ttl": "30s"})));
    api.put(secret("s3cr3t"));
    // The current context points at a port nothing listens on; `fake` at the stand-in.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             - name: dead\n  cluster:\n    server: {dead}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: u\n    namespace: shop\n\
             - name: dead\n  context:\n    cluster: dead\n    user: u\n    namespace: shop\n\
             current-context: dead\nusers:\n- name: u\n  user:\n    token: test-token\n",
            api.url()
        ),
    )
    .expect("write kubeconfig");
    let args = ["inject", "--lookup", "--request-timeout", "2s"];
    let current = run_with(&kubeconfig, &args, &lookup_render());
    assert_eq!(current.code, 2, "{}", current.stderr);
    let named = run_with(
        &kubeconfig,
        &[&args[..], &["--context", "fake"]].concat(),
        &lookup_render(),
    );
    assert_eq!(named.code, 0, "{}", named.stderr);
    assert_eq!(requests(&api).len(), 2);
    let plan = run_with(
        &kubeconfig,
        &["plan", "--live", "-", "--context", "fake"],
        &lookup_render(),
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout.starts_with("NEW       Deployment shop/web"),
        "{}",
        plan.stdout
    );
    let unknown = run_with(
        &kubeconfig,
        &["plan", "--live", "-", "--context", "nope"],
        "",
    );
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("context `nope`"),
        "{}",
        unknown.stderr
    );
    // Only with --live / --lookup.
    assert_eq!(
        support::cli::run(&["inject", "--context", "fake"], "").code,
        2
    );
}

/// `--lookup` with `--versioned`: the stream's ConfigMap gets its content-addressed name and
/// the references to it follow; the Secret read from the cluster is hashed like the rest but
/// keeps its name everywhere (it is not in the stream, so nothing could apply a new name).
#[test]
fn inject_lookup_with_versioned_renames_only_the_streams_objects() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    api.put(secret("s3cr3t"));
    let render = [rendered_config_map("30s"), lookup_render()].concat();
    let out = run(&api, &dir, &["inject", "--lookup", "--versioned"], &render);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Only the object the stream lacks is read.
    assert_eq!(
        requests(&api),
        vec!["GET /api/v1/namespaces/shop/secrets/creds"]
    );
    let versioned = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("  name: app-"))
        .map(|hash| format!("app-{hash}"))
        .unwrap_or_else(|| panic!("ConfigMap app is versioned: {}", out.stdout));
    assert_eq!(versioned.len(), "app-".len() + 10, "{versioned}");
    assert!(
        out.stdout
            .contains(&format!("configMap: {{name: {versioned}}}")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("    reconfig/versioned-from: \"app\"\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("- secretRef: {name: creds}\n"),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.matches("reconfig/versioned-from").count(), 1);
    assert!(!out.stdout.contains("kind: Secret") && !out.stdout.contains("s3cr3t"));
    assert!(!out.stderr.contains("not in the stream"), "{}", out.stderr);
    assert!(!out.stderr.contains("creds"), "{}", out.stderr);
    // The Secret counts in the checksum: the same as with it in the stream.
    let whole = [
        rendered_config_map("30s"),
        rendered_secret("s3cr3t"),
        lookup_render(),
    ]
    .concat();
    let expected = checksum_of(&whole, "web");
    assert!(
        out.stdout
            .contains(&format!("checksum/config: \"{expected}\"")),
        "{}",
        out.stdout
    );
    // Rotated in the cluster: the pods roll, the ConfigMap's version stays.
    api.put(secret("hunter2"));
    let rotated = run(&api, &dir, &["inject", "--lookup", "--versioned"], &render);
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    assert!(!rotated.stdout.contains(&expected), "{}", rotated.stdout);
    assert!(
        rotated.stdout.contains(&format!("  name: {versioned}\n")),
        "{}",
        rotated.stdout
    );
}

/// `plan --live` over versioned config: the cluster's pod template names `app-HASH` (labelled
/// `reconfig/versioned-from: app`), the new render another version or the plain name; either
/// way it is the ConfigMap `app` whose keys changed, never a template change of the volume.
#[test]
fn plan_live_matches_the_clusters_version_of_a_versioned_config() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let render = |ttl: &str| {
        [
            rendered_config_map(ttl),
            rendered_deployment("web", "web:1", "", MOUNT_APP),
        ]
        .concat()
    };
    let versioned = |text: &str| {
        let out = support::cli::run(&["inject", "--versioned"], text);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
    };
    let version_of = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("  name: app-"))
            .map(|hash| format!("app-{hash}"))
            .unwrap_or_else(|| panic!("versioned: {text}"))
    };
    let installed = versioned(&render("30s"));
    let old_name = version_of(&installed);
    let sum = installed
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("checksum/config: "))
        .expect("a checksum")
        .trim_matches('"')
        .to_string();
    let cluster_version = |name: &str, ttl: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "immutable": true,
               "metadata": {"name": name, "namespace": "shop",
                            "labels": {"reconfig/versioned-from": "app"}},
               "data": {"ttl": ttl}})
    };
    api.put(cluster_version(&old_name, "30s"));
    // An older version nothing names any more: listed, never matched.
    api.put(cluster_version("app-0123456789", "10s"));
    api.put(live_deployment(
        "web",
        "web:1",
        json!({"volumes": [{"name": "config", "configMap": {"name": old_name, "defaultMode": 420}}]}),
        Some(&sum),
    ));

    let upgrade = versioned(&render("60s"));
    let new_name = version_of(&upgrade);
    assert_ne!(new_name, old_name);
    let out = run(&api, &dir, &["plan", "--live", "-"], &upgrade);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "RESTART   Deployment shop/web spec.template: config: ConfigMap app ({old_name} → {new_name}): ttl changed
1 of 1 pod template(s) restart: 1 for config, 0 for other template changes only.
"
        ),
        "{}",
        out.stderr
    );
    // The render before inject: only the data counts.
    let out = run(&api, &dir, &["plan", "--live", "-"], &render("60s"));
    assert_eq!(
        out.stdout,
        format!(
            "RESTART   Deployment shop/web spec.template: config: ConfigMap app ({old_name} → app): ttl changed
1 of 1 pod template(s) restart: 1 for config, 0 for other template changes only.
"
        ),
        "{}",
        out.stderr
    );
    // Unchanged data, versioned or not: nothing restarts.
    for same in [versioned(&render("30s")), render("30s")] {
        let out = run(&api, &dir, &["plan", "--live", "-"], &same);
        assert_eq!(
            out.stdout,
            "keep      Deployment shop/web spec.template
0 of 1 pod template(s) restart: 0 for config, 0 for other template changes only.
",
            "{}",
            out.stderr
        );
    }
}
