//! The test support's own tests, in one binary: `tests/support/` is compiled into every
//! integration test that declares `mod support;`, so tests inside it would run (and be reported)
//! once per binary.

mod support;

mod atomic_writer {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::time::UNIX_EPOCH;

    use crate::support::atomic_writer::*;

    fn listing(root: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(root)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn dates_and_names_look_like_kubelets() {
        assert_eq!(date_of(0), (1970, 1, 1));
        assert_eq!(date_of(11_016), (2000, 2, 29));
        assert_eq!(date_of(20_779), (2026, 11, 22));
        let at = UNIX_EPOCH + std::time::Duration::from_secs(1_795_345_445);
        assert_eq!(timestamp_prefix(at), "..2026_11_22_11_04_05.");
    }

    #[test]
    fn writes_swaps_links_and_cleans_up_like_kubelet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("vol");
        let w = AtomicWriter::new(&root);
        let first = w
            .write(&payload(&[("a.yaml", "a: 1\n"), ("sub/b.conf", "b")]))
            .expect("write");
        let Outcome::Written { ts_dir, .. } = &first else {
            panic!("first write must write");
        };
        assert!(ts_dir.starts_with("..20") && ts_dir.contains('.'));
        let mode = fs::metadata(root.join(ts_dir))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        let mut want = vec![
            "..data".to_string(),
            ts_dir.clone(),
            "a.yaml".into(),
            "sub".into(),
        ];
        want.sort();
        assert_eq!(listing(&root), want);
        assert_eq!(
            fs::read_link(root.join("a.yaml")).expect("link"),
            Path::new("..data/a.yaml")
        );
        assert_eq!(
            fs::read_to_string(root.join("sub/b.conf")).expect("read"),
            "b"
        );

        assert_eq!(
            w.write(&payload(&[("a.yaml", "a: 1\n"), ("sub/b.conf", "b")]))
                .expect("write"),
            Outcome::Unchanged
        );
        assert_eq!(w.current_ts_dir().as_deref(), Some(ts_dir.as_str()));

        let forced = w
            .force_write(&payload(&[("a.yaml", "a: 1\n"), ("sub/b.conf", "b")]))
            .expect("write");
        assert!(forced.written());
        assert_ne!(w.current_ts_dir().as_deref(), Some(ts_dir.as_str()));
        assert!(!root.join(ts_dir).exists(), "the old folder is removed");

        w.write(&payload(&[("a.yaml", "a: 2\n"), ("c", "c")]))
            .expect("write");
        let mut want = vec![
            "..data".to_string(),
            w.current_ts_dir().expect("data"),
            "a.yaml".into(),
            "c".into(),
        ];
        want.sort();
        assert_eq!(listing(&root), want);
        assert_eq!(
            fs::read_to_string(root.join("a.yaml")).expect("read"),
            "a: 2\n"
        );
        assert!(!root.join(DATA_TMP).exists());
    }

    #[test]
    fn a_dropped_key_alone_is_a_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = AtomicWriter::new(dir.path());
        w.write(&payload(&[("a", "1"), ("b", "2")])).expect("write");
        assert!(w.write(&payload(&[("a", "1")])).expect("write").written());
        assert!(!dir.path().join("b").exists());
        assert!(w.write(&payload(&[("..x", "1")])).is_err());
        assert!(w.write(&payload(&[("a/../b", "1")])).is_err());
    }
}

mod http {
    use crate::support::http::*;

    #[test]
    fn chunked_bodies_are_decoded() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let response = parse_response(raw).expect("parse");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, "abcde");
    }

    #[test]
    fn the_receiver_records_and_answers() {
        let receiver = Receiver::start();
        receiver.set_status(503);
        let response = request(receiver.addr(), "POST", "/-/reload").expect("request");
        assert_eq!(response.status, 503);
        let seen = receiver.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            (seen[0].method.as_str(), seen[0].path.as_str()),
            ("POST", "/-/reload")
        );
        assert!(receiver.successes().is_empty());
    }
}

mod reconfig {
    use crate::support::reconfig::*;

    #[test]
    fn metrics_and_log_fields_parse() {
        let m = Metrics::parse(
            "# HELP x y\nreconfig_reloads_total{action=\"webhook\",result=\"success\"} 3\n\
             reconfig_config_valid 1\nprometheus_config_last_reload_successful 1 1700000000\n\
             odd{a=\"q\\\"uote\",b=\"2\"} 2.5\n",
        );
        assert_eq!(
            m.get(
                "reconfig_reloads_total",
                &[("action", "webhook"), ("result", "success")]
            ),
            Some(3.0)
        );
        assert_eq!(
            m.value("reconfig_reloads_total", &[("result", "failure")]),
            0.0
        );
        assert_eq!(m.get("reconfig_config_valid", &[]), Some(1.0));
        assert_eq!(
            m.get("prometheus_config_last_reload_successful", &[]),
            Some(1.0)
        );
        assert_eq!(m.get("odd", &[("a", "q\"uote"), ("b", "2")]), Some(2.5));
        let line =
            "2026-11-22T04:07:36Z  INFO config is valid; reloading hash=b22261ab2595 files=1";
        assert_eq!(field(line, "hash").as_deref(), Some("b22261ab2595"));
        assert_eq!(field(line, "files").as_deref(), Some("1"));
    }
}

