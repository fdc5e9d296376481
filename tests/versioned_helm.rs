//! Versioned config with the real Helm 3 and Helm 4 (from `tests/tools/install-helm.sh`):
//! install, upgrade and `helm rollback` through `reconfig inject --versioned --keep` against
//! the loopback API stand-in, then `reconfig prune`; and the helm-snippets prune CronJob.
#![cfg(feature = "kube")]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::json;
use support::kube_api::FakeApi;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// (Helm 3, Helm 4), installed or found in the cache once per test process.
fn helms() -> &'static (PathBuf, PathBuf) {
    static HELMS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    HELMS.get_or_init(|| {
        let out = Command::new("bash")
            .arg(root().join("tests/tools/install-helm.sh"))
            .output()
            .expect("run install-helm.sh");
        assert!(
            out.status.success(),
            "install-helm.sh failed; these tests need Helm:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).expect("utf8");
        let get = |key: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(PathBuf::from)
                .unwrap_or_else(|| panic!("no {key}= in:\n{stdout}"))
        };
        (get("HELM3"), get("HELM4"))
    })
}

/// One Helm generation with homes of its own and the reconfig under test first on PATH.
struct Helm {
    exe: PathBuf,
    home: tempfile::TempDir,
    v4: bool,
}

impl Helm {
    fn new(v4: bool) -> Helm {
        let (h3, h4) = helms();
        let helm = Helm {
            exe: if v4 { h4.clone() } else { h3.clone() },
            home: tempfile::tempdir().expect("tempdir"),
            v4,
        };
        if v4 {
            let dir = root().join("helm-snippets/helm-plugin");
            helm.run(&["plugin", "install", dir.to_str().expect("utf8")], None);
        }
        helm
    }

    fn run(&self, args: &[&str], kubeconfig: Option<&Path>) -> String {
        let home = self.home.path();
        let bin_dir = Path::new(support::cli::BINARY).parent().expect("bin dir");
        let mut path = vec![bin_dir.to_path_buf()];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let mut cmd = Command::new(&self.exe);
        cmd.current_dir(root())
            .env("HELM_DATA_HOME", home.join("data"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env(
                "KUBECONFIG",
                kubeconfig.map_or(home.join("no-kubeconfig"), Path::to_path_buf),
            )
            .env("PATH", std::env::join_paths(path).expect("PATH"))
            .env_remove("HELM_PLUGINS")
            .env_remove("HELM_DEBUG");
        support::cli::clear_env(&mut cmd);
        let out = cmd.args(args).output().expect("run helm");
        assert!(
            out.status.success(),
            "helm {} (helm 4: {}) failed:\n{}",
            args.join(" "),
            self.v4,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }

    /// Post-rendering with `reconfig inject --versioned --keep`.
    fn post_renderer(&self) -> Vec<&'static str> {
        let mut args = self.post_renderer_without_keep();
        args.push("--post-renderer-args=--keep");
        args
    }

    /// Post-rendering with `reconfig inject --versioned`.
    fn post_renderer_without_keep(&self) -> Vec<&'static str> {
        let mut args = vec!["--post-renderer", "reconfig"];
        if !self.v4 {
            args.extend(["--post-renderer-args", "inject"]);
        }
        args.extend([
            "--post-renderer-args=--versioned",
            "--post-renderer-args=--namespace=shop",
        ]);
        args
    }
}

/// The test chart released through Helm 3 or 4 against its own API stand-in, post-rendered
/// by `reconfig inject --versioned`.
struct Release {
    helm: Helm,
    api: FakeApi,
    kubeconfig: PathBuf,
    chart: tempfile::TempDir,
}

impl Release {
    fn new(v4: bool) -> Release {
        let helm = Helm::new(v4);
        let api = FakeApi::start();
        let kubeconfig = api.kubeconfig(helm.home.path(), "shop");
        let chart = tempfile::tempdir().expect("tempdir");
        app_chart(chart.path());
        Release {
            helm,
            api,
            kubeconfig,
            chart,
        }
    }

