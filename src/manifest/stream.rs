//! A multi-document YAML stream, cut into documents and parsed on every core.
//!
//! Cutting happens on the text (`---` lines are document markers wherever they
//! stand at column 1, and so are `...` document-end lines), so each piece parses on its
//! own thread, keeps its exact bytes for output, and only one piece's tree is in memory
//! per thread at a time.

use std::cell::RefCell;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use memchr::memmem;

use super::node::{yaml_lines, Limits, Node, Pos};
use super::parse::{check_document, parse_documents};

/// Helm 4 names a document's template with this annotation instead of a comment.
pub const HELM4_FILENAME_ANNOTATION: &str = "postrenderer.helm.sh/postrender-filename";

/// Below this size threads cost more than they save.
const PARALLEL_THRESHOLD: usize = 256 * 1024;

/// Diagnostics shown for one failing stream; the rest are counted.
pub const MAX_REPORTED: usize = 20;

/// Where something is, in the words a user needs to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Input file, when the stream was read from several.
    pub file: Option<String>,
    /// 1-based document number in the stream.
    pub document: usize,
    /// Template file name from `# Source:` or Helm 4's filename annotation.
    pub source: Option<String>,
    /// 1-based line in the whole stream.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        write!(f, "document {}", self.document)?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        write!(f, ", line {}, column {}", self.line, self.column)
    }
}

/// A problem found at a place in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub location: Location,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// A problem a document handler found, positioned inside the document.
#[derive(Debug, Clone)]
pub struct Problem {
    pub pos: Pos,
    pub message: String,
}

impl Problem {
    pub fn at(node: &Node<'_>, message: impl Into<String>) -> Self {
        Problem {
            pos: node.start,
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("input is {size} bytes, over the {limit}-byte limit (raise it with --max-input-size)")]
    TooLarge { size: usize, limit: usize },
    #[error("{}", render_diagnostics(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().take(MAX_REPORTED).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&d.to_string());
    }
    if diagnostics.len() > MAX_REPORTED {
        out.push_str(&format!(
            "\n… and {} more",
            diagnostics.len() - MAX_REPORTED
        ));
    }
    out
}

/// The largest stream reconfig reads (4 GiB less a byte): positions, lines and document
/// numbers are kept in 32 bits, for every piece and document until output.
pub const MAX_STREAM_SIZE: usize = u32::MAX as usize;

/// A position, line or count within a stream, which [`MAX_STREAM_SIZE`] keeps within 32 bits.
fn narrow(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One `---`-delimited piece of the input.
#[derive(Debug, Clone)]
struct Piece {
    start: u32,
    end: u32,
    /// 1-based stream line of the piece's first byte.
    line: u32,
    /// The piece follows a `...` line: a document in it must start with `---`.
    after_document_end: bool,
}

impl Piece {
    fn new(range: Range<usize>, line: usize, after_document_end: bool) -> Self {
        Piece {
            start: narrow(range.start),
            end: narrow(range.end),
            line: narrow(line),
            after_document_end,
        }
    }

    fn range(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    fn line(&self) -> usize {
        self.line as usize
    }
}

/// A parsed document, as a handler sees it.
pub struct Document<'a, 'n> {
    /// The text of the piece the document came from (positions are relative to it).
    pub text: &'a str,
    pub source: Option<&'n str>,
    pub root: &'n Node<'a>,
    doubts: RefCell<Vec<Problem>>,
}

impl<'a, 'n> Document<'a, 'n> {
    /// The document `root` of a piece `text` that starts at stream line `piece_line`, with
    /// its keys written twice noted already.
    fn new(text: &'a str, source: Option<&'n str>, root: &'n Node<'a>, piece_line: usize) -> Self {
        Document {
            text,
            source,
            root,
            doubts: RefCell::new(duplicate_keys(root, piece_line)),
        }
    }

    /// What was noted about the document, located in the stream by its `info`.
    fn into_doubts(self, info: &DocInfo) -> impl Iterator<Item = Diagnostic> + '_ {
        self.doubts
            .into_inner()
            .into_iter()
            .map(|problem| Diagnostic {
                location: info.at(problem.pos),
                message: problem.message,
            })
    }

    /// Notes something the API server reads differently from the text, or refuses:
    /// a warning, an error under `--strict` (see [`Parsed::doubts`]).
    pub fn doubt(&self, problem: Problem) {
        self.doubts.borrow_mut().push(problem);
    }
}

/// What the stream knows about each document once parsing is done.
#[derive(Debug, Clone)]
pub struct DocInfo {
    pub source: Option<Box<str>>,
    number: u32,
    piece: u32,
    line: u32,
}

impl DocInfo {
    /// The document's 1-based number in the stream.
    pub fn number(&self) -> usize {
        self.number as usize
    }

    /// Index of the piece holding the document: edit offsets are relative to it.
    pub fn piece(&self) -> usize {
        self.piece as usize
    }

    /// Turns a position inside the document into a stream location.
    pub fn at(&self, pos: Pos) -> Location {
        Location {
            file: None,
            document: self.number(),
            source: self.source.as_deref().map(str::to_string),
            line: self.line as usize + pos.line.saturating_sub(1),
            column: pos.column,
        }
    }
}

pub struct Stream<'a> {
    text: &'a str,
    pieces: Vec<Piece>,
}

/// What every document of a stream turned into, in stream order.
pub struct Parsed<T> {
    pub docs: Vec<DocInfo>,
    /// `values[i]` belongs to `docs[i]`; `None` for empty documents.
    pub values: Vec<Option<T>>,
    /// What the API server would read differently from the text or refuse, though the YAML
    /// is valid (a key written twice, a ConfigMap value that is not a string): warnings,
    /// errors under `--strict`.
    pub doubts: Vec<Diagnostic>,
    /// Documents [`Stream::parse_leaving`] left for [`Stream::parse_later`], by index, in
    /// order: each has its info already, and `T::default()` as its value until then.
    pub later: Vec<usize>,
}

