//! One stream read, resolved and ready to write back: the model's entry point.
//!
//! `analyze` runs the steps in order (cut and parse the stream, read each document's
//! objects (a `List`'s items too), index them, resolve every pod template), and `Analysis` keeps what the
//! commands need afterwards: the decisions, the index, and the text to write with edits.

use std::io::{self, Write};

use super::edit::RenameSlots;
use super::edit::{self, Edit};
use super::index::{Item, Items, ObjectIndex};
use super::node::Limits;
use super::object::{non_string_values, objects, ConfigObject, ObjectId, VERSIONED_FROM};
use super::resolve::{resolve, Resolution, Rules, TemplateResolution};
use super::shape::TemplateShape;
use super::stream::{Parsed, Stream, StreamError};
use super::version::{self, Versioning, Versions};
use super::workload::{named_by, PodTemplate, Referrer, TemplateKinds, Workload};

/// Default annotation written on pod templates.
pub const DEFAULT_ANNOTATION: &str = "checksum/config";

/// Default limit on a stream's size (`--max-input-size`).
pub const DEFAULT_MAX_INPUT_SIZE: usize = 256 * 1024 * 1024;

/// Everything that shapes how a stream is read and annotated.
#[derive(Debug, Clone)]
pub struct Options {
    pub annotation_key: String,
    pub rules: Rules,
    /// Key for HMAC-SHA256 over Secret values; plain SHA-256 without it.
    pub secret_key: Option<Vec<u8>>,
    pub kinds: TemplateKinds,
    pub limits: Limits,
    pub max_input_size: usize,
    /// Keep every pod template's fields as digests (`plan` names template changes with them);
    /// off for `inject`, which needs only the config.
    pub template_shapes: bool,
    /// Which ConfigMaps and Secrets get content-addressed names (`inject --versioned`).
    pub versioning: Versioning,
    /// Keep every workload in [`Analysis::parsed`] after its pod templates are resolved.
    /// Off, each is dropped once resolved ([`Item::Released`]) unless a later step reads it
    /// (`template_shapes`, versioning): `inject` needs only the decisions, and a stream's
    /// workloads and decisions together were most of its memory.
    pub keep_workloads: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            annotation_key: DEFAULT_ANNOTATION.to_string(),
            rules: Rules::default(),
            secret_key: None,
            kinds: TemplateKinds::default(),
            limits: Limits::default(),
            max_input_size: DEFAULT_MAX_INPUT_SIZE,
            template_shapes: false,
            versioning: Versioning::default(),
            keep_workloads: false,
        }
    }
}

/// A parsed stream with its resolution, ready to be written out.
pub struct Analysis<'a> {
    stream: Stream<'a>,
    pub parsed: Parsed<Items>,
    /// The ConfigMaps and Secrets of the stream by id.
    pub objects: ObjectIndex,
    pub resolution: Resolution,
    /// The objects renamed after their content, and the edits that do it.
    pub versions: Versions,
}

/// Parses and resolves a whole stream. Any invalid document fails the whole stream.
pub fn analyze<'a>(text: &'a str, options: &Options) -> Result<Analysis<'a>, StreamError> {
    analyze_with(text, options, Vec::new())
}

