/*
 * A guest write workload whose every block can be checked afterwards:
 * the simulated guest writes self-describing blocks through its
 * virtio-blk driver, with flushes, and remembers which writes were
 * acknowledged before a completed flush.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Block n of the region is written once, at most, in order of n, with
 * up to `depth` writes in flight.  Each 4 KiB block carries a header
 * (magic, the run's nonce, its block number, a checksum of the rest) and
 * a payload derived from (nonce, n): a block read back is either all
 * zero, intact, or damaged, and an intact one cannot be another run's or
 * another block's.  Writing every block once means a later write never
 * overwrites (and may never tear) one that was already made durable.
 *
 * A write is *durable* once a flush submitted after its completion has
 * completed (virtio 1.x 5.2.6.1: a flush covers the writes completed
 * before it).
 */
#ifndef VMM_SIM_BLK_WRITER_H
#define VMM_SIM_BLK_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio-blk.h"

#define BLK_WRITER_BLOCK    4096u

typedef enum BlkBlockState {
    BLK_BLOCK_UNWRITTEN,
    BLK_BLOCK_IN_FLIGHT,
    BLK_BLOCK_ACKED,            /* completed, no flush since */
    BLK_BLOCK_DURABLE,          /* completed before a completed flush */
} BlkBlockState;

typedef struct BlkWriter {
    VirtioBlk *blk;
    uint64_t first_sector;
    uint64_t nblocks;
    uint64_t nonce;
    unsigned depth;
    unsigned flush_every;       /* writes acked between flushes; 0: none */
    uint64_t *buf_gpa;          /* depth write buffers */
    uint64_t *buf_block;        /* block of each busy buffer */
    unsigned *free_bufs, nfree;
    uint8_t *state;             /* BlkBlockState per block */
    uint32_t *ack_epoch;        /* flush epoch a block was acked in */
    uint32_t epoch;             /* flushes submitted so far */
    uint32_t durable_below;     /* acks of epochs below this are durable */
    uint64_t next;              /* next block to submit */
    uint64_t acked, durable, since_flush;
    unsigned flushes_in_flight;
    uint64_t flushes_done;
    uint64_t io_errors;
} BlkWriter;

/* Counts of a read-back (blk_writer_verify), by what was known. */
typedef struct BlkVerify {
    uint64_t durable_ok, durable_bad;           /* bad: zero or damaged */
    uint64_t acked_ok, acked_zero, acked_bad;
    uint64_t in_flight_ok, in_flight_zero, in_flight_bad;
    uint64_t unwritten_zero, unwritten_bad;
} BlkVerify;

/*
 * Write blocks of BLK_WRITER_BLOCK bytes over @nblocks blocks from
 * @first_sector, @depth in flight (at most the queue's size), a flush
 * after every @flush_every acknowledged writes (0: never by itself).
 */
bool blk_writer_init(BlkWriter *w, VirtioBlk *blk, GuestAlloc *mem,
                     uint64_t first_sector, uint64_t nblocks, unsigned depth,
                     unsigned flush_every, uint64_t nonce, GError **errp);
void blk_writer_destroy(BlkWriter *w);

/*
 * Top the queue up (writes while blocks are left, flushes as due), kick
 * once, then reap completions, waiting up to @timeout_ms for the first.
 * False (errp) on a driver error or a failed request.
 */
bool blk_writer_step(BlkWriter *w, int timeout_ms, GError **errp);
/* Submit a flush now (it goes out with the next step or kick). */
bool blk_writer_flush(BlkWriter *w, GError **errp);
/* Step until nothing is in flight, then flush and wait for it. */
bool blk_writer_drain(BlkWriter *w, int timeout_ms, GError **errp);
/* Writes and flushes in flight. */
unsigned blk_writer_in_flight(const BlkWriter *w);
/* How many blocks from the first are all acknowledged. */
uint64_t blk_writer_acked_prefix(const BlkWriter *w);

/*
 * Read the region back through @blk (e.g. a new QEMU on the same image)
 * and count each block by its state in @w.
 */
bool blk_writer_verify(const BlkWriter *w, VirtioBlk *blk, BlkVerify *v,
                       GError **errp);

/* Check one block read back: 0 zero, 1 intact, -1 damaged. */
int blk_writer_check_block(const void *block, uint64_t nonce,
                           uint64_t n);

#endif /* VMM_SIM_BLK_WRITER_H */
