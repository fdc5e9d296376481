#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the tests need, then `cargo test`.
# Arguments go to `cargo test` instead of the default `--all-targets` (e.g. `--test watch_nginx`).
#
# A test whose program (nginx, promtool, ...) is missing skips itself and cargo still says `ok`;
# outside CI (where it fails instead) it records the skip in $RECONFIG_SKIP_LOG
# (tests/support/bins.rs). This script lists those skips at the end and fails unless
# RECONFIG_ALLOW_SKIP=1: a run that skipped tests has not shown that they pass.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- --all-targets

# Real Helm 3.17.2 / Helm 4.1.4 (+ kubectl 1.35) for tests/helm.rs, cached under target/tools/.
bash tests/tools/install-helm.sh >/dev/null

# The go-yaml / sigs.k8s.io/yaml reference for tests/yaml_oracle.rs (Debian packages, built offline),
# cached under target/tools/.
bash tests/tools/install-yaml-oracle.sh >/dev/null

# Debian's prometheus 2.42 (prometheus, promtool) and nginx for tests/watch_*.rs, curl (an
# OpenSSL TLS client) for tests/admit_server.rs, and umoci and skopeo for the image
# (scripts/build-image.sh, tests/release.rs), only when missing.
# The tests run these binaries themselves (own config, ports, pid files), so the packaged services
# are kept from starting during the install (a policy-rc.d refusing starts, if the machine has none).
watch_deps=()
for pkg in prometheus nginx curl umoci skopeo; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || watch_deps+=("$pkg")
done
if [ ${#watch_deps[@]} -gt 0 ] && command -v apt-get >/dev/null; then
    as_root=(); [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    policy_ours=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${as_root[@]}" chmod 755 /usr/sbin/policy-rc.d && policy_ours=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get install -y -q --no-install-recommends "${watch_deps[@]}" >/dev/null ||
        { "${as_root[@]}" apt-get update -q >/dev/null &&
          "${as_root[@]}" apt-get install -y -q --no-install-recommends "${watch_deps[@]}" >/dev/null; }
    [ "$policy_ours" -eq 0 ] || "${as_root[@]}" rm -f /usr/sbin/policy-rc.d
fi

# tests/release.rs builds the image and the release tarball from the static sidecar binary
# (a fat-LTO build: minutes on 2 cores) and cargo-cyclonedx (cached, see
# tests/tools/install-cargo-tools.sh). Built here first, alone, rather than inside a test
# racing the others for the cores; the test then finds both up to date.
case " $* " in
    *" --all-targets "*|*release*)
        bash scripts/release.sh --dist "${CARGO_TARGET_DIR:-target}/dist-prebuilt" >/dev/null ||
            echo "tests/run.sh: building the release first failed; tests/release.rs will say why" >&2 ;;
esac

RECONFIG_SKIP_LOG=$(mktemp "${TMPDIR:-/tmp}/reconfig-skips.XXXXXX")
export RECONFIG_SKIP_LOG
trap 'rm -f "$RECONFIG_SKIP_LOG"' EXIT
status=0
cargo test --locked --no-fail-fast "$@" || status=$?

if [ -s "$RECONFIG_SKIP_LOG" ]; then
    echo
    echo "Skipped (reported ok by cargo, but not run):"
    sort "$RECONFIG_SKIP_LOG" | sed 's/^/  /'
    if [ "${RECONFIG_ALLOW_SKIP:-}" = 1 ]; then
        echo "RECONFIG_ALLOW_SKIP=1: not failing for these."
    else
        echo "Install what they need, or set RECONFIG_ALLOW_SKIP=1 to accept the skips."
        [ "$status" -ne 0 ] || status=1
    fi
fi
exit "$status"
