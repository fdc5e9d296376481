#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the tests need, then `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real Helm 3.17.2 / Helm 4.1.4 (+ kubectl 1.35) for tests/helm.rs, cached under target/tools/.
bash tests/tools/install-helm.sh >/dev/null

cargo test --locked --all-targets
