#!/usr/bin/env bash
# `reconfig inject --versioned --keep` beside plain `reconfig inject` on the same generated
# render (benches/gen_render.py, the one benches/inject_bench.sh uses), interleaved so that a
# busy machine slows both alike. The goal: --versioned within 1.2x of plain inject.
# Run from anywhere: bash benches/versioned_bench.sh
#
# Environment knobs:
#   DOCS=6000       documents in the generated render (~4.7 MiB at 6000)
#   ROUNDS=10       interleaved rounds (one run of each per round)
#   BENCH_DIR=target/bench
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DOCS=${DOCS:-6000}
ROUNDS=${ROUNDS:-10}
BENCH_DIR=${BENCH_DIR:-target/bench}
BIN=target/release/reconfig

echo "== building reconfig (release)" >&2
cargo build --release >&2
mkdir -p "$BENCH_DIR"
RENDER=$BENCH_DIR/render.yaml
echo "== generating the render" >&2
python3 benches/gen_render.py --docs "$DOCS" --out "$RENDER"

echo "== checking outputs" >&2
"$BIN" -q inject < "$RENDER" > "$BENCH_DIR/plain.out.yaml"
"$BIN" -q inject --versioned --keep < "$RENDER" > "$BENCH_DIR/versioned.out.yaml"
"$BIN" -q inject --versioned --keep < "$BENCH_DIR/versioned.out.yaml" | cmp - "$BENCH_DIR/versioned.out.yaml" \
    || { echo "versioned_bench: inject --versioned is not idempotent on this render" >&2; exit 1; }

python3 - "$BIN" "$RENDER" "$ROUNDS" "$BENCH_DIR" <<'PY'
import statistics, subprocess, sys, time
binary, render, rounds, bench_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
commands = {
    "inject": [binary, "-q", "inject"],
    "inject --versioned --keep": [binary, "-q", "inject", "--versioned", "--keep"],
}
times = {label: [] for label in commands}
for _ in range(rounds + 1):  # the first round warms the page cache and is not counted
    for label, cmd in commands.items():
        with open(render, "rb") as stdin:
            start = time.perf_counter()
            subprocess.run(cmd, stdin=stdin, stdout=subprocess.DEVNULL, check=True)
            times[label].append(time.perf_counter() - start)
for label in times:
    times[label] = times[label][1:]
base = statistics.median(times["inject"])
print()
print(f"## inject --versioned beside inject ({rounds} interleaved rounds, medians)")
print()
print("| command | median | min | ratio |")
print("|---|---:|---:|---:|")
for label, runs in times.items():
    median = statistics.median(runs)
    print(f"| `{label}` | {median * 1000:.1f} ms | {min(runs) * 1000:.1f} ms | {median / base:.2f}x |")
renamed = open(f"{bench_dir}/versioned.out.yaml").read().count("reconfig/versioned-from:")
print()
print(f"Objects versioned: {renamed}")
PY
