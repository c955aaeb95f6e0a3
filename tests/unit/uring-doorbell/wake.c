/*
 * io/uring_doorbell.c, waking up: a doorbell rung before the wait or by
 * another thread is delivered with its count, a wait times out without one,
 * and a handler may not wait.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "fixture.h"

/* A doorbell rung before the wait is delivered with its count. */
static void test_wake_before(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    int fd = efd_new(true);
    Hits h;

    if (!ud) {
        close(fd);
        return;
    }
    hits_init(&h, ud);
    add_efd(ud, fd, &h);
    efd_signal(fd, 3);
    g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 1);
    g_assert_cmpuint(h.calls, ==, 1);
    g_assert_cmpuint(h.last, ==, 3);
    g_assert_cmpuint(efd_take(fd), ==, 0);     /* the engine drained it */
    g_assert_cmpuint(stats_of(ud).wakeups, ==, 1);
    uring_doorbell_free(ud);
    close(fd);
}

/* A doorbell rung by another thread wakes a sleeping wait. */
static void test_wake_thread(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    Writer w = { .fd = efd_new(false), .times = 1, .delay_ms = 20 };
    GThread *thread;
    Hits h;

    if (!ud) {
        close(w.fd);
        return;
    }
    hits_init(&h, ud);
    add_efd(ud, w.fd, &h);      /* a blocking fd, as callers may pass */
    thread = g_thread_new("writer", writer_thread, &w);
    g_assert_cmpint(uring_doorbell_wait(ud, 5000), ==, 1);
    g_thread_join(thread);
    g_assert_cmpuint(h.calls, ==, 1);
    g_assert_cmpuint(h.last, ==, 1);
    uring_doorbell_free(ud);
    close(w.fd);
}

/* Nothing rung: the wait times out with 0, or returns at once for 0 ms. */
static void test_timeout(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    int fd = efd_new(true);
    gint64 t0;
    Hits h;

    if (!ud) {
        close(fd);
        return;
    }
    hits_init(&h, ud);
    add_efd(ud, fd, &h);
    t0 = g_get_monotonic_time();
    g_assert_cmpint(uring_doorbell_wait(ud, 50), ==, 0);
    g_assert_cmpint(g_get_monotonic_time() - t0, >=, 45 * 1000);
    /* wait(0) must not block: it would sleep forever, not for a second */
    t0 = g_get_monotonic_time();
    g_assert_cmpint(uring_doorbell_wait(ud, 0), ==, 0);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, G_USEC_PER_SEC);
    g_assert_cmpuint(h.calls, ==, 0);
    uring_doorbell_free(ud);
    close(fd);
}

/* Handlers may not wait. */
static void test_wait_in_handler(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    int fd = efd_new(true);
    Hits h;

    if (!ud) {
        close(fd);
        return;
    }
    hits_init(&h, ud);
    h.try_wait = true;
    add_efd(ud, fd, &h);
    efd_signal(fd, 1);
    g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 1);
    g_assert_cmpint(h.wait_ret, ==, -EBUSY);
    uring_doorbell_free(ud);
    close(fd);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    add_mode_tests("wake-before", test_wake_before);
    add_mode_tests("wake-thread", test_wake_thread);
    add_mode_tests("timeout", test_timeout);
    add_mode_tests("wait-in-handler", test_wait_in_handler);

    return g_test_run();
}
