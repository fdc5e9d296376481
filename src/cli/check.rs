//! `reconfig check`: the sidecar's validation as a CI step, on folders or on rendered manifests.
//!
//! Wiring and output: `config` reads folders and `validate` gives every verdict; here the
//! ConfigMaps and Secrets of `--manifests` become `ConfigFile`s, and the problems are printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tracing::{debug, error, info};

use super::validation::ValidationArgs;
use crate::config::read::Snapshot;
use crate::config::stage::Staged;
use crate::config::{self, ConfigFile};
use crate::input::Inputs;
use crate::manifest::data::ObjectData;
use crate::manifest::node::Limits;
use crate::manifest::object::ConfigKind;
use crate::units::parse_size;
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
skipped. A validator's output about a Secret is printed only with --show-secret-values.";

/// Validate config files, folders or rendered ConfigMaps exactly as `reconfig watch` would.
///
/// Exit code 0 when everything is valid, 1 when something is not, 2 for usage errors.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct CheckArgs {
    /// Config files or folders (kubelet volume roots are read through ..data).
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
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub max_input_size: usize,
}

pub fn run(args: CheckArgs) -> Result<(), Failure> {
    let validator = args.validation.validator().map_err(Failure::Usage)?;
    let secret_values = if args.show_secret_values {
        SecretValues::Show
    } else {
        SecretValues::Redact
    };
    let (files, problems) = match &args.manifests {
        Some(path) => {
            let objects = from_manifests(path, args.max_input_size)?;
            let files: Vec<ConfigFile> = objects.iter().flat_map(|o| o.files.clone()).collect();
            let mut problems = validator.check_files(&files);
            if let Some(command) = validator.command() {
                problems.extend(per_object_verdicts(command, &objects, secret_values)?);
            }
            (files, problems)
        }
        None => {
            let snapshot = from_paths(&args.paths)?;
            let mut problems = validator.check_files(&snapshot.files);
            if let Some(command) = validator.command() {
                problems.extend(folder_verdict(command, &snapshot)?);
            }
            (snapshot.files, problems)
        }
    };
    report(&problems, files.len(), secret_values)
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

/// Prints every problem (a Secret's validator message only when asked) and sets the exit code.
/// Whether validators' messages about Secret keys, which may quote the values, are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecretValues {
    Redact,
    Show,
}

fn report(problems: &[Invalid], files: usize, secret_values: SecretValues) -> Result<(), Failure> {
    for p in problems {
        if p.detail.is_some()
            && p.file.starts_with("secret/")
            && secret_values == SecretValues::Redact
        {
            error!(
                "{} (the message would quote the Secret's value; --show-secret-values prints it)",
                p.summary()
            );
        } else {
            error!("{p}");
        }
    }
    if problems.is_empty() {
        info!("{files} file(s) valid");
        Ok(())
    } else {
        Err(Failure::Invalid(format!(
            "{} problem(s) in {files} file(s) checked",
            problems.len()
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
