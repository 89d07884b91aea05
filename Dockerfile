# oidc-bridge container image: a release build on Debian bookworm, run on distroless.
#
#   docker build -t oidc-bridge:0.1.0 .
#   docker run --rm -p 8080:8080 \
#     -e OIDC_BRIDGE_ISSUER=https://id.example.com \
#     -e OIDC_BRIDGE_DATABASE_URL=postgres://oidc_bridge:PASSWORD@db:5432/oidc_bridge \
#     -e OIDC_BRIDGE_ENCRYPTION_KEY="$(openssl rand -base64 32)" \
#     oidc-bridge:0.1.0
#
# The baked config (deploy/config.yaml) reads those three variables; mount your own file
# over /etc/oidc-bridge/config.yaml for clients, users and connectors. See deploy/README.md.
# tests/api/deploy.rs parses this file: keep instructions one per line (continuations are
# fine) and ENTRYPOINT, CMD and HEALTHCHECK in exec (JSON) form.

# ---- builder --------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /build

# Dependencies first, against stub sources, so that a source change rebuilds only this
# crate. The workspace names `conformance` as a member, so its manifest (and a stub lib)
# must be present for `--locked` to resolve the lock file.
COPY Cargo.toml Cargo.lock ./
COPY conformance/Cargo.toml conformance/Cargo.toml
RUN mkdir -p src conformance/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs conformance/src/lib.rs \
 && cargo build --release --locked -p oidc-bridge --bin oidc-bridge \
 && rm -rf src

# The real sources: the crate embeds templates/, assets/ and migrations/ at compile time.
# (conformance keeps its stub: only the binary is built.)
COPY src src
COPY templates templates
COPY assets assets
COPY migrations migrations
# COPY keeps the files' own times, which may be older than the stub build: touch the roots
# so cargo rebuilds this crate whatever the checkout's times are.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked -p oidc-bridge --bin oidc-bridge \
 && ./target/release/oidc-bridge --version

# ---- runtime --------------------------------------------------------------------------
# distroless/cc: glibc, libgcc_s, CA certificates, tzdata and, because it is built on
# distroless/base (not base-nossl), Debian's libssl3 (libssl.so.3, libcrypto.so.3), which the
# binary links through josekit, openssl and native-tls. Both stages are bookworm, so the
# OpenSSL the binary was linked against is the one it loads, and it stays the Debian package
# that image scanners track. No shell, no package manager; the user is nonroot (65532).
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

COPY --from=builder /build/target/release/oidc-bridge /usr/local/bin/oidc-bridge
COPY deploy/config.yaml /etc/oidc-bridge/config.yaml

# Numeric, so that Kubernetes' runAsNonRoot can verify it (a name cannot be checked).
USER 65532:65532
ENV OIDC_BRIDGE_LOG_FORMAT=json
# 8080: OIDC endpoints, /healthz and /readyz (`listen`); 9090: /metrics (`server.metrics_listen`).
EXPOSE 8080 9090

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["/usr/local/bin/oidc-bridge", "healthcheck", "--url", "http://127.0.0.1:8080/readyz", "--timeout", "3"]

ENTRYPOINT ["/usr/local/bin/oidc-bridge"]
CMD ["serve", "--config", "/etc/oidc-bridge/config.yaml"]
