//! What each document turned into, and the ConfigMaps and Secrets indexed by identity.
//!
//! Resolving looks objects up by the id a pod template names; comparing two renders looks
//! the same ids up in both. One index serves both, built once per stream.

use std::collections::HashMap;

use super::object::{ConfigObject, ObjectId};
use super::stream::Parsed;
use super::workload::Workload;

/// What one document turned into.
#[derive(Debug)]
pub enum Item {
    Config(ConfigObject),
    Workload(Box<Workload>),
    Other,
}

/// The ConfigMaps and Secrets of a parsed stream by id; a later document wins over an
/// earlier one with the same id, as it would when applied.
#[derive(Debug, Default)]
pub struct ObjectIndex {
    /// Index into the parsed documents' values.
    by_id: HashMap<ObjectId, usize>,
}

impl ObjectIndex {
    /// Indexes `parsed`, filling in `default_namespace` for objects that name none.
    pub fn new(parsed: &Parsed<Item>, default_namespace: &str) -> Self {
        let by_id = parsed
            .values
            .iter()
            .enumerate()
            .filter_map(|(index, value)| match value {
                Some(Item::Config(object)) => Some((object.id(default_namespace), index)),
                _ => None,
            })
            .collect();
        ObjectIndex { by_id }
    }

    /// The object with `id` in `parsed`, the stream this index was built from.
    pub fn get<'p>(&self, parsed: &'p Parsed<Item>, id: &ObjectId) -> Option<&'p ConfigObject> {
        match parsed.values.get(*self.by_id.get(id)?)? {
            Some(Item::Config(object)) => Some(object),
            _ => None,
        }
    }
}
