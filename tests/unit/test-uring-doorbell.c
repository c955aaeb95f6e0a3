/*
 * Unit tests for io/uring_doorbell.c
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * One small test per behaviour.  Most run in three modes: io_uring with
 * multishot poll ("uring"), io_uring with one-shot polls re-armed after
 * every wake-up ("oneshot"), and the poll(2) fallback ("poll").
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "io/uring_doorbell.h"
#include "fd-count.h"

typedef struct Mode {
    const char *name;
    unsigned flags;
} Mode;

static const Mode modes[] = {
    { "uring", 0 },
    { "oneshot", UD_FLAG_NO_MULTISHOT },
    { "poll", UD_FLAG_POLL },
};

/* What a doorbell handler saw. */
typedef struct Hits {
    UringDoorbell *ud;
    unsigned calls;
    uint64_t total;
    uint64_t last;
    unsigned rings;         /* uring_doorbell_ring() calls per handler call */
    int remove_index;       /* remove this doorbell from the handler, or -1 */
    int wait_ret;           /* uring_doorbell_wait() from the handler */
    bool try_wait;
    GMainLoop *quit_loop;   /* quit when @total reaches @quit_at */
    uint64_t quit_at;
    int write_fd;           /* write 1 here from the handler, or -1 */
    int add_fd;             /* add this eventfd from the handler, or -1 */
    struct Hits *add_hits;  /* ... with this handler state */
    int added_index;        /* ... and the index it got */
    bool add_remove;        /* ... then remove it again at once */
} Hits;

static void hits_init(Hits *h, UringDoorbell *ud)
{
    *h = (Hits) {
        .ud = ud, .remove_index = -1, .write_fd = -1, .add_fd = -1,
        .added_index = -1,
    };
}

static void efd_signal(int fd, uint64_t v)
{
    g_assert_cmpint(write(fd, &v, sizeof(v)), ==, sizeof(v));
}

static void hits_cb(void *opaque, uint64_t count)
{
    Hits *h = opaque;
    unsigned i;

    h->calls++;
    h->total += count;
    h->last = count;
    for (i = 0; i < h->rings; i++) {
        uring_doorbell_ring(h->ud);
    }
    if (h->remove_index >= 0) {
        uring_doorbell_remove(h->ud, h->remove_index);
    }
    if (h->write_fd >= 0) {
        efd_signal(h->write_fd, 1);
    }
    if (h->add_fd >= 0) {
        h->added_index = uring_doorbell_add(h->ud, h->add_fd,
                                            UD_KIND_EVENTFD, hits_cb,
                                            h->add_hits);
        g_assert_cmpint(h->added_index, >=, 0);
        if (h->add_remove) {
            uring_doorbell_remove(h->ud, h->added_index);
        }
        h->add_fd = -1;
    }
    if (h->try_wait) {
        h->wait_ret = uring_doorbell_wait(h->ud, 0);
    }
    if (h->quit_loop && h->total >= h->quit_at) {
        g_main_loop_quit(h->quit_loop);
    }
}

static int efd_new(bool nonblock)
{
    int fd = eventfd(0, EFD_CLOEXEC | (nonblock ? EFD_NONBLOCK : 0));

    g_assert_cmpint(fd, >=, 0);
    return fd;
}

static bool readable(int fd, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    return poll(&pfd, 1, timeout_ms) == 1;
}

/* The eventfd's counter, reset to 0; 0 when it was not readable. */
static uint64_t efd_take(int fd)
{
    uint64_t v = 0;

    if (readable(fd, 0)) {
        g_assert_cmpint(read(fd, &v, sizeof(v)), ==, sizeof(v));
    }
    return v;
}

static UringDoorbell *engine_new(unsigned flags)
{
    GError *err = NULL;
    UringDoorbell *ud = uring_doorbell_new(64, flags, &err);

    g_assert_no_error(err);
    g_assert_nonnull(ud);
    if (!(flags & UD_FLAG_POLL) && !uring_doorbell_is_uring(ud)) {
        uring_doorbell_free(ud);
        g_test_skip("io_uring unavailable");
        return NULL;
    }
    g_assert_cmpint(uring_doorbell_is_uring(ud), ==, !(flags & UD_FLAG_POLL));
    return ud;
}

