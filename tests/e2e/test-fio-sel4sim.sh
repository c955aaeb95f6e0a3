#!/usr/bin/env bash
# The fio engine (bench/fio/sel4sim.c) moves real data, in both directions:
#  1. fio writes through the simulated guest and QEMU (verify=crc32c,
#     block sizes 4k..64k, 16 in flight), reads it back the same way and
#     verifies it;
#  2. what landed in QEMU's backing file is verified by fio's psync engine
#     straight from the file (so the data went through QEMU, not only
#     around guest RAM);
#  3. data psync wrote to the file is verified through the engine;
#  4. a bad engine option is refused with a message and a non-zero exit;
#  5. sel4_drive=null-co reads zeroes where the file holds 1.'s data, and
#     the engine's line carries the drive and sel4_doorbell_ns;
#  6. numjobs=3 (--thread) share one device with three request queues:
#     each job writes and verifies its own 8 MiB through its queue, and
#     the one engine line counts three queues and every job's I/Os.
# The engine's counters must show I/Os and no protocol errors.  With
# DEVICE vhost-user, the device is vhost-user-blk-pci served by
# qemu-storage-daemon (storage-daemon/ next to QEMU) on the file, the
# counters must have read the daemon's CPU time at both ends of the job
# (-1 if it was gone; it may be 0: /proc counts in clock ticks), and 5.
# and 6. become: the engine refuses numjobs=3 with it (the daemon's
# export is one queue on the file).  With DEVICE iothread, virtio-blk is
# served by an IOThread (the bench's uring_iothread) and the counters must
# also show its guest notifies held off there (notify_suppressed, virtio's
# notify hold).  TAP output.
#
#   test-fio-sel4sim.sh FIO_ENGINE_SO QEMU LOOP [virtio-blk|vhost-user|iothread]
set -uo pipefail
engine=$1 qemu=$2 loop=$3 device=${4:-virtio-blk}
tmp=$(mktemp -d /tmp/test-fio-sel4sim-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
disk=$tmp/disk.img
stats=$tmp/stats.json
truncate -s 32M "$disk"
n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { # description, then a command that must succeed
    local what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# every job the same offsets and block sizes, so verify_only can follow
common=(--filename="$disk" --size=8M --rw=randwrite --bsrange=4k-64k
        --randseed=42 --verify=crc32c --verify_state_save=0
        --output-format=json)
sel4=(--ioengine=external:"$engine" --sel4_qemu="$qemu" --sel4_loop="$loop"
      --sel4_stats="$stats" --iodepth=16)
daemon_cpu=0 held=0
if [ "$device" = vhost-user ]; then
    sel4+=(--sel4_vhost_user="$(dirname "$qemu")/storage-daemon/qemu-storage-daemon")
    daemon_cpu=1
elif [ "$device" = iothread ]; then
    sel4+=(--sel4_iothread=1)
    held=1
fi

# no error (a verify failure is one) and reads done, from fio's JSON ($1)
fio_clean() {
    jq -e '.jobs[0].error == 0 and .jobs[0].read.total_ios > 0' \
        "$1" >/dev/null 2>&1
}
# the engine's line for the last job: I/Os, the accelerator's counters
stats_clean() {
    jq -se --argjson d "$daemon_cpu" --argjson h "$held" '.[-1].ios > 0 and
            .[-1].protocol_errors == 0 and .[-1].accel.requests > 0 and
            ($d == 0 or .[-1].daemon_cpu_us >= 0) and
            ($h == 0 or .[-1].accel.notify_suppressed > 0)' \
        "$stats" >/dev/null 2>&1
}

if [ "$device" = vhost-user ]; then echo "1..9"; else echo "1..13"; fi
fio --name=through "${common[@]}" "${sel4[@]}" --do_verify=1 \
    >"$tmp/1.json" 2>"$tmp/1.err"
check "fio writes and verifies through the engine (loop=$loop, $device)" \
    test $? -eq 0
check "no I/O or verify errors, reads were verified" fio_clean "$tmp/1.json"
check "the engine's counters: I/Os done, no protocol errors$(
    [ $held = 1 ] && echo ", the IOThread's notifies held off")" stats_clean

fio --name=through "${common[@]}" --ioengine=psync --verify_only \
    >"$tmp/2.json" 2>"$tmp/2.err"
check "the backing file holds what the guest wrote (psync verify_only)" \
    test $? -eq 0
check "... with no verify errors" fio_clean "$tmp/2.json"

fio --name=host "${common[@]}" --ioengine=psync --randseed=7 --do_verify=0 \
    >/dev/null 2>&1 &&
fio --name=host "${common[@]}" "${sel4[@]}" --randseed=7 --verify_only \
    >"$tmp/3.json" 2>"$tmp/3.err"
check "the guest reads what the host wrote (verify_only through the engine)" \
    test $? -eq 0
check "... with no verify errors" fio_clean "$tmp/3.json"

fio --name=bad --filename="$disk" --size=1M --rw=read \
    --ioengine=external:"$engine" --sel4_qemu="$qemu" --sel4_loop=bogus \
    >/dev/null 2>"$tmp/4.err"
status=$?
if [ $status -ne 0 ] && grep -q "sel4_loop must be thread, thread-batch, aio or" \
        "$tmp/4.err"; then
    ok "sel4_loop=bogus is refused with a message"
else
    not_ok "sel4_loop=bogus is refused with a message (exit $status)"
    cat "$tmp/4.err"
fi
if [ "$device" = vhost-user ]; then
    fio --name=mq "${common[@]}" "${sel4[@]}" --thread --numjobs=3 \
        >/dev/null 2>"$tmp/5.err"
    status=$?
    if [ $status -ne 0 ] && grep -q "sel4_vhost_user serves one job's file" \
            "$tmp/5.err"; then
        ok "vhost-user with numjobs=3 is refused with a message"
    else
        not_ok "vhost-user with numjobs=3 is refused with a message (exit $status)"
        cat "$tmp/5.err"
    fi
    exit $((fails > 0))
fi
# the file holds 1.'s data, not zeroes: only null-co reads zeroes
fio --name=null --filename="$disk" --size=8M --rw=read --bs=4k \
    --verify=pattern --verify_pattern=0x00 --verify_only --output-format=json \
    "${sel4[@]}" --sel4_drive=null-co --sel4_doorbell_ns=1000 \
    >"$tmp/5.json" 2>"$tmp/5.err"
check "sel4_drive=null-co: the guest reads zeroes (verify_only, pattern 0)" \
    fio_clean "$tmp/5.json"
null_line() {
    jq -se '.[-1].drive == "null-co" and .[-1].doorbell_ns == 1000 and
            .[-1].ios > 0' "$stats" >/dev/null 2>&1
}
check "... and the engine's line says drive null-co, doorbell_ns 1000" \
    null_line

: >"$stats"
fio --name=mq "${common[@]}" "${sel4[@]}" --do_verify=1 --thread \
    --numjobs=3 --offset_increment=8M --size=8M \
    >"$tmp/6.json" 2>"$tmp/6.err"
check "numjobs=3 on three queues of one device write and verify" \
    test $? -eq 0
mq_clean() {
    # fio warns of the jobs' writers on stdout, before the JSON
    sed -n '/^{/,$p' "$tmp/6.json" |
        jq -e '[.jobs[] | select(.error == 0 and .read.total_ios > 0)] |
               length == 3' >/dev/null 2>&1
}
check "... each of the three jobs with reads verified, no errors" mq_clean
mq_line() {
    jq -se 'length == 1 and .[0].queues == 3 and .[0].ios > 0 and
            .[0].protocol_errors == 0' "$stats" >/dev/null 2>&1
}
check "... one engine line: three queues, I/Os, no protocol errors" mq_line

for f in "$tmp"/[12356].err; do
    [ -s "$f" ] && { echo "# $(basename "$f"):"; sed 's/^/# /' "$f"; }
done
exit $((fails > 0))
