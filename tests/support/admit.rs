//! `reconfig admit` as a child process, with what its tests need: certificates made at test
//! time (a CA and a server certificate for `localhost`/127.0.0.1, never a committed key),
//! AdmissionReview bodies shaped as the API server sends them, and a Rust TLS client (hyper over
//! rustls, HTTP/2 or HTTP/1.1 by ALPN) that can keep its connection open.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value as Json};

use super::cli;
use super::reconfig::{field, Reconfig};

/// A test CA and the server certificate it signed, as PEM files in a folder.
pub struct Certs {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
    pub ca_pem: String,
    pub dir: PathBuf,
}

impl Certs {
    /// A CA, and `tls.crt`/`tls.key` for localhost and 127.0.0.1 in `dir`.
    pub fn new(dir: &Path) -> Certs {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "reconfig test CA");
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let ca = params.self_signed(&ca_key).expect("CA");
        let certs = Certs {
            ca_pem: ca.pem(),
            ca,
            ca_key,
            dir: dir.to_path_buf(),
        };
        let (cert, key) = certs.issue("first");
        std::fs::write(certs.cert_path(), cert).expect("write cert");
        std::fs::write(certs.key_path(), key).expect("write key");
        certs
    }

    /// A new server certificate and key (PEM), its common name `name`.
    pub fn issue(&self, name: &str) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("tls.crt")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join("tls.key")
    }

    pub fn ca_path(&self) -> PathBuf {
        let path = self.dir.join("ca.crt");
        std::fs::write(&path, &self.ca_pem).expect("write CA");
        path
    }
}

/// The running webhook.
pub struct Admit {
    pub process: Reconfig,
    /// HTTPS, AdmissionReviews.
    pub addr: SocketAddr,
    /// Plain HTTP, probes and metrics.
    pub probes: SocketAddr,
}

/// `reconfig admit --policy POLICY` with the certificate in `certs`, on free loopback ports.
pub fn command(policy: &Path, certs: &Certs, extra: &[&str]) -> Command {
    let mut cmd = cli::command();
    cmd.arg("admit")
        .arg("--policy")
        .arg(policy)
        .arg("--tls-cert")
        .arg(certs.cert_path())
        .arg("--tls-key")
        .arg(certs.key_path())
        .args(["--listen", "127.0.0.1:0", "--probe-listen", "127.0.0.1:0"])
        .args(["--reload-interval", "100ms"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

impl Admit {
    pub fn start(policy: &Path, certs: &Certs, extra: &[&str]) -> Admit {
        let process =
            Reconfig::spawn_until(command(policy, certs, extra), "serving AdmissionReviews");
        let line = process.wait_log("serving AdmissionReviews", 1);
        let addr = field(&line, "listen").and_then(|a| a.parse().ok());
        let probes = field(&line, "probes").and_then(|a| a.parse().ok());
        Admit {
            addr: addr.expect("listen address"),
            probes: probes.expect("probe address"),
            process,
        }
    }

    pub fn metrics(&self) -> super::reconfig::Metrics {
        let response = super::http::get(self.probes, "/metrics").expect("GET /metrics");
        super::reconfig::Metrics::parse(&response.body)
    }

    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.metrics().get(name, labels).unwrap_or(0.0)
    }
}

/// An AdmissionReview as the API server sends it (`uid`, `kind`, `resource`, `object`,
/// `oldObject`, `dryRun`, `options`, …) for `object` (a ConfigMap or Secret, or anything).
pub fn review(
    uid: &str,
    operation: &str,
    object: &Json,
    old: Option<&Json>,
    dry_run: bool,
) -> Json {
    let kind = object["kind"].as_str().unwrap_or("ConfigMap");
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = format!("{}s", kind.to_lowercase());
    let options_kind = match operation {
        "CREATE" => "CreateOptions",
        "UPDATE" => "UpdateOptions",
        _ => "DeleteOptions",
    };
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": if operation == "DELETE" { Json::Null } else { object.clone() },
            "oldObject": old.cloned().unwrap_or(Json::Null),
            "dryRun": dry_run,
            "options": {"kind": options_kind, "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}
        }
    })
}

