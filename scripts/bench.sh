#!/usr/bin/env bash
# Reproducible benchmark of Inkwire against PostgreSQL + the Kafka-protocol broker, beside the
# database's and the broker's own limits measured in the same run:
#   1. pgbench: single-row INSERT transactions/s on the same PostgreSQL (SERIALIZABLE)
#   2. the broker's own ceiling for the comment path: a bare producer publishing comment events
#      the way the outbox relay does (same settings, headers and batches), nothing else running
#   3. comment commands/s over HTTP, end to end (acknowledged, relayed, projected)
#   4. acknowledgement latency p50/p99 at half that rate
#   5. projection catch-up on a 100,000-event backlog, beside a bare consumer on the same topic
#   6. projection catch-up on the embedded backend (SQLite + embedded log)
#   7. blue/green rebuild (`inkwire replay`) on PostgreSQL + the broker, beside a bare consumer
#   8. blue/green rebuild of 1,000,000 events on the embedded backend
# Results: target/bench/results.jsonl (one JSON object per measurement) and a summary on stdout.
# Everything runs on loopback and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/inkwire-target}
COMMENTS=${BENCH_COMMENTS:-20000}
BACKLOG=${BENCH_BACKLOG:-100000}
export INKWIRE_TEST_RUN_DIR=${TMPDIR:-/tmp}/inkwire-bench-run
export INKWIRE_TEST_PGPORT=25450 INKWIRE_TEST_KAFKA_PORT=19102 INKWIRE_TEST_S3_PORT=19112
out=target/bench; mkdir -p "$out"; : > "$out/results.jsonl"
cargo build --release -p inkwire --locked
bin=$CARGO_TARGET_DIR/release/inkwire
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; scripts/test-deps.sh stop; }
trap cleanup EXIT
unset KAFKA_BROKERS
eval "$(scripts/test-deps.sh start)"
psql() { "$INKWIRE_PG_BIN/psql" -h 127.0.0.1 -p "$INKWIRE_TEST_PGPORT" -U postgres -qAt -v ON_ERROR_STOP=1 "$@"; }
for db in bench catchup replay; do
  psql -c "create database $db" -c "alter database $db set default_transaction_isolation to 'serializable'"
done
base=postgres://postgres@127.0.0.1:$INKWIRE_TEST_PGPORT

echo "bench: pgbench single-row inserts" >&2
psql -d bench -c "create table pgbench_single (id uuid primary key default gen_random_uuid(), body text not null)"
echo "INSERT INTO pgbench_single (body) VALUES ('a comment of about this length');" > "$out/insert.sql"
tps=$("$INKWIRE_PG_BIN/pgbench" -h 127.0.0.1 -p "$INKWIRE_TEST_PGPORT" -U postgres -n -c 16 -j 2 -T 15 -f "$out/insert.sql" bench \
  | awk '/^tps/ {print $3; exit}')
echo "{\"bench\":\"pgbench_single_insert\",\"clients\":16,\"tps\":$tps}" | tee -a "$out/results.jsonl"

echo "bench: the broker's ceiling, a bare producer publishing as the relay does" >&2
"$bin" bench produce --database-url "$base/bench" --kafka-brokers "$KAFKA_BROKERS" --topic produce \
  --events "$COMMENTS" | tee -a "$out/results.jsonl"

echo "bench: services" >&2
export INKWIRE_JWT_SECRET=${INKWIRE_JWT_SECRET:-bench-secret-bench-secret-bench-secret}
# The author the comments benchmark writes as (its id is fixed in loadgen/src/bench.rs).
echo bench-password | "$bin" user add --database-url "$base/bench" --username bench --role author \
  --id 01890000-0000-7000-8000-00000000b0b0 >/dev/null
RUST_LOG=warn "$bin" command-service --database-url "$base/bench" --kafka-brokers "$KAFKA_BROKERS" --topic bench \
  --listen 127.0.0.1:18181 --database-pool 32 & pids+=($!)
RUST_LOG=warn "$bin" projection-service --database-url "$base/bench" --kafka-brokers "$KAFKA_BROKERS" --topic bench \
  --listen 127.0.0.1:18182 & pids+=($!)
for _ in $(seq 1 100); do curl -sf localhost:18181/readyz >/dev/null && curl -sf localhost:18182/readyz >/dev/null && break; sleep 0.1; done

echo "bench: comments, as fast as acknowledged" >&2
"$bin" bench comments --command-url http://127.0.0.1:18181 --read-url http://127.0.0.1:18182 \
  --comments "$COMMENTS" --posts 50 --concurrency 64 | tee -a "$out/results.jsonl"
rate=$(tail -n 1 "$out/results.jsonl" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["acked_per_sec"] / 2))')
echo "bench: comments at half that rate ($rate/s)" >&2
"$bin" bench comments --command-url http://127.0.0.1:18181 --read-url http://127.0.0.1:18182 \
  --comments $((rate * 20)) --posts 50 --concurrency 256 --rate "$rate" | tee -a "$out/results.jsonl"
# The services are done: left running, the idle projector's 10 ms fetches (which the broker answers
# from PostgreSQL) and the relay's polls would take CPU from every benchmark after this one.
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait "${pids[@]}" 2>/dev/null || true
pids=()

echo "bench: projection catch-up, PostgreSQL + broker" >&2
"$bin" bench catchup --database-url "$base/catchup" --kafka-brokers "$KAFKA_BROKERS" --topic catchup \
  --events "$BACKLOG" | tee -a "$out/results.jsonl"
"$bin" bench consume --kafka-brokers "$KAFKA_BROKERS" --topic catchup --events "$BACKLOG" | tee -a "$out/results.jsonl"

echo "bench: projection catch-up, embedded" >&2
rm -rf "$out/embedded"; mkdir -p "$out/embedded"
"$bin" bench catchup --database-url "sqlite://$out/embedded/inkwire.db" --topic catchup --partitions 1 \
  --events "$BACKLOG" | tee -a "$out/results.jsonl"

echo "bench: blue/green rebuild (inkwire replay), PostgreSQL + broker, beside a bare reader" >&2
"$bin" bench replay --database-url "$base/replay" --kafka-brokers "$KAFKA_BROKERS" --topic replay \
  --events "$BACKLOG" | tee -a "$out/results.jsonl"

echo "bench: blue/green rebuild, embedded, ${REPLAY_EVENTS:-1000000} events" >&2
rm -rf "$out/replay"; mkdir -p "$out/replay"
"$bin" bench replay --database-url "sqlite://$out/replay/inkwire.db" --topic replay --partitions 1 \
  --events "${REPLAY_EVENTS:-1000000}" --posts 1000 | tee -a "$out/results.jsonl"

echo "bench: machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)" >&2