impl<'a> Stream<'a> {
    pub fn new(text: &'a str, max_size: usize) -> Result<Self, StreamError> {
        let limit = max_size.min(MAX_STREAM_SIZE);
        if text.len() > limit {
            return Err(StreamError::TooLarge {
                size: text.len(),
                limit,
            });
        }
        Ok(Stream {
            text,
            pieces: split(text),
        })
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Byte ranges of the pieces that together make up the whole input, in order.
    pub fn pieces(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.pieces.iter().map(Piece::range)
    }

    /// Parses every document and hands its tree to `handle`, on all cores.
    ///
    /// Trees live only while `handle` runs, so memory stays near the input's size.
    /// Every failing document is reported, not only the first.
    pub fn parse<T, F>(&self, limits: Limits, handle: F) -> Result<Parsed<T>, StreamError>
    where
        T: Send,
        F: Fn(&Document<'a, '_>) -> Result<T, Problem> + Sync,
    {
        self.run(limits, None, handle)
    }

    /// Like [`Stream::parse`], but a document whose top-level `kind` fails `needs_tree` (or
    /// that has none) is only proven valid YAML, without a tree, where the fast path can: its
    /// value is `T::default()`, what `handle` must return for it. Most of a CRD-heavy render
    /// is schema no reader needs; every syntax error is still found, every doubt still raised
    /// (a document with a key written twice is parsed in full).
    pub fn parse_selected<T, N, F>(
        &self,
        limits: Limits,
        needs_tree: N,
        handle: F,
    ) -> Result<Parsed<T>, StreamError>
    where
        T: Send + Default,
        N: Fn(&str) -> bool + Sync,
        F: Fn(&Document<'a, '_>) -> Result<T, Problem> + Sync,
    {
        let skip = Skip {
            needs_tree: &needs_tree,
            later: None,
            value: &T::default,
        };
        self.run(limits, Some(skip), handle)
    }

    /// Like [`Stream::parse_selected`], but a document whose top-level `kind:` lines all name
    /// kinds that pass `later` is not read at all yet: it gets its number and info, its value
    /// is `T::default()`, and its index goes to [`Parsed::later`], for
    /// [`Stream::parse_later`] to read once what it needs is known (`inject` resolves
    /// workloads against the stream's ConfigMaps and Secrets as it reads them, and keeps none).
    ///
    /// The diagnostics come back beside the documents instead of failing the stream, so that
    /// the documents left for later are still read, and every error of the stream reported:
    /// see [`Stream::finish`].
    pub fn parse_leaving<T, N, L, F>(
        &self,
        limits: Limits,
        needs_tree: N,
        later: L,
        handle: F,
    ) -> (Parsed<T>, Vec<Diagnostic>)
    where
        T: Send + Default,
        N: Fn(&str) -> bool + Sync,
        L: Fn(&str) -> bool + Sync,
        F: Fn(&Document<'a, '_>) -> Result<T, Problem> + Sync,
    {
        let skip = Skip {
            needs_tree: &needs_tree,
            later: Some(&later),
            value: &T::default,
        };
        self.run_parts(limits, Some(skip), handle)
    }

    /// Reads the documents [`Stream::parse_leaving`] left for later (`later`, with `docs`, the
    /// infos it gave them), on all cores. `handle` gets each tree with the document's index
    /// and info, and a state of its thread's own, which `start` makes for the number of
    /// documents the thread reads; the states come back in stream order, each holding what
    /// its run of documents left in it, in order.
    pub fn parse_later<S, N, F>(
        &self,
        docs: &[DocInfo],
        later: &[usize],
        limits: Limits,
        start: N,
        handle: F,
    ) -> LaterRead<S>
    where
        S: Send,
        N: Fn(usize) -> S + Sync,
        F: Fn(&Document<'a, '_>, usize, &DocInfo, &mut S) -> Result<(), Problem> + Sync,
    {
        let size = |k: usize| {
            docs.get(later[k])
                .and_then(|info| self.pieces.get(info.piece()))
                .map_or(0, |piece| piece.range().len())
        };
        let mut parts = on_threads(later.len(), size, |range| {
            let state = start(range.len());
            self.read_later(docs, &later[range], limits, state, &handle)
        })
        .into_iter();
        let Some(mut all) = parts.next() else {
            return LaterRead::new(Vec::new());
        };
        for part in parts {
            all.states.extend(part.states);
            all.sources.extend(part.sources);
            all.empty.extend(part.empty);
            all.diagnostics.extend(part.diagnostics);
            all.doubts.extend(part.doubts);
            all.split |= part.split;
        }
        all
    }

    /// [`Stream::parse_later`] on one run of documents, on this thread.
    fn read_later<S, F>(
        &self,
        docs: &[DocInfo],
        later: &[usize],
        limits: Limits,
        mut state: S,
        handle: &F,
    ) -> LaterRead<S>
    where
        F: Fn(&Document<'a, '_>, usize, &DocInfo, &mut S) -> Result<(), Problem>,
    {
        let mut out = LaterRead::new(Vec::new());
        for &index in later {
            let found = docs
                .get(index)
                .and_then(|info| Some((info, self.pieces.get(info.piece())?)));
            let Some((info, piece)) = found else {
                out.split = true;
                continue;
            };
            let text = &self.text[piece.range()];
            let roots = match parse_documents(text, limits) {
                Ok(roots) => roots,
                Err(e) => {
                    let e = e.at_content_end(text);
                    out.diagnostics.push(Diagnostic {
                        location: info.at(e.pos),
                        message: e.message,
                    });
                    continue;
                }
            };
            // A piece left for later holds one document (no lone CR cuts it further); were
            // it ever otherwise, the numbering would be wrong: the caller reads it another way.
            let root = match roots.as_slice() {
                [Some(root)] => root,
                [None] | [] => {
                    out.empty.push(index);
                    continue;
                }
                _ => {
                    out.split = true;
                    continue;
                }
            };
            let annotated = root
                .path("metadata.annotations")
                .and_then(|a| a.get_str(HELM4_FILENAME_ANNOTATION));
            let named;
            let info = match annotated {
                Some(source) if info.source.as_deref() != Some(source) => {
                    out.sources.push((index, source.to_string()));
                    named = DocInfo {
                        source: Some(source.into()),
                        ..info.clone()
                    };
                    &named
                }
                _ => info,
            };
            let doc = Document::new(text, info.source.as_deref(), root, piece.line());
            let result = handle(&doc, index, info, &mut state);
            out.doubts.extend(doc.into_doubts(info));
            if let Err(problem) = result {
                out.diagnostics.push(Diagnostic {
                    location: info.at(problem.pos),
                    message: problem.message,
                });
            }
        }
        out.states.push(state);
        out
    }

    /// The stream's result once every document is read: its diagnostics (those of
    /// [`Stream::parse_leaving`] and of [`Stream::parse_later`]) in document order.
    pub fn finish(mut diagnostics: Vec<Diagnostic>) -> Result<(), StreamError> {
        if diagnostics.is_empty() {
            return Ok(());
        }
        diagnostics.sort_by_key(|d| d.location.document);
        Err(StreamError::Invalid(diagnostics))
    }

    fn run<T, F>(
        &self,
        limits: Limits,
        skip: Option<Skip<'_, T>>,
        handle: F,
    ) -> Result<Parsed<T>, StreamError>
    where
        T: Send,
        F: Fn(&Document<'a, '_>) -> Result<T, Problem> + Sync,
    {
        let (parsed, diagnostics) = self.run_parts(limits, skip, handle);
        Stream::finish(diagnostics).map(|()| parsed)
    }

    fn run_parts<T, F>(
        &self,
        limits: Limits,
        skip: Option<Skip<'_, T>>,
        handle: F,
    ) -> (Parsed<T>, Vec<Diagnostic>)
    where
        T: Send,
        F: Fn(&Document<'a, '_>) -> Result<T, Problem> + Sync,
    {
        let pieces = self.pieces.len();
        let parts: Vec<Part<T>> = on_threads(
            pieces,
            |i| self.pieces[i].range().len(),
            |range| {
                // The first part's lists become the stream's: room for every piece's document now
                // (room not filled costs no memory), so the others are moved in without the lists
                // being copied as they grow.
                let more = if range.start == 0 {
                    pieces - range.len()
                } else {
                    0
                };
                self.parse_range(range, more, limits, skip, &handle)
            },
        );

        // The first part's lists (with room for every piece: most hold one document each)
        // become the stream's, and the others are moved in after it, their documents
        // renumbered after those before: no list is copied whole, and none grown to twice
        // what it holds.
        let mut parts = parts.into_iter();
        let first = parts.next().unwrap_or_default();
        let rest: Vec<Part<T>> = parts.collect();
        let (mut docs, mut values) = (first.docs, first.values);
        let (mut diagnostics, mut doubts, mut later) =
            (first.diagnostics, first.doubts, first.later);
        let more: usize = rest.iter().map(|p| p.docs.len()).sum();
        docs.reserve_exact(more);
        values.reserve_exact(more);
        for part in rest {
            let before = docs.len();
            let renumber = |mut d: Diagnostic| {
                d.location.document += before;
                d
            };
            docs.extend(part.docs.into_iter().map(|mut info| {
                info.number += narrow(before);
                info
            }));
            values.extend(part.values);
            diagnostics.extend(part.diagnostics.into_iter().map(renumber));
            doubts.extend(part.doubts.into_iter().map(renumber));
            later.extend(part.later.into_iter().map(|index| index + before));
        }
        let parsed = Parsed {
            docs,
            values,
            doubts,
            later,
        };
        (parsed, diagnostics)
    }

    /// Parses the pieces in `range`, numbering their documents from 1, into lists with room
    /// for `more` documents after them.
    fn parse_range<T, F>(
        &self,
        range: Range<usize>,
        more: usize,
        limits: Limits,
        skip: Option<Skip<'_, T>>,
        handle: &F,
    ) -> Part<T>
    where
        F: Fn(&Document<'a, '_>) -> Result<T, Problem>,
    {
        let mut part = Part::default();
        // One document a piece, but for the rare piece a lone CR cuts further.
        part.docs.reserve_exact(range.len() + more);
        part.values.reserve_exact(range.len() + more);
        for piece_index in range {
            let piece = &self.pieces[piece_index];
            let text = &self.text[piece.range()];
            let comment_source = source_comment(text);
            // A piece holds more than one document only when a lone CR ends its lines (the
            // cutter cuts at `\n`): look for a `...` inside it too.
            let lone_cr = has_lone_cr(text);
            if piece.after_document_end || lone_cr {
                if let Some(problem) = bare_document(text, piece.after_document_end, lone_cr) {
                    part.fail(piece_index, piece, problem, comment_source);
                    continue;
                }
            }
            if piece.after_document_end {
                // Only more `...` lines (and comments): go-yaml reads no document there.
                if only_document_ends(text) {
                    continue;
                }
            }
            if let Some(skip) = skip {
                // A lone CR, or a byte order mark before a `---` (which starts a document
                // wherever a line starts with it), can put more documents in one piece than
                // the cutter sees: such a piece is read now, when its documents are numbered.
                match skip.route(text, limits) {
                    Route::Later if !lone_cr && !text.contains('\u{feff}') => {
                        let info = part.next_info(piece_index, piece, comment_source);
                        part.later.push(part.docs.len());
                        part.docs.push(info);
                        part.values.push(Some((skip.value)()));
                        continue;
                    }
                    Route::Valid => {
                        let info = part.next_info(piece_index, piece, comment_source);
                        part.docs.push(info);
                        part.values.push(Some((skip.value)()));
                        continue;
                    }
                    Route::Later | Route::Parse => {}
                }
            }
            let roots = match parse_documents(text, limits) {
                Ok(roots) => roots,
                Err(e) => {
                    let e = e.at_content_end(text);
                    let problem = Problem {
                        pos: e.pos,
                        message: e.message,
                    };
                    part.fail(piece_index, piece, problem, comment_source);
                    continue;
                }
            };
            for (i, root) in roots.iter().enumerate() {
                let annotated = root.as_ref().and_then(|r| {
                    r.path("metadata.annotations")
                        .and_then(|a| a.get_str(HELM4_FILENAME_ANNOTATION))
                });
                let source = annotated.or(if i == 0 { comment_source } else { None });
                let info = part.next_info(piece_index, piece, source);
                let Some(root) = root else {
                    part.docs.push(info);
                    part.values.push(None);
                    continue;
                };
                let doc = Document::new(text, source, root, piece.line());
                let value = handle(&doc);
                part.doubts.extend(doc.into_doubts(&info));
                match value {
                    Ok(value) => part.values.push(Some(value)),
                    Err(problem) => {
                        part.diagnostics.push(Diagnostic {
                            location: info.at(problem.pos),
                            message: problem.message,
                        });
                        part.values.push(None);
                    }
                }
                part.docs.push(info);
            }
        }
        part
    }
}

/// What one thread made of its run of pieces: documents numbered from 1 within it.
struct Part<T> {
    docs: Vec<DocInfo>,
    values: Vec<Option<T>>,
    diagnostics: Vec<Diagnostic>,
    doubts: Vec<Diagnostic>,
    /// Indexes into `docs` of the documents left for later.
    later: Vec<usize>,
}

impl<T> Default for Part<T> {
    fn default() -> Self {
        Part {
            docs: Vec::new(),
            values: Vec::new(),
            diagnostics: Vec::new(),
            doubts: Vec::new(),
            later: Vec::new(),
        }
    }
}

impl<T> Part<T> {
    /// The next document's info, from the piece that holds it.
    fn next_info(&self, piece_index: usize, piece: &Piece, source: Option<&str>) -> DocInfo {
        DocInfo {
            number: narrow(self.docs.len() + 1),
            source: source.map(Box::from),
            piece: narrow(piece_index),
            line: piece.line,
        }
    }

