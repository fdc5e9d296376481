//! `reconfig check`: the sidecar's validation as a CI step, on folders or on rendered manifests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tracing::{error, info};

use crate::cli::ValidationArgs;
use crate::manifest::node::{Limits, Node};
use crate::manifest::object::{config_data, ConfigKind, ObjectMeta};
use crate::manifest::stream::{Problem, Stream, StreamError};
use crate::process::run_command;
use crate::validate::{check_text, Candidate, Format, Invalid, SchemaSpec};
use crate::watch::snapshot::{self, Snapshot};
use crate::Failure;

const EXAMPLES: &str = "\
Examples:
  # The same checks the sidecar runs, on the files in the repository
  reconfig check --validate-cmd 'promtool check config {dir}/prometheus.yml' deploy/prometheus/

  # Every ConfigMap key of a rendered chart, with a schema for one key and one for a whole ConfigMap
  helm template app ./chart | reconfig check --manifests - \\
      --schema config.yaml=schemas/config.json --schema configmap/argo-rollouts-config=schemas/rollouts.json

In --manifests mode each ConfigMap and Secret key is checked as a file named after the key
(parsed by its extension, or --format), shown as configmap/NAME/KEY; --schema configmap/NAME=…
checks the ConfigMap's whole data object.";

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
}

pub fn run(args: CheckArgs) -> Result<(), Failure> {
    let (whole_object, per_file): (Vec<SchemaSpec>, Vec<SchemaSpec>) = args
        .validation
        .schema
        .iter()
        .cloned()
        .partition(|s| object_schema_name(&s.file).is_some());
    let validator = args
        .validation
        .validator(&per_file)
        .map_err(Failure::Usage)?;

    let files = match &args.manifests {
        Some(path) => from_manifests(path)?,
        None => from_paths(&args.paths)?,
    };
    let candidates: Vec<Candidate<'_>> = files
        .iter()
        .map(|(path, (name, bytes))| Candidate { path, name, bytes })
        .collect();
    let mut problems = validator.check_files(&candidates);
    problems.extend(check_objects(&files, &whole_object).map_err(Failure::Usage)?);

    if let Some(command) = &validator.command {
        let staged;
        let dir = match (&args.manifests, args.paths.first()) {
            (None, Some(path)) if !path.is_file() => read_root(path),
            (None, Some(path)) => path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            _ => {
                staged = stage(&files).map_err(Failure::Usage)?;
                staged.path().to_path_buf()
            }
        };
        let argv = command.argv(&dir);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the runtime")
            .map_err(Failure::Usage)?;
        let outcome = runtime.block_on(run_command(&argv, command.timeout));
        if outcome.success {
            info!("`{}` passed", argv.join(" "));
        } else {
            problems.push(Invalid {
                detail: (!outcome.output.is_empty()).then(|| outcome.output.clone()),
                ..Invalid::new(&argv.join(" "), outcome.status.to_string())
            });
        }
    }

    for p in &problems {
        if p.detail.is_some() && p.file.starts_with("secret/") && !args.show_secret_values {
            error!(
                "{} (the message would quote the Secret's value; --show-secret-values prints it)",
                p.summary()
            );
        } else {
            error!("{p}");
        }
    }
    if problems.is_empty() {
        info!("{} file(s) valid", files.len());
        Ok(())
    } else {
        Err(Failure::Invalid(format!(
            "{} problem(s) in {} file(s) checked",
            problems.len(),
            files.len()
        )))
    }
}

type Files = BTreeMap<String, (String, Vec<u8>)>;

fn from_paths(paths: &[PathBuf]) -> Result<Files, Failure> {
    let snapshot = Snapshot::read(paths, snapshot::Limits::default()).map_err(|e| match e {
        snapshot::SnapshotError::TooLarge { .. } | snapshot::SnapshotError::Collision(_) => {
            Failure::Invalid(e.to_string())
        }
        _ => Failure::Usage(anyhow::anyhow!("{e}")),
    })?;
    Ok(snapshot
        .files
        .into_iter()
        .map(|(path, file)| (path, (file.name, file.bytes)))
        .collect())
}

/// The folder a validator should look at for a path: the `..data` target of a kubelet volume.
fn read_root(dir: &Path) -> PathBuf {
    match snapshot::layout(dir) {
        snapshot::Layout::Kubelet => std::fs::canonicalize(dir.join(snapshot::DATA_LINK))
            .unwrap_or_else(|_| dir.to_path_buf()),
        snapshot::Layout::Plain => dir.to_path_buf(),
    }
}

