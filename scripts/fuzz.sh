#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (FUZZ_SECONDS, default 30) with cargo-fuzz/libFuzzer:
#   markdown      any text through the renderer: no panic, no executable element out
#   event_decode  any bytes as a log record: no panic, decode(encode(e)) == e
# The event fixtures seed the decoder's corpus. cargo-fuzz is installed into the deps cache when
# missing; the stable toolchain runs it with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags).
set -euo pipefail
cd "$(dirname "$0")/.."
DEPS=${INKWIRE_DEPS_DIR:-$HOME/.cache/inkwire-deps}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-30}
export PATH="$DEPS/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --root "$DEPS" >&2
fi
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$HOME/.cache/inkwire-fuzz-target}
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
mkdir -p "$corpus/event_decode" "$corpus/markdown"
cp events/tests/fixtures/*.json "$corpus/event_decode/"
printf '# Title\n\n<script>x</script> [a](javascript:b) <img src=x onerror=y> **b**\n' > "$corpus/markdown/seed.md"
for target in markdown event_decode; do
  echo "fuzz: $target for ${SECONDS_PER_TARGET}s" >&2
  log=$(mktemp)
  if ! cargo fuzz run --fuzz-dir fuzz "$target" "$corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
    grep -v -E '^#[0-9]+' "$log" | tail -n 60 >&2
    echo "fuzz: $target failed (input kept under fuzz/artifacts/$target)" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" >&2 || true
  rm -f "$log"
done
echo "fuzz: no crash" >&2
