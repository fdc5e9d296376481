//! Load for `reconfig admit`: concurrent HTTP/2 clients (as the API server connects) sending a
//! 64 KiB YAML ConfigMap that a policy checks against a JSON Schema; prints reviews per second,
//! latency percentiles and the webhook's RSS idle and under load.
//!
//! cargo build --release && cargo bench --bench admit_bench -- [--concurrency 16] [--seconds 10]
//!     [--rate 2000] [--size-kib 64] [--bin target/release/reconfig] [--http1]
//!
//! Without `--rate`, each client sends its next review as soon as the last is answered (a
//! closed loop: the throughput the webhook can give, at a latency of concurrency/throughput).
//! With `--rate N`, the clients together send N reviews a second on a fixed schedule, as an
//! API server does whatever the webhook's speed; a latency counts from when the review was
//! due, so a webhook that falls behind is charged for the wait (no coordinated omission).
//!
//! The client runs on the same machine (on a 2-core machine it takes part of the CPU the
//! webhook could use); every answer is checked (uid, allowed) so a fast wrong answer counts
//! as a failure, not a review.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

struct Options {
    concurrency: usize,
    seconds: u64,
    size_kib: usize,
    bin: PathBuf,
    http1: bool,
    /// Reviews a second for all clients together; `None`: as fast as answered.
    rate: Option<f64>,
}

fn options() -> Options {
    let mut o = Options {
        concurrency: 16,
        seconds: 10,
        size_kib: 64,
        bin: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/release/reconfig"
        )),
        http1: false,
        rate: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this too, without it: then a
    // one-second smoke run against the debug binary keeps the load client itself tested.
    if !args.iter().any(|a| a == "--bench") {
        o.bin = PathBuf::from(env!("CARGO_BIN_EXE_reconfig"));
        o.seconds = 1;
        o.concurrency = 2;
    }
    let mut i = 0;
    while i < args.len() {
        let next = || args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--concurrency" => o.concurrency = next().parse().expect("--concurrency N"),
            "--seconds" => o.seconds = next().parse().expect("--seconds N"),
            "--size-kib" => o.size_kib = next().parse().expect("--size-kib N"),
            "--rate" => o.rate = Some(next().parse().expect("--rate N")),
            "--bin" => o.bin = PathBuf::from(next()),
            "--http1" => {
                o.http1 = true;
                i += 1;
                continue;
            }
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    o
}

/// A YAML config of about `kib` KiB that satisfies the schema below.
fn config_yaml(kib: usize) -> String {
    let mut text = String::from("server:\n  port: 8080\n  host: 0.0.0.0\nroutes:\n");
    let mut i = 0;
    while text.len() < kib * 1024 {
        text.push_str(&format!(
            "  - name: route-{i}\n    path: /api/v1/items/{i}\n    timeout: 30\n    retries: 3\n    enabled: true\n    upstream: \"http://backend-{i}.svc:8080\"\n"
        ));
        i += 1;
    }
    text
}

const SCHEMA: &str = r#"{
  "type": "object",
  "required": ["server", "routes"],
  "properties": {
    "server": {"type": "object", "required": ["port"], "properties": {"port": {"type": "integer", "minimum": 1, "maximum": 65535}, "host": {"type": "string"}}},
    "routes": {"type": "array", "items": {"type": "object", "required": ["name", "path"], "additionalProperties": false,
      "properties": {"name": {"type": "string"}, "path": {"type": "string", "pattern": "^/"}, "timeout": {"type": "integer"},
                     "retries": {"type": "integer", "minimum": 0}, "enabled": {"type": "boolean"}, "upstream": {"type": "string"}}}}
  }
}"#;

