//! One stream read, resolved and ready to write back: the model's entry point.
//!
//! `analyze` runs the steps in order (cut and parse the stream, read each document's
//! objects (a `List`'s items too), index them, resolve every pod template), and `Analysis` keeps what the
//! commands need afterwards: the decisions, the index, and the text to write with edits.

use std::io::{self, Write};

use super::edit::RenameSlots;
use super::edit::{self, ChecksumEdit, ChecksumKey, Edit};
use super::index::{Item, Items, ObjectIndex};
use super::node::{Limits, Node};
use super::object::{
    non_string_values, objects, ConfigObject, ObjectId, ObjectMeta, VERSIONED_FROM,
};
use super::resolve::{
    resolve, resolve_workload, Briefs, Note, Resolution, Rules, TemplateResolution,
};
use super::shape::TemplateShape;
use super::stream::{Diagnostic, Document, LaterRead, Parsed, Problem, Stream, StreamError};
use super::version::{self, Versioning, Versions};
use super::workload::{named_by, PodTemplate, Referrer, TemplateKinds, Workload, OWN_CHECKSUM};

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
    /// Keep every pod template's fields as digests (`plan` names template changes with them);
    /// off for `inject`, which needs only the config.
    pub template_shapes: bool,
    /// Which ConfigMaps and Secrets get content-addressed names (`inject --versioned`).
    pub versioning: Versioning,
    /// Keep every workload in [`Analysis::parsed`] after its pod templates are resolved.
    /// Off, each is dropped once resolved ([`Item::Released`]) unless a later step reads it
    /// (`template_shapes`, versioning): `inject` needs only the decisions, and a stream's
    /// workloads and decisions together were most of its memory.
    pub keep_workloads: bool,
    /// Keep each decision as a [`Brief`](super::resolve::Brief) (its edit, and its notes
    /// with `notes`) in [`Resolution::briefs`], not in full in `templates`: `inject`, which
    /// writes the edits and tells the user, and reads nothing else of them. Without
    /// `keep_workloads`, `template_shapes` or versioning, workloads are then read after the
    /// stream's ConfigMaps and Secrets, and each is resolved as it is read: no workload, and
    /// no decision in full, is ever held for the whole stream.
    pub brief_decisions: bool,
    /// Keep what the user is told about each decision in its brief (`inject -v`).
    pub notes: bool,
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
            template_shapes: false,
            versioning: Versioning::default(),
            keep_workloads: false,
            brief_decisions: false,
            notes: false,
        }
    }
}

/// A parsed stream with its resolution, ready to be written out.
pub struct Analysis<'a> {
    stream: Stream<'a>,
    pub parsed: Parsed<Items>,
    /// The ConfigMaps and Secrets of the stream by id.
    pub objects: ObjectIndex,
    pub resolution: Resolution,
    /// The objects renamed after their content, and the edits that do it.
    pub versions: Versions,
    /// The run's annotation key, which [`ChecksumKey::Configured`] names in the edits.
    annotation_key: String,
}

/// Parses and resolves a whole stream. Any invalid document fails the whole stream.
pub fn analyze<'a>(text: &'a str, options: &Options) -> Result<Analysis<'a>, StreamError> {
    analyze_with(text, options, Vec::new())
}

/// `analyze`, with ConfigMaps and Secrets from outside the stream that pod templates may use
/// (`inject --lookup`); they are hashed like the stream's own and never written out.
pub fn analyze_with<'a>(
    text: &'a str,
    options: &Options,
    outside: Vec<ConfigObject>,
) -> Result<Analysis<'a>, StreamError> {
    match analyze_leaving(text, options, outside, true)? {
        Ok(analysis) => Ok(analysis),
        // A document left for later turned out to be one of several in its piece, which the
        // documents read first did not count: read again, leaving nothing for later.
        // Leaving nothing, no piece left for later can hold several documents: the `Err`
        // below cannot happen.
        Err(outside) => analyze_leaving(text, options, outside, false)?
            .map_err(|_| StreamError::Invalid(Vec::new())),
    }
}

