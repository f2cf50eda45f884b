#!/bin/sh
# tests/bench/attack.sh: an innocent bot measured while another bot of the
# same server attacks it from inside (run 8 of `make bench`; also alone:
# sh tests/bench/attack.sh).
#
#   parley serve: the default bot (innocent) and a copy of tests/bots/hostile
#     whose time budget is BENCH_ATTACK_TIME_MS (default 50), a fresh SQLite
#     file, --no-watch, on 127.0.0.1 (port 0).
#   A. wrk with tests/bench/conversation.lua against the default bot, as in
#      run 1b: p50/p99 without the attack.
#   B. the same while tests/bench/attacker.py sends the hostile bot
#      BENCH_ATTACK_RATE messages/s (default 20) naming attacks that each use
#      a whole budget or more: a loop whose xpcall handler loops too, a
#      20 MB string copied again and again, and (BENCH_ATTACKS) others.
#   Then: the innocent bot's p50/p99 with and without, the hostile bot's
#   messages (answered with its fallback, refused 503 while over its
#   share), and its share of the loop (script time / wall time, from
#   /v1/health) against --bot-share.
#
# The aim (printed, not asserted): p99 under the attack at most the time
# budget + 5 ms above p99 without it, and the hostile bot's share at most
# its --bot-share. Settings: BENCH_DURATION (10s), BENCH_CONNECTIONS (64),
# BENCH_THREADS (1), BENCH_ATTACK_RATE, BENCH_ATTACK_TIME_MS, BENCH_ATTACKS,
# BENCH_LOGS (build/bench). Outputs go to $BENCH_LOGS/attack/.
set -eu
cd "$(dirname "$0")/../.."

THREADS=${BENCH_THREADS:-1}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
DURATION=${BENCH_DURATION:-10s}
RATE=${BENCH_ATTACK_RATE:-20}
TIME_MS=${BENCH_ATTACK_TIME_MS:-50}
SHARE=${BENCH_ATTACK_SHARE:-50}
ATTACKS=${BENCH_ATTACKS:-xpcall_loop,big_concat,pattern}
logs=${BENCH_LOGS:-build/bench}/attack
rm -rf "$logs"
mkdir -p "$logs"
problems="$logs/problems"
: >"$problems"
. tests/bench/lib.sh

tmp=$(mktemp -d "${TMPDIR:-/tmp}/parley-attack.XXXXXX")
server_pid=""
attacker_pid=""
cleanup() {
  for pid in $attacker_pid $server_pid; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $attacker_pid $server_pid; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cp -R tests/bots/hostile "$tmp/hostile"
sed "s/\"time_ms\": [0-9]*/\"time_ms\": $TIME_MS/" tests/bots/hostile/bot.json >"$tmp/hostile/bot.json"
./parley serve --listen 127.0.0.1:0 --db "$tmp/attack.db" --no-watch --bot-share "$SHARE" . "$tmp/hostile" \
  >"$logs/parley.log" 2>&1 &
server_pid=$!
port=$(wait_port "$server_pid" "$logs/parley.log")
wait_health "$port"

# innocent NAME PREFIX: the conversation load on the default bot; prints its figures.
innocent() {
  out="$logs/$1.wrk.txt"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s tests/bench/conversation.lua \
    "http://127.0.0.1:$port/v1/bots/barista/messages" -- "$2" >"$out" 2>&1 || true
  sed -n "s/^RESULT.* messages_per_s=\([^ ]*\) p50_ms=\([^ ]*\) .* p99_ms=\([^ ]*\) .* non200=\([^ ]*\).*/\1 \2 \3 \4/p" "$out"
}

# script_ms: the hostile bot's script time so far, from /v1/health.
script_ms() {
  curl -fsS "http://127.0.0.1:$port/v1/health" | python3 -c \
    'import json, sys; print(next(b["usage"]["script_ms"] for b in json.load(sys.stdin)["bots"] if b["name"] == "hostile"))'
}

echo "  A. the default bot alone"
set -- $(innocent quiet quiet)
q_rate=$1 q_p50=$2 q_p99=$3 q_non200=$4
echo "     $q_rate messages/s, p50 $q_p50 ms, p99 $q_p99 ms, $q_non200 non-200"

seconds=$(echo "$DURATION" | sed 's/s$//')
echo "  B. the same while the hostile bot gets $RATE messages/s ($ATTACKS; time budget $TIME_MS ms, --bot-share $SHARE%)"
h0=$(script_ms)
t0=$(date +%s%N)
python3 tests/bench/attacker.py "$port" hostile "$seconds" "$RATE" "$ATTACKS" >"$logs/attacker.txt" 2>&1 &
attacker_pid=$!
set -- $(innocent attacked attacked)
a_rate=$1 a_p50=$2 a_p99=$3 a_non200=$4
wait "$attacker_pid" || problem "attack: the attacker failed (see $logs/attacker.txt)"
attacker_pid=""
t1=$(date +%s%N)
h1=$(script_ms)
echo "     $a_rate messages/s, p50 $a_p50 ms, p99 $a_p99 ms, $a_non200 non-200"
attack=$(sed -n 's/^ATTACK //p' "$logs/attacker.txt")
share=$(awk -v a="$h0" -v b="$h1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f%%", 100 * (b - a) / ((t1 - t0) / 1e6) }')
echo "     hostile bot: $attack; its script time: $share of the loop"
[ "$q_non200" = 0 ] && [ "$a_non200" = 0 ] || problem "attack: the innocent bot got non-200 answers ($q_non200 quiet, $a_non200 attacked)"
kill -0 "$server_pid" 2>/dev/null || problem "attack: parley died (see $logs/parley.log)"
stop_pid attack "$server_pid" "$logs/parley.log"
server_pid=""

aim=$(awk -v q="$q_p99" -v a="$a_p99" -v t="$TIME_MS" 'BEGIN { printf "%s", (a <= q + t + 5 ? "met" : "not met") }')
echo "attack: innocent p50/p99 $q_p50/$q_p99 ms quiet, $a_p50/$a_p99 ms under $RATE attacks/s (aim p99 <= quiet + $TIME_MS + 5 ms: $aim); hostile bot $share of the loop (share $SHARE%), $attack" \
  >"$logs/summary"
cat "$logs/summary"
[ ! -s "$problems" ]
