#!/usr/bin/env bash
# Runs every Inkwire test: starts (installing when missing) PostgreSQL and the Kafka-protocol
# broker, runs the whole suite against them and the embedded backend, then stops them.
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/inkwire-target}
trap 'scripts/test-deps.sh stop' EXIT
eval "$(scripts/test-deps.sh start)"
echo "test.sh: PostgreSQL at $DATABASE_URL, broker at $KAFKA_BROKERS" >&2
cargo build --workspace --all-targets --locked
if cargo nextest --version >/dev/null 2>&1; then
  # One process per test, one summary line at the end.
  cargo nextest run --workspace --locked --no-fail-fast --test-threads "${INKWIRE_TEST_THREADS:-4}" "$@"
else
  cargo test --workspace --all-targets --locked --no-fail-fast -- --test-threads="${INKWIRE_TEST_THREADS:-4}" "$@"
fi
# The fuzz targets (markdown renderer, event decoding), bounded: FUZZ_SECONDS each (0 skips).
if [ "${FUZZ_SECONDS:-30}" != 0 ]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-30} scripts/fuzz.sh
fi
