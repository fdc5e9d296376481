//! A fluent builder of Kubernetes manifest streams, in the style of just's `tests/test.rs`: a
//! test says which objects it wants and how they use each other, not how to indent YAML.
//!
//! ```text
//! Manifests::new()
//!     .config_map("app").data("a", "one").data("b", "two")
//!     .secret("creds").string_data("pass", "hunter2")
//!     .deployment("web").mounts_config_map("app").env_from_secret("creds")
//!     .render()
//! ```
//!
//! Every method after `config_map`, `secret`, `deployment`, `workload`, `object` or `raw` applies
//! to the document it started (the current one); the env methods apply to the current container
//! (`container`, or the default `app` one). Documents are written in block style, except where
//! [`Manifests::flow`] asks for flow style.
//!
//! Only std, and no `super::`: the crate's unit tests include this file by path.

/// How scalar values of `data` and `stringData` are quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quote {
    #[default]
    Plain,
    Single,
    Double,
}

impl Quote {
    fn apply(self, value: &str) -> String {
        match self {
            Quote::Plain => value.to_string(),
            Quote::Single => format!("'{value}'"),
            Quote::Double => format!("\"{value}\""),
        }
    }
}

/// A stream of documents, the last one being built.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    documents: Vec<Document>,
}

#[derive(Debug, Clone)]
enum Document {
    Object(Box<Object>),
    Raw(String),
}

#[derive(Debug, Clone, Default)]
struct Object {
    api_version: String,
    kind: String,
    name: String,
    namespace: Option<String>,
    /// The `# Source: …` line Helm writes before each document.
    source: Option<String>,
    /// A comment line inside `metadata`, after the name.
    comment: Option<String>,
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
    /// `(section, key, value)`: `data`, `stringData` or `binaryData`.
    data: Vec<(&'static str, String, String)>,
    quote: Quote,
    flow: bool,
    /// Extra `spec` fields, `key: value` with the value in flow style.
    spec: Vec<(String, String)>,
    template: Option<Template>,
}

#[derive(Debug, Clone)]
struct Template {
    /// Dotted path of the pod template in the object, e.g. `spec.jobTemplate.spec.template`.
    path: String,
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
    containers: Vec<Container>,
    /// Block-style list items, each starting with `- name: …`.
    volumes: Vec<String>,
}

#[derive(Debug, Clone)]
struct Container {
    name: String,
    env_from: Vec<String>,
    env: Vec<String>,
}

impl Container {
    fn new(name: &str) -> Container {
        Container {
            name: name.to_string(),
            env_from: Vec::new(),
            env: Vec::new(),
        }
    }
}

impl Manifests {
    pub fn new() -> Manifests {
        Manifests::default()
    }

    // ---- documents ------------------------------------------------------------------------

    /// Starts a `v1` ConfigMap.
    pub fn config_map(self, name: &str) -> Manifests {
        self.object("v1", "ConfigMap", name)
    }

    /// Starts a `v1` Secret.
    pub fn secret(self, name: &str) -> Manifests {
        self.object("v1", "Secret", name)
    }

    /// Starts an `apps/v1` Deployment with a pod template at `spec.template`.
    pub fn deployment(self, name: &str) -> Manifests {
        self.workload("apps/v1", "Deployment", name)
    }

    /// Starts any object with a pod template at `spec.template` (see [`Manifests::template_at`]).
    pub fn workload(self, api_version: &str, kind: &str, name: &str) -> Manifests {
        let mut this = self.object(api_version, kind, name);
        this.current().template = Some(Template {
            path: "spec.template".to_string(),
            labels: Vec::new(),
            annotations: Vec::new(),
            containers: Vec::new(),
            volumes: Vec::new(),
        });
        this
    }

    /// Starts any object without a pod template (a Service, a Rollout with a `workloadRef`).
    pub fn object(mut self, api_version: &str, kind: &str, name: &str) -> Manifests {
        self.documents.push(Document::Object(Box::new(Object {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            ..Object::default()
        })));
        self
    }

    /// Adds a document as written (a leading `---` is added when missing).
    pub fn raw(mut self, text: &str) -> Manifests {
        let text = if text.starts_with("---") {
            text.to_string()
        } else {
            format!("---\n{text}")
        };
        self.documents.push(Document::Raw(text));
        self
    }

    /// Adds every document of `other` after these; the last of them becomes the current one.
    pub fn append(mut self, other: Manifests) -> Manifests {
        self.documents.extend(other.documents);
        self
    }

