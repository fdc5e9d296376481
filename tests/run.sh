#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the tests need, then `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real Helm 3.17.2 / Helm 4.1.4 (+ kubectl 1.35) for tests/helm.rs, cached under target/tools/.
bash tests/tools/install-helm.sh >/dev/null

# Debian's prometheus 2.42 (prometheus, promtool) and nginx for tests/watch_*.rs, only when missing.
# The tests run these binaries themselves (own config, ports, pid files), so the packaged services
# are kept from starting during the install (a policy-rc.d refusing starts, if the machine has none).
watch_deps=()
for pkg in prometheus nginx; do
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

cargo test --locked --all-targets --no-fail-fast
