#!/bin/sh
# tests/bench/understand.sh: how well and how fast c:understand parses (run
# 11 of `make bench`; also alone: sh tests/bench/understand.sh). For each bot
# with a labelled corpus (tests/understand/corpus/: the default bot and the
# pizza example), `parley understand --corpus --bench=N` parses every
# utterance once for the accuracy (exact parse and per field) and then
# BENCH_UNDERSTAND_RUNS times (20) for the mean time per c:understand call
# (each call a fresh conversation, in the bot's own state, as in a turn).
# Printed, never asserted here: `make test` holds the accuracy thresholds.
#
# Then what understanding costs a turn: one parley serve with the default
# bot, the conversation of run 1b tapped (tests/bench/conversation.lua: only
# its first message is typed) and the same conversation typed
# (tests/bench/typed.lua: every message goes through c:understand and the
# router's examples), BENCH_UNDERSTAND_ROUNDS (2) pairs of BENCH_DURATION
# (10s) at BENCH_CONNECTIONS (64); messages/s and the server's CPU per
# message of each.
# Outputs go to $BENCH_LOGS/understand/ (build/bench by default).
set -eu
cd "$(dirname "$0")/../.."
RUNS=${BENCH_UNDERSTAND_RUNS:-20}
ROUNDS=${BENCH_UNDERSTAND_ROUNDS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
DURATION=${BENCH_DURATION:-10s}
THREADS=${BENCH_THREADS:-1}
. tests/bench/lib.sh
logs=${BENCH_LOGS:-build/bench}/understand
rm -rf "$logs"
mkdir -p "$logs"
problems="$logs/problems"
: >"$problems"
: >"$logs/summary"
for bot in $(tests/understand/run.sh --bots); do
  out="$logs/$bot.txt"
  # (a corpus under its thresholds still gives its figures: status 1 is no problem here)
  status=0
  tests/understand/run.sh "$bot" --bench="$RUNS" >"$out" 2>&1 || status=$?
  total=$(grep '^total: ' "$out" || true)
  if [ "$status" -gt 1 ] || [ -z "$total" ]; then
    echo "understand: $bot: parley understand failed (status $status; see $out)" >>"$problems"
    continue
  fi
  echo "  $bot: ${total#total: }"
  echo "understand, $bot bot: ${total#total: }" >>"$logs/summary"
done

# --- what a typed message costs -------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/parley-understand.XXXXXX")
server_pid=""
cleanup() {
  [ -z "$server_pid" ] || { kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
./parley serve --listen 127.0.0.1:0 --db "$tmp/typed.db" --no-watch . >"$logs/serve.log" 2>&1 &
server_pid=$!
port=$(wait_port "$server_pid" "$logs/serve.log")
wait_health "$port"
seconds_of() {
  case "$1" in *m) echo $(( ${1%m} * 60 ));; *h) echo $(( ${1%h} * 3600 ));; *) echo "${1%s}";; esac
}
# load SCRIPT NAME: prints "<messages/s> <CPU µs per message>"
load() {
  out="$logs/$2.wrk.txt"
  t0=$(cpu_ticks "$server_pid")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "tests/bench/$1" \
    "http://127.0.0.1:$port/v1/bots/barista/messages" -- "$2" >"$out" 2>&1 || true
  t1=$(cpu_ticks "$server_pid")
  set -- $(sed -n "s/^RESULT.* messages_per_s=\([^ ]*\) .* non200=\([^ ]*\) unexpected=\([^ ]*\) .*/\1 \2 \3/p" "$out")
  [ "${2:-1}" = 0 ] && [ "${3:-1}" = 0 ] || echo "understand: $out: non-200 or unexpected answers" >>"$problems"
  rate=${1:-0}
  echo "$rate $(cpu_per "$t0" "$t1" "$(awk -v r="$rate" -v s="$(seconds_of "$DURATION")" 'BEGIN { printf "%d", r * s }')")"
}
echo "  the default bot tapped and typed, $ROUNDS rounds, $CONNECTIONS connections, $DURATION each:"
tapped_rates="" typed_rates="" tapped_cpus="" typed_cpus=""
i=0
while [ "$i" -lt "$ROUNDS" ]; do
  i=$((i + 1))
  for side in $( [ $((i % 2)) -eq 1 ] && echo "tapped typed" || echo "typed tapped"); do
    if [ "$side" = tapped ]; then
      set -- $(load conversation.lua "tapped$i")
      tapped_rates="$tapped_rates $1" tapped_cpus="$tapped_cpus $2"
    else
      set -- $(load typed.lua "typed$i")
      typed_rates="$typed_rates $1" typed_cpus="$typed_cpus $2"
    fi
    echo "     round $i $side: $1 messages/s, $2 µs CPU per message"
  done
done
stop_pid understand "$server_pid" "$logs/serve.log"
server_pid=""
mean() { echo "$@" | awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.1f", s / NF }'; }
tr=$(mean $tapped_rates) yr=$(mean $typed_rates) tc=$(mean $tapped_cpus) yc=$(mean $typed_cpus)
more=$(awk -v a="$yc" -v b="$tc" 'BEGIN { printf "%.1f", (b > 0 ? 100 * (a - b) / b : 0) }')
echo "  tapped: $tr messages/s, $tc µs CPU per message; typed: $yr messages/s, $yc µs CPU per message ($more % more CPU a message)"
echo "understand, the default bot typed vs tapped: $yr vs $tr messages/s, $yc vs $tc µs CPU per message ($more % more)" >>"$logs/summary"
[ ! -s "$problems" ]
