#!/bin/sh
# tests/run.sh: runs every test of every kind and ends with one line
# "N passed, N failed". Each suite speaks TAP ("ok N - ..." / "not ok N - ...");
# a suite that dies without reporting a failure counts as one failed test.
# Output of each suite is kept in build/test-logs/ for reading afterwards.
set -u
cd "$(dirname "$0")/.."
# Each run has its own log folder (runs at the same time do not collide);
# build/test-logs points at the latest.
mkdir -p build
logs=$(mktemp -d build/test-logs.XXXXXX)
rm -rf build/test-logs
ln -s "$(basename "$logs")" build/test-logs
find build -maxdepth 1 -name 'test-logs.*' -type d -mmin +60 -exec rm -rf {} + 2>/dev/null
passed=0
failed=0

# run_suite NAME COMMAND...: runs the command, counts its TAP lines.
run_suite() {
  name=$1
  shift
  log="$logs/$(echo "$name" | tr ' /' '__').log"
  "$@" >"$log" 2>&1
  status=$?
  if [ ! -f "$log" ]; then
    failed=$((failed + 1))
    printf '%-44s its log vanished: counted as failed\n' "$name"
    return
  fi
  ok=$(grep -c '^ok ' "$log")
  not_ok=$(grep -c '^not ok ' "$log")
  if [ "$status" -ne 0 ] && [ "$not_ok" -eq 0 ]; then
    not_ok=1
    echo "not ok - $name exited with status $status" >>"$log"
  fi
  passed=$((passed + ok))
  failed=$((failed + not_ok))
  if [ "$not_ok" -gt 0 ]; then
    printf '%-44s %4d passed, %d failed   (see %s)\n' "$name" "$ok" "$not_ok" "$log"
    grep -E '^(not ok|#)' "$log" | head -40 | sed 's/^/    /'
  else
    printf '%-44s %4d passed\n' "$name" "$ok"
  fi
}

# A private PostgreSQL server for the run (tests/pg/cluster.sh: a Unix
# socket in its own folder, no TCP port), stopped when the run ends; the
# suites that talk to PostgreSQL find it through PARLEY_TEST_PG.
pg_dir=$(mktemp -d /tmp/parley-pg.XXXXXX)
trap 'tests/pg/cluster.sh stop "$pg_dir"' EXIT
trap 'exit 130' INT TERM
pg_server() {
  echo "1..1"
  if info=$(tests/pg/cluster.sh start "$pg_dir" 2>"$logs/pg-start.err"); then
    echo "$info" >"$logs/pg-conninfo"
    echo "ok 1 - a private PostgreSQL server answers at $info"
  else
    echo "not ok 1 - no private PostgreSQL server: $(head -c 600 "$logs/pg-start.err")"
    return 1
  fi
}
run_suite "pg: a private server for the run" pg_server
if [ -s "$logs/pg-conninfo" ]; then
  PARLEY_TEST_PG=$(cat "$logs/pg-conninfo")
  export PARLEY_TEST_PG
fi

for t in build/tests/test_*; do
  [ -x "$t" ] && run_suite "c: ${t#build/tests/}" "$t"
done
for t in build/tests/san_test_*; do
  [ -x "$t" ] && run_suite "c+asan+ubsan: ${t#build/tests/san_}" "$t"
done

for t in build/tests/tsan_test_*; do
  [ -x "$t" ] && run_suite "c+tsan: ${t#build/tests/tsan_}" "$t"
done

run_suite "lua: no globals in runtime modules" tests/lua_globals.sh

# the house rules of runtime/: each folder includes only lower floors, and
# no files include each other in a circle (runtime/README.md)
run_suite "layers: runtime/ folders and their floors" tests/layers.sh

# every fuzz target's saved corpus, replayed under the sanitizers (tests/fuzz/)
run_suite "fuzz: corpora replayed" tests/fuzz/replay.sh

for bot in . examples/* tests/bots/* tests/bench/*; do
  [ -d "$bot/spec" ] && run_suite "busted: $bot" ./parley test "$bot" -o TAP
done
# the same specs through parley built with the sanitizers: the runtime's C
# under every conversation the specs hold
for bot in . examples/* tests/bots/* tests/bench/*; do
  [ -d "$bot/spec" ] && run_suite "busted+asan+ubsan: $bot" build/parley-san test "$bot" -o TAP
done

# the labelled corpora of c:understand (tests/understand/): a TAP line per
# utterance, and one per corpus file, which passes when the file's exact and
# per-field accuracy meet parley understand's thresholds (a miss is "ok"
# while its file does, and is shown)
for corpus_bot in $(tests/understand/run.sh --bots); do
  run_suite "understand: corpus of $corpus_bot" tests/understand/run.sh "$corpus_bot" --tap
done

# what parley test prints for specs that fail on purpose (a turn that
# failed) and for --coverage: fixture bots whose specs are not run above
run_suite "spec runtime: failed turns, --coverage" python3 tests/spec_runtime/run.py

for t in tests/e2e/test_*.py; do
  [ -f "$t" ] && run_suite "e2e: ${t#tests/e2e/}" python3 "$t"
done

# The suites that cover the message path, again with turns on two turn
# threads (parley serve --threads 3: the loop and two turn threads, through
# the environment's default).
for t in persistence http bots commerce hostile hostile_http reload webchat channel_whatsapp agent analytics; do
  run_suite "e2e, 2 turn threads: test_$t.py" env PARLEY_THREADS=3 python3 "tests/e2e/test_$t.py"
done

# Every e2e suite again with the store on PostgreSQL: PARLEY_TEST_DB=postgresql
# gives each server a database of its own on the run's private server
# (tests/e2e/harness.py); the few cases about SQLite itself are skips there.
if [ -n "${PARLEY_TEST_PG:-}" ]; then
  for t in tests/e2e/test_*.py; do
    # (not those whose subject has no store: parley check's static checks,
    # the proxies', systemd's and logrotate's files, the log file, the
    # terminal chat, which keeps its sessions in memory, parley understand)
    case "$t" in
      */test_check.py | */test_proxy.py | */test_deploy.py | */test_log_file.py | */test_chat.py | */test_understand_cli.py) continue ;;
    esac
    [ -f "$t" ] && run_suite "e2e on postgresql: ${t#tests/e2e/}" env PARLEY_TEST_DB=postgresql python3 "$t"
  done
  # and the suites of the message path with two turn threads, whose store
  # calls made on the loop for a turn wait on the network here
  for t in persistence http catalog_csv commerce webchat channel_whatsapp agent; do
    run_suite "e2e on postgresql, 2 turn threads: test_$t.py" \
      env PARLEY_THREADS=3 PARLEY_TEST_DB=postgresql python3 "tests/e2e/test_$t.py"
  done
else
  no_pg_for_e2e() {
    echo "1..1"
    echo "not ok 1 - no PostgreSQL server for the e2e suites: PARLEY_TEST_PG is not set (see \"pg: a private server for the run\")"
    return 1
  }
  run_suite "e2e on postgresql: no server" no_pg_for_e2e
fi

# The web chat widget and the agent console in a real browser (Debian's
# Chromium driven by playwright-core, tests/browser/run.mjs). Without node,
# Chromium or the npm packages the suite fails and says what is missing.
browser_suite() {
  if ! command -v node >/dev/null 2>&1; then
    echo "1..1"
    echo "not ok 1 - node is not installed: tools/deps.sh test installs it (Debian package nodejs)"
    return 1
  fi
  node tests/browser/run.mjs
}
run_suite "browser: widget and agent console" browser_suite

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
