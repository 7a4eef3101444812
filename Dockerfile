# syntax=docker/dockerfile:1
# motionq: one binary for every role (worker, serve, sim, enqueue, status, ...).
#   docker build -t motionq:local .
#   docker run --rm motionq:local --help

# ---------------------------------------------------------------- builder
FROM rust:1.95-bookworm AS builder
WORKDIR /src
# No debug info in the shipped binary (the workspace's release profile keeps line tables for
# local profiling); the runtime image stays small.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols
COPY . .
# Cache mounts keep the registry and build artefacts between builds; the binary is copied out
# of the cached target dir because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p motionq --bin motionq \
    && install -m 0755 target/release/motionq /usr/local/bin/motionq

# ---------------------------------------------------------------- runtime
FROM debian:bookworm-slim AS runtime
# ca-certificates: HTTPS to vendors and object storage (rustls uses the system roots too).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 motionq \
    && useradd --system --uid 10001 --gid motionq --home-dir /var/lib/motionq --create-home motionq
COPY --from=builder /usr/local/bin/motionq /usr/local/bin/motionq
COPY config /etc/motionq
COPY manifests /usr/share/motionq/manifests
ENV MOTIONQ_CONFIG=/etc/motionq/default.toml
USER motionq
WORKDIR /var/lib/motionq
# 8088 webhooks (serve), 8089 simulator (sim), 9464 /metrics and /healthz (worker).
EXPOSE 8088 8089 9464
ENTRYPOINT ["/usr/local/bin/motionq"]
CMD ["--help"]
