#!/usr/bin/env bash
# Footprint and latency of `reconfig watch` under kubelet-style ConfigMap updates.
#
#   bash benches/watch_bench.sh                      # 60 s idle window, 1,000 updates
#   bash benches/watch_bench.sh --idle-seconds 10    # quicker
#   bash benches/watch_bench.sh --env MALLOC_ARENA_MAX=1 --json /tmp/watch.json
#
# Builds the release binary, then runs benches/watch_bench.py (Python 3 stdlib): reconfig
# watches a volume updated by an exact port of kubelet's AtomicWriter and calls a loopback
# webhook receiver; the driver prints idle RSS, idle CPU ticks, ..data swap -> webhook latency
# (p50/p99) and the reload counts for distinct updates, no-op rewrites and invalid configs.
# Pass --bin PATH to measure another build. When configmap-reload is found (--peer PATH,
# $CONFIGMAP_RELOAD, or shared/peers/ beside the checkout or above it), it runs beside reconfig,
# taking turns on every update, and both columns come from one run; without it, a note says so.
# Exits non-zero when a count is not exact.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release/reconfig
for arg in "$@"; do
    case "$arg" in --bin|--bin=*) bin="" ;; esac
done
if [ -n "$bin" ]; then
    cargo build --release --locked --quiet
    set -- --bin "$bin" "$@"
fi
exec python3 benches/watch_bench.py "$@"