/// `analyze_with`; with `leave` (and brief decisions), workloads are left for later
/// ([`Stream::parse_leaving`]). `Ok(Err(outside))` when a piece left for later held more than
/// one document ([`LaterRead::split`]): nothing is decided then, and the
/// objects from outside come back for another try without leaving any.
fn analyze_leaving<'a>(
    text: &'a str,
    options: &Options,
    outside: Vec<ConfigObject>,
    leave: bool,
) -> Result<Result<Analysis<'a>, Vec<ConfigObject>>, StreamError> {
    let stream = Stream::new(text, options.max_input_size)?;
    // When objects may be versioned, every document is read: any of them may name one.
    let versioning = options.versioning.may_apply(text);
    let annotation_keys = options.versioning.annotation_keys();
    // Only these kinds give items; the rest (CRDs above all) are proven valid, not read.
    let needs_tree = |kind: &str| {
        versioning
            || matches!(kind, "ConfigMap" | "Secret")
            || kind.ends_with("List")
            || options.kinds.may_have_templates(kind)
    };
    let read_items = |doc: &Document<'a, '_>| -> Result<Items, Problem> {
        let mut items = Vec::new();
        for (root, meta) in objects(doc.root) {
            let secret_key = options.secret_key.as_deref();
            if let Some(mut object) = ConfigObject::read(root, &meta, secret_key)? {
                for doubt in non_string_values(root, &meta) {
                    doc.doubt(doubt);
                }
                if versioning {
                    let slots = RenameSlots::find(root, doc.text, VERSIONED_FROM, &annotation_keys);
                    object.set_rename(slots);
                }
                items.push(Item::Config(object));
                continue;
            }
            let workload = read_workload(root, doc, &meta, options)?;
            if versioning {
                // Names a pod template's references hold are rewritten, not readers' names.
                let rewritten: Vec<usize> = workload
                    .iter()
                    .flat_map(|w| &w.templates)
                    .flat_map(|t| &t.references)
                    .filter_map(|r| r.name_at.as_ref().map(|(range, _)| range.start))
                    .collect();
                let mut named = named_by(root);
                named.retain(|n| !rewritten.contains(&n.offset));
                if !named.is_empty() {
                    items.push(Item::Referrer(Box::new(Referrer {
                        kind: meta.kind.to_string(),
                        name: meta.name.to_string(),
                        namespace: meta.namespace.map(str::to_string),
                        named,
                        pos: root.start,
                    })));
                }
            }
            if let Some(workload) = workload {
                let mut workload = Box::new(workload);
                if options.template_shapes {
                    for t in &mut workload.templates {
                        if let Some(template) = root.path(&t.path) {
                            t.shape = TemplateShape::of(template);
                        }
                    }
                }
                items.push(Item::Workload(workload));
            }
        }
        // Kept until output for every document of the stream: no spare capacity.
        Ok(items.into_boxed_slice())
    };
    // Only `plan` (template shapes) and versioning read workloads after their resolution.
    let release_workloads = !(options.keep_workloads || options.template_shapes || versioning);
    let brief = options.brief_decisions && release_workloads;
    // With brief decisions, workloads are read after every ConfigMap and Secret is known, and
    // each is resolved as it is read: none is ever held. A Rollout may link to another
    // workload (`workloadRef`): it is read first, with the objects.
    let later = |kind: &str| {
        leave
            && brief
            && options.kinds.may_have_templates(kind)
            && !matches!(kind, "ConfigMap" | "Secret" | "Rollout")
            && !kind.ends_with("List")
    };
    let (mut parsed, mut diagnostics) =
        stream.parse_leaving(options.limits, needs_tree, later, read_items);
    let default_namespace = options.rules.namespace.as_deref().unwrap_or("");
    let mut objects = ObjectIndex::new(&parsed, default_namespace).with_outside(outside);
    let mut resolution = Later::WholeStream;
    if !parsed.later.is_empty() && links_nothing(&parsed, options) {
        resolution = resolve_later(&stream, &mut parsed, &mut diagnostics, &objects, options);
    }
    let resolution = match resolution {
        Later::Split => return Ok(Err(objects.into_outside())),
        Later::Resolved(resolution) => {
            Stream::finish(diagnostics)?;
            resolution
        }
        Later::WholeStream => {
            if !parsed.later.is_empty() {
                if read_later(&stream, &mut parsed, &mut diagnostics, options, read_items) {
                    return Ok(Err(objects.into_outside()));
                }
                objects = objects.reindex(&parsed);
            }
            Stream::finish(diagnostics)?;
            let unmatched = unmatched_template_paths(&parsed, &options.kinds);
            let mut resolution = resolve(
                &mut parsed,
                &objects,
                &options.rules,
                &options.annotation_key,
                release_workloads,
            );
            resolution.unmatched.extend(unmatched);
            if brief {
                resolution.brief_templates(options.notes);
            }
            resolution
        }
    };
    let versions = version::plan(&parsed, &objects, &options.rules, &options.versioning);
    Ok(Ok(Analysis {
        stream,
        parsed,
        objects,
        resolution,
        versions,
        annotation_key: options.annotation_key.clone(),
    }))
}

/// What became of the documents left for later.
enum Later {
    /// Each workload was resolved as it was read.
    Resolved(Resolution),
    /// They need the whole stream: they are read as those read first were, and resolved with them.
    WholeStream,
    /// One held more documents than were counted: the stream is read again, leaving none.
    Split,
}

/// The workload `root` of `doc` is, if it has pod templates, as `options` say where.
fn read_workload(
    root: &Node<'_>,
    doc: &Document<'_, '_>,
    meta: &ObjectMeta<'_, '_>,
    options: &Options,
) -> Result<Option<Workload>, Problem> {
    Workload::read(
        root,
        doc.text,
        meta,
        &options.kinds,
        &options.annotation_key,
    )
}

/// Whether the stream's workloads can be resolved one at a time, each on its own: no flag
/// asks about the stream's workloads as a whole (`--depends` and `--template-path` report
/// what matches nothing), and no Rollout read so far links to another workload.
fn links_nothing(parsed: &Parsed<Items>, options: &Options) -> bool {
    options.rules.depends.is_empty()
        && options.kinds.custom().is_empty()
        && !parsed
            .values
            .iter()
            .flatten()
            .flatten()
            .any(|item| matches!(item, Item::Workload(w) if w.workload_ref.is_some()))
}

/// What each thread keeps while it resolves the workloads left for later: their decisions
/// as briefs, and whether a document turned out to need the whole stream after all.
struct LaterState {
    resolution: Resolution,
    /// A document left for later held a ConfigMap or Secret (other workloads may use it) or
    /// a Rollout with a `workloadRef`: the stream is resolved the whole way instead.
    whole_stream: bool,
}

