/*
 * Split virtqueues in the simulated guest's RAM (virtio 1.x, section 2.7),
 * the driver side.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The rings live in guest RAM (a memfd shared with QEMU), so the device
 * reads and writes them directly; all fields are little-endian.  A request
 * is a chain of guest buffers, device-readable ones first, then
 * device-writable ones, either as linked descriptors or, with indirect
 * descriptors, as one descriptor pointing at a table.  With
 * VIRTIO_RING_F_EVENT_IDX, both sides say when they want to be told
 * (used_event, avail_event) instead of using the flags.
 *
 * Threading: one thread per queue.
 */
#ifndef VMM_SIM_VIRTQUEUE_H
#define VMM_SIM_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "guest-alloc.h"

#define VIRTQ_DESC_F_NEXT       1
#define VIRTQ_DESC_F_WRITE      2
#define VIRTQ_DESC_F_INDIRECT   4
#define VIRTQ_AVAIL_F_NO_INTERRUPT  1
#define VIRTQ_USED_F_NO_NOTIFY      1

/* The most buffers one request may have (an indirect table's size). */
#define VIRTQ_MAX_SG            64

/* One guest buffer of a request. */
typedef struct VirtqBuf {
    uint64_t gpa;
    uint32_t len;
    bool device_writes;         /* the device fills it (VIRTQ_DESC_F_WRITE) */
} VirtqBuf;

typedef struct Virtq {
    GuestAlloc *mem;
    unsigned index;             /* the queue's number on its device */
    uint16_t size;              /* entries, a power of 2 */
    bool event_idx;             /* VIRTIO_RING_F_EVENT_IDX negotiated */
    bool indirect;              /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
    uint64_t desc_gpa, avail_gpa, used_gpa;
    struct VirtqDesc *desc;     /* host views of the three parts */
    struct VirtqAvail *avail;
    struct VirtqUsed *used;
    uint16_t free_head;         /* chain of free descriptors */
    uint16_t num_free;
    uint16_t avail_idx;         /* our next avail index */
    uint16_t kicked_idx;        /* avail index at the last notification */
    uint16_t last_used;         /* next used entry to reap */
    /* per head: the caller's token, descriptors held, indirect table */
    void **token;
    uint16_t *ndesc;
    uint64_t *indirect_gpa;
    uint64_t stats_added, stats_used, stats_kicks, stats_kicks_saved;
} Virtq;

/*
 * Allocate and zero a queue of @size entries in guest RAM (from @mem).
 * Returns false when @size is not a power of 2 or RAM runs out.
 */
bool virtq_init(Virtq *vq, GuestAlloc *mem, unsigned index, uint16_t size,
                bool event_idx, bool indirect);
void virtq_destroy(Virtq *vq);

/*
 * Make @bufs (device-readable ones first) available as one request; with
 * @use_indirect (and the feature), as one indirect descriptor.  @token
 * comes back from virtq_get_used().  Returns the head, -ENOSPC when the
 * ring has no room (reap first), -EINVAL for a bad chain.
 */
int virtq_add(Virtq *vq, const VirtqBuf *bufs, unsigned n, void *token,
              bool use_indirect);
/*
 * Whether the device wants to be notified of what was added since the
 * last notification (event index or VIRTQ_USED_F_NO_NOTIFY); resets the
 * count either way.
 */
bool virtq_kick_prepare(Virtq *vq);
/* The next completed request's token (and bytes written), or NULL. */
void *virtq_get_used(Virtq *vq, uint32_t *len);
/* Requests added and not yet reaped. */
unsigned virtq_in_flight(const Virtq *vq);

#endif /* VMM_SIM_VIRTQUEUE_H */
