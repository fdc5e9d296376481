//! Helpers shared by the integration tests (`mod support;` in each file of `tests/`); their own
//! tests live in `tests/support_selftest.rs`, so they run once, not once per test binary.
//!
//! - [`admit`]: `reconfig admit` with certificates made at test time, AdmissionReview bodies as
//!   the API server sends them, and a Rust TLS client (hyper over rustls, h2 or HTTP/1.1);
//! - [`cli`]: the `reconfig` binary with a clean environment (no `RECONFIG_*`, `POD_*`);
//! - [`manifests`]: a fluent builder of Kubernetes manifest streams (std only: src unit tests
//!   include it by path);
//! - [`atomic_writer`]: kubelet's AtomicWriter, to update volumes exactly as kubelet does;
//! - [`reconfig`]: start `reconfig watch` on a free loopback port (as a pod reporting to the API
//!   stand-in, with `api_command`), read its log, /readyz, /status, /metrics;
//! - [`app`]: a stand-in app that records the SIGHUPs it gets;
//! - [`watch`]: one `reconfig watch` scenario set up in a line (volume, webhook, arguments);
//! - [`http`]: a plain-TCP HTTP client, request reading, and a loopback webhook receiver that
//!   records requests (std only: src unit tests include it by path);
//! - [`kube_api`]: a loopback server speaking the Kubernetes API's JSON for pods and Events;
//! - [`wait`]: polling with timeouts (never a fixed sleep as an assertion);
//! - [`bins`]: finding real programs (prometheus, promtool, nginx, helm), failing under CI when
//!   missing and recording the skip for `tests/run.sh` otherwise.

#![allow(dead_code)]

pub mod admit;
pub mod app;
pub mod atomic_writer;
pub mod bins;
pub mod cli;
pub mod http;
pub mod kube_api;
pub mod manifests;
pub mod reconfig;
pub mod wait;
pub mod watch;
