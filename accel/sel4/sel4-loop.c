/*
 * seL4 accelerator: who waits for the VMM's doorbell.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 *  - thread: the deployed accelerator's shape, kept as the baseline: a
 *    thread of its own sleeps on the doorbell and serves one request at a
 *    time, taking the BQL for each access and ringing the VMM for each
 *    reply.
 *  - thread-batch: the same thread, taking up to `batch` requests per
 *    pass: notifies without the BQL, the BQL once per pass for the rest,
 *    one reply commit and one doorbell per pass.  The simplest rival of
 *    the io_uring engines: what batching alone gains.
 *  - aio: the doorbell fd is a handler of the main AioContext, the way
 *    Xen's device model serves its event channel; requests are served in
 *    batches with the BQL held, one doorbell per batch.
 *  - uring: the same batches, with the doorbell wait an io_uring request.
 *    On QEMU 10.2 it is a POLL_ADD on the AioContext's own ring
 *    (aio_add_sqe()), re-armed after each wake-up, so waiting costs no
 *    fd handler and no extra ring.  Where the AioContext has no io_uring
 *    (QEMU 10.0, or io_uring refused at start-up) io/uring_doorbell.c
 *    owns a ring, keeps a multishot POLL_ADD on the doorbell, and the
 *    ring's fd is what the AioContext watches.
 * A doorbell is only a hint: each wake-up drains it first and then serves
 * the queue until it is empty, so a doorbell merged with another loses
 * nothing.
 *
 * Each engine is one Sel4LoopOps, chosen once by sel4_loop_start() (like
 * QEMU's FDMonOps): the rest of the accelerator rings and kicks through
 * s->loop_ops and never names an engine.
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qapi/error.h"
#include "system/runstate.h"
#include <poll.h>
#include <sys/eventfd.h>
#include "sel4-internal.h"
#include "trace.h"

/*
 * Requests are served once the devices exist (START_VM, which kicks the
 * loop).  Before that, a wake-up can only be a predecessor's: requests it
 * left queued with a doorbell count it never consumed.  A machine still
 * being built would answer them all-ones (no device registered yet), and
 * the main loop's ring runs completions during init (the block layer's
 * aio_poll), so the wake-up is drained and the requests kept.
 */
static bool sel4_loop_serving(Sel4State *s)
{
    /*
     * Acquire: loop=thread decodes without the BQL, against the devices
     * START_VM published (sel4-vpci.c)
     */
    return qatomic_load_acquire(&s->started);
}

/* A doorbell wake-up of the aio and uring loops: drain it, serve. */
static void sel4_doorbell_fired(Sel4State *s)
{
    uint64_t count = sel4_doorbell_drain(s);

    sel4_stat_add(s, SEL4_STAT_DOORBELLS_IN, 1);
    trace_sel4_doorbell_wake(s->engine, count);
    sel4_doorbell_done(s, count,
                       sel4_loop_serving(s) && sel4_serve(s, s->batch));
}

/* The main-loop engines: a kick is a pass, now. */
static void sel4_loop_serve_now(Sel4State *s)
{
    sel4_serve(s, s->batch);
}

static void sel4_loop_stop_nothing(Sel4State *s)
{
}

/* ---- aio ---- */

static void sel4_aio_read(void *opaque)
{
    sel4_doorbell_fired(opaque);
}

static bool sel4_loop_start_aio(Sel4State *s, Error **errp)
{
    qemu_set_fd_handler(s->doorbell_fd, sel4_aio_read, NULL, s);
    return true;
}

static const Sel4LoopOps sel4_loop_aio = {
    .name = "aio",
    .start = sel4_loop_start_aio,
    .stop = sel4_loop_stop_nothing,
    .kick = sel4_loop_serve_now,
    .ring = sel4_ring_vmm,
};

/* Continue with loop=aio when an io_uring engine cannot. */
static void sel4_loop_fall_back_to_aio(Sel4State *s)
{
    s->loop_ops = &sel4_loop_aio;
    s->engine = sel4_loop_aio.name;
    sel4_loop_start_aio(s, NULL);
}

/* ---- uring on the AioContext's ring (QEMU 10.2) ---- */

#ifdef SEL4_HAVE_AIO_ADD_SQE
static void sel4_uring_prep(struct io_uring_sqe *sqe, void *opaque)
{
    Sel4State *s = opaque;

    io_uring_prep_poll_add(sqe, s->doorbell_fd, POLLIN);
}