    /// `helm VERB shop ./chart --set level=LEVEL` through the post-renderer, with `--keep`
    /// and `--lookup --carry` as asked.
    fn deploy(&self, verb: &str, level: &str, keep: bool, carry: bool) {
        let set = format!("level={level}");
        let chart = self.chart.path().to_str().expect("utf8");
        let mut args = vec![
            verb,
            "shop",
            chart,
            "-n",
            "shop",
            "--no-hooks",
            "--disable-openapi-validation",
            "--set",
            &set,
        ];
        args.extend(if keep {
            self.helm.post_renderer()
        } else {
            self.helm.post_renderer_without_keep()
        });
        if carry {
            args.extend(CARRY);
        }
        self.helm.run(&args, Some(&self.kubeconfig));
    }
}

/// Reading the cluster at render time, and carrying the versions still in use.
const CARRY: [&str; 2] = [
    "--post-renderer-args=--lookup",
    "--post-renderer-args=--carry",
];

fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

/// A chart with one ConfigMap (its `level` from values) and a Deployment mounting it.
fn app_chart(dir: &Path) {
    write(
        dir,
        "Chart.yaml",
        "apiVersion: v2\nname: app\nversion: 0.1.0\n",
    );
    write(dir, "values.yaml", "level: info\n");
    write(
        dir,
        "templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  level: {{ .Values.level | quote }}\n",
    );
    write(
        dir,
        "templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n        - name: web\n          image: nginx\n          volumeMounts: [{name: config, mountPath: /etc/app}]\n      volumes:\n        - name: config\n          configMap:\n            name: {{ .Release.Name }}-config\n",
    );
}

/// The name of the ConfigMap the Deployment's pod template mounts now.
fn mounted(api: &FakeApi) -> String {
    let deployment = api
        .objects("Deployment")
        .into_iter()
        .find(|d| d["metadata"]["name"] == "shop-web")
        .expect("the Deployment");
    deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
        .as_str()
        .expect("a ConfigMap volume")
        .to_string()
}

/// Names of the versioned ConfigMaps the stand-in holds.
fn versions(api: &FakeApi) -> Vec<String> {
    let mut names: Vec<String> = api
        .objects("ConfigMap")
        .iter()
        .filter(|c| c["metadata"]["labels"]["reconfig/versioned-from"] == "shop-config")
        .map(|c| {
            c["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    names.sort();
    names
}

/// What the Deployment controller does on a rollout: a ReplicaSet with the current template
/// (the stand-in runs no controllers).
fn replica_set_for(api: &FakeApi, name: &str) {
    let deployment = api
        .objects("Deployment")
        .into_iter()
        .find(|d| d["metadata"]["name"] == "shop-web")
        .expect("the Deployment");
    api.put(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"template": deployment["spec"]["template"].clone()},
    }));
}

/// Install (v1), upgrade with a changed value (v2), `helm rollback` to revision 1: it succeeds,
/// because `--carry` keeps the version a ReplicaSet still names in the release (so Helm's
/// current manifest holds it: helm/helm#8228, #13462), and the pod template names v1 again,
/// which exists (`--keep`). A second upgrade after the rollback works too (it adopts the kept
/// v2, which a ReplicaSet names). `reconfig prune --keep-last 1` then leaves only the versions
/// a ReplicaSet names.
#[test]
fn rollback_succeeds_with_carried_versions_and_prune_leaves_what_replica_sets_use() {
    for v4 in [false, true] {
        let release = Release::new(v4);
        let (helm, api, kubeconfig) = (&release.helm, &release.api, &release.kubeconfig);
        let deploy = |verb: &str, level: &str| release.deploy(verb, level, true, true);
        let manifest = || helm.run(&["get", "manifest", "shop", "-n", "shop"], Some(kubeconfig));

        deploy("install", "info");
        let first = mounted(api);
        assert!(first.starts_with("shop-config-"), "helm 4: {v4}: {first}");
        assert_eq!(versions(api), vec![first.clone()]);
        replica_set_for(api, "shop-web-1");

        deploy("upgrade", "debug");
        let second = mounted(api);
        assert_ne!(second, first);
        replica_set_for(api, "shop-web-2");
        let mut both = vec![first.clone(), second.clone()];
        both.sort();
        assert_eq!(versions(api), both, "--keep kept v1 (helm 4: {v4})");
        // Revision 2 holds v1 too: ReplicaSet shop-web-1 names it.
        let release = manifest();
        assert!(
            release.contains(&format!("name: {first}"))
                && release.contains(&format!("name: {second}")),
            "helm 4: {v4}: {release}"
        );
        let version = &api
            .objects("ConfigMap")
            .into_iter()
            .find(|c| c["metadata"]["name"] == first.as_str())
            .expect("first");
        assert_eq!(version["immutable"], true);
        assert_eq!(version["data"]["level"], "info");
        assert_eq!(
            version["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep"
        );

        helm.run(
            &["rollback", "shop", "1", "-n", "shop", "--no-hooks"],
            Some(kubeconfig),
        );
        assert_eq!(
            mounted(api),
            first,
            "the pod template names v1 again (helm 4: {v4})"
        );
        assert_eq!(versions(api), both, "v1 exists, v2 is kept (helm 4: {v4})");

        // A second upgrade after the rollback: the render carries v1 and v2 (both named by a
        // ReplicaSet); v2 is not in the rolled-back release, and Helm adopts it.
        deploy("upgrade", "warn");
        let third = mounted(api);
        assert!(third != first && third != second, "helm 4: {v4}: {third}");
        replica_set_for(api, "shop-web-3");
        let release = manifest();
        for name in [&first, &second, &third] {
            assert!(
                release.contains(&format!("name: {name}")),
                "{name} in (helm 4: {v4}):\n{release}"
            );
        }
        let history = helm.run(&["history", "shop", "-n", "shop"], Some(kubeconfig));
        assert_eq!(
            history.matches("deployed").count() + history.matches("superseded").count(),
            4,
            "helm 4: {v4}: {history}"
        );

        // The Deployment keeps its last ReplicaSets (revisionHistoryLimit): the second is gone.
        let dir = tempfile::tempdir().expect("tempdir");
        let prune_kubeconfig = api.kubeconfig(dir.path(), "shop");
        api.put(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                       "metadata": {"name": "shop-web-2", "namespace": "shop"}, "spec": {}}));
        let out = support::cli::reconfig()
            .args(["prune", "--keep-last", "1", "--min-age", "0s"])
            .env("KUBECONFIG", &prune_kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .assert()
            .success();
        let mut left = vec![first.clone(), third.clone()];
        left.sort();
        assert_eq!(
            versions(api),
            left,
            "helm 4: {v4}: {}",
            String::from_utf8_lossy(&out.get_output().stdout)
        );
        // And Helm goes on: an upgrade after the prune no longer carries the pruned v2.
        deploy("upgrade", "error");
        let fourth = mounted(api);
        let release = manifest();
        assert!(!release.contains(&second), "helm 4: {v4}: {release}");
        assert!(release.contains(&format!("name: {first}")), "helm 4: {v4}");
        assert!(versions(api).contains(&fourth));
    }
}

/// With `--keep`, a version nothing names any more (its ReplicaSet went with
/// revisionHistoryLimit) is still in the cluster, so it is carried too: `helm rollback` to the
/// revision that made it succeeds. Left out of the release, Helm would refuse it as above.
#[test]
fn rollback_to_a_kept_version_nothing_names_succeeds() {
    for v4 in [false, true] {
        let release = Release::new(v4);
        let (helm, api, kubeconfig) = (&release.helm, &release.api, &release.kubeconfig);
        let deploy = |verb: &str, level: &str| release.deploy(verb, level, true, true);
        deploy("install", "info");
        let first = mounted(api);
        replica_set_for(api, "shop-web-1");
        deploy("upgrade", "debug");
        replica_set_for(api, "shop-web-2");
        // The first ReplicaSet is gone: nothing names v1, which --keep keeps.
        api.put(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                       "metadata": {"name": "shop-web-1", "namespace": "shop"}, "spec": {}}));
        deploy("upgrade", "warn");
        let release = helm.run(&["get", "manifest", "shop", "-n", "shop"], Some(kubeconfig));
        assert!(
            release.contains(&format!("name: {first}")),
            "revision 3 carries the unnamed v1 (helm 4: {v4}):\n{release}"
        );
        helm.run(
            &["rollback", "shop", "1", "-n", "shop", "--no-hooks"],
            Some(kubeconfig),
        );
        assert_eq!(mounted(api), first, "helm 4: {v4}");
        assert!(versions(api).contains(&first), "helm 4: {v4}");
    }
}

