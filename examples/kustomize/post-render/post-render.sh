#!/bin/sh
# Helm post-renderer chain: Helm's output -> kustomize (the kustomization.yaml
# and patches/ next to this script) -> reconfig inject. reconfig goes last so
# its checksums hash the config as kustomize left it.
#
#   Helm 3: helm template app ./chart --post-renderer ./post-render.sh [--post-renderer-args --strict]
#   Helm 4: helm plugin install <this dir>; helm template app ./chart --post-renderer kustomize-reconfig
#
# Arguments are passed to `reconfig inject`. Uses `kustomize` from PATH, else
# `kubectl kustomize`; `reconfig` from PATH.
set -eu

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/kustomize-reconfig.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

cp "$here/kustomization.yaml" "$work/"
if [ -d "$here/patches" ]; then
    cp -R "$here/patches" "$work/"
fi
cat > "$work/helm-output.yaml"

if command -v kustomize >/dev/null 2>&1; then
    kustomize build "$work" > "$work/kustomized.yaml"
else
    kubectl kustomize "$work" > "$work/kustomized.yaml"
fi
reconfig inject "$@" < "$work/kustomized.yaml"
