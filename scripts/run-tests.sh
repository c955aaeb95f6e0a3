#!/usr/bin/env bash
# Runs `meson test` in each build dir given, then prints one summary over
# all of them, counting every TAP test case; the last line is
# "N passed, N failed, N skipped".
set -uo pipefail

status=0
for dir in "$@"; do
    echo "== meson test in $dir"
    meson test -C "$dir" --print-errorlogs --num-processes 2 || status=1
done
python3 "$(dirname "$0")/test-summary.py" "$@" || status=1
exit $status
