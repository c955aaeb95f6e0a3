/*
 * virtio: guest notifies held off while an IOThread's virtqueue has
 * requests in flight.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The contract between an accelerator and hw/virtio/virtio.c (which
 * includes hw/virtio/virtio-notify-hold.c.inc, see there for how it
 * works).  Off unless an accelerator configures it; with it off virtio
 * behaves exactly as upstream.
 */
#ifndef HW_VIRTIO_NOTIFY_HOLD_H
#define HW_VIRTIO_NOTIFY_HOLD_H

#include "qemu/timer.h"
#include "hw/virtio/virtio.h"

typedef enum VirtioNotifyHoldEvent {
    VIRTIO_NOTIFY_HOLD_BEGIN,   /* guest notifies off, requests in flight */
    VIRTIO_NOTIFY_HOLD_KICK,    /* requests found in the ring meanwhile */
    VIRTIO_NOTIFY_HOLD_END,     /* on again: drained and the window over */
    /*
     * on again: nothing completed for bound, or the handler left in the
     * ring what it was run for
     */
    VIRTIO_NOTIFY_HOLD_STALL,
} VirtioNotifyHoldEvent;

typedef struct VirtioNotifyHoldConfig {
    /* notifies come back on when nothing completed for this long; 0: off */
    int64_t bound_ns;
    /* ... and stay off this long after the queue ran dry */
    int64_t poll_ns;
    /*
     * Called in the IOThread for every event, with the queue's index and
     * (BEGIN) the requests in flight or (KICK) the device's
     * last_avail_idx.  May be NULL.
     */
    void (*event)(VirtQueue *vq, VirtioNotifyHoldEvent ev, unsigned arg,
                  void *opaque);
    void *opaque;
} VirtioNotifyHoldConfig;

/*
 * Turn the hold on for every virtqueue whose host notifier is attached to
 * an IOThread's AioContext from now on.  Call once, before devices start
 * (an accelerator's init_machine), with the BQL held.
 */
void virtio_notify_hold_configure(const VirtioNotifyHoldConfig *cfg);

/* A virtqueue's hold: its IOThread's, once attached there. */
typedef struct VirtQueueHold {
    AioContext *ctx;            /* attached to an IOThread: held there */
    QEMUTimer timer;            /* a look at the ring: now, or at bound */
    bool on;                    /* guest notifies off */
    bool due;                   /* timer set to fire at once */
    bool stalled;               /* a STALL: not again until progress */
    uint16_t used;              /* used_idx at the last progress */
    int64_t progress_ns;        /* when used_idx last moved */
    int64_t idle_ns;            /* when the queue ran dry, or 0 */
} VirtQueueHold;

#endif
