#!/usr/bin/env bash
# Runs one libFuzzer target: replays its seeds (tests/fuzz/corpus/TARGET)
# and regressions (tests/fuzz/regressions/TARGET), then fuzzes for SECONDS.
# Prints one TAP line with the number of executions; a crash, a leak, a
# timeout or a failed invariant is "not ok", its input saved and shown.
#
#   run-fuzz.sh BINARY TARGET SECONDS [CORPUS_DIR [JOBS]]
#
# CORPUS_DIR (default: a temporary one) keeps what the fuzzer finds
# across runs; JOBS > 1 fuzzes in that many processes (-fork).  FUZZ_OPTS
# adds libFuzzer options (e.g. -runs=10000000: stop after that many).
set -uo pipefail

bin=$1 target=$2 seconds=$3 corpus=${4:-} jobs=${5:-1}
src=$(cd "$(dirname "$0")" && pwd)
seeds=$src/corpus/$target
regressions=$src/regressions/$target
out=$(dirname "$bin")/fuzz-$target.out
artifacts=$(dirname "$bin")/fuzz-$target-artifacts
mkdir -p "$artifacts"
tmp=
if [ -z "$corpus" ]; then
    tmp=$(mktemp -d)
    corpus=$tmp
    trap 'rm -rf "$tmp"' EXIT
fi
mkdir -p "$corpus"

echo "1..1"
fail() {
    echo "not ok 1 - fuzz-$target: $*"
    sed 's/^/# /' "$out" | tail -n 40
    for a in "$artifacts"/*; do
        [ -f "$a" ] || continue
        echo "# input $a:"
        od -A x -t x1z "$a" | head -n 20 | sed 's/^/#   /'
    done
    exit 1
}

# the seeds and every input that once crashed: each must pass as it is
inputs=("$seeds"/*)
n_reg=0
if [ -d "$regressions" ]; then
    for f in "$regressions"/*; do
        [ -f "$f" ] && inputs+=("$f") && n_reg=$((n_reg + 1))
    done
fi
"$bin" -runs=1 "${inputs[@]}" >"$out" 2>&1 ||
    fail "replaying ${#inputs[@]} seeds and regressions failed"

# shellcheck disable=SC2206
opts=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10
      -rss_limit_mb=2048 -artifact_prefix="$artifacts/" ${FUZZ_OPTS:-})
if [ "$jobs" -gt 1 ]; then
    opts+=(-fork="$jobs" -ignore_crashes=0)
fi
"$bin" "${opts[@]}" "$corpus" "$seeds" >"$out" 2>&1 ||
    fail "crashed or failed an invariant after ${seconds}s"

# -fork prints "#N: cov: ..." per job round, one process "stat::"
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1)
if [ -z "$execs" ] || [ "$jobs" -gt 1 ]; then
    execs=$(grep -oE '^#[0-9]+' "$out" | tr -d '#' | sort -n | tail -n 1)
fi
cov=$(grep -oE 'cov: [0-9]+' "$out" | tail -n 1)
[ -n "$execs" ] && [ "$execs" -gt 0 ] ||
    fail "no executions reported"
took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$out" | tail -n 1)
echo "ok 1 - fuzz-$target: $((${#inputs[@]} - n_reg)) seeds and $n_reg regressions replayed, $execs executions in ${took:-$seconds}s ($cov, jobs $jobs), 0 crashes"
