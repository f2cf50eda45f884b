#!/bin/sh
# tests/bench/webhooks.sh: the webhook run of `make bench` (called by
# tests/bench/run.sh; runs alone too, from any folder).
#
# Webhook deliveries at a steady rate to parley, which answers each shopper
# through a fake Graph API; reports webhooks acknowledged per second, the
# end-to-end delay from a delivery to parley's outgoing send, and checks that
# nothing was lost or duplicated. Once per platform of
# BENCH_WEBHOOK_PLATFORMS ("whatsapp instagram"): WhatsApp Cloud API
# deliveries, then Instagram messaging webhooks (Meta's other signed
# webhook, answered through the Send API), so the two read side by side.
#
#   build/fake_graph (tests/bench/fake_graph.c): the Graph API on one evhttp
#     loop; answers every POST /{phone-number-id}/messages 200 and records
#     recipient, type and arrival time.
#   parley serve: the default bot, a fresh SQLite file (default --sync full),
#     --no-watch, its WhatsApp channel configured through the environment
#     (BARISTA_WHATSAPP_*) and PARLEY_WHATSAPP_API_BASE pointing at the fake.
#   build/wa_load (tests/bench/wa_load.c): for each rate in
#     BENCH_WEBHOOK_RATES, BENCH_WEBHOOK_SECONDS seconds of signed deliveries
#     (X-Hub-Signature-256), each a text "hi" from a new shopper (wa_id), open
#     loop; the default bot answers each with two sends (the greeting, the
#     drink list). Between rates the run waits until parley has made every
#     send, so each rate is measured on its own.
#   then the first BENCH_WEBHOOK_REPLAY deliveries of the first rate are sent
#     again, byte for byte (same message ids): each must be answered 200 and
#     followed by no send.
#   tests/bench/webhook_report.py: the table and the checks; the stored
#     inbox, transcript and outbox are counted with sqlite3.
#
# Settings: BENCH_WEBHOOK_PLATFORMS, BENCH_WEBHOOK_RATES ("500 1000 2000"), BENCH_WEBHOOK_SECONDS (4),
# BENCH_WEBHOOK_REPLAY (500), BENCH_LOGS (build/bench). Outputs and logs go
# to $BENCH_LOGS/webhooks/PLATFORM/; lines for run.sh's final table to
# $BENCH_LOGS/webhooks/summary. Exit status 1 when a check failed.
# Needs: cc, pkg-config, libevent, jansson and libcrypto headers (the build's
# own), curl, sqlite3, python3.
set -eu
cd "$(dirname "$0")/../.."

RATES=${BENCH_WEBHOOK_RATES:-500 1000 2000}
SECONDS_EACH=${BENCH_WEBHOOK_SECONDS:-4}
REPLAY=${BENCH_WEBHOOK_REPLAY:-500}
DRAIN_LIMIT=60 # seconds to wait for parley's sends after a rate's last delivery
SENDS=2        # Graph API calls one "hi" makes: the greeting, the drink list
PLATFORMS=${BENCH_WEBHOOK_PLATFORMS:-whatsapp instagram}

for tool in curl sqlite3 python3 pkg-config; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench: '$tool' is missing" >&2; exit 1; }
done
[ -x ./parley ] || { echo "bench: ./parley is not built (run: make bench)" >&2; exit 1; }

out=${BENCH_LOGS:-build/bench}/webhooks
rm -rf "$out"
mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/parley-bench-webhooks.XXXXXX")
problems="$out/problems"
: >"$problems"
. tests/bench/lib.sh
trap 'lib_cleanup; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

build_tool fake_graph
build_tool wa_load

