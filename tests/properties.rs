//! Properties of `inject` over generated streams: untouched documents stay
//! byte-identical, a second run changes nothing, and formatting never moves a checksum.

use proptest::prelude::*;
use reconfig::manifest::resolve::Outcome;
use reconfig::manifest::{analyze, Options};

#[derive(Debug, Clone)]
enum Quote {
    Plain,
    Single,
    Double,
}

fn quoted(value: &str, style: &Quote) -> String {
    match style {
        Quote::Plain => value.to_string(),
        Quote::Single => format!("'{value}'"),
        Quote::Double => format!("\"{value}\""),
    }
}

fn quote_style() -> impl Strategy<Value = Quote> {
    prop_oneof![Just(Quote::Plain), Just(Quote::Single), Just(Quote::Double)]
}

/// A ConfigMap with keys `k0..kn`, written in one of several equivalent styles.
fn config_map(
    name: String,
    values: Vec<String>,
    style: Quote,
    flow: bool,
    comment: bool,
) -> String {
    let mut doc = format!("---\n# Source: chart/templates/{name}.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
    if comment {
        doc.push_str("  # a comment that must not matter\n");
    }
    if flow {
        let entries: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("k{i}: {}", quoted(v, &style)))
            .collect();
        doc.push_str(&format!("data: {{{}}}\n", entries.join(", ")));
    } else {
        doc.push_str("data:\n");
        for (i, v) in values.iter().enumerate() {
            doc.push_str(&format!("  k{i}: {}\n", quoted(v, &style)));
        }
    }
    doc
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

fn deployment(name: &str, cm: &str, uses: &[Use], meta: &TemplateMeta) -> String {
    let mut doc = format!("---\n# Source: chart/templates/{name}.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n");
    match meta {
        TemplateMeta::None => {}
        TemplateMeta::Labels => doc.push_str("    metadata:\n      labels:\n        app: x\n"),
        TemplateMeta::Annotations => {
            doc.push_str("    metadata:\n      annotations:\n        other: \"1\"\n")
        }
        TemplateMeta::Flow => doc.push_str("    metadata: {labels: {app: x}}\n"),
    }
    doc.push_str("    spec:\n      containers:\n        - name: app\n          image: app:1\n");
    let mut env = String::new();
    let mut env_from = String::new();
    let mut volumes = String::new();
    for (i, u) in uses.iter().enumerate() {
        match u {
            Use::Volume => volumes.push_str(&format!("        - name: v{i}\n          configMap:\n            name: {cm}\n")),
            Use::Items(k) => volumes.push_str(&format!(
                "        - name: v{i}\n          configMap:\n            name: {cm}\n            items:\n              - key: k{k}\n                path: f{k}\n"
            )),
            Use::EnvFrom => env_from.push_str(&format!("            - configMapRef:\n                name: {cm}\n")),
            Use::KeyRef(k) => env.push_str(&format!(
                "            - name: E{i}\n              valueFrom:\n                configMapKeyRef:\n                  name: {cm}\n                  key: k{k}\n"
            )),
        }
    }
    if !env_from.is_empty() {
        doc.push_str("          envFrom:\n");
        doc.push_str(&env_from);
    }
    if !env.is_empty() {
        doc.push_str("          env:\n");
        doc.push_str(&env);
    }
    if !volumes.is_empty() {
        doc.push_str("      volumes:\n");
        doc.push_str(&volumes);
    }
    doc
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
    let mut out = String::new();
    for (i, values) in spec.values.iter().enumerate() {
        let (style, flow, comment) = if restyle {
            spec.styles[i].clone()
        } else {
            (Quote::Plain, false, false)
        };
        out.push_str(&config_map(
            format!("cm{i}"),
            values.clone(),
            style,
            flow,
            comment,
        ));
    }
    for i in 0..spec.others {
        out.push_str(&format!("---\n# Source: chart/templates/svc{i}.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc{i}\nspec:\n  ports: [{{port: 80}}]\n"));
    }
    for (i, (cm, uses, meta)) in spec.deployments.iter().enumerate() {
        // References to cm3 and beyond may point at nothing: missing references must be harmless.
        out.push_str(&deployment(
            &format!("d{i}"),
            &format!("cm{cm}"),
            uses,
            meta,
        ));
    }
    out
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
        for (b, a) in before.iter().zip(&after) {
            if !a.contains("checksum/config") {
                prop_assert_eq!(b, a);
            } else if !b.contains("checksum/config") {
                // Only annotation lines are added, or a flow metadata line grows.
                let removed: Vec<&str> = b.lines().filter(|l| !a.lines().any(|x| x == *l)).collect();
                prop_assert!(removed.len() <= 1, "{:?}", removed);
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
