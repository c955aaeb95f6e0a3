/*
 * seL4 accelerator: irqfd, the interrupt fast path.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * virtio-pci hands the guest notifiers of its devices to the accelerator
 * through system/accel-irq.h, as it does to KVM: an MSI route for each
 * MSI-X vector in use (add, update, release: here the SPI in the
 * message's data), and an eventfd on a route while the vector is unmasked
 * (add/remove_irqfd_notifier_gsi).  A device that completes requests in
 * an IOThread signals that eventfd; a thread of ours watches all of them
 * on an io_uring of its own (one multishot POLL_ADD each), consumes what
 * fired, queues a SET_IRQ PULSE for each route's SPI (pulses of one SPI
 * merge in the outbox) and publishes the pass with one doorbell.  No BQL,
 * no main loop: what KVM's irqfd does in the kernel.
 *
 * Masking is virtio-pci's, as with KVM: a masked vector's eventfd is
 * removed from us, and msix's vector poll turns a signal left in it into
 * the pending bit; unmasking adds it back, and a POLL_ADD on an eventfd
 * that is already signalled fires at once.  Removal is synchronous in the
 * way that matters: an eventfd is only read with irqfd_lock held and its
 * slot still live, so once removal returns we never consume a signal of
 * it again (the poll itself is cancelled asynchronously; its stale
 * completions carry an old generation and are ignored).
 *
 * A queue's vector changed after DRIVER_OK (virtio_pci_set_vector()) is
 * where we part from KVM.  virtio-pci releases the old vector's route
 * when its last user goes, but a device without guest_notifier_mask
 * (virtio-blk, for one) leaves the queue's eventfd bound to it: under KVM
 * its interrupts are then lost until the vector is masked and unmasked.
 * Here the eventfd's slot goes stale with its route; when it next fires
 * it is left signalled, and a BH (with the BQL, where the queue's vector
 * can be read) binds it to the route of the queue's vector now and arms
 * it again, so the interrupt arrives on the new vector.  A new route
 * (the first queue on a vector) takes the device's queues that are on
 * its vector now at once.  Only a queue moved between two vectors that
 * other queues keep in use (no route released, none added) still pulses
 * the old one until it is masked and unmasked, as under KVM.
 *
 * io_uring operations used:
 *   POLL_ADD (multishot)  an irqfd became readable
 *   POLL_REMOVE           an irqfd was removed
 *   NOP                   stop the thread
 * The SQ is filled under irqfd_lock, by the thread (re-arming) and by the
 * BQL holder (adding, removing); only the thread reaps the CQ.
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/event_notifier.h"
#include "qemu/main-loop.h"
#include "hw/pci/msi.h"
#include "hw/virtio/virtio-pci.h"
#include "sel4-internal.h"
#include "trace.h"

#ifdef CONFIG_LINUX_IO_URING
#include <liburing.h>
#include <poll.h>

/* route (virq) and irqfd slots: a device uses one route per vector */
#define SEL4_IRQFD_ROUTES   512
#define SEL4_IRQFD_SLOTS    512
#define SEL4_IRQFD_RING     64

/* user_data of completions that are not a slot's poll */
#define SEL4_IRQFD_TAG_STOP     UINT64_MAX
#define SEL4_IRQFD_TAG_CANCEL   (UINT64_MAX - 1)

typedef struct Sel4IrqRoute {
    bool used;
    uint16_t spi;
    PCIDevice *dev;             /* whose MSI-X vector ... */
    int vector;                 /* ... this is */
} Sel4IrqRoute;

typedef struct Sel4IrqfdSlot {
    int fd;                     /* the device's eventfd; -1: free */
    EventNotifier *n;
    int virq;
    PCIDevice *dev;             /* of the route it was added on */
    uint32_t gen;               /* of the poll armed on fd */
    bool stale;                 /* its route was released */
} Sel4IrqfdSlot;

struct Sel4Irqfd {
    QemuMutex lock;             /* everything below, and the ring's SQ */
    struct io_uring ring;
    QemuThread thread;
    bool stopped;               /* the thread has ended (shutdown) */
    QEMUBH *rebind_bh;          /* a stale slot fired */
    Sel4IrqRoute route[SEL4_IRQFD_ROUTES];
    Sel4IrqfdSlot slot[SEL4_IRQFD_SLOTS];
};

