#!/bin/sh
# tests/bench/cost.sh [PARLEY]: what one message costs the server, in
# counts that do not move with the machine's load (unlike make bench's
# messages/s): instructions per message (valgrind's callgrind) and system
# calls per message (strace -c), on the default bot's whole conversation
# over the HTTP API (tests/bench/cost_client.py); COST_BOT=order counts the
# bench's order bot (tests/bench/order) instead.
#
# Each of the two runs starts `PARLEY serve` (default ./parley) on a fresh
# SQLite file, warms it up with COST_WARMUP shoppers (the first turns load
# and compile the scripts), then counts COST_SHOPPERS shoppers of 5 messages
# each: callgrind's counters are zeroed before and dumped after the counted
# shoppers (callgrind_control), strace is attached to the server only for
# them. With COST_CONNECTIONS=1 (the default) one shopper talks at a time,
# so every message is its own commit; callgrind counts each thread apart,
# and the loop thread's count repeats within a fraction of a percent from
# run to run (the sync thread's moves with the checkpoints that fall into
# the counted window, so the total can move by half); with more connections
# the commits batch several messages (fewer syscalls per message) and the
# counts vary with the batching. Outputs are kept in build/bench/cost/.
#
# Settings: COST_SHOPPERS, COST_WARMUP, COST_CONNECTIONS, COST_BOT; COST_BOT_DIR
# (another folder of that bot), COST_OUT (the outputs' folder), COST_STRACE=0
# (instructions only).
# Needs valgrind (callgrind_control, callgrind_annotate), strace, python3.
set -eu
cd "$(dirname "$0")/../.."

PARLEY=${1:-./parley}
SHOPPERS=${COST_SHOPPERS:-100}
WARMUP=${COST_WARMUP:-20}
CONNECTIONS=${COST_CONNECTIONS:-1}
BOT=${COST_BOT:-barista}
case "$BOT" in
  barista) BOT_DIR=. ;;
  order) BOT_DIR=tests/bench/order ;;
  *) echo "cost: COST_BOT is barista or order" >&2; exit 2 ;;
esac
# another folder of the same bot (tests/bench/analytics.sh: one with its
# analytics off); COST_STRACE=0 skips the system calls' run
BOT_DIR=${COST_BOT_DIR:-$BOT_DIR}
STRACE=${COST_STRACE:-1}

for tool in valgrind callgrind_control callgrind_annotate strace python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "cost: '$tool' is missing (apt-get install valgrind strace python3)" >&2; exit 1; }
done
[ -x "$PARLEY" ] || { echo "cost: $PARLEY is not built (run: make)" >&2; exit 1; }

out=${COST_OUT:-build/bench/cost}
rm -rf "$out"
mkdir -p "$out"
problems="$out/problems"
: >"$problems"
# remember, lib_cleanup, problem
. tests/bench/lib.sh
trap lib_cleanup EXIT
trap 'exit 130' INT TERM

messages=$((SHOPPERS * 5))

client() { python3 tests/bench/cost_client.py "$@" "$BOT"; }

# --- instructions ------------------------------------------------------------
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out/callgrind.out" \
  "$PARLEY" serve "$BOT_DIR" --listen 127.0.0.1:0 --db "$out/callgrind.db" --no-watch </dev/null >"$out/callgrind.log" 2>&1 &
vg=$!
remember "$vg"
port=$(wait_port "$vg" "$out/callgrind.log" 1200) # valgrind starts slowly
client "$port" warm "$WARMUP" "$CONNECTIONS" >/dev/null || problem "warm-up answers were unexpected"
callgrind_control -z "$vg" >/dev/null 2>&1
client "$port" run "$SHOPPERS" "$CONNECTIONS" >"$out/callgrind.client" || problem "answers were unexpected (callgrind run)"
callgrind_control -d "$vg" >/dev/null 2>&1
kill -TERM "$vg"
wait "$vg" || true
# the dump made on request: part 1, one file per thread (-01 the loop,
# then the sync thread and any other)
program_total() { callgrind_annotate "$1" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) (100.0%) *PROGRAM TOTALS.*/\1/p' | tr -d ,; }
total=0
for part in "$out"/callgrind.out.1-*; do
  n=$(program_total "$part")
  total=$((total + ${n:-0}))
done
loop=$(program_total "$out/callgrind.out.1-01")
echo "instructions per message: $((total / messages)) ($(cat "$out/callgrind.client"), $CONNECTIONS at a time; $out/callgrind.out.1-*)"
# the loop's share repeats from run to run; the sync thread's moves with
# how many of its checkpoints fall into the counted window
echo "  on the loop's thread: $((${loop:-0} / messages)) ($out/callgrind.out.1-01); on the others: $(((total - ${loop:-0}) / messages))"

# --- system calls --------------------------------------------------------------
if [ "$STRACE" = 1 ]; then
"$PARLEY" serve "$BOT_DIR" --listen 127.0.0.1:0 --db "$out/strace.db" --no-watch >"$out/strace.log" 2>&1 &
server=$!
remember "$server"
port=$(wait_port "$server" "$out/strace.log")
client "$port" warm "$WARMUP" "$CONNECTIONS" >/dev/null || problem "warm-up answers were unexpected"
strace -c -f -p "$server" -o "$out/strace.txt" 2>"$out/strace.err" &
tracer=$!
strace_attached "$tracer" "$out/strace.err" || problem "strace could not attach (see $out/strace.err)"
client "$port" run "$SHOPPERS" "$CONNECTIONS" >"$out/strace.client" || problem "answers were unexpected (strace run)"
kill -INT "$tracer"
wait "$tracer" || true
# strace -c's table: % time, seconds, usecs/call, calls, [errors,] syscall
awk -v m="$messages" '
  $NF == "total" { printf "system calls per message: %.1f\n", $4 / m }' "$out/strace.txt"
awk -v m="$messages" '
  NR > 2 && $1 !~ /^-/ && $NF != "total" && $4 ~ /^[0-9]+$/ { printf "  %-16s %6.2f\n", $NF, $4 / m }' \
  "$out/strace.txt" | sort -k2 -rn | head -n 10
fi

if [ -s "$problems" ]; then
  echo "cost: problems:" >&2
  sed 's/^/  /' "$problems" >&2
  exit 1
fi
