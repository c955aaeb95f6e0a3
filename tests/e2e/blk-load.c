/*
 * Guest loads on a simulated virtio-blk (see blk-load.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>

#include "blk-load.h"
#include "qemu-harness.h"

bool blk_load_read(VirtioBlk *b, uint64_t buf, unsigned slot,
                   uint64_t sector, GError **errp)
{
    return virtio_blk_submit(b, VIRTIO_BLK_T_IN, sector,
                             buf + (uint64_t)slot * BLK_LOAD_REQ_BYTES,
                             BLK_LOAD_REQ_BYTES, GUINT_TO_POINTER(slot),
                             errp) &&
           virtio_blk_kick(b, errp);
}

unsigned blk_load_burst(VirtioBlk *b, uint64_t buf, unsigned qd,
                        unsigned total, int timeout_ms)
{
    g_autoptr(GError) err = NULL;
    unsigned sent = 0, done = 0, good = 0, slot;
    VirtioBlkReq *req;

    for (slot = 0; slot < qd && sent < total; slot++, sent++) {
        if (!blk_load_read(b, buf, slot, sent * 8, &err)) {
            goto fail;
        }
    }
    while (done < total) {
        req = virtio_blk_complete(b, timeout_ms, &err);
        while (req) {
            slot = GPOINTER_TO_UINT(req->opaque);
            good += req->status == VIRTIO_BLK_S_OK;
            done++;
            if (sent < total &&
                !blk_load_read(b, buf, slot, sent++ * 8, &err)) {
                goto fail;
            }
            req = virtio_blk_poll(b);
        }
        if (err) {
            goto fail;
        }
    }
    return good;
fail:
    ok(false, "request %u: %s", sent, err->message);
    return good;
}

/* Slot @req's back among the @n free ones; false: not one of ours. */
static bool blk_load_free(unsigned *slots, unsigned *n, unsigned qd,
                          VirtioBlkReq *req)
{
    if (*n >= qd) {
        ok(false, "a completion the load did not submit (slot %u)",
           GPOINTER_TO_UINT(req->opaque));
        return false;
    }
    slots[(*n)++] = GPOINTER_TO_UINT(req->opaque);
    return true;
}

unsigned blk_load_paced(VirtioBlk *b, uint64_t buf, unsigned qd,
                        unsigned total, unsigned gap_us, int timeout_ms)
{
    g_autoptr(GError) err = NULL;
    unsigned sent = 0, done = 0, good = 0, free_slots = qd;
    unsigned slots[BLK_LOAD_QD_MAX], slot;
    VirtioBlkReq *req;

    g_assert(qd <= BLK_LOAD_QD_MAX);
    for (slot = 0; slot < qd; slot++) {
        slots[slot] = slot;
    }
    while (done < total) {
        if (sent < total && free_slots) {
            if (!blk_load_read(b, buf, slots[--free_slots], sent * 8,
                               &err)) {
                break;
            }
            sent++;
            g_usleep(gap_us);
        } else if (!(req = virtio_blk_complete(b, timeout_ms, &err))) {
            break;
        } else if (!blk_load_free(slots, &free_slots, qd, req)) {
            return good;
        } else {
            good += req->status == VIRTIO_BLK_S_OK;
            done++;
        }
        while ((req = virtio_blk_poll(b))) {
            if (!blk_load_free(slots, &free_slots, qd, req)) {
                return good;
            }
            good += req->status == VIRTIO_BLK_S_OK;
            done++;
        }
    }
    if (err) {
        ok(false, "request %u: %s", sent, err->message);
    }
    return good;
}