const POLICY: &str = "apiVersion: reconfig/v1\nkind: Policy\nrules:\n  - name: app\n    match: {kinds: [ConfigMap]}\n    keys: [\"*.yaml\"]\n    schema: app.schema.json\n";

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let num = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    num(11) + num(12) // utime + stime
}

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &Path, dir: &Path) -> Server {
    let mut child = Command::new(bin)
        .arg("admit")
        .arg("--policy")
        .arg(dir.join("policy.yaml"))
        .arg("--tls-cert")
        .arg(dir.join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.join("tls.key"))
        .args(["--listen", "127.0.0.1:0", "--probe-listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (cargo build --release first)", bin.display()));
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("admit exited").expect("line");
        if let Some(rest) = line.split(" listen=").nth(1) {
            break rest.split(' ').next().unwrap_or_default().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

/// When a client sends: as soon as it can, or on a schedule (`first`, then every `every`).
enum Pace {
    Closed,
    /// A review is due at `first`, then every `every`; each tick on `ticks` says the next one
    /// is due now (see [`pace`]).
    Every {
        first: Instant,
        every: Duration,
        ticks: tokio::sync::mpsc::UnboundedReceiver<()>,
    },
}

/// Ticks each client's channel when its next review is due: client `j % n` at
/// `start + j * step`, until `deadline`.
///
/// A thread of its own with `std::thread::sleep` (nanosleep: late by tens of microseconds)
/// rather than tokio's timer, whose 1 ms wheel would send each review up to a millisecond
/// after it was due, a wait the latencies (counted from when a review was due) would charge
/// to the webhook.
fn pace(
    start: Instant,
    step: Duration,
    deadline: Instant,
    clients: Vec<tokio::sync::mpsc::UnboundedSender<()>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for j in 0u32.. {
            let due = start + step * j;
            if due >= deadline {
                break;
            }
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let _ = clients[j as usize % clients.len()].send(());
        }
    })
}

