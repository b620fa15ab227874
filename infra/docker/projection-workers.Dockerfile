# syntax=docker/dockerfile:1.7
# projection-workers: projections into PostgreSQL and Redis, and the replay CLI
# Build from the repository root:
#   docker build -f infra/docker/projection-workers.Dockerfile -t holdfast/projection-workers .
# Stages: chef (cargo-chef) -> planner (dependency recipe) -> builder (dependencies cached in
# their own layer, then the workspace) -> runtime (distroless, non-root, no shell).

FROM rust:1.95-slim-bookworm AS chef
# Debian security updates replace exact versions, so apt packages are not pinned (waived in
# .hadolint.yaml); the base image tag pins the distribution.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev cmake busybox-static \
    && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.73
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: this layer is reused until Cargo.toml or Cargo.lock change.
RUN cargo chef cook --release --locked --recipe-path recipe.json -p holdfast-projection-workers
COPY . .
RUN cargo build --release --locked -p holdfast-projection-workers --bins \
    && mkdir -p /out \
    && cp target/release/projection-workers target/release/holdfast-replay /out/

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="holdfast-projection-workers" \
      org.opencontainers.image.description="Holdfast projections into PostgreSQL and Redis, and the replay CLI" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Holdfast"
# busybox only for the HEALTHCHECK's wget: the runtime image has no shell or HTTP client.
COPY --from=builder /bin/busybox /usr/local/bin/busybox
COPY --from=builder /out/ /usr/local/bin/
# The Amazon RDS certificate authorities, which RDS's server certificates chain to (not to any
# public root): the PostgreSQL URLs verify the server against them
# (sslmode=verify-full&sslrootcert=/etc/holdfast/rds/global-bundle.pem). Taken from AWS's trust
# store over HTTPS at build time, so each image carries the bundle current when it was built.
# checkov:skip=CKV_DOCKER_4:ADD fetches the RDS CA bundle from AWS's HTTPS trust store, which COPY cannot
ADD --chmod=444 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /etc/holdfast/rds/global-bundle.pem
ENV HOLDFAST_PROJECTION_LISTEN=0.0.0.0:8082 \
    HOLDFAST_LOG_FORMAT=json
EXPOSE 8082
# uid 65532 (distroless "nonroot").
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8082/healthz"]
# SIGTERM starts the graceful drain (HOLDFAST_SHUTDOWN_GRACE).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/projection-workers"]
