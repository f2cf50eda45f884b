#!/bin/sh
# tests/bench/sse.sh: many idle web chat streams held open while messages
# flow. Runs alone, from any folder (not part of run.sh):
#   sh tests/bench/sse.sh
#
# Builds build/sse_idle when it is missing or older than its source, with:
#   cc -std=c11 -Wall -Wextra -Werror -O2 -g -o build/sse_idle tests/bench/sse_idle.c
#
#   parley serve: the default bot, a fresh SQLite file (default --sync full),
#     --no-watch, on 127.0.0.1 (port 0), with `ulimit -n` raised first.
#   A. baseline: BENCH_SSE_MESSAGES POST /v1/bots/barista/messages "hi",
#      each from a new shopper, over BENCH_SSE_CONC keep-alive connections
#      (after 200 unmeasured ones to warm up); p50/p99 latency; parley's RSS.
#   B. build/sse_idle opens BENCH_SSE_STREAMS event streams
#      (GET /v1/bots/barista/webchat/events?user=<32 hex>, one shopper each),
#      waits for every 200 head and holds them open, idle; parley's RSS again
#      and its open descriptors: (RSS after - RSS before) / streams.
#   C. the measurement of A again with the streams open; meanwhile
#      BENCH_SSE_NOTIFY of the stream-holding shoppers each POST one web chat
#      message ("hi"), and each of those streams must receive its 2 lines
#      (the shopper's, the bot's answer); no stream may be closed by the server.
#   Then the streams are closed and parley's RSS is read once more.
#
# Settings: BENCH_SSE_STREAMS (5000), BENCH_SSE_MESSAGES (5000),
# BENCH_SSE_CONC (4), BENCH_SSE_NOTIFY (50), BENCH_SSE_HOLD (0: seconds the
# streams stay idle between B and C, e.g. 70 to outlast the server's 60 s
# connection timeout and a 25 s ping; at most 100), BENCH_LOGS (build/bench).
# Outputs and the server log go to $BENCH_LOGS/sse/. Exit status 1 when a
# check failed. Needs: cc, curl. The whole run takes well under 3 minutes
# (each wait is bounded).
set -eu
cd "$(dirname "$0")/../.."

STREAMS=${BENCH_SSE_STREAMS:-5000}
MESSAGES=${BENCH_SSE_MESSAGES:-5000}
HOLD=${BENCH_SSE_HOLD:-0}
CONC=${BENCH_SSE_CONC:-4}
NOTIFY=${BENCH_SSE_NOTIFY:-50}
WANT_FDS=$((STREAMS + 1000))

command -v curl >/dev/null 2>&1 || { echo "bench: 'curl' is missing" >&2; exit 1; }
[ -x ./parley ] || { echo "bench: ./parley is not built (run: make)" >&2; exit 1; }

if [ ! -x build/sse_idle ] || [ tests/bench/sse_idle.c -nt build/sse_idle ]; then
  mkdir -p build
  ${CC:-cc} -std=c11 -Wall -Wextra -Werror -O2 -g -o build/sse_idle tests/bench/sse_idle.c || {
    echo "bench: cannot build build/sse_idle" >&2
    exit 1
  }
fi

# parley and sse_idle each need one descriptor per stream (and then some).
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$WANT_FDS" ]; then
  if ! ulimit -n 20000 2>/dev/null && ! ulimit -n "$WANT_FDS" 2>/dev/null; then
    echo "bench: cannot raise the open-files limit to $WANT_FDS (it is $(ulimit -n), hard limit" \
      "$(ulimit -Hn)); raise the hard limit (e.g. /etc/security/limits.conf) or set" \
      "BENCH_SSE_STREAMS below $(($(ulimit -n) - 1000))" >&2
    exit 1
  fi
fi