    /// A piece that failed as a whole: one document, with no value and the problem.
    fn fail(&mut self, piece_index: usize, piece: &Piece, problem: Problem, source: Option<&str>) {
        let info = self.next_info(piece_index, piece, source);
        self.diagnostics.push(Diagnostic {
            location: info.at(problem.pos),
            message: problem.message,
        });
        self.docs.push(info);
        self.values.push(None);
    }
}

impl<T> Parsed<T> {
    /// The document and value pairs that are present.
    pub fn iter(&self) -> impl Iterator<Item = (&DocInfo, &T)> {
        self.docs
            .iter()
            .zip(&self.values)
            .filter_map(|(d, v)| v.as_ref().map(|v| (d, v)))
    }
}

/// What [`Stream::parse_later`] made of the documents left for later.
pub struct LaterRead<S> {
    /// Each thread's state, in stream order.
    pub states: Vec<S>,
    /// Documents whose source Helm 4's filename annotation names (index, source): only
    /// the tree has it, and the document's info had the `# Source:` comment's until now.
    pub sources: Vec<(usize, String)>,
    /// Documents that turned out to hold nothing (only comments).
    pub empty: Vec<usize>,
    pub diagnostics: Vec<Diagnostic>,
    pub doubts: Vec<Diagnostic>,
    /// A piece left for later held more than one document, which [`Stream::parse_leaving`]
    /// never leaves: the caller must not trust the states, and read the stream another way.
    pub split: bool,
}

impl<S> LaterRead<S> {
    fn new(states: Vec<S>) -> Self {
        LaterRead {
            states,
            sources: Vec::new(),
            empty: Vec::new(),
            diagnostics: Vec::new(),
            doubts: Vec::new(),
            split: false,
        }
    }
}

/// Which documents [`Stream::parse_selected`] proves valid without a tree, and their value;
/// with `later`, which it leaves for [`Stream::parse_later`].
struct Skip<'s, T> {
    needs_tree: &'s (dyn Fn(&str) -> bool + Sync),
    later: Option<&'s (dyn Fn(&str) -> bool + Sync)>,
    value: &'s (dyn Fn() -> T + Sync),
}

