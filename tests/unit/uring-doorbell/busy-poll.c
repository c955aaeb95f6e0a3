/*
 * io/uring_doorbell.c, busy polling before sleeping: a poll function that
 * finds work, and one that does not.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "fixture.h"

/* Busy-poll finds work: every handler runs with 0, no doorbell needed. */
typedef struct Poller {
    unsigned calls;
    unsigned hit_at;        /* return true from this call on; 0: never */
} Poller;

static bool poller_fn(void *opaque)
{
    Poller *p = opaque;

    p->calls++;
    return p->hit_at && p->calls >= p->hit_at;
}

static void test_busy_poll_hit(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    int fd0 = efd_new(true), fd1 = efd_new(true);
    Poller p = { .hit_at = 3 };
    Hits h0, h1;

    if (!ud) {
        close(fd0);
        close(fd1);
        return;
    }
    hits_init(&h0, ud);
    hits_init(&h1, ud);
    h1.rings = 2;
    add_efd(ud, fd0, &h0);
    add_efd(ud, fd1, &h1);
    uring_doorbell_set_poll(ud, 100 * 1000, poller_fn, &p);
    g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 2);
    g_assert_cmpuint(p.calls, ==, 3);
    g_assert_cmpuint(h0.calls, ==, 1);
    g_assert_cmpuint(h0.last, ==, 0);
    g_assert_cmpuint(h1.calls, ==, 1);
    g_assert_cmpuint(stats_of(ud).polled_hits, ==, 1);
    g_assert_cmpuint(stats_of(ud).spurious, ==, 0);
    g_assert_cmpuint(stats_of(ud).passes, ==, 1);
    /* wait(0) never busy-polls */
    g_assert_cmpint(uring_doorbell_wait(ud, 0), ==, 0);
    g_assert_cmpuint(p.calls, ==, 3);
    uring_doorbell_free(ud);
    close(fd0);
    close(fd1);
}

/* Busy-poll stops early when a doorbell's CQE is already there. */
static void test_busy_poll_miss(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    int fd = efd_new(true);
    Poller p = { .hit_at = 0 };
    gint64 t0;
    Hits h;

    if (!ud) {
        close(fd);
        return;
    }
    hits_init(&h, ud);
    add_efd(ud, fd, &h);
    /*
     * On io_uring, a ready doorbell ends the busy-poll long before its
     * 3 s run out; the poll(2) fallback polls the whole time.
     */
    uring_doorbell_set_poll(ud, uring_doorbell_is_uring(ud) ?
                            3 * G_USEC_PER_SEC : 100 * 1000, poller_fn, &p);
    efd_signal(fd, 1);
    t0 = g_get_monotonic_time();
    g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 1);
    if (uring_doorbell_is_uring(ud)) {
        g_assert_cmpint(g_get_monotonic_time() - t0, <, 2 * G_USEC_PER_SEC);
    }
    g_assert_cmpuint(p.calls, >=, 1);
    g_assert_cmpuint(h.last, ==, 1);
    g_assert_cmpuint(stats_of(ud).polled_hits, ==, 0);
    uring_doorbell_free(ud);
    close(fd);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    add_mode_tests("busy-poll-hit", test_busy_poll_hit);
    add_mode_tests("busy-poll-miss", test_busy_poll_miss);

    return g_test_run();
}
