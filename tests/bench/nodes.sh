#!/bin/sh
# tests/bench/nodes.sh: the several-nodes run of `make bench` (called by
# tests/bench/run.sh; runs alone too, from any folder).
#
# The bench's order bot (tests/bench/order/, tests/bench/order.lua: distinct
# shoppers, each message sent after the answer to the one before) at
# BENCH_CONNECTIONS connections, one thread a node, in one run:
#   sqlite   one node on a fresh SQLite file (default --sync full), wrk
#            straight at it;
#   pg       one node on a fresh PostgreSQL database, wrk straight at it;
#   pg-lb1   the same behind HAProxy (round robin, every request balanced
#            on its own: no affinity), the baseline of the next two;
#   pg-lb2   two nodes on one database behind HAProxy;
#   pg-lb3   three nodes.
# The PostgreSQL server is a private one (tests/pg/cluster.sh: a Unix socket
# in a temporary folder, fsync off, so the rows measure parley and not this
# machine's disk), on the same two cores as everything else: the ratios
# between rows are what count, not the figures. Every node logs at its stop
# the round trips to the database it made and the messages it committed;
# their quotient is the row's "round trips per message".
#
# Settings: BENCH_THREADS (1), BENCH_CONNECTIONS (64), BENCH_NODES_DURATION
# (5s), BENCH_LOGS (build/bench). Outputs and logs go to $BENCH_LOGS/nodes/;
# lines for run.sh's final table to $BENCH_LOGS/nodes/summary.
# Needs: wrk, haproxy, PostgreSQL's server (Debian: postgresql); tools/deps.sh
# bench installs them.
set -eu
cd "$(dirname "$0")/../.."

THREADS=${BENCH_THREADS:-1}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
DURATION=${BENCH_NODES_DURATION:-5s}
BOT_DIR=tests/bench/order
SCRIPT=tests/bench/order.lua

out=${BENCH_LOGS:-build/bench}/nodes
rm -rf "$out"
mkdir -p "$out"
problems="$out/problems"
: >"$problems"
. tests/bench/lib.sh

for tool in wrk haproxy; do
  command -v "$tool" >/dev/null 2>&1 || { problem "nodes: '$tool' is missing (tools/deps.sh bench installs it)"; exit 1; }
done
[ -x ./parley ] || { echo "bench: ./parley is not built (run: make bench)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/parley-bench-nodes.XXXXXX")
# a folder of its own: the server's user (nobody, when run as root) must reach it
pg_dir=$(mktemp -d /tmp/parley-pg.XXXXXX)
trap 'lib_cleanup; tests/pg/cluster.sh stop "$pg_dir" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
info=$(tests/pg/cluster.sh start "$pg_dir") || { problem "nodes: no PostgreSQL server (tests/pg/cluster.sh)"; exit 1; }
psql=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)/psql

# database NAME: a fresh database; prints its URL.
database() {
  "$psql" "$info" -qc "CREATE DATABASE $1" >/dev/null
  echo "postgresql:///$1?host=$pg_dir&port=5432&user=parley"
}

# start_node NAME DB: a node of the order bot; its PID and port are added
# to node_pids and node_ports.
node_pids="" node_ports=""
start_node() {
  ./parley serve "$BOT_DIR" --listen 127.0.0.1:0 --db "$2" --no-watch --node "$1" --threads 1 >"$out/$1.log" 2>&1 &
  _pid=$!
  remember "$_pid"
  _port=$(wait_port "$_pid" "$out/$1.log")
  wait_health "$_port"
  node_pids="$node_pids $_pid"
  node_ports="$node_ports $_port"
}

# start_haproxy NAME: HAProxy on a free port in front of node_ports, round
# robin over every request; sets lb_pid and lb_port.
start_haproxy() {
  lb_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  {
    printf 'global\n  maxconn 4096\n'
    printf 'defaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n'
    printf '  http-reuse always\n'
    printf 'frontend parley\n  bind 127.0.0.1:%s\n  default_backend nodes\n' "$lb_port"
    printf 'backend nodes\n  balance roundrobin\n'
    _i=0
    for _p in $node_ports; do
      printf '  server n%s 127.0.0.1:%s\n' "$_i" "$_p"
      _i=$((_i + 1))
    done
  } >"$out/$1.cfg"
  haproxy -f "$out/$1.cfg" -db >"$out/$1.haproxy.log" 2>&1 &
  lb_pid=$!
  remember "$lb_pid"
  _tries=0
  until curl -fs -o /dev/null "http://127.0.0.1:$lb_port/v1/health"; do
    _tries=$((_tries + 1))
    [ "$_tries" -lt 100 ] || { problem "$1: HAProxy never answered (see $out/$1.haproxy.log)"; return 1; }
    sleep 0.05
  done
}

# stop_haproxy: SIGTERM, which HAProxy answers by exiting with 143.
stop_haproxy() {
  kill -TERM "$lb_pid" 2>/dev/null || true
  wait "$lb_pid" 2>/dev/null || true
  _rest=""
  for _p in $lib_pids; do [ "$_p" = "$lb_pid" ] || _rest="$_rest $_p"; done
  lib_pids=$_rest
  lb_pid=""
}

