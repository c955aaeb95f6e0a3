/*
 * seL4 accelerator: guest notifies off while a virtqueue has requests in
 * flight.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Why: on seL4 a queue notify is an MMIO write the VMM forwards to us and
 * the vCPU waits for our reply: a doorbell each way, tens of
 * microseconds.  With EVENT_IDX, QEMU's virtqueue_pop() sets avail_event
 * to the last request it took, so every time a device catches up with its
 * ring the guest's next request notifies again.  A device served in the
 * main loop catches up right after the notify it was woken by (the reply
 * goes out first, the guest takes longer to wake than the device takes to
 * pop), so a guest with 32 requests in flight can end up notifying for
 * every single one: a stable state, one doorbell round trip per request.
 * IOThreads escape it by polling with notifies off; the main loop does
 * not poll by itself.
 *
 * What: while a queue of a device served in the main loop has requests in
 * flight, each of its completions brings the main loop round anyway, so
 * the guest need not tell us about new requests.  Before the main loop
 * sleeps (a MainLoopPoll notifier, BQL held) we look at every such queue:
 *  - requests in flight: guest notifies off (avail_event parked one behind
 *    the device's last_avail_idx, where no new request crosses it;
 *    VRING_USED_F_NO_NOTIFY without EVENT_IDX), and
 *    virtio_queue_set_notification(vq, 0), so the device's handler leaves
 *    them off too;
 *  - new requests in the ring while notifies are off: we kick the device
 *    (its host notifier), as the guest's notify would have;
 *  - nothing in flight and the ring empty: notifies stay off for
 *    notify-poll-us more, the loop not sleeping meanwhile (the poll
 *    notifier sets its timeout to 0) and the ring looked at from every
 *    turn; then on again, the ring checked once more after that (a
 *    request added in between is kicked, not lost).  Without the window
 *    a device that completes within the turn that took the request
 *    (null-co, a read from the page cache) is drained whenever the loop
 *    is about to sleep, so the guest's next request notifies again: a
 *    round trip per few requests.  An IOThread's adaptive polling
 *    (poll-max-ns) is the same idea;
 *  - nothing in flight but requests in the ring that we kicked the
 *    device for and it left there (a receive queue's spare buffers):
 *    notifies on again, the device's own notify logic applies;
 *  - requests in flight but none completed for notify-suppress-us (a long
 *    flush, a stalled backend): notifies on again, so that a new request
 *    never waits longer than that for a slow one.  A timer brings the
 *    loop round for this check only; a steady queue never needs it.
 *
 * The poll window costs the main loop's thread up to notify-poll-us of
 * spinning each time a queue runs dry; it saves the guest a notify round
 * trip (two doorbells, a vCPU waiting) whenever its next request comes
 * within the window.
 *
 * Only split rings of VERSION_1 devices whose queues the main loop serves
 * (no iothread, no iothread-vq-mapping) are handled here: a queue an
 * IOThread serves is not ours to touch from the main loop.  Those get the
 * same from virtio itself, in their IOThread (virtio's notify hold,
 * hw/virtio/virtio-notify-hold.c.inc), which sel4_notify_init() turns on
 * with the same bounds and counters.  used->idx is read
 * from guest memory, where the guest may rewrite it: it can only change
 * its own notifies, bounded by notify-suppress-us, and make the main loop
 * poll for notify-poll-us per dry spell, as a busy guest would.
 */
#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "qobject/qlist.h"
#include "qom/object.h"
#include "qom/qom-qobject.h"
#include "system/memory.h"
#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-notify-hold.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ring.h"
#include "sel4-internal.h"
#include "trace.h"

bool sel4_vdev_in_main_loop(VirtIODevice *vdev)
{
    Object *obj = OBJECT(vdev);
    QObject *map;
    bool in_main;

    if (object_property_find(obj, "iothread") &&
        object_property_get_link(obj, "iothread", NULL)) {
        return false;
    }
    if (!object_property_find(obj, "iothread-vq-mapping")) {
        return true;
    }
    map = object_property_get_qobject(obj, "iothread-vq-mapping", NULL);
    in_main = !map || qobject_type(map) != QTYPE_QLIST ||
              qlist_empty(qobject_to(QList, map));
    qobject_unref(map);
    return in_main;
}

/* ---- the split ring's fields we read and write (little endian) ---- */

