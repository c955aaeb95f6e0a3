/*
 * io/uring_doorbell.c, uIO doorbells: the 4-byte irq count read, the re-
 * enable written, and a device that goes away.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "fixture.h"

/*
 * UIO doorbell, simulated with a socketpair: the "device" sends a 4-byte
 * irq count, the engine reads it and writes back a 4-byte 1.
 */
static void uio_cb(void *opaque, uint64_t count)
{
    Hits *h = opaque;

    h->calls++;
    h->last = count;
}

static void test_uio(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    uint32_t irqs, reply;
    int sv[2];
    Hits h;
    int i;

    if (!ud) {
        return;
    }
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                    ==, 0);
    hits_init(&h, ud);
    g_assert_cmpint(uring_doorbell_add(ud, sv[0], UD_KIND_UIO, uio_cb, &h),
                    >=, 0);
    for (i = 1; i <= 3; i++) {
        irqs = 41 + i;
        g_assert_cmpint(write(sv[1], &irqs, sizeof(irqs)), ==, sizeof(irqs));
        g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 1);
        g_assert_cmpuint(h.calls, ==, i);
        g_assert_cmpuint(h.last, ==, irqs);
        g_assert_true(readable(sv[1], 1000));     /* the re-enable */
        g_assert_cmpint(read(sv[1], &reply, sizeof(reply)), ==,
                        sizeof(reply));
        g_assert_cmpuint(reply, ==, 1);
    }
    g_assert_cmpuint(stats_of(ud).errors, ==, 0);
    uring_doorbell_free(ud);
    close(sv[0]);
    close(sv[1]);
}

/*
 * The UIO peer goes away: the drain sees end of file, warns once, calls
 * the handler with 0 and stops watching the fd.
 */
static void test_uio_gone(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    int sv[2];
    Hits h;

    if (!ud) {
        return;
    }
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                    ==, 0);
    hits_init(&h, ud);
    g_assert_cmpint(uring_doorbell_add(ud, sv[0], UD_KIND_UIO, uio_cb, &h),
                    >=, 0);
    close(sv[1]);
    g_test_expect_message(NULL, G_LOG_LEVEL_WARNING, "*drain of fd*");
    g_assert_cmpint(uring_doorbell_wait(ud, 1000), ==, 1);
    g_test_assert_expected_messages();
    g_assert_cmpuint(h.calls, ==, 1);
    g_assert_cmpuint(h.last, ==, 0);
    g_assert_cmpuint(stats_of(ud).errors, ==, 1);
    g_assert_cmpint(uring_doorbell_wait(ud, 50), ==, 0);
    g_assert_cmpuint(h.calls, ==, 1);
    uring_doorbell_free(ud);
    close(sv[0]);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    add_mode_tests("uio", test_uio);
    add_mode_tests("uio-gone", test_uio_gone);

    return g_test_run();
}
