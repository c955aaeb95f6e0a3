/*
 * The simulated guest's virtio-blk driver (see virtio-blk.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Each request slot owns 48 bytes of guest RAM: the 16-byte header
 * (type, reserved, sector), the 16-byte discard/write-zeroes segment, and
 * the status byte the device writes last.
 */
#include <assert.h>
#include <endian.h>
#include <string.h>

#include "virtio-blk.h"

#define SLOT_BYTES      48
#define SLOT_SEG        16
#define SLOT_STATUS     32
#define BOUNCE_BYTES    (1u << 20)

/* device config (virtio 1.x 5.2.4) */
#define CFG_CAPACITY            0
#define CFG_SEG_MAX             12
#define CFG_NUM_QUEUES          34
#define CFG_MAX_DISCARD_SECTORS 36
#define CFG_MAX_WZ_SECTORS      48

typedef struct BlkHdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
} BlkHdr;

typedef struct BlkSeg {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
} BlkSeg;

static bool blk_fail(GError **errp, const char *what)
{
    g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID, "virtio-blk: %s",
                what);
    return false;
}

static bool blk_read_config(VirtioBlk *b, GError **errp)
{
    uint64_t v = 0;

    if (!virtio_pci_config_read(&b->pci, CFG_CAPACITY, 8, &b->capacity,
                                errp)) {
        return false;
    }
    if (virtio_pci_has(&b->pci, VIRTIO_BLK_F_SEG_MAX)) {
        if (!virtio_pci_config_read(&b->pci, CFG_SEG_MAX, 4, &v, errp)) {
            return false;
        }
        b->seg_max = v;
    }
    if (virtio_pci_has(&b->pci, VIRTIO_BLK_F_DISCARD)) {
        if (!virtio_pci_config_read(&b->pci, CFG_MAX_DISCARD_SECTORS, 4, &v,
                                    errp)) {
            return false;
        }
        b->max_discard_sectors = v;
    }
    if (virtio_pci_has(&b->pci, VIRTIO_BLK_F_WRITE_ZEROES)) {
        if (!virtio_pci_config_read(&b->pci, CFG_MAX_WZ_SECTORS, 4, &v,
                                    errp)) {
            return false;
        }
        b->max_write_zeroes_sectors = v;
    }
    return true;
}

/* Request queues 1.. (VIRTIO_BLK_F_MQ): as many as asked, if offered. */
static bool blk_setup_more_queues(VirtioBlk *b, uint16_t queue_size,
                                  GError **errp)
{
    uint64_t offered = 1;
    unsigned q;

    if (b->nqueues == 1) {
        return true;
    }
    if (!virtio_pci_has(&b->pci, VIRTIO_BLK_F_MQ) ||
        !virtio_pci_config_read(&b->pci, CFG_NUM_QUEUES, 2, &offered,
                                errp) ||
        offered < b->nqueues) {
        return errp && *errp ? false :
               blk_fail(errp, "the device offers fewer request queues");
    }
    for (q = 1; q < b->nqueues; q++) {
        if (!virtio_pci_setup_queue(&b->pci, &b->more[q - 1], q, queue_size,
                                    errp)) {
            return false;
        }
    }
    return true;
}

bool virtio_blk_init(VirtioBlk *b, VmmSim *sim, GuestAlloc *mem,
                     unsigned index, uint64_t *mmio_next, unsigned spi_base,
                     bool use_msix, uint16_t queue_size, GError **errp)
{
    return virtio_blk_init_mq(b, sim, mem, index, mmio_next, spi_base,
                              use_msix, queue_size, 1, errp);
}

