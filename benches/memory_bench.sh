#!/usr/bin/env bash
# Peak memory of `reconfig inject` on the input shapes that cost a YAML reader the most
# (issue 12, item 16), against the goal: peak RSS <= 2x the input + 32 MiB. Bombs must be
# refused (exit 1) within that too. Peak RSS is GNU time's %M (getrusage ru_maxrss).
# Not a timed test: run it by hand, from anywhere: bash benches/memory_bench.sh
#
# Environment knobs:
#   BIN=target/release/reconfig   the binary (built with cargo build --release if missing)
#   FLOW_MIB=13     one-document flow mapping
#   RENDER_MIB=194  Helm-like render (benches/gen_render.py)
#   PAIRS=100000    ConfigMap + Deployment pairs (200,000 documents, ~29 MiB)
#   DOTS_MIB=13     documents separated by `...` and `---`
#   BENCH_DIR=target/bench
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=${BIN:-target/release/reconfig}
FLOW_MIB=${FLOW_MIB:-13}
RENDER_MIB=${RENDER_MIB:-194}
PAIRS=${PAIRS:-100000}
DOTS_MIB=${DOTS_MIB:-13}
BENCH_DIR=${BENCH_DIR:-target/bench}

die() { echo "memory_bench: $*" >&2; exit 1; }
[[ -x /usr/bin/time ]] || die "GNU time is required (apt-get install time)"
if [[ ! -x $BIN ]]; then
    echo "== building reconfig (release)" >&2
    cargo build --release || die "cargo build --release failed"
fi
mkdir -p "$BENCH_DIR"

gen() { # shape file [args...]
    local shape=$1 out=$2
    shift 2
    [[ -s $out ]] || python3 benches/gen_shapes.py "$shape" --out "$out" "$@"
}
gen flow-mapping "$BENCH_DIR/mem-flow-mapping.yaml" --mib "$FLOW_MIB"
gen render "$BENCH_DIR/mem-render.yaml" --mib "$RENDER_MIB"
gen pairs "$BENCH_DIR/mem-pairs.yaml" --count "$PAIRS"
gen dots "$BENCH_DIR/mem-dots.yaml" --mib "$DOTS_MIB"
gen laughs "$BENCH_DIR/mem-laughs.yaml"
gen long-alias "$BENCH_DIR/mem-long-alias.yaml"

printf '%-14s %10s %10s %10s %8s %5s  %s\n' shape "input MiB" "peak MiB" "goal MiB" seconds exit verdict
failed=0
# A `-piped` shape is the same input through a pipe, as Helm hands a post-renderer its
# stream: no size is known in advance (GNU time measures reconfig alone, not cat).
for shape in flow-mapping render render-piped pairs pairs-piped dots laughs long-alias; do
    file=$BENCH_DIR/mem-${shape%-piped}.yaml
    bytes=$(stat -c %s "$file")
    set +e
    if [[ $shape == *-piped ]]; then
        cat "$file" | /usr/bin/time -f '%M %e' -o "$BENCH_DIR/mem-$shape.time" "$BIN" inject >/dev/null 2>"$BENCH_DIR/mem-$shape.err"
        code=${PIPESTATUS[1]}
    else
        /usr/bin/time -f '%M %e' -o "$BENCH_DIR/mem-$shape.time" "$BIN" inject <"$file" >/dev/null 2>"$BENCH_DIR/mem-$shape.err"
        code=$?
    fi
    set -e
    # GNU time writes "Command exited with non-zero status N" first when the command fails.
    read -r kib seconds < <(tail -n 1 "$BENCH_DIR/mem-$shape.time")
    goal_kib=$(( (2 * bytes + 32 * 1048576) / 1024 ))
    want=0
    [[ $shape == laughs || $shape == long-alias ]] && want=1
    verdict=ok
    if (( kib > goal_kib )); then verdict="OVER GOAL"; failed=1; fi
    if (( code != want )); then verdict="$verdict, exit $code (want $want)"; failed=1; fi
    printf '%-14s %10.1f %10.1f %10.1f %8s %5s  %s\n' "$shape" \
        "$(echo "$bytes / 1048576" | bc -l)" "$(echo "$kib / 1024" | bc -l)" \
        "$(echo "$goal_kib / 1024" | bc -l)" "$seconds" "$code" "$verdict"
done
exit $failed
