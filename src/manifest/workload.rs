//! Workloads: where their pod templates live and which ConfigMaps and Secrets those read.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use super::checksum::Selection;
use super::edit::{may_hold_anchor, replaceable_scalar, Slot, SlotError};
use super::node::{Node, Pos, Value};
use super::object::{ConfigKind, ObjectMeta};
use super::shape::TemplateShape;
use super::stream::Problem;

/// Annotation that opts a workload or pod template out.
pub const SKIP: &str = "reconfig/skip";
/// Annotation naming ConfigMaps read through the API rather than a mount.
pub const CONFIGMAPS: &str = "reconfig/configmaps";
/// Annotation naming Secrets read through the API rather than a mount.
pub const SECRETS: &str = "reconfig/secrets";
/// Annotation listing references a hot-reloading app handles itself.
pub const EXCLUDE: &str = "reconfig/exclude";
/// Annotation listing volumes a reload sidecar watches that should count all the same.
pub const INCLUDE: &str = "reconfig/include";
/// Where reconfig writes its checksum when the pod template already has a value it did not
/// compute under the annotation key (a chart's own `checksum/config`): that value is kept.
pub const OWN_CHECKSUM: &str = "reconfig/checksum";
/// Helm's hook annotation: hooks run once and are not rolled.
pub const HELM_HOOK: &str = "helm.sh/hook";

/// A kind, qualified by its API group (empty for the core group).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKind {
    pub group: String,
    pub kind: String,
}

impl GroupKind {
    pub fn new(group: &str, kind: &str) -> Self {
        GroupKind {
            group: group.to_string(),
            kind: kind.to_string(),
        }
    }

    /// Matches a user's `kind` or `kind.group`, ignoring the kind's case.
    pub fn matches(&self, spec: &KindSpec) -> bool {
        self.kind.eq_ignore_ascii_case(&spec.kind)
            && spec.group.as_ref().is_none_or(|g| *g == self.group)
    }
}

impl fmt::Display for GroupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

/// Which workload: its kind, namespace (the stream's default filled in) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadId {
    pub kind: GroupKind,
    pub namespace: String,
    pub name: String,
}

/// `Deployment prod/web`, or `Deployment web` without a namespace: how messages name it.
impl fmt::Display for WorkloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.kind.kind,
            qualified(&self.namespace, &self.name)
        )
    }
}

/// `ns/name`, or `name` alone in the empty namespace.
pub fn qualified(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    }
}

/// A kind as a user writes it on the command line: `deployment`, `Rollout.argoproj.io`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindSpec {
    pub kind: String,
    pub group: Option<String>,
}

impl FromStr for KindSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, group) = match s.split_once('.') {
            Some((kind, group)) => (kind, Some(group.to_string())),
            None => (s, None),
        };
        if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "`{s}` is not a kind (expected KIND or KIND.GROUP, e.g. Rollout.argoproj.io)"
            ));
        }
        Ok(KindSpec {
            kind: kind.to_string(),
            group,
        })
    }
}

/// The kinds whose pod templates get a checksum, and where those templates are.
#[derive(Debug, Clone)]
pub struct TemplateKinds {
    entries: Vec<(GroupKind, Vec<String>)>,
    /// The user's `--template-path`s, to tell them when one matches nothing.
    custom: Vec<TemplatePath>,
}

/// Built-in kinds by API group; the version does not matter (`apps/v1beta1` and `apps/v1beta2`
/// are `apps`). `extensions/v1beta1` still reaches reconfig from old charts and clusters.
const BUILTIN: &[(&str, &str, &[&str])] = &[
    ("apps", "Deployment", &["spec.template"]),
    ("apps", "ReplicaSet", &["spec.template"]),
    ("apps", "StatefulSet", &["spec.template"]),
    ("apps", "DaemonSet", &["spec.template"]),
    ("extensions", "Deployment", &["spec.template"]),
    ("extensions", "ReplicaSet", &["spec.template"]),
    ("extensions", "DaemonSet", &["spec.template"]),
    ("", "ReplicationController", &["spec.template"]),
    ("", "PodTemplate", &["template"]),
    ("batch", "Job", &["spec.template"]),
    ("batch", "CronJob", &["spec.jobTemplate.spec.template"]),
    ("argoproj.io", "Rollout", &["spec.template"]),
    ("apps.kruise.io", "CloneSet", &["spec.template"]),
    ("apps.kruise.io", "StatefulSet", &["spec.template"]),
    ("apps.kruise.io", "DaemonSet", &["spec.template"]),
    ("apps.kruise.io", "BroadcastJob", &["spec.template"]),
    (
        "apps.kruise.io",
        "AdvancedCronJob",
        &[
            "spec.template.jobTemplate.spec.template",
            "spec.template.broadcastJobTemplate.spec.template",
        ],
    ),
    (
        "apps.kruise.io",
        "UnitedDeployment",
        &[
            "spec.template.statefulSetTemplate.spec.template",
            "spec.template.advancedStatefulSetTemplate.spec.template",
            "spec.template.cloneSetTemplate.spec.template",
            "spec.template.deploymentTemplate.spec.template",
        ],
    ),
    ("serving.knative.dev", "Service", &["spec.template"]),
];

