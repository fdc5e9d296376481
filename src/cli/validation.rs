//! The validation options `watch` and `check` share, so CI and the sidecar judge alike.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::manifest::object::ConfigKind;
use crate::policy::{self, Policy};
use crate::units::parse_duration;
use crate::validate::{Format, SchemaSpec, ValidateCommand, Validator};

/// How config files are judged; shared by `watch` and `check`, so CI and the sidecar agree.
#[derive(Debug, clap::Args)]
pub struct ValidationArgs {
    /// A policy file: rules selecting ConfigMaps/Secrets and keys, each with a format, a JSON
    /// Schema or a command, denying or warning (see the README). The same file `reconfig admit`
    /// enforces. Instead of --format, --schema and --validate-cmd.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["format", "schema", "validate_cmd"])]
    pub policy: Option<PathBuf>,

    /// Parse every file as this format instead of going by extension.
    #[arg(long, value_name = "yaml|json|toml")]
    pub format: Option<Format>,

    /// Validate a file against a JSON Schema (YAML and TOML too); with `check --manifests`,
    /// configmap/NAME names a whole ConfigMap. Repeatable.
    #[arg(long, value_name = "FILE=SCHEMA.json")]
    pub schema: Vec<SchemaSpec>,

    /// An external validator, run without a shell; exit 0 means valid. `{dir}` in it is the
    /// folder holding the candidate files; inside your own `sh -c '…'` write `{dir:q}`, the
    /// folder quoted for the shell. Killed with its whole process group at the timeout.
    #[arg(long, value_name = "CMD")]
    pub validate_cmd: Option<String>,

    /// Time limit for --validate-cmd.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub validate_timeout: Duration,
}

impl ValidationArgs {
    /// Builds the one validator: format, every schema (per file, and per whole object for
    /// `check --manifests`), the external command.
    pub fn validator(&self) -> anyhow::Result<Validator> {
        let command = self
            .validate_cmd
            .as_deref()
            .map(|c| ValidateCommand::parse(c, self.validate_timeout))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--validate-cmd: {e}"))?;
        Ok(Validator::new(self.format, &self.schema, command)?)
    }

    /// The policy: the `--policy` file, or the one rule the other flags make.
    pub fn policy(&self) -> Result<Policy, crate::Failure> {
        match &self.policy {
            Some(path) => policy::load(path)
                .map(|loaded| loaded.policy)
                .map_err(|e| match e {
                    policy::PolicyError::Read { .. } => crate::Failure::Usage(e.into()),
                    policy::PolicyError::Invalid(_) => {
                        crate::Failure::Invalid(format!("invalid policy:\n{e}"))
                    }
                }),
            None => Ok(Policy::from_flags(
                self.validator().map_err(crate::Failure::Usage)?,
            )),
        }
    }
}

/// A folder argument that may say which object it holds: `configmap/NAME=PATH` or
/// `secret/NAME=PATH` (write `./configmap/…` for a path that merely looks like that).
pub fn object_folder(arg: &Path) -> (Option<(ConfigKind, String)>, PathBuf) {
    let text = arg.to_string_lossy();
    let parsed = text.split_once('=').and_then(|(object, path)| {
        let (kind, name) = object.split_once('/')?;
        let kind = match kind {
            "configmap" => ConfigKind::ConfigMap,
            "secret" => ConfigKind::Secret,
            _ => return None,
        };
        let valid_name = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        (valid_name && !path.is_empty()).then(|| (kind, name.to_string(), PathBuf::from(path)))
    });
    match parsed {
        Some((kind, name, path)) => (Some((kind, name)), path),
        None => (None, arg.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_may_name_their_object() {
        assert_eq!(
            object_folder(Path::new("configmap/app=/etc/app")),
            (
                Some((ConfigKind::ConfigMap, "app".to_string())),
                PathBuf::from("/etc/app")
            )
        );
        assert_eq!(
            object_folder(Path::new("secret/db.creds=rel/dir")).0,
            Some((ConfigKind::Secret, "db.creds".to_string()))
        );
        for plain in [
            "/etc/app",
            "./configmap/app=x",
            "configmap/App=x",
            "configmap/a=",
            "x=y",
        ] {
            assert_eq!(
                object_folder(Path::new(plain)),
                (None, PathBuf::from(plain))
            );
        }
    }
}