# stop_nodes NAME: stops every node (and HAProxy); sets trips (round trips
# per message committed, summed over the nodes) and per_tx.
stop_nodes() {
  [ -z "${lb_pid:-}" ] || stop_haproxy
  _i=0 _trips=0 _msgs=0 _tx=0
  for _pid in $node_pids; do
    stop_pid "$1 node $_i" "$_pid" "$out/$1-n$_i.log"
    _log="$out/$1-n$_i.log"
    _t=$(sed -n 's/.* \([0-9][0-9]*\) round trips to the database.*/\1/p' "$_log" | tail -n 1)
    _m=$(sed -n 's/.*committed \([0-9][0-9]*\) messages in \([0-9][0-9]*\) transactions.*/\1 \2/p' "$_log" | tail -n 1)
    _trips=$((_trips + ${_t:-0}))
    _msgs=$((_msgs + ${_m% *}))
    _tx=$((_tx + ${_m#* }))
    log_trouble "$1 node $_i" "$_log"
    _i=$((_i + 1))
  done
  trips=$(awk -v t="$_trips" -v m="$_msgs" 'BEGIN { if (m > 0 && t > 0) printf "%.2f", t / m; else print "-" }')
  per_tx=$(awk -v x="$_tx" -v m="$_msgs" 'BEGIN { if (x > 0) printf "%.1f", m / x; else print "-" }')
  node_pids="" node_ports=""
}

# value KEY FILE: a field of shoppers.lua's RESULT line.
value() { sed -n "s/^RESULT.* $1=\([^ ]*\).*/\1/p" "$2" | tail -n 1; }

rows="$out/rows"
: >"$rows"
# measure ID LABEL NODES DB PORT_VIA: wrk at the given port; one row.
measure() {
  _id=$1 _label=$2 _n=$3 _db=$4 _via=$5
  _i=0
  while [ "$_i" -lt "$_n" ]; do
    start_node "$_id-n$_i" "$_db"
    _i=$((_i + 1))
  done
  _port=${node_ports# }
  _port=${_port%% *}
  if [ "$_via" = haproxy ]; then
    start_haproxy "$_id"
    _port=$lb_port
  fi
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$SCRIPT" "http://127.0.0.1:$_port/v1/bots/order/messages" \
    -- "$_id" >"$out/$_id.wrk.txt" 2>&1 || true
  grep -q '^RESULT' "$out/$_id.wrk.txt" || problem "$_id: wrk gave no result (see $out/$_id.wrk.txt)"
  [ "$(value non200 "$out/$_id.wrk.txt")" = 0 ] || problem "$_id: $(value non200 "$out/$_id.wrk.txt") answers were not 200"
  [ "$(value unexpected "$out/$_id.wrk.txt")" = 0 ] ||
    problem "$_id: $(value unexpected "$out/$_id.wrk.txt") replies did not say what the conversation expects"
  stop_nodes "$_id"
  printf '%s|%s|%s|%s|%s|%s|%s\n' "$_id" "$_label" "$(value messages_per_s "$out/$_id.wrk.txt")" \
    "$(value p50_ms "$out/$_id.wrk.txt")" "$(value p99_ms "$out/$_id.wrk.txt")" "$trips" "$per_tx" >>"$rows"
  echo "  $_label: $(value messages_per_s "$out/$_id.wrk.txt") messages/s, p99 $(value p99_ms "$out/$_id.wrk.txt") ms, $trips round trips a message, $per_tx messages a transaction"
}

echo "  $(load_note)"
measure sqlite "1 node, SQLite" 1 "$tmp/nodes.db" direct
measure pg "1 node, PostgreSQL" 1 "$(database bench_pg)" direct
measure pg-lb1 "1 node, PostgreSQL, HAProxy" 1 "$(database bench_lb1)" haproxy
measure pg-lb2 "2 nodes, PostgreSQL, HAProxy" 2 "$(database bench_lb2)" haproxy
measure pg-lb3 "3 nodes, PostgreSQL, HAProxy" 3 "$(database bench_lb3)" haproxy

rate() { awk -F'|' -v id="$1" '$1 == id { print $3 }' "$rows"; }
ratio() { awk -v a="$(rate "$1")" -v b="$(rate "$2")" 'BEGIN { if (a != "" && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
{
  echo "nodes (order bot, c$CONNECTIONS, 1 thread a node; PostgreSQL on the same 2 cores, fsync off):"
  printf '  %-32s %10s %8s %8s %12s %10s\n' "" "msgs/s" "p50 ms" "p99 ms" "trips/msg" "msgs/tx"
  while IFS='|' read -r _ label r p50 p99 t x; do
    printf '  %-32s %10s %8s %8s %12s %10s\n' "$label" "$r" "$p50" "$p99" "$t" "$x"
  done <"$rows"
  echo "  PostgreSQL / SQLite, one node: $(ratio pg sqlite); behind HAProxy, 2 nodes / 1: $(ratio pg-lb2 pg-lb1), 3 nodes / 1: $(ratio pg-lb3 pg-lb1)"
} >"$out/summary"
cat "$out/summary"
[ ! -s "$problems" ]