/// The helm-snippets prune CronJob renders alike under Helm 3 and Helm 4, passes
/// `helm lint --strict`, and its Role grants exactly what prune asks the API for.
#[test]
fn prune_snippet_renders_alike_with_both_helms_and_grants_exactly_what_prune_needs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snippets = root().join("helm-snippets/reconfig-snippets");
    write(
        dir.path(),
        "demo/Chart.yaml",
        &format!(
            "apiVersion: v2\nname: demo\nversion: 0.1.0\ndependencies:\n  - name: reconfig-snippets\n    version: 0.1.0\n    repository: file://{}\n",
            snippets.display()
        ),
    );
    write(
        dir.path(),
        "demo/templates/prune.yaml",
        "{{- include \"reconfig.prune\" (dict \"name\" (printf \"%s-prune\" .Release.Name) \"namespace\" .Release.Namespace \"keepLast\" 1 \"selector\" \"app.kubernetes.io/instance=shop\" \"labels\" (dict \"app.kubernetes.io/instance\" .Release.Name) \"image\" (dict \"repository\" \"registry.example.com/reconfig\" \"tag\" \"0.1.0\")) }}\n",
    );
    let demo = dir.path().join("demo");
    let demo = demo.to_str().expect("utf8");
    let (h3, h4) = (Helm::new(false), Helm::new(true));
    h3.run(&["dependency", "build", demo], None);
    let mut renders = Vec::new();
    for helm in [&h3, &h4] {
        helm.run(&["lint", "--strict", demo], None);
        renders.push(helm.run(&["template", "shop", demo, "-n", "shop"], None));
    }
    assert_eq!(renders[0], renders[1], "Helm 3 and Helm 4 render it alike");
    let render = &renders[0];
    for needle in [
        "kind: CronJob",
        "concurrencyPolicy: Forbid",
        "serviceAccountName: shop-prune",
        "image: \"registry.example.com/reconfig:0.1.0\"",
        "- prune\n",
        "- \"--namespace=shop\"",
        "- \"--keep-last=1\"",
        "- \"--min-age=10m\"",
        "- \"--selector=app.kubernetes.io/instance=shop\"",
        "readOnlyRootFilesystem: true",
    ] {
        assert!(render.contains(needle), "{needle:?} in:\n{render}");
    }
    // The Role: list and delete the versions, list each reader kind; nothing more.
    let role = render
        .split("---")
        .find(|d| d.contains("kind: Role\n"))
        .expect("a Role");
    let mut granted: Vec<(String, String, String)> = Vec::new();
    let mut groups: Vec<String> = Vec::new();
    let mut resources: Vec<String> = Vec::new();
    let list = |line: &str| -> Vec<String> {
        line.split_once('[')
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(inner, _)| {
                inner
                    .split(',')
                    .map(|s| s.trim().trim_matches('"').to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    for line in role.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("- apiGroups:") {
            groups = list(rest);
        } else if let Some(rest) = line.strip_prefix("resources:") {
            resources = list(rest);
        } else if let Some(rest) = line.strip_prefix("verbs:") {
            for group in &groups {
                for resource in &resources {
                    for verb in list(rest) {
                        granted.push((group.clone(), resource.clone(), verb));
                    }
                }
            }
        }
    }
    granted.sort();
    let mut needed: Vec<(String, String, String)> = reconfig::kube::prune::READERS
        .iter()
        .map(|(group, _, plural, _)| (group.to_string(), plural.to_string(), "list".to_string()))
        .collect();
    for plural in ["configmaps", "secrets"] {
        for verb in ["list", "delete"] {
            needed.push((String::new(), plural.to_string(), verb.to_string()));
        }
    }
    needed.sort();
    assert_eq!(granted, needed);
}

/// Without `--keep`, Helm deletes the old version at the upgrade, and `helm rollback` creates
/// it again: the README's claim, with both Helms.
#[test]
fn without_keep_an_upgrade_deletes_the_old_version_and_rollback_creates_it_again() {
    for v4 in [false, true] {
        let release = Release::new(v4);
        let (helm, api, kubeconfig) = (&release.helm, &release.api, &release.kubeconfig);
        let deploy = |verb: &str, level: &str| release.deploy(verb, level, false, false);
        deploy("install", "info");
        let first = mounted(api);
        deploy("upgrade", "debug");
        let second = mounted(api);
        assert_eq!(versions(api), vec![second.clone()], "helm 4: {v4}");
        helm.run(
            &["rollback", "shop", "1", "-n", "shop", "--no-hooks"],
            Some(kubeconfig),
        );
        assert_eq!(mounted(api), first, "helm 4: {v4}");
        assert_eq!(versions(api), vec![first.clone()], "helm 4: {v4}");
    }
}

/// A render with a versioned ConfigMap `app` (its `level`) and Secret `creds` (its password),
/// used by Deployment `web`; no namespace, as a chart writes it.
fn carry_render(level: &str, password_b64: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  level: {level}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\ndata:\n  password: {password_b64}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: nginx\n          envFrom: [{{secretRef: {{name: creds}}}}]\n      volumes:\n        - name: config\n          configMap: {{name: app}}\n"
    )
}

