//! The policy over watched folders: which object each `--dir` holds (`configmap/NAME=PATH`),
//! its files grouped by folder, so the sidecar judges each object as `check` and `admit` do.

use std::path::{Path, PathBuf};

use super::evaluate::{Finding, Subject};
use super::rules::{Identity, Policy};
use crate::config::ConfigFile;

/// A policy and the objects the watched folders hold (folders not listed hold none known).
pub struct Folders {
    pub policy: Policy,
    pub objects: Vec<(PathBuf, Identity)>,
}

impl Folders {
    /// The flags' one-rule policy over folders of no known object: the sidecar as it always was.
    pub fn unnamed(policy: Policy) -> Self {
        Folders {
            policy,
            objects: Vec::new(),
        }
    }

    /// Each named folder's files as its object's, the rest together as no known object.
    fn subjects(&self, files: &[ConfigFile]) -> Vec<(Option<&Identity>, Vec<ConfigFile>)> {
        let mut named: Vec<(Option<&Identity>, Vec<ConfigFile>)> = self
            .objects
            .iter()
            .map(|(_, identity)| (Some(identity), Vec::new()))
            .collect();
        let mut rest = Vec::new();
        for file in files {
            let owner = self
                .objects
                .iter()
                .position(|(dir, _)| Path::new(&file.path).starts_with(dir));
            match owner {
                Some(i) => named[i].1.push(file.clone()),
                None => rest.push(file.clone()),
            }
        }
        if !rest.is_empty() || named.is_empty() {
            named.push((None, rest));
        }
        named
    }

    /// Formats and schemas, object by object.
    pub fn check(&self, files: &[ConfigFile]) -> Vec<Finding> {
        self.subjects(files)
            .iter()
            .flat_map(|(object, files)| {
                self.policy.check(&Subject {
                    object: *object,
                    files,
                })
            })
            .collect()
    }

    /// Whether an external command applies to any of the objects.
    pub fn has_commands(&self, files: &[ConfigFile]) -> bool {
        self.subjects(files).iter().any(|(object, files)| {
            !self
                .policy
                .commands_for(&Subject {
                    object: *object,
                    files,
                })
                .is_empty()
        })
    }

    /// The external commands that apply, each on `dir` (the folder holding the candidate files).
    pub async fn run_commands(&self, files: &[ConfigFile], dir: &Path) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (object, files) in self.subjects(files) {
            let subject = Subject {
                object,
                files: &files,
            };
            findings.extend(self.policy.run_commands(&subject, dir).await);
        }
        findings
    }

    /// Whether a rule selects by labels and a folder names its object: then the sidecar
    /// reads the object's labels (`watch::labels`).
    pub fn needs_labels(&self) -> bool {
        !self.objects.is_empty() && self.policy.rules.iter().any(|r| r.labels.is_some())
    }

    /// The objects the folders hold, to read their labels.
    pub fn objects_mut(&mut self) -> impl Iterator<Item = &mut Identity> {
        self.objects.iter_mut().map(|(_, identity)| identity)
    }

    /// Rules that can never apply to a folder here (they select on what the sidecar cannot
    /// see): said once at start. `labels_read`: the objects' labels will be read, so a rule
    /// selecting by labels is no blind spot.
    pub fn blind_spots(&self, dirs: &[PathBuf], labels_read: bool) -> Vec<String> {
        let mut out = Vec::new();
        for dir in dirs {
            let object = self.objects.iter().find(|(d, _)| d == dir).map(|(_, o)| {
                let mut o = o.clone();
                if labels_read && o.labels.is_none() {
                    o.labels = Some(Default::default());
                }
                o
            });
            for rule in &self.policy.rules {
                if let Some(why) = rule.blind_spot(object.as_ref()) {
                    out.push(format!("{}: {why}", dir.display()));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::object::ConfigKind;
    use crate::policy::{Rule, Severity};
    use crate::validate::Validator;

    #[test]
    fn files_are_judged_as_their_folders_object() {
        let rule = Rule {
            name: Some("json".into()),
            kinds: vec![ConfigKind::ConfigMap],
            namespaces: Vec::new(),
            names: vec!["app".into()],
            labels: None,
            keys: Vec::new(),
            severity: Severity::Deny,
            validator: Validator::for_every_file(None, None, None),
        };
        let folders = Folders {
            policy: Policy { rules: vec![rule] },
            objects: vec![(
                PathBuf::from("/etc/app"),
                Identity {
                    kind: ConfigKind::ConfigMap,
                    namespace: None,
                    name: "app".into(),
                    labels: None,
                },
            )],
        };
        let file = |path: &str, name: &str| ConfigFile {
            path: path.into(),
            name: name.into(),
            bytes: b"{".to_vec(),
            mode: crate::config::DEFAULT_MODE,
        };
        let files = vec![
            file("/etc/app/a.json", "a.json"),
            file("/etc/other/b.json", "b.json"),
        ];
        let findings = folders.check(&files);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(findings[0]
            .message(true)
            .starts_with("configmap/app/a.json:"));
        let spots = folders.blind_spots(
            &[PathBuf::from("/etc/app"), PathBuf::from("/etc/other")],
            false,
        );
        assert_eq!(spots.len(), 1, "{spots:?}");
        assert!(spots[0].starts_with("/etc/other: "));
    }
}
