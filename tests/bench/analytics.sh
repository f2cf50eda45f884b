#!/bin/sh
# tests/bench/analytics.sh: what the analytics cost (run 10 of `make bench`;
# also alone: sh tests/bench/analytics.sh).
#
#   A. Recording: one parley serve with the default bot twice, as 'barista'
#      (analytics on, as shipped) and as 'nostats' (a copy whose bot.json
#      says "analytics": {"enabled": false}); the conversation load of run 1b
#      (tests/bench/conversation.lua, 64 connections) against each in turn,
#      a pair a round (BENCH_ANALYTICS_ROUNDS, 4: on first in odd rounds,
#      off first in even ones), on a fresh SQLite
#      file. Messages/s and the server's CPU per message of each; the aim
#      (printed, not asserted): on and off under 5 % apart.
#   A2. The same counted in instructions per message (valgrind's callgrind,
#      tests/bench/cost.sh: the default bot as shipped, and a copy with its
#      analytics off), which the machine's load does not move.
#   B. Reading: a database of BENCH_ANALYTICS_EVENTS events (1,000,000 by
#      default) of a month of one bot's conversations, written straight
#      into SQLite by tests/bench/analytics_events.py; then the time to
#      answer GET /v1/bots/barista/analytics for 30 days and for 7 days, and
#      one page (1,000 turns) of /analytics/events as CSV, each the median
#      of 3 requests.
# Settings: BENCH_DURATION (10s), BENCH_CONNECTIONS (64), BENCH_THREADS (1),
# BENCH_ANALYTICS_ROUNDS (4), BENCH_ANALYTICS_EVENTS, BENCH_LOGS
# (build/bench). Outputs go to $BENCH_LOGS/analytics/.
set -eu
cd "$(dirname "$0")/../.."

THREADS=${BENCH_THREADS:-1}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
DURATION=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ANALYTICS_ROUNDS:-4}
EVENTS=${BENCH_ANALYTICS_EVENTS:-1000000}
logs=${BENCH_LOGS:-build/bench}/analytics
rm -rf "$logs"
mkdir -p "$logs"
problems="$logs/problems"
: >"$problems"
. tests/bench/lib.sh
hz=$(getconf CLK_TCK)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/parley-analytics.XXXXXX")
server_pid=""
cleanup() {
  [ -z "$server_pid" ] || { kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- A. recording ------------------------------------------------------------------
mkdir "$tmp/off"
cp -R bot.json catalog.json flows scripts "$tmp/off/"
python3 - "$tmp/off/bot.json" <<'PY'
import json, sys
path = sys.argv[1]
# the copy's secrets are in its own namespace (NOSTATS_*)
m = json.loads(open(path).read().replace('"BARISTA_', '"NOSTATS_'))
m["name"] = "nostats"
m["analytics"] = {"enabled": False}
json.dump(m, open(path, "w"), indent=2)
PY
./parley serve --listen 127.0.0.1:0 --db "$tmp/record.db" --no-watch . "$tmp/off" >"$logs/record.log" 2>&1 &
server_pid=$!
port=$(wait_port "$server_pid" "$logs/record.log")
wait_health "$port"

# load BOT NAME: the conversation load on BOT; prints "<messages/s> <CPU µs per message>".
load() {
  out="$logs/$2.wrk.txt"
  t0=$(cpu_ticks "$server_pid")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s tests/bench/conversation.lua \
    "http://127.0.0.1:$port/v1/bots/$1/messages" -- "$2" >"$out" 2>&1 || true
  t1=$(cpu_ticks "$server_pid")
  set -- $(sed -n "s/^RESULT.* messages_per_s=\([^ ]*\) .* non200=\([^ ]*\) unexpected=\([^ ]*\) .* completed=\([^ ]*\) started=\([^ ]*\).*/\1 \2 \3/p" "$out")
  [ "${2:-1}" = 0 ] && [ "${3:-1}" = 0 ] || problem "analytics: $out: non-200 or unexpected answers"
  rate=${1:-0}
  seconds=$(seconds_of "$DURATION")
  echo "$rate $(cpu_per "$t0" "$t1" "$(awk -v r="$rate" -v s="$seconds" 'BEGIN { printf "%d", r * s }')")"
}
seconds_of() {
  case "$1" in *m) echo $(( ${1%m} * 60 ));; *h) echo $(( ${1%h} * 3600 ));; *) echo "${1%s}";; esac
}