    // ---- the current document -------------------------------------------------------------

    pub fn namespace(mut self, namespace: &str) -> Manifests {
        self.current().namespace = Some(namespace.to_string());
        self
    }

    /// The `# Source: PATH` comment line before the document, as Helm writes it.
    pub fn source(mut self, path: &str) -> Manifests {
        self.current().source = Some(path.to_string());
        self
    }

    /// A comment line in `metadata`, after the name.
    pub fn comment(mut self, text: &str) -> Manifests {
        self.current().comment = Some(text.to_string());
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Manifests {
        let object = self.current();
        object.labels.push((key.to_string(), value.to_string()));
        self
    }

    /// An annotation of the object itself (`helm.sh/hook`, `reconfig/configmaps`, …).
    pub fn annotation(mut self, key: &str, value: &str) -> Manifests {
        let object = self.current();
        object
            .annotations
            .push((key.to_string(), value.to_string()));
        self
    }

    /// A key of `data` (for a Secret: base64, as the API stores it).
    pub fn data(self, key: &str, value: &str) -> Manifests {
        self.entry("data", key, value)
    }

    /// A key of a Secret's `stringData`.
    pub fn string_data(self, key: &str, value: &str) -> Manifests {
        self.entry("stringData", key, value)
    }

    /// A key of `binaryData` (base64).
    pub fn binary_data(self, key: &str, value: &str) -> Manifests {
        self.entry("binaryData", key, value)
    }

    fn entry(mut self, section: &'static str, key: &str, value: &str) -> Manifests {
        let object = self.current();
        object
            .data
            .push((section, key.to_string(), value.to_string()));
        self
    }

    /// How `data` and `stringData` values are quoted.
    pub fn quote(mut self, quote: Quote) -> Manifests {
        self.current().quote = quote;
        self
    }

    /// Flow style for the current document's maps: `data: {a: one}` and the pod template's
    /// `metadata: {labels: {…}}`.
    pub fn flow(mut self) -> Manifests {
        self.current().flow = true;
        self
    }

    /// A `spec` field, its value in flow style: `.spec("updateStrategy", "{type: OnDelete}")`.
    pub fn spec(mut self, key: &str, value: &str) -> Manifests {
        let object = self.current();
        object.spec.push((key.to_string(), value.to_string()));
        self
    }

    // ---- the current pod template ---------------------------------------------------------

    /// Where the pod template sits, e.g. `spec.jobTemplate.spec.template` or `template`.
    pub fn template_at(mut self, path: &str) -> Manifests {
        self.template().path = path.to_string();
        self
    }

    pub fn template_label(mut self, key: &str, value: &str) -> Manifests {
        let template = self.template();
        template.labels.push((key.to_string(), value.to_string()));
        self
    }

    pub fn template_annotation(mut self, key: &str, value: &str) -> Manifests {
        let template = self.template();
        template
            .annotations
            .push((key.to_string(), value.to_string()));
        self
    }

    /// Starts a container (the template has one called `app` until the first call).
    pub fn container(mut self, name: &str) -> Manifests {
        self.template().containers.push(Container::new(name));
        self
    }

    /// A volume of the whole ConfigMap.
    pub fn mounts_config_map(self, name: &str) -> Manifests {
        self.volume(&format!("configMap:\n  name: {name}\n"))
    }

    /// A volume of the ConfigMap, `optional: true`.
    pub fn mounts_optional_config_map(self, name: &str) -> Manifests {
        self.volume(&format!("configMap:\n  name: {name}\n  optional: true\n"))
    }

    /// A volume of some keys of the ConfigMap: `(key, path)` items.
    pub fn mounts_config_map_items(self, name: &str, items: &[(&str, &str)]) -> Manifests {
        self.volume(&format!(
            "configMap:\n  name: {name}\n{}",
            items_block(items)
        ))
    }

    /// A volume of the whole Secret.
    pub fn mounts_secret(self, name: &str) -> Manifests {
        self.volume(&format!("secret:\n  secretName: {name}\n"))
    }

    /// A volume of some keys of the Secret: `(key, path)` items.
    pub fn mounts_secret_items(self, name: &str, items: &[(&str, &str)]) -> Manifests {
        self.volume(&format!(
            "secret:\n  secretName: {name}\n{}",
            items_block(items)
        ))
    }

    /// A projected volume of whole ConfigMaps and Secrets.
    pub fn mounts_projected(self, config_maps: &[&str], secrets: &[&str]) -> Manifests {
        let mut sources = String::from("projected:\n  sources:\n");
        for name in config_maps {
            sources.push_str(&format!("    - configMap:\n        name: {name}\n"));
        }
        for name in secrets {
            sources.push_str(&format!("    - secret:\n        name: {name}\n"));
        }
        self.volume(&sources)
    }

    /// A volume given as its block-style body (without `- name:`), e.g. `emptyDir: {}\n`.
    pub fn volume(mut self, body: &str) -> Manifests {
        let template = self.template();
        let name = format!("v{}", template.volumes.len());
        let mut item = format!("- name: {name}\n");
        for line in body.lines() {
            item.push_str(&format!("  {line}\n"));
        }
        template.volumes.push(item);
        self
    }

    /// `envFrom: [{configMapRef: {name}}]` in the current container.
    pub fn env_from_config_map(self, name: &str) -> Manifests {
        self.env_from(&format!("- configMapRef:\n    name: {name}\n"))
    }

    /// `envFrom: [{secretRef: {name}}]` in the current container.
    pub fn env_from_secret(self, name: &str) -> Manifests {
        self.env_from(&format!("- secretRef:\n    name: {name}\n"))
    }

    fn env_from(mut self, item: &str) -> Manifests {
        self.container_mut().env_from.push(item.to_string());
        self
    }

    /// `env: [{name: var, valueFrom: {configMapKeyRef: {name, key}}}]` in the current container.
    pub fn env_config_map_key(self, var: &str, name: &str, key: &str) -> Manifests {
        self.env_key_ref(var, "configMapKeyRef", name, key)
    }

    /// `env: [{name: var, valueFrom: {secretKeyRef: {name, key}}}]` in the current container.
    pub fn env_secret_key(self, var: &str, name: &str, key: &str) -> Manifests {
        self.env_key_ref(var, "secretKeyRef", name, key)
    }

    fn env_key_ref(mut self, var: &str, reference: &str, name: &str, key: &str) -> Manifests {
        let item = format!(
            "- name: {var}\n  valueFrom:\n    {reference}:\n      name: {name}\n      key: {key}\n"
        );
        self.container_mut().env.push(item);
        self
    }

    // ---- output ---------------------------------------------------------------------------

    /// The stream: every document, each starting with `---`.
    pub fn render(&self) -> String {
        self.documents
            .iter()
            .map(|document| match document {
                Document::Object(object) => object.render(),
                Document::Raw(text) => text.clone(),
            })
            .collect()
    }

    /// The rendered documents, one string each.
    pub fn documents(&self) -> Vec<String> {
        self.documents
            .iter()
            .map(|document| Manifests {
                documents: vec![document.clone()],
            })
            .map(|one| one.render())
            .collect()
    }

    fn current(&mut self) -> &mut Object {
        match self.documents.last_mut() {
            Some(Document::Object(object)) => object,
            Some(Document::Raw(_)) => panic!("a raw document cannot be changed"),
            None => panic!("start a document first (config_map, deployment, …)"),
        }
    }

    fn template(&mut self) -> &mut Template {
        let object = self.current();
        let what = format!("{} {}", object.kind, object.name);
        object
            .template
            .as_mut()
            .unwrap_or_else(|| panic!("{what} has no pod template (start it with workload)"))
    }

    fn container_mut(&mut self) -> &mut Container {
        let template = self.template();
        if template.containers.is_empty() {
            template.containers.push(Container::new("app"));
        }
        let last = template.containers.len() - 1;
        &mut template.containers[last]
    }
}

fn items_block(items: &[(&str, &str)]) -> String {
    let mut block = String::from("  items:\n");
    for (key, path) in items {
        block.push_str(&format!("    - key: {key}\n      path: {path}\n"));
    }
    block
}

/// `text` with every line indented by `depth` levels of two spaces.
fn indent(text: &str, depth: usize) -> String {
    let pad = "  ".repeat(depth);
    text.lines().map(|line| format!("{pad}{line}\n")).collect()
}

/// A block map `name:\n  key: value` at `depth`, or nothing when empty.
fn block_map(name: &str, entries: &[(String, String)], depth: usize) -> String {
    if entries.is_empty() {
        return String::new();
    }
    let mut text = format!("{name}:\n");
    for (key, value) in entries {
        text.push_str(&format!("  {key}: {value}\n"));
    }
    indent(&text, depth)
}

fn flow_map(entries: &[(String, String)]) -> String {
    let inner: Vec<String> = entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn quoted(entries: &[(String, String)]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|(k, v)| (k.clone(), Quote::Double.apply(v)))
        .collect()
}

impl Object {
    fn render(&self) -> String {
        let mut doc = String::from("---\n");
        if let Some(source) = &self.source {
            doc.push_str(&format!("# Source: {source}\n"));
        }
        doc.push_str(&format!(
            "apiVersion: {}\nkind: {}\nmetadata:\n  name: {}\n",
            self.api_version, self.kind, self.name
        ));
        if let Some(namespace) = &self.namespace {
            doc.push_str(&format!("  namespace: {namespace}\n"));
        }
        if let Some(comment) = &self.comment {
            doc.push_str(&format!("  # {comment}\n"));
        }
        doc.push_str(&block_map("labels", &quoted(&self.labels), 1));
        doc.push_str(&block_map("annotations", &quoted(&self.annotations), 1));
        for section in ["data", "stringData", "binaryData"] {
            let entries: Vec<(String, String)> = self
                .data
                .iter()
                .filter(|(s, _, _)| *s == section)
                .map(|(_, k, v)| {
                    let quote = if section == "binaryData" {
                        Quote::Plain
                    } else {
                        self.quote
                    };
                    (k.clone(), quote.apply(v))
                })
                .collect();
            if entries.is_empty() {
                continue;
            }
            if self.flow {
                doc.push_str(&format!("{section}: {}\n", flow_map(&entries)));
            } else {
                doc.push_str(&block_map(section, &entries, 0));
            }
        }
        doc.push_str(&self.render_spec());
        doc
    }