out=${BENCH_LOGS:-build/bench}/sse
rm -rf "$out"
mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/parley-bench-sse.XXXXXX")
problems="$out/problems"
: >"$problems"
. tests/bench/lib.sh
trap 'lib_cleanup; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
field() { sed -n "s/.*[ ]$2=\([^ ]*\).*/\1/p" "$1" | tail -n 1; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo "sse: $STREAMS idle streams, $MESSAGES messages over $CONC connections per phase; $(load_note)"
log=$out/parley.log
./parley serve --listen 127.0.0.1:0 --db "$tmp/b.db" --no-watch 2>"$log" >/dev/null &
server=$!
remember "$server"
port=$(wait_port "$server" "$log")
wait_health "$port"

# A. baseline
build/sse_idle latency "$port" 200 "$CONC" warm >/dev/null
build/sse_idle latency "$port" "$MESSAGES" "$CONC" A >"$out/latency-a" || problem "phase A: failed requests"
rss_a=$(rss_kib "$server")
fds_a=$(fds "$server")
echo "  A  no streams: p50 $(field "$out/latency-a" p50_ms) ms, p99 $(field "$out/latency-a" p99_ms) ms," \
  "$(field "$out/latency-a" per_s) messages/s; RSS $(mib "$rss_a") MiB, $fds_a descriptors"

# B. open the streams
build/sse_idle streams "$port" "$STREAMS" "$NOTIFY" "$out/notify-ids" >"$out/streams" 2>"$out/streams.err" &
client=$!
remember "$client"
tries=0
until grep -q '^ready' "$out/streams"; do
  tries=$((tries + 1))
  if ! kill -0 "$client" 2>/dev/null || [ "$tries" -ge 700 ]; then
    problem "phase B: the streams were not ready within 70 s"
    cat "$out/streams.err" >&2
    exit 1
  fi
  sleep 0.1
done
opened=$(field "$out/streams" open)
failed=$(field "$out/streams" failed)
[ "$failed" = 0 ] || problem "phase B: $failed streams failed to open (see $out/streams.err)"
sleep 1 # let the allocator settle
rss_b=$(rss_kib "$server")
fds_b=$(fds "$server")
per=$(awk -v a="$rss_a" -v b="$rss_b" -v n="$opened" 'BEGIN { printf "%.1f", (n > 0 ? (b - a) / n : 0) }')
echo "  B  $opened streams open in $(field "$out/streams" seconds) s ($failed failed): RSS $(mib "$rss_b") MiB" \
  "(+$(mib $((rss_b - rss_a))) MiB, $per KiB per stream), $fds_b descriptors (+$((fds_b - fds_a)))"

if [ "$HOLD" -gt 0 ]; then
  [ "$HOLD" -le 100 ] || HOLD=100
  echo "  .. holding the streams idle for $HOLD s"
  sleep "$HOLD"
  rss_h=$(rss_kib "$server")
  echo "  .. after $HOLD s idle: RSS $(mib "$rss_h") MiB, $(fds "$server") descriptors"
fi

# C. the same load with the streams open, and web chat messages to some of them
build/sse_idle latency "$port" "$MESSAGES" "$CONC" C >"$out/latency-c" &
lat=$!
remember "$lat"
posted=0
while read -r id; do
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
    -d "{\"user\": \"$id\", \"text\": \"hi\"}" "http://127.0.0.1:$port/v1/bots/barista/webchat/messages" || true)
  if [ "$code" = 202 ]; then posted=$((posted + 1)); else problem "webchat POST for $id: HTTP $code"; fi
done <"$out/notify-ids"
wait "$lat" || problem "phase C: failed requests"
rss_c=$(rss_kib "$server")
kill -USR1 "$client"
wait "$client" || problem "phase C: a stream dropped or missed its lines (see $out/streams, $out/streams.err)"
got=$(field "$out/streams" notified_got)
dropped=$(field "$out/streams" dropped)
echo "  C  $opened streams open: p50 $(field "$out/latency-c" p50_ms) ms, p99 $(field "$out/latency-c" p99_ms) ms," \
  "$(field "$out/latency-c" per_s) messages/s; RSS $(mib "$rss_c") MiB;" \
  "web chat: $posted posted, $got streams got their 2 lines, $(field "$out/streams" others_with_lines) other streams got data," \
  "$dropped dropped (held $(field "$out/streams" held_seconds) s)"
sleep 1
rss_d=$(rss_kib "$server")
echo "  after closing the streams: RSS $(mib "$rss_d") MiB, $(fds "$server") descriptors"

stop_pid parley "$server" "$log"
log_trouble parley "$log"

echo "sse: $opened idle streams: RSS +$(mib $((rss_b - rss_a))) MiB ($per KiB per stream);" \
  "message latency p50 $(field "$out/latency-a" p50_ms)→$(field "$out/latency-c" p50_ms) ms," \
  "p99 $(field "$out/latency-a" p99_ms)→$(field "$out/latency-c" p99_ms) ms; $got streams got their lines; $dropped dropped"
if [ -s "$problems" ]; then
  echo "sse: $(wc -l <"$problems") problem(s), listed in $problems"
  exit 1
fi
