#!/usr/bin/env bash
# Builds the reconfig image without a container daemon: the Dockerfile's final stage
# (FROM scratch, /reconfig, USER 65532:65532, ENTRYPOINT ["/reconfig"], the OCI labels),
# assembled by umoci from the static sidecar binary, then exported by skopeo.
#
#   bash scripts/build-image.sh [--arch amd64|arm64|ppc64le|s390x] [--lean] [--out DIR]
#
# Writes, under DIR (default dist/image-ARCH, or dist/image-ARCH-lean):
#   oci/                                   an OCI image layout, tag VERSION (VERSION-lean)
#   reconfig-VERSION-ARCH.docker.tar       the same image as a docker-archive, named
#                                          ghcr.io/reconfig/reconfig:VERSION (VERSION-lean)
# and prints the docker-archive's path. Load it with `docker load -i`, `podman load -i`, or
# push the layout: `skopeo copy oci:DIR/oci:VERSION docker://REGISTRY/reconfig:VERSION`.
#
# --lean builds without the Kubernetes API client (no --events/--annotate-pod; see README).
# --arch other than this machine's needs that Rust target and a cross linker (README).
# Needs Debian's umoci and skopeo (tests/run.sh installs them). The build is reproducible:
# file and config times are SOURCE_DATE_EPOCH, else the commit's time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

arch=$(native_arch) flavour=kube out=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --arch) arch=${2:?--arch needs a value}; shift 2 ;;
        --arch=*) arch=${1#--arch=}; shift ;;
        --lean) flavour=lean; shift ;;
        --out) out=${2:?--out needs a folder}; shift 2 ;;
        --out=*) out=${1#--out=}; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
rust_target "$arch" >/dev/null
for tool in umoci skopeo; do
    command -v "$tool" >/dev/null || die "needs $tool (Debian: apt-get install umoci skopeo)"
done

version=$(crate_version)
tag=$version
[[ $flavour == kube ]] || tag=$version-lean
out=${out:-$ROOT/dist/image-$arch$([[ $flavour == kube ]] || echo -lean)}
binary=$(build_static "$arch" "$flavour")
epoch=$(source_date_epoch)
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
repository=$(sed -n '/^\[package\]/,/^\[/s/^repository *= *"\([^"]*\)".*/\1/p' "$ROOT/Cargo.toml")
license=$(sed -n '/^\[package\]/,/^\[/s/^license *= *"\([^"]*\)".*/\1/p' "$ROOT/Cargo.toml")

work=$(mktemp -d "${TMPDIR:-/tmp}/reconfig-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

rootless=()
[[ $(id -u) -eq 0 ]] || rootless=(--rootless)
layout=$work/oci
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
# The one file of the layer: root's, 0755 (the image's user runs it and cannot change it),
# with a fixed time; `umoci repack` writes the rootfs' difference as that layer.
umoci unpack "${rootless[@]}" --image "$layout:$tag" "$work/bundle" >&2
install -m 0755 "$binary" "$work/bundle/rootfs/reconfig"
touch -d "@$epoch" "$work/bundle/rootfs/reconfig" "$work/bundle/rootfs"
umoci repack --image "$layout:$tag" \
    --history.created "$created" --history.created_by "COPY --chmod=0755 /reconfig /reconfig" \
    "$work/bundle"
umoci config --image "$layout:$tag" --no-history \
    --os linux --architecture "$arch" --created "$created" \
    --config.user 65532:65532 --config.entrypoint /reconfig \
    --config.label "org.opencontainers.image.source=$repository" \
    --config.label "org.opencontainers.image.version=$version" \
    --config.label "org.opencontainers.image.licenses=$license" \
    --config.label "org.opencontainers.image.title=reconfig" \
    --config.label "org.opencontainers.image.description=Validating config reload sidecar and Helm checksum post-renderer"
umoci gc --layout "$layout"

# A local-to-local copy checks no signatures; skopeo still wants a policy to say so.
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' > "$work/policy.json"
archive=$work/reconfig-$version-$arch$([[ $flavour == kube ]] || echo -lean).docker.tar
skopeo --policy "$work/policy.json" copy --quiet \
    "oci:$layout:$tag" "docker-archive:$archive:$IMAGE_REPOSITORY:$tag" >&2

# Replace an earlier build, but never a folder that holds anything else (--out . by mistake).
if [[ -e $out ]]; then
    leftover=$(find "$out" -mindepth 1 -maxdepth 1 ! -name oci ! -name '*.docker.tar' -print -quit)
    [[ -z $leftover && ( ! -e $out/oci || -e $out/oci/index.json ) ]] \
        || die "$out holds other files than an image build; choose an empty --out"
    rm -rf "$out"
fi
mkdir -p "$out"
mv "$layout" "$out/oci"
mv "$archive" "$out/"
log "image $IMAGE_REPOSITORY:$tag ($arch) in $out"
echo "$out/${archive##*/}"
