//! The validation options `watch` and `check` share, so CI and the sidecar judge alike.

use std::time::Duration;

use crate::units::parse_duration;
use crate::validate::{Format, SchemaSpec, ValidateCommand, Validator};

/// How config files are judged; shared by `watch` and `check`, so CI and the sidecar agree.
#[derive(Debug, clap::Args)]
pub struct ValidationArgs {
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
}
