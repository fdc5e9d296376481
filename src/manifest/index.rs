//! What each document turned into, and the ConfigMaps and Secrets indexed by identity.
//!
//! Resolving looks objects up by the id a pod template names; comparing two renders looks
//! the same ids up in both. One index serves both, built once per stream.

use std::collections::HashMap;

use super::object::{ConfigObject, ObjectId};
use super::stream::Parsed;
use super::workload::{Referrer, Workload};

/// One object of a document that reconfig reads.
#[derive(Debug)]
pub enum Item {
    Config(ConfigObject),
    Workload(Box<Workload>),
    /// Names of ConfigMaps and Secrets outside pod templates' references; read only when
    /// the stream may version objects.
    Referrer(Box<Referrer>),
    /// A workload whose pod templates are resolved, dropped because nothing reads it again
    /// (`inject` without `--versioned`; see [`resolve`](super::resolve::resolve)).
    Released,
}

/// What one document turned into: no item (a Service, a comment), one, or several (the
/// items of a `kind: List`), in document order.
pub type Items = Vec<Item>;

/// The ConfigMaps and Secrets of a parsed stream by id; a later one wins over an earlier one
/// with the same id, as it would when applied.
#[derive(Debug, Default)]
pub struct ObjectIndex {
    /// Document index into the parsed values, and item index within it.
    by_id: HashMap<ObjectId, (usize, usize)>,
    /// Objects from outside the stream (`inject --lookup` reads them from the cluster); the
    /// stream's own object wins over one of these with the same id.
    outside: HashMap<ObjectId, ConfigObject>,
}

impl ObjectIndex {
    /// Indexes `parsed`, filling in `default_namespace` for objects that name none.
    pub fn new(parsed: &Parsed<Items>, default_namespace: &str) -> Self {
        let mut by_id = HashMap::new();
        for (doc, items) in parsed.values.iter().enumerate() {
            for (at, item) in items.iter().flatten().enumerate() {
                if let Item::Config(object) = item {
                    by_id.insert(object.id(default_namespace), (doc, at));
                }
            }
        }
        ObjectIndex {
            by_id,
            outside: HashMap::new(),
        }
    }

    /// The ids of the stream's own objects (not those from outside it).
    pub fn stream_ids(&self) -> impl Iterator<Item = &ObjectId> {
        self.by_id.keys()
    }

    /// Adds objects from outside the stream, with `default_namespace` for those naming none.
    pub fn with_outside(mut self, objects: Vec<ConfigObject>, default_namespace: &str) -> Self {
        for object in objects {
            self.outside.insert(object.id(default_namespace), object);
        }
        self
    }

    /// The object with `id` in `parsed` (the stream this index was built from), else from
    /// outside it.
    pub fn get<'p>(&'p self, parsed: &'p Parsed<Items>, id: &ObjectId) -> Option<&'p ConfigObject> {
        let Some(&(doc, at)) = self.by_id.get(id) else {
            return self.outside.get(id);
        };
        match parsed.values.get(doc)?.as_ref()?.get(at)? {
            Item::Config(object) => Some(object),
            Item::Workload(_) | Item::Referrer(_) | Item::Released => None,
        }
    }
}
