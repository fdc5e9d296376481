//! `reconfig admit` end to end: the real binary over real TLS (hyper + rustls, and Debian's curl),
//! HTTP/2 and HTTP/1.1 by ALPN, AdmissionReview bodies shaped as the API server sends them.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use support::admit::{configmap, curl, review, secret, Admit, Certs, Client, Proto};
use support::atomic_writer::{payload, AtomicWriter};
use support::wait::{until, wait_for, TIMEOUT};

const POLICY: &str = "\
apiVersion: reconfig/v1
kind: Policy
rules:
  - name: app-schema
    match: {kinds: [ConfigMap, Secret], names: [\"app*\"]}
    keys: [\"*.yaml\"]
    schema: app.schema.json
  - name: json-syntax
    keys: [\"*.json\"]
    severity: warn
  - name: labelled-toml
    match:
      labels:
        matchLabels: {reconfig/validate: \"true\"}
    keys: [\"*.toml\"]
";

const SCHEMA: &str =
    r#"{"type": "object", "required": ["port"], "properties": {"port": {"type": "integer"}}}"#;

/// A policy folder (policy.yaml + app.schema.json) and a certificate, in a temporary folder.
struct Setup {
    tmp: tempfile::TempDir,
    certs: Certs,
    policy: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().expect("tempdir");
    let policy_dir = tmp.path().join("policy");
    std::fs::create_dir(&policy_dir).expect("mkdir");
    std::fs::write(policy_dir.join("policy.yaml"), POLICY).expect("write");
    std::fs::write(policy_dir.join("app.schema.json"), SCHEMA).expect("write");
    let cert_dir = tmp.path().join("tls");
    std::fs::create_dir(&cert_dir).expect("mkdir");
    let certs = Certs::new(&cert_dir);
    Setup {
        policy: policy_dir.join("policy.yaml"),
        certs,
        tmp,
    }
}

fn good() -> Json {
    configmap("prod", "app", &[("app.yaml", "name: web\nport: 8080\n")])
}

fn bad() -> Json {
    configmap("prod", "app", &[("app.yaml", "name: web\nport: eighty\n")])
}

const BAD_MESSAGE: &str = "denied by the reconfig policy: configmap/app/app.yaml:2:7: rule app-schema: schema: at /port: \"eighty\" is not of type \"integer\"";

async fn connect(admit: &Admit, certs: &Certs, proto: Proto) -> Client {
    Client::connect(admit.addr, &certs.ca_pem, proto)
        .await
        .expect("TLS connection")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_over_http2_http1_and_curl() {
    let s = setup();
    let admit = Admit::start(&s.policy, &s.certs, &[]);
    for proto in [Proto::H2, Proto::H1] {
        let mut client = connect(&admit, &s.certs, proto).await;
        let alpn: &[u8] = if proto == Proto::H2 {
            b"h2"
        } else {
            b"http/1.1"
        };
        assert_eq!(client.alpn.as_deref(), Some(alpn));

        let answer = client
            .review(&review("uid-good", "CREATE", &good(), None, false))
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.json(),
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "response": {"uid": "uid-good", "allowed": true}})
        );

        let answer = client
            .review(&review("uid-bad", "CREATE", &bad(), None, false))
            .await;
        assert_eq!(
            answer.json()["response"],
            json!({"uid": "uid-bad", "allowed": false,
                   "status": {"code": 403, "reason": "Forbidden", "message": BAD_MESSAGE}})
        );

        // An object larger than those judged on the connection's own thread (128 KiB) is
        // judged on a blocking thread, to the same verdicts.
        let padding = "# padding\n".repeat(20_000);
        let big = |port: &str| {
            let text = format!("name: web\nport: {port}\n{padding}");
            configmap("prod", "app", &[("app.yaml", text.as_str())])
        };
        let answer = client
            .review(&review("uid-big-good", "CREATE", &big("8080"), None, false))
            .await;
        assert_eq!(
            answer.json()["response"],
            json!({"uid": "uid-big-good", "allowed": true})
        );
        let answer = client
            .review(&review(
                "uid-big-bad",
                "CREATE",
                &big("eighty"),
                None,
                false,
            ))
            .await;
        assert_eq!(
            answer.json()["response"],
            json!({"uid": "uid-big-bad", "allowed": false,
                   "status": {"code": 403, "reason": "Forbidden", "message": BAD_MESSAGE}})
        );

        // A dry run is judged alike; an UPDATE is judged on its new object, not its old one.
        let dry = client
            .review(&review("uid-dry", "CREATE", &bad(), None, true))
            .await;
        assert_eq!(dry.json()["response"]["allowed"], json!(false));
        let update = client
            .review(&review("uid-up", "UPDATE", &good(), Some(&bad()), false))
            .await;
        assert_eq!(
            update.json()["response"],
            json!({"uid": "uid-up", "allowed": true})
        );

        // A warn rule: allowed, with the warning.
        let warned = configmap(
            "prod",
            "app",
            &[("app.yaml", "port: 1\n"), ("extra.json", "{\"a\": }")],
        );
        let answer = client
            .review(&review("uid-warn", "UPDATE", &warned, Some(&good()), false))
            .await;
        assert_eq!(
            answer.json()["response"],
            json!({"uid": "uid-warn", "allowed": true,
                   "warnings": ["configmap/app/extra.json:1:7: rule json-syntax: expected value at line 1 column 7"]})
        );

        // A Secret: denied, naming key, line and rule, never quoting the value.
        let db = secret("prod", "app-db", &[("app.yaml", "port: hunter2\n")]);
        let answer = client
            .review(&review("uid-secret", "CREATE", &db, None, false))
            .await;
        assert_eq!(
            answer.json()["response"]["status"]["message"],
            json!("denied by the reconfig policy: secret/app-db/app.yaml:1:7: rule app-schema: schema: at /port")
        );
        assert!(!answer.body.contains("hunter2"), "{}", answer.body);
        assert!(!answer.body.contains("aHVudGVyMg"), "{}", answer.body);

        // The label selector: a labelled object's TOML is checked, an unlabelled one's is not.
        let toml = configmap("prod", "other", &[("c.toml", "a = \n")]);
        let answer = client
            .review(&review("uid-toml", "CREATE", &toml, None, false))
            .await;
        assert_eq!(
            answer.json()["response"]["allowed"],
            json!(false),
            "{}",
            answer.body
        );
        let mut unlabelled = toml.clone();
        unlabelled["metadata"]["labels"] = json!({});
        let answer = client
            .review(&review("uid-nolabel", "CREATE", &unlabelled, None, false))
            .await;
        assert_eq!(
            answer.json()["response"]["allowed"],
            json!(true),
            "{}",
            answer.body
        );

        // Everything else is allowed untouched.
        let delete = client
            .review(&review("uid-del", "DELETE", &bad(), Some(&bad()), false))
            .await;
        assert_eq!(
            delete.json()["response"],
            json!({"uid": "uid-del", "allowed": true})
        );
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "prod"},
                         "data": {"app.yaml": "port: x"}});
        let answer = client
            .review(&review("uid-pod", "CREATE", &pod, None, false))
            .await;
        assert_eq!(
            answer.json()["response"],
            json!({"uid": "uid-pod", "allowed": true})
        );
        let deployment = json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "app"},
                                "data": {"app.yaml": "port: x"}});
        let answer = client
            .review(&review("uid-apps", "CREATE", &deployment, None, false))
            .await;
        assert_eq!(
            answer.json()["response"]["allowed"],
            json!(true),
            "another group's kind"
        );
    }

    // Debian's curl (OpenSSL) over HTTP/2 and HTTP/1.1 gets the same answers.
    let ca = s.certs.ca_path();
    let body = s.tmp.path().join("bad.json");
    std::fs::write(
        &body,
        review("uid-curl", "CREATE", &bad(), None, false).to_string(),
    )
    .expect("write");
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let (got_version, status, text) = curl(admit.addr, &ca, &body, flag);
        if status == 0 {
            return; // curl missing outside CI: recorded as a skip
        }
        assert_eq!((got_version.as_str(), status), (version, 200), "{text}");
        let answer: Json = serde_json::from_str(&text).expect("JSON");
        assert_eq!(answer["response"]["uid"], json!("uid-curl"));
        assert_eq!(answer["response"]["status"]["message"], json!(BAD_MESSAGE));
    }

    let metrics = admit.metrics();
    let reviews = |op: &str, result: &str| {
        metrics.value(
            "reconfig_admit_reviews_total",
            &[("operation", op), ("result", result)],
        )
    };
    // good, big good, unlabelled, pod, other group
    assert_eq!(reviews("CREATE", "allowed"), 2.0 * 5.0);
    // bad, big bad, dry, secret, toml; curl x2
    assert_eq!(reviews("CREATE", "denied"), 2.0 * 5.0 + 2.0);
    assert_eq!(reviews("UPDATE", "allowed"), 2.0);
    assert_eq!(reviews("UPDATE", "warned"), 2.0);
    assert_eq!(reviews("DELETE", "allowed"), 2.0);
    assert_eq!(
        metrics.value("reconfig_admit_review_duration_seconds_count", &[]),
        28.0
    );
    let health = support::http::get(admit.probes, "/healthz").expect("healthz");
    assert_eq!(health.status, 200);
    assert_eq!(
        support::http::get(admit.probes, "/readyz")
            .expect("readyz")
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_without_dropping_connections() {
    let Setup {
        tmp,
        mut certs,
        policy,
    } = setup();
    // The certificate as cert-manager's Secret mounted by kubelet: tls.crt and tls.key in ..data.
    let volume = tmp.path().join("tls-volume");
    let writer = AtomicWriter::new(&volume);
    let first = (
        std::fs::read_to_string(certs.cert_path()).expect("cert"),
        std::fs::read_to_string(certs.key_path()).expect("key"),
    );
    writer
        .write(&payload(&[("tls.crt", &first.0), ("tls.key", &first.1)]))
        .expect("write volume");
    certs.dir = volume.clone();
    let admit = Admit::start(&policy, &certs, &[]);

    let mut open = connect(&admit, &certs, Proto::H2).await;
    let first_der = open.server_cert.clone();
    assert_eq!(
        open.review(&review("u1", "CREATE", &good(), None, false))
            .await
            .status,
        200
    );

    let second = certs.issue("second");
    writer
        .write(&payload(&[("tls.crt", &second.0), ("tls.key", &second.1)]))
        .expect("rotate");
    let mut fresh = None;
    for _ in 0..300 {
        let client = connect(&admit, &certs, Proto::H1).await;
        if client.server_cert != first_der {
            fresh = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut fresh = fresh.expect("a new connection gets the rotated certificate");
    let second_der = fresh.server_cert.clone();
    assert_eq!(
        fresh
            .review(&review("u2", "CREATE", &bad(), None, false))
            .await
            .json()["response"]["allowed"],
        json!(false)
    );
    // The connection opened before the rotation still answers.
    let answer = open
        .review(&review("u3", "CREATE", &bad(), None, false))
        .await;
    assert_eq!(
        answer.json()["response"]["status"]["message"],
        json!(BAD_MESSAGE)
    );
    assert_eq!(
        admit.metric(
            "reconfig_admit_certificate_reloads_total",
            &[("result", "success")]
        ),
        1.0
    );

    // A certificate whose key does not belong to it (a half-done rotation) is refused once; the
    // good one stays served.
    let third = certs.issue("third");
    writer
        .write(&payload(&[("tls.crt", &third.0), ("tls.key", &second.1)]))
        .expect("mismatch");
    wait_for("the mismatched pair refused", TIMEOUT, || {
        let failures = admit.metric(
            "reconfig_admit_certificate_reloads_total",
            &[("result", "failure")],
        );
        if failures == 1.0 {
            Ok(())
        } else {
            Err(format!("{failures} failures"))
        }
    });
    admit.process.wait_log("the new certificate is refused", 1);
    let mut after = connect(&admit, &certs, Proto::H2).await;
    assert_eq!(after.server_cert, second_der);
    assert_eq!(
        after
            .review(&review("u4", "CREATE", &good(), None, false))
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        admit.metric(
            "reconfig_admit_certificate_reloads_total",
            &[("result", "failure")]
        ),
        1.0,
        "one refusal per bad pair, not one per look"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_new_policy_is_refused_and_the_old_one_kept() {
    let s = setup();
    // The policy as a mounted ConfigMap: kubelet swaps ..data.
    let volume = s.tmp.path().join("policy-volume");
    let writer = AtomicWriter::new(&volume);
    writer
        .write(&payload(&[
            ("policy.yaml", POLICY),
            ("app.schema.json", SCHEMA),
        ]))
        .expect("volume");
    let admit = Admit::start(&volume.join("policy.yaml"), &s.certs, &[]);
    let mut client = connect(&admit, &s.certs, Proto::H2).await;
    let denied =
        |answer: &support::admit::Answer| answer.json()["response"]["allowed"] == json!(false);
    assert!(denied(
        &client
            .review(&review("u1", "CREATE", &bad(), None, false))
            .await
    ));

    let broken = POLICY.replace("    severity: warn", "    severity: block");
    writer
        .write(&payload(&[
            ("policy.yaml", &broken),
            ("app.schema.json", SCHEMA),
        ]))
        .expect("broken");
    wait_for("the broken policy refused", TIMEOUT, || {
        let failures = admit.metric(
            "reconfig_admit_policy_reloads_total",
            &[("result", "failure")],
        );
        if failures == 1.0 {
            Ok(())
        } else {
            Err(format!("{failures}"))
        }
    });
    let line = admit.process.wait_log("the new policy is refused", 1);
    assert!(
        line.contains("policy.yaml:10:15: at /rules/1/severity"),
        "{line}"
    );
    assert_eq!(admit.metric("reconfig_admit_policy_current", &[]), 0.0);
    let answer = client
        .review(&review("u2", "CREATE", &bad(), None, false))
        .await;
    assert_eq!(
        answer.json()["response"]["status"]["message"],
        json!(BAD_MESSAGE)
    );

    // A good new policy (the schema rule now only warns) is taken.
    let relaxed = POLICY.replace(
        "    schema: app.schema.json\n",
        "    schema: app.schema.json\n    severity: warn\n",
    );
    writer
        .write(&payload(&[
            ("policy.yaml", &relaxed),
            ("app.schema.json", SCHEMA),
        ]))
        .expect("relaxed");
    wait_for("the new policy taken", TIMEOUT, || {
        let n = admit.metric(
            "reconfig_admit_policy_reloads_total",
            &[("result", "success")],
        );
        if n == 1.0 {
            Ok(())
        } else {
            Err(format!("{n}"))
        }
    });
    let answer = client
        .review(&review("u3", "CREATE", &bad(), None, false))
        .await;
    assert_eq!(
        answer.json()["response"]["allowed"],
        json!(true),
        "{}",
        answer.body
    );
    assert_eq!(
        answer.json()["response"]["warnings"],
        json!([BAD_MESSAGE.trim_start_matches("denied by the reconfig policy: ")])
    );
    assert_eq!(admit.metric("reconfig_admit_policy_current", &[]), 1.0);

    // A schema the policy names changing is a policy change too.
    writer
        .write(&payload(&[
            ("policy.yaml", &relaxed),
            ("app.schema.json", r#"{"type": "object"}"#),
        ]))
        .expect("schema");
    wait_for("the schema change taken", TIMEOUT, || {
        let n = admit.metric(
            "reconfig_admit_policy_reloads_total",
            &[("result", "success")],
        );
        if n == 2.0 {
            Ok(())
        } else {
            Err(format!("{n}"))
        }
    });
    let answer = client
        .review(&review("u4", "CREATE", &bad(), None, false))
        .await;
    assert_eq!(
        answer.json()["response"],
        json!({"uid": "u4", "allowed": true})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_truncated_and_oversized_requests_get_400() {
    let s = setup();
    let admit = Admit::start(&s.policy, &s.certs, &[]);
    let mut client = connect(&admit, &s.certs, Proto::H1).await;
    let full = review("u1", "CREATE", &bad(), None, false).to_string();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{".to_vec(), "not an AdmissionReview: EOF while parsing"),
        (b"[1, 2]".to_vec(), "not an AdmissionReview"),
        (b"\xff\xfe".to_vec(), "not an AdmissionReview"),
        (
            full.as_bytes()[..full.len() / 2].to_vec(),
            "not an AdmissionReview: EOF while parsing",
        ),
        (
            full.replace("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
                .into_bytes(),
            "expected apiVersion admission.k8s.io/v1",
        ),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})
                .to_string()
                .into_bytes(),
            "has no request",
        ),
        (vec![b' '; 3 * 1024 * 1024 + 1], "larger than 3145728 bytes"),
    ];
    let count = cases.len();
    for (body, expected) in cases {
        let answer = client.post("/validate", body).await.expect("an answer");
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert!(
            answer.body.contains(expected),
            "{expected:?} not in {:?}",
            answer.body
        );
        // The connection may be closed after an oversized body; a new one always works.
        client = connect(&admit, &s.certs, Proto::H1).await;
    }
    let get = {
        let mut c = connect(&admit, &s.certs, Proto::H2).await;
        let answer = c.post("/elsewhere", b"{}".to_vec()).await.expect("answer");
        assert_eq!(answer.status, 404);
        answer
    };
    assert!(get.body.contains("/validate"));

    // A connection cut mid-body (Content-Length promised, fewer bytes sent) harms nothing.
    {
        use tokio::io::AsyncWriteExt as _;
        let tcp = tokio::net::TcpStream::connect(admit.addr)
            .await
            .expect("tcp");
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject as _;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(s.certs.ca_pem.as_bytes()) {
            roots.add(cert.expect("pem")).expect("root");
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("tls");
        tls.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n{\"apiVersion\"")
            .await
            .expect("write");
        drop(tls);
    }

    // An object of 1 MiB with an oldObject of 1 MiB, as the API server may send, fits.
    let big_value = "x".repeat(1024 * 1024 - 100);
    let object = configmap("prod", "big", &[("blob", &big_value)]);
    let answer = client
        .review(&review("u-big", "UPDATE", &object, Some(&object), false))
        .await;
    assert_eq!(
        answer.json()["response"],
        json!({"uid": "u-big", "allowed": true})
    );
    assert_eq!(
        client
            .review(&review("u2", "CREATE", &good(), None, false))
            .await
            .status,
        200
    );
    until("the bad requests counted", || {
        admit.metric("reconfig_admit_bad_requests_total", &[]) >= count as f64
    });
    assert!(admit.metric("reconfig_admit_bad_requests_total", &[]) <= count as f64 + 1.0);
    assert!(
        !admit.process.log().contains("panicked"),
        "{}",
        admit.process.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_clients() {
    let s = setup();
    let admit = Admit::start(&s.policy, &s.certs, &[]);
    const CLIENTS: usize = 64;
    const EACH: usize = 8;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let ca = s.certs.ca_pem.clone();
        let addr = admit.addr;
        tasks.push(tokio::spawn(async move {
            let proto = if c % 2 == 0 { Proto::H2 } else { Proto::H1 };
            let mut client = Client::connect(addr, &ca, proto).await.expect("connect");
            for i in 0..EACH {
                let uid = format!("c{c}-r{i}");
                let object = if i % 2 == 0 { good() } else { bad() };
                let answer = client
                    .review(&review(&uid, "CREATE", &object, None, false))
                    .await;
                let response = &answer.json()["response"];
                assert_eq!(response["uid"], json!(uid));
                assert_eq!(response["allowed"], json!(i % 2 == 0), "{}", answer.body);
            }
        }));
    }
    for task in tasks {
        task.await.expect("client");
    }
    let metrics = admit.metrics();
    let total = (CLIENTS * EACH) as f64;
    assert_eq!(
        metrics.value(
            "reconfig_admit_reviews_total",
            &[("operation", "CREATE"), ("result", "allowed")]
        ),
        total / 2.0
    );
    assert_eq!(
        metrics.value(
            "reconfig_admit_reviews_total",
            &[("operation", "CREATE"), ("result", "denied")]
        ),
        total / 2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_run_only_when_allowed_and_within_the_time_budget() {
    let s = setup();
    let dir = s.tmp.path().join("cmd-policy");
    std::fs::create_dir(&dir).expect("mkdir");
    let policy = dir.join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: reconfig/v1\nkind: Policy\nrules:\n  - name: lint\n    command: grep -q ok {dir}/app.conf\n  - name: slow\n    command: sh -c \"sleep 5\" {dir}/slow.conf\n",
    )
    .expect("write");
    let object = |value: &str| configmap("prod", "app", &[("app.conf", value)]);

    let off = Admit::start(&policy, &s.certs, &[]);
    off.process
        .wait_log("admit skips without --allow-commands", 1);
    let mut client = connect(&off, &s.certs, Proto::H2).await;
    let answer = client
        .review(&review("u1", "CREATE", &object("no"), None, false))
        .await;
    assert_eq!(answer.json()["response"]["allowed"], json!(true));
    drop(off);

    let on = Admit::start(&policy, &s.certs, &["--allow-commands", "--timeout", "1s"]);
    let mut client = connect(&on, &s.certs, Proto::H2).await;
    let answer = client
        .review(&review("u2", "CREATE", &object("ok\n"), None, false))
        .await;
    assert_eq!(
        answer.json()["response"],
        json!({"uid": "u2", "allowed": true})
    );
    let answer = client
        .review(&review("u3", "CREATE", &object("no\n"), None, false))
        .await;
    let message = answer.json()["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.starts_with("denied by the reconfig policy: configmap/app: rule lint: `grep -q ok {dir}/app.conf`: "),
        "{message}"
    );
    let slow = configmap("prod", "app", &[("app.conf", "ok\n"), ("slow.conf", "")]);
    let started = Instant::now();
    let answer = client
        .review(&review("u4", "CREATE", &slow, None, false))
        .await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(
        answer.body.contains("within 1s (--timeout)"),
        "{}",
        answer.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        on.metric(
            "reconfig_admit_reviews_total",
            &[("operation", "CREATE"), ("result", "error")]
        ),
        1.0
    );
}

#[test]
fn a_broken_policy_or_certificate_stops_the_start() {
    let s = setup();
    std::fs::write(&s.policy, POLICY.replace("kind: Policy", "kind: Polcy")).expect("write");
    let out = support::admit::command(&s.policy, &s.certs, &[])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("policy.yaml:2:7: at /kind"), "{stderr}");

    std::fs::write(&s.policy, POLICY).expect("write");
    let other = s.certs.issue("other");
    std::fs::write(s.certs.key_path(), other.1).expect("write");
    let out = support::admit::command(&s.policy, &s.certs, &[])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not belong to the certificate"),
        "{stderr}"
    );
    let _: &Path = s.tmp.path();
}
