#!/bin/sh
# tests/bench/checkout.sh: the checkout run of `make bench` (called by
# tests/bench/run.sh; runs alone too, from any folder).
#
# Concurrent shoppers each order and pay through the test provider over the
# REST API; reports orders paid per second and messages per second, then
# confirms from the SQLite file that every order was paid exactly once.
#
#   parley serve: the default bot, a fresh SQLite file (default --sync full),
#     --no-watch, BARISTA_API_TOKEN set for the orders API. The catalog sells
#     40 croissants, which 64 shoppers finish in a moment, so the shop is
#     restocked first: parley is started once to create the database, stopped,
#     each stock count is set to BENCH_CHECKOUT_STOCK in the stock table
#     (parley keeps the sold count while the catalog's own count is
#     unchanged), and started again on it.
#   wrk with tests/bench/checkout.lua: BENCH_CONNECTIONS shoppers at a time
#     for BENCH_CHECKOUT_DURATION, each: hi -> latte -> large -> croissant ->
#     done -> pay, then the payment page's form (token=...&action=pay).
#   wrk stops with some shoppers between their link and their payment: their
#     orders, and DOUBLE orders made over curl after the run, are paid
#     afterwards, each with two identical forms sent at the same moment (a
#     double click). A sample of paid orders gets its form once
#     more (a retry), and is read back through GET /orders/{id}. Every
#     answer must say the order is paid: "Payment received", or "This order
#     is already paid." (the page's answer once the order is decided; a form
#     that raced the first one through is answered "Payment received" while
#     its confirmation is ignored). What counts is what the store holds.
#   Then, from the database: every order is paid, has exactly one recorded
#   confirmation (inbox order:<id>:paid), one payment turn and one thank-you
#   in the transcript, each shopper has one order, and the stock went down
#   exactly once per order.
#
# Settings: BENCH_THREADS (1), BENCH_CONNECTIONS (64), BENCH_CHECKOUT_DURATION
# (10s), BENCH_CHECKOUT_STOCK (1000000), BENCH_LOGS (build/bench). Outputs
# and logs go to $BENCH_LOGS/checkout/; lines for run.sh's final table to
# $BENCH_LOGS/checkout/summary. Exit status 1 when a check failed.
# Needs: wrk, curl, sqlite3.
set -eu
cd "$(dirname "$0")/../.."

THREADS=${BENCH_THREADS:-1}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
DURATION=${BENCH_CHECKOUT_DURATION:-10s}
STOCK=${BENCH_CHECKOUT_STOCK:-1000000}
SAMPLE=20 # paid orders whose form is sent again, and read back through the API
DOUBLE=5  # orders made after wrk's run, each paid with two forms at once
BOT=barista

for tool in wrk curl sqlite3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench: '$tool' is missing" >&2; exit 1; }
done
[ -x ./parley ] || { echo "bench: ./parley is not built (run: make bench)" >&2; exit 1; }

out=${BENCH_LOGS:-build/bench}/checkout
rm -rf "$out"
mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/parley-bench-checkout.XXXXXX")
problems="$out/problems"
: >"$problems"
. tests/bench/lib.sh
trap 'lib_cleanup; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

db="$tmp/checkout.db"
API_TOKEN=$(random_hex)
sql() { sqlite3 "$db" "$1"; }

# start NAME: parley on a free port with $db; sets parley_pid and port.
start() {
  BARISTA_API_TOKEN=$API_TOKEN ./parley serve --listen 127.0.0.1:0 --db "$db" --no-watch >"$out/$1.log" 2>&1 &
  parley_pid=$!
  remember "$parley_pid"
  port=$(wait_port "$parley_pid" "$out/$1.log")
  wait_health "$port"
}

start create
stop_pid "parley (creating the database)" "$parley_pid" "$out/create.log"
sql "update stock set remaining = $STOCK where bot = '$BOT'"
start parley
base="http://127.0.0.1:$port/v1/bots/$BOT"

echo "parley: $CONNECTIONS shoppers at a time for $DURATION, each ordering and paying through the test provider;"
echo "REST API on 127.0.0.1:$port, every stock count set to $STOCK (the catalog has 40 croissants); $(load_note)"
c0=$(cpu_ticks "$parley_pid")
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s tests/bench/checkout.lua "$base/messages" -- checkout \
  >"$out/wrk.txt" 2>&1 || true
c1=$(cpu_ticks "$parley_pid")
sed -n '/^-- timed by/,/^RESULT/p' "$out/wrk.txt" | grep -v '^RESULT' | sed 's/^/  /'
value() { sed -n "s/^RESULT\(.*\) $1=\([^ ]*\).*/\2/p" "$out/wrk.txt" | tail -n 1; }
if ! grep -q '^RESULT' "$out/wrk.txt"; then
  problem "checkout: wrk gave no result (see $out/wrk.txt)"
  exit 1
