/*
 * Guest loads on a simulated virtio-blk that the end-to-end tests of
 * notify suppression share (test-notify, test-vhost-user-blk).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Both read 4 KiB per request into slot s of @buf (guest-physical, @qd
 * slots of 4 KiB), request n at sector n * 8, each request kicked (which
 * notifies only when the ring's avail_event asks for it).  Both return
 * how many requests completed with VIRTIO_BLK_S_OK; an error ends the
 * load early, with a failed TAP line that says which request.
 */
#ifndef TESTS_E2E_BLK_LOAD_H
#define TESTS_E2E_BLK_LOAD_H

#include <stdint.h>

#include "virtio-blk.h"

#define BLK_LOAD_QD_MAX     32
#define BLK_LOAD_REQ_BYTES  4096

/* One read into slot @slot, kicked. */
bool blk_load_read(VirtioBlk *b, uint64_t buf, unsigned slot,
                   uint64_t sector, GError **errp);

/*
 * fio's pattern at iodepth @qd: fill, then replace every completion
 * reaped by one request at once.
 */
unsigned blk_load_burst(VirtioBlk *b, uint64_t buf, unsigned qd,
                        unsigned total, int timeout_ms);

/*
 * A steady guest: @total requests, a new one every @gap_us while fewer
 * than @qd are in flight, reaping what completed in between.
 */
unsigned blk_load_paced(VirtioBlk *b, uint64_t buf, unsigned qd,
                        unsigned total, unsigned gap_us, int timeout_ms);

#endif
