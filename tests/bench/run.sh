#!/bin/sh
# tests/bench/run.sh: `make bench`. Measures parley on loopback with wrk and
# prints a table; speed is measured here, never asserted (DESIGN.md §9).
#
#  1. parley serve (default bot, fresh SQLite file, default --sync full) under
#     tests/bench/conversation.lua: 64 connections of distinct shoppers, each
#     having the whole barista conversation (hi, latte, large, croissant,
#     done); messages/s, p50/p99/max latency, peak RSS (VmHWM).
#  2. build/bare_evhttp (one evhttp loop, fixed JSON body) with the same wrk
#     settings, so the ratio parley / bare evhttp is visible.
#  3. 100,000 sessions: the database of step 1 is topped up to 100,000
#     sessions with first messages ({"user": <new>, "text": "hi"}, the seed
#     mode of conversation.lua), the server is restarted on it, the
#     conversation load runs again and its peak RSS is reported.
#  5. tests/bench/webhooks.sh: WhatsApp Cloud API deliveries (signed) at a
#     steady rate to parley, which answers through a fake Graph API
#     (tests/bench/fake_graph.c); acknowledged webhooks/s, delay from
#     delivery to parley's outgoing send p50/p99, and checks that nothing was
#     lost, duplicated or sent twice for a replayed delivery.
#  6. tests/bench/checkout.sh: 64 shoppers at a time each ordering and paying
#     through the test provider (tests/bench/checkout.lua); orders paid/s,
#     messages/s, and "every order paid exactly once" from the database.
#  7. tests/bench/sse.sh: idle web chat streams while messages flow.
#  8. tests/bench/attack.sh: the default bot measured with and without a
#     hostile bot of the same server attacking from inside at a steady rate.
#  Steps 5 and 6 print their own tables, keep their outputs in build/bench/
#  webhooks/ and build/bench/checkout/, and give the final table their lines.
#
# wrk threads: 1 by default. The machine has 2 cores and parley answers on
# one event-loop thread: one wrk thread leaves the other core to the server
# (and the kernel's loopback work) instead of competing with it; at 64
# connections one LuaJIT wrk thread is far from saturated (measured: -t2
# gives the same parley figures within the run-to-run noise, about ±15%
# here). The bare evhttp baseline gets exactly the same client. Latency is
# timed by conversation.lua itself. The server's CPU time per message is
# printed too: on a shared machine it varies less than messages/s.
#
# Needs: wrk, curl (health checks), sqlite3 (counting stored sessions and
# transcript lines), python3 (step 5's report), cc and pkg-config with the
# build's libevent, jansson and libcrypto (step 5's fake Graph API and load
# generator are built into build/ by webhooks.sh). Settings: BENCH_THREADS,
# BENCH_CONNECTIONS, BENCH_DURATION (wrk syntax, e.g. 10s), BENCH_SESSIONS;
# those of webhooks.sh and checkout.sh (BENCH_WEBHOOK_*, BENCH_CHECKOUT_*).
# wrk outputs and server logs are kept in build/bench/; the databases live
# in a temporary folder that is removed at the end.
set -eu
cd "$(dirname "$0")/../.."

THREADS=${BENCH_THREADS:-1}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
DURATION=${BENCH_DURATION:-10s}
SESSIONS=${BENCH_SESSIONS:-100000}
SEED_LIMIT=100s # wrk's cap on the seeding run; it is normally stopped earlier
SCRIPT=tests/bench/conversation.lua
MESSAGES_PATH=/v1/bots/barista/messages

for tool in wrk curl sqlite3 python3 pkg-config; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bench: '$tool' is missing (apt-get install $tool)" >&2
    exit 1
  fi
done
for bin in ./parley build/bare_evhttp; do
  [ -x "$bin" ] || { echo "bench: $bin is not built (run: make bench)" >&2; exit 1; }
done

logs=build/bench
rm -rf "$logs"
mkdir -p "$logs"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/parley-bench.XXXXXX")
db="$tmp/bench.db"
problems="$tmp/problems"
: >"$problems"
server_pid=""
wrk_pid=""