bool virtio_blk_init_mq(VirtioBlk *b, VmmSim *sim, GuestAlloc *mem,
                        unsigned index, uint64_t *mmio_next,
                        unsigned spi_base, bool use_msix,
                        uint16_t queue_size, unsigned nqueues,
                        GError **errp)
{
    uint64_t wanted = UINT64_C(1) << VIRTIO_BLK_F_SEG_MAX |
                      UINT64_C(1) << VIRTIO_BLK_F_BLK_SIZE |
                      UINT64_C(1) << VIRTIO_BLK_F_FLUSH |
                      UINT64_C(1) << VIRTIO_BLK_F_DISCARD |
                      UINT64_C(1) << VIRTIO_BLK_F_WRITE_ZEROES |
                      UINT64_C(1) << VIRTIO_BLK_F_RO |
                      UINT64_C(1) << VIRTIO_F_INDIRECT_DESC |
                      UINT64_C(1) << VIRTIO_F_EVENT_IDX;
    unsigned i;

    memset(b, 0, sizeof(*b));
    if (!nqueues || nqueues > VIRTIO_BLK_MAX_QUEUES) {
        return blk_fail(errp, "1 to VIRTIO_BLK_MAX_QUEUES request queues");
    }
    b->nqueues = nqueues;
    if (nqueues > 1) {
        wanted |= UINT64_C(1) << VIRTIO_BLK_F_MQ;
    }
    if (!virtio_pci_probe(&b->pci, sim, mem, index, mmio_next, errp) ||
        !virtio_pci_negotiate(&b->pci, wanted, errp) ||
        !virtio_pci_setup_irqs(&b->pci, spi_base, use_msix, errp) ||
        !virtio_pci_setup_queue(&b->pci, &b->vq, 0, queue_size, errp) ||
        !blk_setup_more_queues(b, queue_size, errp) ||
        !blk_read_config(b, errp) ||
        !virtio_pci_driver_ok(&b->pci, errp)) {
        return false;
    }
    b->nreqs = b->vq.size;
    b->reqs = g_new0(VirtioBlkReq, b->nreqs);
    for (i = 0; i < b->nreqs; i++) {
        b->reqs[i].slot = i;
        b->reqs[i].hdr_gpa = guest_alloc(mem, SLOT_BYTES, 16);
        if (!b->reqs[i].hdr_gpa) {
            return blk_fail(errp, "no guest RAM for request headers");
        }
    }
    b->bounce_size = BOUNCE_BYTES;
    b->bounce_gpa = guest_alloc(mem, BOUNCE_BYTES, 4096);
    return b->bounce_gpa ? true
                         : blk_fail(errp, "no guest RAM for the bounce buffer");
}

Virtq *virtio_blk_vq(VirtioBlk *b, unsigned q)
{
    assert(q < MAX(b->nqueues, 1));
    return q ? &b->more[q - 1] : &b->vq;
}

void virtio_blk_destroy(VirtioBlk *b)
{
    unsigned q;

    for (q = 1; q < b->nqueues; q++) {
        virtq_destroy(&b->more[q - 1]);
    }
    virtq_destroy(&b->vq);
    g_free(b->reqs);
    b->reqs = NULL;
}

static VirtioBlkReq *blk_free_req(VirtioBlk *b)
{
    for (unsigned i = 0; i < b->nreqs; i++) {
        if (!b->reqs[i].busy) {
            return &b->reqs[i];
        }
    }
    return NULL;
}

/* Whether a request stays inside the disk and its type is offered. */
static bool blk_request_ok(VirtioBlk *b, unsigned type, uint64_t sector,
                           uint32_t len, GError **errp)
{
    uint64_t nsec = len / VIRTIO_BLK_SECTOR;

    switch (type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        if (!len || len % VIRTIO_BLK_SECTOR || sector > b->capacity ||
            nsec > b->capacity - sector) {
            return blk_fail(errp, "request outside the disk");
        }
        break;
    case VIRTIO_BLK_T_FLUSH:
        break;
    default:
        return blk_fail(errp, "unknown request type");
    }
    if ((type == VIRTIO_BLK_T_OUT && virtio_pci_has(&b->pci,
                                                    VIRTIO_BLK_F_RO)) ||
        (type == VIRTIO_BLK_T_FLUSH &&
         !virtio_pci_has(&b->pci, VIRTIO_BLK_F_FLUSH)) ||
        (type == VIRTIO_BLK_T_DISCARD &&
         !virtio_pci_has(&b->pci, VIRTIO_BLK_F_DISCARD)) ||
        (type == VIRTIO_BLK_T_WRITE_ZEROES &&
         !virtio_pci_has(&b->pci, VIRTIO_BLK_F_WRITE_ZEROES))) {
        return blk_fail(errp, "request type not offered by the device");
    }
    return true;
}

VirtioBlkReq *virtio_blk_submit(VirtioBlk *b, unsigned type,
                                uint64_t sector, uint64_t data_gpa,
                                uint32_t len, void *opaque, GError **errp)
{
    return virtio_blk_submit_on(b, 0, type, sector, data_gpa, len, opaque,
                                errp);
}

