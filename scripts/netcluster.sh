#!/usr/bin/env bash
# Inkwire across hosts on one machine: every service in its own network namespace with its own
# address on a bridge, so the traffic between them crosses a (virtual) network that can be cut,
# slowed or made to lose packets, and every process can be paused, killed and started again.
# The fault campaign (cli/tests/fault_campaign.rs, scripts/campaign.sh) drives it; by hand:
#
#   eval "$(scripts/test-deps.sh start)"      # binaries: PostgreSQL, tansu, nginx
#   scripts/netcluster.sh up                  # prints the nginx URL
#   scripts/netcluster.sh partition gw1 kafka1 kafka2   # gw1 cut off from both brokers
#   scripts/netcluster.sh partition cmd1 pg oneway      # cmd1 -> pg dropped, pg -> cmd1 not
#   scripts/netcluster.sh loss proj1 30       # 30% of what reaches proj1 is dropped
#   scripts/netcluster.sh slow cmd2 64        # cmd2's link at 64 kbit/s
#   scripts/netcluster.sh heal                # every network fault removed
#   scripts/netcluster.sh pause proj2 | resume proj2 | kill gw1 | start gw1
#   scripts/netcluster.sh status
#   scripts/netcluster.sh down
#
# Needs root and `ip`, `nft`, `tc` (iproute2, nftables). Latency from `tc netem` is used when
# the kernel has it; where it has not (this project's VMs), `slow` throttles the link instead.
# Nothing leaves the machine: the namespaces reach only each other (10.88.0.0/24 on bridge
# inkw-br0, no route out).
set -euo pipefail
cd "$(dirname "$0")/.."
NC_DIR=${NC_DIR:-${TMPDIR:-/tmp}/inkwire-netcluster}
NET=10.88.0
BRIDGE=inkw-br0
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/inkwire-target}
BIN=${INKWIRE_BIN:-$CARGO_TARGET_DIR/debug/inkwire}
log() { echo "netcluster: $*" >&2; }

# node -> address. Services are named after their node.
declare -A ADDR=(
  [pg]=$NET.10 [kafka1]=$NET.11 [kafka2]=$NET.12
  [cmd1]=$NET.21 [cmd2]=$NET.22 [proj1]=$NET.31 [proj2]=$NET.32
  [gw1]=$NET.41 [gw2]=$NET.42 [nginx]=$NET.50 [client]=$NET.60
)
NODES="pg kafka1 kafka2 cmd1 cmd2 proj1 proj2 gw1 gw2 nginx client"
ns() { echo "inkw-$1"; }
in_ns() { local node=$1; shift; ip netns exec "$(ns "$node")" "$@"; }

need() {
  [ "$(id -u)" = 0 ] || { log "needs root (network namespaces)"; exit 3; }
  for tool in ip nft tc; do
    command -v "$tool" >/dev/null || { log "needs $tool (apt-get install iproute2 nftables)"; exit 3; }
  done
}

network_up() {
  ip link add "$BRIDGE" type bridge
  ip link set "$BRIDGE" up
  local i=0
  for node in $NODES; do
    i=$((i + 1))
    ip netns add "$(ns "$node")"
    ip link add "inkw-v$i" type veth peer name eth0 netns "$(ns "$node")"
    ip link set "inkw-v$i" master "$BRIDGE" up
    in_ns "$node" ip link set lo up
    in_ns "$node" ip addr add "${ADDR[$node]}/24" dev eth0
    in_ns "$node" ip link set eth0 up
    # One table per node for the faults: partitions and loss are rules here, removed by heal.
    in_ns "$node" nft add table inet fault
    in_ns "$node" nft add chain inet fault input '{ type filter hook input priority 0; policy accept; }'
    in_ns "$node" nft add chain inet fault output '{ type filter hook output priority 0; policy accept; }'
  done
}

network_down() {
  for node in $NODES; do ip netns del "$(ns "$node")" 2>/dev/null || true; done
  ip link del "$BRIDGE" 2>/dev/null || true
}