static uint16_t sel4_vq_used_idx(VirtIODevice *vdev, int n)
{
    return address_space_lduw_le(vdev->dma_as,
                                 virtio_queue_get_used_addr(vdev, n) + 2,
                                 MEMTXATTRS_UNSPECIFIED, NULL);
}

/* avail_event sits after the used ring's last element */
static void sel4_vq_park_avail_event(VirtIODevice *vdev, int n,
                                     uint16_t last_avail)
{
    hwaddr pa = virtio_queue_get_used_addr(vdev, n) + 4 +
                8 * (hwaddr)virtio_queue_get_num(vdev, n);

    /* the guest notifies when its index crosses this: it never will */
    address_space_stw_le(vdev->dma_as, pa, last_avail - 1,
                         MEMTXATTRS_UNSPECIFIED, NULL);
}

static bool sel4_vq_handled(const Sel4Ioeventfd *io)
{
    VirtIODevice *vdev = io->vdev;

    return vdev && io->main_loop &&
           virtio_vdev_has_feature(vdev, VIRTIO_F_VERSION_1) &&
           !virtio_vdev_has_feature(vdev, VIRTIO_F_RING_PACKED) &&
           virtio_queue_get_desc_addr(vdev, io->queue);
}

/* ---- one queue ---- */

/* Notifies back on, and no request of the ring left behind. */
static void sel4_notify_end(Sel4State *s, Sel4Ioeventfd *io, bool stalled)
{
    VirtQueue *vq = virtio_get_queue(io->vdev, io->queue);

    io->sup.on = false;
    /* after a stall, not again until something completes */
    io->sup.hold = stalled;
    io->sup.hold_used = io->sup.used;
    /* avail_event = the guest's index, then a full barrier */
    virtio_queue_set_notification(vq, 1);
    trace_sel4_notify_end(io->queue, stalled);
    if (stalled) {
        sel4_stat_add(s, SEL4_STAT_NOTIFY_STALLED, 1);
    }
    if (!virtio_queue_empty(vq)) {
        virtio_queue_notify(io->vdev, io->queue);
    }
}

static void sel4_notify_begin(Sel4State *s, Sel4Ioeventfd *io,
                              uint16_t last_avail, uint16_t used)
{
    VirtQueue *vq = virtio_get_queue(io->vdev, io->queue);

    /* the device's handler sees notifies off and leaves them so */
    virtio_queue_set_notification(vq, 0);
    if (virtio_vdev_has_feature(io->vdev, VIRTIO_RING_F_EVENT_IDX)) {
        sel4_vq_park_avail_event(io->vdev, io->queue, last_avail);
    }
    io->sup = (Sel4NotifyState) {
        .on = true,
        .last_avail = last_avail,
        .used = used,
        .progress_ns = s->notify_now,
    };
    sel4_stat_add(s, SEL4_STAT_NOTIFY_SUPPRESSED, 1);
    trace_sel4_notify_begin(io->queue, (uint16_t)(last_avail - used));
    /* requests added before the guest saw it are looked for below */
    smp_mb();
}

/*
 * The queue has run dry with notifies off: keep them off for
 * notify-poll-us, looking at the ring from every turn (the loop does not
 * sleep meanwhile), and only then turn them on.  False: the window is
 * over (or there is none), notifies are on again.
 */
static bool sel4_notify_idle(Sel4State *s, Sel4Ioeventfd *io)
{
    int64_t window = (int64_t)s->notify_poll_us * SCALE_US;

    if (!io->sup.idle_ns) {
        io->sup.idle_ns = s->notify_now;
    }
    if (s->notify_now - io->sup.idle_ns >= window) {
        sel4_notify_end(s, io, false);
        return false;
    }
    s->notify_polling = true;
    return true;
}