static void sel4_uring_cqe(CqeHandler *cqe)
{
    Sel4State *s = container_of(cqe, Sel4State, cqe);
    int res = cqe->cqe.res;

    if (res < 0) {
        /* a poll on an fd we own only fails if the ring cannot take it */
        error_report("sel4: io_uring poll of the doorbell failed: %s; "
                     "continuing with loop=aio", strerror(-res));
        sel4_error(s, SEL4_ERR_URING, -res, 0);
        sel4_loop_fall_back_to_aio(s);
        sel4_doorbell_fired(s);
        return;
    }
    sel4_doorbell_fired(s);
    aio_add_sqe(sel4_uring_prep, s, &s->cqe);
}

static bool sel4_loop_start_shared_ring(Sel4State *s, Error **errp)
{
    s->cqe.cb = sel4_uring_cqe;
    aio_add_sqe(sel4_uring_prep, s, &s->cqe);
    return true;
}

static const Sel4LoopOps sel4_loop_uring_shared = {
    .name = "uring-shared",
    .start = sel4_loop_start_shared_ring,
    .stop = sel4_loop_stop_nothing,
    .kick = sel4_loop_serve_now,
    .ring = sel4_ring_vmm,
};

static const Sel4LoopOps *sel4_loop_shared_ring(void)
{
    return aio_has_io_uring() ? &sel4_loop_uring_shared : NULL;
}
#else
static const Sel4LoopOps *sel4_loop_shared_ring(void)
{
    return NULL;
}
#endif

/* ---- uring on a ring of our own (io/uring_doorbell.c) ---- */

#ifdef CONFIG_LINUX_IO_URING
static void sel4_ud_doorbell(void *opaque, uint64_t count)
{
    Sel4State *s = opaque;

    /* the engine drained the doorbell already */
    sel4_stat_add(s, SEL4_STAT_DOORBELLS_IN, 1);
    trace_sel4_doorbell_wake(s->engine, count);
    sel4_doorbell_done(s, count,
                       sel4_loop_serving(s) && sel4_serve(s, s->batch));
}

static void sel4_ud_ring_vmm(void *opaque)
{
    sel4_ring_vmm(opaque);
}

/* inside the engine's pass: deferred to its end, once */
static void sel4_ud_ring(Sel4State *s)
{
    uring_doorbell_ring(s->ud);
}

static void sel4_ud_ready(void *opaque)
{
    Sel4State *s = opaque;
    int r = uring_doorbell_wait(s->ud, 0);

    if (r < 0) {
        error_report_once("sel4: the doorbell ring failed: %s",
                          strerror(-r));
        sel4_error(s, SEL4_ERR_URING, -r, 0);
    }
}

static bool sel4_loop_start_own_ring(Sel4State *s, Error **errp)
{
    g_autoptr(GError) gerr = NULL;
    int r;

    s->ud = uring_doorbell_new(16, 0, &gerr);
    if (!s->ud) {
        error_setg(errp, "sel4: loop=uring: %s", gerr->message);
        return false;
    }
    if (!uring_doorbell_is_uring(s->ud)) {
        /* the engine fell back to poll(2): aio does the same, directly */
        uring_doorbell_free(s->ud);
        s->ud = NULL;
        warn_report("sel4: loop=uring: io_uring is unavailable; "
                    "using loop=aio");
        sel4_loop_fall_back_to_aio(s);
        return true;
    }
    r = uring_doorbell_add(s->ud, s->doorbell_fd,
                           s->doorbell_is_uio ? UD_KIND_UIO : UD_KIND_EVENTFD,
                           sel4_ud_doorbell, s);
    if (r < 0) {
        error_setg_errno(errp, -r, "sel4: loop=uring: cannot watch the "
                         "doorbell");
        uring_doorbell_free(s->ud);
        s->ud = NULL;
        return false;
    }
    uring_doorbell_set_peer_fn(s->ud, sel4_ud_ring_vmm, s);
    qemu_set_fd_handler(uring_doorbell_get_fd(s->ud), sel4_ud_ready, NULL, s);
    /* submit the first poll */
    sel4_ud_ready(s);
    return true;
}
#else
static bool sel4_loop_start_own_ring(Sel4State *s, Error **errp)
{
    error_setg(errp, "sel4: loop=uring: this QEMU was built without "
               "io_uring (--enable-linux-io-uring)");
    return false;
}

static void sel4_ud_ring(Sel4State *s)
{
    g_assert_not_reached();
}
#endif

static const Sel4LoopOps sel4_loop_uring_own = {
    .name = "uring-own",
    .start = sel4_loop_start_own_ring,
    .stop = sel4_loop_stop_nothing,
    .kick = sel4_loop_serve_now,
    .ring = sel4_ud_ring,
};

/* ---- thread, thread-batch ---- */

static const Sel4LoopOps sel4_loop_thread_batch;

