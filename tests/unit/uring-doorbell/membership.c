/*
 * io/uring_doorbell.c, adding and removing doorbells, between passes and
 * from a handler during a pass.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "fixture.h"

/* A removed doorbell's handler is not called, even if it had fired. */
static void test_remove(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    int fd = efd_new(true);
    gint64 t0;
    Hits h;
    int index;

    if (!ud) {
        close(fd);
        return;
    }
    hits_init(&h, ud);
    index = add_efd(ud, fd, &h);
    efd_signal(fd, 1);              /* its CQE may already be posted */
    uring_doorbell_remove(ud, index);
    efd_signal(fd, 1);
    t0 = g_get_monotonic_time();
    g_assert_cmpint(uring_doorbell_wait(ud, 50), ==, 0);
    /* the stale CQEs did not end the wait early */
    g_assert_cmpint(g_get_monotonic_time() - t0, >=, 45 * 1000);
    g_assert_cmpuint(h.calls, ==, 0);
    g_assert_cmpuint(efd_take(fd), ==, 2);     /* and it was not drained */
    uring_doorbell_remove(ud, index);          /* twice: harmless */
    uring_doorbell_free(ud);
    close(fd);
}

/*
 * Remove and re-add at the same index: the old request's CQEs are stale
 * (older generation) and go nowhere; the new handler gets the wake-up.
 */
static void test_remove_readd(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    int fd = efd_new(true);
    Hits old, new;
    int index;

    if (!ud) {
        close(fd);
        return;
    }
    hits_init(&old, ud);
    hits_init(&new, ud);
    index = add_efd(ud, fd, &old);
    efd_signal(fd, 1);
    uring_doorbell_remove(ud, index);
    g_assert_cmpint(add_efd(ud, fd, &new), ==, index);
    g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 1);
    g_assert_cmpuint(old.calls, ==, 0);
    g_assert_cmpuint(new.calls, ==, 1);
    g_assert_cmpuint(new.last, ==, 1);
    g_assert_cmpint(uring_doorbell_wait(ud, 20), ==, 0);
    g_assert_cmpuint(old.calls, ==, 0);
    if (uring_doorbell_is_uring(ud) && !(m->flags & UD_FLAG_NO_MULTISHOT)) {
        /* the old request's end did not pass for the new one's */
        g_assert_cmpuint(stats_of(ud).rearms, ==, 2);
    }
    uring_doorbell_free(ud);
    close(fd);
}

/*
 * A handler removes a doorbell that fired in the same pass and adds
 * another, which gets the freed index: only the new doorbell's own
 * wake-ups reach the new handler.
 */
static void test_remove_in_pass(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    int fd0 = efd_new(true), fd1 = efd_new(true), fd2 = efd_new(true);
    Hits h0, h1, h2;

    if (!ud) {
        close(fd0);
        close(fd1);
        close(fd2);
        return;
    }
    hits_init(&h0, ud);
    hits_init(&h1, ud);
    hits_init(&h2, ud);
    g_assert_cmpint(add_efd(ud, fd0, &h0), ==, 0);
    g_assert_cmpint(add_efd(ud, fd1, &h1), ==, 1);
    h0.remove_index = 1;
    h0.add_fd = fd2;
    h0.add_hits = &h2;
    efd_signal(fd0, 1);
    efd_signal(fd1, 1);
    g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 1);
    g_assert_cmpuint(h0.calls, ==, 1);
    g_assert_cmpuint(h1.calls, ==, 0);
    g_assert_cmpint(h0.added_index, ==, 1);
    g_assert_cmpuint(h2.calls, ==, 0);
    h0.remove_index = -1;
    efd_signal(fd1, 1);
    g_assert_cmpint(uring_doorbell_wait(ud, 50), ==, 0);
    g_assert_cmpuint(h1.calls, ==, 0);
    g_assert_cmpuint(h2.calls, ==, 0);
    efd_signal(fd2, 4);
    g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 1);
    g_assert_cmpuint(h2.last, ==, 4);
    uring_doorbell_free(ud);
    close(fd0);
    close(fd1);
    close(fd2);
}

/*
 * A doorbell added and removed by a handler, its fd already readable: the
 * poll and its cancel reach the kernel in one submit, while the poll's
 * first wake-up is being processed.  The cancel must still end it, or
 * free() would wait for a final CQE that never comes (and warn).
 */
static void test_add_remove_in_pass(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    int fd0 = efd_new(true), fd1 = efd_new(true);
    Hits h0, h1;

    if (!ud) {
        close(fd0);
        close(fd1);
        return;
    }
    hits_init(&h0, ud);
    hits_init(&h1, ud);
    add_efd(ud, fd0, &h0);
    h0.add_fd = fd1;
    h0.add_hits = &h1;
    h0.add_remove = true;
    efd_signal(fd1, 1);
    efd_signal(fd0, 1);
    g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 1);
    g_assert_cmpint(uring_doorbell_wait(ud, 50), ==, 0);
    g_assert_cmpuint(h1.calls, ==, 0);
    /* free() warns, and the warning is fatal here, if it had to give up */
    uring_doorbell_free(ud);
    close(fd0);
    close(fd1);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    add_mode_tests("remove", test_remove);
    add_mode_tests("remove-readd", test_remove_readd);
    add_mode_tests("remove-in-pass", test_remove_in_pass);
    add_mode_tests("add-remove-in-pass", test_add_remove_in_pass);

    return g_test_run();
}
