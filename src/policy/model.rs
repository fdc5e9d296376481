//! The policy file's shape, as written (serde types); `schemas/policy.schema.json` says the
//! same in JSON Schema, and the parser checks it against that first, with lines.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default, rename = "match")]
    pub select: MatchSpec,
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub labels: Option<LabelSelector>,
}

/// A Kubernetes label selector: every `matchLabels` pair and every expression must hold.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default, rename = "matchLabels")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, rename = "matchExpressions")]
    pub match_expressions: Vec<LabelExpression>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LabelExpression {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether `labels` satisfy the selector, as the API server decides it.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let value = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_as_kubernetes_reads_them() {
        let labels: BTreeMap<String, String> = [("app", "web"), ("tier", "front")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let expr = |key: &str, operator: &str, values: &[&str]| LabelExpression {
            key: key.into(),
            operator: operator.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        let selector = |pairs: &[(&str, &str)], exprs: Vec<LabelExpression>| LabelSelector {
            match_labels: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            match_expressions: exprs,
        };
        assert!(selector(&[], vec![]).matches(&labels));
        assert!(selector(&[("app", "web")], vec![]).matches(&labels));
        assert!(!selector(&[("app", "db")], vec![]).matches(&labels));
        assert!(selector(&[], vec![expr("tier", "In", &["front", "back"])]).matches(&labels));
        assert!(!selector(&[], vec![expr("tier", "NotIn", &["front"])]).matches(&labels));
        assert!(selector(&[], vec![expr("zone", "NotIn", &["eu"])]).matches(&labels));
        assert!(selector(&[], vec![expr("app", "Exists", &[])]).matches(&labels));
        assert!(!selector(&[], vec![expr("app", "DoesNotExist", &[])]).matches(&labels));
        assert!(!selector(&[("app", "web")], vec![expr("zone", "Exists", &[])]).matches(&labels));
    }
}
