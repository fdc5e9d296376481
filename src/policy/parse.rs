//! The policy file's text → its model, checked against `schemas/policy.schema.json` with the
//! line of every problem. No I/O: the loader reads the file and the schemas it names.

use std::sync::OnceLock;

use serde_json::Value as Json;

use super::model::PolicySpec;
use crate::manifest::node::{Limits, Node};
use crate::manifest::parse::parse_documents;
use crate::units::parse_duration;
use crate::validate::{find_node, to_json, Invalid, ValidateCommand};

/// The JSON Schema every policy file must satisfy, shipped as `schemas/policy.schema.json`.
pub const POLICY_SCHEMA: &str = include_str!("../../schemas/policy.schema.json");

fn policy_schema() -> Option<&'static jsonschema::Validator> {
    static SCHEMA: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let json: Json = serde_json::from_str(POLICY_SCHEMA).ok()?;
            jsonschema::validator_for(&json).ok()
        })
        .as_ref()
}

/// Parses and checks a policy; `file` names it in the problems (`policy.yaml:7:15: …`).
pub fn parse(file: &str, text: &str) -> Result<PolicySpec, Vec<Invalid>> {
    let docs = parse_documents(text, Limits::default()).map_err(|e| {
        let e = e.at_content_end(text);
        vec![Invalid {
            line: Some(e.pos.line),
            column: Some(e.pos.column),
            ..Invalid::new(file, e.message)
        }]
    })?;
    let mut docs = docs.into_iter().flatten();
    let (Some(root), None) = (docs.next(), docs.next()) else {
        return Err(vec![Invalid::new(
            file,
            "a policy is one YAML document (apiVersion: reconfig/v1, kind: Policy, rules: [...])",
        )]);
    };
    let json = to_json(&root);
    let Some(schema) = policy_schema() else {
        return Err(vec![Invalid::new(
            file,
            "the built-in policy schema does not compile",
        )]);
    };
    let mut problems: Vec<Invalid> = schema
        .iter_errors(&json)
        .map(|error| {
            let pointer = error.instance_path().to_string();
            at(file, &root, &pointer, error.to_string())
        })
        .collect();
    if !problems.is_empty() {
        problems.sort_by_key(|p| (p.line, p.column));
        return Err(problems);
    }
    let spec: PolicySpec = serde_json::from_value(json).map_err(|e| {
        vec![Invalid::new(
            file,
            format!("does not fit the policy model: {e}"),
        )]
    })?;
    let mut seen: Vec<&str> = Vec::new();
    for (i, rule) in spec.rules.iter().enumerate() {
        let here = |field: &str, why: String| at(file, &root, &format!("/rules/{i}/{field}"), why);
        if seen.contains(&rule.name.as_str()) {
            problems.push(here("name", format!("a second rule named {:?}", rule.name)));
        }
        seen.push(&rule.name);
        if let Some(timeout) = &rule.timeout {
            if rule.command.is_none() {
                problems.push(here("timeout", "a timeout without a command".to_string()));
            }
            if let Err(e) = parse_duration(timeout) {
                problems.push(here("timeout", e));
            }
        }
        if let Some(command) = &rule.command {
            if let Err(e) = ValidateCommand::parse(command, std::time::Duration::ZERO) {
                problems.push(here("command", e));
            }
        }
        if let Some(schema) = &rule.schema {
            if let Err(why) = stays_inside(schema) {
                problems.push(here("schema", why));
            }
        }
    }
    if problems.is_empty() {
        Ok(spec)
    } else {
        Err(problems)
    }
}

/// A problem at the node a JSON pointer leads to (or the nearest one above it that exists).
fn at(file: &str, root: &Node<'_>, pointer: &str, why: String) -> Invalid {
    let mut path = pointer.to_string();
    let node = loop {
        if let Some(node) = find_node(root, &path) {
            break node;
        }
        match path.rsplit_once('/') {
            Some((up, _)) => path = up.to_string(),
            None => break root,
        }
    };
    let place = if pointer.is_empty() {
        String::new()
    } else {
        format!("at {pointer}: ")
    };
    Invalid {
        line: Some(node.start.line),
        column: Some(node.start.column),
        ..Invalid::new(file, format!("{place}{why}"))
    }
}

