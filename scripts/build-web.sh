#!/usr/bin/env bash
# Builds the web UI (web/: SvelteKit, static files in web/build) when it is missing or older than
# its sources: `npm ci` when the packages are missing or the lockfile changed, then a type check
# and the build. Needs only Node 20 and the npm registry. Used by scripts/dev.sh and by
# scripts/test-deps.sh.
set -euo pipefail
web="$(cd "$(dirname "$0")/../web" && pwd)"
log() { echo "build-web: $*" >&2; }
if [ ! -d "$web/node_modules/@sveltejs/kit" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  log "installing the web UI's npm packages"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
if [ ! -f "$web/build/index.html" ] || [ -n "$(find "$web/src" "$web/static" "$web/graphiql" "$web/scripts" "$web/package-lock.json" "$web/svelte.config.js" "$web/vite.config.ts" -newer "$web/build/index.html" -print -quit)" ]; then
  log "building the web UI"
  (cd "$web" && npm run --silent check >&2 && npm run --silent build >&2)
fi
