//! The one evaluation every gate runs: the rules that select an object, over the keys they
//! select, giving findings worded the same way whether `check`, `watch` or `admit` asked.

use std::path::Path;

use super::rules::{Identity, Policy, Rule, Severity};
use crate::config::stage::{StageError, Staged};
use crate::config::ConfigFile;
use crate::manifest::object::ConfigKind;
use crate::validate::Invalid;

/// What a gate evaluates: an object's keys as files, and what it knows of the object.
pub struct Subject<'a> {
    pub object: Option<&'a Identity>,
    pub files: &'a [ConfigFile],
}

/// One rule's complaint about one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// The name of the rule that failed; `None` for the one rule the flags make.
    pub rule: Option<String>,
    /// Whether an external command (rather than a format or schema check) failed.
    pub command: bool,
    /// About a Secret: the detail (which may quote its value) is left out unless asked for.
    pub secret: bool,
    /// Where (object/key, line, column) and what, the rule named in `reason`.
    pub invalid: Invalid,
}

impl Finding {
    /// The message every gate prints: the whole of it, or for a Secret (when redacting) where
    /// and what without the validator's words, which may quote the value.
    pub fn message(&self, redact_secrets: bool) -> String {
        if self.secret && redact_secrets && self.invalid.detail.is_some() {
            self.invalid.summary()
        } else {
            self.invalid.to_string()
        }
    }

    pub fn denies(&self) -> bool {
        self.severity == Severity::Deny
    }
}

/// Where external commands run, if at all.
pub enum Commands<'a> {
    /// Not run (`admit` without `--allow-commands`).
    Skip,
    /// In this folder, which holds the subject's files (a volume, a published stage).
    In(&'a Path),
    /// In a temporary folder written with the subject's files.
    Stage,
}

impl Policy {
    /// Everything but the external commands: formats and schemas, every rule that applies.
    pub fn check(&self, subject: &Subject<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        for rule in self.applicable(subject) {
            let files: Vec<&ConfigFile> = subject
                .files
                .iter()
                .filter(|f| rule.keys.is_empty() || rule.selects_key(&f.name))
                .collect();
            for invalid in rule.validator.check_files(&files) {
                findings.push(finding(
                    rule,
                    subject,
                    relabel(rule, subject, invalid),
                    false,
                ));
            }
        }
        findings
    }

    /// The rules with an external command that applies to the subject: a named rule's command
    /// that reads `{dir}/NAME` files the object lacks is not its to judge.
    pub fn commands_for<'p>(&'p self, subject: &Subject<'_>) -> Vec<&'p Rule> {
        self.applicable(subject)
            .into_iter()
            .filter(|rule| {
                rule.validator.command().is_some_and(|command| {
                    rule.name.is_none()
                        || command
                            .files_named()
                            .iter()
                            .all(|n| subject.files.iter().any(|f| &f.name == n))
                })
            })
            .collect()
    }

    /// Runs the external commands that apply, on `dir` (which holds the subject's files).
    pub async fn run_commands(&self, subject: &Subject<'_>, dir: &Path) -> Vec<Finding> {
        let mut findings = Vec::new();
        let secret = is_secret(subject);
        for rule in self.commands_for(subject) {
            let Some(command) = rule.validator.command() else {
                continue;
            };
            let verdict = if secret {
                command.verdict_unlogged(dir).await
            } else {
                command.verdict(dir).await
            };
            if let Some(invalid) = verdict {
                let invalid = match (rule.name.as_ref(), subject.object) {
                    (Some(_), Some(object)) => Invalid {
                        file: object.label(),
                        reason: format!("`{}`: {}", command.template(), invalid.reason),
                        ..invalid
                    },
                    _ => invalid,
                };
                findings.push(finding(rule, subject, invalid, true));
            }
        }
        findings
    }

    /// The one evaluation: `check`, then the external commands where `commands` says.
    pub async fn evaluate(
        &self,
        subject: &Subject<'_>,
        commands: Commands<'_>,
    ) -> Result<Vec<Finding>, StageError> {
        let mut findings = self.check(subject);
        match commands {
            Commands::Skip => {}
            Commands::In(dir) => findings.extend(self.run_commands(subject, dir).await),
            Commands::Stage => {
                if !self.commands_for(subject).is_empty() {
                    let staged = Staged::write(subject.files)?;
                    findings.extend(self.run_commands(subject, staged.path()).await);
                }
            }
        }
        Ok(findings)
    }

    fn applicable<'p>(&'p self, subject: &Subject<'_>) -> Vec<&'p Rule> {
        self.rules
            .iter()
            .filter(|r| r.applies_to(subject.object))
            .collect()
    }
}

fn is_secret(subject: &Subject<'_>) -> bool {
    subject.object.is_some_and(|o| o.kind == ConfigKind::Secret)
}

fn finding(rule: &Rule, subject: &Subject<'_>, invalid: Invalid, command: bool) -> Finding {
    let invalid = match &rule.name {
        Some(name) => Invalid {
            reason: format!("rule {name}: {}", invalid.reason),
            ..invalid
        },
        None => invalid,
    };
    Finding {
        severity: rule.severity,
        rule: rule.name.clone(),
        command,
        secret: is_secret(subject),
        invalid,
    }
}

