# The reconfig image: one static binary on an empty filesystem.
#
#   docker build -t ghcr.io/reconfig/reconfig:0.1.0 .
#
# Without a container daemon, scripts/build-image.sh builds the same image (same file, same
# config) from the same static binary with umoci and skopeo; tests/release.rs checks that this
# file and that script agree. The binary is the sidecar build with the `kube` feature (see
# README, "The image"): --events and --annotate-pod work, at 1.4 MiB more idle RSS.

# Build stage: the README's sidecar build (size-optimised, static glibc, non-PIE).
FROM rust:1.89-bookworm AS build
# The Kubernetes API client, not the `mimalloc` allocator (1.7 MiB more idle RSS).
ARG FEATURES="--no-default-features --features kube"
WORKDIR /src
COPY . .
RUN RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
    cargo build --locked --profile sidecar --target "$(uname -m)-unknown-linux-gnu" $FEATURES \
 && cp "target/$(uname -m)-unknown-linux-gnu/sidecar/reconfig" /reconfig

FROM scratch
# The crate version (Cargo.toml); tests/release.rs fails when they differ.
ARG VERSION=0.1.0
LABEL org.opencontainers.image.source="https://github.com/reconfig/reconfig" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.title="reconfig" \
      org.opencontainers.image.description="Validating config reload sidecar and Helm checksum post-renderer"
COPY --from=build --chmod=0755 /reconfig /reconfig
# distroless' "nonroot": no passwd file is needed for a numeric user.
USER 65532:65532
ENTRYPOINT ["/reconfig"]