static int add_efd(UringDoorbell *ud, int fd, Hits *h)
{
    int index = uring_doorbell_add(ud, fd, UD_KIND_EVENTFD, hits_cb, h);

    g_assert_cmpint(index, >=, 0);
    return index;
}

static UringDoorbellStats stats_of(UringDoorbell *ud)
{
    UringDoorbellStats st;

    uring_doorbell_get_stats(ud, &st);
    return st;
}

/* A thread that writes 1 to an eventfd after a delay. */
typedef struct Writer {
    int fd;
    unsigned times;
    unsigned delay_ms;
} Writer;

static gpointer writer_thread(gpointer opaque)
{
    Writer *w = opaque;
    unsigned i;

    for (i = 0; i < w->times; i++) {
        g_usleep(w->delay_ms * 1000);
        efd_signal(w->fd, 1);
    }
    return NULL;
}

/*
 * A watchdog that writes 1 to @fd unless cancelled within 3 s: turns a
 * read that would block forever into a wrong count.
 */
typedef struct Watchdog {
    GMutex lock;
    GCond cond;
    bool done;
    bool fired;
    int fd;
    GThread *thread;
} Watchdog;

static gpointer watchdog_thread(gpointer opaque)
{
    Watchdog *w = opaque;
    gint64 end = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;

    g_mutex_lock(&w->lock);
    while (!w->done && g_cond_wait_until(&w->cond, &w->lock, end)) {
        /* spurious wake-up or done */
    }
    if (!w->done) {
        w->fired = true;
        efd_signal(w->fd, 1);
    }
    g_mutex_unlock(&w->lock);
    return NULL;
}

static void watchdog_start(Watchdog *w, int fd)
{
    g_mutex_init(&w->lock);
    g_cond_init(&w->cond);
    w->done = false;
    w->fired = false;
    w->fd = fd;
    w->thread = g_thread_new("watchdog", watchdog_thread, w);
}

static bool watchdog_stop(Watchdog *w)
{
    g_mutex_lock(&w->lock);
    w->done = true;
    g_cond_signal(&w->cond);
    g_mutex_unlock(&w->lock);
    g_thread_join(w->thread);
    g_mutex_clear(&w->lock);
    g_cond_clear(&w->cond);
    return w->fired;
}

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

/* The GSource runs the handlers from a GMainLoop. */
static gboolean loop_timeout(gpointer opaque)
{
    g_main_loop_quit(opaque);
    return G_SOURCE_REMOVE;
}

static gboolean count_dispatch(gpointer opaque)
{
    (*(unsigned *)opaque)++;
    return G_SOURCE_CONTINUE;
}

static void test_gsource(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    Writer w = { .fd = efd_new(false), .times = 3, .delay_ms = 10 };
    GMainContext *ctx;
    GMainLoop *loop;
    GSource *src, *guard;
    GThread *thread;
    unsigned dispatches = 0;
    Hits h;

    if (!ud) {
        close(w.fd);
        return;
    }
    ctx = g_main_context_new();
    loop = g_main_loop_new(ctx, FALSE);
    src = uring_doorbell_source_new(ud);
    g_source_set_callback(src, count_dispatch, &dispatches, NULL);
    g_source_attach(src, ctx);
    guard = g_timeout_source_new(5000);
    g_source_set_callback(guard, loop_timeout, loop, NULL);
    g_source_attach(guard, ctx);

    hits_init(&h, ud);
    h.quit_loop = loop;
    h.quit_at = w.times;
    add_efd(ud, w.fd, &h);      /* added after the source: still watched */

    thread = g_thread_new("writer", writer_thread, &w);
    g_main_loop_run(loop);
    g_thread_join(thread);

    g_assert_cmpuint(h.total, ==, w.times);
    g_assert_cmpuint(dispatches, >=, 1);
    g_assert_cmpuint(dispatches, <=, w.times);

    g_source_destroy(guard);
    g_source_unref(guard);
    g_source_destroy(src);
    g_source_unref(src);
    g_main_loop_unref(loop);
    g_main_context_unref(ctx);
    uring_doorbell_free(ud);
    close(w.fd);
}

/*
 * get_fd() is readable exactly when wait(ud, 0) has work, and wait(ud, 0)
 * leaves its re-arms submitted, so an external loop may sleep on the fd.
 */
