#!/bin/sh
# Launcher for the reconfig Helm 4 post-renderer plugin.
#
# Runs bin/reconfig from the plugin directory if it is there, else `reconfig`
# from PATH. Helm gives the rendered manifests on stdin and appends the
# --post-renderer-args values to our argv:
#   no arguments             -> reconfig inject
#   first one is an option   -> reconfig inject ARGS   (--log-file=..., --namespace=...)
#   anything else            -> reconfig ARGS          (a subcommand of your choice)
set -eu

dir=${HELM_PLUGIN_DIR:-}
if [ -z "$dir" ]; then
    dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
fi

if [ -x "$dir/bin/reconfig" ]; then
    bin=$dir/bin/reconfig
elif bin=$(command -v reconfig 2>/dev/null) && [ -n "$bin" ]; then
    :
else
    # Helm 4 hides this message; `helm plugin list` and running this script
    # by hand show it.
    echo "reconfig helm plugin: no reconfig binary at $dir/bin/reconfig or on PATH" >&2
    exit 127
fi

case ${1-} in
    '' | -*) exec "$bin" inject "$@" ;;
    *) exec "$bin" "$@" ;;
esac
