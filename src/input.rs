//! Reading manifest inputs: files or stdin under a size limit, as one stream.
//!
//! `inject` and `plan` (and `check --manifests`) read renders the same way: the same
//! options, the same limit, the same exit code for input that is too large or not UTF-8,
//! and diagnostics that name the file and line a user can open, not the line of the
//! combined stream the model saw. The model itself (`manifest`) never touches a file.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::manifest::data::ObjectData;
use crate::manifest::node::Limits;
use crate::manifest::resolve::{Depend, Rules};
use crate::manifest::stream::{count_newlines, Diagnostic, StreamError, MAX_STREAM_SIZE};
use crate::manifest::workload::{TemplateKinds, TemplatePath};
use crate::manifest::{self, Analysis, Options};
use crate::units::parse_size;
use crate::Failure;

/// How a manifest stream is read and matched up; shared by `inject` and `plan`.
#[derive(Debug, clap::Args)]
pub struct ManifestArgs {
    /// Namespace of objects that set none (Helm 4 gives post-renderers none: pass
    /// --post-renderer-args=--namespace=NS).
    #[arg(short, long, env = "RECONFIG_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,

    /// Annotate Jobs too. Off by default: a Job's pod template is immutable, so `helm upgrade`
    /// fails when its checksum changes.
    #[arg(long)]
    pub include_jobs: bool,

    /// Where a custom resource keeps its pod template, e.g. `Workflow.example.com=spec.podTemplate`.
    /// Repeatable; replaces the built-in paths of a kind it names.
    #[arg(long, value_name = "KIND.GROUP=PATH")]
    pub template_path: Vec<TemplatePath>,

    /// A dependency no pod spec shows, e.g. `deployment/argo-rollouts=configmap/argo-rollouts-config`.
    /// Repeatable; the right side may list several objects separated by commas.
    #[arg(long, value_name = "KIND/NAME=KIND/NAME")]
    pub depends: Vec<Depend>,

    /// Count volumes that a known reload sidecar (reconfig watch, configmap-reload,
    /// prometheus-config-reloader, k8s-sidecar) mounts. Off: the app gets those changes without a
    /// restart, so they are left out (`reconfig/include: configmap/NAME` counts one anyway).
    #[arg(long)]
    pub include_reloaded: bool,

    /// Hash Secret values with HMAC-SHA256 under the key in this file (one trailing newline is
    /// ignored). Without it, anyone who can read a Deployment can test guesses of a short
    /// Secret value against its checksum.
    #[arg(long, env = "RECONFIG_SECRET_HASH_KEY_FILE", value_name = "FILE")]
    pub secret_hash_key_file: Option<PathBuf>,

    /// Refuse inputs larger than this (accepts KiB, MiB, GiB suffixes; at most 4GiB less one
    /// byte).
    // Keep the default equal to manifest::DEFAULT_MAX_INPUT_SIZE (a test checks).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_input_size)]
    pub max_input_size: usize,
}

/// Parses `--max-input-size`: a size as [`parse_size`] reads it, up to the largest stream
/// reconfig reads ([`MAX_STREAM_SIZE`]), since a larger limit could not be honoured.
pub fn parse_input_size(s: &str) -> Result<usize, String> {
    let size = parse_size(s)?;
    if size > MAX_STREAM_SIZE {
        return Err(format!(
            "`{s}` is over the largest manifest stream reconfig reads ({MAX_STREAM_SIZE} bytes, 4 GiB less one)"
        ));
    }
    Ok(size)
}

impl ManifestArgs {
    /// The model's options, with `annotation_key` as the annotation written on pod templates.
    pub fn options(&self, annotation_key: &str) -> Result<Options, Failure> {
        let secret_key = self
            .secret_hash_key_file
            .as_deref()
            .map(read_key)
            .transpose()?;
        Ok(Options {
            annotation_key: annotation_key.to_string(),
            rules: Rules {
                namespace: self.namespace.clone(),
                include_jobs: self.include_jobs,
                depends: self.depends.clone(),
                include_reloaded: self.include_reloaded,
            },
            secret_key,
            kinds: TemplateKinds::with_custom(&self.template_path),
            max_input_size: self.max_input_size,
            ..Options::default()
        })
    }
}

