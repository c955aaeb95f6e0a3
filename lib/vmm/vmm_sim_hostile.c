/*
 * The simulated seL4 VMM in a hostile mode: what a broken or malicious
 * VMM can do to the device side, for tests/e2e/test-hostile-peer.c.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Requests with any body (no check of opcode, length, address space or
 * address), ring entries with any message id, the iobuf itself for
 * rewriting queue markers, and a VMM that never takes devevt.  Replies
 * still come back through the normal bookkeeping, so a hostile request is
 * answered (or times out) like any other.
 */
#include <errno.h>

#include "vmm_sim_hostile.h"
#include "vmm_sim_int.h"

bool vmm_sim_call_raw(VmmSim *sim, const rpcmsg_t *reqs, unsigned n,
                      rpcmsg_t *replies, GError **errp)
{
    VmmSimBatch b = { .raw = replies };

    if (sim->conn < 0 || sim->peer_gone) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_NOT_CONNECTED,
                    "vmm-sim: no device side to send to");
        return false;
    }
    return vmm_sim_run_batch(sim, &b, reqs, n, errp);
}

bool vmm_sim_enqueue_raw_id(VmmSim *sim, uint16_t id)
{
    rpcmsg_queue_t *q = sim->rpc.req.q;
    rpcmsg_marker_t t, h;

    /*
     * The deployed one-entry producer, without its checks: the simulator
     * is the only producer of drvrpc_req, so plain stores do.
     */
    t.raw = __atomic_load_n(&q->prod.tail.raw, __ATOMIC_ACQUIRE);
    h.raw = __atomic_load_n(&q->cons.head.raw, __ATOMIC_ACQUIRE);
    if (t.pos - h.pos >= RPCMSG_BUFFER_SIZE) {
        return false;
    }
    __atomic_store_n(&q->ring[t.pos & RPCMSG_BUFFER_MASK], id,
                     __ATOMIC_RELAXED);
    t.pos++;
    t.count++;
    __atomic_store_n(&q->prod.tail.raw, t.raw, __ATOMIC_RELEASE);
    __atomic_store_n(&q->prod.head.raw, t.raw, __ATOMIC_RELEASE);
    return true;
}

rpcmsg_iobuf_t *vmm_sim_iobuf(VmmSim *sim)
{
    return sim->rpc.iobuf;
}

void vmm_sim_set_ignore_events(VmmSim *sim, bool ignore)
{
    sim->ignore_events = ignore;
}
