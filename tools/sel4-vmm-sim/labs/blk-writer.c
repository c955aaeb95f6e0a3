/*
 * A checkable guest write workload (see blk-writer.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "blk-writer.h"

#define BLK_MAGIC           UINT64_C(0x314b4c4234455345)    /* "ESE4BLK1" */
#define VERIFY_CHUNK        64u                             /* blocks */
#define FLUSH_TOKEN         ((void *)1)

typedef struct BlkHeader {
    uint64_t magic;
    uint64_t nonce;
    uint64_t block;
    uint64_t sum;           /* FNV-1a of the payload */
} BlkHeader;

static uint64_t fnv1a(const uint8_t *p, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);

    for (size_t i = 0; i < len; i++) {
        h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    }
    return h;
}

/* The payload of block @n: xorshift64 words seeded by (nonce, n). */
static void payload(uint64_t *w, size_t nwords, uint64_t nonce, uint64_t n)
{
    uint64_t x = nonce ^ (n * UINT64_C(0x9e3779b97f4a7c15)) ^ 1;

    for (size_t i = 0; i < nwords; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w[i] = x;
    }
}

static void fill_block(void *block, uint64_t nonce, uint64_t n)
{
    BlkHeader *h = block;
    uint8_t *p = (uint8_t *)block + sizeof(*h);
    size_t len = BLK_WRITER_BLOCK - sizeof(*h);

    payload((uint64_t *)p, len / 8, nonce, n);
    *h = (BlkHeader) {
        .magic = BLK_MAGIC, .nonce = nonce, .block = n,
        .sum = fnv1a(p, len),
    };
}

int blk_writer_check_block(const void *block, uint64_t nonce, uint64_t n)
{
    uint64_t want[BLK_WRITER_BLOCK / 8];
    const uint8_t *b = block;
    size_t i;

    for (i = 0; i < BLK_WRITER_BLOCK && !b[i]; i++) {
        continue;
    }
    if (i == BLK_WRITER_BLOCK) {
        return 0;
    }
    fill_block(want, nonce, n);
    return memcmp(want, block, BLK_WRITER_BLOCK) ? -1 : 1;
}

bool blk_writer_init(BlkWriter *w, VirtioBlk *blk, GuestAlloc *mem,
                     uint64_t first_sector, uint64_t nblocks, unsigned depth,
                     unsigned flush_every, uint64_t nonce, GError **errp)
{
    memset(w, 0, sizeof(*w));
    if (!depth || depth > blk->nreqs - 1 ||
        first_sector + nblocks * (BLK_WRITER_BLOCK / VIRTIO_BLK_SECTOR) >
        blk->capacity) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID,
                    "blk-writer: depth %u or %" G_GUINT64_FORMAT " blocks "
                    "do not fit the queue or the disk", depth, nblocks);
        return false;
    }
    w->blk = blk;
    w->first_sector = first_sector;
    w->nblocks = nblocks;
    w->depth = depth;
    w->flush_every = flush_every;
    w->nonce = nonce;
    w->buf_gpa = g_new0(uint64_t, depth);
    w->buf_block = g_new0(uint64_t, depth);
    w->free_bufs = g_new0(unsigned, depth);
    w->state = g_new0(uint8_t, nblocks);
    w->ack_epoch = g_new0(uint32_t, nblocks);
    for (unsigned i = 0; i < depth; i++) {
        w->buf_gpa[i] = guest_alloc(mem, BLK_WRITER_BLOCK, 4096);
        if (!w->buf_gpa[i]) {
            g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID,
                        "blk-writer: no guest RAM for %u buffers", depth);
            return false;
        }
        w->free_bufs[w->nfree++] = i;
    }
    return true;
}

void blk_writer_destroy(BlkWriter *w)
{
    g_free(w->buf_gpa);
    g_free(w->buf_block);
    g_free(w->free_bufs);
    g_free(w->state);
    g_free(w->ack_epoch);
    memset(w, 0, sizeof(*w));
}

unsigned blk_writer_in_flight(const BlkWriter *w)
{
    return w->depth - w->nfree + w->flushes_in_flight;
}

uint64_t blk_writer_acked_prefix(const BlkWriter *w)
{
    uint64_t n = 0;

    while (n < w->next && w->state[n] >= BLK_BLOCK_ACKED) {
        n++;
    }
    return n;
}

bool blk_writer_flush(BlkWriter *w, GError **errp)
{
    /* covers what completed so far: epoch w->epoch */
    uint64_t token = (uint64_t)w->epoch << 1 | 1;

    if (!virtio_blk_submit(w->blk, VIRTIO_BLK_T_FLUSH, 0, 0, 0,
                           (void *)(uintptr_t)token, errp)) {
        return false;
    }
    w->epoch++;
    w->since_flush = 0;
    w->flushes_in_flight++;
    return true;
}

