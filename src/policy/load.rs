//! Reading a policy file and the JSON Schemas it names (the I/O), then compiling its rules.
//!
//! Schema paths are relative to the policy file and must stay in its folder, symlinks
//! included (a kubelet volume's `..data` links stay inside it). The bytes read are
//! fingerprinted, so a server can tell when the policy or a schema it uses changed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::model::{PolicySpec, RuleSpec};
use super::parse::parse;
use super::rules::{Policy, Rule, Severity};
use crate::manifest::object::ConfigKind;
use crate::units::parse_duration;
use crate::validate::{load_schema, Format, Invalid, ValidateCommand, Validator};

/// A policy file (or a schema it names) larger than this is refused.
pub const MAX_POLICY_FILE: u64 = 4 * 1024 * 1024;

/// The default time limit of a rule's command, as `--validate-timeout`'s.
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a policy cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Invalid>),
}

/// A loaded policy and a digest of every byte it was made of (the file and its schemas).
pub struct Loaded {
    pub policy: Policy,
    pub fingerprint: String,
    /// The files read, to look at again for a change.
    pub sources: Vec<PathBuf>,
}

/// Reads, checks and compiles a policy file.
pub fn load(path: &Path) -> Result<Loaded, PolicyError> {
    let text = read_bounded(path).map_err(|error| PolicyError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let label = path.display().to_string();
    let text = String::from_utf8(text)
        .map_err(|_| PolicyError::Invalid(vec![Invalid::new(&label, "is not UTF-8 text")]))?;
    let spec = parse(&label, &text).map_err(PolicyError::Invalid)?;
    let mut digest = Sha256::new();
    digest.update(text.as_bytes());
    let mut sources = vec![path.to_path_buf()];
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let rules = compile(&label, base, &spec, &mut digest, &mut sources)?;
    Ok(Loaded {
        policy: Policy { rules },
        fingerprint: hex::encode(digest.finalize()),
        sources,
    })
}

/// The digest `load` would give, from the same files, without parsing anything: whether a
/// loaded policy is still current.
pub fn fingerprint(sources: &[PathBuf]) -> Option<String> {
    let mut digest = Sha256::new();
    for path in sources {
        digest.update(read_bounded(path).ok()?);
    }
    Some(hex::encode(digest.finalize()))
}

fn compile(
    label: &str,
    base: &Path,
    spec: &PolicySpec,
    digest: &mut Sha256,
    sources: &mut Vec<PathBuf>,
) -> Result<Vec<Rule>, PolicyError> {
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    for rule in &spec.rules {
        match compile_rule(base, rule, digest, sources) {
            Ok(compiled) => rules.push(compiled),
            Err(why) => problems.push(Invalid::new(label, format!("rule {}: {why}", rule.name))),
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(PolicyError::Invalid(problems))
    }
}

fn compile_rule(
    base: &Path,
    rule: &RuleSpec,
    digest: &mut Sha256,
    sources: &mut Vec<PathBuf>,
) -> Result<Rule, String> {
    let format = match rule.format.as_deref() {
        None | Some("auto") => None,
        Some(f) => Some(f.parse::<Format>()?),
    };
    let schema = match &rule.schema {
        Some(relative) => {
            let path = inside(base, relative)?;
            let bytes = read_bounded(&path).map_err(|e| format!("schema {relative}: {e}"))?;
            digest.update(&bytes);
            sources.push(path.clone());
            Some(load_schema(&path).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let timeout = match &rule.timeout {
        Some(t) => parse_duration(t)?,
        None => DEFAULT_COMMAND_TIMEOUT,
    };
    let command = rule
        .command
        .as_deref()
        .map(|c| ValidateCommand::parse(c, timeout))
        .transpose()?;
    let kinds = rule
        .select
        .kinds
        .iter()
        .map(|k| match k.as_str() {
            "Secret" => ConfigKind::Secret,
            _ => ConfigKind::ConfigMap,
        })
        .collect();
    Ok(Rule {
        name: Some(rule.name.clone()),
        kinds,
        namespaces: rule.select.namespaces.clone(),
        names: rule.select.names.clone(),
        labels: rule.select.labels.clone(),
        keys: rule.keys.clone(),
        severity: match rule.severity.as_deref() {
            Some("warn") => Severity::Warn,
            _ => Severity::Deny,
        },
        validator: Validator::for_every_file(format, schema, command),
    })
}

/// `relative` under `base`, refused when it (or a link on the way) leads out of `base`.
fn inside(base: &Path, relative: &str) -> Result<PathBuf, String> {
    let path = base.join(relative);
    let root = base
        .canonicalize()
        .map_err(|e| format!("the policy's folder {}: {e}", base.display()))?;
    let real = path
        .canonicalize()
        .map_err(|e| format!("schema {relative}: {e}"))?;
    if !real.starts_with(&root) {
        return Err(format!(
            "schema {relative} leads to {}, outside the policy's folder",
            real.display()
        ));
    }
    Ok(path)
}

fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_POLICY_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_POLICY_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_POLICY_FILE >> 20
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "apiVersion: reconfig/v1\nkind: Policy\nrules:\n  - name: app\n    keys: [\"*.yaml\"]\n    schema: app.json\n";

    #[test]
    fn loads_schemas_relative_to_the_policy() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("policy.yaml"), POLICY).expect("write");
        std::fs::write(dir.path().join("app.json"), r#"{"type": "object"}"#).expect("write");
        let loaded = load(&dir.path().join("policy.yaml")).expect("loads");
        assert_eq!(loaded.policy.rules.len(), 1);
        assert_eq!(loaded.sources.len(), 2);
        assert_eq!(
            fingerprint(&loaded.sources).as_deref(),
            Some(&*loaded.fingerprint)
        );
        std::fs::write(dir.path().join("app.json"), r#"{"type": "array"}"#).expect("write");
        assert_ne!(
            fingerprint(&loaded.sources).as_deref(),
            Some(&*loaded.fingerprint)
        );
    }

    #[test]
    fn a_missing_or_broken_schema_or_a_link_out_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let policy = dir.path().join("policy.yaml");
        std::fs::write(&policy, POLICY).expect("write");
        let error = load(&policy)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("rule app: schema app.json"), "{error}");
        std::fs::write(dir.path().join("app.json"), r#"{"type": 12}"#).expect("write");
        assert!(load(&policy).is_err());
        std::fs::remove_file(dir.path().join("app.json")).expect("rm");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("s.json"), "{}").expect("write");
        std::os::unix::fs::symlink(outside.path().join("s.json"), dir.path().join("app.json"))
            .expect("link");
        let error = load(&policy)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("outside the policy's folder"), "{error}");
    }

    #[test]
    fn parse_problems_keep_their_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let policy = dir.path().join("policy.yaml");
        std::fs::write(&policy, POLICY.replace("keys:", "kees:")).expect("write");
        let error = load(&policy)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("policy.yaml:4:"), "{error}");
    }
}