/// Why inputs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file or stdin could not be read: the environment failed, not the input.
    #[error("reading {what}")]
    Read {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{name}: input is over the {limit}-byte limit (raise it with --max-input-size)")]
    TooLarge { name: String, limit: usize },
    #[error("{name}: line {line}: input is not UTF-8 (byte {byte})")]
    NotUtf8 {
        name: String,
        line: usize,
        byte: usize,
    },
    /// The stream is invalid; its diagnostics point at file lines.
    #[error("{0}")]
    Stream(StreamError),
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Read { .. } => Failure::Internal(e.into()),
            InputError::TooLarge { .. } | InputError::NotUtf8 { .. } | InputError::Stream(_) => {
                Failure::Invalid(e.to_string())
            }
        }
    }
}

/// One input and where it starts in the combined stream, for locating diagnostics.
#[derive(Debug, Clone)]
pub struct Part {
    name: String,
    first_line: usize,
}

/// All inputs read into one stream; each file starts a new document.
#[derive(Debug, Default)]
pub struct Inputs {
    pub text: String,
    parts: Vec<Part>,
}

/// The name stdin goes by in diagnostics.
const STDIN: &str = "<stdin>";

impl Inputs {
    /// Reads `files` (`-` or none is stdin), refusing more than `limit` bytes in all.
    pub fn read(files: &[PathBuf], limit: usize) -> Result<Inputs, InputError> {
        let stdin_only = [PathBuf::from("-")];
        let files = if files.is_empty() {
            &stdin_only[..]
        } else {
            files
        };
        let mut inputs = Inputs::default();
        let mut line = 1;
        for (index, path) in files.iter().enumerate() {
            let text = &mut inputs.text;
            let (name, mut file_text) = read_one_limited(path, limit, text.len())?;
            if !text.is_empty() {
                // A byte order mark tells a file's encoding; joined on, it would sit inside a
                // document. (Columns on that file's first line count without it.)
                if file_text.starts_with('\u{feff}') {
                    file_text.drain(..'\u{feff}'.len_utf8());
                }
                if !text.ends_with('\n') {
                    text.push('\n');
                    line += 1;
                }
                if starts_with_directive(&file_text) {
                    // Directives may only follow a document end.
                    if !ends_with_document_end(text) {
                        text.push_str("...\n");
                        line += 1;
                    }
                } else if !file_text.starts_with("---") {
                    text.push_str("---\n");
                    line += 1;
                }
            }
            inputs.parts.push(Part {
                name,
                first_line: line,
            });
            // Only a file after this one needs to know where it starts: the count is a pass
            // over the whole input.
            if index + 1 < files.len() {
                line += count_newlines(file_text.as_bytes());
            }
            if text.is_empty() {
                // The first (usually only) input is taken as it is: a copy would hold the
                // input twice at the moment it is read.
                *text = file_text;
            } else {
                text.push_str(&file_text);
            }
        }
        Ok(inputs)
    }

    /// Forgets the input's name when it is stdin alone: a plain filter's diagnostics need none.
    pub fn unnamed_if_stdin_alone(mut self) -> Inputs {
        if self.parts.len() == 1 && self.parts[0].name == STDIN {
            self.parts.clear();
        }
        self
    }

    /// Rewrites stream lines as file lines when input came from files.
    pub fn relocate(&self, diagnostics: &mut [Diagnostic]) {
        for d in diagnostics {
            if let Some(part) = self
                .parts
                .iter()
                .rev()
                .find(|p| p.first_line <= d.location.line)
            {
                d.location.file = Some(part.name.clone());
                d.location.line = d.location.line - part.first_line + 1;
            }
        }
    }

