#!/bin/sh
# tests/fuzz/run.sh [--merge] NAME...: `make fuzz` and `make fuzz-merge`.
#
# Runs each target (build/fuzz/fuzz_NAME, built by `make fuzz-build`) for
# FUZZ_SECONDS (default 60), one after the other: the machine's cores are
# shared. A run starts from the seeds (tests/fuzz/corpus/NAME/, never
# written) and what earlier runs found (build/fuzz/corpus/NAME/, where new
# inputs go); an input that crashes, leaks, hangs (FUZZ_TIMEOUT, 10 s) or
# runs out of memory is saved under build/fuzz/crashes/NAME/ and named in
# the summary. Each run's output is build/fuzz/logs/NAME.log. Exits 1 when
# anything was found.
#
# --merge adds to the seeds the found inputs that reach new code
# (libFuzzer's -merge=1), to be committed with the fix they prompted.
set -u
cd "$(dirname "$0")/../.."
merge=0
if [ "${1:-}" = "--merge" ]; then
  merge=1
  shift
fi
seconds=${FUZZ_SECONDS:-60}
timeout=${FUZZ_TIMEOUT:-10}
mkdir -p build/fuzz/logs
found=0

# The last status line libFuzzer printed: "#N ... cov: C ft: F corp: K/S exec/s: E".
summary() {
  grep -E '^#[0-9]+' "$1" | tail -1 | sed -E 's/^#([0-9]+)[[:space:]]+[A-Z]+[[:space:]]+/\1 runs, /; s/ rss: .*//'
}

for name in "$@"; do
  bin=build/fuzz/fuzz_$name
  seeds=tests/fuzz/corpus/$name
  work=build/fuzz/corpus/$name
  crashes=build/fuzz/crashes/$name
  log=build/fuzz/logs/$name.log
  if [ ! -x "$bin" ]; then
    echo "$name: $bin is not built (make fuzz-build)"
    found=1
    continue
  fi
  mkdir -p "$seeds" "$work" "$crashes"
  if [ "$merge" = 1 ]; then
    before=$(ls "$seeds" | wc -l)
    "$bin" -merge=1 "$seeds" "$work" >"$log" 2>&1
    echo "$name: $before seeds, $(ls "$seeds" | wc -l) after the merge ($(du -sh "$seeds" | cut -f1))"
    continue
  fi
  "$bin" -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$crashes/" "$work" "$seeds" >"$log" 2>&1
  status=$?
  printf '%-18s %4ss  %s\n' "$name" "$seconds" "$(summary "$log")"
  if [ "$status" -ne 0 ]; then
    found=1
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*broken promise|.*runtime error)' "$log" | head -5 | sed 's/^/    /'
    grep -E 'Test unit written to' "$log" | sed 's/^.*written to /    saved: /'
  fi
done
if [ "$merge" = 0 ]; then
  if [ "$found" = 0 ]; then echo "fuzz: nothing found"
  else echo "fuzz: something was found: see build/fuzz/crashes/ and build/fuzz/logs/"; fi
fi
exit $found