impl Default for TemplateKinds {
    fn default() -> Self {
        TemplateKinds {
            entries: BUILTIN
                .iter()
                .map(|(group, kind, paths)| {
                    (
                        GroupKind::new(group, kind),
                        paths.iter().map(|p| p.to_string()).collect(),
                    )
                })
                .collect(),
            custom: Vec::new(),
        }
    }
}

/// A `--template-path KIND.GROUP=dotted.path` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplatePath {
    pub kind: GroupKind,
    pub path: String,
}

impl FromStr for TemplatePath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, path) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` should be KIND.GROUP=dotted.path, e.g. Workflow.example.com=spec.podTemplate"))?;
        let spec: KindSpec = kind.parse()?;
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(format!(
                "`{path}` is not a dotted path such as spec.template"
            ));
        }
        Ok(TemplatePath {
            kind: GroupKind {
                kind: spec.kind,
                group: spec.group.unwrap_or_default(),
            },
            path: path.to_string(),
        })
    }
}

impl fmt::Display for TemplatePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.kind, self.path)
    }
}

impl TemplateKinds {
    /// Adds user paths; a kind given by the user loses its built-in paths, so a wrong default can be corrected.
    pub fn with_custom(custom: &[TemplatePath]) -> Self {
        let mut kinds = TemplateKinds {
            custom: custom.to_vec(),
            ..TemplateKinds::default()
        };
        let mut replaced: Vec<GroupKind> = Vec::new();
        for tp in custom {
            if !replaced.contains(&tp.kind) {
                kinds.entries.retain(|(k, _)| *k != tp.kind);
                kinds.entries.push((tp.kind.clone(), Vec::new()));
                replaced.push(tp.kind.clone());
            }
            if let Some((_, paths)) = kinds.entries.iter_mut().find(|(k, _)| *k == tp.kind) {
                paths.push(tp.path.clone());
            }
        }
        kinds
    }

    /// Whether some kind of that name, in any group and any case, has pod templates: a
    /// document of any other kind needs no tree to be annotated.
    pub fn may_have_templates(&self, kind: &str) -> bool {
        self.entries
            .iter()
            .any(|(k, _)| k.kind.eq_ignore_ascii_case(kind))
    }

    /// The `--template-path`s the user gave.
    pub fn custom(&self) -> &[TemplatePath] {
        &self.custom
    }

    pub fn paths(&self, group: &str, kind: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|(k, _)| k.group == group && k.kind == kind)
            .map(|(_, p)| p.as_slice())
    }
}

/// What the `reconfig/*` annotations of a workload or pod template ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    pub skip: bool,
    /// Objects read through the API, named by annotation.
    pub declared: Vec<(ConfigKind, String)>,
    pub exclude: Vec<(ConfigKind, String)>,
    /// Objects a reload sidecar watches that count all the same.
    pub include: Vec<(ConfigKind, String)>,
}

impl Directives {
    pub fn read(annotations: Option<&Node<'_>>) -> Result<Self, Problem> {
        let mut d = Directives::default();
        let Some(annotations) = annotations else {
            return Ok(d);
        };
        if let Some((_, value)) = annotations.entry(SKIP) {
            d.skip = match value.as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("true") => true,
                Some("false") => false,
                _ => {
                    return Err(Problem::at(
                        value,
                        format!("`{SKIP}` must be \"true\" or \"false\""),
                    ))
                }
            };
        }
        for (key, kind) in [
            (CONFIGMAPS, ConfigKind::ConfigMap),
            (SECRETS, ConfigKind::Secret),
        ] {
            if let Some(value) = annotations.get(key) {
                let list = value.as_str().ok_or_else(|| {
                    Problem::at(
                        value,
                        format!("`{key}` must be a comma-separated string of names"),
                    )
                })?;
                d.declared
                    .extend(names(list).map(|n| (kind, n.to_string())));
            }
        }
        d.exclude = object_refs(annotations, EXCLUDE)?;
        d.include = object_refs(annotations, INCLUDE)?;
        Ok(d)
    }

    pub fn merge(&mut self, other: Directives) {
        self.skip |= other.skip;
        self.declared.extend(other.declared);
        self.exclude.extend(other.exclude);
        self.include.extend(other.include);
    }
}

/// Reads an annotation of `configmap/NAME,secret/NAME` items.
fn object_refs(annotations: &Node<'_>, key: &str) -> Result<Vec<(ConfigKind, String)>, Problem> {
    let Some(value) = annotations.get(key) else {
        return Ok(Vec::new());
    };
    let list = value.as_str().ok_or_else(|| {
        Problem::at(
            value,
            format!("`{key}` must be a string like configmap/NAME,secret/NAME"),
        )
    })?;
    names(list)
        .map(|item| parse_object_ref(item).map_err(|e| Problem::at(value, format!("`{key}`: {e}"))))
        .collect()
}

fn names(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Parses `configmap/NAME` or `secret/NAME`.
pub fn parse_object_ref(s: &str) -> Result<(ConfigKind, String), String> {
    let (kind, name) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` should be configmap/NAME or secret/NAME"))?;
    let kind = ConfigKind::parse(kind.trim())
        .ok_or_else(|| format!("`{kind}` is not configmap or secret (in `{s}`)"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("`{s}` names no object"));
    }
    Ok((kind, name.to_string()))
}

/// One place a pod spec reads a ConfigMap or Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub kind: ConfigKind,
    pub name: String,
    pub selection: Selection,
    pub optional: bool,
    /// Where it was found, for messages: `volume "config"`, `env PASSWORD of container "app"`.
    pub via: String,
    pub pos: Pos,
    /// For a volume that a known reload sidecar mounts: that sidecar, e.g.
    /// `container "reload" (configmap-reload)`. The app gets such a change without a restart.
    pub reloaded_by: Option<String>,
    /// Where the name is written, and its quote, when it can be rewritten in place (to a
    /// versioned object's new name); `None` for a name from an alias, a tag, a block scalar.
    pub name_at: Option<(Range<usize>, Option<char>)>,
}

/// Reload sidecars known to apply a mounted ConfigMap/Secret change without a restart, by the
/// name of their image (its last path segment, without tag or digest) or of their program.
const RELOAD_SIDECARS: &[&str] = &[
    "configmap-reload",
    "prometheus-config-reloader",
    "k8s-sidecar",
];

/// Which known reload sidecar a container is, if any: `reconfig watch`, configmap-reload,
/// prometheus-config-reloader or k8s-sidecar.
pub fn reload_sidecar(container: &Node<'_>) -> Option<&'static str> {
    let base = |s: &str| -> String {
        let last = s.rsplit('/').next().unwrap_or(s);
        let last = last.split('@').next().unwrap_or(last);
        last.split(':').next().unwrap_or(last).to_string()
    };
    let words: Vec<&str> = ["command", "args"]
        .iter()
        .flat_map(|field| container.get(field).map(Node::items).unwrap_or_default())
        .filter_map(Node::as_str)
        .collect();
    let image = container.get_str("image").map(base);
    // reconfig: its image running `watch`, or a `reconfig watch` command line in any image.
    let runs_watch = words
        .windows(2)
        .any(|w| base(w[0]) == "reconfig" && w[1] == "watch")
        || (image.as_deref() == Some("reconfig") && words.first() == Some(&"watch"));
    if runs_watch {
        return Some("reconfig watch");
    }
    RELOAD_SIDECARS.iter().copied().find(|known| {
        image.as_deref() == Some(*known) || words.first().is_some_and(|w| base(w) == *known)
    })
}

/// Volume names mounted by reload sidecars (in `containers`, or native sidecars in
/// `initContainers`), each with the sidecar that reloads it.
fn reloaded_volumes(spec: &Node<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        for container in spec.get(list).map(Node::items).unwrap_or_default() {
            let Some(which) = reload_sidecar(container) else {
                continue;
            };
            let name = container.get_str("name").unwrap_or("?");
            for mount in container
                .get("volumeMounts")
                .map(Node::items)
                .unwrap_or_default()
            {
                if let Some(volume) = mount.get_str("name") {
                    out.push((
                        volume.to_string(),
                        format!("container \"{name}\" ({which})"),
                    ));
                }
            }
        }
    }
    out
}

/// Collects every ConfigMap and Secret reference of a pod spec.
///
/// `imagePullSecrets` and CSI secret refs are left out: they never reach the app's config.
pub fn references(spec: &Node<'_>, text: &str) -> Vec<Reference> {
    let mut refs = Vec::new();
    let reloaded = reloaded_volumes(spec);
    for volume in spec.get("volumes").map(Node::items).unwrap_or_default() {
        let volume_name = volume.get_str("name").unwrap_or("?");
        let via = format!("volume \"{volume_name}\"");
        let first = refs.len();
        if let Some(source) = volume.get("configMap") {
            push_volume_ref(&mut refs, source, text, ConfigKind::ConfigMap, "name", &via);
        }
        if let Some(source) = volume.get("secret") {
            push_volume_ref(
                &mut refs,
                source,
                text,
                ConfigKind::Secret,
                "secretName",
                &via,
            );
        }
        for source in volume
            .path("projected.sources")
            .map(Node::items)
            .unwrap_or_default()
        {
            if let Some(cm) = source.get("configMap") {
                push_volume_ref(&mut refs, cm, text, ConfigKind::ConfigMap, "name", &via);
            }
            if let Some(secret) = source.get("secret") {
                push_volume_ref(&mut refs, secret, text, ConfigKind::Secret, "name", &via);
            }
        }
        if let Some((_, sidecar)) = reloaded.iter().find(|(v, _)| v == volume_name) {
            for r in &mut refs[first..] {
                r.reloaded_by = Some(sidecar.clone());
            }
        }
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for container in spec.get(list).map(Node::items).unwrap_or_default() {
            let container_name = container.get_str("name").unwrap_or("?");
            for from in container
                .get("envFrom")
                .map(Node::items)
                .unwrap_or_default()
            {
                for (field, kind) in [
                    ("configMapRef", ConfigKind::ConfigMap),
                    ("secretRef", ConfigKind::Secret),
                ] {
                    if let Some(r) = from.get(field) {
                        if let Some(name) = r.get_str("name") {
                            refs.push(Reference {
                                kind,
                                name: name.to_string(),
                                selection: Selection::env(),
                                optional: r.get("optional").is_some_and(Node::is_true),
                                via: format!("envFrom of container \"{container_name}\""),
                                pos: r.start,
                                reloaded_by: None,
                                name_at: name_at(r, "name", text),
                            });
                        }
                    }
                }
            }
            for env in container.get("env").map(Node::items).unwrap_or_default() {
                let var = env.get_str("name").unwrap_or("?");
                for (field, kind) in [
                    ("configMapKeyRef", ConfigKind::ConfigMap),
                    ("secretKeyRef", ConfigKind::Secret),
                ] {
                    let Some(r) = env.get("valueFrom").and_then(|v| v.get(field)) else {
                        continue;
                    };
                    if let (Some(name), Some(key)) = (r.get_str("name"), r.get_str("key")) {
                        refs.push(Reference {
                            kind,
                            name: name.to_string(),
                            selection: Selection::keys([key.to_string()]),
                            optional: r.get("optional").is_some_and(Node::is_true),
                            via: format!("env {var} of container \"{container_name}\""),
                            pos: r.start,
                            reloaded_by: None,
                            name_at: name_at(r, "name", text),
                        });
                    }
                }
            }
        }
    }
    // Kept until output for every pod template of the stream: no spare capacity.
    refs.shrink_to_fit();
    refs
}

/// Where the name under `field` of a reference is written, when it can be rewritten in place.
fn name_at(reference: &Node<'_>, field: &str, text: &str) -> Option<(Range<usize>, Option<char>)> {
    reference
        .get(field)
        .and_then(|name| replaceable_scalar(text, name))
}

fn push_volume_ref(
    refs: &mut Vec<Reference>,
    source: &Node<'_>,
    text: &str,
    kind: ConfigKind,
    name_field: &str,
    via: &str,
) {
    let Some(name) = source.get_str(name_field) else {
        return;
    };
    let items = source.get("items").map(Node::items).unwrap_or_default();
    let selection = if items.is_empty() {
        Selection::whole()
    } else {
        Selection::keys(
            items
                .iter()
                .filter_map(|i| i.get_str("key"))
                .map(str::to_string),
        )
    };
    refs.push(Reference {
        kind,
        name: name.to_string(),
        selection,
        optional: source.get("optional").is_some_and(Node::is_true),
        via: via.to_string(),
        pos: source.start,
        reloaded_by: None,
        name_at: name_at(source, name_field, text),
    });
}

/// A pod template inside a workload.
#[derive(Debug, Clone)]
pub struct PodTemplate {
    /// Dotted path from the document root, e.g. `spec.jobTemplate.spec.template`.
    pub path: String,
    pub directives: Directives,
    pub references: Vec<Reference>,
    /// Where the checksum annotation goes, or why it cannot.
    pub slot: Result<Slot, SlotError>,
    /// Where [`OWN_CHECKSUM`] goes, when the annotation key already holds a value: if that
    /// value is not the checksum, it is someone else's and stays. `None` when the key is
    /// absent, or is itself a `reconfig/` key (reconfig's own to replace).
    pub own_slot: Option<Result<Slot, SlotError>>,
    pub pos: Pos,
    /// Every field as a digest, for `plan` to name changes other than config; empty unless
    /// `Options::template_shapes`.
    pub shape: TemplateShape,
}

/// The workload another one stands for: Argo Rollouts' `spec.workloadRef`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadRef {
    pub kind: String,
    pub name: String,
}

/// A document that has pod templates.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The document's `apiVersion`, to read the workload back from a cluster (`plan --live`).
    pub api_version: String,
    pub kind: GroupKind,
    pub name: String,
    pub namespace: Option<String>,
    pub directives: Directives,
    pub hook: Option<String>,
    pub templates: Vec<PodTemplate>,
    pub workload_ref: Option<WorkloadRef>,
    /// OpenKruise's in-place update strategy, which restarts nothing on an annotation change.
    pub in_place: Option<String>,
    /// The document may hold a YAML anchor, so a name in it is not rewritten in place.
    pub anchors: bool,
    pub pos: Pos,
}

impl Workload {
    /// Its identity, with `default_namespace` for a workload that names none.
    pub fn id(&self, default_namespace: &str) -> WorkloadId {
        WorkloadId {
            kind: self.kind.clone(),
            namespace: self
                .namespace
                .clone()
                .unwrap_or_else(|| default_namespace.to_string()),
            name: self.name.clone(),
        }
    }

    /// Reads a workload; `Ok(None)` for documents whose kind has no pod template.
    pub fn read(
        root: &Node<'_>,
        text: &str,
        meta: &ObjectMeta<'_, '_>,
        kinds: &TemplateKinds,
        annotation_key: &str,
    ) -> Result<Option<Self>, Problem> {
        let Some(paths) = kinds.paths(meta.group, meta.kind) else {
            return Ok(None);
        };
        let mut templates = Vec::new();
        for path in paths {
            let Some(template) = root.path(path) else {
                continue;
            };
            let template_meta = template.get("metadata");
            let slot = Slot::find(root, template, text, annotation_key);
            let taken = match &slot {
                Ok(slot) => slot.existing.is_some(),
                Err(e) => e.is_about_existing_value(),
            };
            let own_slot = (taken && !annotation_key.starts_with("reconfig/"))
                .then(|| Slot::find(root, template, text, OWN_CHECKSUM));
            templates.push(PodTemplate {
                path: path.clone(),
                directives: Directives::read(template_meta.and_then(|m| m.get("annotations")))?,
                references: template
                    .get("spec")
                    .map(|spec| references(spec, text))
                    .unwrap_or_default(),
                slot,
                own_slot,
                pos: template.start,
                // Filled in by `analyze` when asked for (plan): inject needs none.
                shape: TemplateShape::default(),
            });
        }
        let workload_ref = (meta.group == "argoproj.io" && meta.kind == "Rollout")
            .then(|| root.path("spec.workloadRef"))
            .flatten()
            .and_then(|r| {
                Some(WorkloadRef {
                    kind: r.get_str("kind")?.to_string(),
                    name: r.get_str("name")?.to_string(),
                })
            });
        let in_place = (meta.group == "apps.kruise.io")
            .then(|| root.path("spec.updateStrategy"))
            .flatten()
            .and_then(find_in_place);
        // Kept until output for every workload of the stream: no spare capacity.
        templates.shrink_to_fit();
        Ok(Some(Workload {
            api_version: root.get_str("apiVersion").unwrap_or_default().to_string(),
            kind: GroupKind::new(meta.group, meta.kind),
            name: meta.name.to_string(),
            namespace: meta.namespace.map(str::to_string),
            directives: Directives::read(meta.annotations)?,
            hook: meta.annotation(HELM_HOOK).map(str::to_string),
            templates,
            workload_ref,
            in_place,
            anchors: may_hold_anchor(text),
            pos: root.start,
        }))
    }
}

/// A field that names a ConfigMap or Secret, found by the field's name rather than by a
/// schema: `imagePullSecrets`, an Ingress's TLS `secretName`, a ServiceAccount's `secrets`,
/// a CSI `nodePublishSecretRef`, a custom resource's `existingSecret`. Whatever reads such
/// a field reads the object by that fixed name, so `inject --versioned` never renames it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedBy {
    pub kind: ConfigKind,
    pub name: String,
    /// Dotted path of the field, e.g. `spec.tls[0].secretName`.
    pub path: String,
    /// Offset of the name in the document's text.
    pub offset: usize,
}

/// An object of the stream that names ConfigMaps or Secrets outside what a pod template's
/// references rewrite (see [`NamedBy`]).
#[derive(Debug, Clone)]
pub struct Referrer {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub named: Vec<NamedBy>,
    pub pos: Pos,
}

/// Every field of `root`, outside its own `metadata`, that names a ConfigMap or Secret by
/// the field's name (any case): a string under a key that says `secret` or `configMap` and
/// ends in `name`, `secret`, `configmap` or `ref` (`secretName`, `existingSecret`,
/// `configMap`), and `name` (or a list's strings) under such a key (`imagePullSecrets`,
/// `secretKeyRef`, `configMap`, `secrets`). It errs towards finding too much: what it finds
/// only keeps an object from being renamed.
pub fn named_by(root: &Node<'_>) -> Vec<NamedBy> {
    let mut out = Vec::new();
    let mut path = String::new();
    walk_names(root, &mut path, None, true, &mut out);
    out
}

fn walk_names(
    node: &Node<'_>,
    path: &mut String,
    context: Option<ConfigKind>,
    top: bool,
    out: &mut Vec<NamedBy>,
) {
    match node.value() {
        Value::Mapping(entries, _) => {
            for (key, value) in entries {
                let Some(key) = key.as_str() else { continue };
                if top && key == "metadata" {
                    continue;
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                let kind = kind_named_in(key);
                if matches!(value.value(), Value::Scalar(..)) {
                    let refers = if key == "name" {
                        context
                    } else {
                        kind.filter(|_| {
                            ["name", "secret", "configmap", "ref"]
                                .iter()
                                .any(|end| ends_with_ignore_case(key, end))
                        })
                    };
                    if let Some(kind) = refers {
                        record_name(out, kind, value, path);
                    }
                } else {
                    walk_names(value, path, kind, false, out);
                }
                path.truncate(len);
            }
        }
        Value::Sequence(items, _) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                match (item.value(), context) {
                    (Value::Scalar(..), Some(kind)) => record_name(out, kind, item, path),
                    _ => walk_names(item, path, context, false, out),
                }
                path.truncate(len);
            }
        }
        Value::Scalar(..) | Value::Shared(_) => {}
    }
}

fn record_name(out: &mut Vec<NamedBy>, kind: ConfigKind, value: &Node<'_>, path: &str) {
    if let Some(name) = value.as_str().filter(|n| !n.is_empty()) {
        out.push(NamedBy {
            kind,
            name: name.to_string(),
            path: path.to_string(),
            offset: value.start.offset,
        });
    }
}

/// The kind a field's name speaks of: `…secret…` or `…configmap…`, in any case.
fn kind_named_in(key: &str) -> Option<ConfigKind> {
    if contains_ignore_case(key, "secret") {
        Some(ConfigKind::Secret)
    } else if contains_ignore_case(key, "configmap") {
        Some(ConfigKind::ConfigMap)
    } else {
        None
    }
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn ends_with_ignore_case(haystack: &str, end: &str) -> bool {
    haystack.len() >= end.len()
        && haystack.as_bytes()[haystack.len() - end.len()..].eq_ignore_ascii_case(end.as_bytes())
}

/// Finds `InPlaceIfPossible`/`InPlaceOnly` anywhere in an OpenKruise update strategy.
fn find_in_place(node: &Node<'_>) -> Option<String> {
    if let Some(s) = node.as_str() {
        return s.starts_with("InPlace").then(|| s.to_string());
    }
    let children: Vec<&Node<'_>> = match node.entries() {
        Some(entries) => entries.iter().map(|(_, v)| v).collect(),
        None => node.items().iter().collect(),
    };
    children.into_iter().find_map(find_in_place)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::Limits;
    use crate::manifest::parse::parse_documents;

    fn refs(spec: &str) -> Vec<Reference> {
        let docs = parse_documents(spec, Limits::default()).expect("yaml");
        references(docs[0].as_ref().expect("doc"), spec)
    }

    /// (kind, name, whole, env, keys, optional)
    type Summary<'r> = (ConfigKind, &'r str, bool, bool, Vec<&'r str>, bool);

    fn summary(refs: &[Reference]) -> Vec<Summary<'_>> {
        refs.iter()
            .map(|r| {
                (
                    r.kind,
                    r.name.as_str(),
                    r.selection.whole,
                    r.selection.env,
                    r.selection.named().iter().map(String::as_str).collect(),
                    r.optional,
                )
            })
            .collect()
    }

    use ConfigKind::{ConfigMap as CM, Secret as S};

    #[test]
    fn volume_forms() {
        let r = refs(
            "volumes:
  - name: a
    configMap: {name: cm-whole}
  - name: b
    configMap:
      name: cm-items
      optional: true
      items: [{key: k1, path: p}, {key: k2, path: q}]
  - name: c
    secret: {secretName: s-whole}
  - name: d
    secret: {secretName: s-items, items: [{key: tls.crt, path: c}]}
  - name: e
    projected:
      sources:
        - configMap: {name: p-cm, items: [{key: x, path: x}]}
        - secret: {name: p-s, optional: yes}
        - serviceAccountToken: {path: token}
  - name: f
    csi: {driver: x, nodePublishSecretRef: {name: csi-secret}}
",
        );
        assert_eq!(
            summary(&r),
            vec![
                (CM, "cm-whole", true, false, vec![], false),
                (CM, "cm-items", false, false, vec!["k1", "k2"], true),
                (S, "s-whole", true, false, vec![], false),
                (S, "s-items", false, false, vec!["tls.crt"], false),
                (CM, "p-cm", false, false, vec!["x"], false),
                (S, "p-s", true, false, vec![], true),
            ]
        );
        assert_eq!(r[0].via, "volume \"a\"");
    }

    #[test]
    fn container_forms_in_every_container_list() {
        let r = refs(
            "imagePullSecrets: [{name: pull}]
initContainers:
  - name: init
    envFrom: [{configMapRef: {name: init-cm}}]
containers:
  - name: app
    envFrom:
      - configMapRef: {name: env-cm, optional: true}
      - secretRef: {name: env-s}
        prefix: S_
    env:
      - name: A
        value: plain
      - name: B
        valueFrom: {configMapKeyRef: {name: key-cm, key: b}}
      - name: C
        valueFrom: {secretKeyRef: {name: key-s, key: c, optional: true}}
      - name: D
        valueFrom: {fieldRef: {fieldPath: metadata.name}}
ephemeralContainers:
  - name: debug
    env: [{name: E, valueFrom: {secretKeyRef: {name: eph-s, key: e}}}]
",
        );
        assert_eq!(
            summary(&r),
            vec![
                (CM, "init-cm", false, true, vec![], false),
                (CM, "env-cm", false, true, vec![], true),
                (S, "env-s", false, true, vec![], false),
                (CM, "key-cm", false, false, vec!["b"], false),
                (S, "key-s", false, false, vec!["c"], true),
                (S, "eph-s", false, false, vec!["e"], false),
            ]
        );
        assert_eq!(r[3].via, "env B of container \"app\"");
    }

    #[test]
    fn directives_parse_and_reject_garbage() {
        let docs = parse_documents(
            "reconfig/skip: \"TRUE\"\nreconfig/configmaps: \"a, b,\"\nreconfig/secrets: s\nreconfig/exclude: configmap/x, Secret/y\n",
            Limits::default(),
        )
        .expect("yaml");
        let d = Directives::read(docs[0].as_ref()).expect("valid");
        assert!(d.skip);
        assert_eq!(
            d.declared,
            vec![(CM, "a".into()), (CM, "b".into()), (S, "s".into())]
        );
        assert_eq!(d.exclude, vec![(CM, "x".into()), (S, "y".into())]);

        for bad in [
            "reconfig/skip: maybe\n",
            "reconfig/exclude: pod/x\n",
            "reconfig/exclude: configmap\n",
        ] {
            let docs = parse_documents(bad, Limits::default()).expect("yaml");
            assert!(Directives::read(docs[0].as_ref()).is_err(), "{bad}");
        }
    }

    #[test]
    fn reload_sidecars_are_known_by_image_or_command() {
        let which = |container: &str| {
            let docs = parse_documents(container, Limits::default()).expect("yaml");
            reload_sidecar(docs[0].as_ref().expect("doc"))
        };
        for (container, expected) in [
            (
                "{image: 'ghcr.io/jimmidyson/configmap-reload:v0.13.1'}",
                Some("configmap-reload"),
            ),
            (
                "{image: 'jimmidyson/configmap-reload'}",
                Some("configmap-reload"),
            ),
            (
                "{image: 'registry:5000/x/prometheus-config-reloader@sha256:ab'}",
                Some("prometheus-config-reloader"),
            ),
            (
                "{image: 'quay.io/kiwigrid/k8s-sidecar:1.27.4'}",
                Some("k8s-sidecar"),
            ),
            (
                "{image: 'ghcr.io/r/reconfig:0.1', args: [watch, --dir, /c]}",
                Some("reconfig watch"),
            ),
            (
                "{image: 'prom/prometheus', command: [/reconfig/reconfig], args: [watch]}",
                Some("reconfig watch"),
            ),
            (
                "{image: 'busybox', command: [/bin/configmap-reload]}",
                Some("configmap-reload"),
            ),
            // reconfig's image running something else, and look-alikes, are not reload sidecars.
            ("{image: 'ghcr.io/r/reconfig:0.1', args: [check, /c]}", None),
            (
                "{image: 'busybox', command: [cp, /usr/local/bin/reconfig, /r/reconfig]}",
                None,
            ),
            ("{image: 'example.com/configmap-reloader:1'}", None),
            ("{image: 'nginx'}", None),
        ] {
            assert_eq!(which(container), expected, "{container}");
        }
    }

    #[test]
    fn volumes_a_reload_sidecar_mounts_say_so() {
        let r = refs(
            "initContainers:
  - {name: watch, image: reconfig, restartPolicy: Always, args: [watch], volumeMounts: [{name: cfg, mountPath: /c}]}
containers:
  - name: app
    envFrom: [{configMapRef: {name: cm}}]
    volumeMounts: [{name: cfg, mountPath: /c}, {name: other, mountPath: /o}]
volumes:
  - {name: cfg, configMap: {name: cm}}
  - {name: other, projected: {sources: [{secret: {name: s}}]}}
",
        );
        let reloaded: Vec<(&str, Option<&str>)> = r
            .iter()
            .map(|r| (r.via.as_str(), r.reloaded_by.as_deref()))
            .collect();
        assert_eq!(
            reloaded,
            vec![
                (
                    "volume \"cfg\"",
                    Some("container \"watch\" (reconfig watch)")
                ),
                ("volume \"other\"", None),
                ("envFrom of container \"app\"", None),
            ]
        );
    }

    #[test]
    fn include_is_read_like_exclude() {
        let docs = parse_documents(
            "reconfig/include: configmap/a, secret/b\n",
            Limits::default(),
        )
        .expect("yaml");
        let d = Directives::read(docs[0].as_ref()).expect("valid");
        assert_eq!(d.include, vec![(CM, "a".into()), (S, "b".into())]);
        let docs = parse_documents("reconfig/include: pod/x\n", Limits::default()).expect("yaml");
        assert!(Directives::read(docs[0].as_ref()).is_err());
    }

    #[test]
    fn every_builtin_kind_has_its_paths() {
        let kinds = TemplateKinds::default();
        for (group, kind, paths) in BUILTIN {
            assert_eq!(
                kinds.paths(group, kind).map(|p| p.len()),
                Some(paths.len()),
                "{kind}.{group}"
            );
        }
        assert!(kinds.paths("apps", "Service").is_none());
        assert!(kinds.paths("", "Service").is_none());
    }

    #[test]
    fn custom_paths_replace_builtin_ones() {
        let custom: Vec<TemplatePath> = [
            "Workflow.example.com=spec.pod",
            "Deployment.apps=spec.other",
            "Deployment.apps=spec.more",
        ]
        .iter()
        .map(|s| s.parse().expect("valid"))
        .collect();
        let kinds = TemplateKinds::with_custom(&custom);
        assert_eq!(
            kinds.paths("example.com", "Workflow"),
            Some(&["spec.pod".to_string()][..])
        );
        assert_eq!(
            kinds.paths("apps", "Deployment").map(<[String]>::len),
            Some(2)
        );
        assert!("Workflow=".parse::<TemplatePath>().is_err());
        assert!("nokind".parse::<TemplatePath>().is_err());
    }

    #[test]
    fn readers_are_found_by_field_name_and_look_alikes_are_not() {
        let docs = parse_documents(
            "apiVersion: v1
kind: Thing
metadata:
  name: app
  labels: {app: app}
  annotations: {secretName: app}
spec:
  existingSecret: creds
  tls: [{secretName: tls}]
  imagePullSecrets: [{name: pull}]
  secrets: [plain]
  configMapName: cm
  template:
    spec:
      containers:
        - name: app
          env: [{name: SECRET_NAME, value: app}]
      volumes:
        - name: app
          csi: {driver: x, nodePublishSecretRef: {name: csi}}
  secretKey: not-a-name
",
            Limits::default(),
        )
        .expect("yaml");
        let found: Vec<(ConfigKind, String, String)> = named_by(docs[0].as_ref().expect("doc"))
            .into_iter()
            .map(|n| (n.kind, n.name, n.path))
            .collect();
        let expected: Vec<(ConfigKind, String, String)> = [
            (S, "creds", "spec.existingSecret"),
            (S, "tls", "spec.tls[0].secretName"),
            (S, "pull", "spec.imagePullSecrets[0].name"),
            (S, "plain", "spec.secrets[0]"),
            (CM, "cm", "spec.configMapName"),
            (
                S,
                "csi",
                "spec.template.spec.volumes[0].csi.nodePublishSecretRef.name",
            ),
        ]
        .into_iter()
        .map(|(k, n, p)| (k, n.to_string(), p.to_string()))
        .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn kind_specs_match_case_insensitively() {
        let gk = GroupKind::new("argoproj.io", "Rollout");
        assert!(gk.matches(&"rollout".parse().expect("kind")));
        assert!(gk.matches(&"Rollout.argoproj.io".parse().expect("kind")));
        assert!(!gk.matches(&"rollout.apps".parse().expect("kind")));
    }
}
