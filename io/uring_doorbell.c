/*
 * io_uring doorbell engine
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Why io_uring: the device model sleeps until one of a few doorbell fds
 * (eventfds from the simulated VMM, or a UIO device on seL4) fires, and
 * after each batch of work it rings the peer.  A plain poll(2) loop costs
 * one syscall to sleep plus one to ring; with io_uring the poll requests
 * stay armed in the kernel between waits, and the ring can ride along in
 * the same io_uring_enter() that goes back to sleep.  The ring fd is
 * itself pollable, so the engine also plugs into an external event loop.
 *
 * Operations used:
 * - IORING_OP_POLL_ADD, multishot (IORING_POLL_ADD_MULTI) per doorbell: it
 *   posts one CQE per wake-up with IORING_CQE_F_MORE set while it stays
 *   armed.  A CQE without F_MORE is the request's last one and the
 *   doorbell is re-armed at the end of the pass.  Kernels without
 *   multishot poll answer -EINVAL; the engine then uses one-shot POLL_ADD
 *   (as it does with UD_FLAG_NO_MULTISHOT), which ends with every CQE.
 *   The fd is drained with read(2), not with a READ SQE: measured on an
 *   eventfd, a READ SQE costs ~2.5x a blocking read, POLL_ADD + read ~1.1x.
 * - IORING_OP_ASYNC_CANCEL (by user_data) to stop watching a doorbell.
 *   Not POLL_REMOVE: on a multishot poll whose wake-up is being processed
 *   it fails with -EALREADY and leaves the poll armed (seen on 6.18);
 *   ASYNC_CANCEL cancels it, and is retried should it say -EALREADY.
 * - IORING_OP_WRITE of a uint64 1 on the peer eventfd (UD_RING_SQE); it is
 *   submitted by the io_uring_enter() of the next wait.
 *
 * A pass reaps every available CQE, then runs each fired doorbell's
 * handler once (several CQEs of one doorbell coalesce into one drain and
 * one call), re-arms what ended, and rings the peer at most once.
 *
 * Draining: an eventfd gives its 8-byte counter; a UIO fd its 4-byte irq
 * count, then takes a 4-byte 1 that re-enables the irq, before the
 * handler runs so that an irq raised meanwhile wakes us again.  A wake-up
 * can be stale (a multishot poll fires again for data that an earlier
 * drain already took), so the read must not block: O_NONBLOCK fds answer
 * EAGAIN, blocking ones are asked with poll(2) first; the engine must be
 * the fd's only reader.  An empty drain still calls the handler, with 0
 * (doorbells are hints, work must not be lost), and counts as spurious.
 * A failed drain (EOF, error) is logged once and the doorbell is no
 * longer watched.
 *
 * Invariants:
 * - Every SQE posts exactly one final CQE (a poll's last one lacks
 *   F_MORE).  @inflight counts those not yet reaped, so free() knows when
 *   the kernel is done with the engine; @inflight_writes counts the ring
 *   writes among them, so a wait asks for one CQE more than those and a
 *   ring write's completion alone does not end the sleep.
 * - user_data is gen << 32 | index << 8 | tag.  Each add() takes a new
 *   generation; a poll CQE whose generation is not its slot's is stale
 *   (the doorbell was removed, maybe re-added) and is only accounted.
 * - A watched doorbell always has a poll request queued or in the kernel,
 *   except between its final CQE and the end of the pass that re-arms it.
 * - Handlers only run inside a pass, and a pass never nests.
 * - Outside a pass, add(), remove() and ring() submit at once.  What a
 *   pass queues stays in the SQ only until the next wait (or, for
 *   wait(ud, 0), until it returns); the GSource's prepare and check
 *   submit as well, so nothing armed is left in the SQ while a loop
 *   sleeps on the ring fd.
 * - The engine never closes nor changes the flags of a caller's fd.
 *
 * The poll(2) fallback keeps the same pass, drain and ring semantics.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>

#include "io/uring_doorbell.h"

#define UD_MIN_ENTRIES      (2 * UD_MAX_DOORBELLS)
#define UD_FREE_TIMEOUT_US  (1000 * 1000)

enum {
    UD_TAG_POLL = 1,
    UD_TAG_WRITE,
    UD_TAG_CANCEL,
};

typedef struct UdDoorbell {
    int fd;
    UringDoorbellKind kind;
    UringDoorbellFn *fn;
    void *opaque;
    uint32_t gen;
    bool nonblock;          /* O_NONBLOCK: drain without poll(2) first */
    bool armed;             /* a poll request is queued or in the kernel */
    bool armed_multishot;   /* ... and it is a multishot one */
} UdDoorbell;

