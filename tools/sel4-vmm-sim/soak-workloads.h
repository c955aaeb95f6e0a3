/*
 * The soak's workloads beyond the demo's: a verified random-offset block
 * write (fio's verify, in the guest), and 9P file churn.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VMM_SIM_SOAK_WORKLOADS_H
#define VMM_SIM_SOAK_WORKLOADS_H

#include "demo-workloads.h"

/* Blocks a verify found damaged or missing, over a whole soak. */
typedef struct SoakVerify {
    uint64_t blocks;            /* written and read back */
    uint64_t bad;               /* damaged, zero, or from another round */
} SoakVerify;

/*
 * virtio-blk: SOAK_BLK_BLOCKS blocks of 4 KiB at a random offset of the
 * disk, each stamped with the round's nonce and its number, 16 in flight
 * with a flush every 64; then flushed, read back and checked block by
 * block.  Adds to @v.
 */
void soak_blk_verify(DemoGuest *g, GRand *rand, uint64_t nonce,
                     SoakVerify *v);
/*
 * virtio-9p: SOAK_9P_FILES files created in the share, written,
 * read back and compared through 9P, and removed with Tremove; each must
 * then be gone from the host's directory too.
 */
void soak_9p_churn(DemoGuest *g, unsigned round);

#endif