async fn client(
    addr: String,
    ca: String,
    body: Bytes,
    deadline: Instant,
    http1: bool,
    mut pace: Pace,
) -> (Vec<u32>, usize) {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![if http1 {
        b"http/1.1".to_vec()
    } else {
        b"h2".to_vec()
    }];
    let tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("tls");
    let io = TokioIo::new(tls);
    enum S {
        H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
        H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    }
    let mut sender = if http1 {
        let (s, conn) = hyper::client::conn::http1::handshake(io).await.expect("h1");
        tokio::spawn(conn);
        S::H1(s)
    } else {
        let (s, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .expect("h2");
        tokio::spawn(conn);
        S::H2(s)
    };
    let mut latencies = Vec::new();
    let mut failures = 0;
    let mut due = match pace {
        Pace::Closed => Instant::now(),
        Pace::Every { first, .. } => first,
    };
    while Instant::now() < deadline {
        let request = hyper::Request::post("https://localhost/validate")
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))
            .expect("request");
        let started = match &mut pace {
            Pace::Closed => Instant::now(),
            Pace::Every { every, ticks, .. } => {
                if ticks.recv().await.is_none() {
                    break;
                }
                let started = due;
                due += *every;
                started
            }
        };
        let response = match &mut sender {
            S::H2(s) => s.send_request(request).await,
            S::H1(s) => {
                s.ready().await.expect("ready");
                s.send_request(request).await
            }
        };
        let ok = match response {
            Ok(r) if r.status() == 200 => {
                let bytes = r
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                // The verdict must be the real one: allowed, for this uid.
                let text = String::from_utf8_lossy(&bytes);
                text.contains("\"allowed\":true") && text.contains("\"uid\":\"bench\"")
            }
            _ => false,
        };
        if ok {
            latencies.push(started.elapsed().as_micros() as u32);
        } else {
            failures += 1;
        }
    }
    (latencies, failures)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn main() {
    let o = options();
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    std::fs::write(dir.path().join("tls.crt"), cert.cert.pem()).expect("write");
    std::fs::write(dir.path().join("tls.key"), cert.key_pair.serialize_pem()).expect("write");
    std::fs::write(dir.path().join("policy.yaml"), POLICY).expect("write");
    std::fs::write(dir.path().join("app.schema.json"), SCHEMA).expect("write");
    let yaml = config_yaml(o.size_kib);
    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "bench",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "app", "namespace": "prod", "operation": "UPDATE",
            "userInfo": {"username": "bench"},
            "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "prod"},
                       "data": {"app.yaml": yaml}},
            "oldObject": null, "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"}
        }
    });
    let body = Bytes::from(review.to_string());

    let server = start(&o.bin, dir.path());
    let pid = server.child.id();
    std::thread::sleep(Duration::from_secs(2));
    let idle_rss = rss_kib(pid);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Warm-up: connections, TLS sessions, the allocator.
    let warm = Instant::now() + Duration::from_secs(1);
    runtime.block_on(client(
        server.addr.clone(),
        cert.cert.pem(),
        body.clone(),
        warm,
        o.http1,
        Pace::Closed,
    ));

    let ticks_before = cpu_ticks(pid);
    let client_ticks_before = cpu_ticks(std::process::id());
    let started = Instant::now();
    // On a schedule, the clients first connect for a moment; the rate and the time counted
    // both start with the schedule, so `--rate 2000` reads 2000 reviews a second.
    let schedule = started + Duration::from_millis(if o.rate.is_some() { 100 } else { 0 });
    let deadline = schedule + Duration::from_secs(o.seconds);
    // The clients' schedules interleave evenly (after a moment to connect).
    let mut pacer = None;
    let paces: Vec<Pace> = match o.rate {
        None => (0..o.concurrency).map(|_| Pace::Closed).collect(),
        Some(rate) => {
            let every = Duration::from_secs_f64(o.concurrency as f64 / rate);
            let step = every.div_f64(o.concurrency as f64);
            let (senders, paces) = (0..o.concurrency)
                .map(|i| {
                    let (tx, ticks) = tokio::sync::mpsc::unbounded_channel();
                    let first = schedule + step * i as u32;
                    (
                        tx,
                        Pace::Every {
                            first,
                            every,
                            ticks,
                        },
                    )
                })
                .unzip();
            pacer = Some(pace(schedule, step, deadline, senders));
            paces
        }
    };
    let results = runtime.block_on(async {
        let tasks: Vec<_> = paces
            .into_iter()
            .map(|pace| {
                tokio::spawn(client(
                    server.addr.clone(),
                    cert.cert.pem(),
                    body.clone(),
                    deadline,
                    o.http1,
                    pace,
                ))
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.expect("client"));
        }
        all
    });
    if let Some(pacer) = pacer {
        pacer.join().expect("pacer");
    }
    let elapsed = schedule.elapsed().as_secs_f64();
    let measured = started.elapsed().as_secs_f64();
    let ticks = cpu_ticks(pid) - ticks_before;
    let client_ticks = cpu_ticks(std::process::id()) - client_ticks_before;
    let load_rss = rss_kib(pid);
    let mut latencies: Vec<u32> = results
        .iter()
        .flat_map(|(l, _)| l.iter().copied())
        .collect();
    let failures: usize = results.iter().map(|(_, f)| f).sum();
    latencies.sort_unstable();
    let hz = 100.0;
    println!(
        "reconfig admit: {} KiB YAML ConfigMap against a schema, concurrency {}, {}, {}, {:.1} s",
        yaml.len() / 1024,
        o.concurrency,
        if o.http1 { "HTTP/1.1" } else { "HTTP/2" },
        o.rate
            .map_or("closed loop".to_string(), |r| format!("sent at {r:.0}/s")),
        elapsed
    );
    println!(
        "  reviews/s    {:.0} ({} answered, {} failed)",
        latencies.len() as f64 / elapsed,
        latencies.len(),
        failures
    );
    println!(
        "  latency ms   p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!(
        "  CPU          webhook {:.2} cores, this client {:.2} cores",
        ticks as f64 / hz / measured,
        client_ticks as f64 / hz / measured
    );
    println!(
        "  RSS MiB      idle {:.2}  under load {:.2}",
        idle_rss as f64 / 1024.0,
        load_rss as f64 / 1024.0
    );
    drop(server);
    // A wrong or failed answer is a broken webhook (or client), not a slow one.
    assert_eq!(
        failures, 0,
        "{failures} reviews failed or were answered wrongly"
    );
    assert!(!latencies.is_empty(), "no review was answered");
}