static void test_get_fd(gconstpointer data)
{
    const Mode *m = data;
    UringDoorbell *ud = engine_new(m->flags);
    int fd = efd_new(true);
    struct pollfd pfd = { .events = POLLIN };
    unsigned i;
    Hits h;

    if (!ud) {
        close(fd);
        return;
    }
    if (!uring_doorbell_is_uring(ud)) {
        g_assert_cmpint(uring_doorbell_get_fd(ud), ==, -1);
        uring_doorbell_free(ud);
        close(fd);
        return;
    }
    pfd.fd = uring_doorbell_get_fd(ud);
    g_assert_cmpint(pfd.fd, >=, 0);
    hits_init(&h, ud);
    add_efd(ud, fd, &h);
    for (i = 1; i <= 3; i++) {
        g_assert_cmpint(poll(&pfd, 1, 0), ==, 0);
        efd_signal(fd, 1);
        g_assert_cmpint(poll(&pfd, 1, 1000), ==, 1);
        g_assert_cmpint(uring_doorbell_wait(ud, 0), ==, 1);
        g_assert_cmpuint(h.calls, ==, i);
    }
    uring_doorbell_free(ud);
    close(fd);
}

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
    g_assert_cmpint(uring_doorbell_add(ud, -1, UD_KIND_EVENTFD, uio_cb, NULL),
                    ==, -EBADF);
    g_assert_cmpint(uring_doorbell_add(ud, fd, UD_KIND_EVENTFD, NULL, NULL),
                    ==, -EINVAL);
    g_assert_cmpint(uring_doorbell_add(ud, fd, (UringDoorbellKind)7, uio_cb,
                                       NULL), ==, -EINVAL);
    for (i = 0; i < UD_MAX_DOORBELLS; i++) {
        g_assert_cmpint(uring_doorbell_add(ud, fd, UD_KIND_EVENTFD, uio_cb,
                                           NULL), ==, i);
    }
    g_assert_cmpint(uring_doorbell_add(ud, fd, UD_KIND_EVENTFD, uio_cb, NULL),
                    ==, -ENOSPC);
    uring_doorbell_remove(ud, 5);
    g_assert_cmpint(uring_doorbell_add(ud, fd, UD_KIND_EVENTFD, uio_cb, NULL),
                    ==, 5);
    uring_doorbell_free(ud);
    close(fd);
}

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

static void add_mode_tests(const char *name, GTestDataFunc fn)
{
    unsigned i;

    for (i = 0; i < G_N_ELEMENTS(modes); i++) {
        char *path = g_strdup_printf("/uring-doorbell/%s/%s", modes[i].name,
                                     name);

        g_test_add_data_func(path, &modes[i], fn);
        g_free(path);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    add_mode_tests("wake-before", test_wake_before);
    add_mode_tests("wake-thread", test_wake_thread);
    add_mode_tests("timeout", test_timeout);
    add_mode_tests("batch-write", test_batch_write);
    add_mode_tests("batch-sqe", test_batch_sqe);
    add_mode_tests("batch-fn", test_batch_fn);
    add_mode_tests("ring-now", test_ring_now);
    add_mode_tests("rearm", test_rearm);
    add_mode_tests("remove", test_remove);
    add_mode_tests("remove-readd", test_remove_readd);
    add_mode_tests("remove-in-pass", test_remove_in_pass);
    add_mode_tests("add-remove-in-pass", test_add_remove_in_pass);
    add_mode_tests("stale-blocking", test_stale_blocking);
    add_mode_tests("stale-nonblock", test_stale_nonblock);
    add_mode_tests("uio", test_uio);
    add_mode_tests("uio-gone", test_uio_gone);
    add_mode_tests("ring-error-write", test_ring_error_write);
    add_mode_tests("ring-error-sqe", test_ring_error_sqe);
    add_mode_tests("busy-poll-hit", test_busy_poll_hit);
    add_mode_tests("busy-poll-miss", test_busy_poll_miss);
    add_mode_tests("wait-in-handler", test_wait_in_handler);
    add_mode_tests("gsource", test_gsource);
    add_mode_tests("get-fd", test_get_fd);
    add_mode_tests("teardown", test_teardown);
    add_mode_tests("ping-pong", test_ping_pong);
    g_test_add_func("/uring-doorbell/fallback", test_fallback);
    g_test_add_func("/uring-doorbell/bad-args", test_bad_args);

    return g_test_run();
}
