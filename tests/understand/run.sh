#!/bin/sh
# tests/understand/run.sh: checks the labelled corpora of c:understand
# (tests/understand/corpus/BOT.LOCALE.json, README.md beside this file) with
# `parley understand --corpus`, each bot's files against the bot whose
# bot.json is named BOT (the default bot, examples/*, tests/bots/*).
#
#   tests/understand/run.sh --bots            the names of the bots with a corpus
#   tests/understand/run.sh BOT [OPTION ...]  that bot's corpus files; the options
#                                             go to parley understand (--tap,
#                                             --bench=N, --min-exact X, ...)
# Exits as parley understand does: 1 when a file is under its thresholds.
set -eu
cd "$(dirname "$0")/../.."
corpus=tests/understand/corpus

# The folder of the bot named $1, or nothing.
bot_dir() {
  for dir in . examples/* tests/bots/*; do
    [ -f "$dir/bot.json" ] || continue
    name=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("name", ""))' "$dir/bot.json")
    if [ "$name" = "$1" ]; then
      echo "$dir"
      return
    fi
  done
}

if [ "${1:-}" = "--bots" ]; then
  for f in "$corpus"/*.*.json; do basename "$f" | cut -d. -f1; done | sort -u
  exit 0
fi
[ $# -ge 1 ] || { echo "usage: tests/understand/run.sh --bots | BOT [OPTION ...]" >&2; exit 2; }
bot=$1
shift
dir=$(bot_dir "$bot")
[ -n "$dir" ] || { echo "tests/understand/run.sh: no bot named '$bot' (., examples/*, tests/bots/*)" >&2; exit 2; }
exec ./parley understand "$dir" --corpus "$corpus/$bot".*.json "$@"
