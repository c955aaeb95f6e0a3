/*
 * io/uring_doorbell.c, re-arming: every wake-up of a long run is delivered
 * (multishot stays armed), and a stale wake-up never blocks the drain.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "fixture.h"

/*
 * Many consecutive wake-ups are each delivered.  With multishot poll the
 * kernel keeps the request armed (F_MORE), so it is armed only once.
 */
static void test_rearm(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    int fd = efd_new(true);
    unsigned i, n = 200;
    Hits h;

    if (!ud) {
        close(fd);
        return;
    }
    hits_init(&h, ud);
    add_efd(ud, fd, &h);
    for (i = 0; i < n; i++) {
        efd_signal(fd, 1);
        g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 1);
        g_assert_cmpuint(h.last, ==, 1);
    }
    g_assert_cmpuint(h.calls, ==, n);
    g_assert_cmpuint(stats_of(ud).spurious, ==, 0);
    if (!uring_doorbell_is_uring(ud)) {
        g_assert_cmpuint(stats_of(ud).rearms, ==, 0);
    } else if (m->flags & UD_FLAG_NO_MULTISHOT) {
        g_assert_cmpuint(stats_of(ud).rearms, ==, n + 1);
    } else {
        g_assert_cmpuint(stats_of(ud).rearms, ==, 1);
    }
    uring_doorbell_free(ud);
    close(fd);
}

/*
 * A stale wake-up: doorbell 0's handler rings doorbell 1 after the pass
 * reaped 1's CQE but before 1 was drained, so 1's drain takes both and
 * the CQE of the second write finds nothing.  The drain must not block,
 * on a blocking fd (poll-confirmed read) or an O_NONBLOCK one (EAGAIN).
 */
static void stale_check(unsigned flags, bool nonblock)
{
    UringDoorbell *ud = engine_new(flags);
    int fd0 = efd_new(nonblock), fd1 = efd_new(nonblock);
    Watchdog dog;
    Hits h0, h1;
    int ret;

    if (!ud) {
        close(fd0);
        close(fd1);
        return;
    }
    hits_init(&h0, ud);
    hits_init(&h1, ud);
    g_assert_cmpint(add_efd(ud, fd0, &h0), ==, 0);
    g_assert_cmpint(add_efd(ud, fd1, &h1), ==, 1);
    h0.write_fd = fd1;
    efd_signal(fd0, 1);
    efd_signal(fd1, 1);
    g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 2);
    g_assert_cmpuint(h1.last, ==, 2);

    h0.write_fd = -1;
    watchdog_start(&dog, fd1);
    ret = uring_doorbell_wait(ud, 1000);
    g_assert_false(watchdog_stop(&dog));
    if (uring_doorbell_is_uring(ud) && !(flags & UD_FLAG_NO_MULTISHOT)) {
        /* the multishot poll posted a CQE for the second write */
        g_assert_cmpint(ret, ==, 1);
        g_assert_cmpuint(h1.calls, ==, 2);
        g_assert_cmpuint(h1.last, ==, 0);
        g_assert_cmpuint(stats_of(ud).spurious, ==, 1);
    } else {
        /* a poll armed (or polled) after the drain sees nothing */
        g_assert_cmpint(ret, ==, 0);
        g_assert_cmpuint(h1.calls, ==, 1);
    }
    g_assert_cmpuint(h0.calls, ==, 1);
    uring_doorbell_free(ud);
    close(fd0);
    close(fd1);
}

static void test_stale_blocking(gconstpointer data)
{
    const Mode *m = data;

    stale_check(m->flags, false);
}

static void test_stale_nonblock(gconstpointer data)
{
    const Mode *m = data;

    stale_check(m->flags, true);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    add_mode_tests("rearm", test_rearm);
    add_mode_tests("stale-blocking", test_stale_blocking);
    add_mode_tests("stale-nonblock", test_stale_nonblock);

    return g_test_run();
}
