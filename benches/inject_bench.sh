#!/usr/bin/env bash
# Benchmark `reconfig inject` against the hand-written PyYAML post-renderer
# (benches/pyyaml_inject.py) and against sha256sum, the floor for reading and
# hashing the same bytes. Run from anywhere: bash benches/inject_bench.sh
#
# Environment knobs:
#   DOCS=6000       documents in the generated render (~4.7 MiB at 6000)
#   RUNS=10         timed runs for reconfig and sha256sum
#   PEER_RUNS=3     timed runs for the PyYAML peer
#   WARMUP=1        untimed runs before each command's timed ones
#   BENCH_DIR=target/bench
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DOCS=${DOCS:-6000}
RUNS=${RUNS:-10}
PEER_RUNS=${PEER_RUNS:-3}
WARMUP=${WARMUP:-1}
BENCH_DIR=${BENCH_DIR:-target/bench}
BIN=target/release/reconfig

die() { echo "inject_bench: $*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is required"
command -v sha256sum >/dev/null || die "sha256sum (coreutils) is required"

if ! python3 -c 'import yaml' 2>/dev/null; then
    echo "inject_bench: installing PyYAML" >&2
    # Debian's system Python refuses plain pip installs (PEP 668).
    python3 -m pip install --quiet pyyaml \
        || python3 -m pip install --quiet --break-system-packages pyyaml
fi
if ! python3 -c 'import yaml, sys; sys.exit(not yaml.__with_libyaml__)'; then
    echo "inject_bench: WARNING: PyYAML lacks libyaml (yaml.CSafeLoader); the peer will run" \
         "pure-Python and look far slower than what teams actually run" >&2
fi

# Peak RSS is read with GNU time; without it the figures are inflated (see timeit_cmd.py).
if [[ ! -x /usr/bin/time ]]; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "inject_bench: installing GNU time" >&2
        { apt-get install -y -qq time || { apt-get update -qq && apt-get install -y -qq time; }; } >&2 \
            || echo "inject_bench: WARNING: could not install GNU time; RSS figures will be inflated" >&2
    else
        echo "inject_bench: WARNING: /usr/bin/time missing (apt-get install time); RSS figures will be inflated" >&2
    fi
fi

echo "== building reconfig (release)" >&2
cargo build --release || die "cargo build --release failed"
[[ -x $BIN ]] || die "$BIN was not built"

mkdir -p "$BENCH_DIR"
RENDER=$BENCH_DIR/render.yaml
RESULTS=$BENCH_DIR/results.jsonl
echo "== generating the render" >&2
python3 benches/gen_render.py --docs "$DOCS" --out "$RENDER"

# One untimed run of each tool, keeping the output, so a failure shows up
# here with its message and the outputs can be checked afterwards.
echo "== checking outputs" >&2
"$BIN" inject < "$RENDER" > "$BENCH_DIR/reconfig.out.yaml" \
    || die "reconfig inject failed on $RENDER"
python3 benches/pyyaml_inject.py < "$RENDER" > "$BENCH_DIR/pyyaml.out.yaml" \
    || die "the PyYAML peer failed on $RENDER"

echo "== timing" >&2
rm -f "$RESULTS"
timeit() { python3 benches/timeit_cmd.py run --input "$RENDER" --results "$RESULTS" --warmup "$WARMUP" "$@"; }
timeit --label reconfig --runs "$RUNS" -- "$BIN" inject
timeit --label pyyaml --runs "$PEER_RUNS" -- python3 benches/pyyaml_inject.py
timeit --label sha256sum --runs "$RUNS" -- sha256sum

echo
echo "## reconfig inject benchmark ($(nproc) cores, $(uname -sm))"
echo
python3 benches/timeit_cmd.py table --input "$RENDER" --results "$RESULTS" \
    --base reconfig --peer pyyaml --floor sha256sum
echo
echo "Lines containing \`checksum/config\`: reconfig $(grep -c 'checksum/config' "$BENCH_DIR/reconfig.out.yaml" || true)," \
     "peer $(grep -c 'checksum/config' "$BENCH_DIR/pyyaml.out.yaml" || true)" \
     "(input $(grep -c 'checksum/config' "$RENDER" || true))"
echo
echo '```'
python3 benches/compare_outputs.py "$RENDER" "$BENCH_DIR/reconfig.out.yaml" "$BENCH_DIR/pyyaml.out.yaml"
echo '```'