mod manifests {
    use crate::support::manifests::{Manifests, Quote};

    #[test]
    fn objects_and_their_uses_render_as_block_yaml() {
        let text = Manifests::new()
            .config_map("app")
            .source("chart/templates/cm.yaml")
            .comment("not data")
            .quote(Quote::Single)
            .data("a", "one")
            .binary_data("bin", "aGk=")
            .secret("creds")
            .namespace("prod")
            .string_data("pass", "hunter2")
            .deployment("web")
            .annotation("reconfig/skip", "true")
            .template_label("app", "web")
            .mounts_config_map_items("app", &[("a", "a.conf")])
            .mounts_secret("creds")
            .env_from_config_map("app")
            .env_secret_key("PASS", "creds", "pass")
            .render();
        let want = "---\n# Source: chart/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\n\
            metadata:\n  name: app\n  # not data\ndata:\n  a: 'one'\nbinaryData:\n  bin: aGk=\n\
            ---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: prod\n\
            stringData:\n  pass: hunter2\n\
            ---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n    \
            reconfig/skip: \"true\"\nspec:\n  template:\n    metadata:\n      labels:\n        \
            app: \"web\"\n    spec:\n      containers:\n        - name: app\n          image: app:1\n          \
            envFrom:\n            - configMapRef:\n                name: app\n          env:\n            \
            - name: PASS\n              valueFrom:\n                secretKeyRef:\n                  \
            name: creds\n                  key: pass\n      volumes:\n        - name: v0\n          \
            configMap:\n            name: app\n            items:\n              - key: a\n                \
            path: a.conf\n        - name: v1\n          secret:\n            secretName: creds\n";
        assert_eq!(text, want, "\n{text}");
    }

    #[test]
    fn templates_nest_at_their_path_beside_spec_fields() {
        let text = Manifests::new()
            .workload("batch/v1", "CronJob", "nightly")
            .template_at("spec.jobTemplate.spec.template")
            .spec("schedule", "\"@daily\"")
            .flow()
            .template_annotation("a", "1")
            .mounts_optional_config_map("gone")
            .object("v1", "Service", "svc")
            .spec("ports", "[{port: 80}]")
            .raw("kind: Raw\n")
            .render();
        let want = "---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\nspec:\n  \
            schedule: \"@daily\"\n  jobTemplate:\n    spec:\n      template:\n        \
            metadata: {annotations: {a: \"1\"}}\n        spec:\n          containers:\n            \
            - name: app\n              image: app:1\n          volumes:\n            - name: v0\n              \
            configMap:\n                name: gone\n                optional: true\n\
            ---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc\nspec:\n  ports: [{port: 80}]\n\
            ---\nkind: Raw\n";
        assert_eq!(text, want, "\n{text}");
    }
}

mod kube_api {
    use serde_json::{json, Value};

    use crate::support::kube_api::{check_event, check_event_update};

    fn event() -> Value {
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
               "metadata": {"name": "web-0.1", "namespace": "shop", "uid": "u1"},
               "eventTime": "2026-11-30T10:00:00.000000Z", "type": "Warning",
               "reason": "ConfigRejected", "action": "Validate", "note": "config ab rejected",
               "reportingController": "reconfig/watch", "reportingInstance": "web-0",
               "regarding": {"kind": "Pod", "name": "web-0", "namespace": "shop"}})
    }

    #[test]
    fn events_and_their_series_are_checked_as_the_api_server_does() {
        let old = event();
        assert_eq!(check_event("shop", &old), Ok(()));
        let mut repeated = old.clone();
        repeated["series"] = json!({"count": 2, "lastObservedTime": "2026-11-30T10:00:05.000000Z"});
        assert_eq!(check_event("shop", &repeated), Ok(()));
        assert_eq!(check_event_update("shop", &old, &repeated), Ok(()));

        let mut once = old.clone();
        once["series"] = json!({"count": 1, "lastObservedTime": "2026-11-30T10:00:05.000000Z"});
        assert_eq!(
            check_event("shop", &once),
            Err("series.count: should be at least 2".to_string())
        );
        let mut timeless = old.clone();
        timeless["series"] = json!({"count": 3});
        assert_eq!(
            check_event_update("shop", &old, &timeless),
            Err("series.lastObservedTime: Required value".to_string())
        );
        let mut renoted = repeated.clone();
        renoted["note"] = json!("config cd rejected");
        assert_eq!(
            check_event_update("shop", &old, &renoted),
            Err("note: field is immutable".to_string())
        );
        let mut moved = repeated;
        moved["eventTime"] = json!("2026-11-30T10:00:05.000000Z");
        assert_eq!(
            check_event_update("shop", &old, &moved),
            Err("eventTime: field is immutable".to_string())
        );
    }
}
