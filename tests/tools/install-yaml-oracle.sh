#!/usr/bin/env bash
# Builds the reference YAML oracle (tests/tools/yaml-oracle/main.go) that
# tests/yaml_oracle.rs compares reconfig's YAML reading with: go-yaml v3 and
# sigs.k8s.io/yaml, the decoders of Helm and kubectl.
#
#   bash tests/tools/install-yaml-oracle.sh
#
# Installs Debian's Go and the three Go libraries with apt-get, only when
# missing, then builds offline in GOPATH mode against the packaged sources in
# /usr/share/gocode (no module proxy is reachable here; see the README beside
# main.go). The binary lands in ${CARGO_TARGET_DIR:-target}/tools/yaml-oracle
# (override: RECONFIG_TOOLS_DIR); its absolute path is printed on stdout.
#
# Idempotent: the build is kept while main.go's sha256 is the one it was built
# from, so a second run installs and builds nothing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
TOOLS=${RECONFIG_TOOLS_DIR:-$TARGET/tools}
SRC=$ROOT/tests/tools/yaml-oracle
BIN=$TOOLS/yaml-oracle
STAMP=$TOOLS/yaml-oracle.sha256

log() { echo "install-yaml-oracle: $*" >&2; }
die() { echo "install-yaml-oracle: error: $*" >&2; exit 1; }

# Debian's packages, installed only when missing (root, or sudo; `apt-get update` only on a failed install).
PACKAGES=(golang-go golang-gopkg-yaml.v3-dev golang-gopkg-yaml.v2-dev golang-k8s-sigs-yaml-dev)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    as_root=(); [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
        { "${as_root[@]}" apt-get update -q >/dev/null &&
          "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } ||
        die "apt-get install ${missing[*]} failed"
fi

mkdir -p "$TOOLS"
# Several test binaries may call this at once.
if command -v flock >/dev/null; then
    exec 9>"$TOOLS/.yaml-oracle.lock"
    flock 9
fi

want=$(sha256sum "$SRC/main.go" | cut -d' ' -f1)
if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
    echo "$BIN"
    exit 0
fi

log "building $BIN"
tmp=$(mktemp -d "$TOOLS/.tmp-yaml-oracle.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# GOPATH mode: the first GOPATH entry is a scratch one (go wants a writable one), the second holds
# Debian's library sources. GOFLAGS and GOPROXY from the caller must not reach a module-less build.
(cd "$SRC" && env GO111MODULE=off GOPATH="$tmp/gopath:/usr/share/gocode" GOCACHE="$tmp/cache" \
    GOFLAGS= GOPROXY=off CGO_ENABLED=0 go build -trimpath -o "$tmp/yaml-oracle" .) ||
    die "go build of $SRC failed"
echo '' | "$tmp/yaml-oracle" >/dev/null || die "the built oracle does not run"
mv "$tmp/yaml-oracle" "$BIN"
echo "$want" >"$STAMP"
echo "$BIN"
