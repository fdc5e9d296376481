//! `--webhook URL`: tell the app over HTTP (Prometheus' `/-/reload`, configmap-reload style).

use std::time::{Duration, Instant};

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub struct Webhook {
    url: Uri,
    method: Method,
    /// Accepted status codes; empty means any 2xx.
    accept: Vec<u16>,
    timeout: Duration,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Webhook {
    pub fn new(
        url: &str,
        method: &str,
        accept: Vec<u16>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "`{url}`: https is not supported; reload endpoints are reached over the pod's loopback, use http://localhost:PORT/…"
                ))
            }
            _ => return Err(format!("`{url}` must start with http://")),
        }
        if uri.host().is_none() {
            return Err(format!("`{url}` has no host"));
        }
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("`{method}` is not an HTTP method"))?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        Ok(Webhook {
            url: uri,
            method,
            accept,
            timeout,
            client,
        })
    }

    pub fn url(&self) -> String {
        self.url.to_string()
    }

    /// Sends one request; the config hash travels in `X-Reconfig-Hash` for the receiver's logs.
    pub async fn call(&self, hash: &str) -> Result<String, String> {
        let request = Request::builder()
            .method(self.method.clone())
            .uri(self.url.clone())
            .header(
                "user-agent",
                concat!("reconfig/", env!("CARGO_PKG_VERSION")),
            )
            .header("x-reconfig-hash", hash)
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
            .map_err(|e| format!("request failed: {}", error_chain(&e)))?;
        let status = response.status().as_u16();
        // The latency trace's last stage (-v): connection, request and answer.
        tracing::debug!(
            status,
            answer_us = started.elapsed().as_micros() as u64,
            "webhook answered"
        );
        let accepted = if self.accept.is_empty() {
            (200..300).contains(&status)
        } else {
            self.accept.contains(&status)
        };
        if accepted {
            Ok(format!("{} {} → {status}", self.method, self.url))
        } else {
            Err(format!("{} {} answered {status}", self.method, self.url))
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Parses `--webhook-status 200,202,204`.
pub fn parse_statuses(s: &str) -> Result<Vec<u16>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|c| (100..600).contains(c))
                .ok_or_else(|| format!("`{p}` is not an HTTP status code"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reload::http_support::Receiver;

    #[tokio::test(flavor = "current_thread")]
    async fn posts_with_the_hash_and_checks_the_status() {
        let receiver = Receiver::start();
        let hook = Webhook::new(
            &receiver.url("/-/reload"),
            "post",
            Vec::new(),
            Duration::from_secs(2),
        )
        .expect("webhook");
        hook.call("abc123").await.expect("2xx is success");
        let seen = receiver.requests();
        assert_eq!(seen.len(), 1, "{seen:?}");
        let request = &seen[0];
        assert_eq!(
            (
                request.method.as_str(),
                request.path.as_str(),
                request.version.as_str()
            ),
            ("POST", "/-/reload", "HTTP/1.1"),
            "{request:?}"
        );
        assert_eq!(request.hash.as_deref(), Some("abc123"), "{request:?}");

        receiver.set_status(500);
        let hook = Webhook::new(
            &receiver.url("/-/reload"),
            "POST",
            Vec::new(),
            Duration::from_secs(2),
        )
        .expect("webhook");
        assert!(hook.call("x").await.unwrap_err().contains("answered 500"));

        receiver.set_status(302);
        let hook = Webhook::new(
            &receiver.url("/-/reload"),
            "GET",
            vec![302],
            Duration::from_secs(2),
        )
        .expect("webhook");
        hook.call("x").await.expect("302 accepted when configured");
    }
    #[tokio::test(flavor = "current_thread")]
    async fn refused_connections_and_bad_urls() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        drop(listener);
        let hook = Webhook::new(&url, "POST", Vec::new(), Duration::from_secs(2)).expect("webhook");
        assert!(hook.call("x").await.unwrap_err().contains("request failed"));
        assert!(Webhook::new("https://x/", "POST", Vec::new(), Duration::from_secs(1)).is_err());
        assert!(
            Webhook::new("localhost:9090", "POST", Vec::new(), Duration::from_secs(1)).is_err()
        );
        assert!(Webhook::new(
            "http://x/",
            "BAD METHOD",
            Vec::new(),
            Duration::from_secs(1)
        )
        .is_err());
        assert_eq!(parse_statuses("200, 204"), Ok(vec![200, 204]));
        assert!(parse_statuses("2xx").is_err());
    }
}
