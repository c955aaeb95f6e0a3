/*
 * The soak's VMM restart: the VMM hangs up, QEMU exits by itself (as
 * under its systemd unit, whose Restart= starts a new one), a new VMM
 * and QEMU start as the demo's did, and the disk still holds what the
 * guest wrote before.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VMM_SIM_DEMO_SOAK_RESTART_H
#define VMM_SIM_DEMO_SOAK_RESTART_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "blk-writer.h"
#include "demo-vmm.h"
#include "demo-workloads.h"

/* Blocks of 4 KiB written before each restart and read back after it */
#define SOAK_RESTART_BLOCKS     256u

typedef struct SoakRestart {
    unsigned done;              /* restarts begun */
    unsigned exited;            /* QEMU exited by itself with status 1 */
    double exit_ms_max;         /* the longest it took */
    unsigned started;           /* a new QEMU up, every device registered */
    unsigned next_ok;           /* the round after: every device served */
    uint64_t blocks, intact;    /* written before, read back after */
    char *why;                  /* the first thing that went wrong */
    /* the region written over one restart */
    BlkWriter w;
    bool written;
} SoakRestart;

/*
 * Before the restart: SOAK_RESTART_BLOCKS stamped blocks (@nonce) at a
 * random offset of the disk, every one acknowledged, then flushed.
 */
void soak_restart_write(DemoGuest *g, GRand *rand, uint64_t nonce,
                        SoakRestart *r);
/*
 * The VMM hangs up (vmm_sim_free()); QEMU must exit with status 1 ("the
 * VMM hung up; shutting down", qemu_system_shutdown_request_with_code);
 * then a new VMM and QEMU start exactly as the demo's did, and must
 * register all five devices.  g->sim, g->mem and g->mmio_next follow the
 * new VMM, as a rebooted guest's.  False when no new QEMU came up: the
 * soak cannot go on.
 */
bool soak_restart_vmm(DemoGuest *g, DemoVmm *vmm, SoakRestart *r);
/* After it: the region read back through the new QEMU, block by block. */
void soak_restart_read(DemoGuest *g, SoakRestart *r);
/* The round after a restart went (@ok: every device's rows ok). */
void soak_restart_next_round(SoakRestart *r, bool ok, const char *why);
void soak_restart_free(SoakRestart *r);

#endif
