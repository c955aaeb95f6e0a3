/*
 * io/uring_doorbell.c, batching: the doorbells of one pass are served
 * together and the ring requests of a pass ring the peer once, by write(2),
 * by SQE or by a function; ring-now and ring errors.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "fixture.h"

/*
 * Several doorbells fired before one wait run in one pass; five ring
 * requests in that pass ring the peer once.
 */
static void batch_check(unsigned flags, UringDoorbellRingMode mode)
{
    UringDoorbell *ud = engine_new(flags);
    int fd[3], peer = efd_new(true);
    Hits h[3];
    UringDoorbellStats st;
    unsigned i;

    if (!ud) {
        close(peer);
        return;
    }
    uring_doorbell_set_peer_fd(ud, peer, mode);
    for (i = 0; i < 3; i++) {
        fd[i] = efd_new(true);
        hits_init(&h[i], ud);
        h[i].rings = i ? 2 : 1;     /* 1 + 2 + 2 = 5 requests */
        add_efd(ud, fd[i], &h[i]);
        efd_signal(fd[i], i + 1);
    }
    g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 3);
    for (i = 0; i < 3; i++) {
        g_assert_cmpuint(h[i].calls, ==, 1);
        g_assert_cmpuint(h[i].last, ==, i + 1);
    }
    if (mode == UD_RING_SQE && uring_doorbell_is_uring(ud)) {
        /* the write rides with the next wait's io_uring_enter */
        g_assert_cmpuint(efd_take(peer), ==, 0);
        g_assert_cmpint(uring_doorbell_wait(ud, 0), ==, 0);
    }
    g_assert_cmpuint(efd_take(peer), ==, 1);
    st = stats_of(ud);
    g_assert_cmpuint(st.passes, ==, 1);
    g_assert_cmpuint(st.wakeups, ==, 3);
    g_assert_cmpuint(st.rings, ==, 1);
    g_assert_cmpuint(st.ring_requests, ==, 5);
    g_assert_cmpuint(st.spurious, ==, 0);
    g_assert_cmpuint(st.errors, ==, 0);
    uring_doorbell_free(ud);
    for (i = 0; i < 3; i++) {
        close(fd[i]);
    }
    close(peer);
}

static void test_batch_write(gconstpointer data)
{
    const Mode *m = data;

    batch_check(m->flags, UD_RING_WRITE);
}

static void test_batch_sqe(gconstpointer data)
{
    const Mode *m = data;

    batch_check(m->flags, UD_RING_SQE);
}

static void count_ring(void *opaque)
{
    (*(unsigned *)opaque)++;
}

/* Same batching with a peer function. */
static void test_batch_fn(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    int fd = efd_new(true);
    unsigned rung = 0;
    Hits h;

    if (!ud) {
        close(fd);
        return;
    }
    uring_doorbell_set_peer_fn(ud, count_ring, &rung);
    hits_init(&h, ud);
    h.rings = 5;
    add_efd(ud, fd, &h);
    efd_signal(fd, 1);
    g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 1);
    g_assert_cmpuint(rung, ==, 1);
    g_assert_cmpuint(stats_of(ud).rings, ==, 1);
    g_assert_cmpuint(stats_of(ud).ring_requests, ==, 5);
    uring_doorbell_free(ud);
    close(fd);
}

/* Outside a pass, a ring goes out at once, in every peer mode. */
static void test_ring_now(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    int peer = efd_new(true);
    unsigned rung = 0;

    if (!ud) {
        close(peer);
        return;
    }
    uring_doorbell_ring(ud);                    /* no peer: only counted */
    uring_doorbell_set_peer_fd(ud, peer, UD_RING_WRITE);
    uring_doorbell_ring(ud);
    g_assert_cmpuint(efd_take(peer), ==, 1);
    uring_doorbell_set_peer_fd(ud, peer, UD_RING_SQE);
    uring_doorbell_ring(ud);
    g_assert_cmpuint(efd_take(peer), ==, 1);
    uring_doorbell_set_peer_fn(ud, count_ring, &rung);
    uring_doorbell_ring(ud);
    g_assert_cmpuint(rung, ==, 1);
    g_assert_cmpuint(stats_of(ud).rings, ==, 3);
    g_assert_cmpuint(stats_of(ud).ring_requests, ==, 4);
    uring_doorbell_free(ud);
    g_assert_cmpuint(efd_take(peer), ==, 0);
    close(peer);
}

/* A ring that cannot be written is counted, and logged only once. */
static void ring_error_check(unsigned flags, UringDoorbellRingMode mode)
{
    UringDoorbell *ud = engine_new(flags);
    int pfd[2];

    if (!ud) {
        return;
    }
    g_assert_cmpint(pipe(pfd), ==, 0);
    uring_doorbell_set_peer_fd(ud, pfd[0], mode);  /* the read end */
    g_test_expect_message(NULL, G_LOG_LEVEL_WARNING, "*ring*failed*");
    uring_doorbell_ring(ud);
    g_assert_cmpint(uring_doorbell_wait(ud, 0), ==, 0);    /* reaps */
    g_test_assert_expected_messages();
    uring_doorbell_ring(ud);
    g_assert_cmpint(uring_doorbell_wait(ud, 0), ==, 0);
    g_assert_cmpuint(stats_of(ud).errors, ==, 2);
    g_assert_cmpuint(stats_of(ud).ring_requests, ==, 2);
    uring_doorbell_free(ud);
    close(pfd[0]);
    close(pfd[1]);
}

static void test_ring_error_write(gconstpointer data)
{
    const Mode *m = data;

    ring_error_check(m->flags, UD_RING_WRITE);
}

static void test_ring_error_sqe(gconstpointer data)
{
    const Mode *m = data;

    ring_error_check(m->flags, UD_RING_SQE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    add_mode_tests("batch-write", test_batch_write);
    add_mode_tests("batch-sqe", test_batch_sqe);
    add_mode_tests("batch-fn", test_batch_fn);
    add_mode_tests("ring-now", test_ring_now);
    add_mode_tests("ring-error-write", test_ring_error_write);
    add_mode_tests("ring-error-sqe", test_ring_error_sqe);

    return g_test_run();
}
