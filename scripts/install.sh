#!/usr/bin/env bash
# Puts the `inkwire` command on PATH, so the README's bare `inkwire ...` commands work:
#   scripts/install.sh            the debug build the tests and scripts/dev.sh already made
#                                 (seconds when they ran first), copied to ~/.cargo/bin
#   scripts/install.sh --release  an optimised build (about 16 minutes on 2 cores the first time)
# INKWIRE_BIN_DIR picks another directory. `cargo install --path cli --locked` works too (a
# release build of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/inkwire-target}
profile=debug
if [ "${1:-}" = --release ]; then profile=release; fi
if [ "$profile" = release ]; then cargo build --locked --release -p inkwire; else cargo build --locked -p inkwire; fi
dest=${INKWIRE_BIN_DIR:-$HOME/.cargo/bin}
mkdir -p "$dest"
install -m 0755 "$CARGO_TARGET_DIR/$profile/inkwire" "$dest/inkwire"
echo "install.sh: $dest/inkwire ($profile build)"
case ":$PATH:" in
  *":$dest:"*) ;;
  *) echo "install.sh: $dest is not on PATH; add it: export PATH=\"$dest:\$PATH\"" >&2 ;;
esac