/// A named rule names a known object's key as `configmap/NAME/KEY` in every gate, whatever
/// path the gate read it from.
fn relabel(rule: &Rule, subject: &Subject<'_>, invalid: Invalid) -> Invalid {
    let (Some(_), Some(object)) = (&rule.name, subject.object) else {
        return invalid;
    };
    match subject.files.iter().find(|f| f.path == invalid.file) {
        Some(file) => Invalid {
            file: format!("{}/{}", object.label(), file.name),
            ..invalid
        },
        None => invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{Format, ValidateCommand, Validator};

    fn schema() -> jsonschema::Validator {
        jsonschema::validator_for(&serde_json::json!({
            "type": "object", "properties": {"port": {"type": "integer"}}
        }))
        .expect("schema")
    }

    fn rule(name: &str, keys: &[&str], severity: Severity, validator: Validator) -> Rule {
        Rule {
            name: Some(name.into()),
            kinds: Vec::new(),
            namespaces: Vec::new(),
            names: Vec::new(),
            labels: None,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            severity,
            validator,
        }
    }

    fn file(path: &str, name: &str, text: &str) -> ConfigFile {
        ConfigFile {
            path: path.into(),
            name: name.into(),
            bytes: text.as_bytes().to_vec(),
            mode: crate::config::DEFAULT_MODE,
        }
    }

    fn identity(kind: ConfigKind) -> Identity {
        Identity {
            kind,
            namespace: Some("prod".into()),
            name: "app".into(),
            labels: None,
        }
    }

    #[test]
    fn named_rules_name_object_key_line_and_rule() {
        let policy = Policy {
            rules: vec![
                rule(
                    "ports",
                    &["*.yaml"],
                    Severity::Deny,
                    Validator::for_every_file(Some(Format::Yaml), Some(schema()), None),
                ),
                rule(
                    "json",
                    &["*.json"],
                    Severity::Warn,
                    Validator::for_every_file(None, None, None),
                ),
            ],
        };
        let files = vec![
            file("/etc/app/app.yaml", "app.yaml", "name: x\nport: hunter2\n"),
            file("/etc/app/extra.json", "extra.json", "{"),
            file("/etc/app/notes.txt", "notes.txt", "{"),
        ];
        let object = identity(ConfigKind::ConfigMap);
        let subject = Subject {
            object: Some(&object),
            files: &files,
        };
        let findings = policy.check(&subject);
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert_eq!(
            findings[0].message(true),
            "configmap/app/app.yaml:2:7: rule ports: schema: at /port: \"hunter2\" is not of type \"integer\""
        );
        assert!(findings[0].denies());
        assert!(
            findings[1]
                .message(true)
                .starts_with("configmap/app/extra.json:1:"),
            "{findings:?}"
        );
        assert!(!findings[1].denies());

        let secret = identity(ConfigKind::Secret);
        let subject = Subject {
            object: Some(&secret),
            files: &files,
        };
        let findings = policy.check(&subject);
        assert_eq!(
            findings[0].message(true),
            "secret/app/app.yaml:2:7: rule ports: schema: at /port"
        );
        assert!(findings[0].message(false).contains("hunter2"));
    }

    #[test]
    fn the_flags_rule_keeps_its_words() {
        let policy = Policy::from_flags(Validator::for_every_file(None, None, None));
        let files = vec![file("/etc/app/a.json", "a.json", "{")];
        let findings = policy.check(&Subject {
            object: None,
            files: &files,
        });
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0].message(true).starts_with("/etc/app/a.json:1:"),
            "{findings:?}"
        );
    }

    #[tokio::test]
    async fn commands_run_where_asked_and_skip_objects_without_their_files() {
        let command = |line: &str| {
            Some(ValidateCommand::parse(line, std::time::Duration::from_secs(10)).expect("cmd"))
        };
        let policy = Policy {
            rules: vec![rule(
                "lint",
                &[],
                Severity::Deny,
                Validator::for_every_file(None, None, command("grep -q ok {dir}/app.conf")),
            )],
        };
        let object = identity(ConfigKind::ConfigMap);
        let good = vec![file("x/app.conf", "app.conf", "ok\n")];
        let bad = vec![file("x/app.conf", "app.conf", "no\n")];
        let other = vec![file("x/other.conf", "other.conf", "no\n")];
        let subject = |files| Subject {
            object: Some(&object),
            files,
        };
        let (good, bad, other) = (subject(&good), subject(&bad), subject(&other));
        let run = |s| policy.evaluate(s, Commands::Stage);
        assert!(run(&good).await.expect("staged").is_empty());
        let findings = run(&bad).await.expect("staged");
        assert_eq!(findings.len(), 1);
        assert!(findings[0]
            .message(true)
            .starts_with("configmap/app: rule lint: `grep -q ok {dir}/app.conf`: "));
        assert!(run(&other).await.expect("staged").is_empty());
        let skipped = policy.evaluate(&bad, Commands::Skip).await;
        assert!(skipped.expect("nothing staged").is_empty());
    }
}