static bool submit_write(BlkWriter *w, GError **errp)
{
    unsigned b = w->free_bufs[w->nfree - 1];
    uint64_t n = w->next;
    void *p = guest_ptr(w->blk->pci.mem, w->buf_gpa[b], BLK_WRITER_BLOCK);

    fill_block(p, w->nonce, n);
    /* buffer index, shifted: an even token is a write */
    if (!virtio_blk_submit(w->blk, VIRTIO_BLK_T_OUT,
                           w->first_sector +
                           n * (BLK_WRITER_BLOCK / VIRTIO_BLK_SECTOR),
                           w->buf_gpa[b], BLK_WRITER_BLOCK,
                           (void *)(uintptr_t)((uint64_t)b << 1), errp)) {
        return false;
    }
    w->nfree--;
    w->buf_block[b] = n;
    w->state[n] = BLK_BLOCK_IN_FLIGHT;
    w->next++;
    return true;
}

static void flush_done(BlkWriter *w, uint32_t epoch)
{
    if (epoch + 1 <= w->durable_below) {
        return;
    }
    w->durable_below = epoch + 1;
    for (uint64_t n = 0; n < w->next; n++) {
        if (w->state[n] == BLK_BLOCK_ACKED &&
            w->ack_epoch[n] < w->durable_below) {
            w->state[n] = BLK_BLOCK_DURABLE;
            w->durable++;
        }
    }
}

static bool reap(BlkWriter *w, VirtioBlkReq *req, GError **errp)
{
    uint64_t token = (uintptr_t)req->opaque;

    if (req->status != VIRTIO_BLK_S_OK) {
        w->io_errors++;
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "blk-writer: request type %u failed with status %u",
                    req->type, req->status);
        return false;
    }
    if (token & 1) {
        w->flushes_in_flight--;
        w->flushes_done++;
        flush_done(w, token >> 1);
        return true;
    }
    w->state[w->buf_block[token >> 1]] = BLK_BLOCK_ACKED;
    w->ack_epoch[w->buf_block[token >> 1]] = w->epoch;
    w->free_bufs[w->nfree++] = token >> 1;
    w->acked++;
    w->since_flush++;
    return true;
}

bool blk_writer_step(BlkWriter *w, int timeout_ms, GError **errp)
{
    VirtioBlkReq *req;
    bool added = false;

    while (w->nfree && w->next < w->nblocks) {
        if (!submit_write(w, errp)) {
            return false;
        }
        added = true;
    }
    if (w->flush_every && w->since_flush >= w->flush_every &&
        !w->flushes_in_flight) {
        if (!blk_writer_flush(w, errp)) {
            return false;
        }
        added = true;
    }
    if (added && !virtio_blk_kick(w->blk, errp)) {
        return false;
    }
    if (!blk_writer_in_flight(w)) {
        return true;
    }
    req = virtio_blk_complete(w->blk, timeout_ms, errp);
    if (!req) {
        return false;
    }
    do {
        if (!reap(w, req, errp)) {
            return false;
        }
    } while ((req = virtio_blk_complete(w->blk, 0, NULL)));
    return true;
}

bool blk_writer_drain(BlkWriter *w, int timeout_ms, GError **errp)
{
    uint64_t stop = w->nblocks;

    /* no new writes: pretend the region ends here */
    w->nblocks = w->next;
    while (blk_writer_in_flight(w)) {
        if (!blk_writer_step(w, timeout_ms, errp)) {
            w->nblocks = stop;
            return false;
        }
    }
    if (!blk_writer_flush(w, errp) || !virtio_blk_kick(w->blk, errp)) {
        w->nblocks = stop;
        return false;
    }
    while (blk_writer_in_flight(w)) {
        if (!blk_writer_step(w, timeout_ms, errp)) {
            w->nblocks = stop;
            return false;
        }
    }
    w->nblocks = stop;
    return true;
}

static void count(BlkVerify *v, BlkBlockState st, int r)
{
    switch (st) {
    case BLK_BLOCK_DURABLE:
        *(r > 0 ? &v->durable_ok : &v->durable_bad) += 1;
        break;
    case BLK_BLOCK_ACKED:
        *(r > 0 ? &v->acked_ok : r == 0 ? &v->acked_zero : &v->acked_bad) += 1;
        break;
    case BLK_BLOCK_IN_FLIGHT:
        *(r > 0 ? &v->in_flight_ok : r == 0 ? &v->in_flight_zero
                                            : &v->in_flight_bad) += 1;
        break;
    default:
        *(r == 0 ? &v->unwritten_zero : &v->unwritten_bad) += 1;
        break;
    }
}

bool blk_writer_verify(const BlkWriter *w, VirtioBlk *blk, BlkVerify *v,
                       GError **errp)
{
    g_autofree uint8_t *buf = g_malloc(VERIFY_CHUNK * BLK_WRITER_BLOCK);
    uint64_t n, k, len;

    memset(v, 0, sizeof(*v));
    for (n = 0; n < w->nblocks; n += len) {
        len = MIN(VERIFY_CHUNK, w->nblocks - n);
        if (!virtio_blk_rw(blk, false, w->first_sector +
                           n * (BLK_WRITER_BLOCK / VIRTIO_BLK_SECTOR), buf,
                           len * BLK_WRITER_BLOCK, errp)) {
            return false;
        }
        for (k = 0; k < len; k++) {
            count(v, w->state[n + k],
                  blk_writer_check_block(buf + k * BLK_WRITER_BLOCK,
                                         w->nonce, n + k));
        }
    }
    return true;
}
