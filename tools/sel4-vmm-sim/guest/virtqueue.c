/*
 * Split virtqueues in the simulated guest's RAM, the driver side
 * (see virtqueue.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The device shares the rings, so nothing we need later is kept only in
 * them: the free list and the chains live in a private next[] array, and
 * a used entry is believed only for a head we have in flight.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "virtqueue.h"

typedef struct VirtqDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
} VirtqDesc;

typedef struct VirtqAvail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];            /* size entries, then used_event */
} VirtqAvail;

typedef struct VirtqUsedElem {
    uint32_t id;
    uint32_t len;
} VirtqUsedElem;

typedef struct VirtqUsed {
    uint16_t flags;
    uint16_t idx;
    VirtqUsedElem ring[];       /* size entries, then avail_event */
} VirtqUsed;

_Static_assert(sizeof(VirtqDesc) == 16, "virtio 1.x: 16-byte descriptors");

/* The private chain/free-list links, one per descriptor. */
#define VQ_NEXT(vq) ((uint16_t *)((vq)->ndesc + (vq)->size))

bool virtq_init(Virtq *vq, GuestAlloc *mem, unsigned index, uint16_t size,
                bool event_idx, bool indirect)
{
    unsigned i;

    memset(vq, 0, sizeof(*vq));
    if (!size || (size & (size - 1))) {
        return false;
    }
    vq->mem = mem;
    vq->index = index;
    vq->size = size;
    vq->event_idx = event_idx;
    vq->indirect = indirect;
    vq->desc_gpa = guest_alloc(mem, 16u * size, 16);
    vq->avail_gpa = guest_alloc(mem, 6u + 2u * size, 2);
    vq->used_gpa = guest_alloc(mem, 6u + 8u * size, 4);
    if (!vq->desc_gpa || !vq->avail_gpa || !vq->used_gpa) {
        return false;
    }
    vq->desc = guest_ptr(mem, vq->desc_gpa, 16u * size);
    vq->avail = guest_ptr(mem, vq->avail_gpa, 6u + 2u * size);
    vq->used = guest_ptr(mem, vq->used_gpa, 6u + 8u * size);
    vq->token = g_new0(void *, size);
    vq->indirect_gpa = g_new0(uint64_t, size);
    /* ndesc[size] followed by next[size] */
    vq->ndesc = g_new0(uint16_t, 2u * size);
    for (i = 0; i < size; i++) {
        VQ_NEXT(vq)[i] = i + 1;
        if (indirect) {
            vq->indirect_gpa[i] = guest_alloc(mem, 16u * VIRTQ_MAX_SG, 16);
            if (!vq->indirect_gpa[i]) {
                virtq_destroy(vq);
                return false;
            }
        }
    }
    vq->num_free = size;
    return true;
}

void virtq_destroy(Virtq *vq)
{
    g_free(vq->token);
    g_free(vq->indirect_gpa);
    g_free(vq->ndesc);
    vq->token = NULL;
    vq->indirect_gpa = NULL;
    vq->ndesc = NULL;
}

static void virtq_fill(VirtqDesc *d, const VirtqBuf *b, bool more,
                       uint16_t next)
{
    d->addr = htole64(b->gpa);
    d->len = htole32(b->len);
    d->flags = htole16((b->device_writes ? VIRTQ_DESC_F_WRITE : 0) |
                       (more ? VIRTQ_DESC_F_NEXT : 0));
    d->next = htole16(more ? next : 0);
}

/* Readable buffers first, then writable ones (virtio 1.x 2.7.4.2). */
static bool virtq_chain_ok(const VirtqBuf *bufs, unsigned n)
{
    bool writable = false;

    if (!n || n > VIRTQ_MAX_SG) {
        return false;
    }
    for (unsigned i = 0; i < n; i++) {
        if (writable && !bufs[i].device_writes) {
            return false;
        }
        writable |= bufs[i].device_writes;
    }
    return true;
}