static void sel4_notify_check(Sel4State *s, Sel4Ioeventfd *io)
{
    int64_t bound = (int64_t)s->notify_suppress_us * SCALE_US;
    uint16_t last_avail, used;
    VirtQueue *vq;
    bool drained;

    if (!io->sup.on && !qatomic_read(&io->active)) {
        return;                 /* not notified since it was last idle */
    }
    if (!sel4_vq_handled(io)) {
        io->sup.on = false;     /* reset, or a ring the guest took away */
        return;
    }
    vq = virtio_get_queue(io->vdev, io->queue);
    last_avail = virtio_queue_get_last_avail_idx(io->vdev, io->queue);
    used = sel4_vq_used_idx(io->vdev, io->queue);
    /* nothing taken and not completed, nothing new in the ring */
    drained = last_avail == used && virtio_queue_empty(vq);
    if (!io->sup.on) {
        /*
         * Nothing in flight: notifies stay on.  Unless the ring is empty
         * too and there is a poll window: a device that completes within
         * the turn (null-co, a cached read) leaves nothing in flight when
         * the loop is about to sleep, and without the window the guest's
         * next request would notify, every time.
         */
        if (last_avail == used && !(drained && s->notify_poll_us)) {
            if (drained) {
                /* idle: the guest's next notify marks it active again */
                qatomic_set(&io->active, false);
            }
            return;
        }
        if (io->sup.hold && used == io->sup.hold_used) {
            return;             /* stalled: notifies stay on */
        }
        sel4_notify_begin(s, io, last_avail, used);
    } else if (last_avail == used && !drained && io->sup.kicked &&
               io->sup.kicked_at == last_avail) {
        /*
         * Kicked for what is in the ring, and the device left it there
         * (a receive queue's spare buffers): its own notify logic again.
         */
        sel4_notify_end(s, io, false);
        return;
    }
    if (drained) {
        if (!sel4_notify_idle(s, io)) {
            if (virtio_queue_empty(vq)) {
                qatomic_set(&io->active, false);
            }
            return;
        }
    } else if (io->sup.idle_ns) {
        /* busy again after a dry spell: the stall clock starts now */
        io->sup.idle_ns = 0;
        io->sup.used = used;
        io->sup.progress_ns = s->notify_now;
    } else if (used != io->sup.used) {
        io->sup.used = used;
        io->sup.progress_ns = s->notify_now;
    } else if (last_avail != used &&
               s->notify_now - io->sup.progress_ns >= bound) {
        sel4_notify_end(s, io, true);
        return;
    }
    if (last_avail != io->sup.last_avail) {
        /* the device took requests: its pop moved avail_event up */
        if (virtio_vdev_has_feature(io->vdev, VIRTIO_RING_F_EVENT_IDX)) {
            sel4_vq_park_avail_event(io->vdev, io->queue, last_avail);
            /* parked before the ring is read below (as in begin) */
            smp_mb();
        }
        io->sup.last_avail = last_avail;
    }
    /* new requests: kick once, until the device has taken them */
    if ((!io->sup.kicked || io->sup.kicked_at != last_avail) &&
        !virtio_queue_empty(vq)) {
        io->sup.kicked = true;
        io->sup.kicked_at = last_avail;
        sel4_stat_add(s, SEL4_STAT_NOTIFY_POLLED, 1);
        trace_sel4_notify_kick(io->queue, last_avail);
        virtio_queue_notify(io->vdev, io->queue);
    }
    if (last_avail != used) {
        s->notify_deadline = MIN(s->notify_deadline,
                                 io->sup.progress_ns + bound);
    }
}

void sel4_notify_release(Sel4State *s, Sel4Ioeventfd *io)
{
    VirtQueue *vq;

    if (!io->sup.on) {
        return;
    }
    io->sup.on = false;
    if (!sel4_vq_handled(io)) {
        return;
    }
    vq = virtio_get_queue(io->vdev, io->queue);
    virtio_queue_set_notification(vq, 1);
    if (!virtio_queue_empty(vq)) {
        /* the device's host notifier clean-up reads this and serves */
        event_notifier_set(io->e);
    }
}

/* ---- the stall check's wake-up ---- */

/*
 * Only a stalled queue needs the loop woken: completions bring it round
 * otherwise.  A QEMU timer would do, but a pending one gives every ppoll()
 * of the main loop a timeout, an hrtimer armed and cancelled per turn (a
 * VM exit each on a virtualised device VM: 12% of QEMU's CPU in
 * native_write_msr with 200 us of fio traffic).  So on the main loop's
 * io_uring one IORING_OP_TIMEOUT is in flight at a time, armed from the
 * poll notifier; the timer is the fallback where the loop has no ring.
 */
#ifdef SEL4_HAVE_AIO_ADD_SQE
static void sel4_notify_timeout_prep(struct io_uring_sqe *sqe, void *opaque)
{
    Sel4State *s = opaque;

    io_uring_prep_timeout(sqe, &s->notify_ts, 0, 0);
}