/// A ConfigMap as the API server holds it.
pub fn configmap(namespace: &str, name: &str, data: &[(&str, &str)]) -> Json {
    let data: serde_json::Map<String, Json> = data
        .iter()
        .map(|(k, v)| (k.to_string(), Json::String(v.to_string())))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "uid": "0d4b2c1e-1111-4e7e-9d6a-000000000001",
                     "resourceVersion": "1", "creationTimestamp": "2026-01-01T00:00:00Z",
                     "labels": {"reconfig/validate": "true"}},
        "data": data
    })
}

/// A Secret as the API server holds it: `data` base64-encoded.
pub fn secret(namespace: &str, name: &str, data: &[(&str, &str)]) -> Json {
    use base64::Engine as _;
    let data: serde_json::Map<String, Json> = data
        .iter()
        .map(|(k, v)| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(v);
            (k.to_string(), Json::String(encoded))
        })
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": {"reconfig/validate": "true"}},
        "data": data
    })
}

/// What one request got back.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H2,
    H1,
}

enum Sender {
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
}

/// One TLS connection to the webhook, kept open across requests.
pub struct Client {
    sender: Sender,
    /// The protocol ALPN chose.
    pub alpn: Option<Vec<u8>>,
    /// The server certificate's DER, as presented in the handshake.
    pub server_cert: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr, ca_pem: &str, proto: Proto) -> std::io::Result<Client> {
        Self::connect_named(addr, ca_pem, proto, "localhost").await
    }

    /// Connects to `addr` expecting a certificate for `server_name` (a Service's DNS name).
    pub async fn connect_named(
        addr: SocketAddr,
        ca_pem: &str,
        proto: Proto,
        server_name: &str,
    ) -> std::io::Result<Client> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = match proto {
            Proto::H2 => vec![b"h2".to_vec()],
            Proto::H1 => vec![b"http/1.1".to_vec()],
        };
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from(server_name.to_string()).expect("name");
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        let (_, session) = tls.get_ref();
        let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
        let server_cert = session
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let io = TokioIo::new(tls);
        let sender = match proto {
            Proto::H2 => {
                let (sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .map_err(std::io::Error::other)?;
                tokio::spawn(conn);
                Sender::H2(sender)
            }
            Proto::H1 => {
                let (sender, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(std::io::Error::other)?;
                tokio::spawn(conn);
                Sender::H1(sender)
            }
        };
        Ok(Client {
            sender,
            alpn,
            server_cert,
        })
    }

    /// POSTs `body` to `path`.
    pub async fn post(&mut self, path: &str, body: Vec<u8>) -> std::io::Result<Answer> {
        let request = hyper::Request::post(format!("https://localhost{path}"))
            .header("content-type", "application/json")
            .header("host", "localhost")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let response = match &mut self.sender {
            Sender::H2(s) => s.send_request(request).await,
            Sender::H1(s) => {
                s.ready().await.map_err(std::io::Error::other)?;
                s.send_request(request).await
            }
        }
        .map_err(std::io::Error::other)?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// POSTs an AdmissionReview to /validate.
    pub async fn review(&mut self, review: &Json) -> Answer {
        self.post("/validate", review.to_string().into_bytes())
            .await
            .expect("an answer")
    }
}

/// curl (Debian's, OpenSSL) posting `body_file` to /validate; `--http2` or `--http1.1`.
/// Returns (HTTP version, status, body).
pub fn curl(addr: SocketAddr, ca: &Path, body_file: &Path, http: &str) -> (String, u16, String) {
    let Some(curl) = super::bins::require("curl", "curl") else {
        return (String::new(), 0, String::new());
    };
    let out = Command::new(curl)
        .args(["-sS", http, "--max-time", "20", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", addr.port())])
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{}", body_file.display()))
        .args(["-w", "\n%{http_version} %{http_code}"])
        .arg(format!("https://localhost:{}/validate", addr.port()))
        .output()
        .expect("run curl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let (version, code) = tail.split_once(' ').unwrap_or(("", "0"));
    (
        version.to_string(),
        code.parse().unwrap_or(0),
        body.to_string(),
    )
}
