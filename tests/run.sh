#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the tests need, then `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked --all-targets
