#!/usr/bin/env bash
# Benchmarks of the GraphQL gateway against PostgreSQL + the Kafka-protocol broker, release build,
# everything on this machine (so the load generator competes with what it measures):
#   1. live fan-out: 2,000 subscribers on one post, comments at a steady rate: deliveries/s,
#      acknowledgement-to-receipt p50/p99, gateway memory per idle subscription
#   2. the post page query (a post and its first 20 comments) from 50 concurrent clients
# Results: target/bench/gateway.jsonl and stdout. BENCH_SUBSCRIBERS, BENCH_RATE, BENCH_COMMENTS,
# BENCH_CLIENTS and BENCH_SECONDS override the defaults; BENCH_NO_BUILD=1 uses the release binary
# as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/inkwire-target}
SUBSCRIBERS=${BENCH_SUBSCRIBERS:-2000}
RATE=${BENCH_RATE:-50}
COMMENTS=${BENCH_COMMENTS:-500}
CLIENTS=${BENCH_CLIENTS:-50}
SECONDS_=${BENCH_SECONDS:-15}
export INKWIRE_TEST_RUN_DIR=${TMPDIR:-/tmp}/inkwire-bench-run
export INKWIRE_TEST_PGPORT=25450 INKWIRE_TEST_KAFKA_PORT=19102 INKWIRE_TEST_S3_PORT=19112
out=target/bench; mkdir -p "$out"; : > "$out/gateway.jsonl"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release -p inkwire --locked
bin=$CARGO_TARGET_DIR/release/inkwire
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; scripts/test-deps.sh stop; }
trap cleanup EXIT
unset KAFKA_BROKERS
eval "$(scripts/test-deps.sh start)"
psql() { "$INKWIRE_PG_BIN/psql" -h 127.0.0.1 -p "$INKWIRE_TEST_PGPORT" -U postgres -qAt -v ON_ERROR_STOP=1 "$@"; }
psql -c "create database gw" -c "alter database gw set default_transaction_isolation to 'serializable'"
db=postgres://postgres@127.0.0.1:$INKWIRE_TEST_PGPORT/gw
common=(--database-url "$db" --kafka-brokers "$KAFKA_BROKERS" --topic gw)
export INKWIRE_JWT_SECRET=${INKWIRE_JWT_SECRET:-bench-secret-bench-secret-bench-secret}
# The benchmark's author (inkwire bench signs in as bench / bench-password).
echo bench-password | "$bin" user add --database-url "$db" --username bench --role author >/dev/null
RUST_LOG=warn "$bin" command-service "${common[@]}" --listen 127.0.0.1:18281 --database-pool 32 & pids+=($!)
RUST_LOG=warn "$bin" projection-service "${common[@]}" --listen 127.0.0.1:18282 & pids+=($!)
RUST_LOG=warn "$bin" query-gateway "${common[@]}" --listen 127.0.0.1:18283 --command-url http://127.0.0.1:18281 \
  --mutations-per-minute 1000000 \
  --database-pool 32 & gw=$!; pids+=($gw)
for _ in $(seq 1 200); do
  curl -sf localhost:18281/readyz >/dev/null && curl -sf localhost:18282/readyz >/dev/null \
    && curl -sf localhost:18283/readyz >/dev/null && break
  sleep 0.1
done

echo "bench: fan-out, $SUBSCRIBERS subscribers, $RATE comments/s" >&2
"$bin" bench fanout --graphql-url http://127.0.0.1:18283/graphql --subscribers "$SUBSCRIBERS" \
  --comments "$COMMENTS" --rate "$RATE" --gateway-pid "$gw" | tee -a "$out/gateway.jsonl"

echo "bench: post page query, $CLIENTS clients" >&2
"$bin" bench page --graphql-url http://127.0.0.1:18283/graphql --clients "$CLIENTS" --seconds "$SECONDS_" \
  | tee -a "$out/gateway.jsonl"

echo "bench: machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)" >&2