fi
sed -n 's/^PAID //p' "$out/wrk.txt" | sort -n >"$out/paid-by-wrk.txt"
for key in non200 unexpected socket_errors timeouts; do
  [ "$(value $key)" = 0 ] || problem "checkout: wrk counted $key=$(value $key) (see $out/wrk.txt)"
done
paid=$(value paid)
seconds=$(value seconds)
cpu_order=$(cpu_per "$c0" "$c1" "$paid")
echo "  server CPU: $cpu_order µs per order (7 requests); $(cpu_share "$c0" "$c1" "$seconds") of one core"

# --- double clicks: the orders wrk left between link and payment, and -------
# --- DOUBLE more made here, each paid with two forms at once -----------------
sql "select id || ' ' || token from orders where bot = '$BOT' and state = 'pending' order by id" >"$tmp/pending"
left=$(wc -l <"$tmp/pending")
say() {
  curl -sS -H 'Content-Type: application/json' --data "{\"user\":\"$1\",$2}" "$base/messages"
}
i=0
while [ "$i" -lt "$DOUBLE" ]; do
  i=$((i + 1))
  for m in '"text":"hi"' '"payload":"latte"' '"payload":"large"' '"payload":"croissant"' '"payload":"done"'; do
    say "double-$i" "$m" >/dev/null
  done
  say "double-$i" '"payload":"pay"' |
    sed -n 's/.*\/payments\/test\/\([0-9][0-9]*\)?token=\([0-9A-Za-z]*\).*/\1 \2/p' >>"$tmp/pending"
done
[ "$(wc -l <"$tmp/pending")" -eq $((left + DOUBLE)) ] ||
  problem "checkout: $DOUBLE shoppers ordered over curl, but only $(($(wc -l <"$tmp/pending") - left)) got a payment link"
# pay_form ID TOKEN [OUTPUT]: posts the test payment page's form.
pay_form() {
  curl -sS -o "${3:--}" -H 'Content-Type: application/x-www-form-urlencoded' \
    --data "token=$2&action=pay" "$base/payments/test/$1"
}
while read -r id token; do
  pay_form "$id" "$token" "$tmp/double-$id-1" &
  first=$!
  pay_form "$id" "$token" "$tmp/double-$id-2" &
  second=$!
  wait "$first" || true
  wait "$second" || true
  received=$(cat "$tmp/double-$id-1" "$tmp/double-$id-2" | grep -c 'Payment received' || true)
  already=$(cat "$tmp/double-$id-1" "$tmp/double-$id-2" | grep -c 'already paid' || true)
  [ "$received" -ge 1 ] && [ $((received + already)) = 2 ] ||
    problem "checkout: order $id paid with two forms at once: $received answered 'Payment received', $already 'already paid'"
  echo "$received $already" >>"$tmp/double-answers"
done <"$tmp/pending"
: >>"$tmp/double-answers"
double_already=$(awk '{ n += $2 } END { print n + 0 }' "$tmp/double-answers")
echo "  $left orders were between link and payment when wrk stopped, $DOUBLE more were made over curl: each paid now with two forms at once"

