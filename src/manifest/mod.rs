//! The manifest model shared by `inject`, `check --manifests` and `plan`:
//! YAML stream → documents → ConfigMaps, Secrets and workloads → resolved pod templates
//! → checksums and edits; and the comparison of two renders.
//!
//! Nothing here reads files or knows about the command line (`input` and `cli` do).
//! Data flows one way through the modules below: `stream` cuts the text and `parse`
//! turns each piece into a `node` tree (with the `fast` or the `full` parser); `object`
//! and `workload` read documents; `index` finds objects by id; `resolve` decides every
//! pod template using `checksum` and `edit`; `analysis` ties the steps together;
//! `shape` reduces each pod template to digests of its fields, and `compare` explains the
//! difference between two analyses; `data` reads every ConfigMap and
//! Secret key for `check --manifests`.

pub mod analysis;
pub mod checksum;
pub mod compare;
pub mod data;
pub mod edit;
mod fast;
mod full;
pub mod index;
mod lenient;
pub mod node;
pub mod object;
pub mod parse;
pub mod resolve;
pub mod shape;
pub mod stream;
pub mod version;
pub mod workload;

/// The fluent manifest builder of the integration tests, shared by the unit tests here.
#[cfg(test)]
#[path = "../../tests/support/manifests.rs"]
#[allow(dead_code)]
pub(crate) mod manifests;

pub use analysis::{
    analyze, analyze_with, Analysis, Options, DEFAULT_ANNOTATION, DEFAULT_MAX_INPUT_SIZE,
};
#[cfg(test)]
mod tests {
    use std::mem::size_of;

    /// What `inject` keeps for every document, object and pod template of a stream until its
    /// output is written: on a stream of many small documents these records are most of the
    /// memory past the input (`benches/memory_bench.sh`, the pairs shape), so a field added to
    /// one must be paid for knowingly.
    #[test]
    fn records_kept_until_output_stay_small() {
        assert_eq!(size_of::<super::stream::DocInfo>(), 32);
        assert_eq!(size_of::<super::index::Item>(), 64);
        assert_eq!(size_of::<super::object::ConfigObject>(), 64);
        assert_eq!(size_of::<super::resolve::Brief>(), 96);
    }
}