/// The versioned name `inject --versioned` gives `base` in `render`.
fn versioned_name(render: &str, base: &str) -> String {
    let out = support::cli::run(&["inject", "--versioned"], render);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let prefix = format!("name: {base}-");
    out.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(&prefix))
        .map(|hash| format!("{base}-{hash}"))
        .unwrap_or_else(|| panic!("no {prefix} in:\n{}", out.stdout))
}

/// A live version as Helm leaves it: owner annotations, kubectl's, and the server's fields.
fn live_version(kind: &str, name: &str, from: &str, data: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": kind,
        "metadata": {"name": name, "namespace": "shop",
                     "labels": {"reconfig/versioned-from": from, "app.kubernetes.io/managed-by": "Helm"},
                     "annotations": {"meta.helm.sh/release-name": "shop",
                                     "kubectl.kubernetes.io/last-applied-configuration": "{}",
                                     "helm.sh/resource-policy": "keep"}},
        "immutable": true,
        "data": data,
    })
}

fn run_inject(
    kubeconfig: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> support::cli::Run {
    let mut cmd = support::cli::reconfig();
    cmd.args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("HELM_NAMESPACE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
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

/// `--carry --keep` without Helm: exactly the live versions the render lacks (named by a
/// ReplicaSet or not: Helm keeps them all), as plain documents after the render, sorted by name; a Secret's value in the stream and never
/// in the log; the namespace from HELM_NAMESPACE when neither the render nor `--namespace`
/// names one; running it again on its own output changes nothing.
#[test]
fn carry_appends_the_used_versions_once_and_never_logs_a_secret_value() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // The kubeconfig's namespace is not the one the objects live in: HELM_NAMESPACE wins.
    let kubeconfig = api.kubeconfig(dir.path(), "elsewhere");
    let (old_pw, new_pw) = ("MGxkLXBhNTU=", "bjN3LXBhNTU="); // 0ld-pa55, n3w-pa55
    let old = carry_render("info", old_pw);
    let new = carry_render("debug", new_pw);
    let (app_old, creds_old) = (versioned_name(&old, "app"), versioned_name(&old, "creds"));
    let (app_new, creds_new) = (versioned_name(&new, "app"), versioned_name(&new, "creds"));
    api.put(live_version(
        "ConfigMap",
        &app_old,
        "app",
        json!({"level": "info"}),
    ));
    api.put(live_version(
        "Secret",
        &creds_old,
        "creds",
        json!({"password": old_pw}),
    ));
    // The version the render itself produces, already live and used: not carried twice.
    api.put(live_version(
        "ConfigMap",
        &app_new,
        "app",
        json!({"level": "debug"}),
    ));
    // Used by nothing, but kept (--keep): carried too, so a rollback finds it in the release.
    api.put(live_version(
        "ConfigMap",
        "app-0123456789",
        "app",
        json!({"level": "x"}),
    ));
    // Another name's version, used: not asked for.
    api.put(live_version(
        "ConfigMap",
        "other-0123456789",
        "other",
        json!({"a": "b"}),
    ));
    let template = |cm: &str, secret: &str| {
        json!({"spec": {"containers": [{"name": "web", "image": "nginx",
                                         "envFrom": [{"secretRef": {"name": secret}}]}],
                        "volumes": [{"name": "config", "configMap": {"name": cm}}]}})
    };
    for (rs, cm, secret) in [
        ("web-1", app_old.as_str(), creds_old.as_str()),
        ("web-2", app_new.as_str(), creds_new.as_str()),
        ("other-1", "other-0123456789", "x"),
    ] {
        api.put(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                       "metadata": {"name": rs, "namespace": "shop"},
                       "spec": {"template": template(cm, secret)}}));
    }
    let args = [
        "inject",
        "--versioned",
        "--keep",
        "--lookup",
        "--carry",
        "-v",
    ];
    let out = run_inject(&kubeconfig, &args, &[("HELM_NAMESPACE", "shop")], &new);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let requests: Vec<String> = api
        .requests()
        .iter()
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    // One list per versioned kind, then one per reader kind the stand-in serves (11) and one
    // discovery read per custom resource group-version (4): no object read one by one.
    assert_eq!(requests.len(), 17, "{requests:#?}");
    assert!(
        requests.iter().all(|r| r.starts_with("GET /")),
        "{requests:#?}"
    );
    assert_eq!(
        requests[..2],
        [
            "GET /api/v1/namespaces/shop/configmaps?&labelSelector=reconfig%2Fversioned-from+in+%28app%29",
            "GET /api/v1/namespaces/shop/secrets?&labelSelector=reconfig%2Fversioned-from+in+%28creds%29",
        ]
    );
    let plain = support::cli::run(&["inject", "--versioned", "--keep"], &new);
    let carried = out
        .stdout
        .strip_prefix(plain.stdout.as_str())
        .unwrap_or_else(|| panic!("the render first, unchanged:\n{}", out.stdout));
    let document = |kind: &str, name: &str, from: &str, data: &str| {
        format!(
            "---\napiVersion: v1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: shop\n  labels:\n    app.kubernetes.io/managed-by: Helm\n    reconfig/versioned-from: {from}\n  annotations:\n    argocd.argoproj.io/sync-options: Prune=false\n    helm.sh/resource-policy: keep\n    reconfig/carried: \"true\"\nimmutable: true\ndata:\n  {data}\n"
        )
    };
    let mut expected = vec![
        (
            app_old.clone(),
            document("ConfigMap", &app_old, "app", "level: info"),
        ),
        (
            "app-0123456789".to_string(),
            document("ConfigMap", "app-0123456789", "app", "level: x"),
        ),
        (
            creds_old.clone(),
            document(
                "Secret",
                &creds_old,
                "creds",
                &format!("password: {old_pw}"),
            ),
        ),
    ];
    expected.sort();
    assert_eq!(
        carried,
        expected.into_iter().map(|(_, d)| d).collect::<String>()
    );
    for line in [
        format!("ConfigMap shop/{app_old} (versioned from app) carried into the render: used by ReplicaSet web-1"),
        format!("Secret shop/{creds_old} (versioned from creds) carried into the render: used by ReplicaSet web-1"),
        "ConfigMap shop/app-0123456789 (versioned from app) carried into the render: nothing names it, kept (--keep) until reconfig prune deletes it".to_string(),
    ] {
        assert!(out.stderr.contains(&line), "{line} in:\n{}", out.stderr);
    }
    for secret in [old_pw, new_pw, "0ld-pa55", "n3w-pa55"] {
        assert!(
            !out.stderr.contains(secret),
            "a Secret value in the log:\n{}",
            out.stderr
        );
    }
    // Idempotent: its own output, with the namespace as a flag this time, comes out unchanged.
    let again = run_inject(
        &kubeconfig,
        &[
            "inject",
            "--versioned",
            "--keep",
            "--lookup",
            "--carry",
            "--namespace=shop",
        ],
        &[],
        &out.stdout,
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.stdout, out.stdout);
    // Without HELM_NAMESPACE or --namespace, the kubeconfig's namespace has no versions.
    let elsewhere = run_inject(&kubeconfig, &args, &[], &new);
    assert_eq!(elsewhere.code, 0, "{}", elsewhere.stderr);
    assert_eq!(elsewhere.stdout, plain.stdout);
}