impl<T> Clone for Skip<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Skip<'_, T> {}

/// The values of a piece's top-level `kind:` lines (those at column 0), unquoted: a cheap
/// look at what a document is before reading it. Only a guess: the tree has the last word.
fn top_level_kinds(text: &str) -> impl Iterator<Item = &str> {
    static KIND: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new("kind:"));
    KIND.find_iter(text.as_bytes())
        .filter(|at| *at == 0 || text.as_bytes()[at - 1] == b'\n')
        .map(|at| {
            let rest = &text[at + 5..];
            let value = rest[..rest.find('\n').unwrap_or(rest.len())].trim();
            value.trim_matches(['"', '\''])
        })
}

/// What becomes of a piece that may skip the full parser ([`Skip::route`]).
enum Route {
    /// Left for later ([`Stream::parse_later`]).
    Later,
    /// One valid document that needs no tree.
    Valid,
    /// Parsed now, in full.
    Parse,
}

impl<T> Skip<'_, T> {
    /// Where the piece `text` goes. It is left for later when it names kinds, and only kinds
    /// `later` takes: whatever its tree turns out to hold, [`Stream::parse_later`] reads it in
    /// full. It needs no tree when it names no kind that needs one (a cheap look at its
    /// top-level `kind:` lines, so that documents which do need their tree are not read twice),
    /// holds no Helm 4 filename annotation (read from the tree), and proves to be one valid
    /// document whose `kind` needs no tree.
    fn route(&self, text: &str, limits: Limits) -> Route {
        let (mut named, mut all_later, mut needs_tree) = (false, true, false);
        for kind in top_level_kinds(text) {
            named = true;
            all_later &= self.later.is_some_and(|later| later(kind));
            needs_tree |= (self.needs_tree)(kind);
        }
        if named && all_later {
            return Route::Later;
        }
        if needs_tree {
            return Route::Parse;
        }
        static HELM4: LazyLock<memmem::Finder<'static>> =
            LazyLock::new(|| memmem::Finder::new(HELM4_FILENAME_ANNOTATION));
        if HELM4.find(text.as_bytes()).is_some() {
            return Route::Parse;
        }
        match check_document(text, limits) {
            Some(Some(kind)) if (self.needs_tree)(&kind) => Route::Parse,
            Some(_) => Route::Valid,
            None => Route::Parse,
        }
    }
}