/// Reads the documents left for later and resolves each workload as it is read, against the
/// stream's ConfigMaps and Secrets, keeping only brief decisions; then resolves the
/// workloads read with the objects, and puts the decisions in stream order. Nothing is
/// changed when a document left for later needs the whole stream
/// ([`LaterState::whole_stream`]) or held several documents.
fn resolve_later(
    stream: &Stream<'_>,
    parsed: &mut Parsed<Items>,
    diagnostics: &mut Vec<Diagnostic>,
    objects: &ObjectIndex,
    options: &Options,
) -> Later {
    let read = &*parsed;
    let mut later = stream.parse_later(
        &read.docs,
        &read.later,
        options.limits,
        // Most documents left for later are one workload with one pod template.
        |count| LaterState {
            resolution: Resolution {
                briefs: Briefs::with_capacity(count),
                ..Resolution::default()
            },
            whole_stream: false,
        },
        |doc, index, info, state: &mut LaterState| {
            for (root, meta) in super::object::objects(doc.root) {
                if matches!(meta.kind, "ConfigMap" | "Secret") {
                    state.whole_stream = true;
                    continue;
                }
                let Some(workload) = read_workload(root, doc, &meta, options)? else {
                    continue;
                };
                if workload.workload_ref.is_some() {
                    state.whole_stream = true;
                    continue;
                }
                resolve_workload(
                    &mut state.resolution,
                    read,
                    objects,
                    &options.rules,
                    &options.annotation_key,
                    (index, info),
                    &workload,
                    options.notes,
                );
            }
            Ok(())
        },
    );
    if later.split {
        return Later::Split;
    }
    if later.states.iter().any(|s| s.whole_stream) {
        return Later::WholeStream;
    }
    let states = std::mem::take(&mut later.states);
    absorb(parsed, diagnostics, later);
    // The workloads read with the objects (a Rollout, a document the quick look at its
    // `kind:` lines could not place) are resolved as a whole stream is.
    let mut resolution = resolve(
        parsed,
        objects,
        &options.rules,
        &options.annotation_key,
        true,
    );
    resolution.brief_templates(options.notes);
    // The threads' runs of briefs are the bulk: they are moved, not copied.
    let read_first = !resolution.briefs.is_empty();
    for state in states {
        let r = state.resolution;
        resolution.briefs.append(r.briefs);
        resolution.warnings.extend(r.warnings);
        resolution.missing.extend(r.missing);
        resolution.absent.extend(r.absent);
    }
    // The workloads read with the objects go in their places; stable sorts keep each
    // workload's own lines in their order.
    if read_first {
        resolution.briefs.sort();
    }
    resolution.warnings.sort_by_key(|d| d.location.document);
    resolution.missing.sort_by_key(|d| d.location.document);
    Later::Resolved(resolution)
}

/// Reads the documents left for later as those read first were (`read_items`), and puts
/// their items in place; `true` (and nothing changed) when one held several documents.
fn read_later<'a, F>(
    stream: &Stream<'a>,
    parsed: &mut Parsed<Items>,
    diagnostics: &mut Vec<Diagnostic>,
    options: &Options,
    read_items: F,
) -> bool
where
    F: Fn(&Document<'a, '_>) -> Result<Items, Problem> + Sync,
{
    let mut later = stream.parse_later(
        &parsed.docs,
        &parsed.later,
        options.limits,
        Vec::with_capacity,
        |doc, index, _info, read: &mut Vec<(usize, Items)>| {
            read.push((index, read_items(doc)?));
            Ok(())
        },
    );
    if later.split {
        return true;
    }
    for (index, items) in std::mem::take(&mut later.states).into_iter().flatten() {
        if let Some(value) = parsed.values.get_mut(index) {
            *value = Some(items);
        }
    }
    absorb(parsed, diagnostics, later);
    false
}

/// Puts what reading the documents left for later found in place: their sources, the empty
/// ones, their diagnostics and doubts (in document order with the others).
fn absorb<S>(parsed: &mut Parsed<Items>, diagnostics: &mut Vec<Diagnostic>, later: LaterRead<S>) {
    let LaterRead {
        sources,
        empty,
        diagnostics: found,
        doubts,
        ..
    } = later;
    for (index, source) in sources {
        if let Some(info) = parsed.docs.get_mut(index) {
            info.source = Some(source.into());
        }
    }
    for index in empty {
        if let Some(value) = parsed.values.get_mut(index) {
            *value = None;
        }
    }
    diagnostics.extend(found);
    if !doubts.is_empty() {
        parsed.doubts.extend(doubts);
        parsed.doubts.sort_by_key(|d| d.location.document);
    }
    parsed.later.clear();
}

/// The ConfigMaps and Secrets of a stream, reduced to digests as `analyze` reduces them:
/// objects read from elsewhere (the cluster) for [`analyze_with`].
pub fn config_objects(text: &str, options: &Options) -> Result<Vec<ConfigObject>, StreamError> {
    let stream = Stream::new(text, options.max_input_size)?;
    let parsed = stream.parse_selected(
        options.limits,
        |kind| matches!(kind, "ConfigMap" | "Secret") || kind.ends_with("List"),
        |doc| {
            let mut found = Vec::new();
            for (root, meta) in objects(doc.root) {
                if let Some(object) =
                    ConfigObject::read(root, &meta, options.secret_key.as_deref())?
                {
                    found.push(object);
                }
            }
            Ok(found)
        },
    )?;
    Ok(parsed.values.into_iter().flatten().flatten().collect())
}

