//! The serving certificate: read from PEM files, swapped in place when they change (cert-manager
//! rotates them), so new connections get the new one and open connections keep theirs.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate file or key larger than this is refused.
const MAX_PEM: u64 = 1024 * 1024;

/// Why a certificate cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{0}")]
    Invalid(String),
}

/// The certificate every new handshake gets, replaceable while serving.
#[derive(Debug)]
pub struct Certificate(RwLock<Arc<CertifiedKey>>);

impl Certificate {
    pub fn new(key: CertifiedKey) -> Arc<Self> {
        Arc::new(Certificate(RwLock::new(Arc::new(key))))
    }

    pub fn replace(&self, key: CertifiedKey) {
        if let Ok(mut current) = self.0.write() {
            *current = Arc::new(key);
        }
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|c| Arc::clone(&c))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM file within the bound.
pub fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read as _;
    let read_error = |error| TlsError::Read {
        path: path.display().to_string(),
        error,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(read_error)?
        .take(MAX_PEM + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_PEM {
        return Err(TlsError::Invalid(format!(
            "{} is over 1 MiB",
            path.display()
        )));
    }
    Ok(bytes)
}

/// A certificate chain and its private key from PEM text; they must belong together.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Invalid(format!("the certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError::Invalid(
            "the certificate file holds no certificate".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| TlsError::Invalid(format!("the key file: {e}")))?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Invalid(format!("the key file: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        TlsError::Invalid(format!("the key does not belong to the certificate: {e}"))
    })?;
    Ok(certified)
}

/// TLS 1.2 and 1.3 with ring, HTTP/2 or HTTP/1.1 by ALPN, the certificate from `certificate`.
pub fn server_config(certificate: Arc<Certificate>) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("cert");
        (cert.cert.pem(), cert.key_pair.serialize_pem())
    }

    #[test]
    fn a_matching_pair_loads_and_a_mismatched_one_does_not() {
        let (cert_a, key_a) = pair("a.example");
        let (_, key_b) = pair("b.example");
        assert!(certified_key(cert_a.as_bytes(), key_a.as_bytes()).is_ok());
        let error = certified_key(cert_a.as_bytes(), key_b.as_bytes()).expect_err("mismatch");
        assert!(error.to_string().contains("does not belong"), "{error}");
        assert!(certified_key(b"", key_a.as_bytes()).is_err());
        assert!(certified_key(cert_a.as_bytes(), b"garbage").is_err());
        let config = server_config(Certificate::new(
            certified_key(cert_a.as_bytes(), key_a.as_bytes()).expect("pair"),
        ))
        .expect("config");
        assert_eq!(config.alpn_protocols[0], b"h2");
    }
}