/* Its whole job is to bring the loop round: the poll notifier checks. */
static void sel4_notify_timeout_done(CqeHandler *cqe)
{
    Sel4State *s = container_of(cqe, Sel4State, notify_cqe);

    s->notify_timeout_armed = false;
}
#endif

static void sel4_notify_timer(void *opaque)
{
}

static void sel4_notify_wake_at(Sel4State *s, int64_t deadline)
{
#ifdef SEL4_HAVE_AIO_ADD_SQE
    if (aio_has_io_uring()) {
        int64_t ns = MAX(deadline - s->notify_now, SCALE_US);

        if (!s->notify_timeout_armed) {
            s->notify_ts = (struct __kernel_timespec) {
                .tv_sec = ns / NANOSECONDS_PER_SECOND,
                .tv_nsec = ns % NANOSECONDS_PER_SECOND,
            };
            s->notify_cqe.cb = sel4_notify_timeout_done;
            aio_add_sqe(sel4_notify_timeout_prep, s, &s->notify_cqe);
            s->notify_timeout_armed = true;
        }
        return;
    }
#endif
    if (!s->notify_timer) {
        s->notify_timer = timer_new_ns(QEMU_CLOCK_REALTIME, sel4_notify_timer,
                                       s);
    }
    if (!timer_pending(s->notify_timer) ||
        timer_expire_time_ns(s->notify_timer) > deadline) {
        timer_mod(s->notify_timer, deadline);
    }
}

/* ---- the main loop's turn ---- */

static void sel4_notify_poll(Notifier *notifier, void *opaque)
{
    Sel4State *s = container_of(notifier, Sel4State, notify_poll);
    MainLoopPoll *mlp = opaque;

    if (mlp->state != MAIN_LOOP_POLL_FILL) {
        return;
    }
    s->notify_now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    s->notify_deadline = INT64_MAX;
    s->notify_polling = false;
    sel4_ioeventfd_foreach(s, sel4_notify_check);
    if (s->notify_polling) {
        /* a queue in its poll window: look again at once, do not sleep */
        mlp->timeout = 0;
    } else if (s->notify_deadline != INT64_MAX) {
        sel4_notify_wake_at(s, s->notify_deadline);
    }
}

/* ---- queues served by an IOThread: virtio's notify hold ---- */

static void sel4_notify_hold_event(VirtQueue *vq, VirtioNotifyHoldEvent ev,
                                   unsigned arg, void *opaque)
{
    static const Sel4Counter counter[] = {
        [VIRTIO_NOTIFY_HOLD_BEGIN] = SEL4_STAT_NOTIFY_SUPPRESSED,
        [VIRTIO_NOTIFY_HOLD_KICK] = SEL4_STAT_NOTIFY_POLLED,
        [VIRTIO_NOTIFY_HOLD_STALL] = SEL4_STAT_NOTIFY_STALLED,
    };
    Sel4State *s = opaque;
    int queue = virtio_get_queue_index(vq);

    switch (ev) {
    case VIRTIO_NOTIFY_HOLD_BEGIN:
        trace_sel4_notify_begin(queue, arg);
        break;
    case VIRTIO_NOTIFY_HOLD_KICK:
        trace_sel4_notify_kick(queue, arg);
        break;
    case VIRTIO_NOTIFY_HOLD_END:
    case VIRTIO_NOTIFY_HOLD_STALL:
        trace_sel4_notify_end(queue, ev == VIRTIO_NOTIFY_HOLD_STALL);
        break;
    }
    if (ev != VIRTIO_NOTIFY_HOLD_END) {
        sel4_stat_add(s, counter[ev], 1);
    }
}

void sel4_notify_init(Sel4State *s)
{
    VirtioNotifyHoldConfig hold = {
        .bound_ns = (int64_t)s->notify_suppress_us * SCALE_US,
        .poll_ns = (int64_t)s->notify_poll_us * SCALE_US,
        .event = sel4_notify_hold_event,
        .opaque = s,
    };

    if (!s->notify_suppress_us) {
        return;
    }
    s->notify_poll.notify = sel4_notify_poll;
    main_loop_poll_add_notifier(&s->notify_poll);
    virtio_notify_hold_configure(&hold);
}