# run_platform PLATFORM: one webhook run, its outputs in $out/PLATFORM/.
run_platform() {
platform=$1
pout=$out/$platform
mkdir -p "$pout"
HOOK=/v1/bots/barista/channels/$platform
PLATFORM_VAR=$(echo "$platform" | tr a-z A-Z)
PHONE_ID=106540352242922
APP_SECRET=$(random_hex)
ACCESS_TOKEN=EAA$(random_hex)
VERIFY_TOKEN=$(random_hex)
TIMESTAMP=$(date +%s)

build/fake_graph 0 "$pout/graph.txt" "$PHONE_ID" "$ACCESS_TOKEN" "$platform" >"$pout/fake_graph.log" 2>&1 &
fake_pid=$!
remember "$fake_pid"
fake_port=$(wait_port "$fake_pid" "$pout/fake_graph.log")

env "BARISTA_${PLATFORM_VAR}_APP_SECRET=$APP_SECRET" \
  "BARISTA_${PLATFORM_VAR}_ACCESS_TOKEN=$ACCESS_TOKEN" \
  "BARISTA_${PLATFORM_VAR}_PHONE_NUMBER_ID=$PHONE_ID" \
  "BARISTA_${PLATFORM_VAR}_VERIFY_TOKEN=$VERIFY_TOKEN" \
  "PARLEY_${PLATFORM_VAR}_API_BASE=http://127.0.0.1:$fake_port" \
  ./parley serve --listen 127.0.0.1:0 --db "$tmp/$platform.db" --no-watch >"$pout/parley.log" 2>&1 &
parley_pid=$!
remember "$parley_pid"
port=$(wait_port "$parley_pid" "$pout/parley.log")
wait_health "$port"

# the handshake answers, so the channel is configured as meant
challenge=$(curl -fsS "http://127.0.0.1:$port$HOOK?hub.mode=subscribe&hub.challenge=4711&hub.verify_token=$VERIFY_TOKEN" || true)
[ "$challenge" = 4711 ] || { problem "webhooks ($platform): the $platform verification handshake failed: '$challenge'"; return 1; }

# received: the sends fake_graph has recorded so far.
received() {
  curl -fsS "http://127.0.0.1:$fake_port/stats" | sed -n 's/.*"received":\([0-9]*\).*/\1/p'
}

# wait_sends N: until fake_graph has N sends (or DRAIN_LIMIT seconds).
wait_sends() {
  _deadline=$(($(date +%s) + DRAIN_LIMIT))
  while [ "$(received)" -lt "$1" ]; do
    if [ "$(date +%s)" -ge "$_deadline" ]; then
      problem "webhooks ($platform): parley made $(received) of $1 expected sends within ${DRAIN_LIMIT} s"
      return 1
    fi
    sleep 0.05
  done
}

# load_line LOG: what wa_load did, from its summary line.
load_line() {
  sed -n 's/^wa_load .* deliveries=\([0-9]*\) .* max_send_lag_ms=\([0-9.]*\) connections=\([0-9]*\) seconds=\([0-9.]*\).*/\1 sent in \4 s (\3 connections, at most \2 ms behind schedule)/p' "$1"
}

echo "parley: the $platform channel of the default bot on 127.0.0.1:$port -> fake Graph API on 127.0.0.1:$fake_port;"
echo "one new shopper per delivery (text \"hi\"), $SECONDS_EACH s at each rate: $RATES webhooks/s; $(load_note)"
: >"$pout/phases"
phase=0
expected=0
first_count=0
for rate in $RATES; do
  phase=$((phase + 1))
  count=$((rate * SECONDS_EACH))
  [ "$phase" -eq 1 ] && first_count=$count
  expected=$((expected + SENDS * count))
  p0=$(cpu_ticks "$parley_pid")
  f0=$(cpu_ticks "$fake_pid")
  t0=$(now_s)
  build/wa_load --port "$port" --secret "$APP_SECRET" --phone-id "$PHONE_ID" --rate "$rate" \
    --count "$count" --phase "$phase" --timestamp "$TIMESTAMP" --platform "$platform" --out "$pout/load-$phase.txt" \
    >"$pout/load-$phase.log" 2>&1 || problem "webhooks ($platform): wa_load at $rate/s: $(tail -n 1 "$pout/load-$phase.log")"
  wait_sends "$expected" || true
  t1=$(now_s)
  p1=$(cpu_ticks "$parley_pid")
  f1=$(cpu_ticks "$fake_pid")
  secs=$(elapsed "$t0" "$t1")
  echo "  $rate/s: $(load_line "$pout/load-$phase.log"); every send made after $secs s"
  echo "$phase $rate $pout/load-$phase.txt $(cpu_per "$p0" "$p1" "$count") $(cpu_share "$p0" "$p1" "$secs") $(cpu_share "$f0" "$f1" "$secs")" >>"$pout/phases"
done

replay=$REPLAY
[ "$replay" -le "$first_count" ] || replay=$first_count
if [ "$replay" -gt 0 ]; then
  build/wa_load --port "$port" --secret "$APP_SECRET" --phone-id "$PHONE_ID" --rate 500 \
    --count "$replay" --phase 1 --timestamp "$TIMESTAMP" --platform "$platform" --out "$pout/replay.txt" \
    >"$pout/replay.log" 2>&1 || problem "webhooks ($platform): wa_load replay: $(tail -n 1 "$pout/replay.log")"
  echo "  replay of $replay deliveries of the first rate: $(load_line "$pout/replay.log")"
  # a replay that slipped through would be sent within this
  sleep 1
fi
rss=$(peak_rss_mb "$parley_pid")
stop_pid parley "$parley_pid" "$pout/parley.log"
stop_pid fake_graph "$fake_pid" "$pout/fake_graph.log"
refused=$(sed -n 's/^fake_graph: .* recorded, \([0-9]*\) refused$/\1/p' "$pout/fake_graph.log")
[ "${refused:-?}" = 0 ] || problem "webhooks ($platform): the fake Graph API refused ${refused:-?} requests (wrong path, token or body; see $pout/fake_graph.log)"

echo
report_args="--platform $platform --graph $pout/graph.txt --phases $pout/phases --sends $SENDS --summary $pout/summary"
[ "$replay" -gt 0 ] && report_args="$report_args --replay $pout/replay.txt"
# shellcheck disable=SC2086 # the words are separate arguments
python3 tests/bench/webhook_report.py $report_args >"$pout/report.txt" || true
cat "$pout/report.txt"
sed -n "s/^ *PROBLEM: /webhooks ($platform): /p" "$pout/report.txt" >>"$problems"

# what parley stored: one inbox row and one turn per distinct delivery, every
# outgoing message sent
db="$tmp/$platform.db"
total=$((expected / SENDS))
inbox=$(sqlite3 "$db" "select count(*) from inbox where channel = '$platform'")
turns=$(sqlite3 "$db" "select count(*) from transcript where channel = '$platform' and direction = 'in'")
outbox=$(sqlite3 "$db" "select count(*) from outbox where channel = '$platform'")
unsent=$(sqlite3 "$db" "select count(*) from outbox where channel = '$platform' and state <> 'sent'")
echo "  sqlite3: $inbox inbox rows, $turns turns, $outbox outgoing messages ($unsent not sent) for $total distinct deliveries"
[ "$inbox" -eq "$total" ] || problem "webhooks ($platform): $inbox inbox rows for $total distinct deliveries"
[ "$turns" -eq "$total" ] || problem "webhooks ($platform): $turns turns for $total distinct deliveries"
[ "$outbox" -eq $((SENDS * total)) ] || problem "webhooks ($platform): $outbox outgoing messages stored, $((SENDS * total)) expected"
[ "$unsent" -eq 0 ] || problem "webhooks ($platform): $unsent outgoing messages not sent"
echo "  parley peak RSS: $rss MB; logs: $pout/"
echo "webhooks: parley peak RSS $rss MB" >>"$pout/summary"
log_trouble "webhooks ($platform): parley" "$pout/parley.log"
sed "s/^webhooks/webhooks ($platform)/" "$pout/summary" >>"$out/summary"
}

: >"$out/summary"
for platform in $PLATFORMS; do
  run_platform "$platform" || true
  echo
done

[ -s "$problems" ] && exit 1
exit 0
