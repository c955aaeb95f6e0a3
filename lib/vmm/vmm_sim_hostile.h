/*
 * The simulated seL4 VMM in a hostile mode (vmm_sim_hostile.c): what a
 * broken or malicious VMM can do to the device side.  For tests only:
 * the library sel4_vmm_hostile, linked by tests/e2e/test-hostile-peer.c.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef SEL4_VMM_SIM_HOSTILE_H
#define SEL4_VMM_SIM_HOSTILE_H

#include "sel4/vmm_sim.h"

/*
 * Send @n request bodies exactly as given (no check at all) and wait for
 * their replies, whole bodies into @replies.  Fails like
 * vmm_sim_mmio_batch().
 */
bool vmm_sim_call_raw(VmmSim *sim, const rpcmsg_t *reqs, unsigned n,
                      rpcmsg_t *replies, GError **errp);
/*
 * Put message id @id (any value, lent or not) on drvrpc_req as the
 * deployed producer would; no doorbell.  False when the queue is full.
 */
bool vmm_sim_enqueue_raw_id(VmmSim *sim, uint16_t id);
/* The shared iobuf, to rewrite queue markers and bodies at will. */
rpcmsg_iobuf_t *vmm_sim_iobuf(VmmSim *sim);
/* Never take devevt (registrations, START_VM, interrupts stay queued). */
void vmm_sim_set_ignore_events(VmmSim *sim, bool ignore);

#endif /* SEL4_VMM_SIM_HOSTILE_H */