    /// Analyzes the stream, pointing diagnostics at file lines.
    pub fn analyze<'a>(&'a self, options: &Options) -> Result<Analysis<'a>, InputError> {
        manifest::analyze(&self.text, options).map_err(|e| self.located(e))
    }

    /// `analyze`, with ConfigMaps and Secrets from outside the stream (`inject --lookup`).
    pub fn analyze_with<'a>(
        &'a self,
        options: &Options,
        outside: Vec<manifest::object::ConfigObject>,
    ) -> Result<Analysis<'a>, InputError> {
        manifest::analyze_with(&self.text, options, outside).map_err(|e| self.located(e))
    }

    /// Every ConfigMap and Secret of the stream with its decoded keys (`check --manifests`),
    /// diagnostics pointing at file lines.
    pub fn config_objects(&self, limits: Limits) -> Result<Vec<ObjectData>, InputError> {
        manifest::data::config_objects(&self.text, limits, usize::MAX).map_err(|e| self.located(e))
    }

    fn located(&self, e: StreamError) -> InputError {
        match e {
            StreamError::Invalid(mut diagnostics) => {
                self.relocate(&mut diagnostics);
                InputError::Stream(StreamError::Invalid(diagnostics))
            }
            e => InputError::Stream(e),
        }
    }
}

/// Whether the first line of `text` that is not blank or a comment is a directive (`%YAML`).
fn starts_with_directive(text: &str) -> bool {
    text.lines()
        .map(str::trim_start)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.starts_with('%'))
}

/// Whether the last line of `text` with content is a document end (`...`).
fn ends_with_document_end(text: &str) -> bool {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.starts_with("...") && l[3..].trim().is_empty())
}

/// The room a pipe's input starts with (the default `--max-input-size`): room the input does
/// not fill costs no memory, since its pages are never touched. Grown as it came, the buffer
/// was copied at each doubling: a 5 MiB render (kube-prometheus-stack) spent ~3 ms of ~20 on
/// it, and the 200 MiB render of `benches/memory_bench.sh`, piped, peaked at 490 MiB instead
/// of 316 with mimalloc (which copies a growing block where glibc remaps it).
const PIPE_ROOM: usize = 256 << 20;

/// Reads one input that follows `before` bytes of others; returns the name diagnostics use
/// for it, and its text.
fn read_one_limited(
    path: &Path,
    limit: usize,
    before: usize,
) -> Result<(String, String), InputError> {
    let (name, bytes) = if path.as_os_str() == "-" {
        let stdin = io::stdin();
        crate::pipe::widen(&stdin);
        let size = rustix::fs::fstat(&stdin)
            .ok()
            .filter(|stat| rustix::fs::FileType::from_raw_mode(stat.st_mode).is_file())
            .and_then(|stat| u64::try_from(stat.st_size).ok());
        let bytes = read_limited(stdin.lock(), limit, size).map_err(|source| InputError::Read {
            what: "stdin".to_string(),
            source,
        });
        (STDIN.to_string(), bytes)
    } else {
        let name = path.display().to_string();
        let bytes = std::fs::File::open(path)
            .and_then(|f| {
                let size = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
                read_limited(f, limit, size)
            })
            .map_err(|source| InputError::Read {
                what: name.clone(),
                source,
            });
        (name, bytes)
    };
    let bytes = bytes?;
    if bytes.len() > limit || before.saturating_add(bytes.len()) > limit {
        return Err(InputError::TooLarge { name, limit });
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok((name, text)),
        Err(e) => {
            let byte = e.utf8_error().valid_up_to();
            let line = 1 + count_newlines(&e.as_bytes()[..byte]);
            Err(InputError::NotUtf8 { name, line, byte })
        }
    }
}