struct UringDoorbell {
    bool use_uring;
    bool multishot;
    struct io_uring ring;

    UdDoorbell db[UD_MAX_DOORBELLS];
    uint32_t used;          /* slots handed out by add() */
    uint32_t active;        /* slots being watched (used minus failed) */
    uint32_t fired;         /* handler due in this pass, drain first */
    uint32_t fired_nodrain; /* handler due with count 0 (busy-poll hit) */
    uint32_t next_gen;
    unsigned fd_version;    /* bumped when the watched set changes */

    unsigned inflight;
    unsigned inflight_writes;
    bool in_pass;
    bool ring_pending;
    bool error_logged;
    unsigned n_sources;

    int peer_fd;
    UringDoorbellRingMode peer_mode;
    UringDoorbellRingFn *peer_fn;
    void *peer_opaque;

    unsigned poll_us;
    UringDoorbellPollFn *poll_fn;
    void *poll_opaque;

    UringDoorbellStats stats;
};

static const uint64_t ud_one = 1;

static uint64_t ud_udata(unsigned tag, unsigned index, uint32_t gen)
{
    return (uint64_t)gen << 32 | index << 8 | tag;
}

/* Counts an error; only the first one of an engine is logged. */
static void G_GNUC_PRINTF(2, 3) ud_error(UringDoorbell *ud,
                                         const char *fmt, ...)
{
    va_list ap;
    char *msg;

    ud->stats.errors++;
    if (ud->error_logged) {
        return;
    }
    ud->error_logged = true;
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_warning("uring_doorbell: %s (further errors are only counted)", msg);
    g_free(msg);
}

/* Submits whatever is queued in the SQ. */
static int ud_submit(UringDoorbell *ud)
{
    int ret = 0;

    if (io_uring_sq_ready(&ud->ring)) {
        ret = io_uring_submit(&ud->ring);
    } else if (io_uring_cq_has_overflow(&ud->ring)) {
        ret = io_uring_get_events(&ud->ring);
    }
    return ret < 0 ? ret : 0;
}

static struct io_uring_sqe *ud_get_sqe(UringDoorbell *ud)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ud->ring);

    if (!sqe) {
        /* SQ full: make room by submitting what is queued */
        io_uring_submit(&ud->ring);
        sqe = io_uring_get_sqe(&ud->ring);
    }
    return sqe;
}

static void ud_arm(UringDoorbell *ud, unsigned i)
{
    UdDoorbell *db = &ud->db[i];
    struct io_uring_sqe *sqe = ud_get_sqe(ud);

    if (!sqe) {
        return;     /* still unarmed: the next pass or wait retries */
    }
    if (ud->multishot) {
        io_uring_prep_poll_multishot(sqe, db->fd, POLLIN);
    } else {
        io_uring_prep_poll_add(sqe, db->fd, POLLIN);
    }
    io_uring_sqe_set_data64(sqe, ud_udata(UD_TAG_POLL, i, db->gen));
    db->armed = true;
    db->armed_multishot = ud->multishot;
    ud->inflight++;
    ud->stats.rearms++;
}

static void ud_arm_all(UringDoorbell *ud)
{
    uint32_t todo = ud->active;

    if (!ud->use_uring) {
        return;
    }
    while (todo) {
        unsigned i = __builtin_ctz(todo);

        todo &= todo - 1;
        if (!ud->db[i].armed) {
            ud_arm(ud, i);
        }
    }
}

/* Queues an ASYNC_CANCEL of the poll request of slot @i, generation @gen. */
static bool ud_cancel(UringDoorbell *ud, unsigned i, uint32_t gen)
{
    struct io_uring_sqe *sqe = ud_get_sqe(ud);

    if (!sqe) {
        ud_error(ud, "no SQE to cancel a poll");
        return false;
    }
    io_uring_prep_cancel64(sqe, ud_udata(UD_TAG_POLL, i, gen), 0);
    io_uring_sqe_set_data64(sqe, ud_udata(UD_TAG_CANCEL, i, gen));
    ud->inflight++;
    return true;
}