/// Keys written twice: the API server keeps the last one, and so does every reader here.
fn duplicate_keys(root: &Node<'_>, piece_line: usize) -> Vec<Problem> {
    root.duplicate_keys()
        .into_iter()
        .map(|(first, last)| {
            let line = |node: &Node<'_>| piece_line + node.start.line.saturating_sub(1);
            Problem::at(
                last,
                format!(
                    "key \"{}\" is written twice in one mapping (lines {} and {}): the API server keeps the last one, and so does reconfig",
                    last.as_str().unwrap_or("?"),
                    line(first),
                    line(last)
                ),
            )
        })
        .collect()
}

/// A document after a `...` line that does not start with `---`; `after_end` when `text`
/// itself follows one, `lone_cr` when a lone CR ends one of its lines ([`has_lone_cr`]).
///
/// YAML allows it (and the parser alone, which `watch` uses on app configs, accepts it), but
/// go-yaml refuses it, and Helm and kubectl, which cut at `---` lines, silently read only the
/// document before the `...`: for a manifest stream, refusing it is the only reading that
/// agrees with what reaches the cluster.
fn bare_document(text: &str, after_end: bool, lone_cr: bool) -> Option<Problem> {
    let mut after_end = after_end;
    let mut offset = 0;
    for (index, line) in yaml_lines(text).enumerate() {
        let content = line.trim_start();
        if is_marker(line.as_bytes(), b"...") {
            after_end = true;
        } else if is_marker(line.as_bytes(), b"---") {
            // Cut at `\n`, a piece has no `...` line after its `---`: the rest need not be read.
            if !lone_cr {
                return None;
            }
            after_end = false;
        } else if after_end
            && !(content.trim_end().is_empty() || content.starts_with('#') || line.starts_with('%'))
        {
            return Some(Problem {
                pos: Pos {
                    offset,
                    line: index + 1,
                    column: 1,
                },
                message: "a document after a `...` line must start with a `---` line: go-yaml refuses it, and Helm and kubectl would silently drop it".into(),
            });
        }
        offset += line.len();
    }
    None
}

/// Whether a CR that no LF follows ends a line of `text`: YAML, go-yaml and saphyr take it for
/// a line break, which the cutter (at `\n`) does not see.
fn has_lone_cr(text: &str) -> bool {
    text.match_indices('\r')
        .any(|(i, _)| text.as_bytes().get(i + 1) != Some(&b'\n'))
}

/// Whether `text` holds nothing but `...` lines, comments and blank lines (a tab is not
/// blank to go-yaml there: such a piece goes to the parser, which refuses it).
fn only_document_ends(text: &str) -> bool {
    text.lines().all(|line| {
        let content = line.trim_start_matches(' ');
        content.is_empty() || content.starts_with('#') || is_marker(line.as_bytes(), b"...")
    })
}

/// Whether `line` starts with the document marker `marker` (`---` or `...`) standing alone.
fn is_marker(line: &[u8], marker: &[u8]) -> bool {
    line.starts_with(marker)
        && matches!(
            line.get(marker.len()),
            None | Some(b'\n' | b'\r' | b' ' | b'\t')
        )
}

/// Cuts the text before every line that is a document marker (`---` alone or followed by a
/// space), and after every document-end line (`...`).
///
/// A piece holding only directives and comments is joined to the next one, so
/// `%YAML 1.2` stays with the document it belongs to.
fn split(text: &str) -> Vec<Piece> {
    let bytes = text.as_bytes();
    // Line starts that may hold a marker, found with the standard library's fast search.
    let candidates = |marker: &'static str| {
        let first = text.starts_with(&marker[1..]).then_some(0);
        first
            .into_iter()
            .chain(memchr::memmem::find_iter(bytes, marker.as_bytes()).map(|found| found + 1))
    };
    let mut dashes = candidates("\n---")
        .filter(|&at| at > 0 && is_marker(&bytes[at..], b"---"))
        .map(|at| (at, false))
        .peekable();
    let mut dots = candidates("\n...")
        .filter(|&at| is_marker(&bytes[at..], b"..."))
        .filter_map(|at| {
            let end = bytes[at..].iter().position(|&b| b == b'\n')? + at + 1;
            (end < bytes.len()).then_some((end, true))
        })
        .peekable();
    // Cuts in stream order: both searches find theirs in order, so they are merged as they
    // come, not gathered and sorted (for a stream of many small documents, two lists of
    // megabytes made and dropped before the pieces).
    let cuts = std::iter::from_fn(move || match (dashes.peek(), dots.peek()) {
        (Some(dash), Some(dot)) if dash <= dot => dashes.next(),
        (Some(_), None) => dashes.next(),
        _ => dots.next(),
    });
    // Piece starts, each with whether it follows a `...` line; a `---` right after a `...`
    // line makes one cut, still after a document end.
    let mut cuts = std::iter::once((0, false)).chain(cuts).peekable();
    let mut next_start = move || {
        let (at, mut after_document_end) = cuts.next()?;
        while let Some((_, after)) = cuts.next_if(|&(next, _)| next == at) {
            after_document_end |= after;
        }
        Some((at, after_document_end))
    };
    let mut pieces: Vec<Piece> = Vec::new();
    let mut line = 1;
    let mut pending: Option<(usize, bool)> = None;
    let mut current = next_start();
    while let Some((start, after_document_end)) = current {
        let following = next_start();
        let end = following.map_or(text.len(), |(s, _)| s);
        current = following;
        let (begin, after_document_end) = pending.take().unwrap_or((start, after_document_end));
        let piece = &text[begin..end];
        if end < text.len() && only_directives(piece) {
            pending = Some((begin, after_document_end));
            continue;
        }
        pieces.push(Piece::new(begin..end, line, after_document_end));
        line += count_newlines(piece.as_bytes());
    }
    pieces.shrink_to_fit();
    pieces
}