/// Every ConfigMap and Secret key of a stream, as files named `configmap/NAME/KEY`.
fn from_manifests(path: &Path) -> Result<Files, Failure> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin().lock()).context("reading stdin")
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    }
    .map_err(Failure::Usage)?;
    let stream =
        Stream::new(&text, 256 * 1024 * 1024).map_err(|e| Failure::Invalid(e.to_string()))?;
    let parsed = stream
        .parse(Limits::default(), |doc| config_files(doc.root))
        .map_err(|e| match e {
            StreamError::Invalid(_) | StreamError::TooLarge { .. } => {
                Failure::Invalid(e.to_string())
            }
        })?;
    let mut files = Files::new();
    for (_, entries) in parsed.iter() {
        for (path, key, bytes) in entries {
            files.insert(path.clone(), (key.clone(), bytes.clone()));
        }
    }
    Ok(files)
}

/// A ConfigMap's or Secret's keys with the bytes a pod would read, named `configmap/NAME/KEY`.
fn config_files(root: &Node<'_>) -> Result<Vec<(String, String, Vec<u8>)>, Problem> {
    let Some(meta) = ObjectMeta::read(root) else {
        return Ok(Vec::new());
    };
    let Some((kind, items)) = config_data(root, &meta)? else {
        return Ok(Vec::new());
    };
    let prefix = match kind {
        ConfigKind::ConfigMap => "configmap",
        ConfigKind::Secret => "secret",
    };
    Ok(items
        .into_iter()
        .map(|item| {
            (
                format!("{prefix}/{}/{}", meta.name, item.key),
                item.key,
                item.bytes,
            )
        })
        .collect())
}

/// `configmap/NAME` or `secret/NAME` in a `--schema` means the object's whole data.
fn object_schema_name(file: &str) -> Option<&str> {
    let (kind, name) = file.split_once('/')?;
    (matches!(kind, "configmap" | "secret") && !name.contains('/')).then_some(file)
}

/// Applies whole-object schemas to the data objects (key → string) assembled from the files.
fn check_objects(files: &Files, schemas: &[SchemaSpec]) -> anyhow::Result<Vec<Invalid>> {
    let mut problems = Vec::new();
    for spec in schemas {
        let text = std::fs::read_to_string(&spec.schema)
            .with_context(|| format!("reading schema {}", spec.schema.display()))?;
        let schema: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("schema {} is not JSON", spec.schema.display()))?;
        let validator = jsonschema::validator_for(&schema).map_err(|e| {
            anyhow::anyhow!(
                "schema {} is not a valid JSON Schema: {e}",
                spec.schema.display()
            )
        })?;
        let prefix = format!("{}/", spec.file);
        let data: serde_json::Map<String, serde_json::Value> = files
            .iter()
            .filter(|(path, _)| path.starts_with(&prefix))
            .map(|(_, (key, bytes))| {
                (
                    key.clone(),
                    serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()),
                )
            })
            .collect();
        if data.is_empty() {
            problems.push(Invalid::new(
                &spec.file,
                "has a schema but is not in the input",
            ));
            continue;
        }
        let object = serde_json::Value::Object(data);
        let json = object.to_string();
        problems.extend(check_text(
            &spec.file,
            &json,
            Format::Json,
            Some(&validator),
        ));
    }
    Ok(problems)
}

/// Writes the files into a temporary folder so an external validator can read them.
fn stage(files: &Files) -> anyhow::Result<tempdir::Staged> {
    let staged = tempdir::Staged::new()?;
    for (name, bytes) in files.values() {
        let path = staged.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("staging {name}"))?;
    }
    Ok(staged)
}

mod tempdir {
    use std::path::{Path, PathBuf};

    /// A folder under the system temp dir, removed on drop.
    pub struct Staged(PathBuf);

    impl Staged {
        pub fn new() -> std::io::Result<Self> {
            let name = format!("reconfig-check-{:016x}", crate::random_u64());
            let path = std::env::temp_dir().join(name);
            std::fs::create_dir(&path)?;
            Ok(Staged(path))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Staged {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::parse_documents;

    #[test]
    fn config_files_of_configmaps_and_secrets() {
        let docs = parse_documents(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a.yaml: eDogMQo=}\nstringData: {b.json: '{}'}\n",
            Limits::default(),
        )
        .expect("yaml");
        let files = config_files(docs[0].as_ref().expect("doc")).expect("valid");
        assert_eq!(
            files,
            vec![
                (
                    "secret/s/a.yaml".to_string(),
                    "a.yaml".to_string(),
                    b"x: 1\n".to_vec()
                ),
                (
                    "secret/s/b.json".to_string(),
                    "b.json".to_string(),
                    b"{}".to_vec()
                ),
            ]
        );
        assert_eq!(object_schema_name("configmap/app"), Some("configmap/app"));
        assert_eq!(object_schema_name("configmap/app/key"), None);
        assert_eq!(object_schema_name("app.yaml"), None);
    }
}
