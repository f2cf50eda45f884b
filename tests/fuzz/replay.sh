#!/bin/sh
# tests/fuzz/replay.sh: `make test`'s quick check of the fuzz targets: each
# target's plain driver (build/fuzz/replay_NAME, `make fuzz-replay`) runs
# every file of tests/fuzz/corpus/NAME/ under ASan/UBSan and prints one TAP
# line naming the files that failed.
set -u
cd "$(dirname "$0")/../.."
failed=0
for src in tests/fuzz/fuzz_*.c; do
  name=${src#tests/fuzz/fuzz_}
  name=${name%.c}
  if [ -x "build/fuzz/replay_$name" ]; then
    "build/fuzz/replay_$name" "$name" "tests/fuzz/corpus/$name" || failed=1
  else
    echo "not ok - $name: build/fuzz/replay_$name is not built (make fuzz-replay)"
    failed=1
  fi
done
exit $failed
