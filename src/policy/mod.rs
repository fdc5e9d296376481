//! One validation policy for three gates: `check` in CI, `admit` at the API server, `watch`
//! in the pod.
//!
//! A policy file holds rules that select ConfigMaps and Secrets (kind, namespace and name
//! globs, a label selector) and keys (globs), and say what a selected key must satisfy (a
//! format, a JSON Schema, an external command) and whether a failure denies or warns. The
//! flags `--format`, `--schema` and `--validate-cmd` make a one-rule policy. Every gate calls
//! the same evaluation (`Policy::evaluate`, or its two halves where `watch` stages files
//! between them), so a verdict and its words do not depend on where it was given.

mod evaluate;
mod folders;
mod glob;
pub mod load;
mod model;
pub mod parse;
mod rules;

pub use evaluate::{Commands, Finding, Subject};
pub use folders::Folders;
pub use load::{load, Loaded, PolicyError};
pub use model::LabelSelector;
pub use rules::{Identity, Policy, Rule, Severity};