static void *sel4_thread_fn(void *opaque)
{
    Sel4State *s = opaque;
    unsigned batch = s->loop_ops == &sel4_loop_thread_batch ? s->batch : 1;
    struct pollfd pfd[2] = {
        { .fd = s->doorbell_fd, .events = POLLIN },
        { .fd = s->thread_ctl_fd, .events = POLLIN },
    };
    uint64_t ctl, count;
    bool served;

    rcu_register_thread();
    for (;;) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            error_report("sel4: loop=thread: poll failed: %s",
                         strerror(errno));
            break;
        }
        if (pfd[1].revents &&
            read(s->thread_ctl_fd, &ctl, sizeof(ctl)) == sizeof(ctl) &&
            qatomic_read(&s->thread_stop)) {
            break;
        }
        if (pfd[0].revents & (POLLERR | POLLNVAL)) {
            error_report("sel4: loop=thread: the doorbell fd failed");
            break;
        }
        count = 0;
        if (pfd[0].revents) {
            sel4_stat_add(s, SEL4_STAT_DOORBELLS_IN, 1);
            count = sel4_doorbell_drain(s);
            trace_sel4_doorbell_wake(s->engine, count);
        }
        served = sel4_loop_serving(s) && sel4_serve_unlocked(s, batch);
        if (pfd[0].revents) {
            sel4_doorbell_done(s, count, served);
        }
    }
    rcu_unregister_thread();
    return NULL;
}

static bool sel4_loop_start_thread(Sel4State *s, Error **errp)
{
    s->thread_ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->thread_ctl_fd < 0) {
        error_setg_errno(errp, errno, "sel4: loop=thread");
        return false;
    }
    qemu_thread_create(&s->thread, "sel4-rpc", sel4_thread_fn, s,
                       QEMU_THREAD_JOINABLE);
    s->thread_running = true;
    return true;
}

/* Wake the loop thread: to serve (kick) or, with thread_stop set, to end. */
static bool sel4_thread_wake(Sel4State *s)
{
    uint64_t one = 1;

    if (write(s->thread_ctl_fd, &one, sizeof(one)) != sizeof(one)) {
        error_report("sel4: cannot wake the loop thread: %s",
                     strerror(errno));
        return false;
    }
    return true;
}

static void sel4_thread_kick(Sel4State *s)
{
    sel4_thread_wake(s);
}

static void sel4_thread_stop(Sel4State *s)
{
    if (!s->thread_running) {
        return;
    }
    qatomic_set(&s->thread_stop, true);
    if (!sel4_thread_wake(s)) {
        return;
    }
    /* it may be waiting for the BQL to finish a request */
    bql_unlock();
    qemu_thread_join(&s->thread);
    bql_lock();
    s->thread_running = false;
}

static const Sel4LoopOps sel4_loop_thread = {
    .name = "thread",
    .start = sel4_loop_start_thread,
    .stop = sel4_thread_stop,
    .kick = sel4_thread_kick,
    .ring = sel4_ring_vmm,      /* one per request, the seed's shape */
};

static const Sel4LoopOps sel4_loop_thread_batch = {
    .name = "thread-batch",
    .start = sel4_loop_start_thread,
    .stop = sel4_thread_stop,
    .kick = sel4_thread_kick,
    .ring = sel4_ring_vmm,      /* one per pass */
};

/* ---- the choice ---- */

static const Sel4LoopOps *sel4_loop_choose(Sel4State *s, Error **errp)
{
    const Sel4LoopOps *shared;

    switch (s->loop) {
    case SEL4_LOOP_THREAD:
        return &sel4_loop_thread;
    case SEL4_LOOP_THREAD_BATCH:
        return &sel4_loop_thread_batch;
    case SEL4_LOOP_AIO:
        return &sel4_loop_aio;
    default:
        break;
    }
    shared = s->uring_ring != SEL4_URING_OWN ? sel4_loop_shared_ring()
                                             : NULL;
    if (shared) {
        return shared;
    }
    if (s->uring_ring == SEL4_URING_SHARED) {
        error_setg(errp, "sel4: x-uring-ring=shared: the main loop "
                   "does not run on io_uring here");
        return NULL;
    }
    return &sel4_loop_uring_own;
}

bool sel4_loop_start(Sel4State *s, Error **errp)
{
    const Sel4LoopOps *ops = sel4_loop_choose(s, errp);

    if (!ops) {
        return false;
    }
    s->loop_ops = ops;
    s->engine = ops->name;
    if (!ops->start(s, errp)) {
        return false;
    }
    /* (start may have fallen back to another engine) */
    trace_sel4_loop_start(s->engine, s->batch, s->poll_us);
    return true;
}
