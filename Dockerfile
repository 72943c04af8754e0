# syntax=docker/dockerfile:1
# kreplay's runner image: engine and preprocess on a root holding nothing else but the shared
# objects they load, CA certificates and a non-root user. scripts/image-rootfs.sh stages the
# root here and in scripts/image.sh (the same image built offline with buildah); keep the
# user, directories, entrypoint and labels below in step with that script. docs/image.md.
#
#   docker build -t REGISTRY/kreplay:TAG \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) .

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# The binaries are copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p engine -p preprocess \
    && scripts/image-rootfs.sh target/release /rootfs \
    && mkdir /runner-home

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
COPY --from=build --chown=0:0 /rootfs/ /
# Where runner pods download timelines (an emptyDir in the Job): the runner's own.
COPY --from=build --chown=65532:65532 /runner-home/ /var/lib/kreplay/
USER 65532:65532
WORKDIR /var/lib/kreplay
ENV PATH=/usr/local/bin
ENTRYPOINT ["/usr/local/bin/engine"]
CMD ["--help"]
LABEL org.opencontainers.image.title="kreplay" \
      org.opencontainers.image.description="kreplay runner: replays a preprocessed Kubernetes API timeline (engine, preprocess)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
