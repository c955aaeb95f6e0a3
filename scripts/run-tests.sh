#!/usr/bin/env bash
# Runs `meson test` in each build dir given, then prints one summary over
# all of them, counting every TAP test case; the last line is
# "N passed, N failed, N skipped".  Dirs in SEL4_TESTED_DIRS (tested
# already, e.g. under other environment variables) join the summary;
# SEL4_MESON_TEST_ARGS are added to each meson test (e.g. a timeout
# multiplier for binaries run under emulation).
set -uo pipefail

status=0
for dir in "$@"; do
    echo "== meson test in $dir"
    # shellcheck disable=SC2086
    meson test -C "$dir" --print-errorlogs --num-processes 2 \
        ${SEL4_MESON_TEST_ARGS:-} || status=1
done
# shellcheck disable=SC2086
python3 "$(dirname "$0")/test-summary.py" ${SEL4_TESTED_DIRS:-} "$@" || status=1
exit $status