/// A schema path must be relative and stay in the policy's folder (a policy mounted from a
/// ConfigMap must not point the webhook at other files of its file system).
pub fn stays_inside(path: &str) -> Result<(), String> {
    let p = std::path::Path::new(path);
    if p.is_absolute() {
        return Err(format!(
            "{path:?} is absolute; write it relative to the policy file"
        ));
    }
    if p.components().any(|c| {
        !matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    }) {
        return Err(format!("{path:?} leaves the policy file's folder"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
apiVersion: reconfig/v1
kind: Policy
rules:
  - name: app-config
    match:
      kinds: [ConfigMap]
      namespaces: [\"prod-*\"]
      names: [\"app-*\"]
      labels:
        matchLabels: {reconfig/validate: \"true\"}
        matchExpressions:
          - {key: tier, operator: In, values: [web]}
    keys: [\"*.yaml\"]
    schema: schemas/app.json
    severity: deny
  - name: nginx
    keys: [nginx.conf]
    command: nginx -t -c {dir}/nginx.conf
    timeout: 10s
    severity: warn
";

    #[test]
    fn a_full_policy_parses() {
        let spec = parse("p.yaml", GOOD).expect("valid");
        assert_eq!(spec.rules.len(), 2);
        assert_eq!(spec.rules[0].select.names, vec!["app-*".to_string()]);
        let labels = spec.rules[0].select.labels.as_ref().expect("labels");
        assert_eq!(labels.match_labels["reconfig/validate"], "true");
        assert_eq!(
            spec.rules[1].command.as_deref(),
            Some("nginx -t -c {dir}/nginx.conf")
        );
    }

    #[test]
    fn schema_problems_carry_the_line() {
        let bad = GOOD.replace("severity: warn", "severity: block");
        let problems = parse("p.yaml", &bad).expect_err("invalid");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, Some(20));
        assert!(
            problems[0].reason.contains("/rules/1/severity"),
            "{:?}",
            problems[0]
        );

        let unknown = GOOD.replace("    keys: [nginx.conf]", "    keyz: [nginx.conf]");
        let problems = parse("p.yaml", &unknown).expect_err("invalid");
        assert_eq!(problems[0].line, Some(16), "{problems:?}");

        let unquoted = GOOD.replace("{reconfig/validate: \"true\"}", "{reconfig/validate: true}");
        let problems = parse("p.yaml", &unquoted).expect_err("invalid");
        assert_eq!(problems[0].line, Some(10), "{problems:?}");
        assert!(
            problems[0].to_string().starts_with("p.yaml:10:"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn meaning_is_checked_after_shape() {
        let twice = GOOD.replace("name: nginx", "name: app-config");
        let problems = parse("p.yaml", &twice).expect_err("duplicate");
        assert_eq!(problems[0].line, Some(16));
        assert!(problems[0].reason.contains("second rule"));

        let out = GOOD.replace("schemas/app.json", "../etc/app.json");
        let problems = parse("p.yaml", &out).expect_err("outside");
        assert_eq!(problems[0].line, Some(14));
        let absolute = GOOD.replace("schemas/app.json", "/etc/app.json");
        assert!(parse("p.yaml", &absolute).is_err());

        let quote = GOOD.replace("nginx -t -c {dir}/nginx.conf", "'nginx -t");
        assert_eq!(
            parse("p.yaml", &quote).expect_err("unsplittable")[0].line,
            Some(18)
        );

        let in_without_values = GOOD.replace(", values: [web]", "");
        assert!(parse("p.yaml", &in_without_values).is_err());
    }

    #[test]
    fn not_a_policy() {
        assert!(parse("p.yaml", "").is_err());
        assert!(parse("p.yaml", "a: [").expect_err("syntax")[0]
            .line
            .is_some());
        assert!(parse(
            "p.yaml",
            "apiVersion: reconfig/v1\nkind: Policy\nrules: []\n"
        )
        .is_err());
        let two = format!("{GOOD}---\n{GOOD}");
        assert!(parse("p.yaml", &two).is_err());
    }

    #[test]
    fn the_shipped_schema_compiles() {
        assert!(policy_schema().is_some());
    }
}
