# Shared by the scripts in this folder (sourced, not run): the crate version, the target
# architectures, and the static sidecar build that the image and the release both ship.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac

die() { echo "${0##*/}: error: $*" >&2; exit 2; }
log() { echo "${0##*/}: $*" >&2; }

# The crate version: the one place a release's version is written (Cargo.toml).
crate_version() {
    sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' "$ROOT/Cargo.toml" | head -n1
}

# The image every example and snippet references; tests/release.rs holds them to it.
IMAGE_REPOSITORY=ghcr.io/reconfig/reconfig

# ARCH (the OCI/Go name: amd64, arm64, ppc64le, s390x) -> the Rust target triple.
rust_target() {
    case $1 in
        amd64) echo x86_64-unknown-linux-gnu ;;
        arm64) echo aarch64-unknown-linux-gnu ;;
        ppc64le) echo powerpc64le-unknown-linux-gnu ;;
        s390x) echo s390x-unknown-linux-gnu ;;
        *) die "unknown --arch $1 (amd64, arm64, ppc64le, s390x)" ;;
    esac
}

native_arch() {
    case $(uname -m) in
        x86_64) echo amd64 ;;
        aarch64) echo arm64 ;;
        ppc64le) echo ppc64le ;;
        s390x) echo s390x ;;
        *) die "unsupported machine $(uname -m)" ;;
    esac
}

# build_static ARCH FLAVOUR -> prints the binary's path. FLAVOUR is `kube` (the Kubernetes API
# client) or `lean` (none). Neither takes the `mimalloc` feature: the image runs mostly as an
# idle sidecar, which keeps 1.7 MiB more with it. The sidecar profile, glibc linked statically
# and non-PIE: the README's sidecar build. Cargo skips it when up to date.
build_static() {
    local arch=$1 flavour=$2 target features=(--no-default-features --features kube) dir
    target=$(rust_target "$arch")
    dir=$TARGET_DIR
    if [[ $flavour == lean ]]; then
        features=(--no-default-features)
        dir=$TARGET_DIR/lean # its own folder: the two flavours do not overwrite each other
    fi
    log "building the static $flavour binary for $target (profile sidecar; minutes the first time)"
    RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
        cargo build --locked --quiet --profile sidecar --target "$target" \
        --target-dir "$dir" "${features[@]}" --manifest-path "$ROOT/Cargo.toml" >&2 \
        || die "the static build failed (for another --arch: see README, \"Other architectures\")"
    echo "$dir/$target/sidecar/reconfig"
}

# Every file a build writes gets this time, so that two builds of one commit are equal:
# SOURCE_DATE_EPOCH if set, else the commit's time, else 0.
source_date_epoch() {
    if [[ -n ${SOURCE_DATE_EPOCH:-} ]]; then
        echo "$SOURCE_DATE_EPOCH"
    else
        git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0
    fi
}
