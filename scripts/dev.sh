#!/usr/bin/env bash
# The README's run command: the whole of Inkwire in one process (`inkwire dev`) with its web UI
# at http://127.0.0.1:8080. Builds the UI first when needed, then passes every argument on
# (e.g. `scripts/dev.sh --demo`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-web.sh
exec cargo run -q -p inkwire -- dev "$@"
