//! `reconfig check`: the sidecar's validation as a CI step, on folders or on rendered manifests.
//!
//! Wiring and output: `config` reads folders and `validate` gives every verdict; here the
//! ConfigMaps and Secrets of `--manifests` become `ConfigFile`s, and the problems are printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::io::Write as _;

use anyhow::Context as _;
use tracing::{debug, error, info, warn};

use super::ci::{workflow_command, Level, Place};
use super::validation::{object_folder, ValidationArgs};
use crate::config::read::Snapshot;
use crate::config::stage::Staged;
use crate::config::{self, ConfigFile};
use crate::input::{parse_input_size, Inputs};
use crate::manifest::data::ObjectData;
use crate::manifest::node::Limits;
use crate::manifest::object::ConfigKind;
use crate::policy::{Commands, Identity, Policy, Severity, Subject};
use crate::validate::{Invalid, ValidateCommand};
use crate::Failure;

const EXAMPLES: &str = "\
Examples:
  # The same checks the sidecar runs, on the files in the repository
  reconfig check --validate-cmd 'promtool check config {dir}/prometheus.yml' \\
      deploy/prometheus/

  # Every ConfigMap key of a rendered chart; a schema for one key, and one
  # for a whole ConfigMap
  helm template app ./chart | reconfig check --manifests - \\
      --schema config.yaml=schemas/config.json \\
      --schema configmap/argo-rollouts-config=schemas/rollouts.json

In --manifests mode each ConfigMap and Secret key is checked as a file named after the key
(parsed by its extension, or --format), shown as configmap/NAME/KEY; --schema configmap/NAME=…
checks the ConfigMap's whole data object. --validate-cmd runs once per ConfigMap or Secret,
{dir} holding that object's keys; objects without a file the command names as {dir}/NAME are
skipped. A validator's output about a Secret is printed only with --show-secret-values.

With --policy FILE, each ConfigMap and Secret (and each folder written configmap/NAME=PATH or
secret/NAME=PATH) is judged by the rules that select it, exactly as `reconfig admit` and
`reconfig watch --policy` judge it; warn rules print warnings and do not fail the check:
  reconfig check --policy policy.yaml configmap/app=deploy/app/
  helm template app ./chart |
      reconfig check --policy policy.yaml --manifests - -n prod";

/// Validate config files, folders or rendered ConfigMaps exactly as `reconfig watch` would.
///
/// Exit code 0 when everything is valid, 1 when something is not, 2 for usage errors.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct CheckArgs {
    /// Config files or folders (kubelet volume roots are read through ..data); with --policy,
    /// configmap/NAME=PATH or secret/NAME=PATH says which object a folder holds.
    #[arg(value_name = "PATH", required_unless_present = "manifests")]
    pub paths: Vec<PathBuf>,

    /// Check the ConfigMaps and Secrets of a manifest stream instead (`-` for stdin).
    #[arg(long, value_name = "FILE", conflicts_with = "paths")]
    pub manifests: Option<PathBuf>,

    #[command(flatten)]
    pub validation: ValidationArgs,

    /// Print validators' full messages for Secret keys too; they may quote the Secret's values into CI logs.
    #[arg(long)]
    pub show_secret_values: bool,

    /// Refuse a --manifests stream larger than this (accepts KiB, MiB, GiB suffixes), as inject does.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_input_size)]
    pub max_input_size: usize,

    /// How findings are printed: `text` (stderr, and a summary line on stdout when all is
    /// valid), `json` (one object per finding on stdout) or `github` (workflow commands on
    /// stdout, shown on the pull request's diff).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// With --policy: the namespace of objects and folders that name none, for rules that
    /// select namespaces.
    #[arg(short = 'n', long, value_name = "NS", env = "RECONFIG_NAMESPACE")]
    pub namespace: Option<String>,
}

/// The formats of `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
    Github,
}

pub fn run(args: CheckArgs) -> Result<(), Failure> {
    let secret_values = if args.show_secret_values {
        SecretValues::Show
    } else {
        SecretValues::Redact
    };
    let (checked, findings) = if args.validation.policy.is_some() {
        policy_findings(&args)?
    } else {
        flag_findings(&args, secret_values)?
    };
    report(&findings, checked, secret_values, args.output)
}

