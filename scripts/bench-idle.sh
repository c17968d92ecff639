#!/usr/bin/env bash
# Idle CPU of `inkwire dev --demo`: starts it on a fresh data directory, lets it settle for 5 s,
# then reads its CPU time from /proc over SECONDS seconds of nothing and prints it as a share of
# one core (docs/benchmarks.md). Bounded: it stops the server itself.
#
#   scripts/bench-idle.sh [BIN] [SECONDS] [PORT]     (BIN: the release build by default)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/inkwire-target}
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --locked --release -p inkwire
  bin="$CARGO_TARGET_DIR/release/inkwire"
fi
secs=${2:-60}
port=${3:-18395}
dir=$(mktemp -d)
RUST_LOG=warn "$bin" dev --demo --listen "127.0.0.1:$port" --data-dir "$dir" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
sleep 5
tick=$(getconf CLK_TCK)
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
sleep "$secs"
read -r u2 s2 < <(awk '{print $14, $15}' "/proc/$pid/stat")
python3 -c "t=($u2+$s2)-($u1+$s1); print(f'idle inkwire dev: {t/$tick/$secs*100:.3f} % of a core over $secs s ({t} ticks of 1/$tick s)')"