/* Cancels the poll of slot @i; its final CQE turns up later as stale. */
static void ud_disarm(UringDoorbell *ud, unsigned i)
{
    UdDoorbell *db = &ud->db[i];

    if (ud->use_uring && db->armed && ud_cancel(ud, i, db->gen)) {
        db->armed = false;
    }
}

/* Stops watching slot @i after an error; the slot stays allocated. */
static void ud_fail(UringDoorbell *ud, unsigned i)
{
    ud_disarm(ud, i);
    ud->active &= ~(1u << i);
    ud->fd_version++;
}

static void ud_complete_poll(UringDoorbell *ud,
                             const struct io_uring_cqe *cqe,
                             unsigned i, uint32_t gen)
{
    bool final = !(cqe->flags & IORING_CQE_F_MORE);
    UdDoorbell *db;

    if (final) {
        ud->inflight--;
    }
    if (i >= UD_MAX_DOORBELLS || !(ud->active & (1u << i)) ||
        ud->db[i].gen != gen) {
        return;     /* stale: removed or re-added since */
    }
    db = &ud->db[i];
    if (final) {
        db->armed = false;      /* re-armed at the end of the pass */
    }
    if (cqe->res >= 0) {
        ud->fired |= 1u << i;
    } else if (cqe->res == -EINVAL && db->armed_multishot) {
        g_debug("uring_doorbell: no multishot poll, using one-shot");
        ud->multishot = false;
    } else if (cqe->res != -ECANCELED) {
        ud_error(ud, "poll on fd %d failed: %s", db->fd,
                 g_strerror(-cqe->res));
        ud_fail(ud, i);
    }
}

static void ud_complete(UringDoorbell *ud, const struct io_uring_cqe *cqe)
{
    uint64_t data = io_uring_cqe_get_data64(cqe);

    switch (data & 0xff) {
    case UD_TAG_POLL:
        ud_complete_poll(ud, cqe, (data >> 8) & 0xff, data >> 32);
        break;
    case UD_TAG_WRITE:
        ud->inflight--;
        ud->inflight_writes--;
        if (cqe->res != sizeof(ud_one)) {
            ud_error(ud, "ring write failed: %s",
                     cqe->res < 0 ? g_strerror(-cqe->res) : "short write");
        }
        break;
    case UD_TAG_CANCEL:
        ud->inflight--;
        if (cqe->res == -EALREADY) {
            /* the poll was running: it may still be armed, try again */
            ud_cancel(ud, (data >> 8) & 0xff, data >> 32);
        }
        break;
    default:
        g_assert_not_reached();
    }
}

/* Reaps every available CQE, marking the doorbells that fired. */
static void ud_reap(UringDoorbell *ud)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;

    io_uring_for_each_cqe(&ud->ring, head, cqe) {
        ud_complete(ud, cqe);
        n++;
    }
    io_uring_cq_advance(&ud->ring, n);
}

static bool ud_readable(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int ret;

    do {
        ret = poll(&pfd, 1, 0);
    } while (ret < 0 && errno == EINTR);
    return ret != 0;    /* on error, let read() tell what is wrong */
}

/* Reads @len bytes; 1 done, 0 nothing there, -1 failed (errno set). */
/*
 * One transfer on a doorbell fd.  A UIO device ignores the file position,
 * so its transfers are positional (offset 0): the same on a real device,
 * and a stand-in regular file (tests) is not walked through.  An fd
 * without a position (ESPIPE: sockets, pipes) gets plain read/write.
 */
static ssize_t ud_xfer(UdDoorbell *db, void *buf, size_t len, bool out)
{
    bool positional = db->kind == UD_KIND_UIO;
    ssize_t ret;

    for (;;) {
        if (positional) {
            ret = out ? pwrite(db->fd, buf, len, 0)
                      : pread(db->fd, buf, len, 0);
        } else {
            ret = out ? write(db->fd, buf, len) : read(db->fd, buf, len);
        }
        if (ret < 0 && errno == EINTR) {
            continue;
        }
        if (ret < 0 && errno == ESPIPE && positional) {
            positional = false;
            continue;
        }
        return ret;
    }
}