echo "  A. recording: the default bot with analytics on and off, $ROUNDS rounds, ${CONNECTIONS} connections, $DURATION each"
on_rates="" off_rates="" on_cpus="" off_cpus=""
i=0
while [ "$i" -lt "$ROUNDS" ]; do
  i=$((i + 1))
  # (on first in odd rounds, off first in even ones: neither always meets
  # the fuller database)
  for side in $( [ $((i % 2)) -eq 1 ] && echo "on off" || echo "off on"); do
    if [ "$side" = on ]; then
      set -- $(load barista "on$i")
      on_rates="$on_rates $1" on_cpus="$on_cpus $2"
      echo "     round $i on:  $1 messages/s, $2 µs CPU per message"
    else
      set -- $(load nostats "off$i")
      off_rates="$off_rates $1" off_cpus="$off_cpus $2"
      echo "     round $i off: $1 messages/s, $2 µs CPU per message"
    fi
  done
done
stop_pid analytics "$server_pid" "$logs/record.log"
server_pid=""
mean() { echo "$@" | awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.1f", s / NF }'; }
on_rate=$(mean $on_rates) off_rate=$(mean $off_rates) on_cpu=$(mean $on_cpus) off_cpu=$(mean $off_cpus)
apart=$(awk -v a="$on_rate" -v b="$off_rate" 'BEGIN { printf "%.1f", (b > 0 ? 100 * (b - a) / b : 0) }')
cpu_apart=$(awk -v a="$on_cpu" -v b="$off_cpu" 'BEGIN { printf "%.1f", (b > 0 ? 100 * (a - b) / b : 0) }')
aim=$(awk -v d="$apart" -v c="$cpu_apart" 'BEGIN { print ((d < 5 && c < 5) ? "met" : "not met") }')
events_rows=$(sqlite3 "$tmp/record.db" "SELECT count(*) FROM events")
echo "     on $on_rate messages/s ($on_cpu µs), off $off_rate ($off_cpu µs): $apart % fewer messages/s, $cpu_apart % more CPU per message with analytics on (aim under 5 %: $aim); $events_rows event rows written"

# --- A2. recording, counted in instructions ----------------------------------------------
# Messages/s and CPU time move with whatever else runs on the machine, by
# more than the cost measured here; callgrind's count of instructions does
# not (tests/bench/cost.sh, one shopper at a time).
if command -v valgrind >/dev/null 2>&1 && command -v callgrind_control >/dev/null 2>&1; then
  # two copies of the default bot, as shipped and with its analytics off:
  # the same kind of folder for both
  mkdir "$tmp/same" "$tmp/same_on"
  cp -R bot.json catalog.json flows scripts "$tmp/same/"
  cp -R bot.json catalog.json flows scripts "$tmp/same_on/"
  python3 - "$tmp/same/bot.json" <<'PY'
import json, sys
path = sys.argv[1]
m = json.load(open(path))
m["analytics"] = {"enabled": False}
json.dump(m, open(path, "w"), indent=2)
PY
  COST_SHOPPERS=60 COST_STRACE=0 COST_OUT="$logs/cost-on" COST_BOT_DIR="$tmp/same_on" sh tests/bench/cost.sh \
    >"$logs/cost-on.txt" 2>&1 ||
    problem "analytics: tests/bench/cost.sh failed (see $logs/cost-on.txt)"
  COST_SHOPPERS=60 COST_STRACE=0 COST_OUT="$logs/cost-off" COST_BOT_DIR="$tmp/same" sh tests/bench/cost.sh     >"$logs/cost-off.txt" 2>&1 || problem "analytics: tests/bench/cost.sh failed (see $logs/cost-off.txt)"
  # the loop's thread, less what valgrind now and then counts inside an idle
  # epoll_wait (it can double a run's total: no work of parley's)
  loop_net() {
    callgrind_annotate --inclusive=yes "$1/callgrind.out.1-01" 2>/dev/null | awk -v m=300 '
      /PROGRAM TOTALS/ { gsub(",", "", $1); total = $1 }
      /epoll_wait.c:epoll_wait / { gsub(",", "", $1); idle = $1 }
      END { printf "%d", (total - idle) / m }'
  }
  on_loop=$(loop_net "$logs/cost-on")
  off_loop=$(loop_net "$logs/cost-off")
  ins_apart=$(awk -v a="${on_loop:-0}" -v b="${off_loop:-0}" 'BEGIN { printf "%.1f", (b > 0 ? 100 * (a - b) / b : 0) }')
  ins_note="instructions per message on the loop's thread: on ${on_loop:-?}, off ${off_loop:-?} (+$ins_apart %)"
  echo "  A2. $ins_note"
else
  ins_note="instructions: not counted (no valgrind)"
fi

# --- B. reading -----------------------------------------------------------------------
echo "  B. reading: the analytics API over $EVENTS events"
token=$(random_hex)
./parley serve --listen 127.0.0.1:0 --db "$tmp/read.db" --no-watch >"$logs/read.log" 2>&1 &
server_pid=$!
port=$(wait_port "$server_pid" "$logs/read.log")
stop_pid analytics-schema "$server_pid" "$logs/read.log"
t0=$(now_s)
python3 tests/bench/analytics_events.py "$tmp/read.db" "$EVENTS" >"$logs/generate.txt"
t1=$(now_s)
echo "     $(cat "$logs/generate.txt") (written in $(elapsed "$t0" "$t1") s)"
PARLEY_ANALYTICS_TOKEN=$token ./parley serve --listen 127.0.0.1:0 --db "$tmp/read.db" --no-watch >"$logs/read.log" 2>&1 &
server_pid=$!
port=$(wait_port "$server_pid" "$logs/read.log")
wait_health "$port"
last=$(sqlite3 "$tmp/read.db" "SELECT max(at) FROM events")
to=$(date -u -d "@$((last / 1000))" +%F)
from30=$(date -u -d "$to - 29 days" +%F)
from7=$(date -u -d "$to - 6 days" +%F)

# timed NAME PATH: the median of 3 requests, in ms.
timed() {
  for n in 1 2 3; do
    curl -fsS -o "$logs/$1.out" -w '%{time_total}\n' -H "Authorization: Bearer $token" "http://127.0.0.1:$port$2" ||
      problem "analytics: $2 failed"
  done | sort -n | sed -n 2p | awk '{ printf "%.0f", $1 * 1000 }'
}
ms30=$(timed month "/v1/bots/barista/analytics?from=$from30&to=$to")
ms7=$(timed week "/v1/bots/barista/analytics?from=$from7&to=$to")
mspage=$(timed page "/v1/bots/barista/analytics/events?from=$from30&to=$to&format=csv")
conversations=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["funnel"][0]["count"])' "$logs/month.out")
echo "     30 days ($conversations conversations): $ms30 ms; 7 days: $ms7 ms; one page of the events as CSV: $mspage ms"
kill -0 "$server_pid" 2>/dev/null || problem "analytics: parley died (see $logs/read.log)"
stop_pid analytics "$server_pid" "$logs/read.log"
server_pid=""

echo "analytics: on $on_rate msg/s ($on_cpu µs/msg), off $off_rate ($off_cpu µs/msg): $apart % apart, CPU +$cpu_apart % (aim < 5 %: $aim); $ins_note; API over $EVENTS events: 30 days $ms30 ms, 7 days $ms7 ms, a CSV page $mspage ms" \
  >"$logs/summary"
cat "$logs/summary"
[ ! -s "$problems" ]
