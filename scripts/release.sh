#!/usr/bin/env bash
# Builds a release: the static binary with its completions and man pages, packed with the
# LICENSE and docs, plus a CycloneDX SBOM and the checksums of both.
#
#   bash scripts/release.sh [--arch amd64|arm64|ppc64le|s390x] [--lean] [--image] [--dist DIR]
#
# Writes into dist/ (--dist DIR) and prints the tarball's path:
#   reconfig-VERSION-TRIPLE.tar.gz     reconfig-VERSION-TRIPLE/{reconfig, LICENSE, README.md,
#                                      CHANGELOG.md, SECURITY.md, completions/{reconfig.bash,
#                                      _reconfig, reconfig.fish}, man/reconfig*.1}
#   reconfig-VERSION-TRIPLE.cdx.json   the SBOM: every crate in the binary (cargo cyclonedx)
#   SHA256SUMS                         for the files above (`sha256sum -c SHA256SUMS`)
# TRIPLE is x86_64-unknown-linux-gnu on this machine. The binary is the image's (the sidecar
# build with the `kube` feature, glibc linked statically, so it runs on any Linux of that
# architecture); --lean leaves the Kubernetes API client out (name ends in -lean). --image
# also builds the image from the same binary (scripts/build-image.sh). The archive is
# reproducible: SOURCE_DATE_EPOCH, else the commit's time, is every file's time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

arch=$(native_arch) flavour=kube image=0 dist=$ROOT/dist
while [[ $# -gt 0 ]]; do
    case $1 in
        --arch) arch=${2:?--arch needs a value}; shift 2 ;;
        --arch=*) arch=${1#--arch=}; shift ;;
        --lean) flavour=lean; shift ;;
        --image) image=1; shift ;;
        --dist) dist=${2:?--dist needs a folder}; shift 2 ;;
        --dist=*) dist=${1#--dist=}; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
triple=$(rust_target "$arch")
version=$(crate_version)
name=reconfig-$version-$triple$([[ $flavour == kube ]] || echo -lean)
case $dist in /*) ;; *) dist=$PWD/$dist ;; esac
epoch=$(source_date_epoch)

binary=$(build_static "$arch" "$flavour")
# Completions and man pages come from the binary's own clap definition. A binary for another
# architecture cannot run here: the host's debug build has the same definition.
generator=$binary
if [[ $arch != "$(native_arch)" ]]; then
    cargo build --locked --quiet --manifest-path "$ROOT/Cargo.toml" >&2
    generator=$TARGET_DIR/debug/reconfig
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/reconfig-release.XXXXXX")
trap 'rm -rf "$work"' EXIT
pkg=$work/$name
mkdir -p "$pkg/completions" "$pkg/man"
install -m 0755 "$binary" "$pkg/reconfig"
install -m 0644 "$ROOT/LICENSE" "$ROOT/README.md" "$ROOT/CHANGELOG.md" "$ROOT/SECURITY.md" "$pkg/"
"$generator" completions bash > "$pkg/completions/reconfig.bash"
"$generator" completions zsh > "$pkg/completions/_reconfig"
"$generator" completions fish > "$pkg/completions/reconfig.fish"
"$generator" man "$pkg/man"
chmod 0644 "$pkg"/completions/* "$pkg"/man/*

# The SBOM: the crates of this build (its target and features), in CycloneDX JSON.
cyclonedx=$(bash "$ROOT/tests/tools/install-cargo-tools.sh" cargo-cyclonedx | sed -n 's/^CARGO_CYCLONEDX=//p')
# The features build_static uses (scripts/common.sh): kube or none, never mimalloc.
features=(--no-default-features --features kube)
[[ $flavour == kube ]] || features=(--no-default-features)
sbom_dir=$work/sbom
mkdir -p "$sbom_dir"
# cargo cyclonedx writes beside Cargo.toml: under a name of this run, moved out at once.
sbom_name=.reconfig-sbom-$$
trap 'rm -rf "$work" "$ROOT/$sbom_name.json"' EXIT
SOURCE_DATE_EPOCH=$epoch "$cyclonedx" cyclonedx --manifest-path "$ROOT/Cargo.toml" \
    --format json --spec-version 1.5 --target "$triple" "${features[@]}" --no-build-deps \
    --override-filename "$sbom_name" --quiet >&2 \
    || die "cargo cyclonedx failed"
mv "$ROOT/$sbom_name.json" "$sbom_dir/$name.cdx.json"

find "$pkg" -exec touch -h -d "@$epoch" {} +
mkdir -p "$dist"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    -C "$work" -cf - "$name" | gzip -9n > "$work/$name.tar.gz"
mv "$work/$name.tar.gz" "$sbom_dir/$name.cdx.json" "$dist/"
# SHA256SUMS lists every artefact in dist/ (several architectures may share one folder).
(cd "$dist" && sha256sum -- *.tar.gz *.cdx.json > SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
log "release $name in $dist"

if [[ $image -eq 1 ]]; then
    args=(--arch "$arch" --out "$dist/image-$arch$([[ $flavour == kube ]] || echo -lean)")
    [[ $flavour == kube ]] || args+=(--lean)
    bash "$ROOT/scripts/build-image.sh" "${args[@]}" >/dev/null
fi
echo "$dist/$name.tar.gz"
