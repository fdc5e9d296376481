//! Helpers shared by the `reconfig watch` integration tests (`tests/watch_*.rs`).
//!
//! - [`atomic_writer`]: kubelet's AtomicWriter, to update volumes exactly as kubelet does;
//! - [`reconfig`]: start `reconfig watch` on a free loopback port, read its log, /readyz, /metrics;
//! - [`http`]: a plain-TCP HTTP client and a loopback webhook receiver that records requests;
//! - [`kube_api`]: a loopback server speaking the Kubernetes API's JSON for pods and Events;
//! - [`wait`]: polling with timeouts (never a fixed sleep as an assertion);
//! - [`bins`]: finding real programs (prometheus, promtool, nginx), failing under CI when missing.

#![allow(dead_code)]

pub mod atomic_writer;
pub mod bins;
pub mod cli;
pub mod http;
pub mod kube_api;
pub mod reconfig;
pub mod wait;
