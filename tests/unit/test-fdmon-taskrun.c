/*
 * fdmon-io_uring with COOP_TASKRUN: a completion that waits as task_work
 * is not missed by a non-blocking aio_poll().
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Built in QEMU's tree (qemu/overlay.list, tests/unit/meson.build through
 * qemu/hooks/03-fdmon-coop-taskrun.sh), not by our meson: it links QEMU's
 * util and block libraries.
 *
 * The ring of the fd monitor is set up with IORING_SETUP_COOP_TASKRUN, so
 * the kernel no longer interrupts the ring's thread to post a completion
 * that another thread caused (here: an eventfd written while its POLL_ADD
 * is armed); the completion waits as task_work for the thread's next
 * system call.  A thread that spins in user space and then calls
 * aio_poll(ctx, false) makes no system call unless fdmon asks for one:
 * fdmon_io_uring_need_wait() must see IORING_SQ_TASKRUN (TASKRUN_FLAG).
 * Without that check the handler is not run and this test fails.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/atomic.h"
#include "qemu/event_notifier.h"
#include "qemu/main-loop.h"
#include "qemu/thread.h"

#define ROUNDS 200

typedef struct {
    EventNotifier e;
    int fired;
    int written;
} Round;

static void round_read(EventNotifier *n)
{
    Round *r = container_of(n, Round, e);

    event_notifier_test_and_clear(n);
    r->fired++;
}

static void *round_write(void *opaque)
{
    Round *r = opaque;

    event_notifier_set(&r->e);
    /* the poll's completion is queued by now: the write's wake-up did it */
    qatomic_store_release(&r->written, 1);
    return NULL;
}

static void test_cross_thread_nonblocking(void)
{
    AioContext *ctx = qemu_get_aio_context();
    unsigned i, missed = 0;

    for (i = 0; i < ROUNDS; i++) {
        Round r = { 0 };
        QemuThread t;

        g_assert_cmpint(event_notifier_init(&r.e, false), ==, 0);
        aio_set_event_notifier(ctx, &r.e, round_read, NULL, NULL);
        while (aio_poll(ctx, false)) {
            /* submit the POLL_ADD */
        }

        qemu_thread_create(&t, "writer", round_write, &r,
                           QEMU_THREAD_JOINABLE);
        while (!qatomic_load_acquire(&r.written)) {
            /* spin: no system call of ours may post the completion */
        }
        aio_poll(ctx, false);
        missed += r.fired != 1;

        qemu_thread_join(&t);
        aio_set_event_notifier(ctx, &r.e, NULL, NULL, NULL);
        while (aio_poll(ctx, false)) {
            /* let the POLL_REMOVE complete */
        }
        event_notifier_cleanup(&r.e);
    }
    g_assert_cmpuint(missed, ==, 0);
}

int main(int argc, char **argv)
{
    qemu_init_main_loop(&error_abort);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/fdmon-io_uring/taskrun/cross-thread-nonblocking",
                    test_cross_thread_nonblocking);
    return g_test_run();
}