bool sel4_msi_via_irqfd_allowed;

static uint64_t sel4_irqfd_tag(Sel4IrqfdSlot *sl, unsigned i)
{
    return (uint64_t)sl->gen << 32 | i;
}

/* An SQE, submitting what is queued if the SQ is full (irqfd_lock). */
static struct io_uring_sqe *sel4_irqfd_sqe(Sel4Irqfd *q)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

    if (!sqe) {
        io_uring_submit(&q->ring);
        sqe = io_uring_get_sqe(&q->ring);
    }
    return sqe;
}

static bool sel4_irqfd_arm(Sel4Irqfd *q, unsigned i)
{
    struct io_uring_sqe *sqe = sel4_irqfd_sqe(q);

    if (!sqe) {
        return false;
    }
    io_uring_prep_poll_multishot(sqe, q->slot[i].fd, POLLIN);
    io_uring_sqe_set_data64(sqe, sel4_irqfd_tag(&q->slot[i], i));
    return true;
}

/* Cancel slot @i's poll (its late completions carry an old tag). */
static void sel4_irqfd_disarm(Sel4Irqfd *q, unsigned i)
{
    struct io_uring_sqe *sqe = sel4_irqfd_sqe(q);

    if (sqe) {
        io_uring_prep_poll_remove(sqe, sel4_irqfd_tag(&q->slot[i], i));
        io_uring_sqe_set_data64(sqe, SEL4_IRQFD_TAG_CANCEL);
    }
    q->slot[i].gen++;
}

/*
 * One completion of the ring (irqfd_lock held).  Returns whether it was
 * an irqfd that fired, now consumed and its pulse queued.
 */
static bool sel4_irqfd_complete(Sel4State *s, struct io_uring_cqe *cqe,
                                bool *resubmit)
{
    Sel4Irqfd *q = s->irqfd;
    unsigned i = (uint32_t)cqe->user_data;
    Sel4IrqfdSlot *sl;
    uint64_t count;
    rpcmsg_t msg;

    if (cqe->user_data >= SEL4_IRQFD_TAG_CANCEL || i >= SEL4_IRQFD_SLOTS) {
        return false;
    }
    sl = &q->slot[i];
    if (sl->fd < 0 || sel4_irqfd_tag(sl, i) != cqe->user_data) {
        return false;           /* removed since: not ours to read */
    }
    if (cqe->res < 0) {
        error_report_once("sel4: irqfd: polling the eventfd of route %d "
                          "failed: %s", sl->virq, strerror(-cqe->res));
        sel4_error(s, SEL4_ERR_URING, -cqe->res, sl->virq);
        return false;
    }
    if (sl->stale) {
        /* left signalled for the BH, which also arms it again */
        qemu_bh_schedule(q->rebind_bh);
        return false;
    }
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        /* the kernel ended the multishot poll (e.g. CQ overflow) */
        *resubmit |= sel4_irqfd_arm(q, i);
    }
    if (read(sl->fd, &count, sizeof(count)) != sizeof(count)) {
        return false;           /* EAGAIN: already consumed */
    }
    msg = (rpcmsg_t) {
        .mr0 = rpc_mr0_op(QEMU_OP_SET_IRQ),
        .mr1 = q->route[sl->virq].spi,
        .mr2 = RPC_IRQ_PULSE,
    };
    trace_sel4_irqfd_fire(sl->virq, q->route[sl->virq].spi, count);
    sel4_event_queue(s, &msg);
    return true;
}

