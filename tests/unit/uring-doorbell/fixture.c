/*
 * The shared fixture of the io/uring_doorbell.c tests (fixture.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "fixture.h"

const Mode modes[UD_TEST_MODES] = {
    { "uring", 0 },
    { "oneshot", UD_FLAG_NO_MULTISHOT },
    { "poll", UD_FLAG_POLL },
};

void hits_init(Hits *h, UringDoorbell *ud)
{
    *h = (Hits) {
        .ud = ud, .remove_index = -1, .write_fd = -1, .add_fd = -1,
        .added_index = -1,
    };
}

void efd_signal(int fd, uint64_t v)
{
    g_assert_cmpint(write(fd, &v, sizeof(v)), ==, sizeof(v));
}

void hits_cb(void *opaque, uint64_t count)
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

int efd_new(bool nonblock)
{
    int fd = eventfd(0, EFD_CLOEXEC | (nonblock ? EFD_NONBLOCK : 0));

    g_assert_cmpint(fd, >=, 0);
    return fd;
}

bool readable(int fd, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    return poll(&pfd, 1, timeout_ms) == 1;
}

/* The eventfd's counter, reset to 0; 0 when it was not readable. */
uint64_t efd_take(int fd)
{
    uint64_t v = 0;

    if (readable(fd, 0)) {
        g_assert_cmpint(read(fd, &v, sizeof(v)), ==, sizeof(v));
    }
    return v;
}

UringDoorbell *engine_new(unsigned flags)
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

int add_efd(UringDoorbell *ud, int fd, Hits *h)
{
    int index = uring_doorbell_add(ud, fd, UD_KIND_EVENTFD, hits_cb, h);

    g_assert_cmpint(index, >=, 0);
    return index;
}

UringDoorbellStats stats_of(UringDoorbell *ud)
{
    UringDoorbellStats st;

    uring_doorbell_get_stats(ud, &st);
    return st;
}

gpointer writer_thread(gpointer opaque)
{
    Writer *w = opaque;
    unsigned i;

    for (i = 0; i < w->times; i++) {
        g_usleep(w->delay_ms * 1000);
        efd_signal(w->fd, 1);
    }
    return NULL;
}

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

void watchdog_start(Watchdog *w, int fd)
{
    g_mutex_init(&w->lock);
    g_cond_init(&w->cond);
    w->done = false;
    w->fired = false;
    w->fd = fd;
    w->thread = g_thread_new("watchdog", watchdog_thread, w);
}

bool watchdog_stop(Watchdog *w)
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

void add_mode_tests(const char *name, GTestDataFunc fn)
{
    unsigned i;

    for (i = 0; i < G_N_ELEMENTS(modes); i++) {
        char *path = g_strdup_printf("/uring-doorbell/%s/%s", modes[i].name,
                                     name);

        g_test_add_data_func(path, &modes[i], fn);
        g_free(path);
    }
}