/// Reads at most one byte more than `limit`, enough to tell that the input is over it, into a
/// buffer sized once when the input's `size` is known (a regular file, stdin redirected from
/// one) rather than grown to up to twice the input. A pipe (Helm's post-renderer stdin) tells
/// no size: the buffer starts with the room [`PIPE_ROOM`], so that inputs up to that size are
/// never copied as the buffer grows. Where the room cannot be had (a strict overcommit
/// limit), the buffer grows as the input comes.
fn read_limited(reader: impl Read, limit: usize, size: Option<u64>) -> io::Result<Vec<u8>> {
    let capacity = size.map_or(PIPE_ROOM.min(limit), |size| {
        usize::try_from(size)
            .map_or(limit, |size| size.min(limit))
            .saturating_add(1)
    });
    let mut bytes = Vec::new();
    // Failing, the read below grows the buffer instead (and fails only if the input itself
    // cannot be held).
    let _ = bytes.try_reserve_exact(capacity);
    reader
        .take((limit as u64).saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads the Secret hash key; one trailing newline (as editors add) is not part of it.
fn read_key(path: &Path) -> Result<Vec<u8>, Failure> {
    let mut key = std::fs::read(path)
        .with_context(|| format!("reading the secret hash key {}", path.display()))
        .map_err(Failure::Internal)?;
    if key.ends_with(b"\n") {
        key.pop();
        if key.ends_with(b"\r") {
            key.pop();
        }
    }
    if key.is_empty() {
        return Err(Failure::Usage(anyhow::anyhow!(
            "the secret hash key file {} is empty",
            path.display()
        )));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::stream::Location;

    fn diagnostic(line: usize) -> Diagnostic {
        Diagnostic {
            location: Location {
                file: None,
                document: 1,
                source: None,
                line,
                column: 1,
            },
            message: String::new(),
        }
    }

    #[test]
    fn the_flag_default_is_the_model_default() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            manifest: ManifestArgs,
        }
        let flags = Flags::try_parse_from(["reconfig"]).expect("defaults parse");
        assert_eq!(
            flags.manifest.max_input_size,
            manifest::DEFAULT_MAX_INPUT_SIZE
        );
    }

    #[test]
    fn diagnostics_point_at_file_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
        std::fs::write(&a, "x: 1\ny: 2").expect("write a");
        std::fs::write(&b, "z: 3\n").expect("write b");
        let inputs = Inputs::read(&[a.clone(), b.clone()], 1024).expect("read");
        assert_eq!(inputs.text, "x: 1\ny: 2\n---\nz: 3\n");
        let mut found = [diagnostic(2), diagnostic(4)];
        inputs.relocate(&mut found);
        assert_eq!(found[0].location.file, Some(a.display().to_string()));
        assert_eq!(found[0].location.line, 2);
        assert_eq!(found[1].location.file, Some(b.display().to_string()));
        assert_eq!(found[1].location.line, 1);
    }

    #[test]
    fn a_later_file_may_start_with_a_byte_order_mark_or_a_directive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        let a = file("a.yaml", "x: 1\n");
        let bom = file("bom.yaml", "\u{feff}y: 2\n");
        let directive = file("directive.yaml", "# c\n%YAML 1.1\n---\nz: 3\n");
        let ended = file("ended.yaml", "w: 0\n...\n");
        let inputs = Inputs::read(&[a, bom, directive.clone()], 1024).expect("read");
        assert_eq!(
            inputs.text,
            "x: 1\n---\ny: 2\n...\n# c\n%YAML 1.1\n---\nz: 3\n"
        );
        let mut found = [diagnostic(7)];
        inputs.relocate(&mut found);
        assert_eq!(
            found[0].location.file,
            Some(directive.display().to_string())
        );
        assert_eq!(found[0].location.line, 3);
        let inputs = Inputs::read(&[ended, directive], 1024).expect("read");
        assert_eq!(inputs.text, "w: 0\n...\n# c\n%YAML 1.1\n---\nz: 3\n");
        let parsed = crate::manifest::stream::Stream::new(&inputs.text, usize::MAX)
            .and_then(|s| s.parse(Limits::default(), |_| Ok(())))
            .expect("the joined stream parses");
        assert_eq!(parsed.values.iter().flatten().count(), 2);
    }

    #[test]
    fn over_limit_and_non_utf8_input_are_invalid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, "x: 12345\n").expect("write");
        let e = Inputs::read(std::slice::from_ref(&big), 4).expect_err("over the limit");
        assert!(matches!(Failure::from(e), Failure::Invalid(_)));
        let both = Inputs::read(&[big.clone(), big.clone()], 12).expect_err("over in all");
        assert!(matches!(both, InputError::TooLarge { .. }));
        let latin1 = dir.path().join("latin1.yaml");
        std::fs::write(&latin1, b"a: 1\nb: caf\xe9\n").expect("write");
        let e = Inputs::read(std::slice::from_ref(&latin1), 1024).expect_err("not UTF-8");
        assert_eq!(
            e.to_string(),
            format!("{}: line 2: input is not UTF-8 (byte 11)", latin1.display())
        );
        assert!(matches!(Failure::from(e), Failure::Invalid(_)));
        let missing = Inputs::read(&[dir.path().join("missing.yaml")], 1024).expect_err("missing");
        assert!(matches!(Failure::from(missing), Failure::Internal(_)));
    }
}
