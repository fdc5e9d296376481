//! What each document turned into, and the ConfigMaps and Secrets indexed by identity.
//!
//! Resolving looks objects up by the id a pod template names; comparing two renders looks
//! the same ids up in both. One index serves both, built once per stream.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use super::object::{ConfigKind, ConfigObject, ObjectId};
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
pub type Items = Box<[Item]>;

/// The ConfigMaps and Secrets of a parsed stream by id; a later one wins over an earlier one
/// with the same id, as it would when applied.
///
/// The stream's objects are found by a hash of their id, checked against the object itself:
/// a list of (hash, document, item) sorted by hash costs 24 bytes an object, where a map
/// holding each id would cost several times that, for every object of the stream until
/// output.
#[derive(Debug, Default)]
pub struct ObjectIndex {
    hasher: RandomState,
    /// Hash of the id, document index into the parsed values, and item index within it;
    /// sorted, so that the same id's entries are together, in stream order.
    by_hash: Vec<(u64, usize, usize)>,
    /// Filled in for objects that name no namespace.
    default_namespace: String,
    /// Objects from outside the stream (`inject --lookup` reads them from the cluster); the
    /// stream's own object wins over one of these with the same id.
    outside: HashMap<ObjectId, ConfigObject>,
}

impl ObjectIndex {
    /// Indexes `parsed`, filling in `default_namespace` for objects that name none.
    pub fn new(parsed: &Parsed<Items>, default_namespace: &str) -> Self {
        let hasher = RandomState::new();
        let mut by_hash = Vec::new();
        for (doc, items) in parsed.values.iter().enumerate() {
            for (at, item) in items.iter().flatten().enumerate() {
                if let Item::Config(object) = item {
                    let namespace = object.namespace.as_deref().unwrap_or(default_namespace);
                    by_hash.push((
                        hash_id(&hasher, object.kind, namespace, &object.name),
                        doc,
                        at,
                    ));
                }
            }
        }
        by_hash.sort_unstable();
        by_hash.shrink_to_fit();
        ObjectIndex {
            hasher,
            by_hash,
            default_namespace: default_namespace.to_string(),
            outside: HashMap::new(),
        }
    }

    /// The index of `parsed` again (its objects changed), with the same objects from outside.
    pub fn reindex(self, parsed: &Parsed<Items>) -> Self {
        ObjectIndex {
            outside: self.outside,
            ..ObjectIndex::new(parsed, &self.default_namespace)
        }
    }

    /// The objects from outside the stream, given back.
    pub fn into_outside(self) -> Vec<ConfigObject> {
        self.outside.into_values().collect()
    }

    /// The ids of the stream's own objects (not those from outside it), each once.
    pub fn stream_ids(&self, parsed: &Parsed<Items>) -> HashSet<ObjectId> {
        self.by_hash
            .iter()
            .filter_map(|&(_, doc, at)| config_at(parsed, doc, at))
            .map(|object| object.id(&self.default_namespace))
            .collect()
    }

    /// Adds objects from outside the stream, with the index's default namespace for those
    /// naming none.
    pub fn with_outside(mut self, objects: Vec<ConfigObject>) -> Self {
        for object in objects {
            self.outside
                .insert(object.id(&self.default_namespace), object);
        }
        self
    }

    /// The object with `id` in `parsed` (the stream this index was built from), else from
    /// outside it.
    pub fn get<'p>(&'p self, parsed: &'p Parsed<Items>, id: &ObjectId) -> Option<&'p ConfigObject> {
        let hash = hash_id(&self.hasher, id.kind, &id.namespace, &id.name);
        let start = self.by_hash.partition_point(|&(h, _, _)| h < hash);
        let same_hash = self.by_hash[start..]
            .iter()
            .take_while(|&&(h, _, _)| h == hash);
        // The last object with the id wins.
        let found = same_hash
            .filter_map(|&(_, doc, at)| config_at(parsed, doc, at))
            .filter(|object| {
                object.kind == id.kind
                    && *object.name == *id.name
                    && object
                        .namespace
                        .as_deref()
                        .unwrap_or(&self.default_namespace)
                        == id.namespace
            })
            .last();
        found.or_else(|| self.outside.get(id))
    }
}

/// The hash [`ObjectIndex`] files an object under, and looks an id up by.
fn hash_id(hasher: &RandomState, kind: ConfigKind, namespace: &str, name: &str) -> u64 {
    hasher.hash_one((kind, namespace, name))
}

/// The ConfigMap or Secret at item `at` of document `doc`.
fn config_at(parsed: &Parsed<Items>, doc: usize, at: usize) -> Option<&ConfigObject> {
    match parsed.values.get(doc)?.as_ref()?.get(at)? {
        Item::Config(object) => Some(object),
        Item::Workload(_) | Item::Referrer(_) | Item::Released => None,
    }
}
