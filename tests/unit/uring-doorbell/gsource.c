/*
 * io/uring_doorbell.c, the engine in a GLib main loop: its GSource, and
 * get_fd() for an external loop.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "fixture.h"

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

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    add_mode_tests("gsource", test_gsource);
    add_mode_tests("get-fd", test_get_fd);

    return g_test_run();
}
