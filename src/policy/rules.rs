//! A policy ready to judge: rules with their selectors and compiled checks, and the object a
//! set of files belongs to, as far as the gate knows it.

use std::collections::BTreeMap;
use std::fmt;

use super::glob;
use super::model::LabelSelector;
use crate::manifest::object::ConfigKind;
use crate::validate::Validator;

/// What a failing rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The object is refused (admit), the version rejected (watch), the check fails (check).
    Deny,
    /// Reported (admission `warnings`, a log line) and let through.
    Warn,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Deny => "deny",
            Severity::Warn => "warn",
        })
    }
}

/// One rule: which objects and keys, and what those keys must satisfy.
pub struct Rule {
    /// `None` for the rule the flags (`--format`, `--schema`, `--validate-cmd`) make, whose
    /// messages stay as they always were.
    pub name: Option<String>,
    pub kinds: Vec<ConfigKind>,
    pub namespaces: Vec<String>,
    pub names: Vec<String>,
    pub labels: Option<LabelSelector>,
    /// Key globs; empty selects every key.
    pub keys: Vec<String>,
    pub severity: Severity,
    pub validator: Validator,
}

/// The object a set of files is: what the gate knows of it. A gate that knows less (a plain
/// folder, `watch` without labels) leaves out what it does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub kind: ConfigKind,
    pub namespace: Option<String>,
    pub name: String,
    /// `None` when the gate cannot see them (`watch`, folders); `Some` (maybe empty) otherwise.
    pub labels: Option<BTreeMap<String, String>>,
}

impl Identity {
    /// `configmap/NAME` or `secret/NAME`, as every gate names the object in its messages.
    pub fn label(&self) -> String {
        let kind = match self.kind {
            ConfigKind::ConfigMap => "configmap",
            ConfigKind::Secret => "secret",
        };
        format!("{kind}/{}", self.name)
    }
}

impl Rule {
    /// Whether the rule selects the object; a selector on something the gate does not know
    /// does not select it (see `blind_spot`).
    pub fn applies_to(&self, object: Option<&Identity>) -> bool {
        if self.kinds.is_empty()
            && self.namespaces.is_empty()
            && self.names.is_empty()
            && self.labels.is_none()
        {
            return true;
        }
        let Some(object) = object else {
            return false;
        };
        (self.kinds.is_empty() || self.kinds.contains(&object.kind))
            && (self.namespaces.is_empty()
                || object
                    .namespace
                    .as_deref()
                    .is_some_and(|ns| glob::any(&self.namespaces, ns)))
            && glob::any(&self.names, &object.name)
            && self.labels.as_ref().is_none_or(|selector| {
                object
                    .labels
                    .as_ref()
                    .is_some_and(|labels| selector.matches(labels))
            })
    }

    /// Why the rule can never select `object` in this gate, if so: it selects on something the
    /// gate does not know (labels in a `watch` that cannot read them, any identity for a plain folder).
    pub fn blind_spot(&self, object: Option<&Identity>) -> Option<String> {
        let rule = self.name.as_deref().unwrap_or("flags");
        let Some(object) = object else {
            return (!self.applies_to(None)).then(|| {
                format!("rule {rule} selects objects, but this folder names none (write configmap/NAME=PATH)")
            });
        };
        if self.labels.is_some() && object.labels.is_none() {
            return Some(format!(
                "rule {rule} selects by labels, which {} does not show here; it does not apply",
                object.label()
            ));
        }
        if !self.namespaces.is_empty() && object.namespace.is_none() {
            return Some(format!(
                "rule {rule} selects by namespace, but the namespace of {} is not known (set POD_NAMESPACE); it does not apply",
                object.label()
            ));
        }
        None
    }

    /// Whether the rule selects this key.
    pub fn selects_key(&self, key: &str) -> bool {
        glob::any(&self.keys, key)
    }
}

/// A policy: the rules every gate applies, in order.
pub struct Policy {
    pub rules: Vec<Rule>,
}

impl Policy {
    /// The one rule the flags make: every object, every key, deny.
    pub fn from_flags(validator: Validator) -> Self {
        Policy {
            rules: vec![Rule {
                name: None,
                kinds: Vec::new(),
                namespaces: Vec::new(),
                names: Vec::new(),
                labels: None,
                keys: Vec::new(),
                severity: Severity::Deny,
                validator,
            }],
        }
    }

    /// The names of rules that run an external command.
    pub fn rules_with_commands(&self) -> Vec<&str> {
        self.rules
            .iter()
            .filter(|r| r.validator.command().is_some())
            .map(|r| r.name.as_deref().unwrap_or("flags"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        Rule {
            name: Some("r".into()),
            kinds: Vec::new(),
            namespaces: Vec::new(),
            names: Vec::new(),
            labels: None,
            keys: Vec::new(),
            severity: Severity::Deny,
            validator: Validator::for_every_file(None, None, None),
        }
    }

    fn object(labels: Option<&[(&str, &str)]>) -> Identity {
        Identity {
            kind: ConfigKind::ConfigMap,
            namespace: Some("prod-eu".into()),
            name: "app-web".into(),
            labels: labels.map(|l| {
                l.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
        }
    }

    #[test]
    fn selection_by_kind_namespace_name_and_labels() {
        let any = rule();
        assert!(any.applies_to(None));
        assert!(any.applies_to(Some(&object(None))));

        let secrets = Rule {
            kinds: vec![ConfigKind::Secret],
            ..rule()
        };
        assert!(!secrets.applies_to(Some(&object(None))));
        assert!(!secrets.applies_to(None));
        assert!(secrets.blind_spot(None).is_some());

        let named = Rule {
            namespaces: vec!["prod-*".into()],
            names: vec!["app-*".into()],
            ..rule()
        };
        assert!(named.applies_to(Some(&object(None))));
        let unknown_ns = Identity {
            namespace: None,
            ..object(None)
        };
        assert!(!named.applies_to(Some(&unknown_ns)));
        assert!(named.blind_spot(Some(&unknown_ns)).is_some());

        let labelled = Rule {
            labels: Some(LabelSelector {
                match_labels: [("reconfig/validate".to_string(), "true".to_string())].into(),
                match_expressions: Vec::new(),
            }),
            ..rule()
        };
        assert!(labelled.applies_to(Some(&object(Some(&[("reconfig/validate", "true")])))));
        assert!(!labelled.applies_to(Some(&object(Some(&[])))));
        assert!(!labelled.applies_to(Some(&object(None))));
        assert!(labelled.blind_spot(Some(&object(None))).is_some());
        assert!(labelled.blind_spot(Some(&object(Some(&[])))).is_none());
    }

    #[test]
    fn key_globs() {
        let yaml = Rule {
            keys: vec!["*.yaml".into(), "app.conf".into()],
            ..rule()
        };
        assert!(yaml.selects_key("a.yaml"));
        assert!(yaml.selects_key("app.conf"));
        assert!(!yaml.selects_key("a.json"));
        assert!(rule().selects_key("anything"));
    }
}