fn only_directives(piece: &str) -> bool {
    // Nearly no piece has a directive: one substring search says so without a walk by line.
    let after_newline = |at: usize| at > 0 && piece.as_bytes()[at - 1] == b'\n';
    if !(piece.starts_with('%') || memchr::memchr_iter(b'%', piece.as_bytes()).any(after_newline)) {
        return false;
    }
    piece.lines().any(|l| l.starts_with('%'))
        && piece.lines().all(|l| {
            let l = l.trim_start();
            l.is_empty() || l.starts_with('%') || l.starts_with('#')
        })
}

/// Newlines in `bytes`: how many lines down a position moves past them.
pub fn count_newlines(bytes: &[u8]) -> usize {
    // Counted in blocks of 128 into a byte, which the compiler turns into vector compares:
    // a plain `filter().count()` runs at a fifth of the speed on a render of megabytes.
    let blocks = bytes.chunks_exact(128);
    let rest = blocks.remainder();
    let in_blocks: usize = blocks
        .map(|block| block.iter().map(|&b| u8::from(b == b'\n')).sum::<u8>() as usize)
        .sum();
    in_blocks + rest.iter().filter(|&&b| b == b'\n').count()
}

/// Helm 3's `# Source: chart/templates/x.yaml` comment right after the marker.
fn source_comment(text: &str) -> Option<&str> {
    text.lines()
        .skip_while(|l| l.starts_with("---"))
        .take_while(|l| l.trim().is_empty() || l.starts_with('#'))
        .find_map(|l| l.strip_prefix("# Source: "))
        .map(str::trim_end)
}

/// Groups of pieces a thread reads, when a stream is read on several: more groups than
/// threads, each taken by whichever thread is free, so that one large document (a CRD of a
/// megabyte) does not leave a thread with most of the stream while the others wait.
const GROUPS_PER_THREAD: usize = 4;

/// Runs `run` on `count` pieces (or documents), `size(i)` bytes each, split into contiguous
/// groups of about equal bytes, on every core when they are many bytes; the results in order.
///
/// The first group is read on this thread, first: what it keeps is then in the allocator's
/// memory of the thread that later resolves and writes, which can reuse what the parse freed
/// (glibc gives each thread an arena of its own).
fn on_threads<R: Send>(
    count: usize,
    size: impl Fn(usize) -> usize,
    run: impl Fn(Range<usize>) -> R + Sync,
) -> Vec<R> {
    let total: usize = (0..count).map(&size).sum();
    // Asked once a run: the answer reads the cgroup's CPU limit, a dozen system calls.
    static CORES: LazyLock<usize> =
        LazyLock::new(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)));
    let threads = if total < PARALLEL_THRESHOLD {
        1
    } else {
        *CORES
    };
    if threads == 1 {
        return vec![run(0..count)];
    }
    let groups = balance(count, size, threads * GROUPS_PER_THREAD);
    let next = AtomicUsize::new(1);
    // Takes groups until none is left; each result with its group's index.
    let take = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(range) = groups.get(index) else {
                return done;
            };
            done.push((index, run(range.clone())));
        }
    };
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let take = &take;
        let workers: Vec<_> = (1..threads).map(|_| scope.spawn(take)).collect();
        let first = groups.first().cloned().unwrap_or(0..0);
        let mut results = vec![(0, run(first))];
        results.extend(take());
        for worker in workers {
            let done = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            results.extend(done);
        }
        results
    });
    results.sort_unstable_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