# A service: its command line kept in $NC_DIR/svc/NAME so `start` brings it back as it was. The
# script restarts the service after a crash (SIGSEGV, SIGABRT, SIGBUS), as the production compose
# file's `restart: unless-stopped` does, and says so in the service's log ("netcluster: NAME
# crashed"), which the campaign counts; a kill -9 or stop of the campaign's is not restarted. It
# writes the service's own pid (not its own) to $NC_DIR/pid/NAME, for pause, resume and kill.
define() { # name node command…
  local name=$1 node=$2
  shift 2
  mkdir -p "$NC_DIR/svc"
  {
    echo "#!/usr/bin/env bash"
    echo "while :; do"
    printf '  ip netns exec %q' "$(ns "$node")"
    printf ' %q' "$@"
    echo " &"
    printf '  echo "$!" > %q\n' "$NC_DIR/pid/$name"
    echo '  wait "$!"; code=$?'
    echo '  case $code in'
    printf '    134|135|139) echo "netcluster: %s crashed (exit $code) at $(date -u +%%FT%%T.%%3NZ); restarting it" >&2; sleep 1 ;;\n' "$name"
    echo '    *) exit "$code" ;;'
    echo '  esac'
    echo "done"
  } > "$NC_DIR/svc/$name"
  chmod +x "$NC_DIR/svc/$name"
}

start_svc() { # name
  local name=$1
  [ -x "$NC_DIR/svc/$name" ] || { log "no service $name"; exit 2; }
  if [ -f "$NC_DIR/pid/$name" ] && kill -0 "$(cat "$NC_DIR/pid/$name")" 2>/dev/null; then return; fi
  mkdir -p "$NC_DIR/pid" "$NC_DIR/log"
  rm -f "$NC_DIR/pid/$name"
  setsid "$NC_DIR/svc/$name" >> "$NC_DIR/log/$name.log" 2>&1 < /dev/null &
  # The script writes the service's pid once it started it.
  for _ in $(seq 1 50); do [ -s "$NC_DIR/pid/$name" ] && return; sleep 0.05; done
  log "$name did not start; see $NC_DIR/log/$name.log"
  return 1
}

signal_svc() { # name signal
  local pid
  pid=$(cat "$NC_DIR/pid/$1" 2>/dev/null) || { log "$1 is not running"; return 0; }
  kill "-$2" "$pid" 2>/dev/null || true
  # `ip netns exec` execs: the pid is the service itself (its script waits for it, and
  # ends with it unless it crashed).
  if [ "$2" = KILL ]; then rm -f "$NC_DIR/pid/$1"; fi
}

wait_tcp() { # node host port seconds
  for _ in $(seq 1 $(($4 * 10))); do
    in_ns "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
    sleep 0.1
  done
  log "$2:$3 not reachable from $1 in $4 s; see $NC_DIR/log/"
  return 1
}

wait_ready() { # node port
  for _ in $(seq 1 300); do
    in_ns "$1" curl -fsS "http://${ADDR[$1]}:$2/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "$1 not ready; see $NC_DIR/log/$1.log"
  return 1
}

