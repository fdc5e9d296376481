//! `reconfig check`: the sidecar's validation as a CI step, on folders or on rendered manifests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tracing::{error, info};

use crate::cli::ValidationArgs;
use crate::config::read::Snapshot;
use crate::config::{self, ConfigFile};
use crate::manifest::node::{Limits, Node};
use crate::manifest::object::{config_data, ConfigKind, ObjectMeta};
use crate::manifest::stream::{Problem, Stream, StreamError};
use crate::process::run_command;
use crate::validate::{check_text, Format, Invalid, SchemaSpec};
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
    let mut problems = validator.check_files(&files);
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

fn from_paths(paths: &[PathBuf]) -> Result<Vec<ConfigFile>, Failure> {
    let snapshot = Snapshot::read(paths, config::Limits::default()).map_err(|e| {
        if e.rejects_config() {
            Failure::Invalid(e.to_string())
        } else {
            Failure::Usage(anyhow::anyhow!("{e}"))
        }
    })?;
    Ok(snapshot.files)
}

/// The folder a validator should look at for a path: the `..data` target of a kubelet volume.
fn read_root(dir: &Path) -> PathBuf {
    match config::layout::layout(dir) {
        config::layout::Layout::Kubelet => {
            std::fs::canonicalize(dir.join(config::layout::DATA_LINK))
                .unwrap_or_else(|_| dir.to_path_buf())
        }
        config::layout::Layout::Plain => dir.to_path_buf(),
    }
}

/// Every ConfigMap and Secret key of a stream, as files named `configmap/NAME/KEY`.
fn from_manifests(path: &Path) -> Result<Vec<ConfigFile>, Failure> {
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
    // Keyed by path: a later object of the same name replaces an earlier one, as `apply` would.
    let mut files = BTreeMap::new();
    for (_, entries) in parsed.iter() {
        for file in entries {
            files.insert(file.path.clone(), file.clone());
        }
    }
    Ok(files.into_values().collect())
}

/// A ConfigMap's or Secret's keys with the bytes a pod would read, named `configmap/NAME/KEY`.
fn config_files(root: &Node<'_>) -> Result<Vec<ConfigFile>, Problem> {
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
        .map(|item| ConfigFile {
            path: format!("{prefix}/{}/{}", meta.name, item.key),
            name: item.key,
            bytes: item.bytes,
        })
        .collect())
}

/// `configmap/NAME` or `secret/NAME` in a `--schema` means the object's whole data.
fn object_schema_name(file: &str) -> Option<&str> {
    let (kind, name) = file.split_once('/')?;
    (matches!(kind, "configmap" | "secret") && !name.contains('/')).then_some(file)
}

/// Applies whole-object schemas to the data objects (key → string) assembled from the files.
fn check_objects(files: &[ConfigFile], schemas: &[SchemaSpec]) -> anyhow::Result<Vec<Invalid>> {
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
            .filter(|file| file.path.starts_with(&prefix))
            .map(|file| {
                (
                    file.name.clone(),
                    serde_json::Value::String(String::from_utf8_lossy(&file.bytes).into_owned()),
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
fn stage(files: &[ConfigFile]) -> anyhow::Result<tempdir::Staged> {
    let staged = tempdir::Staged::new()?;
    for ConfigFile { name, bytes, .. } in files {
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
                ConfigFile {
                    path: "secret/s/a.yaml".to_string(),
                    name: "a.yaml".to_string(),
                    bytes: b"x: 1\n".to_vec()
                },
                ConfigFile {
                    path: "secret/s/b.json".to_string(),
                    name: "b.json".to_string(),
                    bytes: b"{}".to_vec()
                },
            ]
        );
        assert_eq!(object_schema_name("configmap/app"), Some("configmap/app"));
        assert_eq!(object_schema_name("configmap/app/key"), None);
        assert_eq!(object_schema_name("app.yaml"), None);
    }
}
