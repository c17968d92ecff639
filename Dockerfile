# Inkwire's images, from one multi-stage build:
#   docker build -t inkwire .                  the `inkwire` binary (every service) + the web UI
#   docker build -t inkwire-edge --target edge .   nginx with Inkwire's config and the web UI
# Dependencies are compiled in their own layer (cargo-chef), so a code change rebuilds only
# Inkwire's crates.

FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --version 0.1.71 --locked
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# librdkafka is built from source by rdkafka-sys.
RUN apt-get update && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json -p inkwire
COPY . .
RUN cargo build --release --locked -p inkwire

FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/inkwire --create-home inkwire
COPY --from=builder /src/target/release/inkwire /usr/local/bin/inkwire
COPY --from=web /web/build /usr/share/inkwire/web
ENV INKWIRE_WEB_DIR=/usr/share/inkwire/web \
    INKWIRE_DATA_DIR=/var/lib/inkwire \
    INKWIRE_LOG_FORMAT=json
USER inkwire
ENTRYPOINT ["inkwire"]
CMD ["--help"]

FROM nginx:1.27-bookworm AS edge
COPY nginx/inkwire.conf.template /etc/inkwire/inkwire.conf.template
COPY --from=web /web/build /usr/share/inkwire/web