/// The flags are a one-rule policy: its formats and schemas judge every file through the
/// evaluation the other gates use; its external command runs once per object (or folder).
fn flag_findings(
    args: &CheckArgs,
    secret_values: SecretValues,
) -> Result<(Checked, Vec<Found>), Failure> {
    let flags = args.validation.policy()?;
    let command = flags
        .rules
        .first()
        .and_then(|rule| rule.validator.command());
    let check = |files: &[ConfigFile], source: Source| -> Vec<Found> {
        let subject = Subject {
            object: None,
            files,
        };
        flags
            .check(&subject)
            .into_iter()
            .map(|f| Found::of_policy(f, source))
            .collect()
    };
    Ok(match &args.manifests {
        Some(path) => {
            let objects = from_manifests(path, args.max_input_size)?;
            let files: Vec<ConfigFile> = objects.iter().flat_map(|o| o.files.clone()).collect();
            let mut findings = check(&files, Source::Manifests);
            if let Some(command) = command {
                let verdicts = per_object_verdicts(command, &objects, secret_values)?;
                findings.extend(
                    verdicts
                        .into_iter()
                        .map(|p| Found::of_command(p, Source::Manifests)),
                );
            }
            let checked = Checked::Keys {
                keys: files.len(),
                objects: objects.len(),
            };
            (checked, findings)
        }
        None => {
            let snapshot = from_paths(&args.paths)?;
            let mut findings = check(&snapshot.files, Source::Folders);
            if let Some(command) = command {
                findings.extend(
                    folder_verdict(command, &snapshot)?
                        .map(|p| Found::of_command(p, Source::Folders)),
                );
            }
            (Checked::Files(snapshot.files.len()), findings)
        }
    })
}

/// `check --policy`: every object (a manifest's ConfigMap or Secret, or a folder) judged by the
/// rules that select it, through the evaluation `admit` and `watch` use.
fn policy_findings(args: &CheckArgs) -> Result<(Checked, Vec<Found>), Failure> {
    let policy = args.validation.policy()?;
    let mut findings = Vec::new();
    let mut files = 0;
    let checked = match &args.manifests {
        Some(path) => {
            let inputs =
                Inputs::read(&[path.to_path_buf()], args.max_input_size)?.unnamed_if_stdin_alone();
            // Keyed by label and namespace: a later object of the same name replaces an earlier
            // one, as `apply` would.
            let mut by_label = BTreeMap::new();
            for object in inputs.config_objects(Limits::default())? {
                let identity = Identity {
                    kind: object.kind,
                    namespace: object.namespace.clone().or_else(|| args.namespace.clone()),
                    name: object.name.clone(),
                    labels: Some(object.labels.clone()),
                };
                by_label.insert(
                    (identity.label(), identity.namespace.clone()),
                    (identity, object_files(object).files),
                );
            }
            for (identity, object_files) in by_label.values() {
                files += object_files.len();
                let subject = Subject {
                    object: Some(identity),
                    files: object_files,
                };
                findings.extend(
                    evaluate(&policy, &subject, Commands::Stage)?
                        .into_iter()
                        .map(|f| Found::of_policy(f, Source::Manifests)),
                );
            }
            Checked::Keys {
                keys: files,
                objects: by_label.len(),
            }
        }
        None => {
            for arg in &args.paths {
                let (object, path) = object_folder(arg);
                let identity = object.map(|(kind, name)| Identity {
                    kind,
                    namespace: args.namespace.clone(),
                    name,
                    labels: None,
                });
                for rule in &policy.rules {
                    if let Some(why) = rule.blind_spot(identity.as_ref()) {
                        tracing::warn!("{}: {why}", path.display());
                    }
                }
                let snapshot = from_paths(std::slice::from_ref(&path))?;
                files += snapshot.files.len();
                let subject = Subject {
                    object: identity.as_ref(),
                    files: &snapshot.files,
                };
                let commands = match snapshot.folder() {
                    Some(folder) => Commands::In(folder),
                    None => Commands::Stage,
                };
                findings.extend(
                    evaluate(&policy, &subject, commands)?
                        .into_iter()
                        .map(|f| Found::of_policy(f, Source::Folders)),
                );
            }
            Checked::Files(files)
        }
    };
    Ok((checked, findings))
}

fn evaluate(
    policy: &Policy,
    subject: &Subject<'_>,
    commands: Commands<'_>,
) -> Result<Vec<crate::policy::Finding>, Failure> {
    block_on(policy.evaluate(subject, commands))?.map_err(|e| Failure::Internal(e.into()))
}

