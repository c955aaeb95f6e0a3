/*
 * io/uring_doorbell.c, ping-pong between two threads, each with its own
 * engine: no wake-up lost or doubled.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "fixture.h"

/*
 * Ping-pong between two threads, each with its own engine, one eventfd
 * each way: the initiator rings with write(2), the responder with an SQE
 * that rides on its next wait.  No wake-up may be lost or doubled.
 */
#define PING_PONG_ROUNDS 1000

typedef struct Pong {
    const Mode *mode;
    int rx, tx;
    UringDoorbellRingMode ring;
    bool initiator;
    UringDoorbell *ud;
    unsigned got;
    uint64_t total;
    bool lost;
    UringDoorbellStats stats;
    gint *stop;
} Pong;

static void pong_cb(void *opaque, uint64_t count)
{
    Pong *p = opaque;

    p->got++;
    p->total += count;
    if (!p->initiator || p->got < PING_PONG_ROUNDS) {
        uring_doorbell_ring(p->ud);
    }
}

static gpointer pong_thread(gpointer opaque)
{
    Pong *p = opaque;
    GError *err = NULL;
    int ret;

    p->ud = uring_doorbell_new(64, p->mode->flags, &err);
    g_assert_no_error(err);
    g_assert_cmpint(uring_doorbell_add(p->ud, p->rx, UD_KIND_EVENTFD,
                                       pong_cb, p), >=, 0);
    uring_doorbell_set_peer_fd(p->ud, p->tx, p->ring);
    if (p->initiator) {
        uring_doorbell_ring(p->ud);
        while (p->got < PING_PONG_ROUNDS) {
            ret = uring_doorbell_wait(p->ud, 5000);
            g_assert_cmpint(ret, >=, 0);
            if (ret == 0) {
                p->lost = true;
                break;
            }
        }
        g_atomic_int_set(p->stop, 1);
    } else {
        while (!g_atomic_int_get(p->stop)) {
            g_assert_cmpint(uring_doorbell_wait(p->ud, 20), >=, 0);
        }
    }
    uring_doorbell_get_stats(p->ud, &p->stats);
    uring_doorbell_free(p->ud);
    return NULL;
}

static void test_ping_pong(gconstpointer data)
{
    const Mode *m = data;
    int a2b = efd_new(false), b2a = efd_new(true);
    gint stop = 0;
    Pong a = {
        .mode = m, .rx = b2a, .tx = a2b, .ring = UD_RING_WRITE,
        .initiator = true, .stop = &stop,
    };
    Pong b = {
        .mode = m, .rx = a2b, .tx = b2a, .ring = UD_RING_SQE,
        .stop = &stop,
    };
    GThread *ta, *tb;

    tb = g_thread_new("pong", pong_thread, &b);
    ta = g_thread_new("ping", pong_thread, &a);
    g_thread_join(ta);
    g_thread_join(tb);

    g_assert_false(a.lost);
    g_assert_cmpuint(a.got, ==, PING_PONG_ROUNDS);
    g_assert_cmpuint(a.total, ==, PING_PONG_ROUNDS);
    g_assert_cmpuint(b.got, ==, PING_PONG_ROUNDS);
    g_assert_cmpuint(b.total, ==, PING_PONG_ROUNDS);
    g_assert_cmpuint(a.stats.rings, ==, PING_PONG_ROUNDS);
    g_assert_cmpuint(b.stats.rings, ==, PING_PONG_ROUNDS);
    g_assert_cmpuint(a.stats.errors + b.stats.errors, ==, 0);
    g_test_message("%s: spurious a=%" G_GUINT64_FORMAT " b=%" G_GUINT64_FORMAT
                   ", rearms a=%" G_GUINT64_FORMAT " b=%" G_GUINT64_FORMAT,
                   m->name, a.stats.spurious, b.stats.spurious,
                   a.stats.rearms, b.stats.rearms);
    close(a2b);
    close(b2a);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    add_mode_tests("ping-pong", test_ping_pong);

    return g_test_run();
}
