#!/usr/bin/env bash
# Command-line usage of the tools and ./run: --help prints usage naming
# every option and exits 0; a bad option or subcommand prints a message
# and the usage on stderr and exits 2.  TAP output.
# usage: test-cli.sh SOURCE_ROOT BUILD_DIR
set -uo pipefail
src=$1
build=$2
n=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { # ok CONDITION-STATUS DESCRIPTION
    n=$((n + 1))
    if [ "$1" = 0 ]; then
        echo "ok $n - $2"
    else
        echo "not ok $n - $2"
        failed=$((failed + 1))
        sed 's/^/#   /' "$tmp/out" "$tmp/err" | tail -n 20
    fi
}

# expect STATUS STREAM PATTERN... -- COMMAND...: exit STATUS, and every
# PATTERN (grep -E) found in STREAM (out or err)
expect() {
    local want=$1 stream=$2 pats=() st r=0 p
    shift 2
    while [ "$1" != -- ]; do pats+=("$1"); shift; done
    shift
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    st=$?
    [ "$st" = "$want" ] || r=1
    for p in "${pats[@]}"; do
        grep -Eq -- "$p" "$tmp/$stream" || r=1
    done
    ok $r "$(basename "$1") ${*:2}: exit $st (want $want)"
}

sim=$build/tools/sel4-vmm-sim/sel4-vmm-sim
demo=$build/tools/sel4-vmm-sim/sel4-vmm-demo
bench=$build/bench/rpc-pingpong

expect 0 out '--socket=PATH' '--qmp=PATH' '--hmp=CMD' '--timeout=S' \
    '--hold=S' 'Exit status' -- "$sim" --help
expect 2 err 'Unknown option --bogus' 'see --help' -- "$sim" --socket /x --bogus
expect 2 err 'socket PATH is required' -- "$sim"
expect 2 err 'only after "--"' -- "$sim" --socket /x qemu
expect 2 err 'hmp only with --qmp' -- "$sim" --socket /x --hmp 'info sel4'

expect 0 out '--qemu=PATH' '--loop=LOOP' '--trace=FILE' '--workdir=DIR' \
    'Exit status' 'run as root' -- "$demo" --help
expect 2 err 'Unknown option --bogus' -- "$demo" --bogus
expect 2 err 'is required' -- "$demo"
expect 2 err "thread, thread-batch, aio or uring, not 'fast'" -- "$demo" --qemu /bin/true --loop fast

expect 0 out 'usage: rpc-pingpong' '--quick' '--iterations N' '--json FILE' \
    '--modes' 'Modes: .*uring_batch32' -- "$bench" --help
expect 2 err 'usage: rpc-pingpong' -- "$bench" --bogus
expect 2 err 'from 1000 to 100000000' -- "$bench" --iterations 5
expect 2 err "unknown mode 'nope'" -- "$bench" --modes nope

expect 0 out 'usage: ./run COMMAND' 'demo' 'test' 'guest' 'bench' 'build' -- "$src/run" help
expect 2 err "unknown command 'bogus'" 'usage: ./run COMMAND' -- "$src/run" bogus
expect 2 err "unknown option '--slow'" 'usage: ./run' -- "$src/run" bench --slow
expect 2 err "unknown option 'msi'" 'usage: ./run' -- "$src/run" guest msi

lg=$build/tests/test-linux-guest
expect 2 err 'usage: test-linux-guest QEMU IMAGE_DIR LOOP_OPTIONS' -- "$lg"
expect 2 err "unknown argument 'msi'" -- "$lg" /bin/true /x loop=uring msi
expect 2 err 'usage: test-vmm-proxy QEMU_BINARY' -- "$build/tests/test-vmm-proxy"

expect 0 out 'qemu-virtio-start \[--dry-run\] NAME' 'QEMU=PATH' 'ACCEL=' 'ARGS=' \
    -- "$src/contrib/systemd/qemu-virtio-start" --help
expect 2 err "unknown option '--now'" -- "$src/contrib/systemd/qemu-virtio-start" --now x
expect 0 out 'install.sh \[--root DIR\] \[--qemu PATH\]' \
    -- "$src/contrib/systemd/install.sh" --help
expect 2 err "unknown argument 'x'" -- "$src/contrib/systemd/install.sh" x

echo "1..$n"
[ $failed = 0 ]