/// Splits `count` pieces (or documents), `size(i)` bytes each, into `n` contiguous groups of
/// about equal bytes.
fn balance(count: usize, size: impl Fn(usize) -> usize, n: usize) -> Vec<Range<usize>> {
    let total: usize = (0..count).map(&size).sum();
    let target = total.div_ceil(n.max(1));
    let mut groups = Vec::with_capacity(n);
    let mut start = 0;
    let mut acc = 0;
    for i in 0..count {
        acc += size(i);
        if acc >= target && groups.len() + 1 < n {
            groups.push(start..i + 1);
            start = i + 1;
            acc = 0;
        }
    }
    if start < count || groups.is_empty() {
        groups.push(start..count);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece_texts(text: &str) -> Vec<&str> {
        split(text).iter().map(|c| &text[c.range()]).collect()
    }

    #[test]
    fn counts_newlines_across_block_edges() {
        for len in [0, 1, 127, 128, 129, 255, 256, 300, 1000] {
            for every in [1, 2, 7, 128] {
                let bytes: Vec<u8> = (0..len)
                    .map(|i| if i % every == 0 { b'\n' } else { b'x' })
                    .collect();
                let naive = bytes.iter().filter(|&&b| b == b'\n').count();
                assert_eq!(count_newlines(&bytes), naive, "len {len}, every {every}");
            }
        }
    }

    #[test]
    fn splits_on_markers_only() {
        let text = "---\na: 1\n---\nb: |\n  ---x\n----\n--- \nc: 1\n";
        assert_eq!(
            piece_texts(text),
            vec!["---\na: 1\n", "---\nb: |\n  ---x\n----\n", "--- \nc: 1\n"]
        );
    }

    #[test]
    fn keeps_leading_content_and_directives() {
        assert_eq!(
            piece_texts("a: 1\n---\nb: 2\n"),
            vec!["a: 1\n", "---\nb: 2\n"]
        );
        assert_eq!(
            piece_texts("%YAML 1.2\n---\nb: 2\n"),
            vec!["%YAML 1.2\n---\nb: 2\n"]
        );
    }

    #[test]
    fn lines_are_stream_lines() {
        let pieces = split("---\na: 1\n---\n# Source: x.yaml\nb: [\n");
        assert_eq!(
            pieces.iter().map(|c| c.line).collect::<Vec<_>>(),
            vec![1, 3]
        );
        let stream =
            Stream::new("---\na: 1\n---\n# Source: x.yaml\nb: [\n", usize::MAX).expect("size");
        let Err(StreamError::Invalid(diags)) = stream.parse(Limits::default(), |_| Ok(())) else {
            panic!("expected a syntax error");
        };
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].location.document, 2);
        assert_eq!(diags[0].location.source.as_deref(), Some("x.yaml"));
        assert_eq!((diags[0].location.line, diags[0].location.column), (5, 5));
        assert!(
            diags[0].message.ends_with("(the text ends first)"),
            "{}",
            diags[0].message
        );
    }

    #[test]
    fn reads_helm4_filename_annotation() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  annotations:\n    postrenderer.helm.sh/postrender-filename: 'c/templates/cm.yaml'\n";
        let stream = Stream::new(text, usize::MAX).expect("size");
        let parsed = stream.parse(Limits::default(), |_| Ok(())).expect("valid");
        assert_eq!(
            parsed.docs[0].source.as_deref(),
            Some("c/templates/cm.yaml")
        );
    }

    /// What `parse` makes of a stream, in a form two runs can be compared by: per document,
    /// its number, source and whether the handler saw it; the doubts; the errors.
    fn outcome(stream: &Stream<'_>, selected: bool) -> String {
        let needs_tree = |kind: &str| kind == "ConfigMap";
        let handle = |doc: &Document<'_, '_>| Ok(doc.root.get_str("kind").map(str::to_string));
        let parsed = if selected {
            stream.parse_selected(Limits::default(), needs_tree, handle)
        } else {
            stream.parse(Limits::default(), handle)
        };
        match parsed {
            Err(e) => format!("error: {e}"),
            Ok(parsed) => {
                let docs: Vec<String> = parsed
                    .docs
                    .iter()
                    .zip(&parsed.values)
                    .map(|(d, v)| {
                        // A skipped document's value is the default; the handler's is its kind,
                        // and only a ConfigMap's is kept: what the needs_tree above promises.
                        let seen = v.as_ref().map(|k| k.as_deref() == Some("ConfigMap"));
                        format!("{} {:?} {:?}", d.number, d.source, seen)
                    })
                    .collect();
                let doubts: Vec<String> = parsed.doubts.iter().map(|d| d.to_string()).collect();
                format!("{docs:?} {doubts:?}")
            }
        }
    }

    /// Documents proven valid without a tree come out as the tree would have them: the same
    /// syntax errors, doubts, numbers and sources.
    #[test]
    fn selected_parsing_loses_no_error_and_no_doubt() {
        let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: x\nspec:\n  d: |-\n    text\n";
        let cases = [
            format!("---\n# Source: c/crd.yaml\n{crd}---\napiVersion: v1\nkind: ConfigMap\ndata: {{a: b}}\n"),
            format!("{crd}  bad: [\n"),
            format!("{crd}spec: again\n"),
            format!("{crd}metadata:\n  name: y\n  name: z\n"),
            format!("{crd}x: {{a: 1, a: 2}}\n"),
            format!("{crd}kind: ConfigMap\n"),
            format!("{crd}  e: \"\\q\"\n"),
            format!("{crd}\t\n"),
            format!("{crd}---\nkind: \"ConfigMap\"\ndata:\n  k: v\n"),
            "kind: Service\nmetadata:\n  annotations:\n    postrenderer.helm.sh/postrender-filename: s.yaml\n".to_string(),
            "kind: Service\n...\nkind: Service\n".to_string(),
            "- kind: Service\n".to_string(),
            "kind: Service\nspec: &a {x: 1}\nother: *a\n".to_string(),
        ];
        for text in &cases {
            let stream = Stream::new(text, usize::MAX).expect("size");
            assert_eq!(outcome(&stream, true), outcome(&stream, false), "{text}");
        }
    }

    /// Above the parallel threshold each thread numbers its own documents: the stream's
    /// numbers, lines, doubts and errors are what one thread would give.
    #[test]
    fn parallel_parts_number_documents_as_one_stream() {
        let one = "---\n# Source: c/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n";
        let count = PARALLEL_THRESHOLD / one.len() * 3;
        let mut text = one.repeat(count);
        text.push_str("---\nkind: ConfigMap\ndata: {a: 1, a: 2}\n");
        let doubt_doc = count + 1;
        text.push_str(&one.repeat(count));
        let stream = Stream::new(&text, usize::MAX).expect("size");
        assert!(text.len() > 2 * PARALLEL_THRESHOLD);
        let handle = |_: &Document<'_, '_>| Ok(());
        let parsed = stream.parse(Limits::default(), handle).expect("valid");
        assert_eq!(parsed.docs.len(), 2 * count + 1);
        for (i, info) in parsed.docs.iter().enumerate() {
            assert_eq!(info.number(), i + 1);
        }
        let [doubt] = parsed.doubts.as_slice() else {
            panic!("{:?}", parsed.doubts);
        };
        assert_eq!(doubt.location.document, doubt_doc);
        assert_eq!(doubt.location.line, count * 8 + 3);
        assert_eq!(
            parsed.docs.last().map(|d| d.source.as_deref()),
            Some(Some("c/cm.yaml"))
        );

        // Errors in both halves, each named by its stream document and line.
        let mut bad = one.repeat(count);
        bad.push_str("---\nkind: X\n  bad: [\n");
        bad.push_str(&one.repeat(count));
        bad.push_str("---\nkind: Y\n  bad: [\n");
        let stream = Stream::new(&bad, usize::MAX).expect("size");
        let Err(StreamError::Invalid(diagnostics)) = stream.parse(Limits::default(), handle) else {
            panic!("invalid stream accepted");
        };
        let at: Vec<(usize, usize)> = diagnostics
            .iter()
            .map(|d| (d.location.document, d.location.line))
            .collect();
        assert_eq!(
            at,
            [(count + 1, count * 8 + 3), (2 * count + 2, count * 16 + 6)]
        );
    }

    #[test]
    fn balances_groups() {
        let pieces: Vec<Piece> = (0..10)
            .map(|i| Piece::new(i * 10..(i + 1) * 10, 1, false))
            .collect();
        let size = |i: usize| pieces[i].range().len();
        assert_eq!(balance(pieces.len(), size, 2), vec![0..5, 5..10]);
        assert_eq!(balance(1, size, 2), vec![0..1]);
    }

    #[test]
    fn refuses_oversized_input() {
        assert!(matches!(
            Stream::new("a: 1\n", 3),
            Err(StreamError::TooLarge { .. })
        ));
    }
}