    /// `spec` fields, then the pod template at its path (sharing a leading `spec:`).
    fn render_spec(&self) -> String {
        let fields: String = self
            .spec
            .iter()
            .map(|(key, value)| format!("  {key}: {value}\n"))
            .collect();
        let Some(template) = &self.template else {
            return if fields.is_empty() {
                String::new()
            } else {
                format!("spec:\n{fields}")
            };
        };
        let parts: Vec<&str> = template.path.split('.').collect();
        let mut text = String::new();
        if parts[0] != "spec" && !fields.is_empty() {
            text.push_str(&format!("spec:\n{fields}"));
        }
        for (depth, part) in parts.iter().enumerate() {
            text.push_str(&indent(&format!("{part}:"), depth));
            if depth == 0 && *part == "spec" {
                text.push_str(&fields);
            }
        }
        text.push_str(&template.render(self.flow, parts.len()));
        text
    }
}

impl Template {
    fn render(&self, flow: bool, depth: usize) -> String {
        let mut text = String::new();
        let labels = quoted(&self.labels);
        let annotations = quoted(&self.annotations);
        if flow && (!labels.is_empty() || !annotations.is_empty()) {
            let mut meta = Vec::new();
            if !labels.is_empty() {
                meta.push(("labels".to_string(), flow_map(&labels)));
            }
            if !annotations.is_empty() {
                meta.push(("annotations".to_string(), flow_map(&annotations)));
            }
            text.push_str(&indent(&format!("metadata: {}", flow_map(&meta)), depth));
        } else if !labels.is_empty() || !annotations.is_empty() {
            text.push_str(&indent("metadata:", depth));
            text.push_str(&block_map("labels", &labels, depth + 1));
            text.push_str(&block_map("annotations", &annotations, depth + 1));
        }
        text.push_str(&indent("spec:\n  containers:", depth));
        let default = [Container::new("app")];
        let containers = if self.containers.is_empty() {
            &default[..]
        } else {
            &self.containers[..]
        };
        for container in containers {
            let mut item = format!("- name: {}\n  image: app:1\n", container.name);
            if !container.env_from.is_empty() {
                item.push_str("  envFrom:\n");
                item.push_str(&indent(&container.env_from.concat(), 2));
            }
            if !container.env.is_empty() {
                item.push_str("  env:\n");
                item.push_str(&indent(&container.env.concat(), 2));
            }
            text.push_str(&indent(&item, depth + 2));
        }
        if !self.volumes.is_empty() {
            text.push_str(&indent("volumes:", depth + 1));
            text.push_str(&indent(&self.volumes.concat(), depth + 2));
        }
        text
    }
}