cleanup() {
  for pid in $wrk_pid $server_pid; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $wrk_pid $server_pid; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# problem, wait_port, wait_health, cpu_ticks, cpu_per, cpu_share,
# peak_rss_mb, stop_pid: shared with webhooks.sh and checkout.sh
. tests/bench/lib.sh

# value KEY FILE: a field of conversation.lua's RESULT line.
value() {
  sed -n "s/^RESULT\(.*\) $1=\([^ ]*\).*/\2/p" "$2" | tail -n 1
}

# start_parley NAME: serves the default bot on a free loopback port with $db;
# sets server_pid and port. --no-watch: a file saved in the bot folder while
# the bench runs must not reload the bot in the middle of a measurement.
start_parley() {
  ./parley serve --listen 127.0.0.1:0 --db "$db" --no-watch >"$logs/$1.log" 2>&1 &
  server_pid=$!
  port=$(wait_port "$server_pid" "$logs/$1.log")
  wait_health "$port"
}

# cpu_report TICKS0 TICKS1 COUNT SECONDS: "<CPU µs per item> <% of one core>".
cpu_report() { echo "$(cpu_per "$1" "$2" "$3") $(cpu_share "$1" "$2" "$4")"; }

# stop_server NAME: SIGTERM (parley finishes the messages in flight), then
# waits; a server that died during the run or does not stop is a problem.
stop_server() {
  stop_pid "$1" "$server_pid" "$logs/$1.log"
  server_pid=""
}

sql() { sqlite3 "$db" "$1"; }

# conversation_run NAME PREFIX: the conversation load against the running
# server; checks its answers and that every answered message is stored.
conversation_run() {
  out="$logs/$1.wrk.txt"
  before=$(sql "select count(*) from transcript where direction = 'in'")
  t0=$(cpu_ticks "$server_pid")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$SCRIPT" \
    "http://127.0.0.1:$port$MESSAGES_PATH" -- "$2" >"$out" 2>&1 || true
  t1=$(cpu_ticks "$server_pid")
  sed -n '/^-- timed by/,/^RESULT/p' "$out" | grep -v '^RESULT' | sed 's/^/  /'
  if ! grep -q '^RESULT' "$out"; then
    problem "$1: wrk gave no result (see $out)"
    return
  fi
  [ "$(value non200 "$out")" = 0 ] || problem "$1: $(value non200 "$out") answers were not 200"
  [ "$(value unexpected "$out")" = 0 ] || problem "$1: $(value unexpected "$out") replies did not say what the conversation expects"
  [ "$(value socket_errors "$out")" = 0 ] || problem "$1: $(value socket_errors "$out") socket errors (connections dropped?)"
  [ "$(value timeouts "$out")" = 0 ] || problem "$1: $(value timeouts "$out") requests took longer than wrk's 2 s timeout"
  rss=$(peak_rss_mb "$server_pid")
  stop_server "$1"
  after=$(sql "select count(*) from transcript where direction = 'in'")
  answered=$(sed -n 's/^ *\([0-9][0-9]*\) messages answered 200 in \([0-9.]*\) s.*/\1/p' "$out")
  seconds=$(sed -n 's/^ *\([0-9][0-9]*\) messages answered 200 in \([0-9.]*\) s.*/\2/p' "$out")
  cpu=$(cpu_report "$t0" "$t1" "$answered" "$seconds")
  echo "  server CPU: ${cpu% *} µs per message; ${cpu#* } of one core"
  lines=$((after - before))
  echo "  stored: $lines inbound transcript lines for $answered messages answered 200 (the rest were in flight when wrk stopped)"
  [ "$lines" -ge "$answered" ] || problem "$1: $answered messages were answered 200 but only $lines are in the transcript"
}

cpus=$(nproc)
fs=$(df -T "$tmp" | awk 'NR == 2 { print $2 }')
echo "parley bench: wrk -t$THREADS -c$CONNECTIONS -d$DURATION on 127.0.0.1; $cpus CPUs; SQLite (WAL, synchronous=FULL, the default) on $fs in $tmp"

# --- 1. parley, the whole conversation ----------------------------------------
echo
echo "1. parley: distinct shoppers, whole barista conversations (fresh database)"
start_parley parley
conversation_run parley run1
p_rate=$(value messages_per_s "$logs/parley.wrk.txt")
p_p50=$(value p50_ms "$logs/parley.wrk.txt")
p_p99=$(value p99_ms "$logs/parley.wrk.txt")
p_max=$(value max_ms "$logs/parley.wrk.txt")
p_non200=$(value non200 "$logs/parley.wrk.txt")
p_done=$(value completed "$logs/parley.wrk.txt")
p_rss=$rss
p_cpu=$cpu

# --- 2. bare evhttp, same client -----------------------------------------------
echo
echo "2. bare evhttp: one loop, a fixed JSON body (same wrk settings, a plain POST)"
cat >"$tmp/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"user":"bench-0","text":"hi"}'
EOF
build/bare_evhttp 0 >"$logs/bare.log" 2>&1 &
server_pid=$!
port=$(wait_port "$server_pid" "$logs/bare.log")
t0=$(cpu_ticks "$server_pid")
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$tmp/post.lua" "http://127.0.0.1:$port/" \
  >"$logs/bare.wrk.txt" 2>&1 || true
t1=$(cpu_ticks "$server_pid")
b_rate=$(sed -n 's/^Requests\/sec: *\([0-9]*\).*/\1/p' "$logs/bare.wrk.txt")
b_rate=${b_rate:-0}
b_count=$(sed -n 's/^ *\([0-9]*\) requests in \([0-9.]*\)s.*/\1/p' "$logs/bare.wrk.txt")
b_seconds=$(sed -n 's/^ *\([0-9]*\) requests in \([0-9.]*\)s.*/\2/p' "$logs/bare.wrk.txt")
b_cpu=$(cpu_report "$t0" "$t1" "${b_count:-0}" "${b_seconds:-0}")
b_rss=$(peak_rss_mb "$server_pid")
grep -E 'requests in|Requests/sec|Non-2xx|Socket errors' "$logs/bare.wrk.txt" | sed 's/^ */  /'
echo "  server CPU: ${b_cpu% *} µs per request; ${b_cpu#* } of one core"
grep -qE 'Non-2xx|Socket errors' "$logs/bare.wrk.txt" && problem "bare: wrk saw errors (see $logs/bare.wrk.txt)"
stop_server bare

# --- 3. 100,000 sessions stored -------------------------------------------------
echo
have=$(sql "select count(*) from sessions")
need=$((SESSIONS - have))
echo "3. $SESSIONS sessions stored: the database has $have; seeding $need more with first messages"
start_parley seed
if [ "$need" -gt 0 ]; then
  out="$logs/seed.wrk.txt"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$SEED_LIMIT" -s "$SCRIPT" \
    "http://127.0.0.1:$port$MESSAGES_PATH" -- seed seed "$need" "$THREADS" >"$out" 2>&1 &
  wrk_pid=$!
  # Each wrk thread prints "seeded N" once its share is answered; wrk
  # itself only stops at -d or on SIGINT.
  while kill -0 "$wrk_pid" 2>/dev/null; do
    if [ "$(grep -c '^seeded ' "$out" || true)" -ge "$THREADS" ]; then
      kill -INT "$wrk_pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  wait "$wrk_pid" || true
  wrk_pid=""
  sed -n '/^-- timed by/,/^RESULT/p' "$out" | grep -v '^RESULT' | sed 's/^/  /'
  [ "$(value non200 "$out")" = 0 ] || problem "seed: $(value non200 "$out") answers were not 200"
fi
s_rss=$(peak_rss_mb "$server_pid")
stop_server seed
stored=$(sql "select count(*) from sessions")
db_mb=$(du -m "$db" | cut -f1)
echo "  sqlite3: $stored sessions stored; database file $db_mb MB"
[ "$stored" -ge "$SESSIONS" ] || problem "seed: only $stored sessions are stored, $SESSIONS were wanted"

echo
echo "4. parley restarted on the database with $stored sessions: the conversation load again"
start_parley parley-100k
conversation_run parley-100k run2
k_rate=$(value messages_per_s "$logs/parley-100k.wrk.txt")
k_p50=$(value p50_ms "$logs/parley-100k.wrk.txt")
k_p99=$(value p99_ms "$logs/parley-100k.wrk.txt")
k_max=$(value max_ms "$logs/parley-100k.wrk.txt")
k_rss=$rss
k_cpu=$cpu
k_after=$(sql "select count(*) from sessions")

# --- 5. webhooks, 6. checkout: scripts of their own ----------------------------
# Each writes its problems and its lines for the table into its folder.
other_run() {
  status=0
  BENCH_LOGS="$logs" BENCH_THREADS="$THREADS" BENCH_CONNECTIONS="$CONNECTIONS" "tests/bench/$1.sh" || status=$?
  if [ -s "$logs/$1/problems" ]; then
    cat "$logs/$1/problems" >>"$problems"
  elif [ "$status" -ne 0 ]; then
    problem "$1: tests/bench/$1.sh failed (status $status)"
  fi
  [ -s "$logs/$1/summary" ] || echo "$1: no result (see the output above)" >"$logs/$1/summary"
}
echo
echo "5. WhatsApp webhooks at a steady rate, answered through a fake Graph API"
other_run webhooks
echo
echo "6. checkout: shoppers ordering and paying through the test provider"
other_run checkout
echo
echo "7. 5,000 idle web chat streams held open while messages flow"
sse_status=0
sh tests/bench/sse.sh | tee "$logs/sse.txt" || sse_status=$?
[ "$sse_status" -eq 0 ] || problem "sse: tests/bench/sse.sh failed (status $sse_status)"
echo
echo "8. a hostile bot attacking from inside while the default bot is measured"
other_run attack

# --- the table ------------------------------------------------------------------
ratio=$(awk -v p="$p_rate" -v b="$b_rate" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * p / b; else print "n/a" }')
echo
echo "=== parley bench: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, loopback, $cpus CPUs ==="
row() { printf '%-36s %10s %8s %8s %8s %8s %6s %9s\n' "$@"; }
row "" "per second" "p50 ms" "p99 ms" "max ms" "CPU us" "CPU" "RSS MB"
row "parley, messages" "$p_rate" "$p_p50" "$p_p99" "$p_max" "${p_cpu% *}" "${p_cpu#* }" "$p_rss"
row "bare evhttp, requests" "$b_rate" "" "" "" "${b_cpu% *}" "${b_cpu#* }" "$b_rss"
printf '%-36s %10s\n' "ratio parley / bare evhttp" "$ratio"
row "parley, $stored sessions stored" "$k_rate" "$k_p50" "$k_p99" "$k_max" "${k_cpu% *}" "${k_cpu#* }" "$k_rss"
echo "(CPU us: server CPU time per message or request; CPU: the server's share of one core; RSS: peak, VmHWM)"
echo "parley: $p_done whole conversations completed, $p_non200 non-200 answers; RSS with $stored sessions stored: $k_rss MB ($k_after sessions after that run; $s_rss MB while seeding); database $db_mb MB"
cat "$logs/webhooks/summary" "$logs/checkout/summary"
grep '^sse: ' "$logs/sse.txt" || echo "sse: no result (see the output above)"
cat "$logs/attack/summary"
echo "targets (not asserted): >= 15000 messages/s, p99 < 5 ms at 64 connections, < 60 MB RSS with 100,000 sessions stored"
echo "logs: $logs/"
if [ -s "$problems" ]; then
  echo
  echo "PROBLEMS:"
  sed 's/^/  /' "$problems"
  exit 1
fi
