#!/usr/bin/env python3
"""Speed on a CRD-heavy render (issue 12, "Speed on real renders"), side by side in one run.

Generates a render and a chart shaped like kube-prometheus-stack with its CRDs
(benches/gen_crd_render.py), then times, interleaved, medians of --runs:
  - `reconfig inject` on the render, against `sha256sum` of it (goal: <= 2.5x);
  - Helm 3 `helm template --include-crds` of the chart without a post-renderer, with
    reconfig, and with a no-op `cat` post-renderer (goal: reconfig <= 1.10x without);
  - with Go on PATH, the post-renderers alone, piped as Helm pipes them
    (benches/post_render/main.go): what reconfig costs Helm over `cat`, without Helm's noise.

Run from the repository root after `cargo build --release` and tests/tools/install-helm.sh:
  python3 benches/crd_bench.py [--runs 11] [--chart DIR] [--baseline BIN]

--chart times a chart of your own instead of the generated one (its dependencies already in
its charts/ folder): the render is that chart's `helm template --include-crds`. The generated
chart renders in a fraction of the time a real one takes, so on it even a no-op `cat`
post-renderer costs Helm 1.2-1.3x; the README's Helm 3 figures are for kube-prometheus-stack.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, stdin_path=None, env=None):
    with open(stdin_path, "rb") if stdin_path else open(os.devnull, "rb") as stdin:
        start = time.perf_counter()
        p = subprocess.run(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"crd_bench: {' '.join(cmd)} failed:\n{p.stderr.decode(errors='replace')[-2000:]}")
    return elapsed, p.stdout


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/reconfig"))
    ap.add_argument("--helm", default=os.path.join(ROOT, "target/tools/helm-v3.17.2/helm"))
    ap.add_argument("--chart", help="a chart folder to time instead of the generated one")
    ap.add_argument("--baseline", metavar="BIN",
                    help="another reconfig build (an older commit's) timed in the same runs")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="crd-bench-")
    render, chart = os.path.join(work, "render.yaml"), os.path.join(work, "chart")
    if a.chart:
        chart = os.path.abspath(a.chart)
        with open(render, "wb") as f:
            f.write(timed([a.helm, "template", "r", chart, "--include-crds"])[1])
    else:
        gen = os.path.join(ROOT, "benches/gen_crd_render.py")
        subprocess.run([sys.executable, gen, "--out", render], check=True)
        subprocess.run([sys.executable, gen, "--chart", chart], check=True)
    cat = os.path.join(work, "cat.sh")
    with open(cat, "w") as f:
        f.write("#!/bin/sh\nexec cat\n")
    os.chmod(cat, 0o755)
    env = dict(os.environ, HELM_CACHE_HOME=os.path.join(work, "cache"),
               HELM_CONFIG_HOME=os.path.join(work, "config"), HELM_DATA_HOME=os.path.join(work, "data"))
    env = {k: v for k, v in env.items() if not k.startswith("RECONFIG_")}
    base = [a.helm, "template", "r", chart, "--include-crds"]
    commands = {
        "reconfig inject": ([a.bin, "inject"], render),
        "sha256sum": (["sha256sum"], render),
        "helm template": (base, None),
        "helm template + reconfig": (base + ["--post-renderer", a.bin, "--post-renderer-args", "inject"], None),
        "helm template + cat": (base + ["--post-renderer", cat], None),
    }
    if a.baseline:
        commands["reconfig inject (baseline)"] = ([a.baseline, "inject"], render)
        commands["helm template + reconfig (baseline)"] = (
            base + ["--post-renderer", a.baseline, "--post-renderer-args", "inject"], None)
    _, out = timed(commands["reconfig inject"][0], render, env)
    docs = out.count(b"\n---\n") + 1
    print(f"render: {os.path.getsize(render) / 1048576:.1f} MiB, {docs} documents, "
          f"{out.count(b'checksum/config')} pod templates annotated")
    times = {name: [] for name in commands}
    for _ in range(a.runs):
        for name, (cmd, stdin) in commands.items():
            times[name].append(timed(cmd, stdin, env)[0])
    med = {name: median(v) for name, v in times.items()}
    print(f"\n| command | median of {a.runs} |\n|---|---:|")
    for name, value in med.items():
        print(f"| {name} | {value * 1000:.1f} ms |")
    print(f"\n- reconfig inject / sha256sum: {med['reconfig inject'] / med['sha256sum']:.2f}x (goal <= 2.5x)")
    print(f"- helm template with reconfig / without: "
          f"{med['helm template + reconfig'] / med['helm template']:.3f}x (goal <= 1.10x); "
          f"with cat: {med['helm template + cat'] / med['helm template']:.3f}x")
    if a.baseline:
        print(f"- the baseline build: inject / sha256sum "
              f"{med['reconfig inject (baseline)'] / med['sha256sum']:.2f}x; helm template with it / without: "
              f"{med['helm template + reconfig (baseline)'] / med['helm template']:.3f}x")
    through_go_pipes(a, render, work, cat)


def through_go_pipes(a, render, work, cat):
    """Times the post-renderers alone as Helm runs one (benches/post_render/main.go): Helm's
    own run varies by more than a post-renderer costs, this does not. Needs Go."""
    go = shutil.which("go")
    if not go:
        print("\n(no `go` on PATH: the post-renderers were not timed through Go's pipes)")
        return
    harness = os.path.join(work, "post_render")
    env = dict(os.environ, GO111MODULE="off", GOPATH=os.path.join(work, "gopath"),
               GOCACHE=os.path.join(work, "gocache"), GOFLAGS="")
    subprocess.run([go, "build", "-o", harness, os.path.join(ROOT, "benches/post_render/main.go")],
                   check=True, env=env)
    commands = {"cat": cat, "reconfig inject": f"{a.bin} inject"}
    if a.baseline:
        commands["reconfig inject (baseline)"] = f"{a.baseline} inject"
    runs = 3 * a.runs
    out = subprocess.run([harness, render, str(runs)] + list(commands.values()),
                         check=True, capture_output=True, text=True).stdout
    print(f"\nThe post-renderers alone, piped as Helm pipes them (a Go parent; {runs} runs):\n"
          "\n| post-renderer | median | p25 | p75 |\n|---|---:|---:|---:|")
    medians = {}
    for name, line in zip(commands, out.splitlines()):
        _, median_ms, p25, p75 = line.split("\t")
        medians[name] = float(median_ms)
        print(f"| {name} | {median_ms} ms | {p25} ms | {p75} ms |")
    print(f"\n- reconfig's cost over `cat`'s: {medians['reconfig inject'] - medians['cat']:.1f} ms")
    if a.baseline:
        print(f"- the baseline's: {medians['reconfig inject (baseline)'] - medians['cat']:.1f} ms")


if __name__ == "__main__":
    main()