#[cfg(test)]
mod document_end_tests {
    use super::*;

    fn piece_texts(text: &str) -> Vec<(&str, bool)> {
        split(text)
            .iter()
            .map(|c| (&text[c.range()], c.after_document_end))
            .collect()
    }

    #[test]
    fn cuts_after_document_end_lines() {
        assert_eq!(
            piece_texts("a: 1\n...\n---\nb: 2\n...\n"),
            vec![("a: 1\n...\n", false), ("---\nb: 2\n...\n", true)]
        );
        assert_eq!(
            piece_texts("a: 1\n...\n%YAML 1.1\n---\nb: 2\n"),
            vec![("a: 1\n...\n", false), ("%YAML 1.1\n---\nb: 2\n", true)]
        );
        assert_eq!(
            piece_texts("a: |\n  ...\nb: ....\n"),
            vec![("a: |\n  ...\nb: ....\n", false)]
        );
    }

    #[test]
    fn a_bare_document_after_document_end_is_refused() {
        let stream = Stream::new("a: 1\n...\n# note\nb: 2\n", usize::MAX).expect("size");
        let Err(StreamError::Invalid(diags)) = stream.parse(Limits::default(), |_| Ok(())) else {
            panic!("expected an error");
        };
        assert_eq!(diags.len(), 1);
        assert_eq!((diags[0].location.line, diags[0].location.column), (4, 1));
        assert!(diags[0].message.contains("`---`"), "{}", diags[0].message);
        // With `---`, or with only comments after the `...`, it is fine.
        for ok in ["a: 1\n...\n# note\n---\nb: 2\n", "a: 1\n...\n# the end\n"] {
            let stream = Stream::new(ok, usize::MAX).expect("size");
            let parsed = stream.parse(Limits::default(), |_| Ok(())).expect(ok);
            assert_eq!(
                parsed.values.iter().flatten().count(),
                ok.matches(": ").count()
            );
        }
    }

    /// A lone CR ends a line (go-yaml, saphyr), so a stream of CR-ended lines is one piece to
    /// the cutter: a `...` inside it is found all the same (go-yaml refused `a: 1\r...\rb: 2\r`,
    /// reconfig read two documents; found probing lone CRs after a fuzz finding).
    #[test]
    fn a_bare_document_after_a_cr_ended_document_end_is_refused() {
        for bad in [
            "a: 1\r...\rb: 2\r",
            "a: 1\r...\r# c\r\rb: 2\r",
            "a: 1\r---\rb: 2\r...\rc: 3",
            "a: 1\n...\n---\rb: 1\r...\rc: 3\r",
        ] {
            let stream = Stream::new(bad, usize::MAX).expect("size");
            let Err(StreamError::Invalid(diags)) = stream.parse(Limits::default(), |_| Ok(()))
            else {
                panic!("expected an error: {bad:?}");
            };
            assert!(diags[0].message.contains("`---`"), "{bad:?}: {diags:?}");
        }
        for ok in [
            "a: 1\r---\rb: 2\r",
            "a: 1\r...\r---\rb: 2\r...\r",
            "a: 1\r...\r# c\r%YAML 1.1\r---\rb: 2\r",
            "a: 1\r\nb: |\r\n  ...x\r\n",
        ] {
            let stream = Stream::new(ok, usize::MAX).expect("size");
            let parsed = stream.parse(Limits::default(), |_| Ok(())).expect(ok);
            assert_eq!(
                parsed.values.iter().flatten().count(),
                ok.matches("---").count() + 1,
                "{ok:?}"
            );
        }
    }

    #[test]
    fn duplicate_keys_are_doubts_naming_both_lines() {
        let text = "---\na: 1\n---\nb: 1\nc: 2\nb: 3\n";
        let stream = Stream::new(text, usize::MAX).expect("size");
        let parsed = stream.parse(Limits::default(), |_| Ok(())).expect("valid");
        assert_eq!(parsed.doubts.len(), 1);
        let d = &parsed.doubts[0];
        assert_eq!((d.location.document, d.location.line), (2, 6));
        assert!(d.message.contains("lines 4 and 6"), "{}", d.message);
    }
}