/// `analyze`, with ConfigMaps and Secrets from outside the stream that pod templates may use
/// (`inject --lookup`); they are hashed like the stream's own and never written out.
pub fn analyze_with<'a>(
    text: &'a str,
    options: &Options,
    outside: Vec<ConfigObject>,
) -> Result<Analysis<'a>, StreamError> {
    let stream = Stream::new(text, options.max_input_size)?;
    // When objects may be versioned, every document is read: any of them may name one.
    let versioning = options.versioning.may_apply(text);
    let annotation_keys = options.versioning.annotation_keys();
    // Only these kinds give items; the rest (CRDs above all) are proven valid, not read.
    let needs_tree = |kind: &str| {
        versioning
            || matches!(kind, "ConfigMap" | "Secret")
            || kind.ends_with("List")
            || options.kinds.may_have_templates(kind)
    };
    let mut parsed = stream.parse_selected(options.limits, needs_tree, |doc| {
        let mut items = Items::new();
        for (root, meta) in objects(doc.root) {
            let secret_key = options.secret_key.as_deref();
            if let Some(mut object) = ConfigObject::read(root, &meta, secret_key)? {
                for doubt in non_string_values(root, &meta) {
                    doc.doubt(doubt);
                }
                if versioning {
                    let slots = RenameSlots::find(root, doc.text, VERSIONED_FROM, &annotation_keys);
                    object.rename = Some(Box::new(slots));
                }
                items.push(Item::Config(object));
                continue;
            }
            let workload = Workload::read(
                root,
                doc.text,
                &meta,
                &options.kinds,
                &options.annotation_key,
            )?;
            if versioning {
                // Names a pod template's references hold are rewritten, not readers' names.
                let rewritten: Vec<usize> = workload
                    .iter()
                    .flat_map(|w| &w.templates)
                    .flat_map(|t| &t.references)
                    .filter_map(|r| r.name_at.as_ref().map(|(range, _)| range.start))
                    .collect();
                let mut named = named_by(root);
                named.retain(|n| !rewritten.contains(&n.offset));
                if !named.is_empty() {
                    items.push(Item::Referrer(Box::new(Referrer {
                        kind: meta.kind.to_string(),
                        name: meta.name.to_string(),
                        namespace: meta.namespace.map(str::to_string),
                        named,
                        pos: root.start,
                    })));
                }
            }
            if let Some(workload) = workload {
                let mut workload = Box::new(workload);
                if options.template_shapes {
                    for t in &mut workload.templates {
                        if let Some(template) = root.path(&t.path) {
                            t.shape = TemplateShape::of(template);
                        }
                    }
                }
                items.push(Item::Workload(workload));
            }
        }
        // Kept until output for every document of the stream: no spare capacity.
        items.shrink_to_fit();
        Ok(items)
    })?;
    let default_namespace = options.rules.namespace.as_deref().unwrap_or("");
    let objects =
        ObjectIndex::new(&parsed, default_namespace).with_outside(outside, default_namespace);
    let unmatched = unmatched_template_paths(&parsed, &options.kinds);
    // Only `plan` (template shapes) and versioning read workloads after their resolution.
    let release_workloads = !(options.keep_workloads || options.template_shapes || versioning);
    let mut resolution = resolve(
        &mut parsed,
        &objects,
        &options.rules,
        &options.annotation_key,
        release_workloads,
    );
    resolution.unmatched.extend(unmatched);
    let versions = version::plan(&parsed, &objects, &options.rules, &options.versioning);
    Ok(Analysis {
        stream,
        parsed,
        objects,
        resolution,
        versions,
    })
}

/// The ConfigMaps and Secrets of a stream, reduced to digests as `analyze` reduces them:
/// objects read from elsewhere (the cluster) for [`analyze_with`].
pub fn config_objects(text: &str, options: &Options) -> Result<Vec<ConfigObject>, StreamError> {
    let stream = Stream::new(text, options.max_input_size)?;
    let parsed = stream.parse_selected(
        options.limits,
        |kind| matches!(kind, "ConfigMap" | "Secret") || kind.ends_with("List"),
        |doc| {
            let mut found = Vec::new();
            for (root, meta) in objects(doc.root) {
                if let Some(object) =
                    ConfigObject::read(root, &meta, options.secret_key.as_deref())?
                {
                    found.push(object);
                }
            }
            Ok(found)
        },
    )?;
    Ok(parsed.values.into_iter().flatten().flatten().collect())
}

/// The `--template-path`s at which no workload of the stream has a pod template.
fn unmatched_template_paths(parsed: &Parsed<Items>, kinds: &TemplateKinds) -> Vec<String> {
    let workloads: Vec<&Workload> = parsed
        .values
        .iter()
        .flatten()
        .flatten()
        .filter_map(|item| match item {
            Item::Workload(w) => Some(&**w),
            Item::Config(_) | Item::Referrer(_) | Item::Released => None,
        })
        .collect();
    let mut out = Vec::new();
    for tp in kinds.custom() {
        let of_kind: Vec<&&Workload> = workloads.iter().filter(|w| w.kind == tp.kind).collect();
        if of_kind
            .iter()
            .any(|w| w.templates.iter().any(|t| t.path == tp.path))
        {
            continue;
        }
        let why = if of_kind.is_empty() {
            format!("the stream has no {}", tp.kind)
        } else {
            format!(
                "no {} in the stream has a pod template at {}",
                tp.kind, tp.path
            )
        };
        out.push(format!(
            "--template-path {tp}: {why}; nothing is annotated for it"
        ));
    }
    out
}