static int ud_read(UdDoorbell *db, void *buf, size_t len)
{
    ssize_t ret;

    if (!db->nonblock && !ud_readable(db->fd)) {
        return 0;
    }
    ret = ud_xfer(db, buf, len, false);
    if (ret == (ssize_t)len) {
        return 1;
    }
    if (ret < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return 0;
    }
    if (ret >= 0) {
        errno = ret ? EIO : EPIPE;     /* short read, or end of file */
    }
    return -1;
}

/*
 * Drains doorbell @i and returns its count; 0 when the wake-up was
 * spurious or the drain failed (the doorbell is then no longer watched).
 */
static uint64_t ud_drain(UringDoorbell *ud, unsigned i)
{
    UdDoorbell *db = &ud->db[i];
    uint64_t count = 0;
    uint32_t irqs, enable = 1;
    ssize_t ret;

    if (db->kind == UD_KIND_EVENTFD) {
        ret = ud_read(db, &count, sizeof(count));
    } else {
        ret = ud_read(db, &irqs, sizeof(irqs));
        if (ret > 0) {
            count = irqs;
            /* re-enable the irq before the handler looks at the queues */
            if (ud_xfer(db, &enable, sizeof(enable), true) !=
                sizeof(enable)) {
                ud_error(ud, "UIO irq re-enable on fd %d failed: %s",
                         db->fd, g_strerror(errno));
            }
        }
    }
    if (ret == 0) {
        ud->stats.spurious++;
    } else if (ret < 0) {
        ud_error(ud, "drain of fd %d failed: %s, no longer watched",
                 db->fd, g_strerror(errno));
        ud_fail(ud, i);
    }
    return count;
}

/* Rings the peer now (or, with UD_RING_SQE, queues the write). */
static void ud_ring_peer(UringDoorbell *ud)
{
    struct io_uring_sqe *sqe;
    ssize_t ret;

    if (ud->peer_fn) {
        ud->peer_fn(ud->peer_opaque);
        ud->stats.rings++;
        return;
    }
    if (ud->peer_fd < 0) {
        return;
    }
    if (ud->use_uring && ud->peer_mode == UD_RING_SQE) {
        sqe = ud_get_sqe(ud);
        if (sqe) {
            io_uring_prep_write(sqe, ud->peer_fd, &ud_one, sizeof(ud_one),
                                (uint64_t)-1);
            io_uring_sqe_set_data64(sqe, ud_udata(UD_TAG_WRITE, 0, 0));
            ud->inflight++;
            ud->inflight_writes++;
            ud->stats.rings++;
            return;
        }
        /* no SQE to be had: ring with write(2) instead */
    }
    do {
        ret = write(ud->peer_fd, &ud_one, sizeof(ud_one));
    } while (ret < 0 && errno == EINTR);
    if (ret == sizeof(ud_one)) {
        ud->stats.rings++;
    } else {
        ud_error(ud, "ring of fd %d failed: %s", ud->peer_fd,
                 ret < 0 ? g_strerror(errno) : "short write");
    }
}

/*
 * One pass: reap the CQEs, call each due handler once, re-arm, and ring
 * the peer if a handler asked for it.  Returns the number of calls.
 */
static int ud_pass(UringDoorbell *ud)
{
    int calls = 0;
    uint32_t due;

    ud->in_pass = true;
    if (ud->use_uring) {
        ud_reap(ud);
    }
    /* lowest index first; handlers may add or remove doorbells */
    while ((due = (ud->fired | ud->fired_nodrain) & ud->active)) {
        unsigned i = __builtin_ctz(due);
        uint32_t bit = 1u << i;
        UdDoorbell *db = &ud->db[i];
        uint64_t count = 0;

        if (ud->fired & bit) {
            count = ud_drain(ud, i);
        }
        ud->fired &= ~bit;
        ud->fired_nodrain &= ~bit;
        db->fn(db->opaque, count);
        calls++;
    }
    ud->fired = 0;
    ud->fired_nodrain = 0;
    ud->in_pass = false;

    if (calls) {
        ud->stats.passes++;
        ud->stats.wakeups += calls;
    }
    ud_arm_all(ud);
    if (ud->ring_pending) {
        ud->ring_pending = false;
        ud_ring_peer(ud);
    }
    return calls;
}

