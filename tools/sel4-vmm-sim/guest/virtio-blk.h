/*
 * The simulated guest's virtio-blk driver (virtio 1.x, section 5.2).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Requests are asynchronous: virtio_blk_submit() queues one (its data in
 * guest RAM, zero-copy), virtio_blk_kick() notifies the device once for
 * everything queued, virtio_blk_complete() reaps one completion, waiting
 * for the interrupt when none is there.  Up to the queue size may be in
 * flight.  The synchronous helpers below copy through a bounce buffer.
 */
#ifndef VMM_SIM_VIRTIO_BLK_H
#define VMM_SIM_VIRTIO_BLK_H

#include "virtio-pci.h"

#define VIRTIO_BLK_F_SIZE_MAX       1
#define VIRTIO_BLK_F_SEG_MAX        2
#define VIRTIO_BLK_F_RO             5
#define VIRTIO_BLK_F_BLK_SIZE       6
#define VIRTIO_BLK_F_FLUSH          9
#define VIRTIO_BLK_F_MQ             12
#define VIRTIO_BLK_F_DISCARD        13
#define VIRTIO_BLK_F_WRITE_ZEROES   14

#define VIRTIO_BLK_T_IN             0
#define VIRTIO_BLK_T_OUT            1
#define VIRTIO_BLK_T_FLUSH          4
#define VIRTIO_BLK_T_GET_ID         8
#define VIRTIO_BLK_T_DISCARD        11
#define VIRTIO_BLK_T_WRITE_ZEROES   13

#define VIRTIO_BLK_S_OK             0
#define VIRTIO_BLK_S_IOERR          1
#define VIRTIO_BLK_S_UNSUPP         2

#define VIRTIO_BLK_SECTOR           512u
/* request queues the driver brings up at most (VIRTIO_BLK_F_MQ) */
#define VIRTIO_BLK_MAX_QUEUES       4

typedef struct VirtioBlkReq {
    unsigned slot;
    unsigned type;
    uint64_t sector;
    uint32_t len;               /* data bytes */
    uint8_t status;             /* after completion */
    void *opaque;               /* the caller's */
    unsigned queue;             /* the virtqueue it went on */
    uint64_t hdr_gpa;           /* 16-byte header, then the status byte */
    bool busy;
} VirtioBlkReq;

typedef struct VirtioBlk {
    VirtioPci pci;
    Virtq vq;                   /* request queue 0 */
    Virtq more[VIRTIO_BLK_MAX_QUEUES - 1];      /* 1.., with MQ */
    unsigned nqueues;
    uint64_t capacity;          /* in 512-byte sectors */
    uint32_t seg_max;
    uint32_t max_discard_sectors, max_write_zeroes_sectors;
    VirtioBlkReq *reqs;         /* one per queue entry */
    unsigned nreqs, in_flight;
    uint64_t bounce_gpa;        /* for the synchronous helpers */
    uint32_t bounce_size;
} VirtioBlk;

/* Bring up registered device @index with up to @queue_size entries. */
bool virtio_blk_init(VirtioBlk *b, VmmSim *sim, GuestAlloc *mem,
                     unsigned index, uint64_t *mmio_next, unsigned spi_base,
                     bool use_msix, uint16_t queue_size, GError **errp);
/*
 * The same with @nqueues request queues (VIRTIO_BLK_F_MQ when more than
 * one; the device must offer that many), all on the one queue vector.
 */
bool virtio_blk_init_mq(VirtioBlk *b, VmmSim *sim, GuestAlloc *mem,
                        unsigned index, uint64_t *mmio_next,
                        unsigned spi_base, bool use_msix,
                        uint16_t queue_size, unsigned nqueues,
                        GError **errp);
void virtio_blk_destroy(VirtioBlk *b);
/* Request queue @q (0 .. nqueues - 1). */
Virtq *virtio_blk_vq(VirtioBlk *b, unsigned q);

/*
 * Queue one request: IN/OUT with @len bytes at guest-physical @data_gpa,
 * FLUSH with none, DISCARD/WRITE_ZEROES of @len bytes from @sector.
 * Returns the request, or NULL (errp set) when the queue is full or the
 * request is invalid.
 */
VirtioBlkReq *virtio_blk_submit(VirtioBlk *b, unsigned type,
                                uint64_t sector, uint64_t data_gpa,
                                uint32_t len, void *opaque, GError **errp);
bool virtio_blk_kick(VirtioBlk *b, GError **errp);
/* The same on request queue @q. */
VirtioBlkReq *virtio_blk_submit_on(VirtioBlk *b, unsigned q, unsigned type,
                                   uint64_t sector, uint64_t data_gpa,
                                   uint32_t len, void *opaque, GError **errp);
bool virtio_blk_kick_on(VirtioBlk *b, unsigned q, GError **errp);
/*
 * One completed request (its status set), waiting up to @timeout_ms;
 * NULL with @errp set on timeout.  The request is free again once the
 * next submit may reuse it: read it before submitting more.
 */
VirtioBlkReq *virtio_blk_complete(VirtioBlk *b, int timeout_ms,
                                  GError **errp);

/*
 * A completed request if the used ring holds one, without waiting; then
 * virtio_pci_wait() sleeps until the next queue interrupt.  Same rules as
 * virtio_blk_complete().
 */
VirtioBlkReq *virtio_blk_poll(VirtioBlk *b);
/* The same for request queue @q. */
VirtioBlkReq *virtio_blk_poll_on(VirtioBlk *b, unsigned q);

/* Synchronous: one request, submitted, kicked and completed. */
bool virtio_blk_rw(VirtioBlk *b, bool write, uint64_t sector, void *buf,
                   uint32_t len, GError **errp);
bool virtio_blk_flush(VirtioBlk *b, GError **errp);
bool virtio_blk_zero(VirtioBlk *b, unsigned type, uint64_t sector,
                     uint32_t nsectors, GError **errp);

#endif