# --- a provider retry: the form again for some paid orders; the orders API --
retried=0
api_ok=0
head -n "$SAMPLE" "$out/paid-by-wrk.txt" >"$tmp/sample"
while read -r id; do
  token=$(sql "select token from orders where id = $id")
  answer=$(pay_form "$id" "$token" || true)
  case "$answer" in
    *"Payment received"* | *"already paid"*) retried=$((retried + 1)) ;;
    *) problem "checkout: order $id paid again answered: $(echo "$answer" | sed -n 's/.*<p id="result">\(.*\)<\/p>.*/\1/p')" ;;
  esac
  state=$(curl -sS -H "Authorization: Bearer $API_TOKEN" "$base/orders/$id" |
    sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')
  if [ "$state" = paid ]; then
    api_ok=$((api_ok + 1))
  else
    problem "checkout: GET /orders/$id says state '$state'"
  fi
done <"$tmp/sample"
sampled=$(wc -l <"$tmp/sample")
echo "  $sampled paid orders got their form again: $retried answered that they are paid; GET /orders/{id}: $api_ok say paid"

# every confirmation has had its turn (the thank-you) before the stop
tries=0
while [ "$(sql "select count(*) from inbox where done_at is null")" != 0 ]; do
  tries=$((tries + 1))
  [ "$tries" -lt 600 ] || { problem "checkout: confirmations still waiting for their turn after 30 s"; break; }
  sleep 0.05
done
rss=$(peak_rss_mb "$parley_pid")
stop_pid parley "$parley_pid" "$out/parley.log"

# --- exactly once, from the database -------------------------------------------
orders=$(sql "select count(*) from orders where bot = '$BOT'")
not_paid=$(sql "select count(*) from orders where bot = '$BOT' and state <> 'paid'")
confirmations=$(sql "select count(*) from inbox where bot = '$BOT' and platform_id like 'order:%:paid'")
other_events=$(sql "select count(*) from inbox where bot = '$BOT' and platform_id like 'order:%' and platform_id not like 'order:%:paid'")
bad_confirmations=$(sql "select count(*) from orders o where o.bot = '$BOT' and (select count(*) from inbox i
  where i.bot = o.bot and i.channel = o.channel and i.platform_id = 'order:' || o.id || ':paid') <> 1")
bad_turns=$(sql "select count(*) from orders o where o.bot = '$BOT' and (select count(*) from transcript t
  where t.bot = o.bot and t.channel = o.channel and t.user = o.user and t.direction = 'in'
  and t.body like '%\"type\":\"payment\"%') <> 1")
thanks=$(sql "select count(*) from orders o join transcript t on t.bot = o.bot and t.channel = o.channel
  and t.user = o.user and t.direction = 'out' where o.bot = '$BOT'
  and (t.body like '%Order #' || o.id || ' is being prepared%' or t.body like '%Order #' || o.id || ' is on the counter soon%')")
bad_thanks=$(sql "select count(*) from orders o where o.bot = '$BOT' and (select count(*) from transcript t
  where t.bot = o.bot and t.channel = o.channel and t.user = o.user and t.direction = 'out'
  and (t.body like '%Order #' || o.id || ' is being prepared%' or t.body like '%Order #' || o.id || ' is on the counter soon%')) <> 1")
shoppers=$(sql "select count(distinct user) from orders where bot = '$BOT'")
latte=$(sql "select $STOCK - remaining from stock where bot = '$BOT' and key = 'latte'")
croissant=$(sql "select $STOCK - remaining from stock where bot = '$BOT' and key = 'croissant'")
hooks=$(grep -c ' order [0-9]* paid: ' "$out/parley.log" || true)
in_db_not_wrk=$((orders - paid - left - DOUBLE))

once=yes
[ "$not_paid" = 0 ] || { once=no; problem "checkout: $not_paid orders are not paid"; }
[ "$confirmations" = "$orders" ] && [ "$bad_confirmations" = 0 ] ||
  { once=no; problem "checkout: $confirmations confirmations recorded for $orders orders; $bad_confirmations orders without exactly one"; }
[ "$other_events" = 0 ] || { once=no; problem "checkout: $other_events other order events (failed, expired ...) recorded"; }
[ "$bad_turns" = 0 ] || { once=no; problem "checkout: $bad_turns orders without exactly one payment turn"; }
[ "$thanks" = "$orders" ] && [ "$bad_thanks" = 0 ] ||
  { once=no; problem "checkout: $thanks thank-yous for $orders orders; $bad_thanks orders without exactly one"; }
[ "$shoppers" = "$orders" ] || { once=no; problem "checkout: $orders orders from $shoppers shoppers"; }
[ "$latte" = "$orders" ] && [ "$croissant" = "$orders" ] ||
  { once=no; problem "checkout: stock taken $latte lattes and $croissant croissants for $orders orders"; }
[ "$hooks" = "$orders" ] || { once=no; problem "checkout: the on_paid hook ran $hooks times for $orders orders"; }
[ "$in_db_not_wrk" -ge 0 ] ||
  { once=no; problem "checkout: wrk saw $paid payments but the database has only $orders orders ($left paid afterwards)"; }

details="$orders orders from $orders shoppers: $((orders - not_paid)) paid, $confirmations confirmations (inbox order:<id>:paid), $thanks thank-yous, stock taken $croissant times, on_paid hook $hooks times; $((left + DOUBLE)) double clicks ($double_already second forms answered 'already paid', the others raced through) and $sampled repeated forms changed nothing"
[ "$in_db_not_wrk" -gt 0 ] && echo "  ($in_db_not_wrk payments were in flight when wrk stopped: paid, unseen by wrk)"
echo "  every order paid exactly once: $once ($details)"
echo "  parley peak RSS: $rss MB; logs: $out/"
log_trouble "checkout: parley" "$out/parley.log"

{
  echo "checkout: $(value orders_per_s) orders paid/s, $(value messages_per_s) messages/s ($CONNECTIONS shoppers); message p50/p99 $(value msg_p50_ms)/$(value msg_p99_ms) ms, payment p50/p99 $(value pay_p50_ms)/$(value pay_p99_ms) ms; $cpu_order µs server CPU per order"
  echo "checkout: every order paid exactly once: $once ($orders orders)"
} >"$out/summary"

[ -s "$problems" ] && exit 1
exit 0
