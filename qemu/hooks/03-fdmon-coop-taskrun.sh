#!/usr/bin/env bash
# Hook: util/fdmon-io_uring.c sets its ring up with IORING_SETUP_COOP_TASKRUN
# and IORING_SETUP_TASKRUN_FLAG (Linux 5.19; without them, as before).
#
# Why: the kernel posts many completions through task_work (a read that
# io-wq served, as every read of a tmpfs file is on Linux 6.18; a poll
# that fired).
# Without COOP_TASKRUN it interrupts the ring's thread with an IPI to run
# that task_work wherever the thread is, even when it is busy in QEMU and
# will enter the kernel within microseconds anyway. With it, the work waits
# for the thread's next system call; a thread asleep in ppoll() or
# io_uring_enter() is woken as before. TASKRUN_FLAG sets IORING_SQ_TASKRUN
# while such work waits: fdmon_io_uring_need_wait() then says so, so that
# a non-blocking aio_poll() or a polling IOThread enters the kernel for it
# (liburing's io_uring_submit_and_wait() does, seeing the flag), instead of
# finding the CQ empty.
# tests/unit/test-fdmon-taskrun.c (overlay) checks the second part: the
# hook lists it in tests/unit/meson.build.
# Tested: QEMU 10.2.2 (strict there); elsewhere a missing anchor only
# leaves the ring as it was.
#
# Runs in the QEMU source tree; idempotent; every anchor is checked.
set -euo pipefail

HOOK=03-fdmon-coop-taskrun.sh
. "$SEL4_REPO_ROOT/qemu/hooks/anchor.bash"

f=util/fdmon-io_uring.c
t=tests/unit/meson.build
setup='    ret = io_uring_queue_init(FDMON_IO_URING_ENTRIES, &ctx->fdmon_io_uring, 0);'
wait='    /* Are there pending sqes to submit? */'
if grep -qF 'IORING_SETUP_COOP_TASKRUN' "$f"; then
    :   # done
elif ! grep -qxF -- "$setup" "$f" || ! grep -qxF -- "$wait" "$f"; then
    # both anchors first: the two edits go in together or not at all
    case ${SEL4_QEMU_VERSION:-} in
    10.2.*) fail "$f: the ring's setup or need_wait() is not where 10.2 has it" ;;
    esac
    echo "$HOOK: $f is not 10.2's: its ring keeps the kernel's IPIs" >&2
    exit 0
else
    at "$f" 'bool fdmon_io_uring_setup(AioContext *ctx, Error **errp)' \
        "$setup" instead '    /*
     * Completions posted through task_work (io-wq, poll wake-ups) wait for
     * this thread'"'"'s next system call instead of interrupting it with an
     * IPI; IORING_SQ_TASKRUN says when some wait (fdmon_io_uring_need_wait()).
     */
    ret = io_uring_queue_init(FDMON_IO_URING_ENTRIES, &ctx->fdmon_io_uring,
                              IORING_SETUP_COOP_TASKRUN |
                              IORING_SETUP_TASKRUN_FLAG);
    if (ret == -EINVAL) {
        /* Linux < 5.19 */
        ret = io_uring_queue_init(FDMON_IO_URING_ENTRIES,
                                  &ctx->fdmon_io_uring, 0);
    }'
    at "$f" 'static bool fdmon_io_uring_need_wait(AioContext *ctx)' \
        "$wait" before '    /* Are completions waiting for a system call to post them? */
    if (IO_URING_READ_ONCE(*ctx->fdmon_io_uring.sq.kflags) &
        IORING_SQ_TASKRUN) {
        return true;
    }
'
fi

if [ -f tests/unit/test-fdmon-taskrun.c ] &&
    ! grep -qF "'test-fdmon-taskrun'" "$t"; then
    at "$t" '' "    'test-aio-multithread': [testblock]," after \
        "    'test-fdmon-taskrun': [testblock],"
fi
