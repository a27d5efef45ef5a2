# syntax=docker/dockerfile:1
# Tollgate's container image: built on the Rust image, run on a small distroless image as a
# non-root user (uid 65532), with the `tollgate` binary alone.
#
#   docker build -t tollgate .
#   docker run -p 8000:8000 -v tollgate-data:/var/lib/tollgate tollgate
#
# Without settings it serves SQLite in the volume with a generated development key; for
# production give it secrets as files (TOLLGATE_SIGNING_KEY_FILE=/run/secrets/…, see the
# README's "Install and run in production", compose.yaml and deploy/kubernetes/).

ARG RUST_VERSION=1
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tollgate \
    && install -m 0755 target/release/tollgate /usr/local/bin/tollgate \
    && mkdir -p /staging/var/lib/tollgate

# glibc, libgcc and CA certificates, no shell: the binary needs nothing else.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /usr/local/bin/tollgate /usr/local/bin/tollgate
COPY --from=builder --chown=65532:65532 /staging/var/lib/tollgate /var/lib/tollgate
WORKDIR /var/lib/tollgate
USER 65532:65532
ENV TOLLGATE_BIND=0.0.0.0:8000 \
    DATABASE_URL=sqlite:///var/lib/tollgate/tollgate.db \
    TOLLGATE_LOG_FORMAT=json
VOLUME ["/var/lib/tollgate"]
EXPOSE 8000
# `tollgate serve` is process 1 and handles the signals itself: SIGTERM (what `docker stop`
# and Kubernetes send) lets requests in flight finish for SHUTDOWN_TIMEOUT, SIGHUP reloads
# the signing keys.
STOPSIGNAL SIGTERM
# No curl in the image: the binary asks /healthz at BIND itself.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/tollgate", "healthcheck", "--timeout", "4s"]
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["serve"]
