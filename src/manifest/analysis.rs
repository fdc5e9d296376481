//! One stream read, resolved and ready to write back: the model's entry point.
//!
//! `analyze` runs the steps in order (cut and parse the stream, read each document,
//! index the objects, resolve every pod template), and `Analysis` keeps what the
//! commands need afterwards: the decisions, the index, and the text to write with edits.

use std::io::{self, Write};

use super::edit::{self, Edit};
use super::index::{Item, ObjectIndex};
use super::node::Limits;
use super::object::{ConfigObject, ObjectId, ObjectMeta};
use super::resolve::{resolve, Resolution, Rules};
use super::stream::{Parsed, Stream, StreamError};
use super::workload::{TemplateKinds, Workload};

/// Default annotation written on pod templates.
pub const DEFAULT_ANNOTATION: &str = "checksum/config";

/// Default limit on a stream's size (`--max-input-size`).
pub const DEFAULT_MAX_INPUT_SIZE: usize = 256 * 1024 * 1024;

/// Everything that shapes how a stream is read and annotated.
#[derive(Debug, Clone)]
pub struct Options {
    pub annotation_key: String,
    pub rules: Rules,
    /// Key for HMAC-SHA256 over Secret values; plain SHA-256 without it.
    pub secret_key: Option<Vec<u8>>,
    pub kinds: TemplateKinds,
    pub limits: Limits,
    pub max_input_size: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            annotation_key: DEFAULT_ANNOTATION.to_string(),
            rules: Rules::default(),
            secret_key: None,
            kinds: TemplateKinds::default(),
            limits: Limits::default(),
            max_input_size: DEFAULT_MAX_INPUT_SIZE,
        }
    }
}

/// A parsed stream with its resolution, ready to be written out.
pub struct Analysis<'a> {
    stream: Stream<'a>,
    pub parsed: Parsed<Item>,
    /// The ConfigMaps and Secrets of the stream by id.
    pub objects: ObjectIndex,
    pub resolution: Resolution,
}

/// Parses and resolves a whole stream. Any invalid document fails the whole stream.
pub fn analyze<'a>(text: &'a str, options: &Options) -> Result<Analysis<'a>, StreamError> {
    let stream = Stream::new(text, options.max_input_size)?;
    let parsed = stream.parse(options.limits, |doc| {
        let Some(meta) = ObjectMeta::read(doc.root) else {
            return Ok(Item::Other);
        };
        if let Some(object) = ConfigObject::read(doc.root, &meta, options.secret_key.as_deref())? {
            return Ok(Item::Config(object));
        }
        Ok(
            match Workload::read(
                doc.root,
                doc.text,
                &meta,
                &options.kinds,
                &options.annotation_key,
            )? {
                Some(w) => Item::Workload(Box::new(w)),
                None => Item::Other,
            },
        )
    })?;
    let default_namespace = options.rules.namespace.as_deref().unwrap_or("");
    let objects = ObjectIndex::new(&parsed, default_namespace);
    let resolution = resolve(&parsed, &objects, &options.rules, &options.annotation_key);
    Ok(Analysis {
        stream,
        parsed,
        objects,
        resolution,
    })
}

impl Analysis<'_> {
    /// The ConfigMap or Secret with `id`, if the stream has it.
    pub fn object(&self, id: &ObjectId) -> Option<&ConfigObject> {
        self.objects.get(&self.parsed, id)
    }

    /// Writes the stream with the resolved edits; untouched pieces are copied byte for byte.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let mut edits: Vec<Vec<Edit>> = vec![Vec::new(); self.stream.pieces().count()];
        for t in &self.resolution.templates {
            if let Some(e) = &t.edit {
                edits[self.parsed.docs[t.doc].piece()].push(e.clone());
            }
        }
        let text = self.stream.text();
        for (range, piece_edits) in self.stream.pieces().zip(edits.iter_mut()) {
            let piece = &text[range];
            if piece_edits.is_empty() {
                out.write_all(piece.as_bytes())?;
            } else {
                out.write_all(edit::apply(piece, piece_edits).as_bytes())?;
            }
        }
        Ok(())
    }

    /// Number of pod templates whose annotation is written or changed.
    pub fn changed(&self) -> usize {
        self.resolution
            .templates
            .iter()
            .filter(|t| t.edit.is_some())
            .count()
    }
}
