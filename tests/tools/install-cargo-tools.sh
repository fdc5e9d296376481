#!/usr/bin/env bash
# Installs the cargo subcommands the release and CI use, pinned, from crates.io:
#   cargo-deny      (deny.toml: licenses, bans, sources; `.ci/run`)
#   cargo-cyclonedx (the CycloneDX SBOM of a release; scripts/release.sh)
#
#   bash tests/tools/install-cargo-tools.sh [cargo-deny|cargo-cyclonedx]...   (default: both)
#
# Installs into ${CARGO_TARGET_DIR:-target}/tools/cargo/bin (override the tools folder with
# RECONFIG_TOOLS_DIR) and prints KEY=ABSOLUTE_PATH lines (CARGO_DENY, CARGO_CYCLONEDX).
# Building them takes minutes on 2 cores, so a built binary is also kept in
# ${RECONFIG_TOOLS_CACHE:-~/.cache/reconfig/tools} (outside the checkout, which CI clones
# afresh) and copied from there next time; set RECONFIG_TOOLS_CACHE=off to skip that cache.
# Idempotent: a binary in place that reports the pinned version is kept (no network).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
TOOLS=${RECONFIG_TOOLS_DIR:-$TARGET/tools}
CACHE=${RECONFIG_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reconfig/tools}

# crate | version | KEY
PINS=(
    "cargo-deny|0.20.2|CARGO_DENY"
    "cargo-cyclonedx|0.5.9|CARGO_CYCLONEDX"
)

log() { echo "install-cargo-tools: $*" >&2; }
die() { echo "install-cargo-tools: error: $*" >&2; exit 1; }

[[ $# -gt 0 ]] || set -- cargo-deny cargo-cyclonedx
mkdir -p "$TOOLS/cargo/bin"

reports() { # binary crate version: does it run and report that version?
    local out
    out=$("$1" "${2#cargo-}" --version 2>/dev/null) || return 1
    [[ $out == *" $3"* ]]
}

for want in "$@"; do
    found=0
    for pin in "${PINS[@]}"; do
        IFS='|' read -r crate version key <<<"$pin"
        [[ $crate == "$want" ]] || continue
        found=1
        # One lock per tool: two runs never build one tool at once, and a release waits for
        # cargo-cyclonedx only, not for a cargo-deny build.
        if command -v flock >/dev/null; then
            exec 9>"$TOOLS/.install-$crate.lock"
            flock 9
        fi
        bin=$TOOLS/cargo/bin/$crate
        cached=$CACHE/$crate-$version
        if ! reports "$bin" "$crate" "$version"; then
            if [[ $CACHE != off ]] && reports "$cached" "$crate" "$version"; then
                log "$crate $version: copied from $CACHE"
                install -m 0755 "$cached" "$bin"
            else
                log "$crate $version: building from crates.io (a few minutes on 2 cores)"
                cargo install --quiet --locked --force "$crate" --version "=$version" \
                    --root "$TOOLS/cargo" >&2 || die "cargo install $crate $version failed"
                reports "$bin" "$crate" "$version" || die "$bin does not report $version"
                if [[ $CACHE != off ]]; then
                    mkdir -p "$CACHE" && install -m 0755 "$bin" "$cached.tmp.$$" &&
                        mv -f "$cached.tmp.$$" "$cached" || log "could not cache it in $CACHE"
                fi
            fi
        fi
        echo "$key=$bin"
    done
    [[ $found -eq 1 ]] || die "unknown tool $want (cargo-deny, cargo-cyclonedx)"
done