fn from_paths(paths: &[PathBuf]) -> Result<Snapshot, Failure> {
    Snapshot::read(paths, config::Limits::default()).map_err(|e| {
        if e.rejects_config() {
            Failure::Invalid(e.to_string())
        } else {
            Failure::Internal(anyhow::anyhow!("{e}"))
        }
    })
}

/// Runs the external validator on the folder read (or a temporary copy, when there is none).
fn folder_verdict(
    command: &ValidateCommand,
    snapshot: &Snapshot,
) -> Result<Option<Invalid>, Failure> {
    match snapshot.folder() {
        Some(folder) => block_on(command.verdict(folder)),
        None => {
            let staged = Staged::write(&snapshot.files).map_err(|e| Failure::Internal(e.into()))?;
            block_on(command.verdict(staged.path()))
        }
    }
}

/// Runs a future on a runtime of its own (the external validator is async for `watch`).
fn block_on<T>(future: impl std::future::Future<Output = T>) -> Result<T, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .map_err(Failure::Internal)?;
    Ok(runtime.block_on(future))
}

/// Runs the external validator once per ConfigMap or Secret, `{dir}` holding that object's
/// keys as a volume of it would; objects that lack a file the command names (`{dir}/NAME`) are
/// not its to judge. A Secret's validator output is kept out of the log unless asked for.
fn per_object_verdicts(
    command: &ValidateCommand,
    objects: &[ObjectFiles],
    secret_values: SecretValues,
) -> Result<Vec<Invalid>, Failure> {
    let named = command.files_named();
    let judged: Vec<&ObjectFiles> = objects
        .iter()
        .filter(|o| named.iter().all(|n| o.files.iter().any(|f| &f.name == n)))
        .collect();
    if judged.is_empty() && !named.is_empty() {
        return Ok(vec![Invalid::new(
            &format!("--validate-cmd reads {}", named.join(", ")),
            format!(
                "no ConfigMap or Secret in the stream has {} ({{dir}} holds one object's keys at a time)",
                if named.len() == 1 { "that key" } else { "all of those keys" }
            ),
        )]);
    }
    let mut problems = Vec::new();
    for object in judged {
        let staged = Staged::write(&object.files).map_err(|e| Failure::Internal(e.into()))?;
        debug!("running the validator on {}", object.label);
        let hide = object.kind == ConfigKind::Secret && secret_values == SecretValues::Redact;
        let verdict = if hide {
            block_on(command.verdict_unlogged(staged.path()))?
        } else {
            block_on(command.verdict(staged.path()))?
        };
        problems.extend(verdict.map(|invalid| Invalid {
            file: object.label.clone(),
            reason: format!("{}: {}", invalid.file, invalid.reason),
            ..invalid
        }));
    }
    Ok(problems)
}

/// Whether validators' messages about Secret keys, which may quote the values, are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecretValues {
    Redact,
    Show,
}

/// Which check found a problem (the `rule` of `--output json`, unless a named policy rule did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// The file does not parse as its format (or is not text).
    Parse,
    /// A schema refused it, or names something absent.
    Schema,
    /// The external command failed.
    Command,
}

impl Check {
    fn as_str(self) -> &'static str {
        match self {
            Check::Parse => "parse",
            Check::Schema => "schema",
            Check::Command => "command",
        }
    }
}

/// What was read: files of folders, or the keys of a stream's objects (`--manifests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Folders,
    Manifests,
}

/// How much was checked, for the summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checked {
    Files(usize),
    Keys { keys: usize, objects: usize },
}

impl Checked {
    /// Files read, counting each key of `--manifests` as the file a volume would hold.
    fn files(self) -> usize {
        match self {
            Checked::Files(n) | Checked::Keys { keys: n, .. } => n,
        }
    }
}

impl std::fmt::Display for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        match *self {
            Checked::Files(n) => f.write_str(&plural(n, "file", "files")),
            Checked::Keys { keys, objects } => write!(
                f,
                "{} in {}",
                plural(keys, "key", "keys"),
                plural(objects, "object", "objects")
            ),
        }
    }
}

/// One problem, and where it came from.
#[derive(Debug, Clone)]
struct Found {
    check: Check,
    /// The policy rule that failed, when it has a name (the flags' rule has none).
    rule: Option<String>,
    severity: Severity,
    /// About a Secret: the validator's words may quote its value.
    secret: bool,
    source: Source,
    problem: Invalid,
}