static void *sel4_irqfd_thread_fn(void *opaque)
{
    Sel4State *s = opaque;
    Sel4Irqfd *q = s->irqfd;
    struct io_uring_cqe *cqes[SEL4_IRQFD_RING];
    bool stop = false;

    while (!stop) {
        unsigned n, i, fired = 0;
        bool resubmit = false;
        int r = io_uring_wait_cqe(&q->ring, &cqes[0]);

        if (r == -EINTR) {
            continue;
        }
        if (r < 0) {
            error_report("sel4: irqfd: waiting on io_uring failed: %s; "
                         "interrupts of IOThreads stop",
                         strerror(-r));
            sel4_error(s, SEL4_ERR_URING, -r, 0);
            break;
        }
        WITH_QEMU_LOCK_GUARD(&q->lock) {
            n = io_uring_peek_batch_cqe(&q->ring, cqes, ARRAY_SIZE(cqes));
            for (i = 0; i < n; i++) {
                stop |= cqes[i]->user_data == SEL4_IRQFD_TAG_STOP;
                fired += sel4_irqfd_complete(s, cqes[i], &resubmit);
            }
            io_uring_cq_advance(&q->ring, n);
            if (resubmit) {
                io_uring_submit(&q->ring);
            }
        }
        if (fired) {
            /* the whole pass: one commit of devevt, one doorbell */
            sel4_stat_add(s, SEL4_STAT_IRQFD, fired);
            trace_sel4_irqfd_pass(fired);
            if (sel4_events_flush(s)) {
                sel4_ring_vmm(s);
            }
        }
    }
    return NULL;
}

/* ---- system/accel-irq.h, with the BQL ---- */

static Sel4Irqfd *sel4_irqfd(void)
{
    return sel4_state ? sel4_state->irqfd : NULL;
}

static uint16_t sel4_irqfd_spi(MSIMessage msg)
{
    /* as sel4_send_msi(): the SPI a GICv2m SETSPI write would raise */
    return msg.data & 0xffff;
}

/* The vector its queue (or the config interrupt) is on now, or -1. */
static int sel4_irqfd_vector_now(Sel4IrqfdSlot *sl)
{
    VirtIOPCIProxy *proxy = (VirtIOPCIProxy *)
        object_dynamic_cast(OBJECT(sl->dev), TYPE_VIRTIO_PCI);
    VirtIODevice *vdev = proxy ? virtio_bus_get_device(&proxy->bus) : NULL;
    int q;

    if (!vdev) {
        return -1;
    }
    if (virtio_config_get_guest_notifier(vdev) == sl->n) {
        return vdev->config_vector;
    }
    for (q = 0; q < VIRTIO_QUEUE_MAX && virtio_queue_get_num(vdev, q); q++) {
        if (virtio_queue_get_guest_notifier(virtio_get_queue(vdev, q)) ==
            sl->n) {
            return virtio_queue_vector(vdev, q);
        }
    }
    return -1;
}

/*
 * Bind slot @i to the route of its queue's vector now, if that is not
 * the one it is on (BQL and irqfd_lock held); with no such route it is
 * stale until one comes.
 */
static void sel4_irqfd_rebind(Sel4Irqfd *q, unsigned i)
{
    Sel4IrqfdSlot *sl = &q->slot[i];
    int vector = sel4_irqfd_vector_now(sl);
    int virq;

    if (!sl->stale && q->route[sl->virq].vector == vector) {
        return;
    }
    for (virq = 0; virq < SEL4_IRQFD_ROUTES; virq++) {
        if (q->route[virq].used && q->route[virq].dev == sl->dev &&
            q->route[virq].vector == vector) {
            break;
        }
    }
    if (virq == SEL4_IRQFD_ROUTES) {
        /* on no vector (the guest asked for none) or one not set up */
        sl->stale = true;
        return;
    }
    trace_sel4_irqfd_rebind(sl->virq, virq, i);
    sel4_irqfd_disarm(q, i);
    sl->virq = virq;
    sl->stale = false;
    /* armed anew: fires at once if a signal waits */
    sel4_irqfd_arm(q, i);
}

/* Every slot of @dev, or every stale one (@dev NULL): see above. */
static void sel4_irqfd_rebind_all(Sel4Irqfd *q, PCIDevice *dev)
{
    unsigned i;

    for (i = 0; i < SEL4_IRQFD_SLOTS; i++) {
        if (q->slot[i].fd >= 0 &&
            (dev ? q->slot[i].dev == dev : q->slot[i].stale)) {
            sel4_irqfd_rebind(q, i);
        }
    }
    io_uring_submit(&q->ring);
}

/* A stale slot fired. */
static void sel4_irqfd_rebind_bh(void *opaque)
{
    Sel4State *s = opaque;
    Sel4Irqfd *q = s->irqfd;

    QEMU_LOCK_GUARD(&q->lock);
    sel4_irqfd_rebind_all(q, NULL);
}