int virtq_add(Virtq *vq, const VirtqBuf *bufs, unsigned n, void *token,
              bool use_indirect)
{
    uint16_t *next = VQ_NEXT(vq);
    uint16_t head = vq->free_head, idx = head, last = head;
    bool indirect = use_indirect && vq->indirect && n > 1;
    unsigned i, need = indirect ? 1 : n;

    if (!virtq_chain_ok(bufs, n) || !token) {
        return -EINVAL;
    }
    if (vq->num_free < need) {
        return -ENOSPC;
    }
    if (indirect) {
        VirtqDesc *table = guest_ptr(vq->mem, vq->indirect_gpa[head],
                                     16u * n);

        for (i = 0; i < n; i++) {
            virtq_fill(&table[i], &bufs[i], i + 1 < n, i + 1);
        }
        vq->desc[head] = (VirtqDesc) {
            .addr = htole64(vq->indirect_gpa[head]),
            .len = htole32(16u * n),
            .flags = htole16(VIRTQ_DESC_F_INDIRECT),
        };
    } else {
        for (i = 0; i < n; i++) {
            last = idx;
            virtq_fill(&vq->desc[idx], &bufs[i], i + 1 < n, next[idx]);
            idx = next[idx];
        }
    }
    vq->free_head = indirect ? next[head] : next[last];
    vq->num_free -= need;
    vq->token[head] = token;
    vq->ndesc[head] = need;

    vq->avail->ring[vq->avail_idx % vq->size] = htole16(head);
    /* the descriptors and the ring entry before the index (release) */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    vq->avail_idx++;
    __atomic_store_n(&vq->avail->idx, htole16(vq->avail_idx),
                     __ATOMIC_RELAXED);
    vq->stats_added++;
    return head;
}

bool virtq_kick_prepare(Virtq *vq)
{
    uint16_t old = vq->kicked_idx, new = vq->avail_idx, event;
    bool kick;

    /* our avail index before we look at what the device asked for */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    vq->kicked_idx = new;
    if (vq->event_idx) {
        event = le16toh(__atomic_load_n(
            (uint16_t *)&vq->used->ring[vq->size], __ATOMIC_RELAXED));
        /* vring_need_event(): did new pass event since old? */
        kick = (uint16_t)(new - event - 1) < (uint16_t)(new - old);
    } else {
        kick = !(le16toh(__atomic_load_n(&vq->used->flags,
                                         __ATOMIC_RELAXED)) &
                 VIRTQ_USED_F_NO_NOTIFY);
    }
    if (kick) {
        vq->stats_kicks++;
    } else if (new != old) {
        vq->stats_kicks_saved++;
    }
    return kick && new != old;
}

void *virtq_get_used(Virtq *vq, uint32_t *len)
{
    uint16_t *next = VQ_NEXT(vq);
    uint16_t used_idx, head, last;
    VirtqUsedElem e;
    void *token;

    for (;;) {
        used_idx = le16toh(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE));
        if (vq->last_used == used_idx) {
            return NULL;
        }
        e = vq->used->ring[vq->last_used % vq->size];
        vq->last_used++;
        if (vq->event_idx) {
            /* interrupt us again as soon as the next entry is used */
            __atomic_store_n(&vq->avail->ring[vq->size],
                             htole16(vq->last_used), __ATOMIC_RELAXED);
            /*
             * used_event before the next look at used->idx: else the
             * device may publish, read the old used_event, not interrupt,
             * and we would sleep on an entry that is there (Linux's
             * virtio_mb() in virtqueue_enable_cb).
             */
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
        }
        head = le32toh(e.id);
        /* a device may only return what we made available */
        if (head < vq->size && vq->token[head]) {
            break;
        }
        g_warning("virtq %u: the device used head %u, not in flight",
                  vq->index, head);
    }
    token = vq->token[head];
    vq->token[head] = NULL;
    last = head;
    for (unsigned i = 1; i < vq->ndesc[head]; i++) {
        last = next[last];
    }
    next[last] = vq->free_head;
    vq->free_head = head;
    vq->num_free += vq->ndesc[head];
    vq->stats_used++;
    if (len) {
        *len = le32toh(e.len);
    }
    return token;
}

unsigned virtq_in_flight(const Virtq *vq)
{
    return (uint16_t)(vq->avail_idx - vq->last_used);
}
