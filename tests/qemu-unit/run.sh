#!/usr/bin/env bash
# run.sh NAME: QEMU's unit test tests/unit/NAME, from the QEMU that
# qemu/build.sh built with our overlay and hooks ($SEL4_BUILD_ROOT/qemu;
# ./run test builds those of tests.txt), as TAP. A test that
# is not built, or that skips anything, fails: every case here can run.
set -euo pipefail

bin=$SEL4_BUILD_ROOT/qemu/tests/unit/$1
if [ ! -x "$bin" ]; then
    echo "Bail out! $bin is not built (./run test builds those of tests/qemu-unit/tests.txt)"
    exit 1
fi
cd "$(dirname "$bin")"
out=$("$bin" --tap) || { printf '%s\n' "$out"; exit 1; }
printf '%s\n' "$out"
if grep -q '# SKIP' <<<"$out"; then
    echo "Bail out! $1 skipped a case (above): it must run here"
    exit 1
fi
