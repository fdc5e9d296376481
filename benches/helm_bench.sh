#!/usr/bin/env bash
# What `reconfig inject` adds to a real `helm template` (Helm 3.17.2), on a
# generated chart of ~900 documents (benches/gen_helm_chart.py), side by side:
#
#   helm template                                   (the baseline)
#   helm template --post-renderer reconfig          (--post-renderer-args inject)
#   helm template --post-renderer pyyaml_inject.py  (the PyYAML peer, for comparison)
#   helm template --post-renderer cat               (Helm's own cost of post-rendering)
#
# Runs are interleaved (one of each per round), so drift in machine load hits
# all alike. Prints a markdown table of median wall and CPU times (CPU: user +
# sys of helm and the post-renderer it waited for) and the wall time each
# post-renderer adds. Target: reconfig adds at most 10%.
#
#   bash benches/helm_bench.sh
#
# Environment knobs:
#   APPS=150        apps in the chart (6 documents each)
#   RUNS=21         timed rounds for helm and helm+reconfig
#   PEER_RUNS=5     of those rounds, how many also time the PyYAML peer
#   WARMUP=2        untimed rounds first
#   BENCH_DIR=target/bench/helm
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

APPS=${APPS:-150}
RUNS=${RUNS:-21}
PEER_RUNS=${PEER_RUNS:-5}
WARMUP=${WARMUP:-2}
BENCH_DIR=${BENCH_DIR:-target/bench/helm}

die() { echo "helm_bench: $*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is required"
if ! python3 -c 'import yaml' 2>/dev/null; then
    echo "helm_bench: installing PyYAML" >&2
    python3 -m pip install --quiet pyyaml \
        || python3 -m pip install --quiet --break-system-packages pyyaml
fi

echo "== Helm binaries" >&2
eval "$(bash tests/tools/install-helm.sh)"
[[ -x ${HELM3:-} ]] || die "install-helm.sh gave no HELM3"

echo "== building reconfig (release)" >&2
cargo build --release --quiet || die "cargo build --release failed"
BIN_DIR=$(cd target/release && pwd)
[[ -x $BIN_DIR/reconfig ]] || die "target/release/reconfig was not built"

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
CHART=$BENCH_DIR/chart
python3 benches/gen_helm_chart.py --apps "$APPS" --out "$CHART"

# The peer runs under the interpreter itself, not through a pyenv shim or
# `env`, so it is charged for its own work only.
PY=$(python3 -c 'import sys; print(sys.executable)')
PEER=$BENCH_DIR/pyyaml-post-renderer
{ echo "#!$PY"; tail -n +2 benches/pyyaml_inject.py; } >"$PEER"
chmod +x "$PEER"

export HELM_CACHE_HOME=$BENCH_DIR/helm-home/cache
export HELM_CONFIG_HOME=$BENCH_DIR/helm-home/config
export HELM_DATA_HOME=$BENCH_DIR/helm-home/data
export PATH=$BIN_DIR:$PATH

echo "== checking outputs" >&2
"$HELM3" template bench "$CHART" >"$BENCH_DIR/plain.yaml"
"$HELM3" template bench "$CHART" --post-renderer reconfig --post-renderer-args inject \
    >"$BENCH_DIR/reconfig.yaml"
"$HELM3" template bench "$CHART" --post-renderer "$PEER" >"$BENCH_DIR/pyyaml.yaml"
DOCS=$(grep -c '^kind:' "$BENCH_DIR/plain.yaml" || true)
SIZE=$(wc -c <"$BENCH_DIR/plain.yaml")
N_RECONFIG=$(grep -c 'checksum/config' "$BENCH_DIR/reconfig.yaml" || true)
N_PEER=$(grep -c 'checksum/config' "$BENCH_DIR/pyyaml.yaml" || true)
[[ $N_RECONFIG -gt 0 ]] || die "reconfig annotated nothing"

echo "== timing ($WARMUP warm-up rounds, $RUNS rounds)" >&2
python3 - "$HELM3" "$CHART" "$PEER" "$RUNS" "$PEER_RUNS" "$WARMUP" "$DOCS" "$SIZE" \
    "$N_RECONFIG" "$N_PEER" "$BENCH_DIR/plain.yaml" "$BIN_DIR/reconfig" <<'PY'
import os, statistics, subprocess, sys, time

helm, chart, peer = sys.argv[1:4]
runs, peer_runs, warmup, docs, size, n_rc, n_peer = map(int, sys.argv[4:11])
plain, reconfig = sys.argv[11:13]
base = [helm, "template", "bench", chart]
cmds = {
    "helm template": base,
    "… --post-renderer reconfig --post-renderer-args inject": base + [
        "--post-renderer", "reconfig", "--post-renderer-args", "inject"],
    "… --post-renderer pyyaml_inject.py (PyYAML, libyaml)": base + ["--post-renderer", peer],
    "… --post-renderer cat (no-op)": base + ["--post-renderer", "cat"],
}
labels = list(cmds)
PEER = labels[2]

def once(cmd, stdin_path=os.devnull):
    """Wall seconds, and CPU seconds of cmd plus the children it reaped."""
    with open(os.devnull, "wb") as null, open(stdin_path, "rb") as stdin:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=stdin, stdout=null, stderr=subprocess.PIPE)
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        t = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"helm_bench: {' '.join(cmd)} failed:\n{err.decode(errors='replace')}")
    return t, ru.ru_utime + ru.ru_stime

times = {k: [] for k in labels}
cpu = {k: [] for k in labels}
for r in range(warmup + runs):
    this_round = []
    for k in labels:
        if k == PEER and r >= warmup + peer_runs:
            continue
        t, c = once(cmds[k])
        this_round.append(f"{t:.3f}")
        if r >= warmup:
            times[k].append(t)
            cpu[k].append(c)
    print(f"  round {r + 1}/{warmup + runs}{' (warm-up)' if r < warmup else ''}: "
          + ", ".join(this_round), file=sys.stderr)

med = {k: statistics.median(v) for k, v in times.items()}
med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
b = med[labels[0]]
print(f"## `helm template` with and without a post-renderer (Helm 3.17.2, "
      f"{os.cpu_count()} cores)\n")
print(f"Chart: {docs} documents, {size / 1024:.0f} KiB rendered. Median of the runs shown;"
      " rounds interleave the commands.\n")
print("| command | runs | median wall (s) | min (s) | max (s) | median CPU (s) | added wall vs `helm template` |")
print("|---|---:|---:|---:|---:|---:|---:|")
for k in labels:
    v = times[k]
    added = "—" if k == labels[0] else f"{(med[k] / b - 1) * 100:+.1f}% ({med[k] / b:.2f}×)"
    print(f"| `{k}` | {len(v)} | {med[k]:.3f} | {min(v):.3f} | {max(v):.3f} | {med_cpu[k]:.3f} | {added} |")
print()
print(f"Pod templates annotated: reconfig {n_rc}, PyYAML peer {n_peer}.")
alone = sorted(once([reconfig, "inject"], plain)[0] for _ in range(runs))
print(f"`reconfig inject` alone on the same render (stdin from a file): median "
      f"{statistics.median(alone) * 1000:.1f} ms. The `cat` row is what Helm itself spends "
      "on any post-renderer (writing the stream out, reading and re-parsing it).")
rc_added = (med[labels[1]] / b - 1) * 100
print(f"reconfig adds {rc_added:.1f}% (target: at most 10%): "
      f"{'met' if rc_added <= 10 else 'NOT met'}.")
PY