/* Spins on the poll function; returns the pass's calls on a hit, or 0. */
static int ud_busy_poll(UringDoorbell *ud)
{
    int64_t end = g_get_monotonic_time() + ud->poll_us;

    if (ud->use_uring && ud->inflight_writes) {
        ud_submit(ud);      /* don't hold a ring back while spinning */
    }
    do {
        if (ud->poll_fn(ud->poll_opaque)) {
            ud->stats.polled_hits++;
            ud->fired_nodrain = ud->active;
            return ud_pass(ud);
        }
        if (ud->use_uring && io_uring_cq_ready(&ud->ring)) {
            break;
        }
    } while (g_get_monotonic_time() < end);
    return 0;
}

/* Submits and sleeps; 0 when woken or timed out, or -errno. */
static int ud_uring_sleep(UringDoorbell *ud, int timeout_ms)
{
    struct __kernel_timespec ts;
    struct io_uring_cqe *cqe;
    unsigned wait_nr = ud->inflight_writes + 1;
    int ret;

    if (timeout_ms == 0) {
        return ud_submit(ud);
    }
    if (timeout_ms < 0) {
        ret = io_uring_submit_and_wait(&ud->ring, wait_nr);
    } else {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (timeout_ms % 1000) * 1000000LL;
        ret = io_uring_submit_and_wait_timeout(&ud->ring, &cqe, wait_nr,
                                               &ts, NULL);
    }
    return ret == -ETIME || ret >= 0 ? 0 : ret;
}

static int ud_poll_sleep(UringDoorbell *ud, int timeout_ms)
{
    struct pollfd pfd[UD_MAX_DOORBELLS];
    unsigned index[UD_MAX_DOORBELLS];
    uint32_t todo = ud->active;
    unsigned n = 0, k;

    while (todo) {
        unsigned i = __builtin_ctz(todo);

        todo &= todo - 1;
        pfd[n].fd = ud->db[i].fd;
        pfd[n].events = POLLIN;
        pfd[n].revents = 0;
        index[n++] = i;
    }
    if (poll(pfd, n, timeout_ms) < 0) {
        return -errno;
    }
    for (k = 0; k < n; k++) {
        if (pfd[k].revents & POLLNVAL) {
            ud_error(ud, "fd %d is not open, no longer watched", pfd[k].fd);
            ud_fail(ud, index[k]);
        } else if (pfd[k].revents) {
            ud->fired |= 1u << index[k];
        }
    }
    return 0;
}

UringDoorbell *uring_doorbell_new(unsigned entries, unsigned flags,
                                  GError **errp)
{
    UringDoorbell *ud;
    int ret;

    if (flags & ~(UD_FLAG_POLL | UD_FLAG_NO_MULTISHOT)) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "uring_doorbell: unknown flags 0x%x", flags);
        return NULL;
    }
    ud = g_new0(UringDoorbell, 1);
    ud->peer_fd = -1;
    ud->next_gen = 1;
    ud->multishot = !(flags & UD_FLAG_NO_MULTISHOT);

    if (flags & UD_FLAG_POLL) {
        g_debug("uring_doorbell: poll(2) mode requested");
        return ud;
    }
    ret = io_uring_queue_init(MAX(entries, UD_MIN_ENTRIES), &ud->ring, 0);
    if (ret < 0) {
        g_message("uring_doorbell: io_uring unavailable (%s), "
                  "falling back to poll()", g_strerror(-ret));
        return ud;
    }
    ud->use_uring = true;
    return ud;
}

/* Cancels every poll and reaps until the kernel has finished them all. */
static void ud_quiesce(UringDoorbell *ud)
{
    int64_t end = g_get_monotonic_time() + UD_FREE_TIMEOUT_US;
    struct __kernel_timespec ts;
    struct io_uring_cqe *cqe;
    unsigned i;
    int ret;

    for (i = 0; i < UD_MAX_DOORBELLS; i++) {
        if (ud->used & (1u << i)) {
            ud_disarm(ud, i);
        }
    }
    ud->used = ud->active = 0;

    while (ud->inflight) {
        int64_t left = end - g_get_monotonic_time();

        if (left <= 0) {
            g_warning("uring_doorbell: %u requests still pending at free, "
                      "giving up", ud->inflight);
            return;
        }
        ts.tv_sec = left / G_USEC_PER_SEC;
        ts.tv_nsec = (left % G_USEC_PER_SEC) * 1000;
        ret = io_uring_submit_and_wait_timeout(&ud->ring, &cqe, 1, &ts, NULL);
        if (ret < 0 && ret != -ETIME && ret != -EINTR) {
            g_warning("uring_doorbell: reaping at free failed: %s",
                      g_strerror(-ret));
            return;
        }
        ud_reap(ud);
    }
}

