/*
 * io/uring_doorbell.c, teardown: free() with polls armed, a cancel queued
 * and a ring pending.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "fixture.h"

/*
 * free() with polls armed, a removed doorbell's cancel still queued and
 * an SQE ring pending: it submits the ring, reaps everything, closes the
 * ring fd and none of the caller's, quickly.
 */
static void test_teardown(gconstpointer data)
{
    const Mode *m = data;
    int fd[3], peer;
    unsigned before, i;
    UringDoorbell *ud;
    Hits h[3];

    for (i = 0; i < 3; i++) {
        fd[i] = efd_new(true);
    }
    peer = efd_new(true);
    before = count_fds();

    ud = engine_new(m->flags);
    if (!ud) {
        goto out;
    }
    uring_doorbell_set_peer_fd(ud, peer, UD_RING_SQE);
    for (i = 0; i < 3; i++) {
        hits_init(&h[i], ud);
        add_efd(ud, fd[i], &h[i]);
    }
    h[0].rings = 1;
    h[0].remove_index = 2;      /* its cancel waits for the next submit */
    efd_signal(fd[0], 1);
    g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 1);
    if (uring_doorbell_is_uring(ud)) {
        g_assert_cmpuint(efd_take(peer), ==, 0);   /* ring still queued */
    }
    /* free() warns, and the warning is fatal here, if it had to give up */
    uring_doorbell_free(ud);
    g_assert_cmpuint(efd_take(peer), ==, 1);
    g_assert_cmpuint(count_fds(), ==, before);

out:
    for (i = 0; i < 3; i++) {
        g_assert_cmpint(fcntl(fd[i], F_GETFD), >=, 0);  /* still ours */
        close(fd[i]);
    }
    close(peer);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    add_mode_tests("teardown", test_teardown);

    return g_test_run();
}
