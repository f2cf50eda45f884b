#!/bin/sh
# tests/lua_globals.sh: parley's own Lua modules must not write globals (a
# missing `local` leaks between bots that share nothing else, and a forward
# reference that is really a global only fails when that path runs). One TAP
# test per module: luac's listing shows every write to _ENV.
cd "$(dirname "$0")/.."
n=0
for f in runtime/lua/*.lua runtime/lua/parley/*.lua; do
  n=$((n + 1))
  writes=$(luac5.4 -p -l "$f" | grep 'SETTABUP.*_ENV' | sed -E 's/.*\[([0-9]+)\].*_ENV "([^"]*)".*/line \1: \2/')
  if [ -z "$writes" ]; then
    echo "ok $n - $f writes no globals"
  else
    echo "not ok $n - $f writes globals"
    echo "$writes" | sed 's/^/# /'
  fi
done
echo "1..$n"