void uring_doorbell_free(UringDoorbell *ud)
{
    if (!ud) {
        return;
    }
    g_return_if_fail(!ud->in_pass);
    if (ud->n_sources) {
        g_critical("uring_doorbell: freed with %u GSource(s) still alive",
                   ud->n_sources);
    }
    if (ud->use_uring) {
        ud_quiesce(ud);
        io_uring_queue_exit(&ud->ring);
    }
    g_free(ud);
}

bool uring_doorbell_is_uring(const UringDoorbell *ud)
{
    return ud->use_uring;
}

int uring_doorbell_add(UringDoorbell *ud, int fd, UringDoorbellKind kind,
                       UringDoorbellFn *fn, void *opaque)
{
    UdDoorbell *db;
    unsigned i;
    int fl;

    if (!fn || (kind != UD_KIND_EVENTFD && kind != UD_KIND_UIO)) {
        return -EINVAL;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0) {
        return -errno;
    }
    if (ud->used == UINT32_MAX) {
        return -ENOSPC;
    }
    i = __builtin_ctz(~ud->used);
    db = &ud->db[i];
    *db = (UdDoorbell) {
        .fd = fd,
        .kind = kind,
        .fn = fn,
        .opaque = opaque,
        .gen = ud->next_gen++,
        .nonblock = fl & O_NONBLOCK,
    };
    if (!ud->next_gen) {
        ud->next_gen = 1;
    }
    ud->used |= 1u << i;
    ud->active |= 1u << i;
    ud->fd_version++;
    if (ud->use_uring) {
        ud_arm(ud, i);
        if (!ud->in_pass) {
            ud_submit(ud);
        }
    }
    return i;
}

void uring_doorbell_remove(UringDoorbell *ud, int index)
{
    uint32_t bit;

    g_return_if_fail(index >= 0 && index < UD_MAX_DOORBELLS);
    bit = 1u << index;
    if (!(ud->used & bit)) {
        return;
    }
    ud_disarm(ud, index);
    ud->used &= ~bit;
    ud->active &= ~bit;
    ud->fired &= ~bit;
    ud->fired_nodrain &= ~bit;
    ud->db[index].fd = -1;
    ud->db[index].gen = 0;
    ud->fd_version++;
    if (ud->use_uring && !ud->in_pass) {
        ud_submit(ud);
    }
}

void uring_doorbell_set_peer_fd(UringDoorbell *ud, int fd,
                                UringDoorbellRingMode mode)
{
    ud->peer_fd = fd;
    ud->peer_mode = mode;
    ud->peer_fn = NULL;
    ud->peer_opaque = NULL;
}

void uring_doorbell_set_peer_fn(UringDoorbell *ud, UringDoorbellRingFn *fn,
                                void *opaque)
{
    ud->peer_fn = fn;
    ud->peer_opaque = opaque;
    ud->peer_fd = -1;
}

void uring_doorbell_set_poll(UringDoorbell *ud, unsigned poll_us,
                             UringDoorbellPollFn *fn, void *opaque)
{
    ud->poll_us = fn ? poll_us : 0;
    ud->poll_fn = fn;
    ud->poll_opaque = opaque;
}

void uring_doorbell_ring(UringDoorbell *ud)
{
    ud->stats.ring_requests++;
    if (ud->in_pass) {
        ud->ring_pending = true;
        return;
    }
    ud_ring_peer(ud);
    if (ud->use_uring) {
        ud_submit(ud);
    }
}