impl Found {
    /// A finding of the policy evaluation (formats, schemas, a policy rule's command). A schema's
    /// complaint names the schema (`schema: at /port`, `has a schema but …`); anything else
    /// the format check found is the file's syntax.
    fn of_policy(finding: crate::policy::Finding, source: Source) -> Self {
        let check = if finding.command {
            Check::Command
        } else if finding.invalid.reason.contains("schema") {
            Check::Schema
        } else {
            Check::Parse
        };
        Found {
            check,
            secret: finding.secret || finding.invalid.file.starts_with("secret/"),
            rule: finding.rule,
            severity: finding.severity,
            source,
            problem: finding.invalid,
        }
    }

    /// A failure of `--validate-cmd`, run per object or folder.
    fn of_command(problem: Invalid, source: Source) -> Self {
        Found {
            check: Check::Command,
            rule: None,
            severity: Severity::Deny,
            secret: problem.file.starts_with("secret/"),
            source,
            problem,
        }
    }

    fn denies(&self) -> bool {
        self.severity == Severity::Deny
    }
}

/// One line of `--output json`.
#[derive(Debug, serde::Serialize, PartialEq, Eq)]
struct Finding {
    /// `configmap/NAME` or `secret/NAME` (`--manifests`); null for folders.
    object: Option<String>,
    /// The ConfigMap/Secret key, or the file's name in a folder.
    key: Option<String>,
    /// The file on disk (folders); null for `--manifests`, whose keys are no files.
    file: Option<String>,
    /// Line and column within the file or the key's value, when known.
    line: Option<usize>,
    column: Option<usize>,
    /// The policy rule's name, or for the flags which check failed: `parse`, `schema`, `command`.
    rule: String,
    /// `error` (fails the check) or `warning` (a policy rule of severity warn).
    severity: &'static str,
    /// What is wrong; a validator's words about a Secret are left out as in text.
    message: String,
}

/// Added where a validator's message about a Secret is left out.
const REDACTED: &str =
    "(the message would quote the Secret's value; --show-secret-values prints it)";

impl Found {
    /// Whether the validator's own words are left out: they may quote a Secret's value.
    fn redacted(&self, secret_values: SecretValues) -> bool {
        self.problem.detail.is_some() && self.secret && secret_values == SecretValues::Redact
    }

    /// The line of text mode: where and what.
    fn text(&self, secret_values: SecretValues) -> String {
        if self.redacted(secret_values) {
            format!("{} {REDACTED}", self.problem.summary())
        } else {
            self.problem.to_string()
        }
    }

    fn finding(&self, secret_values: SecretValues) -> Finding {
        let p = &self.problem;
        let mut message = p.reason.clone();
        match &p.detail {
            Some(_) if self.redacted(secret_values) => {
                message = format!("{message} {REDACTED}");
            }
            Some(detail) => message = format!("{message}: {detail}"),
            None => {}
        }
        let (mut object, mut key, mut file) = (None, None, None);
        let in_object = p.file.starts_with("configmap/") || p.file.starts_with("secret/");
        match (self.source, self.check) {
            (Source::Manifests, _) if in_object => {
                let mut parts = p.file.splitn(3, '/');
                let (kind, name, rest) = (parts.next(), parts.next(), parts.next());
                object = kind.zip(name).map(|(k, n)| format!("{k}/{n}"));
                key = rest.map(str::to_string);
            }
            (Source::Folders, Check::Parse | Check::Schema) => {
                key = std::path::Path::new(&p.file)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                file = Some(p.file.clone());
            }
            // The command's own name, or a flag that matched nothing: part of the message.
            _ => message = format!("{}: {message}", p.file),
        }
        Finding {
            object,
            key,
            file,
            line: p.line,
            column: p.line.and(p.column),
            rule: self
                .rule
                .clone()
                .unwrap_or_else(|| self.check.as_str().to_string()),
            severity: if self.denies() { "error" } else { "warning" },
            message,
        }
    }

    /// The `--output github` line: an error annotation on the file and line when there is a
    /// file, else one that names the object and key in its message.
    fn github(&self, secret_values: SecretValues) -> String {
        let finding = self.finding(secret_values);
        let title = format!("reconfig check: {}", finding.rule);
        let message = match &finding.file {
            Some(_) => finding.message.clone(),
            None => self.text(secret_values),
        };
        let place = Place {
            file: finding.file.as_deref(),
            line: finding.file.as_ref().and(finding.line),
            column: finding.file.as_ref().and(finding.column),
            title: Some(&title),
        };
        let level = if self.denies() {
            Level::Error
        } else {
            Level::Warning
        };
        workflow_command(level, &place, &message)
    }
}

