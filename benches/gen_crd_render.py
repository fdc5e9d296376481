#!/usr/bin/env python3
"""Generate a render shaped like kube-prometheus-stack with its CRDs (issue 12, "Speed on
real renders"): ~145 documents, ~5.2 MB, most of it CustomResourceDefinition schemas
(deep `properties`, `description: |-` blocks and long plain descriptions, as controller-gen
writes them), plus the chart's ConfigMaps, Secrets, workloads, Services and PrometheusRules
(multi-line single-quoted descriptions).

--chart DIR writes it as a chart instead (CRDs in crds/, the rest in templates/), for
`helm template --include-crds`. Standard library only; the output is deterministic.
"""

import argparse
import os
import random

WORDS = ("the of and to a in is for that by this with on be are as field "
         "resource object specifies defines optional required selector label "
         "prometheus alertmanager rule scrape endpoint namespace secret config "
         "value default when if not more than one must should may").split()


def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def schema(rng, depth, indent, out, budget):
    pad = " " * indent
    for i in range(rng.randint(3, 7)):
        if budget[0] <= 0:
            return
        budget[1] += 1
        name = f"{rng.choice(WORDS)}{rng.choice(WORDS).capitalize()}{budget[1]}"
        out.append(f"{pad}{name}:\n")
        if rng.random() < 0.5:
            out.append(f"{pad}  description: |-\n")
            for _ in range(rng.randint(1, 4)):
                out.append(f"{pad}    {sentence(rng, rng.randint(6, 16))}\n")
        else:
            out.append(f"{pad}  description: {sentence(rng, rng.randint(4, 12))}\n")
        budget[0] -= 1
        if depth > 0 and rng.random() < 0.45:
            out.append(f"{pad}  properties:\n")
            schema(rng, depth - 1, indent + 4, out, budget)
            out.append(f"{pad}  type: object\n")
        else:
            t = rng.choice(["string", "integer", "boolean"])
            out.append(f"{pad}  type: {t}\n")
            if t == "integer":
                out.append(f"{pad}  format: int32\n")


def crd(rng, i, size):
    kind = f"Thing{i}"
    out = [
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n"
        f"  annotations:\n    controller-gen.kubebuilder.io/version: v0.16.1\n"
        f"  name: things{i}.monitoring.coreos.com\nspec:\n  group: monitoring.coreos.com\n"
        f"  names:\n    kind: {kind}\n    plural: things{i}\n  scope: Namespaced\n  versions:\n"
        "  - name: v1\n    schema:\n      openAPIV3Schema:\n        properties:\n"
    ]
    total = 0
    while total < size:
        budget = [60, total]
        part = []
        schema(rng, 8, 10, part, budget)
        out.extend(part)
        total += sum(map(len, part))
    out.append("        type: object\n    served: true\n    storage: true\n")
    return "".join(out)


def rule(rng, i):
    lines = [f"apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: rules-{i}\n"
             "spec:\n  groups:\n  - name: g\n    rules:\n"]
    for r in range(20):
        lines.append(f"    - alert: Alert{r}\n      annotations:\n        description: '{sentence(rng, 8)}\n\n"
                     f"          {sentence(rng, 8)}\n\n          '\n      expr: up == 0\n")
    return "".join(lines)


def workload(i):
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\nspec:\n  template:\n"
            f"    metadata:\n      labels:\n        app: app-{i}\n    spec:\n      volumes:\n"
            f"        - name: c\n          configMap:\n            name: config-{i}\n"
            f"      containers:\n        - name: main\n          image: quay.io/x:v1\n")


def config(rng, i):
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\ndata:\n"
            f"  config.yaml: |\n    global:\n      scrape_interval: {rng.randint(10, 60)}s\n")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", help="the render, one file")
    p.add_argument("--chart", help="a chart directory instead")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    rng = random.Random(a.seed)
    crds = [crd(rng, i, rng.choice([20_000, 40_000, 80_000, 180_000, 330_000])) for i in range(40)]
    rest = []
    for i in range(35):
        rest.append(("configmap", config(rng, i)))
        rest.append(("deployment", workload(i)))
    for i in range(35):
        rest.append(("rules", rule(rng, i)))
    if a.chart:
        os.makedirs(os.path.join(a.chart, "crds"), exist_ok=True)
        os.makedirs(os.path.join(a.chart, "templates"), exist_ok=True)
        with open(os.path.join(a.chart, "Chart.yaml"), "w") as f:
            f.write("apiVersion: v2\nname: crdheavy\nversion: 0.1.0\n")
        for i, text in enumerate(crds):
            with open(os.path.join(a.chart, "crds", f"crd-{i}.yaml"), "w") as f:
                f.write(text)
        for i, (name, text) in enumerate(rest):
            with open(os.path.join(a.chart, "templates", f"{name}-{i}.yaml"), "w") as f:
                f.write(text)
        return
    with open(a.out, "w") as f:
        for i, text in enumerate(crds):
            f.write(f"---\n# Source: crdheavy/crds/crd-{i}.yaml\n{text}")
        for i, (name, text) in enumerate(rest):
            f.write(f"---\n# Source: crdheavy/templates/{name}-{i}.yaml\n{text}")


if __name__ == "__main__":
    main()