int sel4_irqchip_add_msi_route(int vector, PCIDevice *dev)
{
    Sel4Irqfd *q = sel4_irqfd();
    MSIMessage msg = { 0 };
    int virq;

    if (!q) {
        return -ENOSYS;
    }
    if (dev) {
        msg = pci_get_msi_message(dev, vector);
    }
    QEMU_LOCK_GUARD(&q->lock);
    for (virq = 0; virq < SEL4_IRQFD_ROUTES; virq++) {
        if (!q->route[virq].used) {
            q->route[virq] = (Sel4IrqRoute) {
                .used = true, .spi = sel4_irqfd_spi(msg),
                .dev = dev, .vector = vector,
            };
            trace_sel4_irqfd_route(virq, vector, q->route[virq].spi);
            /* a queue of @dev that moved to @vector follows it */
            sel4_irqfd_rebind_all(q, dev);
            return virq;
        }
    }
    error_report_once("sel4: irqfd: all %d MSI routes in use",
                      SEL4_IRQFD_ROUTES);
    return -ENOSPC;
}

static Sel4IrqRoute *sel4_irqfd_route(Sel4Irqfd *q, int virq)
{
    if (!q || virq < 0 || virq >= SEL4_IRQFD_ROUTES ||
        !q->route[virq].used) {
        return NULL;
    }
    return &q->route[virq];
}

int sel4_irqchip_update_msi_route(int virq, MSIMessage msg, PCIDevice *dev)
{
    Sel4Irqfd *q = sel4_irqfd();
    Sel4IrqRoute *r = sel4_irqfd_route(q, virq);

    if (!r) {
        return -EINVAL;
    }
    /* a pass in flight may still pulse the old SPI, as with KVM */
    WITH_QEMU_LOCK_GUARD(&q->lock) {
        r->spi = sel4_irqfd_spi(msg);
    }
    trace_sel4_irqfd_route(virq, -1, sel4_irqfd_spi(msg));
    return 0;
}

void sel4_irqchip_release_virq(int virq)
{
    Sel4Irqfd *q = sel4_irqfd();
    Sel4IrqRoute *r = sel4_irqfd_route(q, virq);

    unsigned i;

    if (!r) {
        return;
    }
    QEMU_LOCK_GUARD(&q->lock);
    r->used = false;
    for (i = 0; i < SEL4_IRQFD_SLOTS; i++) {
        if (q->slot[i].fd >= 0 && q->slot[i].virq == virq) {
            /* still bound: a queue whose vector changed (see the top) */
            q->slot[i].stale = true;
        }
    }
}

int sel4_irqchip_add_irqfd_notifier_gsi(EventNotifier *n, EventNotifier *rn,
                                        int virq)
{
    Sel4Irqfd *q = sel4_irqfd();
    int fd = event_notifier_get_fd(n);
    unsigned i;

    if (!sel4_irqfd_route(q, virq)) {
        return -EINVAL;
    }
    if (rn) {
        return -ENOSYS;         /* resampling is for level INTx: not here */
    }
    QEMU_LOCK_GUARD(&q->lock);
    /* an eventfd is on one route: added again, it moves */
    for (i = 0; i < SEL4_IRQFD_SLOTS && q->slot[i].fd != fd; i++) {
        /* find it */
    }
    if (i == SEL4_IRQFD_SLOTS) {
        for (i = 0; i < SEL4_IRQFD_SLOTS && q->slot[i].fd >= 0; i++) {
            /* find a free one */
        }
    }
    if (i < SEL4_IRQFD_SLOTS) {
        Sel4IrqfdSlot *sl = &q->slot[i];

        if (sl->fd >= 0) {
            sel4_irqfd_disarm(q, i);
        }
        *sl = (Sel4IrqfdSlot) {
            .fd = fd, .n = n, .virq = virq, .dev = q->route[virq].dev,
            .gen = sl->gen + 1,
        };
        if (!sel4_irqfd_arm(q, i) || io_uring_submit(&q->ring) < 0) {
            sl->fd = -1;
            return -EIO;
        }
        trace_sel4_irqfd_add(virq, fd, i);
        return 0;
    }
    error_report_once("sel4: irqfd: all %d irqfd slots in use",
                      SEL4_IRQFD_SLOTS);
    return -ENOSPC;
}