VirtioBlkReq *virtio_blk_submit_on(VirtioBlk *b, unsigned q, unsigned type,
                                   uint64_t sector, uint64_t data_gpa,
                                   uint32_t len, void *opaque, GError **errp)
{
    VirtioBlkReq *req;
    VirtqBuf bufs[3];
    BlkHdr *hdr;
    unsigned n = 0;

    if (!blk_request_ok(b, type, sector, len, errp)) {
        return NULL;
    }
    req = blk_free_req(b);
    if (!req) {
        blk_fail(errp, "queue full");
        return NULL;
    }
    hdr = guest_ptr(b->pci.mem, req->hdr_gpa, SLOT_BYTES);
    *hdr = (BlkHdr) {
        .type = htole32(type),
        .sector = htole64(type == VIRTIO_BLK_T_FLUSH ? 0 : sector),
    };
    bufs[n++] = (VirtqBuf) { req->hdr_gpa, sizeof(BlkHdr), false };
    if (type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_OUT) {
        bufs[n++] = (VirtqBuf) { data_gpa, len, type == VIRTIO_BLK_T_IN };
    } else if (type != VIRTIO_BLK_T_FLUSH) {
        BlkSeg *seg = (BlkSeg *)((uint8_t *)hdr + SLOT_SEG);

        *seg = (BlkSeg) {
            .sector = htole64(sector),
            .num_sectors = htole32(len / VIRTIO_BLK_SECTOR),
        };
        bufs[n++] = (VirtqBuf) { req->hdr_gpa + SLOT_SEG, sizeof(*seg),
                                 false };
    }
    /* the device's last write: we poison it to see that it happened */
    ((uint8_t *)hdr)[SLOT_STATUS] = 0xff;
    bufs[n++] = (VirtqBuf) { req->hdr_gpa + SLOT_STATUS, 1, true };
    if (virtq_add(virtio_blk_vq(b, q), bufs, n, req, true) < 0) {
        blk_fail(errp, "virtqueue full");
        return NULL;
    }
    *req = (VirtioBlkReq) {
        .slot = req->slot, .type = type, .sector = sector, .len = len,
        .opaque = opaque, .queue = q, .hdr_gpa = req->hdr_gpa,
        .busy = true, .status = 0xff,
    };
    b->in_flight++;
    return req;
}

bool virtio_blk_kick(VirtioBlk *b, GError **errp)
{
    return virtio_blk_kick_on(b, 0, errp);
}

bool virtio_blk_kick_on(VirtioBlk *b, unsigned q, GError **errp)
{
    return virtio_pci_kick(&b->pci, virtio_blk_vq(b, q), errp);
}

/* @req came back from the device: its status, and its slot is free. */
static VirtioBlkReq *blk_done(VirtioBlk *b, VirtioBlkReq *req)
{
    req->status = *(volatile uint8_t *)guest_ptr(b->pci.mem,
                                                 req->hdr_gpa + SLOT_STATUS,
                                                 1);
    req->busy = false;
    b->in_flight--;
    return req;
}

VirtioBlkReq *virtio_blk_complete(VirtioBlk *b, int timeout_ms,
                                  GError **errp)
{
    VirtioBlkReq *req = virtio_pci_wait_used(&b->pci, &b->vq, NULL,
                                             timeout_ms, errp);

    return req ? blk_done(b, req) : NULL;
}

VirtioBlkReq *virtio_blk_poll(VirtioBlk *b)
{
    return virtio_blk_poll_on(b, 0);
}

VirtioBlkReq *virtio_blk_poll_on(VirtioBlk *b, unsigned q)
{
    VirtioBlkReq *req = virtq_get_used(virtio_blk_vq(b, q), NULL);

    return req ? blk_done(b, req) : NULL;
}

/* Submit one request, kick, and wait for it (nothing else in flight). */
static bool blk_sync(VirtioBlk *b, unsigned type, uint64_t sector,
                     uint64_t gpa, uint32_t len, GError **errp)
{
    VirtioBlkReq *req;

    if (b->in_flight) {
        return blk_fail(errp, "synchronous request with others in flight");
    }
    req = virtio_blk_submit(b, type, sector, gpa, len, NULL, errp);
    if (!req || !virtio_blk_kick(b, errp)) {
        return false;
    }
    req = virtio_blk_complete(b, 10000, errp);
    if (!req) {
        return false;
    }
    if (req->status != VIRTIO_BLK_S_OK) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "virtio-blk: request type %u at sector %" G_GUINT64_FORMAT
                    " failed with status %u", type, sector, req->status);
        return false;
    }
    return true;
}

bool virtio_blk_rw(VirtioBlk *b, bool write, uint64_t sector, void *buf,
                   uint32_t len, GError **errp)
{
    uint8_t *bounce = guest_ptr(b->pci.mem, b->bounce_gpa, b->bounce_size);

    if (len > b->bounce_size) {
        return blk_fail(errp, "request larger than the bounce buffer");
    }
    if (write) {
        memcpy(bounce, buf, len);
    }
    if (!blk_sync(b, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, sector,
                  b->bounce_gpa, len, errp)) {
        return false;
    }
    if (!write) {
        memcpy(buf, bounce, len);
    }
    return true;
}

bool virtio_blk_flush(VirtioBlk *b, GError **errp)
{
    return blk_sync(b, VIRTIO_BLK_T_FLUSH, 0, 0, 0, errp);
}

bool virtio_blk_zero(VirtioBlk *b, unsigned type, uint64_t sector,
                     uint32_t nsectors, GError **errp)
{
    return blk_sync(b, type, sector, 0, nsectors * VIRTIO_BLK_SECTOR, errp);
}
