//! Properties of `inject` over generated streams: untouched documents stay
//! byte-identical, a second run changes nothing, and formatting never moves a checksum.

mod support;

use proptest::prelude::*;
use reconfig::manifest::resolve::Outcome;
use reconfig::manifest::{analyze, Options};
use support::manifests::{Manifests, Quote};

fn quote_style() -> impl Strategy<Value = Quote> {
    prop_oneof![Just(Quote::Plain), Just(Quote::Single), Just(Quote::Double)]
}

/// A ConfigMap with keys `k0..kn`, written in one of several equivalent styles.
fn config_map(
    manifests: Manifests,
    name: &str,
    values: &[String],
    style: Quote,
    flow: bool,
    comment: bool,
) -> Manifests {
    let mut m = manifests
        .config_map(name)
        .source(&format!("chart/templates/{name}.yaml"))
        .quote(style);
    if comment {
        m = m.comment("a comment that must not matter");
    }
    if flow {
        m = m.flow();
    }
    for (i, v) in values.iter().enumerate() {
        m = m.data(&format!("k{i}"), v);
    }
    m
}

#[derive(Debug, Clone)]
enum Use {
    Volume,
    Items(usize),
    EnvFrom,
    KeyRef(usize),
}

#[derive(Debug, Clone)]
enum TemplateMeta {
    None,
    Labels,
    Annotations,
    Flow,
}

fn deployment(
    manifests: Manifests,
    name: &str,
    cm: &str,
    uses: &[Use],
    meta: &TemplateMeta,
) -> Manifests {
    let mut m = manifests
        .deployment(name)
        .source(&format!("chart/templates/{name}.yaml"));
    m = match meta {
        TemplateMeta::None => m,
        TemplateMeta::Labels => m.template_label("app", "x"),
        TemplateMeta::Annotations => m.template_annotation("other", "1"),
        TemplateMeta::Flow => m.template_label("app", "x").flow(),
    };
    for (i, u) in uses.iter().enumerate() {
        m = match u {
            Use::Volume => m.mounts_config_map(cm),
            Use::Items(k) => m.mounts_config_map_items(cm, &[(&format!("k{k}"), &format!("f{k}"))]),
            Use::EnvFrom => m.env_from_config_map(cm),
            Use::KeyRef(k) => m.env_config_map_key(&format!("E{i}"), cm, &format!("k{k}")),
        };
    }
    m
}

fn a_use() -> impl Strategy<Value = Use> {
    prop_oneof![
        Just(Use::Volume),
        (0..4usize).prop_map(Use::Items),
        Just(Use::EnvFrom),
        (0..4usize).prop_map(Use::KeyRef)
    ]
}

fn template_meta() -> impl Strategy<Value = TemplateMeta> {
    prop_oneof![
        Just(TemplateMeta::None),
        Just(TemplateMeta::Labels),
        Just(TemplateMeta::Annotations),
        Just(TemplateMeta::Flow)
    ]
}

fn value() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,8}"
}

#[derive(Debug, Clone)]
struct Spec {
    values: Vec<Vec<String>>,
    styles: Vec<(Quote, bool, bool)>,
    deployments: Vec<(usize, Vec<Use>, TemplateMeta)>,
    others: usize,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::collection::vec(prop::collection::vec(value(), 4), 1..4),
        prop::collection::vec((quote_style(), any::<bool>(), any::<bool>()), 4),
        prop::collection::vec(
            (
                0..4usize,
                prop::collection::vec(a_use(), 0..4),
                template_meta(),
            ),
            0..6,
        ),
        0..3usize,
    )
        .prop_map(|(values, styles, deployments, others)| Spec {
            values,
            styles,
            deployments,
            others,
        })
}

