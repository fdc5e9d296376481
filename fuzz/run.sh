#!/usr/bin/env bash
# Runs the fuzz targets for a given time each: bash fuzz/run.sh SECONDS [TARGET...]
# Needs the nightly toolchain and cargo-fuzz (cargo install cargo-fuzz). See fuzz/README.md.
# FUZZ_SANITIZER=none runs without AddressSanitizer (the crate forbids unsafe code; its
# dependencies' unsafe code is what ASan checks), several times as many inputs a second.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(inject plan check_manifests differential)

status=0
for target in "${targets[@]}"; do
    corpus=corpus/$target
    mkdir -p "$corpus" "artifacts/$target"
    # Seeds: every YAML the project ships or tests with, one file each.
    find ../examples ../tests/fixtures -type f \( -name '*.yaml' -o -name '*.yml' \) -size -256k |
        while read -r seed; do cp -n "$seed" "$corpus/seed-$(echo "$seed" | sha1sum | cut -c1-16)"; done
    log=artifacts/$target/run.log
    echo "== $target: $seconds s"
    if cargo +nightly fuzz run --sanitizer "${FUZZ_SANITIZER:-address}" "$target" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=262144 \
        -artifact_prefix="artifacts/$target/" -print_final_stats=1 >"$log" 2>&1; then
        :
    else
        status=1
        echo "   FAILED: see fuzz/$log and fuzz/artifacts/$target/"
    fi
    grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "$log" | sed 's/^/   /' || true
done
exit "$status"
