# syntax=docker/dockerfile:1
# The Champion image: the operator (/champion, the entrypoint) and the kubectl plugin (/kubectl-champion,
# for `docker cp` or a debug container). Built against glibc on Debian 12 and run on the matching
# distroless base, as the non-root user 65532.
#
#   docker build -t ghcr.io/champion-ml/champion:0.1.0 .
#
# The Deployment in config/operator/ supplies the arguments (`run --config ... --listen ...`).

FROM rust:1-bookworm AS build
WORKDIR /src
# Only what the two binaries need; add build.rs here if the crate gets one.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin champion --bin kubectl-champion \
    && mkdir -p /out \
    && cp target/release/champion target/release/kubectl-champion /out/

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/champion /champion
COPY --from=build /out/kubectl-champion /kubectl-champion
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/champion"]
