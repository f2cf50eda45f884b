#!/bin/sh
# tests/bench/understand.sh: how well and how fast c:understand parses (run
# 11 of `make bench`; also alone: sh tests/bench/understand.sh). For each bot
# with a labelled corpus (tests/understand/corpus/: the default bot and the
# pizza example), `parley understand --corpus --bench=N` parses every
# utterance once for the accuracy (exact parse and per field) and then
# BENCH_UNDERSTAND_RUNS times (20) for the mean time per c:understand call
# (each call a fresh conversation, in the bot's own state, as in a turn).
# Printed, never asserted here: `make test` holds the accuracy thresholds.
# Outputs go to $BENCH_LOGS/understand/ (build/bench by default).
set -eu
cd "$(dirname "$0")/../.."
RUNS=${BENCH_UNDERSTAND_RUNS:-20}
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
[ ! -s "$problems" ]