/// A cluster `--carry` cannot read fails the render (exit 2, nothing written) under
/// `--lookup`, and is a warning under `--lookup=best-effort`; `--carry` needs `--lookup`.
#[test]
fn carry_refused_fails_unless_best_effort() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.kubeconfig(dir.path(), "shop");
    let old = carry_render("info", "b2xk");
    let app_old = versioned_name(&old, "app");
    api.put(live_version(
        "ConfigMap",
        &app_old,
        "app",
        json!({"level": "info"}),
    ));
    api.refuse("GET", "replicasets", 403);
    let new = carry_render("debug", "b2xk");
    let out = run_inject(
        &kubeconfig,
        &["inject", "--versioned", "--lookup", "--carry"],
        &[],
        &new,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "nothing is written: {}", out.stdout);
    assert!(
        out.stderr.contains("cannot list replicasets.apps in namespace shop (to find what uses each version): 403 Forbidden")
            && out.stderr.contains("`list replicasets`"),
        "{}",
        out.stderr
    );
    let out = run_inject(
        &kubeconfig,
        &["inject", "--versioned", "--lookup=best-effort", "--carry"],
        &[],
        &new,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--lookup=best-effort: carrying no old versions"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stdout,
        support::cli::run(&["inject", "--versioned"], &new).stdout
    );

    // Nothing versioned, nothing to carry: no request at all.
    let before = api.requests().len();
    let out = run_inject(
        &kubeconfig,
        &["inject", "--versioned=none", "--lookup", "--carry"],
        &[],
        &new,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(api.requests().len(), before);

    let out = support::cli::run(&["inject", "--versioned", "--carry"], &new);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--lookup"), "{}", out.stderr);
}