int uring_doorbell_wait(UringDoorbell *ud, int timeout_ms)
{
    int64_t deadline = 0;
    int ret, calls;

    if (ud->in_pass) {
        return -EBUSY;
    }
    ud_arm_all(ud);     /* arms that found no SQE earlier */
    if (timeout_ms != 0 && ud->poll_fn && ud->poll_us) {
        calls = ud_busy_poll(ud);
        if (calls) {
            return calls;
        }
    }
    if (timeout_ms > 0) {
        deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
    }
    for (;;) {
        if (ud->use_uring) {
            ret = ud_uring_sleep(ud, timeout_ms);
        } else {
            ret = ud_poll_sleep(ud, timeout_ms);
        }
        if (ret < 0 && ret != -EINTR) {
            return ret;
        }
        calls = ud_pass(ud);
        if (timeout_ms == 0 && ud->use_uring) {
            ud_submit(ud);  /* leave nothing queued: see the header */
        }
        /* EINTR: return, so that the caller can look at its signal */
        if (calls || timeout_ms == 0 || ret == -EINTR) {
            return calls;
        }
        /* only stale, cancel or write CQEs: sleep for the rest */
        if (timeout_ms > 0) {
            int64_t left = deadline - g_get_monotonic_time();

            if (left <= 0) {
                return 0;
            }
            timeout_ms = (left + 999) / 1000;
        }
    }
}

int uring_doorbell_get_fd(const UringDoorbell *ud)
{
    return ud->use_uring ? ud->ring.ring_fd : -1;
}

void uring_doorbell_get_stats(const UringDoorbell *ud,
                              UringDoorbellStats *stats)
{
    *stats = ud->stats;
}

/*
 * GSource adapter.  io_uring mode watches the ring fd; the poll fallback
 * watches each doorbell fd, re-synced in prepare() when the set changed.
 */
typedef struct UdSource {
    GSource source;
    UringDoorbell *ud;
    gpointer ring_tag;
    gpointer tags[UD_MAX_DOORBELLS];
    unsigned fd_version;
} UdSource;

static void ud_source_sync_fds(UdSource *s)
{
    UringDoorbell *ud = s->ud;
    unsigned i;

    if (s->fd_version == ud->fd_version) {
        return;
    }
    for (i = 0; i < UD_MAX_DOORBELLS; i++) {
        if (s->tags[i]) {
            g_source_remove_unix_fd(&s->source, s->tags[i]);
            s->tags[i] = NULL;
        }
        if (ud->active & (1u << i)) {
            s->tags[i] = g_source_add_unix_fd(&s->source, ud->db[i].fd,
                                              G_IO_IN);
        }
    }
    s->fd_version = ud->fd_version;
}

static gboolean ud_source_prepare(GSource *source, gint *timeout)
{
    UdSource *s = (UdSource *)source;
    UringDoorbell *ud = s->ud;

    *timeout = -1;
    if (!ud->use_uring) {
        ud_source_sync_fds(s);
        return FALSE;
    }
    ud_submit(ud);      /* nothing armed may sit in the SQ while we sleep */
    return io_uring_cq_ready(&ud->ring) > 0;
}

static gboolean ud_source_check(GSource *source)
{
    UdSource *s = (UdSource *)source;
    UringDoorbell *ud = s->ud;
    unsigned i;

    if (ud->use_uring) {
        ud_submit(ud);
        return io_uring_cq_ready(&ud->ring) > 0 ||
               g_source_query_unix_fd(source, s->ring_tag);
    }
    for (i = 0; i < UD_MAX_DOORBELLS; i++) {
        if (s->tags[i] && g_source_query_unix_fd(source, s->tags[i])) {
            return TRUE;
        }
    }
    return FALSE;
}

static gboolean ud_source_dispatch(GSource *source, GSourceFunc callback,
                                   gpointer user_data)
{
    UdSource *s = (UdSource *)source;

    uring_doorbell_wait(s->ud, 0);
    return callback ? callback(user_data) : G_SOURCE_CONTINUE;
}

static void ud_source_finalize(GSource *source)
{
    UdSource *s = (UdSource *)source;

    s->ud->n_sources--;
}

static GSourceFuncs ud_source_funcs = {
    .prepare = ud_source_prepare,
    .check = ud_source_check,
    .dispatch = ud_source_dispatch,
    .finalize = ud_source_finalize,
};

GSource *uring_doorbell_source_new(UringDoorbell *ud)
{
    GSource *source = g_source_new(&ud_source_funcs, sizeof(UdSource));
    UdSource *s = (UdSource *)source;

    g_source_set_name(source, "uring_doorbell");
    s->ud = ud;
    s->fd_version = ud->fd_version - 1;     /* force a first sync */
    ud->n_sources++;
    if (ud->use_uring) {
        s->ring_tag = g_source_add_unix_fd(source, ud->ring.ring_fd,
                                           G_IO_IN);
    }
    return source;
}
