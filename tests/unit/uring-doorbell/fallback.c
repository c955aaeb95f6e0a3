/*
 * io/uring_doorbell.c, the poll(2) fallback where io_uring is refused, and
 * the arguments the engine refuses.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "fixture.h"

/* UD_FLAG_POLL and a failing io_uring_queue_init both give poll(2). */
static void test_fallback(void)
{
    GError *err = NULL;
    UringDoorbell *ud;
    int fd = efd_new(true);
    Hits h;

    ud = uring_doorbell_new(64, UD_FLAG_POLL, &err);
    g_assert_no_error(err);
    g_assert_false(uring_doorbell_is_uring(ud));
    g_assert_cmpint(uring_doorbell_get_fd(ud), ==, -1);
    uring_doorbell_free(ud);

    /* more entries than the kernel allows: queue init fails */
    g_test_expect_message(NULL, G_LOG_LEVEL_MESSAGE,
                          "*io_uring unavailable*falling back to poll()*");
    ud = uring_doorbell_new(1u << 20, 0, &err);
    g_test_assert_expected_messages();
    g_assert_no_error(err);
    g_assert_false(uring_doorbell_is_uring(ud));
    hits_init(&h, ud);
    add_efd(ud, fd, &h);
    efd_signal(fd, 2);
    g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 1);
    g_assert_cmpuint(h.last, ==, 2);
    uring_doorbell_free(ud);
    close(fd);
}

/* Argument checks. */
static void test_bad_args(void)
{
    GError *err = NULL;
    UringDoorbell *ud;
    int fd = efd_new(true);
    unsigned i;

    g_assert_null(uring_doorbell_new(64, 1u << 7, &err));
    g_assert_nonnull(err);
    g_clear_error(&err);

    ud = engine_new(0);
    if (!ud) {
        close(fd);
        return;
    }
    g_assert_cmpint(uring_doorbell_add(ud, -1, UD_KIND_EVENTFD, hits_cb, NULL),
                    ==, -EBADF);
    g_assert_cmpint(uring_doorbell_add(ud, fd, UD_KIND_EVENTFD, NULL, NULL),
                    ==, -EINVAL);
    g_assert_cmpint(uring_doorbell_add(ud, fd, (UringDoorbellKind)7, hits_cb,
                                       NULL), ==, -EINVAL);
    for (i = 0; i < UD_MAX_DOORBELLS; i++) {
        g_assert_cmpint(uring_doorbell_add(ud, fd, UD_KIND_EVENTFD, hits_cb,
                                           NULL), ==, i);
    }
    g_assert_cmpint(uring_doorbell_add(ud, fd, UD_KIND_EVENTFD, hits_cb, NULL),
                    ==, -ENOSPC);
    uring_doorbell_remove(ud, 5);
    g_assert_cmpint(uring_doorbell_add(ud, fd, UD_KIND_EVENTFD, hits_cb, NULL),
                    ==, 5);
    uring_doorbell_free(ud);
    close(fd);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/uring-doorbell/fallback", test_fallback);
    g_test_add_func("/uring-doorbell/bad-args", test_bad_args);

    return g_test_run();
}