/// Prints every finding in the chosen format and sets the exit code.
fn report(
    findings: &[Found],
    checked: Checked,
    secret_values: SecretValues,
    output: Output,
) -> Result<(), Failure> {
    let mut out = String::new();
    for f in findings {
        match output {
            Output::Text if f.denies() => error!("{}", f.text(secret_values)),
            Output::Text => warn!("{}", f.text(secret_values)),
            Output::Json => {
                let line = serde_json::to_string(&f.finding(secret_values))
                    .map_err(|e| Failure::Internal(e.into()))?;
                out.push_str(&line);
                out.push('\n');
            }
            Output::Github => {
                out.push_str(&f.github(secret_values));
                out.push('\n');
            }
        }
    }
    let denied = findings.iter().filter(|f| f.denies()).count();
    if denied == 0 {
        let summary = match findings.len() {
            0 => format!("{checked} valid"),
            1 => format!("{checked} valid, 1 warning"),
            n => format!("{checked} valid, {n} warnings"),
        };
        info!("{summary}");
        match output {
            Output::Text => out.push_str(&format!("{summary}\n")),
            Output::Github => {
                let line = workflow_command(
                    Level::Notice,
                    &Place::default(),
                    &format!("reconfig check: {summary}"),
                );
                out.push_str(&line);
                out.push('\n');
            }
            Output::Json => {}
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing the findings to stdout")
        .map_err(Failure::Internal)?;
    if denied == 0 {
        Ok(())
    } else {
        Err(Failure::Invalid(format!(
            "{denied} problem(s) in {} file(s) checked",
            checked.files()
        )))
    }
}

/// One ConfigMap's or Secret's keys as files, named `configmap/NAME/KEY` (or `secret/…`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ObjectFiles {
    kind: ConfigKind,
    /// `configmap/NAME` or `secret/NAME`, as problems name it.
    label: String,
    files: Vec<ConfigFile>,
}

/// Every ConfigMap and Secret of a stream with its keys as files, read as `inject` reads its
/// input (same size limit, same errors). Keys are file names: the model refuses any other.
fn from_manifests(path: &Path, limit: usize) -> Result<Vec<ObjectFiles>, Failure> {
    let inputs = Inputs::read(&[path.to_path_buf()], limit)?.unnamed_if_stdin_alone();
    let objects = inputs.config_objects(Limits::default())?;
    // Keyed by label: a later object of the same name replaces an earlier one, as `apply` would.
    let mut by_label = BTreeMap::new();
    for object in objects.into_iter().map(object_files) {
        by_label.insert(object.label.clone(), object);
    }
    Ok(by_label.into_values().collect())
}

/// A ConfigMap's or Secret's keys with the bytes a pod would read, named `configmap/NAME/KEY`.
fn object_files(object: ObjectData) -> ObjectFiles {
    let prefix = match object.kind {
        ConfigKind::ConfigMap => "configmap",
        ConfigKind::Secret => "secret",
    };
    let label = format!("{prefix}/{}", object.name);
    let files = object
        .items
        .into_iter()
        .map(|item| ConfigFile {
            path: format!("{label}/{}", item.key),
            name: item.key,
            bytes: item.bytes,
            mode: config::DEFAULT_MODE,
        })
        .collect();
    ObjectFiles {
        kind: object.kind,
        label,
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::object::DataItem;

    #[test]
    fn object_files_of_configmaps_and_secrets() {
        let item = |key: &str, bytes: &[u8]| DataItem {
            key: key.to_string(),
            bytes: bytes.to_vec(),
            in_env: true,
        };
        let secret = ObjectData {
            kind: ConfigKind::Secret,
            name: "s".to_string(),
            namespace: None,
            labels: BTreeMap::new(),
            items: vec![item("a.yaml", b"x: 1\n"), item("b.json", b"{}")],
        };
        let files = object_files(secret);
        assert_eq!(files.label, "secret/s");
        assert_eq!(
            files.files,
            vec![
                ConfigFile {
                    path: "secret/s/a.yaml".to_string(),
                    name: "a.yaml".to_string(),
                    bytes: b"x: 1\n".to_vec(),
                    mode: config::DEFAULT_MODE,
                },
                ConfigFile {
                    path: "secret/s/b.json".to_string(),
                    name: "b.json".to_string(),
                    bytes: b"{}".to_vec(),
                    mode: config::DEFAULT_MODE,
                },
            ]
        );
    }
}
