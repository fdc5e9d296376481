#!/usr/bin/env bash
# `reconfig prune` on the loopback API stand-in holding 10,000 versions and 5,000
# ReplicaSets: the requests it makes (one list per kind, no per-object reads) and how long it
# takes, dry run and real. The scenario is the ignored test `prune_at_scale` in
# tests/prune_kube.rs. Run from anywhere: bash benches/prune_bench.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo test --release --test prune_kube -- --ignored --nocapture --exact prune_at_scale 2>&1 \
    | grep -E '^prune over|test result'
