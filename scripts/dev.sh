#!/usr/bin/env bash
# The README's run command: the whole of Inkwire in one process (`inkwire dev`) with its web UI
# at http://127.0.0.1:8080. Builds the UI first when needed, then passes every argument on
# (e.g. `scripts/dev.sh --demo`). It builds into the same target directory as the tests
# (scripts/test.sh) and the cluster script, so whichever ran first leaves the others nothing to
# compile.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/inkwire-target}
scripts/build-web.sh
if [ ! -x "$CARGO_TARGET_DIR/debug/inkwire" ]; then
  echo "dev.sh: building inkwire into $CARGO_TARGET_DIR (the first build takes about 10-12 minutes on 2 cores; later ones seconds)" >&2
fi
# Cargo's own progress shows while it compiles; once built, it starts in well under a second.
exec cargo run --locked -p inkwire -- dev "$@"