/// The `--template-path`s at which no workload of the stream has a pod template.
fn unmatched_template_paths(parsed: &Parsed<Items>, kinds: &TemplateKinds) -> Vec<String> {
    let workloads: Vec<&Workload> = parsed
        .values
        .iter()
        .flatten()
        .flatten()
        .filter_map(|item| match item {
            Item::Workload(w) => Some(&**w),
            Item::Config(_) | Item::Referrer(_) | Item::Released => None,
        })
        .collect();
    let mut out = Vec::new();
    for tp in kinds.custom() {
        let of_kind: Vec<&&Workload> = workloads.iter().filter(|w| w.kind == tp.kind).collect();
        if of_kind
            .iter()
            .any(|w| w.templates.iter().any(|t| t.path == tp.path))
        {
            continue;
        }
        let why = if of_kind.is_empty() {
            format!("the stream has no {}", tp.kind)
        } else {
            format!(
                "no {} in the stream has a pod template at {}",
                tp.kind, tp.path
            )
        };
        out.push(format!(
            "--template-path {tp}: {why}; nothing is annotated for it"
        ));
    }
    out
}

impl Analysis<'_> {
    /// The ConfigMap or Secret with `id`, if the stream has it.
    pub fn object(&self, id: &ObjectId) -> Option<&ConfigObject> {
        self.objects.get(&self.parsed, id)
    }

    /// The pod templates behind a decision, with their paths: the one it names, or all of a
    /// workload skipped as a whole (its path is empty).
    pub fn templates_of(&self, t: &TemplateResolution) -> Vec<&PodTemplate> {
        self.workload_of(t)
            .into_iter()
            .flat_map(|w| &w.templates)
            .filter(|template| t.path.is_empty() || template.path == t.path)
            .collect()
    }

    /// The workload a decision is about, read from its document.
    pub fn workload_of(&self, t: &TemplateResolution) -> Option<&Workload> {
        self.parsed
            .values
            .get(t.doc)
            .and_then(Option::as_ref)
            .into_iter()
            .flatten()
            .filter_map(|item| match item {
                Item::Workload(w) => Some(&**w),
                Item::Config(_) | Item::Referrer(_) | Item::Released => None,
            })
            .find(|w| {
                w.kind == t.workload.kind
                    && w.name == t.workload.name
                    && w.namespace
                        .as_ref()
                        .is_none_or(|ns| *ns == t.workload.namespace)
            })
    }

    /// Writes the stream with the resolved edits; untouched pieces are copied byte for byte.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        // The edits by piece, without a list per piece: a stream of many small documents
        // would pay for one empty list each, at the moment of peak memory. The decisions are
        // in stream order already (kept in full or as briefs, never both), so they are not
        // copied into a list of their own to be sorted, unless they are somehow out of order.
        // In a piece, checksum edits go first, then renames (`inject --versioned`).
        let decisions = || {
            let templates = self.resolution.templates.iter().map(|t| (t.doc, &t.edit));
            let briefs = self.resolution.briefs.iter().map(|b| (b.doc, &b.edit));
            templates
                .chain(briefs)
                .filter_map(|(doc, edit)| Some((self.parsed.docs[doc].piece(), edit.as_ref()?)))
        };
        let in_order = decisions().is_sorted_by_key(|(piece, _)| piece);
        let checksums: Box<dyn Iterator<Item = (usize, &ChecksumEdit)>> = if in_order {
            Box::new(decisions())
        } else {
            let mut sorted: Vec<(usize, &ChecksumEdit)> = decisions().collect();
            sorted.sort_by_key(|(piece, _)| *piece);
            Box::new(sorted.into_iter())
        };
        let mut checksums = checksums.peekable();
        let mut renames: Vec<(usize, &Edit)> = self
            .versions
            .edits
            .iter()
            .map(|(doc, e)| (self.parsed.docs[*doc].piece(), e))
            .collect();
        renames.sort_by_key(|(piece, _)| *piece);
        let mut renames = renames.into_iter().peekable();
        let text = self.stream.text();
        for (index, range) in self.stream.pieces().enumerate() {
            let piece = &text[range];
            let mut piece_edits = Vec::new();
            while let Some((_, edit)) = checksums.next_if(|(p, _)| *p == index) {
                piece_edits.push(edit.edit(self.checksum_key(edit.key)));
            }
            while let Some((_, edit)) = renames.next_if(|(p, _)| *p == index) {
                piece_edits.push(edit.clone());
            }
            if piece_edits.is_empty() {
                out.write_all(piece.as_bytes())?;
            } else {
                out.write_all(edit::apply(piece, &mut piece_edits).as_bytes())?;
            }
        }
        Ok(())
    }

    /// The annotation a checksum edit writes.
    fn checksum_key(&self, key: ChecksumKey) -> &str {
        match key {
            ChecksumKey::Configured => &self.annotation_key,
            ChecksumKey::Own => OWN_CHECKSUM,
        }
    }

    /// Number of pod templates whose annotation is written or changed.
    pub fn changed(&self) -> usize {
        let templates = self.resolution.templates.iter().map(|t| &t.edit);
        let briefs = self.resolution.briefs.iter().map(|b| &b.edit);
        templates.chain(briefs).filter(|e| e.is_some()).count()
    }

    /// What the user is told about every decision, in stream order.
    pub fn notes(&self) -> impl Iterator<Item = Note> + '_ {
        let templates = self.resolution.templates.iter().flat_map(|t| t.notes());
        let briefs = self
            .resolution
            .briefs
            .iter()
            .flat_map(|b| b.notes.iter().cloned());
        templates.chain(briefs)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::manifest::manifests::Manifests;
    use crate::manifest::resolve::Outcome;

    /// Checksum (or skip reason) per `workload path`.
    fn outcomes(manifests: &Manifests, options: &Options) -> BTreeMap<String, String> {
        let yaml = manifests.render();
        let analysis = analyze(&yaml, options).expect("valid stream");
        analysis
            .resolution
            .templates
            .iter()
            .map(|t| {
                let value = match &t.outcome {
                    Outcome::Annotate { checksum, .. } => checksum.clone(),
                    Outcome::Skipped(skip) => format!("skipped: {skip}"),
                };
                (
                    format!("{} {}", t.workload, t.path).trim().to_string(),
                    value,
                )
            })
            .collect()
    }

    fn sums(manifests: &Manifests) -> BTreeMap<String, String> {
        outcomes(manifests, &Options::default())
    }

    /// The ConfigMap `app` with `a: one` and `b: two`, the object most tests hash.
    fn app_config() -> Manifests {
        Manifests::new()
            .config_map("app")
            .data("a", "one")
            .data("b", "two")
    }

    /// The Secret `creds` with `user: admin` and `pass: hunter2` in `stringData`.
    fn creds() -> Manifests {
        Manifests::new()
            .secret("creds")
            .string_data("user", "admin")
            .string_data("pass", "hunter2")
    }

    /// A Deployment mounting the whole ConfigMap `app`.
    fn whole(name: &str) -> Manifests {
        Manifests::new().deployment(name).mounts_config_map("app")
    }

    /// A Deployment reading only key `a` of the ConfigMap `app`, into `$A`.
    fn key_a(name: &str) -> Manifests {
        Manifests::new()
            .deployment(name)
            .env_config_map_key("A", "app", "a")
    }

    /// `inject` drops workloads once resolved; what it writes and decides is the same as
    /// when they are kept, and `plan` (template shapes) keeps them.
    #[test]
    fn released_workloads_change_no_decision_and_no_output() {
        let yaml = app_config()
            .append(creds())
            .append(whole("web"))
            .append(key_a("api"))
            .append(
                Manifests::new()
                    .workload("argoproj.io/v1alpha1", "Rollout", "canary")
                    .env_secret_key("PASS", "creds", "pass"),
            )
            .render();
        let written = |options: &Options| {
            let analysis = analyze(&yaml, options).expect("valid");
            let mut out = Vec::new();
            analysis.write_to(&mut out).expect("write");
            let kept = analysis
                .parsed
                .values
                .iter()
                .flatten()
                .flatten()
                .filter(|item| matches!(item, Item::Workload(_)))
                .count();
            let decisions: Vec<String> = analysis
                .resolution
                .templates
                .iter()
                .map(|t| format!("{} {} {:?} {:?}", t.workload, t.path, t.outcome, t.location))
                .collect();
            (String::from_utf8(out).expect("utf-8"), decisions, kept)
        };
        let released = written(&Options::default());
        let kept = written(&Options {
            keep_workloads: true,
            ..Options::default()
        });
        assert_eq!(released.0, kept.0);
        assert_eq!(released.1, kept.1);
        assert_eq!((released.2, kept.2), (0, 3));
        let shapes = written(&Options {
            template_shapes: true,
            ..Options::default()
        });
        assert_eq!(shapes.2, 3);
    }

    /// Everything `inject` reads of an analysis, as text: the stream written, the notes,
    /// warnings, missing references, doubts, and the error of an invalid stream.
    fn inject_view(yaml: &str, options: &Options) -> String {
        let analysis = match analyze(yaml, options) {
            Ok(analysis) => analysis,
            Err(e) => return format!("error: {e}"),
        };
        let mut out = Vec::new();
        analysis.write_to(&mut out).expect("write");
        let lines = |ds: &[Diagnostic]| ds.iter().map(|d| format!("{d}\n")).collect::<String>();
        let notes: String = analysis
            .notes()
            .map(|n| format!("{:?} {}\n", n.level, n.text))
            .collect();
        format!(
            "{}\n-- notes\n{notes}-- warnings\n{}-- missing\n{}-- doubts\n{}-- changed {}",
            String::from_utf8(out).expect("utf-8"),
            lines(&analysis.resolution.warnings),
            lines(&analysis.resolution.missing),
            lines(&analysis.parsed.doubts),
            analysis.changed(),
        )
    }

    /// `inject`'s flow (workloads read after the objects and resolved one at a time, brief
    /// decisions) writes, tells and refuses exactly what the whole-stream flow does, on
    /// streams that take each of its ways: workloads left for later, one read with the
    /// objects (flow style, no `kind:` line to look at), a Rollout with a `workloadRef`, a
    /// document left for later that turns out to be a ConfigMap, errors on both sides, a key
    /// written twice, Helm 4's filename annotation, and enough documents for threads.
    #[test]
    fn brief_decisions_change_nothing_inject_writes_or_tells() {
        let full = Options {
            notes: true,
            ..Options::default()
        };
        let brief = Options {
            brief_decisions: true,
            ..full.clone()
        };
        let flow_style = "---\n{apiVersion: apps/v1, kind: Deployment, metadata: {name: flow}, spec: {template: {spec: {containers: [{name: a, envFrom: [{configMapRef: {name: app}}]}]}}}}\n";
        // Its only `kind:` line at column 0 is inside a quoted scalar: it is a ConfigMap.
        let disguised = "---\napiVersion: v1\nmetadata: {name: late, annotations: {a: \"x\nkind: Deployment\"}}\ndata: {a: one}\n\"kind\": ConfigMap\n";
        let helm4 = Manifests::new()
            .deployment("named")
            .annotation(
                crate::manifest::stream::HELM4_FILENAME_ANNOTATION,
                "chart/templates/named.yaml",
            )
            .mounts_config_map("gone");
        let rollout = Manifests::new()
            .object("argoproj.io/v1alpha1", "Rollout", "r")
            .annotation("reconfig/secrets", "creds")
            .spec(
                "workloadRef",
                "{apiVersion: apps/v1, kind: Deployment, name: w}",
            );
        let mut many = app_config().append(creds());
        for i in 0..3000 {
            many = many
                .append(whole(&format!("w{i}")))
                .append(key_a(&format!("k{i}")));
        }
        let streams = [
            app_config().append(creds()).append(whole("web")).append(key_a("api")).render(),
            format!("{}{flow_style}", app_config().append(whole("web")).render()),
            app_config().append(creds()).append(rollout).append(whole("w")).render(),
            format!("{}{disguised}", whole("uses-late").mounts_config_map("late").render()),
            helm4.append(app_config()).append(whole("w")).render(),
            format!(
                "{}---\nkind: Deployment\nmetadata: {{name: bad\n---\nkind: ConfigMap\ndata: [\n",
                app_config().append(whole("w")).render()
            ),
            format!(
                "{}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: twice\n  name: again\nspec:\n  template:\n    spec:\n      volumes: [{{name: c, configMap: {{name: app}}}}]\n",
                app_config().render()
            ),
            whole("hook").annotation("helm.sh/hook", "pre-install").append(app_config()).render(),
            // A byte order mark before `---` starts a document the cutter does not see.
            format!(
                "{}\u{feff}{}",
                app_config().append(whole("a")).render(),
                key_a("b").render()
            ),
            many.render(),
        ];
        for yaml in &streams {
            assert_eq!(
                inject_view(yaml, &brief),
                inject_view(yaml, &full),
                "{yaml}"
            );
        }
        // The ways taken: workloads were left for later and resolved as briefs.
        let analysis = analyze(&streams[0], &brief).expect("valid");
        assert!(analysis.resolution.templates.is_empty());
        assert_eq!(analysis.resolution.briefs.len(), 2);
        assert!(inject_view(&streams[5], &brief).starts_with("error: "));
    }

    #[test]
    fn every_kind_gets_its_templates_annotated() {
        let with = |api: &str, kind: &str, path: &str| -> Manifests {
            Manifests::new()
                .workload(api, kind, "w")
                .template_at(path)
                .mounts_config_map("app")
        };
        let cases = [
            ("apps/v1", "Deployment", "spec.template"),
            ("apps/v1", "ReplicaSet", "spec.template"),
            ("apps/v1", "StatefulSet", "spec.template"),
            ("apps/v1", "DaemonSet", "spec.template"),
            ("v1", "ReplicationController", "spec.template"),
            ("v1", "PodTemplate", "template"),
            ("batch/v1", "CronJob", "spec.jobTemplate.spec.template"),
            ("argoproj.io/v1alpha1", "Rollout", "spec.template"),
            ("apps.kruise.io/v1alpha1", "CloneSet", "spec.template"),
            ("apps.kruise.io/v1beta1", "StatefulSet", "spec.template"),
            ("apps.kruise.io/v1alpha1", "DaemonSet", "spec.template"),
            ("apps.kruise.io/v1alpha1", "BroadcastJob", "spec.template"),
            (
                "apps.kruise.io/v1alpha1",
                "AdvancedCronJob",
                "spec.template.jobTemplate.spec.template",
            ),
            (
                "apps.kruise.io/v1alpha1",
                "AdvancedCronJob",
                "spec.template.broadcastJobTemplate.spec.template",
            ),
            (
                "apps.kruise.io/v1alpha1",
                "UnitedDeployment",
                "spec.template.statefulSetTemplate.spec.template",
            ),
            (
                "apps.kruise.io/v1alpha1",
                "UnitedDeployment",
                "spec.template.advancedStatefulSetTemplate.spec.template",
            ),
            (
                "apps.kruise.io/v1alpha1",
                "UnitedDeployment",
                "spec.template.cloneSetTemplate.spec.template",
            ),
            (
                "apps.kruise.io/v1alpha1",
                "UnitedDeployment",
                "spec.template.deploymentTemplate.spec.template",
            ),
            ("serving.knative.dev/v1", "Service", "spec.template"),
        ];
        for (api, kind, path) in cases {
            let yaml = app_config().append(with(api, kind, path)).render();
            let analysis = analyze(&yaml, &Options::default()).expect("valid");
            let annotated: Vec<_> = analysis
                .resolution
                .templates
                .iter()
                .filter(|t| t.edit.is_some())
                .collect();
            assert_eq!(annotated.len(), 1, "{kind} {path}:\n{yaml}");
            assert_eq!(annotated[0].path, path);
            let mut out = Vec::new();
            analysis.write_to(&mut out).expect("write");
            let out = String::from_utf8(out).expect("utf8");
            let again = analyze(&out, &Options::default()).expect("output parses");
            assert_eq!(again.changed(), 0, "{kind}: not idempotent");
        }
        // The core Service and a Job (by default) are left alone.
        let yaml = app_config()
            .append(with("v1", "Service", "spec.template"))
            .append(with("batch/v1", "Job", "spec.template"))
            .render();
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        assert_eq!(analysis.changed(), 0);
    }

    #[test]
    fn jobs_only_with_include_jobs() {
        let stream = app_config()
            .workload("batch/v1", "Job", "j")
            .mounts_config_map("app");
        assert!(sums(&stream)["Job j"].starts_with("skipped: Job pod templates are immutable"));
        let options = Options {
            rules: Rules {
                include_jobs: true,
                ..Rules::default()
            },
            ..Options::default()
        };
        assert_eq!(outcomes(&stream, &options)["Job j spec.template"].len(), 64);
    }

    #[test]
    fn hooks_and_opt_outs_are_skipped() {
        let hook = whole("h").annotation("helm.sh/hook", "pre-install");
        let skip = whole("s").annotation("reconfig/skip", "true");
        let template_skip = whole("t").template_annotation("reconfig/skip", "true");
        let out = sums(&app_config().append(hook).append(skip).append(template_skip));
        assert_eq!(
            out["Deployment h"],
            "skipped: Helm hook (pre-install): hooks are not rolled"
        );
        assert_eq!(out["Deployment s"], "skipped: opted out with reconfig/skip");
        assert_eq!(
            out["Deployment t spec.template"],
            "skipped: opted out with reconfig/skip"
        );
    }

    #[test]
    fn key_level_precision() {
        let run = |data: &[(&str, &str)]| {
            let mut config = Manifests::new().config_map("app");
            for (key, value) in data {
                config = config.data(key, value);
            }
            sums(&config.append(whole("whole")).append(key_a("key")))
        };
        let base = run(&[("a", "one"), ("b", "two")]);
        let b_changed = run(&[("a", "one"), ("b", "TWO")]);
        let a_changed = run(&[("a", "ONE"), ("b", "two")]);
        let key_added = run(&[("a", "one"), ("b", "two"), ("c", "three")]);
        assert_ne!(
            base["Deployment whole spec.template"],
            b_changed["Deployment whole spec.template"]
        );
        assert_eq!(
            base["Deployment key spec.template"],
            b_changed["Deployment key spec.template"]
        );
        assert_ne!(
            base["Deployment key spec.template"],
            a_changed["Deployment key spec.template"]
        );
        assert_ne!(
            base["Deployment whole spec.template"],
            key_added["Deployment whole spec.template"]
        );
        assert_eq!(
            base["Deployment key spec.template"],
            key_added["Deployment key spec.template"]
        );
    }

    #[test]
    fn items_select_keys_and_env_from_skips_binary_data() {
        let run = |b: &str, bin: &str| {
            let config = Manifests::new()
                .config_map("app")
                .data("a", "one")
                .data("b", b)
                .binary_data("bin", bin);
            let items = Manifests::new()
                .deployment("items")
                .mounts_config_map_items("app", &[("a", "a")]);
            let env_from = Manifests::new()
                .deployment("env")
                .env_from_config_map("app");
            sums(&config.append(items).append(env_from))
        };
        let base = run("two", "aGk=");
        let bin_changed = run("two", "aGo=");
        let b_changed = run("2", "aGk=");
        assert_eq!(
            base["Deployment items spec.template"],
            bin_changed["Deployment items spec.template"]
        );
        assert_eq!(
            base["Deployment env spec.template"],
            bin_changed["Deployment env spec.template"]
        );
        assert_eq!(
            base["Deployment items spec.template"],
            b_changed["Deployment items spec.template"]
        );
        assert_ne!(
            base["Deployment env spec.template"],
            b_changed["Deployment env spec.template"]
        );
    }

    #[test]
    fn formatting_and_metadata_do_not_change_the_checksum() {
        // Written by hand: the point is this text's shape (a comment, `data` before `metadata`,
        // flow style, keys reordered, quotes, other labels and annotations).
        let reformatted = "---\n# a comment\napiVersion: v1\nkind: ConfigMap\ndata: {b: \"two\", a: 'one'}\nmetadata:\n  name: app\n  labels: {chart: app-1.2.4}\n  annotations: {note: changed}\n";
        let a = sums(&app_config().append(whole("w")));
        let b = sums(&Manifests::new().raw(reformatted).append(whole("w")));
        assert_eq!(a, b);
    }

    #[test]
    fn secrets_hash_string_data_like_data() {
        let data = Manifests::new()
            .secret("creds")
            .data("user", "YWRtaW4=")
            .data("pass", "aHVudGVyMg==");
        let uses = || Manifests::new().deployment("w").mounts_secret("creds");
        assert_eq!(sums(&creds().append(uses())), sums(&data.append(uses())));
    }

    #[test]
    fn secret_hash_key_changes_secret_contributions_only() {
        let stream = app_config()
            .append(creds())
            .deployment("both")
            .mounts_secret("creds")
            .mounts_config_map("app")
            .append(whole("cm"));
        let keyed = Options {
            secret_key: Some(b"k1".to_vec()),
            ..Options::default()
        };
        let other_key = Options {
            secret_key: Some(b"k2".to_vec()),
            ..Options::default()
        };
        let plain = sums(&stream);
        let k1 = outcomes(&stream, &keyed);
        let k2 = outcomes(&stream, &other_key);
        assert_ne!(
            plain["Deployment both spec.template"],
            k1["Deployment both spec.template"]
        );
        assert_ne!(
            k1["Deployment both spec.template"],
            k2["Deployment both spec.template"]
        );
        assert_eq!(
            plain["Deployment cm spec.template"],
            k1["Deployment cm spec.template"]
        );
    }

    #[test]
    fn namespaces_must_match() {
        let cm_prod = || app_config().namespace("prod");
        let in_prod = || whole("w").namespace("prod");
        let no_ns = || whole("w");
        // Same explicit namespace.
        assert_eq!(
            sums(&cm_prod().append(in_prod()))["Deployment prod/w spec.template"].len(),
            64
        );
        // Different namespaces never match.
        assert!(
            sums(&cm_prod().append(no_ns()))["Deployment w spec.template"].starts_with("skipped")
        );
        // Unnamespaced objects match each other.
        assert_eq!(
            sums(&app_config().append(no_ns()))["Deployment w spec.template"].len(),
            64
        );
        // --namespace fills in for objects that name none.
        let options = Options {
            rules: Rules {
                namespace: Some("prod".into()),
                ..Rules::default()
            },
            ..Options::default()
        };
        assert_eq!(
            outcomes(&cm_prod().append(no_ns()), &options)["Deployment prod/w spec.template"].len(),
            64
        );
        assert!(
            outcomes(&app_config().append(in_prod()), &options)["Deployment prod/w spec.template"]
                .len()
                == 64
        );
    }

    #[test]
    fn missing_references() {
        let yaml = app_config()
            .deployment("opt")
            .mounts_optional_config_map("gone")
            .render();
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        assert!(analysis.resolution.missing.is_empty());
        assert_eq!(analysis.changed(), 0);
        let yaml = app_config()
            .deployment("req")
            .mounts_config_map("gone")
            .render();
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        assert_eq!(analysis.resolution.missing.len(), 1);
        let message = &analysis.resolution.missing[0].message;
        assert!(
            message.contains("Deployment req") && message.contains("ConfigMap \"gone\""),
            "{message}"
        );
    }

    #[test]
    fn declared_dependencies_and_exclusions() {
        let controller = app_config()
            .deployment("argo-rollouts")
            .annotation("reconfig/configmaps", "app");
        let out = sums(&controller);
        assert_eq!(out["Deployment argo-rollouts spec.template"].len(), 64);

        let plain = app_config().deployment("argo-rollouts");
        let options = Options {
            rules: Rules {
                depends: vec!["deployment/argo-rollouts=configmap/app"
                    .parse()
                    .expect("depend")],
                ..Rules::default()
            },
            ..Options::default()
        };
        assert_eq!(
            outcomes(&plain, &options)["Deployment argo-rollouts spec.template"],
            out["Deployment argo-rollouts spec.template"]
        );
        assert!(sums(&plain)["Deployment argo-rollouts spec.template"].starts_with("skipped"));

        let excluded = whole("hot").template_annotation("reconfig/exclude", "configmap/app");
        assert!(
            sums(&app_config().append(excluded))["Deployment hot spec.template"]
                .starts_with("skipped")
        );
    }

    #[test]
    fn rollout_with_workload_ref_annotates_its_target() {
        let rollout = || {
            Manifests::new()
                .object("argoproj.io/v1alpha1", "Rollout", "r")
                .annotation("reconfig/secrets", "creds")
                .spec(
                    "workloadRef",
                    "{apiVersion: apps/v1, kind: Deployment, name: w}",
                )
        };
        let with_ref = sums(
            &app_config()
                .append(creds())
                .append(rollout())
                .append(whole("w")),
        );
        assert_eq!(with_ref["Rollout r"], "skipped: uses spec.workloadRef, whose template must stay empty; Deployment w is annotated instead");
        let alone = sums(&app_config().append(creds()).append(whole("w")));
        assert_ne!(
            with_ref["Deployment w spec.template"], alone["Deployment w spec.template"],
            "the Rollout's declared Secret counts for its target"
        );

        let yaml = app_config().append(rollout()).render();
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        assert_eq!(analysis.changed(), 0);
        assert!(analysis.resolution.warnings[0]
            .message
            .contains("not in the stream"));
    }

    #[test]
    fn kruise_in_place_updates_are_reported() {
        let yaml = app_config()
            .workload("apps.kruise.io/v1alpha1", "CloneSet", "c")
            .spec("updateStrategy", "{type: InPlaceIfPossible}")
            .mounts_config_map("app")
            .render();
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        assert_eq!(analysis.changed(), 1);
        assert!(analysis.resolution.warnings[0]
            .message
            .contains("InPlaceIfPossible"));
    }

    #[test]
    fn custom_template_paths() {
        let custom = app_config()
            .workload("example.com/v1", "Workflow", "wf")
            .template_at("spec.podTemplate")
            .mounts_config_map("app");
        let options = Options {
            kinds: TemplateKinds::with_custom(&["Workflow.example.com=spec.podTemplate"
                .parse()
                .expect("path")]),
            ..Options::default()
        };
        assert_eq!(
            outcomes(&custom, &options)["Workflow wf spec.podTemplate"].len(),
            64
        );
        assert!(sums(&custom).is_empty());
    }

    /// The checksum is a public contract: these values must never change.
    #[test]
    fn checksums_are_pinned() {
        let mixed = Manifests::new()
            .deployment("mixed")
            .mounts_secret_items("creds", &[("pass", "p")])
            .env_from_config_map("app")
            .env_secret_key("U", "creds", "user");
        let out = sums(
            &app_config()
                .append(creds())
                .append(whole("whole"))
                .append(mixed),
        );
        insta::assert_debug_snapshot!(out);
    }
}