impl Analysis<'_> {
    /// The ConfigMap or Secret with `id`, if the stream has it.
    pub fn object(&self, id: &ObjectId) -> Option<&ConfigObject> {
        self.objects.get(&self.parsed, id)
    }

    /// The pod templates behind a decision, with their paths: the one it names, or all of a
    /// workload skipped as a whole (its path is empty).
    pub fn templates_of(&self, t: &TemplateResolution) -> Vec<&PodTemplate> {
        self.workload_of(t)
            .into_iter()
            .flat_map(|w| &w.templates)
            .filter(|template| t.path.is_empty() || template.path == t.path)
            .collect()
    }

    /// The workload a decision is about, read from its document.
    pub fn workload_of(&self, t: &TemplateResolution) -> Option<&Workload> {
        self.parsed
            .values
            .get(t.doc)
            .and_then(Option::as_ref)
            .into_iter()
            .flatten()
            .filter_map(|item| match item {
                Item::Workload(w) => Some(&**w),
                Item::Config(_) | Item::Referrer(_) | Item::Released => None,
            })
            .find(|w| {
                w.kind == t.workload.kind
                    && w.name == t.workload.name
                    && w.namespace
                        .as_ref()
                        .is_none_or(|ns| *ns == t.workload.namespace)
            })
    }

    /// Writes the stream with the resolved edits; untouched pieces are copied byte for byte.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        // The edits by piece, without a list per piece: a stream of many small documents
        // would pay for one empty list each, at the moment of peak memory. Checksum edits
        // first, then renames (`inject --versioned`); the sort keeps that order in a piece.
        let mut edits: Vec<(usize, &Edit)> = self
            .resolution
            .templates
            .iter()
            .filter_map(|t| Some((self.parsed.docs[t.doc].piece(), t.edit.as_ref()?)))
            .chain(
                self.versions
                    .edits
                    .iter()
                    .map(|(doc, e)| (self.parsed.docs[*doc].piece(), e)),
            )
            .collect();
        edits.sort_by_key(|(piece, _)| *piece);
        let mut edits = edits.into_iter().peekable();
        let text = self.stream.text();
        for (index, range) in self.stream.pieces().enumerate() {
            let piece = &text[range];
            let mut piece_edits = Vec::new();
            while let Some((_, edit)) = edits.next_if(|(p, _)| *p == index) {
                piece_edits.push(edit.clone());
            }
            if piece_edits.is_empty() {
                out.write_all(piece.as_bytes())?;
            } else {
                out.write_all(edit::apply(piece, &mut piece_edits).as_bytes())?;
            }
        }
        Ok(())
    }

    /// Number of pod templates whose annotation is written or changed.
    pub fn changed(&self) -> usize {
        self.resolution
            .templates
            .iter()
            .filter(|t| t.edit.is_some())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::manifest::manifests::Manifests;
    use crate::manifest::resolve::Outcome;

    /// Checksum (or skip reason) per `workload path`.
    fn outcomes(manifests: &Manifests, options: &Options) -> BTreeMap<String, String> {
        let yaml = manifests.render();
        let analysis = analyze(&yaml, options).expect("valid stream");
        analysis
            .resolution
            .templates
            .iter()
            .map(|t| {
                let value = match &t.outcome {
                    Outcome::Annotate { checksum, .. } => checksum.clone(),
                    Outcome::Skipped(skip) => format!("skipped: {skip}"),
                };
                (
                    format!("{} {}", t.workload, t.path).trim().to_string(),
                    value,
                )
            })
            .collect()
    }

    fn sums(manifests: &Manifests) -> BTreeMap<String, String> {
        outcomes(manifests, &Options::default())
    }

    /// The ConfigMap `app` with `a: one` and `b: two`, the object most tests hash.
    fn app_config() -> Manifests {
        Manifests::new()
            .config_map("app")
            .data("a", "one")
            .data("b", "two")
    }

    /// The Secret `creds` with `user: admin` and `pass: hunter2` in `stringData`.
    fn creds() -> Manifests {
        Manifests::new()
            .secret("creds")
            .string_data("user", "admin")
            .string_data("pass", "hunter2")
    }

    /// A Deployment mounting the whole ConfigMap `app`.
    fn whole(name: &str) -> Manifests {
        Manifests::new().deployment(name).mounts_config_map("app")
    }

    /// A Deployment reading only key `a` of the ConfigMap `app`, into `$A`.
    fn key_a(name: &str) -> Manifests {
        Manifests::new()
            .deployment(name)
            .env_config_map_key("A", "app", "a")
    }

    /// `inject` drops workloads once resolved; what it writes and decides is the same as
    /// when they are kept, and `plan` (template shapes) keeps them.
    #[test]
    fn released_workloads_change_no_decision_and_no_output() {
        let yaml = app_config()
            .append(creds())
            .append(whole("web"))
            .append(key_a("api"))
            .append(
                Manifests::new()
                    .workload("argoproj.io/v1alpha1", "Rollout", "canary")
                    .env_secret_key("PASS", "creds", "pass"),
            )
            .render();
        let written = |options: &Options| {
            let analysis = analyze(&yaml, options).expect("valid");
            let mut out = Vec::new();
            analysis.write_to(&mut out).expect("write");
            let kept = analysis
                .parsed
                .values
                .iter()
                .flatten()
                .flatten()
                .filter(|item| matches!(item, Item::Workload(_)))
                .count();
            let decisions: Vec<String> = analysis
                .resolution
                .templates
                .iter()
                .map(|t| format!("{} {} {:?} {:?}", t.workload, t.path, t.outcome, t.location))
                .collect();
            (String::from_utf8(out).expect("utf-8"), decisions, kept)
        };
        let released = written(&Options::default());
        let kept = written(&Options {
            keep_workloads: true,
            ..Options::default()
        });
        assert_eq!(released.0, kept.0);
        assert_eq!(released.1, kept.1);
        assert_eq!((released.2, kept.2), (0, 3));
        let shapes = written(&Options {
            template_shapes: true,
            ..Options::default()
        });
        assert_eq!(shapes.2, 3);
    }

    #[test]
    fn every_kind_gets_its_templates_annotated() {
        let with = |api: &str, kind: &str, path: &str| -> Manifests {
            Manifests::new()
                .workload(api, kind, "w")
                .template_at(path)
                .mounts_config_map("app")
        };
        let cases = [
            ("apps/v1", "Deployment", "spec.template"),
            ("apps/v1", "ReplicaSet", "spec.template"),
            ("apps/v1", "StatefulSet", "spec.template"),
            ("apps/v1", "DaemonSet", "spec.template"),
            ("v1", "ReplicationController", "spec.template"),
            ("v1", "PodTemplate", "template"),
            ("batch/v1", "CronJob", "spec.jobTemplate.spec.template"),
            ("argoproj.io/v1alpha1", "Rollout", "spec.template"),
            ("apps.kruise.io/v1alpha1", "CloneSet", "spec.template"),
            ("apps.kruise.io/v1beta1", "StatefulSet", "spec.template"),
            ("apps.kruise.io/v1alpha1", "DaemonSet", "spec.template"),
            ("apps.kruise.io/v1alpha1", "BroadcastJob", "spec.template"),
            (
                "apps.kruise.io/v1alpha1",
                "AdvancedCronJob",
                "spec.template.jobTemplate.spec.template",
            ),
            (
                "apps.kruise.io/v1alpha1",
                "AdvancedCronJob",
                "spec.template.broadcastJobTemplate.spec.template",
            ),
            (
                "apps.kruise.io/v1alpha1",
                "UnitedDeployment",
                "spec.template.statefulSetTemplate.spec.template",
            ),
            (
                "apps.kruise.io/v1alpha1",
                "UnitedDeployment",
                "spec.template.advancedStatefulSetTemplate.spec.template",
            ),
            (
                "apps.kruise.io/v1alpha1",
                "UnitedDeployment",
                "spec.template.cloneSetTemplate.spec.template",
            ),
            (
                "apps.kruise.io/v1alpha1",
                "UnitedDeployment",
                "spec.template.deploymentTemplate.spec.template",
            ),
            ("serving.knative.dev/v1", "Service", "spec.template"),
        ];
        for (api, kind, path) in cases {
            let yaml = app_config().append(with(api, kind, path)).render();
            let analysis = analyze(&yaml, &Options::default()).expect("valid");
            let annotated: Vec<_> = analysis
                .resolution
                .templates
                .iter()
                .filter(|t| t.edit.is_some())
                .collect();
            assert_eq!(annotated.len(), 1, "{kind} {path}:\n{yaml}");
            assert_eq!(annotated[0].path, path);
            let mut out = Vec::new();
            analysis.write_to(&mut out).expect("write");
            let out = String::from_utf8(out).expect("utf8");
            let again = analyze(&out, &Options::default()).expect("output parses");
            assert_eq!(again.changed(), 0, "{kind}: not idempotent");
        }
        // The core Service and a Job (by default) are left alone.
        let yaml = app_config()
            .append(with("v1", "Service", "spec.template"))
            .append(with("batch/v1", "Job", "spec.template"))
            .render();
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        assert_eq!(analysis.changed(), 0);
    }

    #[test]
    fn jobs_only_with_include_jobs() {
        let stream = app_config()
            .workload("batch/v1", "Job", "j")
            .mounts_config_map("app");
        assert!(sums(&stream)["Job j"].starts_with("skipped: Job pod templates are immutable"));
        let options = Options {
            rules: Rules {
                include_jobs: true,
                ..Rules::default()
            },
            ..Options::default()
        };
        assert_eq!(outcomes(&stream, &options)["Job j spec.template"].len(), 64);
    }

    #[test]
    fn hooks_and_opt_outs_are_skipped() {
        let hook = whole("h").annotation("helm.sh/hook", "pre-install");
        let skip = whole("s").annotation("reconfig/skip", "true");
        let template_skip = whole("t").template_annotation("reconfig/skip", "true");
        let out = sums(&app_config().append(hook).append(skip).append(template_skip));
        assert_eq!(
            out["Deployment h"],
            "skipped: Helm hook (pre-install): hooks are not rolled"
        );
        assert_eq!(out["Deployment s"], "skipped: opted out with reconfig/skip");
        assert_eq!(
            out["Deployment t spec.template"],
            "skipped: opted out with reconfig/skip"
        );
    }

    #[test]
    fn key_level_precision() {
        let run = |data: &[(&str, &str)]| {
            let mut config = Manifests::new().config_map("app");
            for (key, value) in data {
                config = config.data(key, value);
            }
            sums(&config.append(whole("whole")).append(key_a("key")))
        };
        let base = run(&[("a", "one"), ("b", "two")]);
        let b_changed = run(&[("a", "one"), ("b", "TWO")]);
        let a_changed = run(&[("a", "ONE"), ("b", "two")]);
        let key_added = run(&[("a", "one"), ("b", "two"), ("c", "three")]);
        assert_ne!(
            base["Deployment whole spec.template"],
            b_changed["Deployment whole spec.template"]
        );
        assert_eq!(
            base["Deployment key spec.template"],
            b_changed["Deployment key spec.template"]
        );
        assert_ne!(
            base["Deployment key spec.template"],
            a_changed["Deployment key spec.template"]
        );
        assert_ne!(
            base["Deployment whole spec.template"],
            key_added["Deployment whole spec.template"]
        );
        assert_eq!(
            base["Deployment key spec.template"],
            key_added["Deployment key spec.template"]
        );
    }

    #[test]
    fn items_select_keys_and_env_from_skips_binary_data() {
        let run = |b: &str, bin: &str| {
            let config = Manifests::new()
                .config_map("app")
                .data("a", "one")
                .data("b", b)
                .binary_data("bin", bin);
            let items = Manifests::new()
                .deployment("items")
                .mounts_config_map_items("app", &[("a", "a")]);
            let env_from = Manifests::new()
                .deployment("env")
                .env_from_config_map("app");
            sums(&config.append(items).append(env_from))
        };
        let base = run("two", "aGk=");
        let bin_changed = run("two", "aGo=");
        let b_changed = run("2", "aGk=");
        assert_eq!(
            base["Deployment items spec.template"],
            bin_changed["Deployment items spec.template"]
        );
        assert_eq!(
            base["Deployment env spec.template"],
            bin_changed["Deployment env spec.template"]
        );
        assert_eq!(
            base["Deployment items spec.template"],
            b_changed["Deployment items spec.template"]
        );
        assert_ne!(
            base["Deployment env spec.template"],
            b_changed["Deployment env spec.template"]
        );
    }

    #[test]
    fn formatting_and_metadata_do_not_change_the_checksum() {
        // Written by hand: the point is this text's shape (a comment, `data` before `metadata`,
        // flow style, keys reordered, quotes, other labels and annotations).
        let reformatted = "---\n# a comment\napiVersion: v1\nkind: ConfigMap\ndata: {b: \"two\", a: 'one'}\nmetadata:\n  name: app\n  labels: {chart: app-1.2.4}\n  annotations: {note: changed}\n";
        let a = sums(&app_config().append(whole("w")));
        let b = sums(&Manifests::new().raw(reformatted).append(whole("w")));
        assert_eq!(a, b);
    }

    #[test]
    fn secrets_hash_string_data_like_data() {
        let data = Manifests::new()
            .secret("creds")
            .data("user", "YWRtaW4=")
            .data("pass", "aHVudGVyMg==");
        let uses = || Manifests::new().deployment("w").mounts_secret("creds");
        assert_eq!(sums(&creds().append(uses())), sums(&data.append(uses())));
    }

    #[test]
    fn secret_hash_key_changes_secret_contributions_only() {
        let stream = app_config()
            .append(creds())
            .deployment("both")
            .mounts_secret("creds")
            .mounts_config_map("app")
            .append(whole("cm"));
        let keyed = Options {
            secret_key: Some(b"k1".to_vec()),
            ..Options::default()
        };
        let other_key = Options {
            secret_key: Some(b"k2".to_vec()),
            ..Options::default()
        };
        let plain = sums(&stream);
        let k1 = outcomes(&stream, &keyed);
        let k2 = outcomes(&stream, &other_key);
        assert_ne!(
            plain["Deployment both spec.template"],
            k1["Deployment both spec.template"]
        );
        assert_ne!(
            k1["Deployment both spec.template"],
            k2["Deployment both spec.template"]
        );
        assert_eq!(
            plain["Deployment cm spec.template"],
            k1["Deployment cm spec.template"]
        );
    }

    #[test]
    fn namespaces_must_match() {
        let cm_prod = || app_config().namespace("prod");
        let in_prod = || whole("w").namespace("prod");
        let no_ns = || whole("w");
        // Same explicit namespace.
        assert_eq!(
            sums(&cm_prod().append(in_prod()))["Deployment prod/w spec.template"].len(),
            64
        );
        // Different namespaces never match.
        assert!(
            sums(&cm_prod().append(no_ns()))["Deployment w spec.template"].starts_with("skipped")
        );
        // Unnamespaced objects match each other.
        assert_eq!(
            sums(&app_config().append(no_ns()))["Deployment w spec.template"].len(),
            64
        );
        // --namespace fills in for objects that name none.
        let options = Options {
            rules: Rules {
                namespace: Some("prod".into()),
                ..Rules::default()
            },
            ..Options::default()
        };
        assert_eq!(
            outcomes(&cm_prod().append(no_ns()), &options)["Deployment prod/w spec.template"].len(),
            64
        );
        assert!(
            outcomes(&app_config().append(in_prod()), &options)["Deployment prod/w spec.template"]
                .len()
                == 64
        );
    }

    #[test]
    fn missing_references() {
        let yaml = app_config()
            .deployment("opt")
            .mounts_optional_config_map("gone")
            .render();
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        assert!(analysis.resolution.missing.is_empty());
        assert_eq!(analysis.changed(), 0);
        let yaml = app_config()
            .deployment("req")
            .mounts_config_map("gone")
            .render();
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        assert_eq!(analysis.resolution.missing.len(), 1);
        let message = &analysis.resolution.missing[0].message;
        assert!(
            message.contains("Deployment req") && message.contains("ConfigMap \"gone\""),
            "{message}"
        );
    }

    #[test]
    fn declared_dependencies_and_exclusions() {
        let controller = app_config()
            .deployment("argo-rollouts")
            .annotation("reconfig/configmaps", "app");
        let out = sums(&controller);
        assert_eq!(out["Deployment argo-rollouts spec.template"].len(), 64);

        let plain = app_config().deployment("argo-rollouts");
        let options = Options {
            rules: Rules {
                depends: vec!["deployment/argo-rollouts=configmap/app"
                    .parse()
                    .expect("depend")],
                ..Rules::default()
            },
            ..Options::default()
        };
        assert_eq!(
            outcomes(&plain, &options)["Deployment argo-rollouts spec.template"],
            out["Deployment argo-rollouts spec.template"]
        );
        assert!(sums(&plain)["Deployment argo-rollouts spec.template"].starts_with("skipped"));

        let excluded = whole("hot").template_annotation("reconfig/exclude", "configmap/app");
        assert!(
            sums(&app_config().append(excluded))["Deployment hot spec.template"]
                .starts_with("skipped")
        );
    }

    #[test]
    fn rollout_with_workload_ref_annotates_its_target() {
        let rollout = || {
            Manifests::new()
                .object("argoproj.io/v1alpha1", "Rollout", "r")
                .annotation("reconfig/secrets", "creds")
                .spec(
                    "workloadRef",
                    "{apiVersion: apps/v1, kind: Deployment, name: w}",
                )
        };
        let with_ref = sums(
            &app_config()
                .append(creds())
                .append(rollout())
                .append(whole("w")),
        );
        assert_eq!(with_ref["Rollout r"], "skipped: uses spec.workloadRef, whose template must stay empty; Deployment w is annotated instead");
        let alone = sums(&app_config().append(creds()).append(whole("w")));
        assert_ne!(
            with_ref["Deployment w spec.template"], alone["Deployment w spec.template"],
            "the Rollout's declared Secret counts for its target"
        );

        let yaml = app_config().append(rollout()).render();
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        assert_eq!(analysis.changed(), 0);
        assert!(analysis.resolution.warnings[0]
            .message
            .contains("not in the stream"));
    }

    #[test]
    fn kruise_in_place_updates_are_reported() {
        let yaml = app_config()
            .workload("apps.kruise.io/v1alpha1", "CloneSet", "c")
            .spec("updateStrategy", "{type: InPlaceIfPossible}")
            .mounts_config_map("app")
            .render();
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        assert_eq!(analysis.changed(), 1);
        assert!(analysis.resolution.warnings[0]
            .message
            .contains("InPlaceIfPossible"));
    }

    #[test]
    fn custom_template_paths() {
        let custom = app_config()
            .workload("example.com/v1", "Workflow", "wf")
            .template_at("spec.podTemplate")
            .mounts_config_map("app");
        let options = Options {
            kinds: TemplateKinds::with_custom(&["Workflow.example.com=spec.podTemplate"
                .parse()
                .expect("path")]),
            ..Options::default()
        };
        assert_eq!(
            outcomes(&custom, &options)["Workflow wf spec.podTemplate"].len(),
            64
        );
        assert!(sums(&custom).is_empty());
    }

    /// The checksum is a public contract: these values must never change.
    #[test]
    fn checksums_are_pinned() {
        let mixed = Manifests::new()
            .deployment("mixed")
            .mounts_secret_items("creds", &[("pass", "p")])
            .env_from_config_map("app")
            .env_secret_key("U", "creds", "user");
        let out = sums(
            &app_config()
                .append(creds())
                .append(whole("whole"))
                .append(mixed),
        );
        insta::assert_debug_snapshot!(out);
    }
}