/// `--carry` without `--keep`: a version stays in the release, so Helm leaves it, while a
/// ReplicaSet names it, and Helm deletes it at the first upgrade after nothing does; a
/// rollback to a revision whose version is gone creates it again. Both Helms.
#[test]
fn carry_without_keep_helm_keeps_a_version_while_it_is_used_and_deletes_it_after() {
    for v4 in [false, true] {
        let release = Release::new(v4);
        let (helm, api, kubeconfig) = (&release.helm, &release.api, &release.kubeconfig);
        let deploy = |verb: &str, level: &str| release.deploy(verb, level, false, true);
        let sorted = |mut names: Vec<String>| {
            names.sort();
            names
        };
        deploy("install", "info");
        let first = mounted(api);
        replica_set_for(api, "shop-web-1");
        deploy("upgrade", "debug");
        let second = mounted(api);
        replica_set_for(api, "shop-web-2");
        assert_eq!(
            versions(api),
            sorted(vec![first.clone(), second.clone()]),
            "v1 is carried, so Helm did not delete it (helm 4: {v4})"
        );
        deploy("upgrade", "warn");
        let third = mounted(api);
        replica_set_for(api, "shop-web-3");
        // The oldest ReplicaSet goes (revisionHistoryLimit): the next upgrade no longer
        // carries v1, and Helm deletes it.
        api.put(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                       "metadata": {"name": "shop-web-1", "namespace": "shop"}, "spec": {}}));
        deploy("upgrade", "error");
        let fourth = mounted(api);
        assert_eq!(
            versions(api),
            sorted(vec![second.clone(), third.clone(), fourth.clone()]),
            "helm 4: {v4}"
        );
        helm.run(
            &["rollback", "shop", "1", "-n", "shop", "--no-hooks"],
            Some(kubeconfig),
        );
        assert_eq!(mounted(api), first, "helm 4: {v4}");
        assert!(
            versions(api).contains(&first),
            "the rollback created v1 again (helm 4: {v4})"
        );
    }
}

/// The README's Role for a render with `--carry` grants `list` on every built-in kind prune and
/// `--carry` read names from, and names every custom one.
#[test]
fn the_readme_role_for_carry_lists_every_reader_kind() {
    let readme = fs::read_to_string(root().join("README.md")).expect("README");
    let start = readme
        .find("RBAC for the account that renders, in each namespace the versions live in")
        .expect("the --carry RBAC paragraph");
    let block = &readme[start..];
    let block = &block[..block.find("\n```\n").expect("end of the block")];
    let rules: Vec<&str> = block.split("- apiGroups:").skip(1).collect();
    for (group, _, plural, _) in reconfig::kube::prune::READERS {
        let quoted = if group.is_empty() {
            "[\"\"]".to_string()
        } else {
            format!("[{group}]")
        };
        let granted = rules.iter().any(|rule| {
            rule.trim_start().starts_with(&quoted)
                && rule.contains(*plural)
                && rule.contains("verbs: [list]")
        });
        let named = block.contains(group) && block.contains(plural);
        assert!(
            granted || (!matches!(*group, "" | "apps" | "batch") && named),
            "{group}/{plural} in:\n{block}"
        );
    }
    assert!(block.contains("resources: [configmaps, secrets]\n  verbs: [get, list]"));
}