up() {
  need
  : "${INKWIRE_PG_BIN:?run under scripts/test-deps.sh start (INKWIRE_PG_BIN)}"
  : "${TANSU_BIN:?run under scripts/test-deps.sh start (TANSU_BIN)}"
  : "${NGINX_BIN:?run under scripts/test-deps.sh start (NGINX_BIN)}"
  [ -x "$BIN" ] || { log "no inkwire binary at $BIN (cargo build -p inkwire, or INKWIRE_BIN)"; exit 2; }
  down_quiet
  rm -rf "$NC_DIR" && mkdir -p "$NC_DIR/log" "$NC_DIR/pid"
  chmod 755 "$NC_DIR"
  network_up

  # PostgreSQL (CockroachDB's stand-in); Inkwire's database at SERIALIZABLE, as the tests run it
  # (tansu's own tables at the default: it does not retry 40001).
  mkdir -p "$NC_DIR/pg" && chown postgres: "$NC_DIR/pg"
  runuser -u postgres -- "$INKWIRE_PG_BIN/initdb" -D "$NC_DIR/pg/data" -U postgres --auth=trust -E UTF8 >/dev/null
  echo "host all all $NET.0/24 trust" >> "$NC_DIR/pg/data/pg_hba.conf"
  # setpriv execs (runuser would stay as a parent), so the pid paused or killed is postgres.
  define pg pg setpriv --reuid=postgres --regid=postgres --init-groups "$INKWIRE_PG_BIN/postgres" -D "$NC_DIR/pg/data" -p 5432 \
    -k "$NC_DIR/pg" -c "listen_addresses=${ADDR[pg]}" -c fsync=off -c max_connections=300 \
    -c default_transaction_isolation=serializable
  start_svc pg
  wait_tcp client "${ADDR[pg]}" 5432 30
  local psql=("$INKWIRE_PG_BIN/psql" -h "${ADDR[pg]}" -p 5432 -U postgres -v ON_ERROR_STOP=1 -q)
  in_ns client "${psql[@]}" -c 'CREATE DATABASE inkwire' -c 'CREATE DATABASE tansu' \
    -c 'ALTER DATABASE inkwire SET default_transaction_isolation = serializable'
  in_ns client "${psql[@]}" -d tansu -f "${TANSU_PG_SCHEMA:-scripts/tansu/postgres-schema-v0.6.0.sql}" >/dev/null

  # Two brokers on one storage: the clients get both in their bootstrap list.
  for b in kafka1 kafka2; do
    define "$b" "$b" "$TANSU_BIN" broker --listener-url "tcp://${ADDR[$b]}:9092" \
      --advertised-listener-url "tcp://${ADDR[$b]}:9092" \
      --storage-engine "postgres://postgres:postgres@${ADDR[pg]}:5432/tansu"
    start_svc "$b"
    wait_tcp client "${ADDR[$b]}" 9092 30
  done

  local db="postgres://postgres@${ADDR[pg]}:5432/inkwire"
  local brokers="${ADDR[kafka1]}:9092,${ADDR[kafka2]}:9092"
  local secret=${INKWIRE_JWT_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
  in_ns client env INKWIRE_DATABASE_URL="$db" "$BIN" migrate
  local common=(env RUST_LOG="${RUST_LOG:-warn,command_service::relay=debug,infra::log=info,projection_service=debug}" INKWIRE_LOG_FORMAT=json
    INKWIRE_DATABASE_URL="$db" INKWIRE_KAFKA_BROKERS="$brokers" INKWIRE_TOPIC=inkwire.posts
    INKWIRE_TOPIC_PARTITIONS=6 INKWIRE_JWT_SECRET="$secret" INKWIRE_DATABASE_POOL=8)
  for n in 1 2; do
    define "cmd$n" "cmd$n" "${common[@]}" INKWIRE_LISTEN="${ADDR[cmd$n]}:8081" "$BIN" command-service
    define "proj$n" "proj$n" "${common[@]}" INKWIRE_LISTEN="${ADDR[proj$n]}:8082" INKWIRE_GROUP=inkwire-projection "$BIN" projection-service
    define "gw$n" "gw$n" "${common[@]}" INKWIRE_LISTEN="${ADDR[gw$n]}:8083" \
      INKWIRE_COMMAND_URL="http://${ADDR[cmd$n]}:8081" INKWIRE_MUTATIONS_PER_MINUTE=100000 \
      INKWIRE_ANONYMOUS_MUTATIONS_PER_MINUTE=100000 "$BIN" query-gateway
  done
  for s in cmd1 cmd2 proj1 proj2; do start_svc "$s"; done
  wait_ready cmd1 8081 && wait_ready cmd2 8081 && wait_ready proj1 8082 && wait_ready proj2 8082
  for s in gw1 gw2; do start_svc "$s"; done
  wait_ready gw1 8083 && wait_ready gw2 8083

  # nginx from the production template, in front of both gateways.
  mkdir -p "$NC_DIR/nginx/web" && echo '<!doctype html><title>Inkwire</title>' > "$NC_DIR/nginx/web/index.html"
  : > "$NC_DIR/nginx/web/csp.nginx.conf"
  chmod -R o+rX "$NC_DIR/nginx"
  sed -e "s|__LISTEN__|${ADDR[nginx]}:8080|" \
    -e "s|__UPSTREAMS__|server ${ADDR[gw1]}:8083 max_fails=1 fail_timeout=2s; server ${ADDR[gw2]}:8083 max_fails=1 fail_timeout=2s;|" \
    -e "s|__PREFIX__|$NC_DIR/nginx|" -e "s|__WEB_ROOT__|$NC_DIR/nginx/web|" \
    nginx/inkwire.conf.template > "$NC_DIR/nginx/nginx.conf"
  define nginx nginx "$NGINX_BIN" -p "$NC_DIR/nginx" -c "$NC_DIR/nginx/nginx.conf" -g 'daemon off;'
  start_svc nginx
  wait_tcp client "${ADDR[nginx]}" 8080 10

  local password
  password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$password" | in_ns client env INKWIRE_DATABASE_URL="$db" INKWIRE_KAFKA_BROKERS="$brokers" \
    "$BIN" user add --username ada --role author --display-name "Ada Lovelace" >/dev/null
  cat > "$NC_DIR/env" <<EOF
export NC_URL=http://${ADDR[nginx]}:8080/graphql
export NC_GATEWAYS="http://${ADDR[gw1]}:8083/graphql http://${ADDR[gw2]}:8083/graphql"
export NC_DATABASE_URL=$db
export NC_BROKERS=$brokers
export NC_USERNAME=ada
export NC_PASSWORD=$password
export NC_JWT_SECRET=$secret
EOF
  log "up: nginx at http://${ADDR[nginx]}:8080 (reach it with: ip netns exec $(ns client) …); $NC_DIR/env"
  cat "$NC_DIR/env"
}

down_quiet() {
  if [ -d "$NC_DIR/pid" ]; then
    for f in "$NC_DIR"/pid/*; do
      [ -f "$f" ] || continue
      kill -CONT "$(cat "$f")" 2>/dev/null || true
      kill -KILL "$(cat "$f")" 2>/dev/null || true
    done
  fi
  # Anything still running inside the namespaces.
  for node in $NODES; do
    ip netns pids "$(ns "$node")" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  done
  network_down
}

heal() {
  for node in $NODES; do
    in_ns "$node" nft flush chain inet fault input 2>/dev/null || true
    in_ns "$node" nft flush chain inet fault output 2>/dev/null || true
    in_ns "$node" tc qdisc del dev eth0 root 2>/dev/null || true
  done
}

partition() { # a b… [oneway]: traffic from a to each b dropped (and back, unless oneway)
  local a=$1
  shift
  local oneway=false targets=()
  for arg in "$@"; do
    if [ "$arg" = oneway ]; then oneway=true; else targets+=("$arg"); fi
  done
  for b in "${targets[@]}"; do
    in_ns "$a" nft add rule inet fault output ip daddr "${ADDR[$b]}" drop
    if [ "$oneway" = false ]; then in_ns "$b" nft add rule inet fault output ip daddr "${ADDR[$a]}" drop; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down_quiet; log "down" ;;
  heal) heal ;;
  partition) shift; partition "$@" ;;
  loss) in_ns "$2" nft add rule inet fault input numgen random mod 100 lt "$3" drop ;;
  slow)
    if ! in_ns "$2" tc qdisc replace dev eth0 root netem delay "${4:-200}ms" 2>/dev/null; then
      in_ns "$2" tc qdisc replace dev eth0 root tbf rate "${3}kbit" burst 4kbit latency 2s
    fi
    ;;
  pause) signal_svc "$2" STOP ;;
  resume) signal_svc "$2" CONT ;;
  kill) signal_svc "$2" KILL ;;
  stop) signal_svc "$2" TERM ;;
  start) start_svc "$2" ;;
  exec) node=$2; shift 2; in_ns "$node" "$@" ;;
  status)
    for f in "$NC_DIR"/svc/*; do
      name=$(basename "$f")
      if [ -f "$NC_DIR/pid/$name" ] && kill -0 "$(cat "$NC_DIR/pid/$name")" 2>/dev/null; then
        echo "$name up $(cat "$NC_DIR/pid/$name")"
      else
        echo "$name down"
      fi
    done
    ;;
  *) sed -n '2,24p' "$0" >&2; exit 2 ;;
esac