int sel4_irqchip_remove_irqfd_notifier_gsi(EventNotifier *n, int virq)
{
    Sel4Irqfd *q = sel4_irqfd();
    int fd = event_notifier_get_fd(n);
    unsigned i;

    if (!q) {
        return -ENOSYS;
    }
    QEMU_LOCK_GUARD(&q->lock);
    for (i = 0; i < SEL4_IRQFD_SLOTS; i++) {
        Sel4IrqfdSlot *sl = &q->slot[i];

        /*
         * By eventfd alone: after a vector change virtio-pci names the
         * queue's new route, not the one it was added on.
         */
        if (sl->fd == fd) {
            sel4_irqfd_disarm(q, i);
            io_uring_submit(&q->ring);
            /* from here on the thread leaves fd alone (see the top) */
            sl->fd = -1;
            trace_sel4_irqfd_remove(virq, fd, i);
            return 0;
        }
    }
    /* as KVM's deassign: nothing bound is nothing to undo */
    return 0;
}

/* ---- the accelerator ---- */

bool sel4_irqfd_start(Sel4State *s, Error **errp)
{
    Sel4Irqfd *q;
    unsigned i;
    int r;

    if (!s->irqfd_on) {
        return true;
    }
    q = g_new0(Sel4Irqfd, 1);
    r = io_uring_queue_init(SEL4_IRQFD_RING, &q->ring, 0);
    if (r < 0) {
        /* virtio-pci keeps its own guest-notifier handlers: slower, works */
        warn_report("sel4: irqfd: no io_uring (%s); interrupts of "
                    "IOThreads go through the main loop", strerror(-r));
        g_free(q);
        return true;
    }
    qemu_mutex_init(&q->lock);
    for (i = 0; i < SEL4_IRQFD_SLOTS; i++) {
        q->slot[i].fd = -1;
    }
    q->rebind_bh = qemu_bh_new(sel4_irqfd_rebind_bh, s);
    s->irqfd = q;
    qemu_thread_create(&q->thread, "sel4-irqfd", sel4_irqfd_thread_fn, s,
                       QEMU_THREAD_JOINABLE);
    sel4_msi_via_irqfd_allowed = true;
    return true;
}

/*
 * At shutdown: end the thread.  The routes and slots stay, so that the
 * devices' teardown (virtio-pci releasing its irqfds) still finds them;
 * the ring goes with the process.
 */
void sel4_irqfd_stop(Sel4State *s)
{
    Sel4Irqfd *q = s->irqfd;
    struct io_uring_sqe *sqe;

    if (!q || q->stopped) {
        return;
    }
    WITH_QEMU_LOCK_GUARD(&q->lock) {
        sqe = sel4_irqfd_sqe(q);
        if (sqe) {
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data64(sqe, SEL4_IRQFD_TAG_STOP);
        }
        if (!sqe || io_uring_submit(&q->ring) < 0) {
            error_report("sel4: irqfd: cannot stop the thread");
            return;
        }
    }
    qemu_thread_join(&q->thread);
    q->stopped = true;
}

#else /* !CONFIG_LINUX_IO_URING */

bool sel4_msi_via_irqfd_allowed;

int sel4_irqchip_add_msi_route(int vector, PCIDevice *dev)
{
    return -ENOSYS;
}

int sel4_irqchip_update_msi_route(int virq, MSIMessage msg, PCIDevice *dev)
{
    return -ENOSYS;
}

void sel4_irqchip_release_virq(int virq)
{
}

int sel4_irqchip_add_irqfd_notifier_gsi(EventNotifier *n, EventNotifier *rn,
                                        int virq)
{
    return -ENOSYS;
}

int sel4_irqchip_remove_irqfd_notifier_gsi(EventNotifier *n, int virq)
{
    return -ENOSYS;
}

bool sel4_irqfd_start(Sel4State *s, Error **errp)
{
    if (s->irqfd_on) {
        warn_report("sel4: irqfd: this QEMU was built without io_uring; "
                    "interrupts of IOThreads go through the main loop");
    }
    return true;
}

void sel4_irqfd_stop(Sel4State *s)
{
}

#endif