fn render(spec: &Spec, restyle: bool) -> String {
    let mut m = Manifests::new();
    for (i, values) in spec.values.iter().enumerate() {
        let (style, flow, comment) = if restyle {
            spec.styles[i]
        } else {
            (Quote::Plain, false, false)
        };
        m = config_map(m, &format!("cm{i}"), values, style, flow, comment);
    }
    for i in 0..spec.others {
        m = m
            .object("v1", "Service", &format!("svc{i}"))
            .source(&format!("chart/templates/svc{i}.yaml"))
            .spec("ports", "[{port: 80}]");
    }
    for (i, (cm, uses, meta)) in spec.deployments.iter().enumerate() {
        // References to cm3 and beyond may point at nothing: missing references must be harmless.
        m = deployment(m, &format!("d{i}"), &format!("cm{cm}"), uses, meta);
    }
    m.render()
}

/// The one edit inject may make to a Deployment of [`deployment`] whose template metadata is
/// written as `meta`: the checksum annotation `sum`, first in the template's annotations.
fn annotated(document: &str, meta: &TemplateMeta, sum: &str) -> String {
    let line = format!("        checksum/config: \"{sum}\"\n");
    let (from, to) = match meta {
        TemplateMeta::None => (
            "  template:\n".to_string(),
            format!("  template:\n    metadata:\n      annotations:\n{line}"),
        ),
        TemplateMeta::Labels => (
            "    metadata:\n".to_string(),
            format!("    metadata:\n      annotations:\n{line}"),
        ),
        TemplateMeta::Annotations => (
            "      annotations:\n".to_string(),
            format!("      annotations:\n{line}"),
        ),
        TemplateMeta::Flow => (
            "}}\n".to_string(),
            format!("}}, \"annotations\": {{\"checksum/config\": \"{sum}\"}}}}\n"),
        ),
    };
    assert_eq!(document.matches(&from).count(), 1, "{from:?} in {document}");
    document.replacen(&from, &to, 1)
}

/// The checksum value of a `checksum/config` annotation in `document`.
fn checksum_in(document: &str) -> &str {
    let at = document.find("checksum/config").expect("a checksum");
    let rest = &document[at..];
    let start = rest.find(": \"").expect("a quoted value") + 3;
    &rest[start..start + 64]
}

fn inject(text: &str) -> String {
    let analysis = analyze(text, &Options::default()).expect("generated streams are valid");
    let mut out = Vec::new();
    analysis.write_to(&mut out).expect("write");
    String::from_utf8(out).expect("utf8")
}

fn checksums(text: &str) -> Vec<(String, Option<String>)> {
    analyze(text, &Options::default())
        .expect("valid")
        .resolution
        .templates
        .iter()
        .map(|t| {
            let sum = match &t.outcome {
                Outcome::Annotate { checksum, .. } => Some(checksum.clone()),
                Outcome::Skipped(_) => None,
            };
            (t.workload.to_string(), sum)
        })
        .collect()
}

fn split(text: &str) -> Vec<&str> {
    let mut starts: Vec<usize> = text.match_indices("\n---\n").map(|(i, _)| i + 1).collect();
    starts.insert(0, 0);
    starts.push(text.len());
    starts.windows(2).map(|w| &text[w[0]..w[1]]).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn untouched_documents_are_byte_identical(spec in spec()) {
        let input = render(&spec, true);
        let output = inject(&input);
        let (before, after) = (split(&input), split(&output));
        prop_assert_eq!(before.len(), after.len());
        // Only Deployments (the last documents) can gain a checksum.
        let first_deployment = before.len() - spec.deployments.len();
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            if !a.contains("checksum/config") {
                prop_assert_eq!(b, a);
            } else {
                prop_assert!(i >= first_deployment, "not a Deployment: {}", a);
                let sum = checksum_in(a);
                prop_assert!(
                    sum.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
                    "{}", sum
                );
                let (_, _, meta) = &spec.deployments[i - first_deployment];
                let expected = annotated(b, meta, sum);
                prop_assert_eq!(*a, expected.as_str());
            }
        }
    }

    #[test]
    fn a_second_run_changes_nothing(spec in spec()) {
        let once = inject(&render(&spec, true));
        prop_assert_eq!(inject(&once), once.clone());
    }

    #[test]
    fn formatting_never_moves_a_checksum(spec in spec()) {
        prop_assert_eq!(checksums(&render(&spec, true)), checksums(&render(&spec, false)));
    }
}
